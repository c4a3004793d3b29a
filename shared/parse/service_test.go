package parse_test

import (
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/espfleet/crashdumps/shared/awstest"
	"github.com/espfleet/crashdumps/shared/crashdump"
	"github.com/espfleet/crashdumps/shared/dynamo"
	"github.com/espfleet/crashdumps/shared/parse"
)

var readFile = os.ReadFile

const (
	model   = "ps1"
	version = "1.0"
	zipKey  = "firmware/ps1/1.0.zip"
)

var elfBytes = []byte("\x7fELF not really, the fake parser only reads it")

func (e *env) putFirmware(t testing.TB) {
	t.Helper()
	e.putObject(t, zipKey, makeZIP(t,
		zipFile{name: "README.txt", data: []byte("build notes")},
		zipFile{name: "ps1.elf", data: elfBytes},
	))
}

func dumpEvent(e *env, d *crashdump.Dump) string { return s3Event(e.res.Bucket, d.ObjectKey()) }

func wantMetrics(t *testing.T, e *env, want ...string) {
	t.Helper()
	got := e.metrics.take()
	for i := range want {
		want[i] = parse.Operation + "/" + want[i]
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("got metrics %v, want %v", got, want)
	}
}

func wantNoFailures(t *testing.T, failed []string) {
	t.Helper()
	if len(failed) != 0 {
		t.Fatalf("got batch item failures %v, want none", failed)
	}
}

func TestService_ParseDump(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		p := &fakeParser{output: "report"}
		e := newEnv(t, p)
		e.putFirmware(t)
		d := e.putDump(t, "esp32", model, version, []byte("dump"))
		wantNoFailures(t, e.deliver(t, dumpEvent(e, d)))
		wantMetrics(t, e, parse.MetricParsed)

		item := e.item(t, d)
		for name, want := range map[string]string{
			"parse_status": "PARSED", "output": "report", "parser": "fake",
			"parse_attempts": "1", "crash_signature": "sig", "top_frame": "frame",
			"work_pk": "", "lease_until": "", "output_key": "", "parse_error": "",
		} {
			if got := attr(item, name); got != want {
				t.Errorf("%s: got %q, want %q", name, got, want)
			}
		}
		for _, name := range []string{"parsed_at", "parse_duration_ms"} {
			if attr(item, name) == "" {
				t.Errorf("%s: got nothing, want a value", name)
			}
		}
		if string(p.elf) != string(elfBytes) {
			t.Errorf("got ELF %q, want %q", p.elf, elfBytes)
		}
	})

	t.Run("OKDuplicateDelivery", func(t *testing.T) {
		p := &fakeParser{output: "report"}
		e := newEnv(t, p)
		e.putFirmware(t)
		d := e.putDump(t, "esp32", model, version, []byte("dump"))
		// Two copies in one batch, run at once, then a third later.
		wantNoFailures(t, e.deliver(t, dumpEvent(e, d), reparse(d)))
		wantNoFailures(t, e.deliver(t, dumpEvent(e, d)))
		wantMetrics(t, e, parse.MetricParsed, parse.MetricSkipped, parse.MetricSkipped)
		if p.calls != 1 {
			t.Errorf("got %d parser calls, want 1", p.calls)
		}
		if got := attr(e.item(t, d), "parse_attempts"); got != "1" {
			t.Errorf("got %s attempts, want 1", got)
		}
	})

	t.Run("ErrNotFoundBeforeItem", func(t *testing.T) {
		p := &fakeParser{output: "report"}
		e := newEnv(t, p)
		e.putFirmware(t)
		d := e.newDump("esp32", model, version, []byte("dump"))
		if err := e.objects.PutDump(context.Background(), d, []byte("dump")); err != nil {
			t.Fatal(err)
		}
		// The event overtakes the record: the queue must deliver it again.
		failed := e.deliver(t, dumpEvent(e, d))
		if !slices.Equal(failed, []string{"m0"}) {
			t.Fatalf("got failures %v, want [m0]", failed)
		}
		wantMetrics(t, e, parse.MetricNotFound)
		if err := e.store.CreateDump(context.Background(), d, 100); err != nil {
			t.Fatal(err)
		}
		wantNoFailures(t, e.deliver(t, dumpEvent(e, d)))
		wantMetrics(t, e, parse.MetricParsed)
	})

	t.Run("OKDeletedDumpDropped", func(t *testing.T) {
		e := newEnv(t, &fakeParser{output: "report"})
		d := e.newDump("esp32", model, version, []byte("dump"))
		// Neither record nor bytes: removed before its event was read.
		wantNoFailures(t, e.deliver(t, dumpEvent(e, d), reparse(d)))
		wantMetrics(t, e, parse.MetricDeleted, parse.MetricDeleted)
	})

	t.Run("OKLeaseExpiresMidParse", func(t *testing.T) {
		p := &fakeParser{output: "first"}
		e := newEnv(t, p)
		e.putFirmware(t)
		d := e.putDump(t, "esp32", model, version, []byte("dump"))
		later := &fakeParser{output: "second"}
		second := &parse.Service{
			Store: e.svc.Store, Objects: e.svc.Objects, Firmware: e.svc.Firmware,
			Parser: later, Queue: e.svc.Queue, Logger: e.svc.Logger, Metrics: e.metrics,
			// Its clock is past the first claim's lease.
			Now: func() time.Time { return time.Now().Add(parse.DefaultLease + time.Minute) },
		}
		held := &parse.Service{
			Store: e.svc.Store, Objects: e.svc.Objects, Firmware: e.svc.Firmware,
			Parser: &fakeParser{output: "never"}, Queue: e.svc.Queue, Logger: e.svc.Logger, Metrics: e.metrics,
		}
		p.during = func(*parse.Job) {
			// While the first parse runs, a delivery within the lease
			// is skipped, and one after it takes the dump over.
			if err := held.ParseDump(context.Background(), d.DeviceKey, d.ID); err != nil {
				t.Errorf("delivery within the lease: %v", err)
			}
			if err := second.ParseDump(context.Background(), d.DeviceKey, d.ID); err != nil {
				t.Errorf("delivery after the lease: %v", err)
			}
		}
		if err := e.svc.ParseDump(context.Background(), d.DeviceKey, d.ID); err != nil {
			t.Fatal(err)
		}
		wantMetrics(t, e, parse.MetricSkipped, parse.MetricParsed, parse.MetricLeaseLost)
		got := e.get(t, d)
		if got.Output != "second" || got.ParseAttempt != 2 || got.ParseStatus != crashdump.StatusParsed {
			t.Errorf("got %s %q after %d attempts, want PARSED %q after 2", got.ParseStatus, got.Output, got.ParseAttempt, "second")
		}
	})

	t.Run("OKFirmwareLate", func(t *testing.T) {
		p := &fakeParser{output: "late report"}
		e := newEnv(t, p)
		d := e.putDump(t, "esp32", model, version, []byte("dump"))
		other := e.putDump(t, "esp32", model, "2.0", []byte("dump"))
		// The dumps' own events, as the emulator queued them.
		bodies := e.receive(t)
		if len(bodies) != 3 { // and the emulator's s3:TestEvent
			t.Fatalf("got %d queued events, want 3", len(bodies))
		}
		wantNoFailures(t, e.deliver(t, bodies...))
		wantMetrics(t, e, parse.MetricIgnored, parse.MetricFirmwareMissing, parse.MetricFirmwareMissing)
		item := e.item(t, d)
		if got, want := attr(item, "parse_status"), "WAITING_FOR_FIRMWARE"; got != want {
			t.Fatalf("got %s, want %s", got, want)
		}
		if got, want := attr(item, "work_pk"), "WAITING_FOR_FIRMWARE"; got != want {
			t.Errorf("got work_pk %q, want %q", got, want)
		}

		// The firmware arrives; its event wakes the dump, whose parse
		// request the next delivery carries. Nobody else acts.
		e.putFirmware(t)
		bodies = e.receive(t)
		if len(bodies) != 1 || !strings.Contains(bodies[0], `"firmware%2Fps1%2F1.0.zip"`) {
			t.Fatalf("got queued %q, want the firmware event", bodies)
		}
		wantNoFailures(t, e.deliver(t, bodies...))
		wantMetrics(t, e, parse.MetricFirmwareArrived)
		bodies = e.receive(t)
		if len(bodies) != 1 || !strings.Contains(bodies[0], d.ID) {
			t.Fatalf("got queued %q, want a parse request for %s", bodies, d.ID)
		}
		wantNoFailures(t, e.deliver(t, bodies...))
		wantMetrics(t, e, parse.MetricParsed)
		if got := e.get(t, d); got.ParseStatus != crashdump.StatusParsed || got.Output != "late report" {
			t.Errorf("got %s %q, want PARSED %q", got.ParseStatus, got.Output, "late report")
		}
		if got := e.get(t, other); got.ParseStatus != crashdump.StatusWaitingForFirmware {
			t.Errorf("dump of another version: got %s, want WAITING_FOR_FIRMWARE", got.ParseStatus)
		}
	})

	errorCases := []struct {
		name   string
		zip    func(t testing.TB) []byte
		metric string
		reason string
	}{
		{"ErrZIPWithoutELF", func(t testing.TB) []byte {
			return makeZIP(t, zipFile{name: "other.elf", data: elfBytes})
		}, parse.MetricFirmwareInvalid, "firmware firmware/ps1/1.0.zip has no ps1.elf"},
		{"ErrCorruptZIP", func(t testing.TB) []byte {
			return randomBytes(10 << 10)
		}, parse.MetricFirmwareInvalid, "firmware firmware/ps1/1.0.zip is not a readable ZIP archive"},
		{"ErrCorruptELFInZIP", func(t testing.TB) []byte {
			z := makeZIP(t, zipFile{name: "ps1.elf", data: elfBytes, stored: true})
			i := strings.Index(string(z), "not really")
			z[i] ^= 0xff // the CRC-32 no longer matches
			return z
		}, parse.MetricFirmwareInvalid, "firmware firmware/ps1/1.0.zip: ps1.elf is corrupt"},
	}
	for _, tc := range errorCases {
		t.Run(tc.name, func(t *testing.T) {
			p := &fakeParser{output: "report"}
			e := newEnv(t, p)
			e.putObject(t, zipKey, tc.zip(t))
			d := e.putDump(t, "esp32", model, version, []byte("dump"))
			wantNoFailures(t, e.deliver(t, dumpEvent(e, d)))
			wantMetrics(t, e, tc.metric)
			item := e.item(t, d)
			if got := attr(item, "parse_status"); got != "ERROR" {
				t.Errorf("got %s, want ERROR", got)
			}
			want := "Unable to parse coredump: " + tc.reason
			if got := attr(item, "parse_error"); !strings.HasPrefix(got, want) {
				t.Errorf("got %q, want it to start %q", got, want)
			}
			if attr(item, "work_pk") != "" || attr(item, "lease_until") != "" {
				t.Errorf("got work_pk %q lease_until %q, want both removed", attr(item, "work_pk"), attr(item, "lease_until"))
			}
			if p.calls != 0 {
				t.Errorf("got %d parser calls, want 0", p.calls)
			}
		})
	}

	t.Run("ErrUnparseable", func(t *testing.T) {
		p := &fakeParser{err: parse.Unparseable(parse.MetricSidecarFailed, "sidecar failed after 3 attempt(s): HTTP 503")}
		e := newEnv(t, p)
		e.putFirmware(t)
		d := e.putDump(t, "esp32", model, version, []byte("dump"))
		wantNoFailures(t, e.deliver(t, dumpEvent(e, d)))
		wantMetrics(t, e, parse.MetricSidecarFailed)
		got := e.get(t, d)
		want := "Unable to parse coredump: sidecar failed after 3 attempt(s): HTTP 503"
		if got.ParseStatus != crashdump.StatusError || got.ParseError != want {
			t.Errorf("got %s %q, want ERROR %q", got.ParseStatus, got.ParseError, want)
		}
	})

	t.Run("OKOutputOver64KiB", func(t *testing.T) {
		long := strings.Repeat("frame line of a long backtrace\n", 3000)
		e := newEnv(t, &fakeParser{output: long})
		e.putFirmware(t)
		d := e.putDump(t, "esp32", model, version, []byte("dump"))
		wantNoFailures(t, e.deliver(t, dumpEvent(e, d)))
		wantMetrics(t, e, parse.MetricParsed)
		item := e.item(t, d)
		wantKey := "parsed/" + d.DeviceKey + "/" + d.ID + ".txt"
		if got := attr(item, "output_key"); got != wantKey {
			t.Errorf("got output_key %q, want %q", got, wantKey)
		}
		if _, ok := item["output"]; ok {
			t.Errorf("got an output attribute, want none")
		}
		out, err := e.s3.GetObject(context.Background(), &s3.GetObjectInput{Bucket: &e.res.Bucket, Key: &wantKey},
			func(o *s3.Options) { o.DisableLogOutputChecksumValidationSkipped = true })
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(out.Body)
		if string(b) != long {
			t.Errorf("got %d bytes stored, want %d", len(b), len(long))
		}

		// A re-parse that ends in ERROR drops the old output, item and
		// object.
		if _, err := e.store.ResetToPending(context.Background(), d.DeviceKey, d.ID, time.Now(), false); err != nil {
			t.Fatal(err)
		}
		e.svc.Parser = &fakeParser{err: parse.Unparseable(parse.MetricParseError, "bad dump")}
		wantNoFailures(t, e.deliver(t, reparse(d)))
		wantMetrics(t, e, parse.MetricParseError)
		item = e.item(t, d)
		if attr(item, "parse_status") != "ERROR" || attr(item, "output_key") != "" || attr(item, "crash_signature") != "" {
			t.Errorf("got %s output_key %q signature %q, want ERROR and neither",
				attr(item, "parse_status"), attr(item, "output_key"), attr(item, "crash_signature"))
		}
		if ok, _ := e.objects.Exists(context.Background(), wantKey); ok {
			t.Errorf("got %s still stored, want it deleted", wantKey)
		}
	})

	t.Run("OKOneExtractionPerBatch", func(t *testing.T) {
		p := &fakeParser{output: "report"}
		e := newEnv(t, p)
		e.handler.Workers = 4
		e.putObject(t, zipKey, makeZIP(t,
			zipFile{name: "filler.bin", data: randomBytes(200 << 10), stored: true},
			zipFile{name: "ps1.elf", data: elfBytes},
		))
		var bodies []string
		for range 4 {
			bodies = append(bodies, dumpEvent(e, e.putDump(t, "esp32", model, version, []byte("dump"))))
		}
		wantNoFailures(t, e.deliver(t, bodies...))
		batch := e.archives.Requests()

		// One dump alone, with an empty cache, costs the same.
		e.svc.Firmware.Cache = &parse.ELFCache{Dir: t.TempDir()}
		d := e.putDump(t, "esp32", model, version, []byte("dump"))
		wantNoFailures(t, e.deliver(t, dumpEvent(e, d)))
		if alone := e.archives.Requests() - batch; batch != alone {
			t.Errorf("got %d GETs for a batch of 4 dumps of one build, want %d as for one", batch, alone)
		}
		wantMetrics(t, e, parse.MetricParsed, parse.MetricParsed, parse.MetricParsed, parse.MetricParsed, parse.MetricParsed)
	})

	t.Run("OKNoParserLeavesPending", func(t *testing.T) {
		e := newEnv(t, parse.NoParser{})
		e.putFirmware(t)
		d1 := e.putDump(t, "esp32", model, version, []byte("dump"))
		d2 := e.putDump(t, "esp32", model, version, []byte("dump"))
		wantNoFailures(t, e.deliver(t, dumpEvent(e, d1), dumpEvent(e, d2)))
		wantMetrics(t, e, parse.MetricDecoderUnavailable, parse.MetricDecoderUnavailable)
		for _, d := range []*crashdump.Dump{d1, d2} {
			item := e.item(t, d)
			if attr(item, "parse_status") != "PENDING" || attr(item, "work_pk") != "PENDING" || attr(item, "lease_until") != "" {
				t.Errorf("got %s/%s lease %q, want PENDING/PENDING and no lease",
					attr(item, "parse_status"), attr(item, "work_pk"), attr(item, "lease_until"))
			}
		}
		if n := strings.Count(e.logs.String(), "no parser"); n != 1 {
			t.Errorf("got the reason logged %d times, want once", n)
		}
	})

	t.Run("ErrParserTransient", func(t *testing.T) {
		e := newEnv(t, &fakeParser{err: errors.New("reading dump: connection reset")})
		e.putFirmware(t)
		d := e.putDump(t, "esp32", model, version, []byte("dump"))
		if failed := e.deliver(t, dumpEvent(e, d)); len(failed) != 1 {
			t.Fatalf("got failures %v, want one", failed)
		}
		wantMetrics(t, e, parse.MetricUnexpectedError)
		if got := e.get(t, d); got.ParseStatus != crashdump.StatusPending {
			t.Errorf("got %s, want PENDING (claim released)", got.ParseStatus)
		}
	})

	t.Run("ErrDynamoDBUnavailable", func(t *testing.T) {
		e := newEnv(t, &fakeParser{output: "report"})
		cfg := awstest.Config(t)
		cfg.RetryMaxAttempts = 1
		down := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
			o.BaseEndpoint = aws.String(closedPort(t))
		})
		e.svc.Store = &dynamo.Store{Client: down, Table: e.res.Table}
		d := e.newDump("esp32", model, version, []byte("dump"))
		if failed := e.deliver(t, dumpEvent(e, d)); len(failed) != 1 {
			t.Fatalf("got failures %v, want one", failed)
		}
		wantMetrics(t, e, parse.MetricUnexpectedError)
	})

	t.Run("ErrS3Unavailable", func(t *testing.T) {
		e := newEnv(t, &fakeParser{output: "report"})
		d := e.putDump(t, "esp32", model, version, []byte("dump"))
		cfg := awstest.Config(t)
		cfg.RetryMaxAttempts = 1
		e.archives.Client = s3.NewFromConfig(cfg, func(o *s3.Options) {
			o.BaseEndpoint = aws.String(closedPort(t))
			o.UsePathStyle = true
		})
		if failed := e.deliver(t, dumpEvent(e, d)); len(failed) != 1 {
			t.Fatalf("got failures %v, want one", failed)
		}
		wantMetrics(t, e, parse.MetricUnexpectedError)
		if got := e.get(t, d); got.ParseStatus != crashdump.StatusPending {
			t.Errorf("got %s, want PENDING (claim released)", got.ParseStatus)
		}
	})
}

// closedPort returns the URL of a loopback port nothing listens on.
func closedPort(t testing.TB) string {
	t.Helper()
	l, err := listen()
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func TestHandler_Handle(t *testing.T) {
	e := newEnv(t, &fakeParser{output: "report"})
	tests := []struct {
		name   string
		body   string
		metric string
	}{
		{"ErrNotJSON", "hello", parse.MetricMalformed},
		{"ErrUnknownShape", `{"foo": 1}`, parse.MetricMalformed},
		{"ErrBadMessage", `{"type": "reparse", "device_key": "a/b", "id": "x"}`, parse.MetricMalformed},
		{"ErrForeignBucket", s3Event("other-bucket", "coredumps/dev1/01JD0000000000000000000000.dmp"), parse.MetricMalformed},
		{"ErrNotADumpKey", s3Event(e.res.Bucket, "coredumps/elsewhere.txt"), parse.MetricMalformed},
		{"OKTestEvent", `{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-01-01T00:00:00.000Z","Bucket":"b","RequestId":"r","HostId":"h"}`, parse.MetricIgnored},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Dropped, not retried: another delivery cannot fix them.
			wantNoFailures(t, e.deliver(t, tc.body))
			wantMetrics(t, e, tc.metric)
		})
	}
}

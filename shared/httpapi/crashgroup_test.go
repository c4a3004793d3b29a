package httpapi_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/espfleet/crashdumps/shared/app"
	"github.com/espfleet/crashdumps/shared/crashdump"
	"github.com/espfleet/crashdumps/shared/crashgroup"
	"github.com/espfleet/crashdumps/shared/espcore/espsynth"
	"github.com/espfleet/crashdumps/shared/httpapi"
	"github.com/espfleet/crashdumps/shared/parse"
	"github.com/espfleet/crashdumps/shared/telemetry"
)

// groupEnv is the admin API with crash groups, and the real parse
// function, on fresh emulator resources.
type groupEnv struct {
	*adminEnv
	parse app.SQSHandler
}

func newGroupEnv(t testing.TB) *groupEnv {
	t.Helper()
	e := &groupEnv{adminEnv: newAdminEnv(t)}
	api := &httpapi.API{
		Logger:      telemetry.NewLogger(e.logs, nil),
		Metrics:     telemetry.NewMetrics(e.logs),
		Admins:      httpapi.AdminAuth{Scope: "coredumps/admin"},
		Admin:       e.svc,
		CrashGroups: &crashgroup.Service{Store: e.store, Cursors: e.svc.Cursors},
	}
	e.handler = httpapi.Lambda(api.Handler())
	vars := map[string]string{
		"COREDUMP_BUCKET": e.res.Bucket,
		"COREDUMP_TABLE":  e.res.Table,
		"PARSE_QUEUE_URL": e.res.QueueURL,
		"ELF_CACHE_DIR":   t.TempDir(),
	}
	var err error
	e.parse, err = app.Parse(context.Background(), app.Env{
		Lookup: func(k string) (string, bool) { v, ok := vars[k]; return v, ok },
		Out:    e.logs,
		AWS:    &e.cfg,
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// putFirmware uploads a firmware ZIP holding elf for model and version.
func (e *groupEnv) putFirmware(t *testing.T, model, version string, elf []byte) {
	t.Helper()
	var zipped bytes.Buffer
	zw := zip.NewWriter(&zipped)
	w, _ := zw.Create(model + ".elf")
	w.Write(elf)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	key := "firmware/" + model + "/" + version + ".zip"
	if _, err := e.s3.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: &e.res.Bucket, Key: aws.String(key), Body: bytes.NewReader(zipped.Bytes()),
	}); err != nil {
		t.Fatal(err)
	}
}

// parseOne delivers one parse message for d to the parse function. The
// deliveries of a test run one at a time: moto does not isolate
// concurrent writes to one item, which DynamoDB does.
func (e *groupEnv) parseOne(t *testing.T, d *crashdump.Dump) {
	t.Helper()
	body, _ := json.Marshal(parse.Message{Type: parse.MessageTypeReparse, DeviceKey: d.DeviceKey, ID: d.ID, Reason: "test"})
	out, err := e.parse(context.Background(), events.SQSEvent{Records: []events.SQSMessage{{MessageId: d.ID, Body: string(body)}}})
	if err != nil || len(out.BatchItemFailures) != 0 {
		t.Fatalf("parse of %s: got %v, %+v, want no failures", d.ID, err, out.BatchItemFailures)
	}
}

// groupPage is the body of a crash group listing.
type groupPage struct {
	Items      []crashgroup.Group `json:"items"`
	NextCursor string             `json:"next_cursor"`
}

func (e *groupEnv) groups(t *testing.T, query url.Values) groupPage {
	t.Helper()
	resp, body := e.call(t, "GET", "/api/crash-groups", query, asAdmin)
	if resp.StatusCode != 200 {
		t.Fatalf("got %d, want 200 (%s)", resp.StatusCode, body)
	}
	var p groupPage
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// allGroups follows a listing to its end and returns the signatures in
// the order served.
func (e *groupEnv) allGroups(t *testing.T, query url.Values) (sigs []string, pages int) {
	t.Helper()
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	for {
		p := e.groups(t, q)
		pages++
		for _, g := range p.Items {
			sigs = append(sigs, g.Signature)
		}
		if p.NextCursor == "" {
			return sigs, pages
		}
		if pages > 100 {
			t.Fatal("listing does not end")
		}
		q.Set("cursor", p.NextCursor)
	}
}

// TestCrashGroups_Parsed parses synthetic dumps of two chips through the
// real parse function and lists their two groups.
func TestCrashGroups_Parsed(t *testing.T) {
	e := newGroupEnv(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	type spec struct {
		chip, model, version, device string
		ago                          time.Duration
	}
	specs := []spec{
		{"esp32c3", "ps1", "1.0.0", "c3dev01", 9 * time.Hour},
		{"esp32c3", "ps1", "1.0.0", "c3dev02", 8 * time.Hour},
		{"esp32c3", "ps1", "1.1.0", "c3dev01", 7 * time.Hour},
		{"esp32c3", "ps1", "1.1.0", "c3dev03", 6 * time.Hour},
		{"esp32c3", "ps1", "1.1.0", "c3dev02", 2 * time.Hour},
		{"esp32s3", "ps2", "2.0.0", "s3dev01", 5 * time.Hour},
		{"esp32s3", "ps2", "2.0.0", "s3dev01", time.Hour},
	}
	elves := map[string][]byte{}
	raws := map[string][]byte{}
	for _, chip := range []string{"esp32c3", "esp32s3"} {
		elf, err := espsynth.Firmware(chip)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := espsynth.Dump(chip, elf)
		if err != nil {
			t.Fatal(err)
		}
		elves[chip], raws[chip] = elf, raw
	}
	e.putFirmware(t, "ps1", "1.0.0", elves["esp32c3"])
	e.putFirmware(t, "ps1", "1.1.0", elves["esp32c3"])
	e.putFirmware(t, "ps2", "2.0.0", elves["esp32s3"])
	var dumps []crashdump.Dump
	for _, s := range specs {
		d := newDump(s.device, now.Add(-s.ago))
		d.Chip, d.ModelCode, d.FirmwareVersion = s.chip, s.model, s.version
		d.Size = int64(len(raws[s.chip]))
		dumps = append(dumps, d)
	}
	if err := e.store.PutDumps(ctx, dumps); err != nil {
		t.Fatal(err)
	}
	for i := range dumps {
		if err := e.objects.PutDump(ctx, &dumps[i], raws[dumps[i].Chip]); err != nil {
			t.Fatal(err)
		}
	}
	e.reparseMessages(t) // the seeding's S3 notifications
	for i := range dumps {
		e.parseOne(t, &dumps[i])
	}
	c3, s3 := dumps[4], dumps[6] // the newest of each chip

	check := func(t *testing.T, p groupPage) {
		t.Helper()
		if len(p.Items) != 2 || p.NextCursor != "" {
			t.Fatalf("got %d groups and cursor %q, want 2 and none", len(p.Items), p.NextCursor)
		}
		tests := []struct {
			name             string
			got              crashgroup.Group
			chip             string
			count, devices   int64
			versions, models []string
			first, last      time.Time
			sample           crashdump.Dump
		}{
			{"S3", p.Items[0], "esp32s3", 2, 1, []string{"2.0.0"}, []string{"ps2"}, dumps[5].UploadedAt, s3.UploadedAt, s3},
			{"C3", p.Items[1], "esp32c3", 5, 3, []string{"1.0.0", "1.1.0"}, []string{"ps1"}, dumps[0].UploadedAt, c3.UploadedAt, c3},
		}
		for _, tt := range tests {
			g := tt.got
			if g.Chip != tt.chip || g.Count != tt.count || g.Devices != tt.devices {
				t.Errorf("%s: got %s %d dumps of %d devices, want %s %d of %d", tt.name, g.Chip, g.Count, g.Devices, tt.chip, tt.count, tt.devices)
			}
			if !slices.Equal(g.FirmwareVersions, tt.versions) || !slices.Equal(g.Models, tt.models) {
				t.Errorf("%s: got versions %v models %v, want %v %v", tt.name, g.FirmwareVersions, g.Models, tt.versions, tt.models)
			}
			if !g.FirstSeen.Equal(tt.first) || !g.LastSeen.Equal(tt.last) {
				t.Errorf("%s: got seen %v..%v, want %v..%v", tt.name, g.FirstSeen, g.LastSeen, tt.first, tt.last)
			}
			if g.SampleDumpID != tt.sample.ID || g.SampleDeviceKey != tt.sample.DeviceKey {
				t.Errorf("%s: got sample %s/%s, want %s/%s", tt.name, g.SampleDeviceKey, g.SampleDumpID, tt.sample.DeviceKey, tt.sample.ID)
			}
			if g.TopFrame != "sensor_read" || g.CrashKind == "" {
				t.Errorf("%s: got top frame %q kind %q, want sensor_read and a kind", tt.name, g.TopFrame, g.CrashKind)
			}
			stored, err := e.store.GetDump(ctx, tt.sample.DeviceKey, tt.sample.ID)
			if err != nil || stored.Signature != g.Signature {
				t.Errorf("%s: the sample's signature is not the group's: %v %+v", tt.name, err, stored)
			}
		}
		if p.Items[0].Signature == p.Items[1].Signature {
			t.Errorf("two chips share the signature %s", p.Items[0].Signature)
		}
	}

	t.Run("OK", func(t *testing.T) {
		check(t, e.groups(t, nil))
	})
	t.Run("OKRedelivered", func(t *testing.T) {
		// A second delivery finds every dump PARSED and skips it.
		for i := range dumps {
			e.parseOne(t, &dumps[i])
		}
		check(t, e.groups(t, nil))
	})
	t.Run("OKReparsed", func(t *testing.T) {
		// An admin's re-parse runs the whole parse again, group
		// recording included: the markers keep it from counting twice.
		for _, d := range []crashdump.Dump{dumps[0], dumps[4], dumps[6]} {
			resp, body := e.call(t, "POST", dumpPath(&d, "/reparse"), nil, asAdmin)
			if resp.StatusCode != 202 {
				t.Fatalf("re-parse: got %d, want 202 (%s)", resp.StatusCode, body)
			}
			e.parseOne(t, &d)
			got, err := e.store.GetDump(ctx, d.DeviceKey, d.ID)
			if err != nil || got.ParseStatus != crashdump.StatusParsed || got.ParseAttempt != 2 {
				t.Fatalf("re-parsed %s: got %v %+v, want PARSED on its second attempt", d.ID, err, got)
			}
		}
		e.reparseMessages(t)
		check(t, e.groups(t, nil))
		if logs := e.logs.String(); !strings.Contains(logs, `"Operation":"crash_group_record","Status":"recorded"`) {
			t.Errorf("no crash_group_record metric in the logs")
		}
	})

	s3Sig := e.groups(t, url.Values{"chip": {"esp32s3"}}).Items[0].Signature
	c3Sig := e.groups(t, url.Values{"chip": {"esp32c3"}}).Items[0].Signature
	ts := func(t time.Time) string { return t.Format(time.RFC3339Nano) }
	filters := []struct {
		name  string
		query url.Values
		want  []string
	}{
		{"OKChip", url.Values{"chip": {"esp32c3"}}, []string{c3Sig}},
		{"OKFirmwareVersion", url.Values{"firmware_version": {"1.0.0"}}, []string{c3Sig}},
		{"OKModel", url.Values{"model": {"ps2"}}, []string{s3Sig}},
		{"OKModelAndVersion", url.Values{"model": {"ps2"}, "firmware_version": {"1.1.0"}}, nil},
		{"OKSince", url.Values{"since": {ts(c3.UploadedAt.Add(time.Millisecond))}}, []string{s3Sig}},
		{"OKSinceInclusive", url.Values{"since": {ts(c3.UploadedAt)}}, []string{s3Sig, c3Sig}},
		{"OKUntil", url.Values{"until": {ts(s3.UploadedAt.Add(-time.Millisecond))}}, []string{c3Sig}},
		{"OKUntilInclusive", url.Values{"until": {ts(s3.UploadedAt)}, "since": {ts(c3.UploadedAt)}}, []string{s3Sig, c3Sig}},
		{"OKLimit", url.Values{"limit": {"1"}}, []string{s3Sig, c3Sig}},
	}
	for _, tt := range filters {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := e.allGroups(t, tt.query)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestCrashGroups_Pages lists many groups, recorded through the store,
// page by page: every group once, the most recently seen first.
func TestCrashGroups_Pages(t *testing.T) {
	e := newGroupEnv(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(6, 6))
	t0 := time.Now().UTC().Truncate(time.Second).Add(-30*24*time.Hour + 123*time.Millisecond)
	type seen struct {
		sig  string
		last time.Time
		chip string
	}
	var groups []seen
	for i := range 53 {
		sig := fmt.Sprintf("%032x", rng.Uint64())
		chip := []string{"esp32", "esp32c3"}[i%2]
		// Some groups share a last seen time: the signature breaks the tie.
		last := t0.Add(time.Duration(rng.IntN(40)) * time.Hour)
		for j := range 1 + i%2 {
			at := last.Add(-time.Duration(j) * time.Hour)
			d := newDump(fmt.Sprintf("dev%02d", j), at)
			d.Chip = chip
			d.Signature, d.TopFrame = sig, "app_main"
			if err := (&crashgroup.Recorder{Store: e.store}).RecordParsed(ctx, &d, "abort() was called"); err != nil {
				t.Fatal(err)
			}
		}
		groups = append(groups, seen{sig, last, chip})
	}
	newest := func(keep func(seen) bool) []string {
		s := slices.Clone(groups)
		slices.SortFunc(s, func(a, b seen) int {
			return strings.Compare(crashgroup.Position(b.last, b.sig), crashgroup.Position(a.last, a.sig))
		})
		var out []string
		for _, g := range s {
			if keep(g) {
				out = append(out, g.sig)
			}
		}
		return out
	}

	t.Run("OKEveryPage", func(t *testing.T) {
		got, pages := e.allGroups(t, url.Values{"limit": {"7"}})
		if want := newest(func(seen) bool { return true }); !slices.Equal(got, want) {
			t.Errorf("got %d groups %v, want %d %v", len(got), got, len(want), want)
		}
		if pages != 8 {
			t.Errorf("pages: got %d, want 8", pages)
		}
	})
	t.Run("OKDefaultLimit", func(t *testing.T) {
		p := e.groups(t, nil)
		if len(p.Items) != 20 || p.NextCursor == "" {
			t.Errorf("got %d groups and cursor %q, want 20 and a cursor", len(p.Items), p.NextCursor)
		}
	})
	t.Run("OKFilteredPages", func(t *testing.T) {
		got, _ := e.allGroups(t, url.Values{"limit": {"4"}, "chip": {"esp32"}})
		if want := newest(func(g seen) bool { return g.chip == "esp32" }); !slices.Equal(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
	})
	t.Run("OKWindow", func(t *testing.T) {
		since, until := t0.Add(10*time.Hour), t0.Add(20*time.Hour)
		got, _ := e.allGroups(t, url.Values{"limit": {"3"},
			"since": {since.Format(time.RFC3339Nano)}, "until": {until.Format(time.RFC3339Nano)}})
		want := newest(func(g seen) bool { return !g.last.Before(since) && !g.last.After(until) })
		if !slices.Equal(got, want) || len(want) == 0 {
			t.Errorf("got %v, want %v", got, want)
		}
	})

	first := e.groups(t, url.Values{"limit": {"5"}})
	raw, _ := base64.RawURLEncoding.DecodeString(first.NextCursor)
	raw[5] ^= 1
	tampered := base64.RawURLEncoding.EncodeToString(raw)
	errs := []struct {
		name  string
		query url.Values
	}{
		{"ErrTamperedCursor", url.Values{"limit": {"5"}, "cursor": {tampered}}},
		{"ErrCursorOfOtherQuery", url.Values{"limit": {"6"}, "cursor": {first.NextCursor}}},
		{"ErrCursorOfOtherFilter", url.Values{"limit": {"5"}, "chip": {"esp32"}, "cursor": {first.NextCursor}}},
		{"ErrGarbageCursor", url.Values{"cursor": {"not a cursor"}}},
		{"ErrLimitZero", url.Values{"limit": {"0"}}},
		{"ErrLimitTooLarge", url.Values{"limit": {"101"}}},
		{"ErrChip", url.Values{"chip": {"esp8266"}}},
		{"ErrFirmwareVersion", url.Values{"firmware_version": {strings.Repeat("v", 200)}}},
		{"ErrModel", url.Values{"model": {"bad model!"}}},
		{"ErrSince", url.Values{"since": {"yesterday"}}},
		{"ErrSinceAfterUntil", url.Values{"since": {"2026-12-02T00:00:00Z"}, "until": {"2026-12-01T00:00:00Z"}}},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.call(t, "GET", "/api/crash-groups", tt.query, asAdmin)
			if got, want := resp.StatusCode, 400; got != want {
				t.Errorf("status: got %d, want %d (%s)", got, want, body)
			}
			if got, want := errorCode(t, body), "invalid"; got != want {
				t.Errorf("code: got %v, want %v", got, want)
			}
		})
	}
	t.Run("OKCursorResumes", func(t *testing.T) {
		p := e.groups(t, url.Values{"limit": {"5"}, "cursor": {first.NextCursor}})
		want := newest(func(seen) bool { return true })[5:10]
		var got []string
		for _, g := range p.Items {
			got = append(got, g.Signature)
		}
		if !slices.Equal(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
	})
}

func TestCrashGroups_Authorization(t *testing.T) {
	e := newGroupEnv(t)
	tests := []struct {
		name   string
		who    caller
		status int
		code   string
	}{
		{"OK", asAdmin, 200, ""},
		{"ErrDeviceToken", asDevice, 403, "forbidden"},
		{"ErrNoToken", anonymous, 401, "unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.call(t, "GET", "/api/crash-groups", nil, tt.who)
			if got, want := resp.StatusCode, tt.status; got != want {
				t.Errorf("status: got %d, want %d (%s)", got, want, body)
			}
			if tt.code != "" {
				if got, want := errorCode(t, body), tt.code; got != want {
					t.Errorf("code: got %v, want %v", got, want)
				}
			} else if got, want := string(body), `{"items":[]}`+"\n"; got != want {
				t.Errorf("body: got %s, want %s", got, want)
			}
		})
	}
	logs := e.logs.String()
	for _, status := range []string{"ok", "unauthorized", "forbidden"} {
		if want := fmt.Sprintf(`"Operation":"crash_group_list","Status":%q`, status); !strings.Contains(logs, want) {
			t.Errorf("no metric %s in the logs", want)
		}
	}
}

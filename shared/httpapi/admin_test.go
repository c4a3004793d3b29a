package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/espfleet/crashdumps/shared/crashdump"
	"github.com/espfleet/crashdumps/shared/parse"
	"github.com/espfleet/crashdumps/shared/telemetry"
	"github.com/espfleet/crashdumps/shared/upload"
)

func TestAdmin_Authorization(t *testing.T) {
	e := newAdminEnv(t)
	now := time.Now()
	a, b, c := newDump("abcd1234", now.Add(-3*time.Second)), newDump("abcd1234", now.Add(-2*time.Second)), newDump("gone0001", now)
	a.ParseStatus = crashdump.StatusError
	e.seed(t, []crashdump.Dump{a, b, c}, true)

	routes := []struct {
		name, op, method, path string
		ok                     int
	}{
		{"List", "coredump_list", "GET", "/api/devices/abcd1234/coredumps", 200},
		{"Fleet", "coredump_fleet_list", "GET", "/api/coredumps", 200},
		{"Get", "coredump_get", "GET", dumpPath(&a), 200},
		{"Download", "coredump_download", "GET", dumpPath(&a, "/download"), 302},
		{"Reparse", "coredump_reparse", "POST", dumpPath(&a, "/reparse"), 202},
		{"OpenAPI", "openapi", "GET", "/api/openapi.json", 200},
		{"Delete", "coredump_delete", "DELETE", dumpPath(&b), 204},
		{"DeleteAll", "coredump_delete_all", "DELETE", "/api/devices/gone0001/coredumps", 204},
	}
	for _, rt := range routes {
		t.Run(rt.name, func(t *testing.T) {
			for _, tt := range []struct {
				name   string
				who    caller
				status int
				code   string
			}{
				{"ErrNoToken", anonymous, 401, "unauthorized"},
				{"ErrDeviceToken", asDevice, 403, "forbidden"},
			} {
				t.Run(tt.name, func(t *testing.T) {
					resp, body := e.call(t, rt.method, rt.path, nil, tt.who)
					if got, want := resp.StatusCode, tt.status; got != want {
						t.Errorf("status: got %d, want %d (%s)", got, want, body)
					}
					if got, want := errorCode(t, body), tt.code; got != want {
						t.Errorf("code: got %v, want %v", got, want)
					}
				})
			}
			// Last, so that the refusals above are seen to have
			// changed nothing: the deletions still find their dumps.
			t.Run("OK", func(t *testing.T) {
				resp, body := e.call(t, rt.method, rt.path, nil, asAdmin)
				if got, want := resp.StatusCode, rt.ok; got != want {
					t.Errorf("status: got %d, want %d (%s)", got, want, body)
				}
			})
			logs := e.logs.String()
			for _, status := range []string{"unauthorized", "forbidden"} {
				if want := fmt.Sprintf(`"Operation":%q,"Status":%q`, rt.op, status); !strings.Contains(logs, want) {
					t.Errorf("no metric %s in the logs", want)
				}
			}
			if want := fmt.Sprintf(`"Operation":%q`, rt.op); strings.Count(logs, want) < 3 {
				t.Errorf("got %d metrics %s, want 3", strings.Count(logs, want), want)
			}
		})
	}
}

func TestAdmin_List(t *testing.T) {
	e := newAdminEnv(t)
	start := time.Now().Add(-6 * time.Hour)
	var dumps []crashdump.Dump
	for i := range 250 {
		d := newDump("abcd1234", start.Add(time.Duration(i)*time.Minute))
		if i%5 == 0 {
			d.ParseStatus = crashdump.StatusError
		}
		d.Output = "a long parsed report that listings leave out"
		dumps = append(dumps, d)
	}
	// Another device's dumps are not listed.
	dumps = append(dumps, newDump("other9", start), newDump("other9", start.Add(time.Hour)))
	e.seed(t, dumps, false)
	mine := func(d *crashdump.Dump) bool { return d.DeviceKey == "abcd1234" }

	t.Run("OKEveryPage", func(t *testing.T) {
		ids, pages := e.pages(t, "/api/devices/abcd1234/coredumps", url.Values{"limit": {"7"}})
		sameIDs(t, ids, newestFirst(dumps, mine))
		if got, want := pages, 36; got != want {
			t.Errorf("pages: got %d, want %d", got, want)
		}
	})
	t.Run("OKDefaultLimit", func(t *testing.T) {
		resp, body := e.call(t, "GET", "/api/devices/abcd1234/coredumps", nil, asAdmin)
		var p listPage
		json.Unmarshal(body, &p)
		if resp.StatusCode != 200 || len(p.Items) != 20 || p.NextCursor == "" {
			t.Fatalf("got %d with %d items and cursor %q, want 200 with 20 and a cursor", resp.StatusCode, len(p.Items), p.NextCursor)
		}
		if got := p.Items[0]; got.Output != "" || got.SHA256 == "" || got.ParseStatus == "" {
			t.Errorf("summary: got %+v, want every field but the output", got)
		}
		if bytes.Contains(body, []byte(`"output"`)) {
			t.Errorf("summaries carry the output: %s", body)
		}
	})
	t.Run("OKStatusFilter", func(t *testing.T) {
		ids, _ := e.pages(t, "/api/devices/abcd1234/coredumps", url.Values{"limit": {"9"}, "parse_status": {"ERROR"}})
		sameIDs(t, ids, newestFirst(dumps, func(d *crashdump.Dump) bool {
			return mine(d) && d.ParseStatus == crashdump.StatusError
		}))
	})
	t.Run("OKUnknownDevice", func(t *testing.T) {
		resp, body := e.call(t, "GET", "/api/devices/nobody/coredumps", nil, asAdmin)
		if got, want := string(body), `{"items":[]}`+"\n"; resp.StatusCode != 200 || got != want {
			t.Errorf("got %d %s, want 200 %s", resp.StatusCode, got, want)
		}
	})
	for _, tt := range []struct {
		name, path string
		query      url.Values
	}{
		{"ErrLimitZero", "/api/devices/abcd1234/coredumps", url.Values{"limit": {"0"}}},
		{"ErrLimitLarge", "/api/devices/abcd1234/coredumps", url.Values{"limit": {"101"}}},
		{"ErrLimitText", "/api/devices/abcd1234/coredumps", url.Values{"limit": {"ten"}}},
		{"ErrStatus", "/api/devices/abcd1234/coredumps", url.Values{"parse_status": {"DONE"}}},
		{"ErrDeviceKey", "/api/devices/abc_d/coredumps", nil},
		{"ErrDeviceKeyLong", "/api/devices/" + strings.Repeat("a", 65) + "/coredumps", nil},
		{"ErrDeviceKeyQuote", "/api/devices/a%22b/coredumps", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.call(t, "GET", tt.path, tt.query, asAdmin)
			if got, want := resp.StatusCode, 400; got != want {
				t.Errorf("status: got %d, want %d (%s)", got, want, body)
			}
			if got, want := errorCode(t, body), "invalid"; got != want {
				t.Errorf("code: got %v, want %v", got, want)
			}
		})
	}
}

func TestAdmin_Cursor(t *testing.T) {
	e := newAdminEnv(t)
	now := time.Now()
	var dumps []crashdump.Dump
	for i := range 12 {
		dumps = append(dumps, newDump("abcd1234", now.Add(-time.Duration(i)*time.Minute)))
	}
	e.seed(t, append(dumps, newDump("other9", now)), false)
	first := func(path string, q url.Values) string {
		t.Helper()
		resp, body := e.call(t, "GET", path, q, asAdmin)
		var p listPage
		json.Unmarshal(body, &p)
		if resp.StatusCode != 200 || p.NextCursor == "" {
			t.Fatalf("first page: got %d %s, want 200 with a cursor", resp.StatusCode, body)
		}
		return p.NextCursor
	}
	const device = "/api/devices/abcd1234/coredumps"
	cur := first(device, url.Values{"limit": {"5"}})
	fleetCur := first("/api/coredumps", url.Values{"limit": {"5"}})
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}

	t.Run("OK", func(t *testing.T) {
		resp, body := e.call(t, "GET", device, url.Values{"limit": {"5"}, "cursor": {cur}}, asAdmin)
		if resp.StatusCode != 200 {
			t.Errorf("status: got %d, want 200 (%s)", resp.StatusCode, body)
		}
	})
	tests := []struct {
		name, path string
		query      url.Values
	}{
		{"ErrAlteredFirst", device, url.Values{"limit": {"5"}, "cursor": {flip(cur, 0)}}},
		{"ErrAlteredPosition", device, url.Values{"limit": {"5"}, "cursor": {flip(cur, 10)}}},
		{"ErrAlteredMAC", device, url.Values{"limit": {"5"}, "cursor": {flip(cur, len(cur)-3)}}},
		{"ErrTruncated", device, url.Values{"limit": {"5"}, "cursor": {cur[:len(cur)-4]}}},
		{"ErrGarbage", device, url.Values{"limit": {"5"}, "cursor": {"not a cursor at all!"}}},
		{"ErrHuge", device, url.Values{"limit": {"5"}, "cursor": {strings.Repeat("A", 4096)}}},
		{"ErrOtherDevice", "/api/devices/other9/coredumps", url.Values{"limit": {"5"}, "cursor": {cur}}},
		{"ErrOtherLimit", device, url.Values{"limit": {"6"}, "cursor": {cur}}},
		{"ErrOtherFilter", device, url.Values{"limit": {"5"}, "parse_status": {"PENDING"}, "cursor": {cur}}},
		{"ErrDeviceCursorOnFleet", "/api/coredumps", url.Values{"limit": {"5"}, "cursor": {cur}}},
		{"ErrFleetCursorOnDevice", device, url.Values{"limit": {"5"}, "cursor": {fleetCur}}},
		{"ErrFleetOtherFilter", "/api/coredumps", url.Values{"limit": {"5"}, "chip": {"esp32c3"}, "cursor": {fleetCur}}},
		{"ErrFleetOtherSince", "/api/coredumps", url.Values{"limit": {"5"}, "since": {"2026-01-01T00:00:00Z"}, "cursor": {fleetCur}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.call(t, "GET", tt.path, tt.query, asAdmin)
			if got, want := resp.StatusCode, 400; got != want {
				t.Errorf("status: got %d, want %d (%s)", got, want, body)
			}
			if got, want := errorCode(t, body), "invalid"; got != want {
				t.Errorf("code: got %v, want %v", got, want)
			}
		})
	}
}

func TestAdmin_Fleet(t *testing.T) {
	e := newAdminEnv(t)
	// A week of retention: the last page of a listing looks back that
	// far, and every empty day costs the emulator four queries.
	e.svc.RetentionDays = 7
	now := time.Now().UTC()
	rng := rand.New(rand.NewPCG(1, 2))
	chips := []string{"esp32", "esp32c3", "esp32s3"}
	models := []string{"ps1", "ps2"}
	versions := []string{"1.4.2", "1.5.0"}
	var dumps []crashdump.Dump
	partitions := map[string]bool{}
	for i := range 250 {
		// Five days back, at random times: every day, every shard.
		at := now.Add(-time.Duration(rng.Int64N(int64(5 * 24 * time.Hour))))
		d := newDump("dev"+strconv.Itoa(i%6), at)
		d.Chip = chips[i%3]
		d.ModelCode = models[i%2]
		d.FirmwareVersion = versions[(i/2)%2]
		if i%4 == 0 {
			d.ParseStatus = crashdump.StatusParsed
		}
		dumps = append(dumps, d)
		partitions[d.UploadedAt.Format(time.DateOnly)+"#"+strconv.Itoa(crashdump.FleetShard(d.ID))] = true
	}
	if len(partitions) < 20 {
		t.Fatalf("seeded %d fleet partitions, want at least 20", len(partitions))
	}
	e.seed(t, dumps, false)

	t.Run("OKEveryPage", func(t *testing.T) {
		ids, _ := e.pages(t, "/api/coredumps", url.Values{"limit": {"20"}})
		sameIDs(t, ids, newestFirst(dumps, nil))
	})
	t.Run("OKSmallPages", func(t *testing.T) {
		ids, pages := e.pages(t, "/api/coredumps", url.Values{"limit": {"3"}})
		sameIDs(t, ids, newestFirst(dumps, nil))
		if got, want := pages, 84; got != want {
			t.Errorf("pages: got %d, want %d", got, want)
		}
	})
	since, until := now.Add(-80*time.Hour), now.Add(-30*time.Hour)
	tests := []struct {
		name  string
		query url.Values
		keep  func(*crashdump.Dump) bool
	}{
		{"OKChip", url.Values{"chip": {"esp32s3"}}, func(d *crashdump.Dump) bool { return d.Chip == "esp32s3" }},
		{"OKStatus", url.Values{"parse_status": {"PARSED"}}, func(d *crashdump.Dump) bool { return d.ParseStatus == crashdump.StatusParsed }},
		{"OKModel", url.Values{"model": {"ps2"}}, func(d *crashdump.Dump) bool { return d.ModelCode == "ps2" }},
		{"OKFirmwareVersion", url.Values{"firmware_version": {"1.5.0"}}, func(d *crashdump.Dump) bool { return d.FirmwareVersion == "1.5.0" }},
		{"OKFirmwareIndex", url.Values{"model": {"ps1"}, "firmware_version": {"1.4.2"}, "chip": {"esp32"}}, func(d *crashdump.Dump) bool {
			return d.ModelCode == "ps1" && d.FirmwareVersion == "1.4.2" && d.Chip == "esp32"
		}},
		{"OKWindow", url.Values{"since": {since.Format(time.RFC3339Nano)}, "until": {until.Format(time.RFC3339)}}, func(d *crashdump.Dump) bool {
			return !d.UploadedAt.Before(since) && !d.UploadedAt.After(until.Truncate(time.Second))
		}},
		{"OKWindowAndFilters", url.Values{"since": {since.Format(time.RFC3339)}, "chip": {"esp32"}, "parse_status": {"PARSED"}}, func(d *crashdump.Dump) bool {
			return !d.UploadedAt.Before(since.Truncate(time.Second)) && d.Chip == "esp32" && d.ParseStatus == crashdump.StatusParsed
		}},
		{"OKNothing", url.Values{"chip": {"esp32p4"}}, func(d *crashdump.Dump) bool { return false }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := url.Values{"limit": {"7"}}
			for k, v := range tt.query {
				q[k] = v
			}
			ids, _ := e.pages(t, "/api/coredumps", q)
			sameIDs(t, ids, newestFirst(dumps, tt.keep))
		})
	}
	for _, tt := range []struct {
		name  string
		query url.Values
	}{
		{"ErrChip", url.Values{"chip": {"esp8266"}}},
		{"ErrModel", url.Values{"model": {"PS1"}}},
		{"ErrFirmwareVersion", url.Values{"firmware_version": {"1.0 beta"}}},
		{"ErrSince", url.Values{"since": {"yesterday"}}},
		{"ErrUntil", url.Values{"until": {"2026-12-01"}}},
		{"ErrSinceAfterUntil", url.Values{"since": {"2026-12-02T00:00:00Z"}, "until": {"2026-12-01T00:00:00Z"}}},
		{"ErrWindowTooLong", url.Values{"since": {"2020-01-01T00:00:00Z"}, "until": {"2022-01-01T00:00:00Z"}}},
		{"ErrLimit", url.Values{"limit": {"-1"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.call(t, "GET", "/api/coredumps", tt.query, asAdmin)
			if got, want := resp.StatusCode, 400; got != want {
				t.Errorf("status: got %d, want %d (%s)", got, want, body)
			}
		})
	}
}

func TestAdmin_FleetLongWindow(t *testing.T) {
	e := newAdminEnv(t)
	e.svc.RetentionDays = 60
	now := time.Now()
	dumps := []crashdump.Dump{
		newDump("abcd1234", now.Add(-time.Hour)),
		newDump("abcd1234", now.Add(-45*24*time.Hour)),
		newDump("other9", now.Add(-59*24*time.Hour)),
	}
	e.seed(t, dumps, false)

	t.Run("OK", func(t *testing.T) {
		ids, pages := e.pages(t, "/api/coredumps", url.Values{"limit": {"10"}})
		sameIDs(t, ids, newestFirst(dumps, nil))
		// 61 days of retention and 31 days per page at most.
		if got, want := pages, 2; got != want {
			t.Errorf("pages: got %d, want %d", got, want)
		}
	})
	t.Run("OKFirmwareIndexInOnePage", func(t *testing.T) {
		ids, pages := e.pages(t, "/api/coredumps", url.Values{"model": {"ps1"}, "firmware_version": {"1.4.2"}})
		sameIDs(t, ids, newestFirst(dumps, nil))
		if got, want := pages, 1; got != want {
			t.Errorf("pages: got %d, want %d", got, want)
		}
	})
}

func TestAdmin_Get(t *testing.T) {
	e := newAdminEnv(t)
	now := time.Now()
	inline, stored, mine := newDump("abcd1234", now), newDump("abcd1234", now.Add(time.Millisecond)), newDump("abcd1234", now.Add(2*time.Millisecond))
	inline.ParseStatus, inline.Output = crashdump.StatusParsed, "Guru Meditation Error: Core 0 panic'ed"
	inline.ParsedAt, inline.Parser, inline.Signature = now.Add(time.Second), "builtin", "c0ffee"
	stored.ParseStatus, stored.OutputKey = crashdump.StatusParsed, parse.OutputKey("abcd1234", stored.ID)
	e.seed(t, []crashdump.Dump{inline, stored, mine, newDump("other9", now)}, false)
	longOutput := strings.Repeat("backtrace line\n", 10000)
	if _, err := e.s3.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: &e.res.Bucket, Key: &stored.OutputKey, Body: strings.NewReader(longOutput),
	}); err != nil {
		t.Fatal(err)
	}
	get := func(t *testing.T, path string) (int, crashdump.Dump, []byte) {
		resp, body := e.call(t, "GET", path, nil, asAdmin)
		var d crashdump.Dump
		json.Unmarshal(body, &d)
		return resp.StatusCode, d, body
	}

	t.Run("OKInline", func(t *testing.T) {
		status, d, body := get(t, dumpPath(&inline))
		if status != 200 || d.Output != inline.Output || d.Signature != "c0ffee" || d.SHA256 != inline.SHA256 {
			t.Errorf("got %d %s, want 200 with the whole record", status, body)
		}
	})
	t.Run("OKOutputFromS3", func(t *testing.T) {
		status, d, _ := get(t, dumpPath(&stored))
		if status != 200 || d.Output != longOutput {
			t.Errorf("got %d with %d bytes of output, want 200 with %d", status, len(d.Output), len(longOutput))
		}
	})
	missing := mine
	missing.ID = crashdump.NewID(now.Add(time.Hour))
	_, _, notFound := get(t, dumpPath(&missing))
	for _, tt := range []struct {
		name, path string
	}{
		{"ErrMissing", dumpPath(&missing)},
		{"ErrOtherDevice", "/api/devices/other9/coredumps/" + mine.ID},
		{"ErrMalformedID", "/api/devices/abcd1234/coredumps/01ABC"},
		{"ErrLowercaseID", "/api/devices/abcd1234/coredumps/" + strings.ToLower(mine.ID)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, _, body := get(t, tt.path)
			if status != 404 {
				t.Errorf("status: got %d, want 404", status)
			}
			if !bytes.Equal(body, notFound) {
				t.Errorf("body: got %s, want the same as for a missing dump: %s", body, notFound)
			}
		})
	}
}

func TestAdmin_Download(t *testing.T) {
	e := newAdminEnv(t)
	d := newDump("abcd1234", time.Now())
	e.seed(t, []crashdump.Dump{d, newDump("other9", time.Now())}, true)

	t.Run("OK", func(t *testing.T) {
		resp, _ := e.call(t, "GET", dumpPath(&d, "/download"), nil, asAdmin)
		if got, want := resp.StatusCode, 302; got != want {
			t.Fatalf("status: got %d, want %d", got, want)
		}
		loc, err := url.Parse(resp.Headers["Location"])
		if err != nil {
			t.Fatal(err)
		}
		q := loc.Query()
		if exp, err := strconv.Atoi(q.Get("X-Amz-Expires")); err != nil || exp < 1 || exp > 300 {
			t.Errorf("X-Amz-Expires: got %q, want 1 to 300 seconds", q.Get("X-Amz-Expires"))
		}
		wantName := `attachment; filename="abcd1234-` + d.ID + `.dmp"`
		if got := q.Get("response-content-disposition"); got != wantName {
			t.Errorf("content disposition: got %q, want %q", got, wantName)
		}
		if q.Get("X-Amz-Signature") == "" {
			t.Errorf("the URL is not signed: %s", loc)
		}
		if ip := net.ParseIP(loc.Hostname()); loc.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
			t.Fatalf("the presigned URL leaves the machine: %s", loc)
		}
		// Follow the redirect the way a browser would, without the
		// SDK. The emulator does not check signatures.
		got, err := http.Get(loc.String())
		if err != nil {
			t.Fatal(err)
		}
		defer got.Body.Close()
		b, _ := io.ReadAll(got.Body)
		if got.StatusCode != 200 || !bytes.Equal(b, dumpBytes(d.ID)) {
			t.Errorf("download: got %d %q, want 200 %q", got.StatusCode, b, dumpBytes(d.ID))
		}
		if cd := got.Header.Get("Content-Disposition"); cd != "" && cd != wantName {
			t.Errorf("Content-Disposition: got %q, want %q", cd, wantName)
		}
	})
	t.Run("ErrOtherDevice", func(t *testing.T) {
		resp, body := e.call(t, "GET", "/api/devices/other9/coredumps/"+d.ID+"/download", nil, asAdmin)
		if resp.StatusCode != 404 || resp.Headers["Location"] != "" {
			t.Errorf("got %d %v %s, want 404 without a location", resp.StatusCode, resp.Headers, body)
		}
	})
}

func TestAdmin_Delete(t *testing.T) {
	e := newAdminEnv(t)
	d, keep := newDump("abcd1234", time.Now()), newDump("abcd1234", time.Now().Add(time.Millisecond))
	d.OutputKey = parse.OutputKey(d.DeviceKey, d.ID)
	e.seed(t, []crashdump.Dump{d, keep}, true)
	if _, err := e.s3.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: &e.res.Bucket, Key: &d.OutputKey, Body: strings.NewReader("report"),
	}); err != nil {
		t.Fatal(err)
	}

	t.Run("ErrOtherDevice", func(t *testing.T) {
		resp, _ := e.call(t, "DELETE", "/api/devices/other9/coredumps/"+d.ID, nil, asAdmin)
		if got, want := resp.StatusCode, 404; got != want {
			t.Errorf("status: got %d, want %d", got, want)
		}
	})
	t.Run("OK", func(t *testing.T) {
		resp, body := e.call(t, "DELETE", dumpPath(&d), nil, asAdmin)
		if got, want := resp.StatusCode, 204; got != want {
			t.Fatalf("status: got %d, want %d (%s)", got, want, body)
		}
		if got := e.partition(t, "DEV#abcd1234"); len(got) != 2 || !strings.Contains(strings.Join(got, " "), keep.ID) {
			t.Errorf("items left: got %v, want the other dump and its marker", got)
		}
		for key, want := range map[string]bool{d.ObjectKey(): false, d.OutputKey: false, keep.ObjectKey(): true} {
			if got := e.exists(t, key); got != want {
				t.Errorf("object %s exists: got %v, want %v", key, got, want)
			}
		}
	})
	t.Run("ErrGone", func(t *testing.T) {
		resp, _ := e.call(t, "DELETE", dumpPath(&d), nil, asAdmin)
		if got, want := resp.StatusCode, 404; got != want {
			t.Errorf("status: got %d, want %d", got, want)
		}
	})
}

func TestAdmin_DeleteAll(t *testing.T) {
	e := newAdminEnv(t)
	ctx := context.Background()
	// A few real uploads leave rate counters behind.
	up := &upload.Service{
		Store: e.store, Objects: e.objects, Logger: telemetry.NewLogger(io.Discard, nil),
		Limits: upload.Limits{MaxBytes: 1 << 20, MaxPerHour: 100, MaxPerDevice: 10000},
	}
	for i := range 3 {
		dev := crashdump.Device{ModelCode: "ps1", Key: "abcd1234"}
		if _, err := up.Upload(ctx, upload.Request{Device: dev, Chip: "esp32", FirmwareVersion: "1.0", Body: []byte(fmt.Sprint("real ", i))}); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now().Add(-48 * time.Hour)
	var dumps []crashdump.Dump
	for i := range 1200 {
		d := newDump("abcd1234", start.Add(time.Duration(i)*time.Second))
		if i%100 == 0 {
			d.OutputKey = parse.OutputKey(d.DeviceKey, d.ID)
		}
		dumps = append(dumps, d)
	}
	other := newDump("other9", start)
	e.seed(t, append(dumps, other), true)
	for _, d := range dumps {
		if d.OutputKey != "" {
			e.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: &e.res.Bucket, Key: &d.OutputKey, Body: strings.NewReader("report")})
		}
	}
	if got := len(e.partition(t, "DEV#abcd1234")); got < 2406 {
		t.Fatalf("seeded items: got %d, want at least 2406", got)
	}
	e.batches.writeItems.Store(0)
	e.batches.writeCalls.Store(0)
	e.batches.deleteObjects.Store(0)
	e.batches.deleteCalls.Store(0)

	resp, body := e.call(t, "DELETE", "/api/devices/abcd1234/coredumps", nil, asAdmin)
	if got, want := resp.StatusCode, 204; got != want {
		t.Fatalf("status: got %d, want %d (%s)", got, want, body)
	}
	if got := e.partition(t, "DEV#abcd1234"); len(got) != 0 {
		t.Errorf("items left in the device's partition: got %d, want 0 (first %s)", len(got), got[0])
	}
	registry := "DEVICES#" + strconv.Itoa(crashdump.DeviceShard("abcd1234"))
	for _, sk := range e.partition(t, registry) {
		if sk == "abcd1234" {
			t.Errorf("the registry entry is left")
		}
	}
	if got := e.countObjects(t, crashdump.DumpPrefix+"abcd1234/") + e.countObjects(t, "parsed/abcd1234/"); got != 0 {
		t.Errorf("objects left: got %d, want 0", got)
	}
	if got := e.countObjects(t, other.ObjectKey()); got != 1 || len(e.partition(t, "DEV#other9")) != 2 {
		t.Errorf("the other device lost data")
	}
	if got, max := e.batches.writeItems.Load(), int64(25); got > max || got == 0 {
		t.Errorf("largest BatchWriteItem: got %d requests, want 1 to %d", got, max)
	}
	// 1,203 records and their markers in 97 batches, then the rate
	// counter and the registry entry in one.
	if got, want := e.batches.writeCalls.Load(), int64(98); got != want {
		t.Errorf("BatchWriteItem calls: got %d, want %d", got, want)
	}
	// 1,203 dumps and 12 outputs: two DeleteObjects calls.
	if got, max := e.batches.deleteObjects.Load(), int64(1000); got > max {
		t.Errorf("largest DeleteObjects: got %d keys, want at most %d", got, max)
	}
	if got, want := e.batches.deleteCalls.Load(), int64(2); got != want {
		t.Errorf("DeleteObjects calls: got %d, want %d", got, want)
	}
	if !strings.Contains(e.logs.String(), `"deleted":1203`) {
		t.Errorf("the log line does not count the deleted dumps")
	}

	t.Run("OKAgain", func(t *testing.T) {
		resp, _ := e.call(t, "DELETE", "/api/devices/abcd1234/coredumps", nil, asAdmin)
		if got, want := resp.StatusCode, 204; got != want {
			t.Errorf("status: got %d, want %d", got, want)
		}
	})
	t.Run("ErrDeviceKey", func(t *testing.T) {
		resp, _ := e.call(t, "DELETE", "/api/devices/ab%23cd/coredumps", nil, asAdmin)
		if got, want := resp.StatusCode, 400; got != want {
			t.Errorf("status: got %d, want %d", got, want)
		}
	})
}

func TestAdmin_Reparse(t *testing.T) {
	e := newAdminEnv(t)
	now := time.Now()
	failed, parsing, stale := newDump("abcd1234", now), newDump("abcd1234", now.Add(time.Millisecond)), newDump("abcd1234", now.Add(2*time.Millisecond))
	failed.ParseStatus, failed.ParseError = crashdump.StatusError, "no firmware"
	parsing.ParseStatus, parsing.LeaseUntil = crashdump.StatusParsing, now.Add(10*time.Minute)
	stale.ParseStatus, stale.LeaseUntil = crashdump.StatusParsing, now.Add(-time.Minute)
	e.seed(t, []crashdump.Dump{failed, parsing, stale}, false)

	t.Run("OK", func(t *testing.T) {
		resp, body := e.call(t, "POST", dumpPath(&failed, "/reparse"), nil, asAdmin)
		if got, want := resp.StatusCode, 202; got != want {
			t.Fatalf("status: got %d, want %d (%s)", got, want, body)
		}
		d, err := e.store.GetDump(context.Background(), failed.DeviceKey, failed.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d.ParseStatus != crashdump.StatusPending || d.ParseError != "" {
			t.Errorf("record: got %s %q, want PENDING without the error", d.ParseStatus, d.ParseError)
		}
		msgs := e.reparseMessages(t)
		want := parse.Message{Type: parse.MessageTypeReparse, DeviceKey: failed.DeviceKey, ID: failed.ID, Reason: "admin re-parse"}
		if len(msgs) != 1 || msgs[0] != want {
			t.Errorf("queue: got %+v, want %+v", msgs, want)
		}
	})
	t.Run("OKStaleLease", func(t *testing.T) {
		resp, _ := e.call(t, "POST", dumpPath(&stale, "/reparse"), nil, asAdmin)
		if got, want := resp.StatusCode, 202; got != want {
			t.Errorf("status: got %d, want %d", got, want)
		}
		e.reparseMessages(t)
	})
	t.Run("ErrLeaseHeld", func(t *testing.T) {
		resp, body := e.call(t, "POST", dumpPath(&parsing, "/reparse"), nil, asAdmin)
		if got, want := resp.StatusCode, 409; got != want {
			t.Errorf("status: got %d, want %d (%s)", got, want, body)
		}
		if msgs := e.reparseMessages(t); len(msgs) != 0 {
			t.Errorf("queued during a lease: %+v", msgs)
		}
		if d, _ := e.store.GetDump(context.Background(), parsing.DeviceKey, parsing.ID); d.ParseStatus != crashdump.StatusParsing {
			t.Errorf("status: got %s, want PARSING", d.ParseStatus)
		}
	})
	t.Run("ErrOtherDevice", func(t *testing.T) {
		resp, _ := e.call(t, "POST", "/api/devices/other9/coredumps/"+failed.ID+"/reparse", nil, asAdmin)
		if got, want := resp.StatusCode, 404; got != want {
			t.Errorf("status: got %d, want %d", got, want)
		}
	})
}

func TestAdmin_OpenAPI(t *testing.T) {
	e := newAdminEnv(t)
	resp, body := e.call(t, "GET", "/api/openapi.json", nil, asAdmin)
	if resp.StatusCode != 200 || resp.Headers["Content-Type"] != "application/json" {
		t.Fatalf("got %d %v", resp.StatusCode, resp.Headers)
	}
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	if got, want := doc.OpenAPI, "3.1.0"; got != want {
		t.Errorf("openapi: got %q, want %q", got, want)
	}
	for _, route := range []string{
		"POST /iot/coredump",
		"GET /api/devices/{device_key}/coredumps",
		"DELETE /api/devices/{device_key}/coredumps",
		"GET /api/devices/{device_key}/coredumps/{id}",
		"DELETE /api/devices/{device_key}/coredumps/{id}",
		"GET /api/devices/{device_key}/coredumps/{id}/download",
		"POST /api/devices/{device_key}/coredumps/{id}/reparse",
		"GET /api/coredumps",
		"POST /api/retention",
		"GET /api/openapi.json",
	} {
		method, path, _ := strings.Cut(route, " ")
		if _, ok := doc.Paths[path][strings.ToLower(method)]; !ok {
			t.Errorf("the document lacks %s", route)
		}
	}
}

// TestOpenAPI_Validate shows that the check every handler test makes does
// reject responses the document does not describe.
func TestOpenAPI_Validate(t *testing.T) {
	list := adminEvent(t, "GET", "/api/devices/abcd1234/coredumps", nil, asAdmin)
	jsonType := map[string]string{"Content-Type": "application/json"}
	tests := []struct {
		name   string
		ev     events.APIGatewayV2HTTPRequest
		status int
		header map[string]string
		body   string
		ok     bool
	}{
		{"OK", list, 200, jsonType, `{"items":[]}`, true},
		{"OKError", list, 403, jsonType, `{"code":"forbidden","message":"no"}`, true},
		{"ErrUndocumentedStatus", list, 418, jsonType, `{"code":"internal","message":"tea"}`, false},
		{"ErrSummaryWithOutput", list, 200, jsonType, `{"items":[{"id":"01M8Y0ZVCPCMW7RY8A3HHCMTX6","device_key":"a","model_code":"m","chip":"esp32","firmware_version":"1","size":1,"sha256":"` + strings.Repeat("a", 64) + `","uploaded_at":"2026-12-03T10:00:00Z","parse_status":"PENDING","output":"x"}]}`, false},
		{"ErrExtraField", list, 200, jsonType, `{"items":[],"cursor":"x"}`, false},
		{"ErrBadStatusValue", list, 200, jsonType, `{"items":[{"id":"01M8Y0ZVCPCMW7RY8A3HHCMTX6","device_key":"a","model_code":"m","chip":"esp32","firmware_version":"1","size":1,"sha256":"` + strings.Repeat("a", 64) + `","uploaded_at":"2026-12-03T10:00:00Z","parse_status":"DONE"}]}`, false},
		{"ErrErrorCode", list, 400, jsonType, `{"code":"oops","message":"x"}`, false},
		{"ErrNoLocation", adminEvent(t, "GET", "/api/devices/a/coredumps/01M8Y0ZVCPCMW7RY8A3HHCMTX6/download", nil, asAdmin), 302, nil, "", false},
		{"ErrUnknownRoute", adminEvent(t, "GET", "/api/nothing", nil, asAdmin), 404, jsonType, `{"code":"not_found","message":"x"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := events.APIGatewayV2HTTPResponse{StatusCode: tt.status, Headers: tt.header, Body: tt.body}
			err := validateOpenAPI(tt.ev, resp, []byte(tt.body))
			if got, want := err == nil, tt.ok; got != want {
				t.Errorf("valid: got %v (%v), want %v", got, err, want)
			}
		})
	}
}

// partition returns the sort keys of every item under pk.
func (e *adminEnv) partition(t testing.TB, pk string) []string {
	t.Helper()
	var sks []string
	p := dynamodb.NewQueryPaginator(e.db, &dynamodb.QueryInput{
		TableName:                 &e.res.Table,
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: pk}},
		ConsistentRead:            aws.Bool(true),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, item := range page.Items {
			sks = append(sks, item["sk"].(*types.AttributeValueMemberS).Value)
		}
	}
	return sks
}

func (e *adminEnv) exists(t testing.TB, key string) bool {
	t.Helper()
	ok, err := e.objects.Exists(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func (e *adminEnv) countObjects(t testing.TB, prefix string) int {
	t.Helper()
	n := 0
	p := s3.NewListObjectsV2Paginator(e.s3, &s3.ListObjectsV2Input{Bucket: &e.res.Bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.Contents)
	}
	return n
}

// reparseMessages drains the parse queue and returns the project's own
// messages in it (the S3 notifications of seeded objects are dropped).
func (e *adminEnv) reparseMessages(t testing.TB) []parse.Message {
	t.Helper()
	ctx := context.Background()
	var msgs []parse.Message
	for {
		out, err := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &e.res.QueueURL, MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			return msgs
		}
		for _, m := range out.Messages {
			var msg parse.Message
			if json.Unmarshal([]byte(aws.ToString(m.Body)), &msg) == nil && msg.Type == parse.MessageTypeReparse {
				msgs = append(msgs, msg)
			}
			e.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &e.res.QueueURL, ReceiptHandle: m.ReceiptHandle})
		}
	}
}

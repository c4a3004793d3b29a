package httpapi_test

import (
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/espfleet/crashdumps/shared/crashdump"
)

// benchPage serves the first page of a listing b.N times and reports the
// AWS requests each page took, the figure that carries over from the
// emulator to DynamoDB.
func benchPage(b *testing.B, e *adminEnv, path string, q url.Values) {
	b.Helper()
	ev := adminEvent(b, "GET", path, q, asAdmin)
	e.requests.Store(0)
	b.ResetTimer()
	for b.Loop() {
		resp, err := e.handler(b.Context(), ev)
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("got %d, %v", resp.StatusCode, err)
		}
	}
	b.ReportMetric(float64(e.requests.Load())/float64(b.N), "requests/page")
}

// BenchmarkAdmin_ListPage lists the first page of 20 of a device with 250
// dumps.
func BenchmarkAdmin_ListPage(b *testing.B) {
	e := newAdminEnv(b)
	now := time.Now()
	var dumps []crashdump.Dump
	for i := range 250 {
		dumps = append(dumps, newDump("abcd1234", now.Add(-time.Duration(i)*time.Minute)))
	}
	e.seed(b, dumps, false)
	benchPage(b, e, "/api/devices/abcd1234/coredumps", url.Values{"limit": {"20"}})
}

// BenchmarkAdmin_FleetPage lists the first page of 20 of a fleet of 250
// dumps spread over five days, by the fleet index (all), with a filter
// that only older days match (chip), and by the firmware index
// (model and version).
func BenchmarkAdmin_FleetPage(b *testing.B) {
	e := newAdminEnv(b)
	e.svc.RetentionDays = 7
	now := time.Now()
	var dumps []crashdump.Dump
	for i := range 250 {
		d := newDump("dev"+strconv.Itoa(i%10), now.Add(-time.Duration(i)*29*time.Minute))
		if i >= 200 {
			d.Chip = "esp32s3"
		}
		dumps = append(dumps, d)
	}
	e.seed(b, dumps, false)
	for _, bb := range []struct {
		name  string
		query url.Values
	}{
		{"All", url.Values{"limit": {"20"}}},
		{"OldChip", url.Values{"limit": {"20"}, "chip": {"esp32s3"}}},
		{"Firmware", url.Values{"limit": {"20"}, "model": {"ps1"}, "firmware_version": {"1.4.2"}}},
	} {
		b.Run(bb.name, func(b *testing.B) { benchPage(b, e, "/api/coredumps", bb.query) })
	}
}

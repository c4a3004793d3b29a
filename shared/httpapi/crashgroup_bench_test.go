package httpapi_test

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/espfleet/crashdumps/shared/crashgroup"
)

// seedGroups records n groups of one dump each, an hour apart, alternating
// between two chips.
func seedGroups(b *testing.B, e *groupEnv, n int) {
	b.Helper()
	t0 := time.Now().UTC().Truncate(time.Millisecond).Add(-time.Duration(n) * time.Hour)
	for i := range n {
		d := newDump("dev01", t0.Add(time.Duration(i)*time.Hour))
		d.Chip = []string{"esp32", "esp32c3"}[i%2]
		d.Signature, d.TopFrame = fmt.Sprintf("bench%04d", i), "app_main"
		if err := (&crashgroup.Recorder{Store: e.store}).RecordParsed(b.Context(), &d, "abort() was called"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCrashGroups_ListPage lists the first page of 20 of 200 groups,
// all of them and with a chip filter that half match, and reports the AWS
// requests per page: one query per shard of the groups index.
func BenchmarkCrashGroups_ListPage(b *testing.B) {
	e := newGroupEnv(b)
	seedGroups(b, e, 200)
	for _, bb := range []struct {
		name  string
		query url.Values
	}{
		{"All", url.Values{"limit": {"20"}}},
		{"Chip", url.Values{"limit": {"20"}, "chip": {"esp32c3"}}},
	} {
		b.Run(bb.name, func(b *testing.B) { benchPage(b, e.adminEnv, "/api/crash-groups", bb.query) })
	}
}

// BenchmarkCrashGroups_Record counts one new dump of a known device in an
// existing group per iteration and reports the AWS requests it takes.
func BenchmarkCrashGroups_Record(b *testing.B) {
	e := newGroupEnv(b)
	seedGroups(b, e, 1)
	rec := &crashgroup.Recorder{Store: e.store}
	t0 := time.Now().UTC()
	i := 0
	e.requests.Store(0)
	b.ResetTimer()
	for b.Loop() {
		i++
		d := newDump("dev01", t0.Add(time.Duration(i)*time.Millisecond))
		d.Signature, d.TopFrame = "bench0000", "app_main"
		if err := rec.RecordParsed(b.Context(), &d, "abort() was called"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(e.requests.Load())/float64(b.N), "requests/dump")
}

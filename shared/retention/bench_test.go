package retention_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/espfleet/crashdumps/shared/crashdump"
	"github.com/espfleet/crashdumps/shared/retention"
)

// seedFleet writes perDevice dumps with objects for each of devices
// devices, records in concurrent batches of 25 and objects with
// concurrent puts.
func seedFleet(b *testing.B, e *env, devices, perDevice int) {
	b.Helper()
	start := time.Now()
	groups := make([][]crashdump.Dump, devices)
	for d := range devices {
		for i := range perDevice {
			age := time.Duration(perDevice-i) * time.Hour
			groups[d] = append(groups[d], dump(fmt.Sprintf("bench%04d", d), age, crashdump.StatusParsed))
		}
	}
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	errs := make([]error, len(groups))
	for i, g := range groups {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = e.trySeed(g, g)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d dumps of %d devices in %s", devices*perDevice, devices, time.Since(start).Round(time.Millisecond))
}

// BenchmarkSweeper_Sweep sweeps 10,000 dumps of 500 devices (20 each) with
// a cap of 18: the dry run and the first sweep each judge every dump and
// the first sweep deletes 1,000; the second finds nothing left to do. The
// deadline is that of a 15-minute Lambda invocation less the margin; the
// "complete" metric says whether the sweep finished within it. Run it with
// -benchtime 1x: each sub-benchmark depends on the state the one before
// left.
func BenchmarkSweeper_Sweep(b *testing.B) {
	devices, perDevice := benchFleet()
	rules := retention.DefaultRules(18, 90)
	e := newEnv(b, rules)
	seedFleet(b, e, devices, perDevice)
	for _, tt := range []struct {
		name string
		opts retention.Options
	}{
		{"DryRun", retention.Options{DryRun: true}},
		{"First", retention.Options{}},
		{"Second", retention.Options{}},
	} {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			var rep *retention.Report
			e.requests.Store(0)
			for b.Loop() {
				opts := tt.opts
				opts.Deadline = time.Now().Add(15*time.Minute - 30*time.Second)
				var err error
				if rep, err = e.sweeper.Sweep(context.Background(), opts); err != nil {
					b.Fatal(err)
				}
			}
			complete := 0.0
			if rep.Complete {
				complete = 1
			}
			b.ReportMetric(complete, "complete")
			b.ReportMetric(float64(rep.DumpsSeen), "dumps")
			b.ReportMetric(float64(rep.Devices), "devices")
			b.ReportMetric(float64(rep.DeletedOverCap), "deleted")
			b.ReportMetric(float64(rep.Errors), "errors")
			b.ReportMetric(float64(e.requests.Load())/float64(b.N), "requests/op")
		})
	}
}

// benchFleet is the size of the benchmark's fleet: 500 devices of 20 dumps,
// or what RETENTION_BENCH_DEVICES asks for, to try a smaller one.
func benchFleet() (devices, perDevice int) {
	devices = 500
	if n, err := strconv.Atoi(os.Getenv("RETENTION_BENCH_DEVICES")); err == nil && n > 0 {
		devices = n
	}
	return devices, 20
}

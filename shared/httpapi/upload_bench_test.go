package httpapi_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"testing"

	"github.com/espfleet/crashdumps/shared/upload"
)

// BenchmarkUpload measures one new upload through the Lambda adapter, the
// handler, the upload rules and the SDK against the emulator. Time per op
// is mostly the emulator's; the memory figures are the function's own.
// Each iteration is a new device and new bytes, so every op is a new dump
// under the cap (the happy path). "alloc/dump" is bytes allocated per op
// divided by the dump's size.
func BenchmarkUpload(b *testing.B) {
	for _, size := range []int{64 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			e := newUploadEnv(b, upload.Limits{MaxBytes: 1 << 20, MaxPerHour: 10, MaxPerDevice: 20})
			dump := make([]byte, size)
			for i := range dump {
				dump[i] = byte(i * 7)
			}
			ctx := context.Background()
			var before, after runtime.MemStats
			var allocated uint64
			b.ReportAllocs()
			b.SetBytes(int64(size))
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				binary.BigEndian.PutUint64(dump, uint64(i))
				ev := uploadEvent(b, validQuery(), dump, fmt.Sprintf("iotdevice-ps1-bench%d", i))
				runtime.ReadMemStats(&before)
				b.StartTimer()
				resp, err := e.handler(ctx, ev)
				b.StopTimer()
				runtime.ReadMemStats(&after)
				allocated += after.TotalAlloc - before.TotalAlloc
				if err != nil || resp.StatusCode != 201 {
					b.Fatalf("upload %d: %v %d %s", i, err, resp.StatusCode, resp.Body)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(allocated)/float64(b.N)/float64(size), "alloc/dump")
		})
	}
}

package parse_test

import (
	"archive/zip"
	"bytes"
	"context"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/espfleet/crashdumps/shared/crashdump"
	"github.com/espfleet/crashdumps/shared/parse"
)

// Benchmark firmware: a 50 MiB ZIP of incompressible filler entries,
// stored, with a 4 MiB ELF deflated and stored last.
const (
	benchZIPSize   = 50 << 20
	benchELFSize   = 4 << 20
	benchFillers   = 23
	benchReadSlack = 256 << 10 // the goal: ELF compressed size plus this
)

// benchELF is 4 MiB that deflate shrinks by about half, like code: random
// bytes from a small alphabet.
func benchELF() []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, benchELFSize)
	copy(b, "\x7fELF")
	for i := 4; i < len(b); i++ {
		b[i] = byte(r.IntN(16)) * 17
	}
	return b
}

// benchZIP builds the archive and returns it with the ELF's compressed
// size.
func benchZIP(b *testing.B, elf []byte) ([]byte, int64) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	fill := (benchZIPSize - benchELFSize) / benchFillers
	for i := range benchFillers {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: "assets/blob" + strconv.Itoa(i) + ".bin", Method: zip.Store})
		if err != nil {
			b.Fatal(err)
		}
		w.Write(randomBytes(fill))
	}
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "ps1.elf", Method: zip.Deflate})
	if err != nil {
		b.Fatal(err)
	}
	w.Write(elf)
	if err := zw.Close(); err != nil {
		b.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		b.Fatal(err)
	}
	last := zr.File[len(zr.File)-1]
	return buf.Bytes(), int64(last.CompressedSize64)
}

// benchSetup stores the firmware and returns an env whose parser checks
// nothing, and a function making n fresh PENDING dumps.
func benchSetup(b *testing.B) (*env, func(n int) []*crashdump.Dump, int64) {
	p := &fakeParser{output: "report"}
	e := newEnv(b, p)
	elf := benchELF()
	z, compressed := benchZIP(b, elf)
	e.putObject(b, zipKey, z)
	dumps := func(n int) []*crashdump.Dump {
		ds := make([]*crashdump.Dump, n)
		for i := range ds {
			ds[i] = e.newDump("esp32", model, version, []byte("dump"))
			if err := e.store.CreateDump(context.Background(), ds[i], 1<<30); err != nil {
				b.Fatal(err)
			}
		}
		return ds
	}
	b.Logf("firmware ZIP %d bytes, ELF %d bytes, %d compressed", len(z), len(elf), compressed)
	return e, dumps, compressed
}

// BenchmarkParseDump_ColdFirmware parses one dump with an empty ELF cache:
// the ZIP's central directory and the ELF's compressed bytes are all that
// is read from S3.
func BenchmarkParseDump_ColdFirmware(b *testing.B) {
	e, dumps, compressed := benchSetup(b)
	ds := dumps(b.N)
	ctx := context.Background()
	var read, gets int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		e.svc.Firmware.Cache = &parse.ELFCache{Dir: b.TempDir(), MaxBytes: 64 << 20}
		before, beforeGets := e.archives.BytesRead(), e.archives.Requests()
		b.StartTimer()
		if err := e.svc.ParseDump(ctx, ds[i].DeviceKey, ds[i].ID); err != nil {
			b.Fatal(err)
		}
		read += e.archives.BytesRead() - before
		gets += e.archives.Requests() - beforeGets
	}
	b.StopTimer()
	perOp := float64(read) / float64(b.N)
	b.ReportMetric(perOp, "s3_bytes/op")
	b.ReportMetric(float64(gets)/float64(b.N), "s3_gets/op")
	b.ReportMetric(perOp-float64(compressed), "overhead_bytes/op")
	b.ReportMetric(float64(compressed), "elf_compressed_bytes")
	if perOp > float64(compressed+benchReadSlack) {
		b.Errorf("read %.0f bytes per parse, over the budget of %d", perOp, compressed+benchReadSlack)
	}
	if got := e.get(b, ds[0]); got.ParseStatus != crashdump.StatusParsed {
		b.Errorf("got %s, want PARSED", got.ParseStatus)
	}
}

// BenchmarkParseDump_WarmFirmware parses further dumps of a build that a
// warm handler has extracted already: no firmware byte is read again.
func BenchmarkParseDump_WarmFirmware(b *testing.B) {
	e, dumps, _ := benchSetup(b)
	ds := dumps(b.N + 1)
	ctx := context.Background()
	if err := e.svc.ParseDump(ctx, ds[0].DeviceKey, ds[0].ID); err != nil {
		b.Fatal(err)
	}
	before, beforeGets := e.archives.BytesRead(), e.archives.Requests()
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		if err := e.svc.ParseDump(ctx, ds[i].DeviceKey, ds[i].ID); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(e.archives.BytesRead()-before)/float64(b.N), "s3_bytes/op")
	b.ReportMetric(float64(e.archives.Requests()-beforeGets)/float64(b.N), "s3_gets/op")
	if n := e.archives.BytesRead() - before; n != 0 {
		b.Errorf("read %d firmware bytes for warm parses, want 0", n)
	}
}

package parse_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/espfleet/crashdumps/shared/crashdump"
	"github.com/espfleet/crashdumps/shared/parse"
)

// memArchives is a hand-written parse.Archives over bytes in memory, for
// fuzzing the ZIP handling without the emulator.
type memArchives map[string][]byte

func (m memArchives) OpenArchive(_ context.Context, key string) (parse.Archive, error) {
	b, ok := m[key]
	if !ok {
		return nil, crashdump.ErrNotFound
	}
	return &memArchive{bytes.NewReader(b)}, nil
}

type memArchive struct{ *bytes.Reader }

func (a *memArchive) ETag() string { return `"mem"` }
func (a *memArchive) Err() error   { return nil }
func (a *memArchive) ReadRange(_ context.Context, off, n int64) (io.ReadCloser, error) {
	return io.NopCloser(io.NewSectionReader(a.Reader, off, n)), nil
}

var _ parse.Archives = memArchives(nil)

func memFirmware(t testing.TB, z []byte) *parse.Firmware {
	return memFirmwareIn(t.TempDir(), z)
}

func memFirmwareIn(dir string, z []byte) *parse.Firmware {
	zipKey, _ := parse.NewTemplate(parse.DefaultFirmwareZIPKey, true)
	elfName, _ := parse.NewTemplate(parse.DefaultFirmwareELFName, false)
	return &parse.Firmware{
		Archives: memArchives{"firmware/ps1/1.0.zip": z},
		ZIPKey:   zipKey,
		ELFName:  elfName,
		Cache:    &parse.ELFCache{Dir: dir, MaxBytes: 1 << 20},
	}
}

func TestFirmware_Find(t *testing.T) {
	ctx := context.Background()
	t.Run("OKNestedEntry", func(t *testing.T) {
		f := memFirmware(t, makeZIP(t, zipFile{name: "build/ps1.elf", data: elfBytes}))
		elf, err := f.Find(ctx, "ps1", "1.0")
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(elf.Path); !bytes.Equal(b, elfBytes) {
			t.Errorf("got %q, want %q", b, elfBytes)
		}
	})
	t.Run("ErrAmbiguousNestedEntry", func(t *testing.T) {
		f := memFirmware(t, makeZIP(t,
			zipFile{name: "a/ps1.elf", data: elfBytes}, zipFile{name: "b/ps1.elf", data: elfBytes}))
		var un *parse.UnparseableError
		if _, err := f.Find(ctx, "ps1", "1.0"); !errors.As(err, &un) {
			t.Errorf("got %v, want an *UnparseableError", err)
		}
	})
	t.Run("ErrFirmwareMissing", func(t *testing.T) {
		f := memFirmware(t, nil)
		if _, err := f.Find(ctx, "ps1", "2.0"); !errors.Is(err, parse.ErrFirmwareMissing) {
			t.Errorf("got %v, want ErrFirmwareMissing", err)
		}
	})
}

// FuzzFirmware_Find feeds arbitrary archives to the ZIP handling: it must
// never panic, and with reads that cannot fail, every outcome is an ELF or
// an *UnparseableError (a dump in ERROR), never an error the queue would
// retry forever.
func FuzzFirmware_Find(f *testing.F) {
	f.Add(makeZIP(f, zipFile{name: "ps1.elf", data: elfBytes}))
	f.Add(makeZIP(f, zipFile{name: "ps1.elf", data: elfBytes, stored: true}))
	f.Add(makeZIP(f, zipFile{name: "x.bin", data: []byte("x")}, zipFile{name: "ps1.elf", data: bytes.Repeat(elfBytes, 50)}))
	f.Add([]byte("PK\x05\x06"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, z []byte) {
		// Every input is a new archive ETag-wise: clear the cache.
		os.RemoveAll(dir)
		elf, err := memFirmwareIn(dir, z).Find(context.Background(), "ps1", "1.0")
		var un *parse.UnparseableError
		switch {
		case err == nil:
			if fi, serr := os.Stat(elf.Path); serr != nil || fi.Size() != elf.Size {
				t.Errorf("got ELF %+v (%v), want a file of its size", elf, serr)
			}
		case errors.As(err, &un):
		default:
			t.Errorf("got %v, want an ELF or an *UnparseableError", err)
		}
	})
}

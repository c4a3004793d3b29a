package builtin_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/espfleet/crashdumps/shared/awsconf"
	"github.com/espfleet/crashdumps/shared/awstest"
	"github.com/espfleet/crashdumps/shared/crashdump"
	"github.com/espfleet/crashdumps/shared/espcore/espsynth"
	"github.com/espfleet/crashdumps/shared/parse"
	"github.com/espfleet/crashdumps/shared/parse/builtin"
	"github.com/espfleet/crashdumps/shared/s3store"
)

func TestMain(m *testing.M) { awstest.Main(m) }

var seq int

// job stores dump bytes in a fresh bucket and elf bytes in a file.
func job(t *testing.T, objects *s3store.Objects, chip string, dump, elf []byte, etag string) *parse.Job {
	t.Helper()
	seq++
	now := time.Now().Add(time.Duration(seq) * time.Millisecond)
	d := &crashdump.Dump{ID: crashdump.NewID(now), DeviceKey: "dev" + strconv.Itoa(seq), ModelCode: "ps1",
		Chip: chip, FirmwareVersion: "1.0", UploadedAt: now, ParseStatus: crashdump.StatusParsing}
	if dump != nil {
		if err := objects.PutDump(context.Background(), d, dump); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(t.TempDir(), "ps1.elf")
	if err := os.WriteFile(p, elf, 0o600); err != nil {
		t.Fatal(err)
	}
	return &parse.Job{Dump: d, ELF: &parse.ELF{Path: p, Name: "ps1.elf", Size: int64(len(elf)),
		ArchiveKey: "firmware/ps1/1.0.zip", ArchiveETag: etag}}
}

func TestParser_Parse(t *testing.T) {
	cfg := awstest.Config(t)
	res := awstest.Resources(t)
	objects := &s3store.Objects{Client: s3.NewFromConfig(cfg, awsconf.S3Options()), Bucket: res.Bucket}
	p := &builtin.Parser{Dumps: objects}
	ctx := context.Background()

	for _, chip := range []string{"esp32", "esp32c3"} {
		t.Run("OK"+chip, func(t *testing.T) {
			elf, err := espsynth.Firmware(chip)
			if err != nil {
				t.Fatal(err)
			}
			dump, err := espsynth.Dump(chip, elf)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.Parse(ctx, job(t, objects, chip, dump, elf, `"`+chip+`"`))
			if err != nil {
				t.Fatal(err)
			}
			if got.Signature == "" || got.TopFrame == "" {
				t.Errorf("got signature %q top frame %q, want both", got.Signature, got.TopFrame)
			}
			if want := espsynth.PanicReason(chip); !strings.Contains(got.Output, want) {
				t.Errorf("got output without the panic reason %q:\n%s", want, got.Output)
			}
		})
	}

	unparseable := func(t *testing.T, err error, metric string) {
		t.Helper()
		var un *parse.UnparseableError
		if !errors.As(err, &un) || un.Metric != metric {
			t.Fatalf("got %v, want an *parse.UnparseableError with status %s", err, metric)
		}
	}
	t.Run("ErrDumpOfOtherFirmware", func(t *testing.T) {
		elf, _ := espsynth.Firmware("esp32")
		other, _ := espsynth.Firmware("esp32c3")
		dump, _ := espsynth.Dump("esp32c3", other)
		_, err := p.Parse(ctx, job(t, objects, "esp32", dump, elf, `"esp32"`))
		unparseable(t, err, parse.MetricParseError)
	})
	t.Run("ErrNotAnELF", func(t *testing.T) {
		_, err := p.Parse(ctx, job(t, objects, "esp32", []byte("dump"), []byte("not an ELF"), `"junk"`))
		unparseable(t, err, parse.MetricFirmwareInvalid)
	})
	t.Run("ErrDumpMissing", func(t *testing.T) {
		elf, _ := espsynth.Firmware("esp32")
		_, err := p.Parse(ctx, job(t, objects, "esp32", nil, elf, `"esp32"`))
		unparseable(t, err, parse.MetricParseError)
	})
	t.Run("OKFirmwareKeptWarm", func(t *testing.T) {
		elf, _ := espsynth.Firmware("esp32")
		dump, _ := espsynth.Dump("esp32", elf)
		warm := &builtin.Parser{Dumps: objects}
		j := job(t, objects, "esp32", dump, elf, `"warm"`)
		if _, err := warm.Parse(ctx, j); err != nil {
			t.Fatal(err)
		}
		// The second dump of the build does not read the ELF again.
		os.Remove(j.ELF.Path)
		if _, err := warm.Parse(ctx, j); err != nil {
			t.Errorf("got %v, want the opened firmware reused", err)
		}
	})
}

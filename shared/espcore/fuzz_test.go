package espcore_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/espfleet/crashdumps/shared/espcore"
	"github.com/espfleet/crashdumps/shared/espcore/espsynth"
)

// FuzzDecode feeds arbitrary bytes to Decode against the synthetic
// Xtensa and RISC-V firmware. It is seeded with the synthetic dumps in
// every format (raw and base64), the real dumps when present, and the
// corpus in testdata/fuzz/FuzzDecode. Decode must return a report or an
// error, never panic.
func FuzzDecode(f *testing.F) {
	var fws []*espcore.Firmware
	for _, chip := range []string{"esp32", "esp32c3"} {
		elf, fw := synthFirmware(f, chip)
		fws = append(fws, fw)
		for _, format := range espsynth.Formats {
			d, err := espsynth.DumpFormat(chip, elf, format)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(d)
		}
		d, _ := espsynth.Dump(chip, elf)
		f.Add(espsynth.Base64(d, true))
	}
	if dir, _ := findRealDumps(); dir != "" {
		for _, rd := range realDumps {
			if b, err := os.ReadFile(filepath.Join(dir, rd.Dump)); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, fw := range fws {
			r, err := espcore.Decode(data, fw)
			if err == nil {
				_ = r.Text()
			}
		}
	})
}

// FuzzOpenFirmware feeds arbitrary bytes to OpenFirmware and, when they
// open, decodes a synthetic dump against them.
func FuzzOpenFirmware(f *testing.F) {
	elf, _ := espsynth.Firmware("esp32c3")
	dump, _ := espsynth.Dump("esp32c3", elf)
	f.Add(elf)
	x, _ := espsynth.Firmware("esp32")
	f.Add(x)
	f.Fuzz(func(t *testing.T, data []byte) {
		fw, err := espcore.OpenFirmware(bytes.NewReader(data))
		if err != nil {
			return
		}
		if r, err := espcore.Decode(dump, fw); err == nil {
			_ = r.Text()
		}
	})
}

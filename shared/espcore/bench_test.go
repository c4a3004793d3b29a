package espcore_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/espfleet/crashdumps/shared/espcore"
	"github.com/espfleet/crashdumps/shared/espcore/espsynth"
)

// benchInputs returns the 3.7 MB esp32c3 firmware and its dump, or the
// synthetic ones when the real dumps are absent.
func benchInputs(b *testing.B) (elf, dump []byte) {
	b.Helper()
	if dir, _ := findRealDumps(); dir != "" {
		elf, err := os.ReadFile(filepath.Join(dir, "elf/esp32c3.elf"))
		if err != nil {
			b.Fatal(err)
		}
		dump, err := os.ReadFile(filepath.Join(dir, "esp32c3/coredump.b64"))
		if err != nil {
			b.Fatal(err)
		}
		return elf, dump
	}
	elf, _ = espsynth.Firmware("esp32c3")
	dump, _ = espsynth.Dump("esp32c3", elf)
	return elf, dump
}

// BenchmarkDecode_OpenAndDecode opens the firmware ELF from its bytes and
// decodes one base64 dump against it: a cold parse function invocation.
func BenchmarkDecode_OpenAndDecode(b *testing.B) {
	elf, dump := benchInputs(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(elf)))
	for b.Loop() {
		fw, err := espcore.OpenFirmware(bytes.NewReader(elf))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := espcore.Decode(dump, fw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecode_Loaded decodes one dump against a firmware already
// opened and used once: a warm invocation that kept the Firmware.
func BenchmarkDecode_Loaded(b *testing.B) {
	elf, dump := benchInputs(b)
	fw, err := espcore.OpenFirmware(bytes.NewReader(elf))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := espcore.Decode(dump, fw); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := espcore.Decode(dump, fw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecode_FirstAfterOpen measures the first decode on a freshly
// opened firmware, which loads the DWARF units and CFI it needs.
func BenchmarkDecode_FirstAfterOpen(b *testing.B) {
	elf, dump := benchInputs(b)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		fw, err := espcore.OpenFirmware(bytes.NewReader(elf))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := espcore.Decode(dump, fw); err != nil {
			b.Fatal(err)
		}
	}
}

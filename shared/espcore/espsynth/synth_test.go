package espsynth_test

import (
	"bytes"
	"testing"

	"github.com/espfleet/crashdumps/shared/espcore/espsynth"
)

func TestFirmware_Deterministic(t *testing.T) {
	for _, chip := range []string{"esp32", "esp32c3"} {
		t.Run(chip, func(t *testing.T) {
			a, err := espsynth.Firmware(chip)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := espsynth.Firmware(chip)
			if !bytes.Equal(a, b) {
				t.Error("two Firmware calls gave different bytes")
			}
			da, _ := espsynth.Dump(chip, a)
			db, _ := espsynth.Dump(chip, b)
			if !bytes.Equal(da, db) {
				t.Error("two Dump calls gave different bytes")
			}
		})
	}
}

func TestFirmware_ErrUnknownChip(t *testing.T) {
	if _, err := espsynth.Firmware("esp8266"); err == nil {
		t.Error("Firmware(esp8266) = nil error, want error")
	}
	if _, err := espsynth.DumpFormat("esp32", nil, "nope"); err == nil {
		t.Error("DumpFormat(nope) = nil error, want error")
	}
}

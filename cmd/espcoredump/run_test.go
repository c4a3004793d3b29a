package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

func TestRun_SynthThenInfo(t *testing.T) {
	for _, chip := range []string{"esp32", "esp32c3"} {
		t.Run(chip, func(t *testing.T) {
			dir := t.TempDir()
			var out, errb bytes.Buffer
			if err := run([]string{"synth", "-chip", chip, "-model", "sensor-v2", "-out", dir}, &out, &errb); err != nil {
				t.Fatalf("synth: %v (%s)", err, errb.String())
			}
			for _, name := range []string{"sensor-v2.elf", "sensor-v2.zip", "coredump.bin", "coredump.b64"} {
				if !strings.Contains(out.String(), filepath.Join(dir, name)) {
					t.Errorf("synth output %q does not list %s", out.String(), name)
				}
			}
			out.Reset()
			elf := filepath.Join(dir, "sensor-v2.elf")
			if err := run([]string{"info", "-elf", elf, filepath.Join(dir, "coredump.b64")}, &out, &errb); err != nil {
				t.Fatalf("info: %v", err)
			}
			if got, want := out.String(), "in sensor_read () at main/app_main.c:42"; !strings.Contains(got, want) {
				t.Errorf("info text lacks %q:\n%s", want, got)
			}
			out.Reset()
			if err := run([]string{"info", "-json", "-elf", elf, filepath.Join(dir, "coredump.bin")}, &out, &errb); err != nil {
				t.Fatalf("info -json: %v", err)
			}
			var rep struct {
				Chip     string `json:"chip"`
				TopFrame string `json:"top_frame"`
			}
			if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
				t.Fatalf("info -json output is not JSON: %v", err)
			}
			if rep.Chip != chip || rep.TopFrame != "sensor_read" {
				t.Errorf("JSON chip, top frame = %q, %q; want %q, sensor_read", rep.Chip, rep.TopFrame, chip)
			}
		})
	}
}

func TestRun_Errors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"ErrNoCommand", nil, "missing command"},
		{"ErrUnknownCommand", []string{"frobnicate"}, "unknown command"},
		{"ErrInfoArgs", []string{"info", "dump.b64"}, "needs -elf"},
		{"ErrMissingELF", []string{"info", "-elf", filepath.Join(t.TempDir(), "nope.elf"), "x"}, "opening firmware"},
		{"ErrSynthChip", []string{"synth", "-chip", "esp8266", "-out", t.TempDir()}, "unknown chip"},
		{"ErrSynthOut", []string{"synth"}, "needs -out"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(tt.args, &out, &errb)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run(%q) error = %v, want one containing %q", tt.args, err, tt.want)
			}
		})
	}
}

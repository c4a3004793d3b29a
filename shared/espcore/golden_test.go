package espcore_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/espfleet/crashdumps/shared/espcore"
	"github.com/espfleet/crashdumps/shared/espcore/espsynth"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// TestReport_Golden renders the synthetic dumps of one Xtensa and one
// RISC-V chip as text and JSON and compares them with testdata/golden,
// which `go test -run TestReport_Golden -update` rewrites. The inputs are
// espsynth's deterministic firmware and dumps, so the files change only
// when the report does.
func TestReport_Golden(t *testing.T) {
	for _, chip := range []string{"esp32", "esp32c3"} {
		t.Run(chip, func(t *testing.T) {
			elf, fw := synthFirmware(t, chip)
			dump, err := espsynth.Dump(chip, elf)
			if err != nil {
				t.Fatal(err)
			}
			r, err := espcore.Decode(espsynth.Base64(dump, true), fw)
			if err != nil {
				t.Fatal(err)
			}
			js, err := json.MarshalIndent(r, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			for name, got := range map[string][]byte{chip + ".txt": []byte(r.Text()), chip + ".json": append(js, '\n')} {
				path := filepath.Join("testdata", "golden", name)
				if *update {
					if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(path, got, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("reading golden file (run with -update to create it): %v", err)
				}
				if string(got) != string(want) {
					t.Errorf("%s differs from the golden file; got:\n%s", path, got)
				}
			}
		})
	}
}

package espcore_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// realDumpsDir finds the real dumps of ../shared/testdata/esp-coredump
// (see its README: dumps from espressif/esp-coredump's tests folder, with
// the reports esp-coredump printed for them). ESP_COREDUMP_TESTDATA
// overrides the location; tests skip when the folder is absent.
func realDumpsDir(t testing.TB) string {
	t.Helper()
	d, why := findRealDumps()
	if d == "" {
		t.Skipf("real dumps not available: %s", why)
	}
	return d
}

// findRealDumps returns the real dumps folder, or "" and the reason.
func findRealDumps() (string, string) {
	if d := os.Getenv("ESP_COREDUMP_TESTDATA"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "README.md")); err != nil {
			return "", fmt.Sprintf("ESP_COREDUMP_TESTDATA=%s has no README.md: %v", d, err)
		}
		return d, ""
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Sprintf("cannot get working directory: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", "no go.mod above the package directory"
		}
		dir = parent
	}
	d := filepath.Join(dir, "..", "shared", "testdata", "esp-coredump")
	if _, err := os.Stat(filepath.Join(d, "README.md")); err != nil {
		return "", fmt.Sprintf("not found at ../shared/testdata/esp-coredump from the module root (set ESP_COREDUMP_TESTDATA): %v", err)
	}
	return d, ""
}

// realDump is one real dump with its firmware and expected report.
type realDump struct {
	Name     string // as in the fidelity table
	Dump     string // paths relative to the testdata folder
	ELF      string
	Expected string
}

var realDumps = []realDump{
	{"esp32 elf", "esp32/coredump.b64", "elf/esp32.elf", "esp32/expected_output"},
	{"esp32 bin", "esp32/coredump_bin.b64", "elf/esp32_bin.elf", "esp32/expected_output_bin"},
	{"esp32c3 elf", "esp32c3/coredump.b64", "elf/esp32c3.elf", "esp32c3/expected_output"},
	{"esp32c3 elf (bin build)", "esp32c3/coredump_bin.b64", "elf/esp32c3_bin.elf", "esp32c3/expected_output_bin"},
	{"esp32c6 elf", "esp32c6/coredump.b64", "elf/esp32c6.elf", "esp32c6/expected_output"},
}

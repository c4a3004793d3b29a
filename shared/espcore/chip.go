package espcore

import "strings"

// Arch is the CPU architecture of a chip.
type Arch string

// The architectures of ESP chips.
const (
	ArchXtensa Arch = "xtensa"
	ArchRISCV  Arch = "riscv"
)

// ELF machine numbers of the two architectures.
const (
	emXtensa = 94  // EM_XTENSA
	emRISCV  = 243 // EM_RISCV
)

// chipInfo describes one chip: its name, the chip ID ESP-IDF stores in the
// upper half of the dump version word (esp_chip_info.h), and its
// architecture.
type chipInfo struct {
	Name string
	ID   uint16
	Arch Arch
}

var chips = []chipInfo{
	{"esp32", 0, ArchXtensa},
	{"esp32s2", 2, ArchXtensa},
	{"esp32c3", 5, ArchRISCV},
	{"esp32s3", 9, ArchXtensa},
	{"esp32c2", 12, ArchRISCV},
	{"esp32c6", 13, ArchRISCV},
	{"esp32h2", 16, ArchRISCV},
	{"esp32p4", 18, ArchRISCV},
	{"esp32c61", 20, ArchRISCV},
	{"esp32c5", 23, ArchRISCV},
}

func chipByID(id uint16) (chipInfo, bool) {
	for _, c := range chips {
		if c.ID == id {
			return c, true
		}
	}
	return chipInfo{}, false
}

// ChipByName returns the chip ID and architecture of a chip name such as
// "esp32c3" or "ESP32-C3". ok is false for unknown chips.
func ChipByName(name string) (id uint16, arch Arch, ok bool) {
	n := strings.ToLower(strings.ReplaceAll(name, "-", ""))
	for _, c := range chips {
		if c.Name == n {
			return c.ID, c.Arch, true
		}
	}
	return 0, "", false
}

// Chips lists the names of the chips this package decodes.
func Chips() []string {
	out := make([]string, len(chips))
	for i, c := range chips {
		out[i] = c.Name
	}
	return out
}

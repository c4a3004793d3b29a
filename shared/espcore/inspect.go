package espcore

import "fmt"

// Info is what a dump says about itself, read without a firmware ELF: the
// parse pipeline can use it to pick the firmware (by chip and app ELF
// SHA256) before decoding.
type Info struct {
	Chip         string `json:"chip"`
	Arch         Arch   `json:"arch"`
	DumpFormat   string `json:"dump_format"`
	DumpVersion  Addr   `json:"dump_version"`
	Checksum     string `json:"checksum,omitempty"`
	ChipRevision *int   `json:"chip_revision,omitempty"`
	// AppELFSHA256 is the hex prefix of the app ELF SHA256 the device
	// stored (ELF-format dumps only; usually 9 to 64 characters).
	AppELFSHA256 string `json:"app_elf_sha256,omitempty"`
	PanicReason  string `json:"panic_reason,omitempty"`
	CrashedTCB   Addr   `json:"crashed_tcb"`
	Tasks        int    `json:"tasks"`
}

// Inspect parses dump bytes (raw, base64 text or ELF core) and verifies
// their checksum without symbolizing them.
func Inspect(dump []byte) (*Info, error) {
	im, err := parseImage(dump)
	if err != nil {
		return nil, fmt.Errorf("inspecting core dump: %w", err)
	}
	in := &Info{
		Chip:         im.Chip.Name,
		Arch:         im.Chip.Arch,
		DumpFormat:   im.Format,
		DumpVersion:  Addr(im.Version),
		Checksum:     im.Checksum,
		AppELFSHA256: im.AppSHA256,
		PanicReason:  im.Panic,
		CrashedTCB:   Addr(im.CrashedTCB),
		Tasks:        len(im.Tasks),
	}
	if im.ChipRev >= 0 {
		rev := im.ChipRev
		in.ChipRevision = &rev
	}
	return in, nil
}

package espcore

import (
	"errors"
	"fmt"
)

// FormatError reports malformed dump or firmware bytes. Off is the byte
// offset, counted from the start of the decoded dump (or of the firmware
// file), at which the problem was found.
type FormatError struct {
	Off int64
	Msg string
}

// Error implements error.
func (e *FormatError) Error() string {
	return fmt.Sprintf("espcore: malformed input at offset %#x: %s", e.Off, e.Msg)
}

func formatErr(off int64, format string, args ...any) error {
	return &FormatError{Off: off, Msg: fmt.Sprintf(format, args...)}
}

// ErrELFMismatch is matched, through errors.Is, by every [*MismatchError].
var ErrELFMismatch = errors.New("espcore: dump was not written by this firmware ELF")

// MismatchError reports that the app ELF SHA256 carried in a dump does not
// match the firmware ELF it was decoded against: the device reported the
// wrong firmware version, or the wrong firmware was picked.
type MismatchError struct {
	// DumpSHA256 is the hex prefix of the app ELF SHA256 stored in the dump.
	DumpSHA256 string
	// FirmwareSHA256 is the hex SHA256 of the firmware ELF file.
	FirmwareSHA256 string
}

// Error implements error.
func (e *MismatchError) Error() string {
	return fmt.Sprintf("espcore: app ELF SHA256 in dump %s does not match firmware ELF SHA256 %s",
		e.DumpSHA256, e.FirmwareSHA256)
}

// Is reports whether target is [ErrELFMismatch].
func (e *MismatchError) Is(target error) bool { return target == ErrELFMismatch }

// ErrNotCoreDump is returned by Decode when the input is none of the
// formats this package reads.
var ErrNotCoreDump = errors.New("espcore: input is not an ESP-IDF core dump")

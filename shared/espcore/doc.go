// Package espcore decodes ESP-IDF core dumps in pure Go.
//
// It reads the bytes a device writes to its core dump partition (every
// layout ESP-IDF has used: the binary format 0.x and the ELF format with
// CRC32 or SHA256 checksums and the 2.0, 2.1 and 2.2 headers), raw, as
// base64 text or as a bare ELF core file, and symbolizes them against the
// firmware ELF: symbols from .symtab, source lines from .debug_line and
// call frame information from .debug_frame or .eh_frame.
//
// The result is a [Report] with a stable JSON form and a text rendering
// laid out like the info_corefile output of Espressif's esp-coredump.
//
// Dump bytes come from devices and are not trusted: every size and offset
// is checked before use, and a malformed dump is reported as a
// [*FormatError] naming the byte offset, never as a panic.
package espcore

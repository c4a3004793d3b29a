// Package espsynth writes synthetic but valid ESP-IDF firmware ELF files
// and matching core dumps, for tests that must run without real devices.
//
// The firmware has a symbol table, a handful of functions, a DWARF line
// table and, for RISC-V, a .debug_frame; the dumps carry the firmware's
// SHA256 and a crash in which app_main calls sensor_read, which aborts.
// Everything is deterministic: the same arguments give the same bytes.
package espsynth

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
)

// Function is one function of the synthetic firmware.
type Function struct {
	Name string
	Addr uint32
	Size uint32
	Line int // source line of its first instruction
}

// Layout describes where the synthetic firmware puts things, so tests can
// compute the expected report.
type Layout struct {
	Chip     string
	Xtensa   bool
	CodeAddr uint32
	DataAddr uint32
	// Functions, innermost crash frame first: the crashed task's
	// backtrace is Functions[0] (panic_abort) up to the last one.
	Functions []Function
	// CallOffset is where in each function the call to the next inner
	// function sits; the return address is CallOffset+4 (RISC-V) or +3
	// (Xtensa call8), and the call's source line is Line+2.
	CallOffset uint32
	SourceFile string
}

const funcSize = 32

// chipLayouts gives each supported chip its code and data addresses.
var chipLayouts = map[string]struct {
	id     uint16
	xtensa bool
	code   uint32
	data   uint32
}{
	"esp32":    {0, true, 0x400d0020, 0x3ffb0000},
	"esp32s2":  {2, true, 0x40080020, 0x3ffb0000},
	"esp32s3":  {9, true, 0x42000020, 0x3fc90000},
	"esp32c3":  {5, false, 0x42000020, 0x3fc90000},
	"esp32c2":  {12, false, 0x42000020, 0x3fca0000},
	"esp32c6":  {13, false, 0x42000020, 0x40810000},
	"esp32h2":  {16, false, 0x42000020, 0x40810000},
	"esp32p4":  {18, false, 0x40000020, 0x4ff10000},
	"esp32c5":  {23, false, 0x42000020, 0x40810000},
	"esp32c61": {20, false, 0x42000020, 0x40810000},
}

// functionNames lists the synthetic call chain, innermost first.
var functionNames = []string{"panic_abort", "esp_system_abort", "abort", "sensor_read", "app_main", "main_task", "vPortTaskWrapper"}

// LayoutOf returns the layout of the synthetic firmware for a chip.
func LayoutOf(chip string) (Layout, error) {
	c, ok := chipLayouts[chip]
	if !ok {
		return Layout{}, fmt.Errorf("espsynth: unknown chip %q", chip)
	}
	l := Layout{Chip: chip, Xtensa: c.xtensa, CodeAddr: c.code, DataAddr: c.data, CallOffset: 8, SourceFile: "main/app_main.c"}
	for i, n := range functionNames {
		l.Functions = append(l.Functions, Function{Name: n, Addr: c.code + uint32(i)*funcSize, Size: funcSize, Line: 10 + 10*i})
	}
	return l, nil
}

// Firmware returns the bytes of a synthetic firmware ELF for chip (for
// example "esp32" or "esp32c3").
func Firmware(chip string) ([]byte, error) {
	l, err := LayoutOf(chip)
	if err != nil {
		return nil, err
	}
	machine := uint16(243)
	if l.Xtensa {
		machine = 94
	}
	code := make([]byte, len(l.Functions)*funcSize)
	for i := range l.Functions {
		fn := code[i*funcSize : (i+1)*funcSize]
		for j := 0; j+4 <= len(fn); j += 4 {
			binary.LittleEndian.PutUint32(fn[j:], 0x00000013) // RISC-V nop
		}
		binary.LittleEndian.PutUint32(fn[l.CallOffset:], 0x000000ef) // jal ra, .
	}
	data := make([]byte, 0x100)
	copy(data, "espsynth data")
	var secs []section
	secs = append(secs,
		section{name: ".flash.text", typ: 1, flags: 6, addr: l.CodeAddr, data: code, align: 4},
		section{name: ".dram0.data", typ: 1, flags: 3, addr: l.DataAddr, data: data, align: 4})
	info, abbrev, line := debugInfo(l)
	secs = append(secs,
		section{name: ".debug_info", typ: 1, data: info, align: 1},
		section{name: ".debug_abbrev", typ: 1, data: abbrev, align: 1},
		section{name: ".debug_line", typ: 1, data: line, align: 1})
	switch {
	case l.Xtensa:
	case chip == "esp32c2" || chip == "esp32c3":
		// RISC-V firmware also gets .debug_aranges, so both ways of finding
		// a compilation unit (aranges, or the units' own ranges) are used.
		secs = append(secs,
			section{name: ".debug_frame", typ: 1, data: debugFrame(l), align: 4},
			section{name: ".debug_aranges", typ: 1, data: debugAranges(l), align: 8})
	default:
		// The other RISC-V chips carry their CFI in .eh_frame, as ESP-IDF
		// builds with CONFIG_ESP_SYSTEM_USE_EH_FRAME do.
		addr := l.CodeAddr + 0x1000
		secs = append(secs, section{name: ".eh_frame", typ: 1, flags: 2, addr: addr, data: ehFrame(l, addr), align: 4})
	}
	return writeELF(machine, 2, l.CodeAddr, secs, symbols(l)), nil
}

type section struct {
	name  string
	typ   uint32
	flags uint32
	addr  uint32
	data  []byte
	align uint32
	link  uint32
	info  uint32
	ent   uint32
}

type sym struct {
	name  string
	value uint32
	size  uint32
	info  byte
	shndx uint16
}

func symbols(l Layout) []sym {
	var out []sym
	for _, f := range l.Functions {
		out = append(out, sym{name: f.Name, value: f.Addr, size: f.Size, info: 0x12, shndx: 1}) // GLOBAL FUNC in .flash.text
	}
	out = append(out, sym{name: "sensor_state", value: l.DataAddr, size: 16, info: 0x11, shndx: 2}) // GLOBAL OBJECT
	return out
}

// writeELF lays out an ELF32 little-endian file: header, section
// contents, symbol and string tables, section headers. Sections given are
// numbered from 1 in order.
func writeELF(machine uint16, etype uint16, entry uint32, secs []section, syms []sym) []byte {
	var strtab bytes.Buffer
	strtab.WriteByte(0)
	var symtab bytes.Buffer
	symtab.Write(make([]byte, 16))
	for _, s := range syms {
		var e [16]byte
		binary.LittleEndian.PutUint32(e[0:], uint32(strtab.Len()))
		binary.LittleEndian.PutUint32(e[4:], s.value)
		binary.LittleEndian.PutUint32(e[8:], s.size)
		e[12] = s.info
		binary.LittleEndian.PutUint16(e[14:], s.shndx)
		symtab.Write(e[:])
		strtab.WriteString(s.name)
		strtab.WriteByte(0)
	}
	n := len(secs)
	if len(syms) > 0 {
		secs = append(secs,
			section{name: ".symtab", typ: 2, data: symtab.Bytes(), align: 4, link: uint32(n + 2), info: 1, ent: 16},
			section{name: ".strtab", typ: 3, data: strtab.Bytes(), align: 1})
	}
	var shstr bytes.Buffer
	shstr.WriteByte(0)
	names := make([]uint32, len(secs)+1)
	for i, s := range secs {
		names[i] = uint32(shstr.Len())
		shstr.WriteString(s.name)
		shstr.WriteByte(0)
	}
	names[len(secs)] = uint32(shstr.Len())
	shstr.WriteString(".shstrtab\x00")
	secs = append(secs, section{name: ".shstrtab", typ: 3, data: shstr.Bytes(), align: 1})

	var out bytes.Buffer
	out.Write(make([]byte, 52))
	offs := make([]uint32, len(secs))
	for i, s := range secs {
		for out.Len()%4 != 0 {
			out.WriteByte(0)
		}
		offs[i] = uint32(out.Len())
		out.Write(s.data)
	}
	for out.Len()%4 != 0 {
		out.WriteByte(0)
	}
	shoff := uint32(out.Len())
	out.Write(make([]byte, 40)) // null section header
	for i, s := range secs {
		var h [40]byte
		le := binary.LittleEndian
		le.PutUint32(h[0:], names[i])
		le.PutUint32(h[4:], s.typ)
		le.PutUint32(h[8:], s.flags)
		le.PutUint32(h[12:], s.addr)
		le.PutUint32(h[16:], offs[i])
		le.PutUint32(h[20:], uint32(len(s.data)))
		le.PutUint32(h[24:], s.link)
		le.PutUint32(h[28:], s.info)
		le.PutUint32(h[32:], s.align)
		le.PutUint32(h[36:], s.ent)
		out.Write(h[:])
	}
	b := out.Bytes()
	copy(b, "\x7fELF\x01\x01\x01")
	le := binary.LittleEndian
	le.PutUint16(b[16:], etype)
	le.PutUint16(b[18:], machine)
	le.PutUint32(b[20:], 1)
	le.PutUint32(b[24:], entry)
	le.PutUint32(b[32:], shoff)
	le.PutUint16(b[40:], 52)
	le.PutUint16(b[46:], 40)
	le.PutUint16(b[48:], uint16(len(secs)+1))
	le.PutUint16(b[50:], uint16(len(secs)))
	return b
}

// debugInfo writes one DWARF 4 compilation unit with a subprogram per
// function, its abbreviations and its line table.
func debugInfo(l Layout) (info, abbrev, line []byte) {
	le := binary.LittleEndian
	// Abbreviations: 1 compile_unit (children), 2 subprogram, 3
	// subprogram with parameters, 4 formal_parameter, 5 base_type, 6
	// pointer_type.
	abbrev = []byte{
		1, 0x11, 1, 0x03, 0x08, 0x10, 0x17, 0x11, 0x01, 0x12, 0x06, 0, 0,
		2, 0x2e, 0, 0x03, 0x08, 0x11, 0x01, 0x12, 0x06, 0, 0,
		3, 0x2e, 1, 0x03, 0x08, 0x11, 0x01, 0x12, 0x06, 0, 0,
		4, 0x05, 0, 0x03, 0x08, 0x49, 0x13, 0x02, 0x18, 0, 0,
		5, 0x24, 0, 0x03, 0x08, 0x3e, 0x0b, 0x0b, 0x0b, 0, 0,
		6, 0x0f, 0, 0x0b, 0x0b, 0x49, 0x13, 0, 0,
		0,
	}
	end := l.Functions[len(l.Functions)-1]
	var d bytes.Buffer
	d.WriteByte(1)
	d.WriteString(l.SourceFile + "\x00")
	d.Write(le.AppendUint32(nil, 0)) // stmt_list
	d.Write(le.AppendUint32(nil, l.CodeAddr))
	d.Write(le.AppendUint32(nil, end.Addr+end.Size-l.CodeAddr))
	// char and char *, for panic_abort's details; offsets are from the
	// unit header, which is 11 bytes long.
	charOff := uint32(11 + d.Len())
	d.WriteByte(5)
	d.WriteString("char\x00")
	d.Write([]byte{0x08, 1}) // DW_ATE_unsigned_char, 1 byte
	ptrOff := uint32(11 + d.Len())
	d.Write([]byte{6, 4})
	d.Write(le.AppendUint32(nil, charOff))
	for i, f := range l.Functions {
		if i == 0 {
			d.WriteByte(3)
		} else {
			d.WriteByte(2)
		}
		d.WriteString(f.Name + "\x00")
		d.Write(le.AppendUint32(nil, f.Addr))
		d.Write(le.AppendUint32(nil, f.Size))
		if i == 0 {
			// details lives in the first argument register: a0 (x10) on
			// RISC-V, a2 on Xtensa's windowed ABI.
			reg := byte(0x50 + 10)
			if l.Xtensa {
				reg = 0x50 + 2
			}
			d.WriteByte(4)
			d.WriteString("details\x00")
			d.Write(le.AppendUint32(nil, ptrOff))
			d.Write([]byte{1, reg})
			d.WriteByte(0)
		}
	}
	d.WriteByte(0)
	hdr := le.AppendUint32(nil, uint32(7+d.Len()))
	hdr = le.AppendUint16(hdr, 4)
	hdr = le.AppendUint32(hdr, 0)
	hdr = append(hdr, 4)
	info = append(hdr, d.Bytes()...)

	// Line program: each function starts a row at its line, and its call
	// site at CallOffset is two lines further.
	var prog bytes.Buffer
	prog.Write([]byte{0, 5, 2})
	prog.Write(le.AppendUint32(nil, l.CodeAddr))
	cur, curLine := l.CodeAddr, 1
	row := func(addr uint32, ln int) {
		if addr > cur {
			prog.WriteByte(2)
			prog.Write(uleb(uint64(addr - cur)))
			cur = addr
		}
		prog.WriteByte(3)
		prog.Write(sleb(int64(ln - curLine)))
		curLine = ln
		prog.WriteByte(1)
	}
	for _, f := range l.Functions {
		row(f.Addr, f.Line)
		row(f.Addr+l.CallOffset, f.Line+2)
	}
	prog.WriteByte(2)
	prog.Write(uleb(uint64(end.Addr + end.Size - cur)))
	prog.Write([]byte{0, 1, 1})
	dir, file, _ := strings.Cut(l.SourceFile, "/")
	var h bytes.Buffer
	h.Write([]byte{1, 1, 1, 0xfb, 14, 13, 0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1})
	h.WriteString(dir + "\x00\x00")
	h.WriteString(file + "\x00")
	h.Write([]byte{1, 0, 0, 0})
	var lt []byte
	lt = le.AppendUint32(lt, uint32(2+4+h.Len()+prog.Len()))
	lt = le.AppendUint16(lt, 4)
	lt = le.AppendUint32(lt, uint32(h.Len()))
	lt = append(lt, h.Bytes()...)
	line = append(lt, prog.Bytes()...)
	return info, abbrev, line
}

// debugAranges writes one address range set for the unit, led by a zero
// pair as linkers leave for discarded code.
func debugAranges(l Layout) []byte {
	le := binary.LittleEndian
	end := l.Functions[len(l.Functions)-1]
	body := le.AppendUint16(nil, 2)
	body = le.AppendUint32(body, 0) // unit offset in .debug_info
	body = append(body, 4, 0, 0, 0, 0, 0)
	for _, w := range []uint32{0, 0, l.CodeAddr, end.Addr + end.Size - l.CodeAddr, 0, 0} {
		body = le.AppendUint32(body, w)
	}
	return append(le.AppendUint32(nil, uint32(len(body))), body...)
}

// debugFrame writes a CIE and one FDE per function: two bytes into the
// function the frame is 16 bytes and ra is saved at CFA-4.
func debugFrame(l Layout) []byte {
	le := binary.LittleEndian
	var b []byte
	cie := []byte{0xff, 0xff, 0xff, 0xff, 3, 0, 1, 0x7c, 1, 0x0c, 2, 0} // version 3, "", caf 1, daf -4, ra 1, def_cfa sp+0
	for len(cie)%4 != 0 {
		cie = append(cie, 0)
	}
	b = le.AppendUint32(b, uint32(len(cie)))
	b = append(b, cie...)
	for _, f := range l.Functions {
		ins := []byte{0x40 | 2, 0x0e, 16, 0x80 | 1, 1, 0}
		for len(ins)%4 != 0 {
			ins = append(ins, 0)
		}
		b = le.AppendUint32(b, uint32(12+len(ins)))
		b = le.AppendUint32(b, 0)
		b = le.AppendUint32(b, f.Addr)
		b = le.AppendUint32(b, f.Size)
		b = append(b, ins...)
	}
	return b
}

// ehFrame writes the CFI of debugFrame in .eh_frame form: a "zR" CIE and
// FDEs with pc-relative 4-byte start addresses, for a section at addr.
func ehFrame(l Layout, addr uint32) []byte {
	le := binary.LittleEndian
	cie := []byte{0, 0, 0, 0, 1, 'z', 'R', 0, 1, 0x7c, 1, 1, 0x1b, 0x0c, 2, 0}
	for len(cie)%4 != 0 {
		cie = append(cie, 0)
	}
	b := le.AppendUint32(nil, uint32(len(cie)))
	b = append(b, cie...)
	for _, f := range l.Functions {
		ins := []byte{0, 0x40 | 2, 0x0e, 16, 0x80 | 1, 1} // aug length 0, then the rules
		for (12+len(ins))%4 != 0 {
			ins = append(ins, 0)
		}
		start := len(b)
		b = le.AppendUint32(b, uint32(12+len(ins)))
		b = le.AppendUint32(b, uint32(start+4)) // back to the CIE at offset 0
		b = le.AppendUint32(b, f.Addr-(addr+uint32(start+8)))
		b = le.AppendUint32(b, f.Size)
		b = append(b, ins...)
	}
	return le.AppendUint32(b, 0) // terminator
}

func uleb(v uint64) []byte {
	var out []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			out = append(out, c|0x80)
			continue
		}
		return append(out, c)
	}
}

func sleb(v int64) []byte {
	var out []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(out, c)
		}
		out = append(out, c|0x80)
	}
}

package espcore

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"sort"
	"strings"
	"sync"
)

// maxFirmwareSize bounds the firmware ELF this package reads into memory.
const maxFirmwareSize = 256 << 20

// Firmware is a firmware ELF opened for symbolization. Its symbol table is
// read by OpenFirmware; DWARF line tables, inline information and call
// frame information are read lazily, one compilation unit at a time, as
// Decode looks addresses up. A Firmware is safe for concurrent use and is
// meant to be kept and reused across many Decode calls.
type Firmware struct {
	raw     []byte
	ef      *elf.File
	sha     string        // set before shaDone is closed
	shaDone chan struct{} // closed once sha is computed
	machine uint16

	sections []fwSection
	syms     []symbol // every named symbol inside an allocated section, by address
	funcs    []symbol // function symbols, by address

	dwarfOnce sync.Once
	dwarf     *dwarfIndex
	dwarfErr  error

	cfiOnce sync.Once
	cfi     *cfiTable

	tcb tcbCache
}

type fwSection struct {
	Name  string
	Addr  uint32
	Size  uint32
	Flags uint32
	Type  elf.SectionType
}

type symbol struct {
	Addr   uint32
	Size   uint32
	Name   string
	Global bool
	Func   bool
	Sect   int
}

// OpenFirmware reads a firmware ELF (ELF32, Xtensa or RISC-V): its
// sections and symbol table now, its DWARF lazily when first needed.
func OpenFirmware(r io.ReaderAt) (fw *Firmware, err error) {
	raw, err := readAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading firmware ELF: %w", err)
	}
	return openFirmwareBytes(raw)
}

// OpenFirmwareBytes is OpenFirmware for an ELF already in memory. The
// Firmware keeps and reads b in place, without copying it; b must not be
// modified afterwards.
func OpenFirmwareBytes(b []byte) (*Firmware, error) {
	if len(b) > maxFirmwareSize {
		return nil, fmt.Errorf("opening firmware ELF: %d bytes exceeds the %d-byte limit", len(b), maxFirmwareSize)
	}
	return openFirmwareBytes(b)
}

func readAll(r io.ReaderAt) ([]byte, error) {
	var size int64 = -1
	switch v := r.(type) {
	case interface{ Size() int64 }:
		size = v.Size()
	case interface{ Stat() (fs.FileInfo, error) }:
		if fi, err := v.Stat(); err == nil && fi.Mode().IsRegular() {
			size = fi.Size()
		}
	}
	if size > maxFirmwareSize {
		return nil, fmt.Errorf("firmware of %d bytes exceeds the %d-byte limit", size, maxFirmwareSize)
	}
	if size >= 0 {
		buf := make([]byte, size)
		n, err := r.ReadAt(buf, 0)
		if err != nil && !(errors.Is(err, io.EOF) && int64(n) == size) {
			return nil, err
		}
		return buf, nil
	}
	var out bytes.Buffer
	_, err := io.Copy(&out, io.LimitReader(io.NewSectionReader(r, 0, maxFirmwareSize+1), maxFirmwareSize+1))
	if err != nil {
		return nil, err
	}
	if out.Len() > maxFirmwareSize {
		return nil, fmt.Errorf("firmware exceeds the %d-byte limit", maxFirmwareSize)
	}
	return out.Bytes(), nil
}

func openFirmwareBytes(raw []byte) (fw *Firmware, err error) {
	// debug/elf documents that malformed files may still make it panic;
	// firmware files come from users, so turn that into an error.
	defer func() {
		if p := recover(); p != nil {
			fw, err = nil, fmt.Errorf("parsing firmware ELF: malformed file: %v", p)
		}
	}()
	ef, err := elf.NewFile(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("parsing firmware ELF: %w", err)
	}
	if ef.Class != elf.ELFCLASS32 || ef.Data != elf.ELFDATA2LSB {
		return nil, fmt.Errorf("parsing firmware ELF: %v %v, want ELF32 little-endian", ef.Class, ef.Data)
	}
	switch ef.Machine {
	case elf.EM_XTENSA, elf.EM_RISCV:
	default:
		return nil, fmt.Errorf("parsing firmware ELF: machine %v is neither Xtensa nor RISC-V", ef.Machine)
	}
	// The goroutine gets its own variable: fw is a named result, which an
	// error return below sets to nil.
	f := &Firmware{raw: raw, ef: ef, machine: uint16(ef.Machine), shaDone: make(chan struct{})}
	fw = f
	// Hashing a large ELF costs as much as the rest of opening it; do it
	// beside the symbol table and the first decode.
	go func() {
		sum := sha256.Sum256(raw)
		f.sha = hex.EncodeToString(sum[:])
		close(f.shaDone)
	}()
	for _, s := range ef.Sections {
		fw.sections = append(fw.sections, fwSection{Name: s.Name, Addr: uint32(s.Addr), Size: uint32(s.Size), Flags: uint32(s.Flags), Type: s.Type})
	}
	if err := fw.readSymbols(); err != nil {
		return nil, err
	}
	byAddr := func(v []symbol) {
		slices.SortFunc(v, func(a, b symbol) int {
			if c := cmp.Compare(a.Addr, b.Addr); c != 0 {
				return c
			}
			if a.Global != b.Global {
				if a.Global {
					return -1
				}
				return 1
			}
			return strings.Compare(a.Name, b.Name)
		})
	}
	byAddr(fw.syms)
	for _, s := range fw.syms {
		if s.Func {
			fw.funcs = append(fw.funcs, s)
		}
	}
	return fw, nil
}

// readSymbols reads .symtab directly: debug/elf decodes each entry by
// reflection, which costs more than the rest of opening a large ELF.
func (f *Firmware) readSymbols() error {
	var symtab *elf.Section
	for _, s := range f.ef.Sections {
		if s.Type == elf.SHT_SYMTAB {
			symtab = s
			break
		}
	}
	if symtab == nil {
		return nil // a stripped ELF: frames get no names
	}
	_, data := f.section(symtab.Name)
	if data == nil || int(symtab.Link) >= len(f.ef.Sections) {
		return fmt.Errorf("reading firmware symbol table: section %s is unreadable", symtab.Name)
	}
	strs := f.ef.Sections[symtab.Link]
	if strs.Type != elf.SHT_STRTAB || strs.Offset+strs.Size > uint64(len(f.raw)) {
		return fmt.Errorf("reading firmware symbol table: string table %d is unreadable", symtab.Link)
	}
	str := f.raw[strs.Offset : strs.Offset+strs.Size]
	le := binary.LittleEndian
	for p := 16; p+16 <= len(data); p += 16 { // entry 0 is the null symbol
		nameOff := le.Uint32(data[p:])
		value := le.Uint32(data[p+4:])
		size := le.Uint32(data[p+8:])
		info := data[p+12]
		shndx := int(le.Uint16(data[p+14:]))
		typ := elf.SymType(info & 0xf)
		if typ == elf.STT_SECTION || typ == elf.STT_FILE || shndx == 0 || shndx >= len(f.ef.Sections) || int(nameOff) >= len(str) {
			continue
		}
		if f.ef.Sections[shndx].Flags&elf.SHF_ALLOC == 0 {
			continue
		}
		name := str[nameOff:]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		if len(name) == 0 || name[0] == '$' || bytes.HasPrefix(name, []byte(".L")) {
			continue
		}
		f.syms = append(f.syms, symbol{Addr: value, Size: size, Name: string(name),
			Global: elf.SymBind(info>>4) != elf.STB_LOCAL, Func: typ == elf.STT_FUNC, Sect: shndx})
	}
	return nil
}

// Close releases nothing today; it exists so callers can treat a Firmware
// like other resources. It returns nil.
func (f *Firmware) Close() error { return nil }

// SHA256 returns the hex SHA256 of the firmware ELF file, the value
// ESP-IDF stores (as a prefix) in every ELF-format dump.
func (f *Firmware) SHA256() string {
	<-f.shaDone
	return f.sha
}

// Arch returns the architecture of the firmware.
func (f *Firmware) Arch() Arch {
	if f.machine == emXtensa {
		return ArchXtensa
	}
	return ArchRISCV
}

// funcAt returns the function symbol containing pc.
func (f *Firmware) funcAt(pc uint32) (symbol, bool) {
	i := sort.Search(len(f.funcs), func(i int) bool { return f.funcs[i].Addr > pc }) - 1
	for ; i >= 0; i-- {
		s := f.funcs[i]
		if s.Addr > pc {
			continue
		}
		if pc < s.Addr+s.Size || (s.Size == 0 && pc == s.Addr) {
			return s, true
		}
		if s.Addr+s.Size <= pc && i < len(f.funcs)-1 && f.funcs[i].Addr != f.funcs[i+1].Addr {
			break
		}
		if pc-s.Addr > 1<<16 {
			break
		}
	}
	return symbol{}, false
}

// symbolize returns "name+off" for an address inside an allocated section
// of the firmware, the way GDB annotates pointers: the nearest symbol at
// or below the address in the same section.
func (f *Firmware) symbolize(addr uint32) string {
	sect := -1
	for i, s := range f.sections {
		if s.Flags&uint32(elf.SHF_ALLOC) != 0 && s.Size > 0 && addr >= s.Addr && uint64(addr) < uint64(s.Addr)+uint64(s.Size) {
			sect = i
			break
		}
	}
	if sect < 0 {
		return ""
	}
	i := sort.Search(len(f.syms), func(i int) bool { return f.syms[i].Addr > addr }) - 1
	zero := -1
	for ; i >= 0; i-- {
		s := f.syms[i]
		if s.Sect != sect {
			if s.Addr < f.sections[sect].Addr {
				break
			}
			continue
		}
		if s.Size == 0 {
			// GDB keeps a zero-sized symbol (a label) only as a fallback
			// for a sized symbol that covers the address.
			if zero < 0 {
				zero = i
			}
			continue
		}
		// Among sized symbols at the same address prefer the first (global).
		for i > 0 && f.syms[i-1].Addr == s.Addr && f.syms[i-1].Sect == sect && f.syms[i-1].Size != 0 {
			i--
			s = f.syms[i]
		}
		if addr < s.Addr+s.Size {
			return symOff(s, addr)
		}
		break
	}
	if zero >= 0 {
		return symOff(f.syms[zero], addr)
	}
	return ""
}

func symOff(s symbol, addr uint32) string {
	if addr == s.Addr {
		return s.Name
	}
	return fmt.Sprintf("%s+%d", s.Name, addr-s.Addr)
}

// IsCode reports whether addr lies in an executable section of the
// firmware; backtrace frames outside it are in ROM.
func (f *Firmware) IsCode(addr uint32) bool { return f.isCode(addr) }

// isCode reports whether addr lies in an executable section of the
// firmware.
func (f *Firmware) isCode(addr uint32) bool {
	for _, s := range f.sections {
		if s.Flags&uint32(elf.SHF_EXECINSTR) != 0 && addr >= s.Addr && uint64(addr) < uint64(s.Addr)+uint64(s.Size) {
			return true
		}
	}
	return false
}

// section returns the data of a named section, or nil.
func (f *Firmware) section(name string) (*elf.Section, []byte) {
	s := f.ef.Section(name)
	if s == nil || s.Type == elf.SHT_NOBITS {
		return nil, nil
	}
	if s.Offset+s.Size > uint64(len(f.raw)) {
		return nil, nil
	}
	return s, f.raw[s.Offset : s.Offset+s.Size]
}

package espsynth

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"strings"
)

// Format selects the container of a synthetic dump.
type Format string

// The dump formats Dump can write, named after ESP-IDF's versions.
const (
	ELFCRC32V2_1  Format = "elf-crc32-2.1"  // version 0x0102, the default
	ELFSHA256V2_1 Format = "elf-sha256-2.1" // version 0x0103
	ELFCRC32V2    Format = "elf-crc32-2.0"  // version 0x0100
	ELFSHA256V2   Format = "elf-sha256-2.0" // version 0x0101
	ELFV2_2       Format = "elf-2.2"        // version 0x0104, SHA256, 3-word header
	BinV2_1       Format = "bin-0.3"        // version 0x0003
	BinV2         Format = "bin-0.2"        // version 0x0002
	BinV1         Format = "bin-0.1"        // version 0x0001
	ELFCore       Format = "elf-core"       // a bare ELF core file, no header
)

// Formats lists every Format.
var Formats = []Format{ELFCRC32V2_1, ELFSHA256V2_1, ELFCRC32V2, ELFSHA256V2, ELFV2_2, BinV2_1, BinV2, BinV1, ELFCore}

// Task names and TCB layout of the synthetic dumps.
const (
	CrashedTask = "main"
	IdleTask    = "IDLE"
	tcbSize     = 0x154
)

// Dump returns a synthetic core dump in the default format (ELF, CRC32,
// header 2.1) whose app ELF SHA256 is that of elf, the bytes Firmware
// returned for chip.
func Dump(chip string, elf []byte) ([]byte, error) {
	return DumpFormat(chip, elf, ELFCRC32V2_1)
}

// DetailsAddr returns where the synthetic dumps of a chip keep the panic
// message that panic_abort's details argument points to.
func DetailsAddr(chip string) uint32 {
	l, err := LayoutOf(chip)
	if err != nil {
		return 0
	}
	return l.DataAddr + 0xc00 - 0x100
}

// PanicReason returns the panic reason the synthetic dumps of a chip carry.
func PanicReason(chip string) string {
	l, err := LayoutOf(chip)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("abort() was called at PC 0x%08x on core 0", l.Functions[3].Addr+l.CallOffset+retOff(l)-1)
}

func retOff(l Layout) uint32 {
	if l.Xtensa {
		return 3
	}
	return 4
}

type task struct {
	tcb       uint32
	name      string
	prio      uint32
	stackLo   uint32 // lowest dumped address (exception frame)
	stackHi   uint32 // pxEndOfStack
	stack     []byte
	regs      []uint32 // prstatus gregset
	frame     []uint32 // frame saved at stackLo for the binary format
	topOfStck uint32
}

func (t *task) put(addr, v uint32) {
	binary.LittleEndian.PutUint32(t.stack[addr-t.stackLo:], v)
}

func (t *task) tcbBytes() []byte {
	b := make([]byte, tcbSize)
	le := binary.LittleEndian
	le.PutUint32(b[0:], t.topOfStck)
	le.PutUint32(b[44:], t.prio)
	le.PutUint32(b[48:], t.stackLo-0x200)
	copy(b[52:68], t.name)
	le.PutUint32(b[72:], t.stackHi)
	le.PutUint32(b[76:], t.prio)
	return b
}

// DumpFormat is Dump with a chosen container format.
func DumpFormat(chip string, elf []byte, f Format) ([]byte, error) {
	l, err := LayoutOf(chip)
	if err != nil {
		return nil, err
	}
	c := chipLayouts[chip]
	tasks := buildTasks(l)
	sum := sha256.Sum256(elf)
	appSHA := hex.EncodeToString(sum[:])
	var ver uint16
	switch f {
	case ELFCRC32V2_1:
		ver = 0x0102
	case ELFSHA256V2_1:
		ver = 0x0103
	case ELFCRC32V2:
		ver = 0x0100
	case ELFSHA256V2:
		ver = 0x0101
	case ELFV2_2, ELFCore:
		ver = 0x0104
	case BinV2_1:
		ver = 0x0003
	case BinV2:
		ver = 0x0002
	case BinV1:
		ver = 0x0001
	default:
		return nil, fmt.Errorf("espsynth: unknown format %q", f)
	}
	version := uint32(c.id)<<16 | uint32(ver)
	le := binary.LittleEndian
	if ver < 0x100 {
		var p bytes.Buffer
		for _, t := range tasks {
			p.Write(le.AppendUint32(nil, t.tcb))
			p.Write(le.AppendUint32(nil, t.stackLo))
			p.Write(le.AppendUint32(nil, t.stackHi))
			p.Write(t.tcbBytes())
			p.Write(t.stack)
		}
		hdr := []uint32{0, version, uint32(len(tasks)), tcbSize}
		if ver >= 2 {
			hdr = append(hdr, 0)
		}
		if ver >= 3 {
			hdr = append(hdr, 1)
		}
		return seal(hdr, p.Bytes(), false), nil
	}
	core := elfCore(l, tasks, version, appSHA)
	switch ver {
	case 0x0100:
		return seal([]uint32{0, version, 0, 0, 0}, core, false), nil
	case 0x0101:
		return seal([]uint32{0, version, 0, 0, 0}, core, true), nil
	case 0x0102:
		return seal([]uint32{0, version, 0, 0, 0, 1}, core, false), nil
	case 0x0103:
		return seal([]uint32{0, version, 0, 0, 0, 1}, core, true), nil
	}
	if f == ELFCore {
		return core, nil
	}
	return seal([]uint32{0, version, 1}, core, true), nil
}

// seal puts the header in front of the payload, fills in the total length
// and appends the checksum over both.
func seal(hdr []uint32, payload []byte, useSHA bool) []byte {
	n := 4
	if useSHA {
		n = 32
	}
	hdr[0] = uint32(4*len(hdr) + len(payload) + n)
	var b []byte
	for _, w := range hdr {
		b = binary.LittleEndian.AppendUint32(b, w)
	}
	b = append(b, payload...)
	if useSHA {
		s := sha256.Sum256(b)
		return append(b, s[:]...)
	}
	return binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}

func win(addr uint32) uint32 { return addr&0x3fffffff | 0x80000000 }

// buildTasks lays out the crashed task, whose stack holds the whole call
// chain of the layout, and an idle task blocked at the start of
// vPortTaskWrapper.
func buildTasks(l Layout) []*task {
	fns := l.Functions
	ret := func(i int) uint32 { return fns[i].Addr + l.CallOffset + retOff(l) }
	main := &task{tcb: l.DataAddr + 0x400, name: CrashedTask, prio: 1,
		stackLo: l.DataAddr + 0x800, stackHi: l.DataAddr + 0xc00}
	main.stack = make([]byte, main.stackHi-main.stackLo)
	sp0 := main.stackLo + 0x80
	pc := fns[0].Addr + 16
	// The panic message panic_abort got, in the crashed task's stack.
	details := main.stackHi - 0x100
	copy(main.stack[details-main.stackLo:], PanicReason(l.Chip))
	if l.Xtensa {
		const frameLen = 32
		for k := 0; k+1 < len(fns); k++ {
			sp := sp0 + uint32(k)*frameLen
			next := uint32(0)
			if k+2 < len(fns) {
				next = win(ret(k + 2))
			}
			main.put(sp-16, next)
			main.put(sp-12, sp+frameLen)
		}
		regs := make([]uint32, 129)
		regs[0], regs[1] = pc, 0x60820
		regs[64], regs[65] = win(ret(1)), sp0
		regs[66] = details
		main.regs = regs
		frame := []uint32{1, pc, 0x60820}
		frame = append(frame, regs[64:80]...)
		frame = append(frame, 0, 29, 0, 0, 0, 0) // sar, exccause, excvaddr, lbeg, lend, lcount
		main.frame = frame
	} else {
		for k := 0; k < len(fns); k++ {
			sp := sp0 + uint32(k)*16
			ra := uint32(0)
			if k+1 < len(fns) {
				ra = ret(k + 1)
			}
			main.put(sp+12, ra)
		}
		regs := make([]uint32, 32)
		regs[0], regs[1], regs[2], regs[3] = pc, ret(1), sp0, l.DataAddr+4
		regs[10] = details
		main.regs = regs
		main.frame = regs
	}
	for i, w := range main.frame {
		main.put(main.stackLo+4*uint32(i), w)
	}
	main.topOfStck = main.stackLo

	idle := &task{tcb: l.DataAddr + 0x600, name: IdleTask, prio: 0,
		stackLo: l.DataAddr + 0xd00, stackHi: l.DataAddr + 0xe00}
	idle.stack = make([]byte, idle.stackHi-idle.stackLo)
	isp := idle.stackLo + 0x80
	ipc := fns[len(fns)-1].Addr + 4
	if l.Xtensa {
		regs := make([]uint32, 129)
		regs[0], regs[1], regs[65] = ipc, 0x60020, isp
		idle.regs = regs
		idle.frame = []uint32{0, ipc, 0x60020, 0, 0, isp, 0, 0}
	} else {
		regs := make([]uint32, 32)
		regs[0], regs[2] = ipc, isp
		idle.regs = regs
		idle.frame = regs
	}
	for i, w := range idle.frame {
		idle.put(idle.stackLo+4*uint32(i), w)
	}
	idle.topOfStck = idle.stackLo
	return []*task{main, idle}
}

// elfCore writes the ELF core file ESP-IDF would: a note segment with a
// prstatus per task, the TCBs and stacks as load segments, and a note
// segment with the dump info, extra info and panic details.
func elfCore(l Layout, tasks []*task, version uint32, appSHA string) []byte {
	le := binary.LittleEndian
	machine := uint16(243)
	if l.Xtensa {
		machine = 94
	}
	note := func(b *bytes.Buffer, name string, typ uint32, desc []byte) {
		n := name + "\x00"
		b.Write(le.AppendUint32(nil, uint32(len(n))))
		b.Write(le.AppendUint32(nil, uint32(len(desc))))
		b.Write(le.AppendUint32(nil, typ))
		b.WriteString(n)
		for b.Len()%4 != 0 {
			b.WriteByte(0)
		}
		b.Write(desc)
		for b.Len()%4 != 0 {
			b.WriteByte(0)
		}
	}
	var prs bytes.Buffer
	for _, t := range tasks {
		size := 72 + 4*len(t.regs)
		if !l.Xtensa {
			size = 204
		}
		d := make([]byte, size)
		le.PutUint32(d[24:], t.tcb)
		for i, r := range t.regs {
			le.PutUint32(d[72+4*i:], r)
		}
		note(&prs, "CORE", 1, d)
	}
	var info bytes.Buffer
	ci := le.AppendUint32(nil, version)
	ci = append(ci, appSHA...)
	ci = append(ci, 0, 0, 0, 0)
	note(&info, "ESP_CORE_DUMP_INFO", 8266, ci)
	extra := le.AppendUint32(nil, tasks[0].tcb)
	if l.Xtensa {
		// exccause, excvaddr, 16 register pairs (zero when unused), ISR flag.
		pairs := [][2]uint32{{232, 29}, {238, 0}, {194, 0}, {195, 0}, {177, tasks[0].regs[0]}, {178, 0}, {179, 0}}
		for len(pairs) < 18 {
			pairs = append(pairs, [2]uint32{})
		}
		for _, p := range pairs {
			extra = le.AppendUint32(extra, p[0])
			extra = le.AppendUint32(extra, p[1])
		}
		extra = le.AppendUint32(extra, 0)
	} else {
		extra = le.AppendUint32(extra, 0)
	}
	note(&info, "ESP_EXTRA_INFO", 677, extra)
	note(&info, "ESP_PANIC_DETAILS", 679, []byte(PanicReason(l.Chip)))

	type seg struct {
		typ, addr uint32
		data      []byte
	}
	segs := []seg{{4, 0, prs.Bytes()}}
	for _, t := range tasks {
		segs = append(segs, seg{1, t.tcb, t.tcbBytes()}, seg{1, t.stackLo, t.stack})
	}
	segs = append(segs, seg{4, 0, info.Bytes()})
	var b []byte
	b = append(b, "\x7fELF\x01\x01\x01"...)
	b = append(b, make([]byte, 9)...)
	b = le.AppendUint16(b, 4) // ET_CORE
	b = le.AppendUint16(b, machine)
	b = le.AppendUint32(b, 1)
	b = le.AppendUint32(b, 0)
	b = le.AppendUint32(b, 52)
	b = le.AppendUint32(b, 0)
	b = le.AppendUint32(b, 0)
	b = le.AppendUint16(b, 52)
	b = le.AppendUint16(b, 32)
	b = le.AppendUint16(b, uint16(len(segs)))
	b = le.AppendUint16(b, 40)
	b = le.AppendUint16(b, 0)
	b = le.AppendUint16(b, 0)
	off := uint32(52 + 32*len(segs))
	for _, s := range segs {
		flags := uint32(6)
		b = le.AppendUint32(b, s.typ)
		b = le.AppendUint32(b, off)
		b = le.AppendUint32(b, s.addr)
		b = le.AppendUint32(b, s.addr)
		b = le.AppendUint32(b, uint32(len(s.data)))
		b = le.AppendUint32(b, uint32(len(s.data)))
		b = le.AppendUint32(b, flags)
		b = le.AppendUint32(b, 0)
		off += uint32(len(s.data))
	}
	for _, s := range segs {
		b = append(b, s.data...)
	}
	return b
}

// Base64 renders dump bytes as the base64 text ESP-IDF prints over UART,
// 64 characters a line, optionally inside the CORE DUMP START/END framing.
func Base64(dump []byte, framed bool) []byte {
	enc := base64.StdEncoding.EncodeToString(dump)
	var b strings.Builder
	if framed {
		b.WriteString("================= CORE DUMP START =================\n")
	}
	for len(enc) > 0 {
		n := min(64, len(enc))
		b.WriteString(enc[:n])
		b.WriteByte('\n')
		enc = enc[n:]
	}
	if framed {
		b.WriteString("================= CORE DUMP END =================\n")
	}
	return []byte(b.String())
}

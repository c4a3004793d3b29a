package espcore

import (
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Addr is a 32-bit target address or register value. Its JSON form is a
// "0x"-prefixed hex string.
type Addr uint32

// MarshalText implements encoding.TextMarshaler.
func (a Addr) MarshalText() ([]byte, error) { return []byte(fmt.Sprintf("0x%x", uint32(a))), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (a *Addr) UnmarshalText(b []byte) error {
	var v uint32
	if _, err := fmt.Sscanf(string(b), "0x%x", &v); err != nil {
		return fmt.Errorf("parsing address %q: %w", b, err)
	}
	*a = Addr(v)
	return nil
}

// Report is a decoded and symbolized core dump.
type Report struct {
	// Chip is the chip name, such as "esp32" or "esp32c3".
	Chip string `json:"chip"`
	// Arch is "xtensa" or "riscv".
	Arch Arch `json:"arch"`
	// DumpFormat names the container: "elf 2.0", "elf 2.1", "elf 2.2",
	// "bin 0.1" to "bin 0.3", or "elf core" for a bare ELF core file.
	DumpFormat string `json:"dump_format"`
	// DumpVersion is the version word of the dump header.
	DumpVersion Addr `json:"dump_version"`
	// Checksum is the checksum the dump carried and that was verified:
	// "crc32", "sha256", or "" for a bare ELF core.
	Checksum string `json:"checksum,omitempty"`
	// ChipRevision is the chip revision from the header (major*100+minor),
	// or nil when the header has none.
	ChipRevision *int `json:"chip_revision,omitempty"`
	// AppELFSHA256 is the app ELF SHA256 prefix stored in the dump, and
	// FirmwareSHA256 the SHA256 of the firmware ELF it was decoded against.
	AppELFSHA256   string `json:"app_elf_sha256,omitempty"`
	FirmwareSHA256 string `json:"firmware_sha256"`
	// SHA256Match is true when the dump's app ELF SHA256 is a prefix of the
	// firmware's. Binary-format dumps carry no hash and report false.
	SHA256Match bool `json:"sha256_match"`

	// CrashedTCB and CrashedTask identify the task that crashed.
	CrashedTCB  Addr   `json:"crashed_tcb"`
	CrashedTask string `json:"crashed_task"`
	// InISR reports whether the crash happened in interrupt context;
	// ISRKnown is false when the dump does not say (binary format).
	InISR    bool `json:"in_isr"`
	ISRKnown bool `json:"isr_known"`
	// PanicReason is the panic message the device stored, if any.
	PanicReason string `json:"panic_reason,omitempty"`
	// ExceptionCause names the Xtensa EXCCAUSE value.
	ExceptionCause string `json:"exception_cause,omitempty"`
	// ExceptionRegisters are the Xtensa exception registers: exccause,
	// excvaddr, epc1..epc7, eps2..eps7 as present.
	ExceptionRegisters []Register `json:"exception_registers,omitempty"`
	// Registers are the crashed task's registers, named as GDB names them.
	Registers []Register `json:"registers"`
	// Backtrace is the crashed task's backtrace, innermost frame first.
	Backtrace []Frame `json:"backtrace"`
	// Tasks lists every task in the dump, the crashed one first.
	Tasks []Task `json:"tasks"`
	// MemoryRegions lists the firmware's sections and the dump's segments.
	MemoryRegions []MemoryRegion `json:"memory_regions"`

	// Signature is a stable hash of the chip, the crash kind and the top
	// frames that are not panic or abort plumbing; TopFrame is the first of
	// those frames and SignatureFrames all of them.
	Signature       string   `json:"signature"`
	CrashKind       string   `json:"crash_kind"`
	TopFrame        string   `json:"top_frame"`
	SignatureFrames []string `json:"signature_frames"`

	// Warnings lists problems that did not stop the decoding.
	Warnings []string `json:"warnings,omitempty"`
}

// Register is one named register value.
type Register struct {
	Name  string `json:"name"`
	Value Addr   `json:"value"`
	// Symbol is "name+offset" when the value points into the firmware and
	// the register holds a pointer.
	Symbol string `json:"symbol,omitempty"`
	// Pointer is set for registers GDB prints as pointers.
	Pointer bool `json:"pointer,omitempty"`
	// Signed is set for registers GDB prints as signed integers.
	Signed bool `json:"-"`
}

// Frame is one backtrace frame.
type Frame struct {
	PC       Addr   `json:"pc"`
	Function string `json:"function,omitempty"`
	File     string `json:"file,omitempty"`
	Line     int    `json:"line,omitempty"`
	// Inlined is set for the frames of functions into which the frame
	// above was inlined: they share its PC.
	Inlined bool `json:"inlined,omitempty"`
	// InFirmware is false for code outside the firmware ELF (ROM).
	InFirmware bool `json:"in_firmware"`
	// Scanned is set for frames found by scanning the stack, because the
	// frame below had no call frame information.
	Scanned bool `json:"scanned,omitempty"`
	// Args are the function's arguments where the DWARF says where they
	// live at this PC; HasArgs is false when the function's parameters
	// are not known at all (no DWARF for it).
	Args    []Arg `json:"args,omitempty"`
	HasArgs bool  `json:"-"`
	// ShowPC mirrors GDB: the PC is printed unless the frame starts a line.
	ShowPC bool `json:"-"`
}

// Task is one FreeRTOS task of the dump.
type Task struct {
	TCB          Addr    `json:"tcb"`
	Name         string  `json:"name"`
	Priority     uint32  `json:"priority"`
	BasePriority uint32  `json:"base_priority"`
	StackUsed    int64   `json:"stack_used"`
	StackFree    int64   `json:"stack_free"`
	Crashed      bool    `json:"crashed,omitempty"`
	Corrupted    bool    `json:"corrupted,omitempty"`
	Backtrace    []Frame `json:"backtrace"`
}

// MemoryRegion is a firmware section or a dump segment.
type MemoryRegion struct {
	Name  string `json:"name"`
	Addr  Addr   `json:"addr"`
	Size  uint32 `json:"size"`
	Attrs string `json:"attrs"`
}

// decoder holds one Decode call's state.
type decoder struct {
	im *image
	fw *Firmware
	// budget bounds the CFI rows evaluated while unwinding, so a dump
	// crafted to make the stack scan try every word stays cheap.
	budget int
}

// Limits on the work one Decode does for untrusted input.
const (
	unwindBudget = 20000
	maxTasks     = 256
)

// Decode parses dump bytes (raw partition contents, base64 text, or a bare
// ELF core file) and symbolizes them against fw. A dump whose app ELF
// SHA256 differs from fw's returns a *MismatchError (errors.Is
// ErrELFMismatch) and no report. Malformed dumps return a *FormatError.
func Decode(dump []byte, fw *Firmware) (*Report, error) {
	if fw == nil {
		return nil, errors.New("decoding core dump: no firmware")
	}
	im, err := parseImage(dump)
	if err != nil {
		return nil, fmt.Errorf("decoding core dump: %w", err)
	}
	if machineOf(im.Chip.Arch) != fw.machine {
		return nil, fmt.Errorf("decoding core dump: %s dump against %s firmware: %w", im.Chip.Arch, fw.Arch(),
			&MismatchError{DumpSHA256: im.AppSHA256, FirmwareSHA256: fw.SHA256()})
	}
	if im.AppSHA256 != "" && !strings.HasPrefix(fw.SHA256(), im.AppSHA256) {
		return nil, fmt.Errorf("decoding core dump: %w", &MismatchError{DumpSHA256: im.AppSHA256, FirmwareSHA256: fw.SHA256()})
	}
	d := &decoder{im: im, fw: fw, budget: unwindBudget}
	return d.report(), nil
}

func (d *decoder) report() *Report {
	im, fw := d.im, d.fw
	r := &Report{
		Chip:           im.Chip.Name,
		Arch:           im.Chip.Arch,
		DumpFormat:     im.Format,
		DumpVersion:    Addr(im.Version),
		Checksum:       im.Checksum,
		AppELFSHA256:   im.AppSHA256,
		FirmwareSHA256: fw.SHA256(),
		SHA256Match:    im.AppSHA256 != "" && strings.HasPrefix(fw.SHA256(), im.AppSHA256),
		CrashedTCB:     Addr(im.CrashedTCB),
		InISR:          im.InISR,
		ISRKnown:       im.HaveISR,
		PanicReason:    im.Panic,
	}
	if im.ChipRev >= 0 {
		rev := im.ChipRev
		r.ChipRevision = &rev
	}
	if _, err := fw.dwarfData(); err != nil {
		r.Warnings = append(r.Warnings, err.Error())
	}
	crashed := -1
	for i, t := range im.Tasks {
		if im.HaveCrashed && t.TCB == im.CrashedTCB {
			crashed = i
			break
		}
	}
	if crashed < 0 && len(im.Tasks) > 0 && (!im.HaveCrashed || im.CrashedTCB == currTaskMarker) {
		crashed = 0
		if im.CrashedTCB == currTaskMarker {
			// ESP-IDF leaves the marker when the crashed task's TCB was
			// broken and skipped; GDB then shows the first task.
			r.Warnings = append(r.Warnings, "the crashed task was skipped by the device (corrupted TCB); registers and backtrace are the first task's")
		}
	}
	if crashed < 0 && im.HaveCrashed {
		r.Warnings = append(r.Warnings, fmt.Sprintf("crashed task %#x has no registers in the dump", im.CrashedTCB))
	}
	if len(im.Tasks) > maxTasks {
		r.Warnings = append(r.Warnings, fmt.Sprintf("dump has %d tasks; only the first %d are decoded", len(im.Tasks), maxTasks))
		if crashed >= maxTasks {
			im.Tasks[0], im.Tasks[crashed] = im.Tasks[crashed], im.Tasks[0]
			crashed = 0
		}
		im.Tasks = im.Tasks[:maxTasks]
	}
	for i, t := range im.Tasks {
		task := d.task(t)
		task.Crashed = i == crashed
		if i == crashed {
			r.CrashedTask = task.Name
			r.CrashedTCB = task.TCB
			r.Registers = d.registers(t.Regs)
			r.Backtrace = task.Backtrace
		}
		r.Tasks = append(r.Tasks, task)
	}
	if im.Chip.Arch == ArchXtensa && im.HaveExc {
		r.ExceptionCause = xtExcCauseName(im.ExcCause)
		r.ExceptionRegisters = append(r.ExceptionRegisters,
			Register{Name: "exccause", Value: Addr(im.ExcCause)},
			Register{Name: "excvaddr", Value: Addr(im.ExcVAddr)})
		// epc registers first, then eps, as esp-coredump prints them.
		for _, want := range []func(uint32) bool{
			func(id uint32) bool { return id >= xtSREPC1 && id <= xtSREPC1+6 },
			func(id uint32) bool { return id >= xtSREPS2 && id <= xtSREPS2+5 },
		} {
			for i := 0; i+1 < len(im.Extra); i += 2 {
				if want(im.Extra[i]) {
					r.ExceptionRegisters = append(r.ExceptionRegisters,
						Register{Name: xtExtraRegName(im.Extra[i]), Value: Addr(im.Extra[i+1])})
				}
			}
		}
	}
	r.MemoryRegions = d.memoryRegions()
	r.signature()
	return r
}

func (d *decoder) task(t dumpTask) Task {
	task := Task{TCB: Addr(t.TCB), Name: t.Name, Corrupted: t.Flags != 0}
	l := d.fw.tcbLayout()
	rd := func(off int64) uint32 { v, _ := d.im.read32(t.TCB + uint32(off)); return v }
	if task.Name == "" {
		var name []byte
		for i := uint32(0); i < 16; i++ {
			w, ok := d.im.read32(t.TCB + uint32(l.Name) + i&^3)
			if !ok {
				break
			}
			c := byte(w >> (8 * (i & 3)))
			if c == 0 {
				break
			}
			name = append(name, c)
		}
		task.Name = cString(name)
	}
	task.Priority = rd(l.Priority)
	if l.HaveBase {
		task.BasePriority = rd(l.BasePriority)
	}
	top, stack := rd(l.TopOfStack), rd(l.Stack)
	task.StackFree = int64(top) - int64(stack)
	if l.HaveEnd {
		task.StackUsed = int64(rd(l.EndOfStack)) - int64(top)
	}
	task.Backtrace = d.symbolize(d.unwind(t.Regs))
	return task
}

// symbolize names the frames of a raw backtrace, expanding inlined calls
// into frames of their own as GDB does.
func (d *decoder) symbolize(raw []rawFrame) []Frame {
	var out []Frame
	idx, _ := d.fw.dwarfData()
	for i, rf := range raw {
		look := uint64(rf.PC)
		if rf.Caller {
			look--
		}
		f := Frame{PC: Addr(rf.PC), InFirmware: d.fw.isCode(rf.PC), Scanned: rf.Scanned, ShowPC: rf.Caller}
		if s, ok := d.fw.funcAt(uint32(look)); ok {
			f.Function = s.Name
		}
		var cu *cuInfo
		if idx != nil && f.InFirmware {
			cu = idx.cuFor(look)
		}
		if cu == nil {
			f.ShowPC = true
			out = append(out, f)
			continue
		}
		row, atStart, ok := cu.lineAt(look)
		if ok {
			f.File, f.Line = row.File, row.Line
		}
		if !rf.Caller && !atStart {
			f.ShowPC = true
		}
		scopes := cu.scopesAt(look)
		if len(scopes) == 0 {
			out = append(out, f)
			continue
		}
		last := len(scopes) - 1
		if scopes[last].Name != "" {
			f.Function = scopes[last].Name
		}
		fb := scopes[0].FrameBase
		st := rf.State
		if st == nil {
			st = &frameState{}
		}
		entry := func(reg uint64) (uint32, bool) { return d.entryValue(idx, raw, i, reg) }
		f.Args, f.HasArgs = d.args(idx, cu, scopes[last], fb, look, st, entry), true
		out = append(out, f)
		for k := last - 1; k >= 0; k-- {
			g := Frame{PC: f.PC, Function: scopes[k].Name, File: scopes[k+1].CallFile, Line: scopes[k+1].CallLine,
				Inlined: true, InFirmware: true, HasArgs: true}
			g.Args = d.args(idx, cu, scopes[k], fb, look, st, nil)
			out = append(out, g)
		}
	}
	return out
}

func (d *decoder) registers(regs []uint32) []Register {
	var out []Register
	sym := func(v uint32) string { return d.fw.symbolize(v) }
	if d.im.Chip.Arch == ArchRISCV {
		if len(regs) < 32 {
			return nil
		}
		for i := 1; i < 32; i++ {
			r := Register{Name: riscvRegNames[i], Value: Addr(regs[i]), Signed: true}
			switch i {
			case 1, 2, 3, 4, 8:
				r.Pointer, r.Signed = true, false
				if i != 8 {
					r.Symbol = sym(regs[i])
				}
			}
			out = append(out, r)
		}
		return append(out, Register{Name: "pc", Value: Addr(regs[0]), Pointer: true, Symbol: sym(regs[0])})
	}
	if len(regs) < xtRegAR+16 {
		return nil
	}
	out = append(out,
		Register{Name: "pc", Value: Addr(regs[xtRegPC]), Pointer: true, Symbol: sym(regs[xtRegPC])},
		Register{Name: "lbeg", Value: Addr(regs[xtRegLBEG])},
		Register{Name: "lend", Value: Addr(regs[xtRegLEND])},
		Register{Name: "lcount", Value: Addr(regs[xtRegLCOUNT])},
		Register{Name: "sar", Value: Addr(regs[xtRegSAR])},
		Register{Name: "ps", Value: Addr(regs[xtRegPS])})
	for i := 0; i < 16; i++ {
		out = append(out, Register{Name: fmt.Sprintf("a%d", i), Value: Addr(regs[xtRegAR+i]), Signed: true})
	}
	return out
}

// memoryRegions lists the firmware's loadable sections merged with the
// dump's segments, then the remaining dump segments, the way esp-coredump
// prints "ALL MEMORY REGIONS".
func (d *decoder) memoryRegions() []MemoryRegion {
	segs := append([]segment(nil), d.im.Segments...)
	var out []MemoryRegion
	for _, s := range d.fw.ef.Sections {
		if s.Type != elf.SHT_PROGBITS || s.Addr == 0 {
			continue
		}
		addr, size := uint64(s.Addr), s.Size
		attrs := sectionAttrs(s.Flags)
		merged := false
		// Mirror esp-coredump, which removes from the list it iterates:
		// the segment after a merged one is skipped for this section.
		for i := 0; i < len(segs); i++ {
			g := segs[i]
			ga, gl := uint64(g.Addr), uint64(len(g.Data))
			switch {
			case ga <= addr && addr <= ga+gl:
				l := gl
				if ga+gl <= addr+size {
					l = size + addr - ga
				}
				out = append(out, MemoryRegion{s.Name, Addr(ga), uint32(l), attrs})
			case addr <= ga && ga <= addr+size:
				l := size
				if ga+gl >= addr+size {
					l = size + ga + gl - (addr + size)
				}
				out = append(out, MemoryRegion{s.Name, Addr(addr), uint32(l), attrs})
			default:
				continue
			}
			segs = append(segs[:i], segs[i+1:]...)
			merged = true
		}
		if !merged {
			out = append(out, MemoryRegion{s.Name, Addr(addr), uint32(size), attrs})
		}
	}
	for _, g := range segs {
		name := ".coredump.tasks.data"
		if g.Flags&1 != 0 {
			name = ".coredump.rom.text"
		}
		out = append(out, MemoryRegion{name, Addr(g.Addr), uint32(len(g.Data)), segmentAttrs(g.Flags)})
	}
	return out
}

func sectionAttrs(f elf.SectionFlag) string {
	if f&elf.SHF_MASKPROC != 0 {
		return "MS"
	}
	b := []byte("R   ")
	if f&elf.SHF_WRITE != 0 {
		b[1] = 'W'
	}
	if f&elf.SHF_EXECINSTR != 0 {
		b[2] = 'X'
	}
	if f&elf.SHF_ALLOC != 0 {
		b[3] = 'A'
	}
	return string(b)
}

func segmentAttrs(f uint32) string {
	b := []byte("   ")
	if f&4 != 0 {
		b[0] = 'R'
	}
	if f&2 != 0 {
		b[1] = 'W'
	}
	if f&1 != 0 {
		b[2] = 'E'
	}
	return string(b)
}

// plumbing lists functions that belong to the panic and abort path rather
// than to the code that crashed; the signature skips them.
var plumbing = map[string]bool{
	"panic_abort": true, "esp_system_abort": true, "abort": true, "__assert_func": true,
	"__assert": true, "esp_panic_handler": true, "panic_handler": true, "xt_unhandled_exception": true,
	"panicHandler": true, "esp_backtrace_print": true, "_esp_error_check_failed": true,
	"_esp_error_check_failed_without_abort": true, "esp_panic_handler_reconfigure_wdts": true,
	"vApplicationStackOverflowHook": true, "panic_print_backtrace": true, "invoke_abort": true,
	"__stack_chk_fail": true, "esp_task_wdt_isr": true, "_xt_panic": true, "__ubsan_include": true,
	"raise": true, "_raise_r": true, "vPortTaskWrapper": true,
}

var (
	hexNumber = regexp.MustCompile(`0x[0-9a-fA-F]+`)
	coreNum   = regexp.MustCompile(`core \d+`)
)

// signature computes Signature, CrashKind, TopFrame and SignatureFrames.
// Addresses and core numbers are masked out of the panic reason so that
// the same crash in another build or on the other core groups together.
func (r *Report) signature() {
	kind := r.PanicReason
	if kind != "" {
		kind = coreNum.ReplaceAllString(hexNumber.ReplaceAllString(kind, "0x?"), "core ?")
	} else if r.ExceptionCause != "" {
		kind = r.ExceptionCause
	} else {
		kind = "unknown"
	}
	r.CrashKind = kind
	r.SignatureFrames = nil
	for _, f := range r.Backtrace {
		if f.Function == "" || plumbing[f.Function] || strings.HasPrefix(f.Function, "_xt_") {
			continue
		}
		r.SignatureFrames = append(r.SignatureFrames, f.Function)
		if len(r.SignatureFrames) == 3 {
			break
		}
	}
	r.TopFrame = ""
	if len(r.SignatureFrames) > 0 {
		r.TopFrame = r.SignatureFrames[0]
	}
	h := sha256.New()
	fmt.Fprintf(h, "espcore signature v1\nchip %s\nkind %s\n", r.Chip, kind)
	for _, f := range r.SignatureFrames {
		fmt.Fprintf(h, "frame %s\n", f)
	}
	r.Signature = hex.EncodeToString(h.Sum(nil)[:16])
}

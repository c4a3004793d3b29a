package espcore

import "encoding/binary"

// maxFrames bounds every backtrace.
const maxFrames = 64

// rawFrame is one unwound frame before symbolization.
type rawFrame struct {
	PC uint32
	// Caller is set for frames above the innermost one, whose PC is a
	// return address: lookups use PC-1 so they land on the call.
	Caller bool
	// Scanned is set when the frame was found by scanning the stack for a
	// return address, because no call frame information covered the
	// frame below it (code in ROM).
	Scanned bool
	// State holds the registers known in this frame, for arguments.
	State *frameState
}

// unwind walks the stack of one task.
func (d *decoder) unwind(regs []uint32) []rawFrame {
	if d.im.Chip.Arch == ArchXtensa {
		return d.unwindXtensa(regs)
	}
	return d.unwindRISCV(regs)
}

// xtensaPC turns a windowed-ABI return address, whose top two bits hold
// the caller's window increment, into a code address.
func xtensaPC(a0 uint32) uint32 {
	if a0&0xc0000000 == 0 {
		return a0
	}
	return a0&0x3fffffff | 0x40000000
}

// unwindXtensa follows the windowed-register call ABI the way the ESP-IDF
// panic handler does (esp_backtrace_get_next_frame): the caller's a0 and
// a1 live in the base save area, the 16 bytes below the callee's stack
// pointer.
func (d *decoder) unwindXtensa(regs []uint32) []rawFrame {
	if len(regs) < xtRegAR+2 {
		return nil
	}
	pc, sp, next := regs[xtRegPC], regs[xtRegAR+1], regs[xtRegAR]
	st := &frameState{Known: 0xffff}
	copy(st.Regs[:16], regs[xtRegAR:xtRegAR+16])
	out := []rawFrame{{PC: pc, State: st}}
	for len(out) < maxFrames && next != 0 {
		pc = xtensaPC(next)
		n, ok1 := d.im.read32(sp - 16)
		s, ok2 := d.im.read32(sp - 12)
		out = append(out, rawFrame{PC: pc, Caller: true, State: d.xtensaCallerState(st, next, sp)})
		st = out[len(out)-1].State
		if !ok1 || !ok2 || s <= sp {
			break
		}
		next, sp = n, s
	}
	return out
}

// xtensaCallerState recovers the registers of the caller of a frame whose
// state is callee, whose stack pointer is sp and whose a0 (the return
// address, with the call's window increment in its top two bits) is ra.
// With a window increment of n (call4, call8, call12) the caller's
// a(4n)..a15 are the callee's a0 upwards; its a0-a3 are in the base save
// area below the callee's stack pointer, and for call8 and call12 its
// a4-a7 (a4-a11) in the extra save area below its own caller's stack
// pointer's base save area.
func (d *decoder) xtensaCallerState(callee *frameState, ra, sp uint32) *frameState {
	st := &frameState{}
	inc := int(ra >> 30)
	for k := 0; k+4*inc < 16; k++ {
		if v, ok := callee.reg(uint64(k)); ok && inc > 0 {
			st.Regs[k+4*inc], st.Known = v, st.Known|1<<(k+4*inc)
		}
	}
	for k := 0; k < 4; k++ {
		if v, ok := d.im.read32(sp - 16 + 4*uint32(k)); ok {
			st.Regs[k], st.Known = v, st.Known|1<<k
		}
	}
	if inc >= 2 && st.Known&2 != 0 {
		if callerSP, ok := d.im.read32(st.Regs[1] - 12); ok {
			n := 4 * (inc - 1) // a4-a7 for call8, a4-a11 for call12
			base := callerSP - 16 - 4*uint32(n)
			for k := 0; k < n; k++ {
				if v, ok := d.im.read32(base + 4*uint32(k)); ok {
					st.Regs[4+k], st.Known = v, st.Known|1<<(4+k)
				}
			}
		}
	}
	return st
}

// unwindRISCV unwinds with the firmware's call frame information. When a
// frame has none (ROM code), it scans the stack for a return address into
// the firmware from which the rest of the chain unwinds cleanly.
func (d *decoder) unwindRISCV(regs []uint32) []rawFrame {
	if len(regs) < 32 {
		return nil
	}
	var st rvState
	copy(st.r[:], regs)
	for i := range st.known {
		st.known[i] = true
	}
	out, _ := d.walkRISCV(st, false, true)
	return out
}

// rvState is the register state of one RISC-V frame.
type rvState struct {
	r     [32]uint32 // r[0] holds the pc
	known [32]bool
}

// rvCallerSaved are the RISC-V registers a callee may change without
// saving them: ra, t0-t2, a0-a7, t3-t6.
var rvCallerSaved = []int{1, 5, 6, 7, 10, 11, 12, 13, 14, 15, 16, 17, 28, 29, 30, 31}

func (st *rvState) frameState() *frameState {
	fs := &frameState{Regs: st.r}
	for i := 1; i < 32; i++ {
		if st.known[i] {
			fs.Known |= 1 << i
		}
	}
	fs.Regs[0] = 0 // x0 reads as zero; r[0] holds the pc
	fs.Known |= 1
	return fs
}

// walkRISCV unwinds from st. caller says whether st's pc is a return
// address. It returns the frames and whether the walk ended cleanly, at a
// frame whose return address is zero or undefined (a task's entry).
func (d *decoder) walkRISCV(st rvState, caller, scan bool) ([]rawFrame, bool) {
	t := d.fw.cfiData()
	pc := st.r[0]
	out := []rawFrame{{PC: pc, Caller: caller}}
	for len(out) < maxFrames {
		look := uint64(pc)
		if caller {
			look--
		}
		fs := st.frameState()
		out[len(out)-1].State = fs
		if d.budget <= 0 {
			return out, false
		}
		d.budget--
		row, raReg, ok := t.rowAt(look)
		if !ok || row.CFAReg >= 32 || !st.known[row.CFAReg] || raReg >= 32 {
			if !scan {
				return out, false
			}
			rest, ok := d.scanRISCV(st.r[2])
			return append(out, rest...), ok
		}
		cfa := uint32(int64(st.r[row.CFAReg]) + row.CFAOff)
		fs.CFA, fs.HaveCFA = cfa, true
		next := st
		// Registers a call may clobber are unknown in the caller unless
		// the CFI says where they were saved.
		for _, reg := range rvCallerSaved {
			next.known[reg] = false
		}
		if raReg < 32 && row.Rules[raReg].Kind == ruleSame {
			// A leaf, or a function before its prologue: the return
			// address is still in its register.
			next.r[raReg], next.known[raReg] = st.r[raReg], st.known[raReg]
		}
		for reg := 1; reg < 32; reg++ {
			ru := row.Rules[reg]
			switch ru.Kind {
			case ruleUndef:
				next.known[reg] = false
			case ruleOffset:
				next.r[reg], next.known[reg] = d.im.read32(uint32(int64(cfa) + ru.N))
			case ruleValOffset:
				next.r[reg], next.known[reg] = uint32(int64(cfa)+ru.N), true
			case ruleRegister:
				if ru.N >= 0 && ru.N < 32 {
					next.r[reg], next.known[reg] = st.r[ru.N], st.known[ru.N]
				}
			}
		}
		if row.Rules[raReg].Kind == ruleUndef {
			return out, true
		}
		if !next.known[raReg] {
			return out, false
		}
		ra := next.r[raReg]
		if ra == 0 {
			return out, true
		}
		if cfa <= st.r[2] && ra == pc {
			return out, false
		}
		next.r[2], next.known[2] = cfa, true
		next.r[0], next.known[0] = ra, true
		st, pc, caller = next, ra, true
		out = append(out, rawFrame{PC: pc, Caller: true})
	}
	return out, false
}

// scanRISCV looks upward from sp, past the frame of code without CFI
// (typically a ROM function), for a return address into the firmware: an
// address in an executable section right after a call that may target
// code outside the firmware. The ROM frame may hold more than the return
// address, such as the register save area of a variadic function, so the
// caller's stack pointer is searched for too, 16-byte aligned above the
// slot. A candidate is taken only when the rest of the chain unwinds
// cleanly from it by CFI to a task's entry; stale return addresses left
// on the stack by earlier calls rarely do.
//
// Calls whose target can be decoded and lies outside the firmware are
// tried first; indirect calls, whose target is unknown, only after them.
func (d *decoder) scanRISCV(sp uint32) ([]rawFrame, bool) {
	for pass := 0; pass < 2; pass++ {
		if frames, ok := d.scanPass(sp, pass == 1); ok {
			return frames, true
		}
	}
	return nil, false
}

func (d *decoder) scanPass(sp uint32, indirect bool) ([]rawFrame, bool) {
	for a := sp; a < sp+1024; a += 4 {
		w, ok := d.im.read32(a)
		if !ok {
			return nil, false
		}
		if w&1 != 0 || !d.fw.isCode(w) || !d.fw.followsCall(w) {
			continue
		}
		target, resolved := d.fw.callTarget(w)
		if resolved && d.fw.isCode(target) || resolved == indirect {
			continue
		}
		for s := (a + 4 + 15) &^ 15; s < a+4+256; s += 16 {
			var st rvState
			st.r[0], st.known[0] = w, true
			st.r[2], st.known[2] = s, true
			frames, clean := d.walkRISCV(st, true, false)
			if clean {
				frames[0].Scanned = true
				return frames, true
			}
		}
	}
	return nil, false
}

// followsCall reports whether the instruction before addr is a RISC-V call
// (jal or jalr writing ra, or c.jalr).
func (f *Firmware) followsCall(addr uint32) bool {
	if b := f.code(addr-4, 4); b != nil {
		in := binary.LittleEndian.Uint32(b)
		if in&0xfff == 0x0ef || in&0x707f == 0x0067 && (in>>7)&0x1f == 1 {
			return true
		}
	}
	if b := f.code(addr-2, 2); b != nil {
		h := binary.LittleEndian.Uint16(b)
		if h&0xf07f == 0x9002 && (h>>7)&0x1f != 0 {
			return true
		}
	}
	return false
}

// callTarget decodes the target of the call that returns to addr: a jal,
// or an auipc and jalr pair. resolved is false for indirect calls.
func (f *Firmware) callTarget(addr uint32) (target uint32, resolved bool) {
	b := f.code(addr-4, 4)
	if b == nil {
		return 0, false
	}
	in := binary.LittleEndian.Uint32(b)
	switch {
	case in&0x7f == 0x6f: // jal
		imm := (in>>31)<<20 | ((in>>12)&0xff)<<12 | ((in>>20)&1)<<11 | ((in>>21)&0x3ff)<<1
		off := int32(imm<<11) >> 11
		return uint32(int32(addr-4) + off), true
	case in&0x707f == 0x67: // jalr: resolvable when an auipc sets its base
		rs1 := (in >> 15) & 0x1f
		p := f.code(addr-8, 4)
		if p == nil {
			return 0, false
		}
		au := binary.LittleEndian.Uint32(p)
		if au&0x7f != 0x17 || (au>>7)&0x1f != rs1 {
			return 0, false
		}
		return addr - 8 + au&0xfffff000 + uint32(int32(in)>>20), true
	}
	return 0, false
}

// code returns n bytes of firmware section contents at addr, or nil.
func (f *Firmware) code(addr uint32, n uint32) []byte {
	for _, s := range f.ef.Sections {
		if s.Type != 1 /* PROGBITS */ || s.Addr == 0 {
			continue
		}
		if uint64(addr) >= s.Addr && uint64(addr)+uint64(n) <= s.Addr+s.Size {
			o := s.Offset + uint64(addr) - s.Addr
			if o+uint64(n) <= uint64(len(f.raw)) {
				return f.raw[o : o+uint64(n)]
			}
		}
	}
	return nil
}

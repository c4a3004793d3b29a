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
	out := []rawFrame{{PC: pc}}
	for len(out) < maxFrames && next != 0 {
		pc = xtensaPC(next)
		out = append(out, rawFrame{PC: pc, Caller: true})
		n, ok1 := d.im.read32(sp - 16)
		s, ok2 := d.im.read32(sp - 12)
		if !ok1 || !ok2 || s <= sp {
			break
		}
		next, sp = n, s
	}
	return out
}

// unwindRISCV unwinds with the firmware's call frame information. When a
// frame has none (ROM code), it scans the stack for the next return
// address into the firmware.
func (d *decoder) unwindRISCV(regs []uint32) []rawFrame {
	if len(regs) < 32 {
		return nil
	}
	var r [32]uint32
	var known [32]bool
	copy(r[:], regs)
	for i := range known {
		known[i] = true
	}
	pc := r[0]
	out := []rawFrame{{PC: pc}}
	t := d.fw.cfiData()
	for len(out) < maxFrames {
		look := uint64(pc)
		if len(out) > 1 {
			look--
		}
		row, raReg, ok := t.rowAt(look)
		if !ok || row.CFAReg >= 32 || !known[row.CFAReg] || raReg >= 32 {
			// No CFI: try the stack scan from the current sp.
			f, nsp, ok := d.scanRISCV(r[2])
			if !ok {
				break
			}
			out = append(out, f)
			pc = f.PC
			r[2] = nsp
			for i := 3; i < 32; i++ {
				known[i] = false
			}
			known[1] = false
			continue
		}
		cfa := uint32(int64(r[row.CFAReg]) + row.CFAOff)
		var nr [32]uint32
		var nk [32]bool
		nr, nk = r, known
		for reg := 1; reg < 32; reg++ {
			ru := row.Rules[reg]
			switch ru.Kind {
			case ruleUndef:
				nk[reg] = false
			case ruleOffset:
				v, ok := d.im.read32(uint32(int64(cfa) + ru.N))
				nr[reg], nk[reg] = v, ok
			case ruleValOffset:
				nr[reg], nk[reg] = uint32(int64(cfa)+ru.N), true
			case ruleRegister:
				if ru.N >= 0 && ru.N < 32 {
					nr[reg], nk[reg] = r[ru.N], known[ru.N]
				}
			}
		}
		if !nk[raReg] {
			break
		}
		ra := nr[raReg]
		if ra == 0 {
			break
		}
		if cfa <= r[2] && ra == pc {
			break
		}
		nr[2], nk[2] = cfa, true
		r, known = nr, nk
		pc = ra
		out = append(out, rawFrame{PC: pc, Caller: true})
	}
	return out
}

// scanRISCV looks upward from sp for a word that is a return address into
// the firmware: an address in an executable section right after a call
// instruction. It returns the frame and the stack pointer of the caller.
func (d *decoder) scanRISCV(sp uint32) (rawFrame, uint32, bool) {
	for a := sp; a < sp+1024; a += 4 {
		w, ok := d.im.read32(a)
		if !ok {
			return rawFrame{}, 0, false
		}
		if w&1 != 0 || !d.fw.isCode(w) || !d.fw.followsCall(w) {
			continue
		}
		return rawFrame{PC: w, Caller: true, Scanned: true}, a + 4, true
	}
	return rawFrame{}, 0, false
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

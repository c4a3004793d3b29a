package espcore

import (
	"cmp"
	"encoding/binary"
	"errors"
	"slices"
	"sort"
)

// cfiTable indexes the frame description entries of .debug_frame (or,
// when that is missing, .eh_frame) by address. FDEs at address 0 describe
// code the linker discarded and are dropped: they would otherwise shadow
// the real functions at low addresses.
type cfiTable struct {
	sec   []byte
	addr  uint64 // section address, for pc-relative .eh_frame pointers
	eh    bool
	fdes  []fde
	cies  map[int]*cie
	ready bool
}

type cie struct {
	codeAlign uint64
	dataAlign int64
	raReg     uint64
	ptrEnc    byte
	hasAug    bool
	initial   []byte
}

type fde struct {
	Lo, Hi uint64
	CIE    int
	Instr  [2]int // [start, end) in sec
}

// Register rules of a CFI row.
type ruleKind uint8

const (
	ruleSame ruleKind = iota // DW_CFA_same_value (also the default here)
	ruleUndef
	ruleOffset    // saved at CFA+N
	ruleValOffset // value is CFA+N
	ruleRegister  // in register N
)

type rule struct {
	Kind ruleKind
	N    int64
}

const cfiMaxReg = 64

type cfiRow struct {
	CFAReg uint64
	CFAOff int64
	Rules  [cfiMaxReg]rule
}

var errCFI = errors.New("malformed call frame information")

func (f *Firmware) cfiData() *cfiTable {
	f.cfiOnce.Do(func() {
		t := &cfiTable{cies: map[int]*cie{}}
		if _, b := f.section(".debug_frame"); b != nil {
			t.sec = b
		} else if s, b := f.section(".eh_frame"); b != nil {
			t.sec, t.addr, t.eh = b, s.Addr, true
		}
		t.index()
		f.cfi = t
	})
	return f.cfi
}

type cfiReader struct {
	b   []byte
	p   int
	err error
}

func (r *cfiReader) u8() byte {
	if r.p >= len(r.b) {
		r.err = errCFI
		return 0
	}
	r.p++
	return r.b[r.p-1]
}

func (r *cfiReader) u16() uint64 {
	if r.p+2 > len(r.b) {
		r.err = errCFI
		r.p = len(r.b)
		return 0
	}
	r.p += 2
	return uint64(binary.LittleEndian.Uint16(r.b[r.p-2:]))
}

func (r *cfiReader) u32() uint64 {
	if r.p+4 > len(r.b) {
		r.err = errCFI
		r.p = len(r.b)
		return 0
	}
	r.p += 4
	return uint64(binary.LittleEndian.Uint32(r.b[r.p-4:]))
}

func (r *cfiReader) uleb() uint64 {
	var v uint64
	for s := uint(0); ; s += 7 {
		c := r.u8()
		if r.err != nil {
			return 0
		}
		if s < 64 {
			v |= uint64(c&0x7f) << s
		}
		if c&0x80 == 0 {
			return v
		}
	}
}

func (r *cfiReader) sleb() int64 {
	var v int64
	var s uint
	var c byte
	for {
		c = r.u8()
		if r.err != nil {
			return 0
		}
		if s < 64 {
			v |= int64(c&0x7f) << s
		}
		s += 7
		if c&0x80 == 0 {
			break
		}
	}
	if s < 64 && c&0x40 != 0 {
		v |= -1 << s
	}
	return v
}

// encoded reads a pointer in a DW_EH_PE_* encoding (.eh_frame only).
func (t *cfiTable) encoded(r *cfiReader, enc byte) uint64 {
	if enc == 0xff {
		return 0
	}
	pos := uint64(r.p)
	var v uint64
	switch enc & 0x0f {
	case 0x00, 0x03, 0x0b: // absptr, udata4, sdata4 (32-bit targets)
		v = r.u32()
	case 0x02, 0x0a:
		v = r.u16()
	case 0x01:
		v = r.uleb()
	case 0x09:
		v = uint64(r.sleb())
	default:
		r.err = errCFI
	}
	if enc&0x70 == 0x10 { // pcrel
		v += t.addr + pos
	}
	return v & 0xffffffff
}

func (t *cfiTable) parseCIE(off int) *cie {
	if c, ok := t.cies[off]; ok {
		return c
	}
	r := &cfiReader{b: t.sec, p: off}
	length := r.u32()
	if r.err != nil || length == 0xffffffff || uint64(off)+4+length > uint64(len(t.sec)) {
		return nil
	}
	end := off + 4 + int(length)
	r.b = t.sec[:end]
	id := r.u32()
	if (t.eh && id != 0) || (!t.eh && id != 0xffffffff) {
		return nil
	}
	c := &cie{ptrEnc: 0}
	version := r.u8()
	var aug []byte
	for {
		ch := r.u8()
		if r.err != nil || ch == 0 {
			break
		}
		aug = append(aug, ch)
	}
	if version >= 4 {
		r.u8()
		r.u8()
	}
	c.codeAlign = r.uleb()
	c.dataAlign = r.sleb()
	if version == 1 {
		c.raReg = uint64(r.u8())
	} else {
		c.raReg = r.uleb()
	}
	if len(aug) > 0 && aug[0] == 'z' {
		c.hasAug = true
		n := r.uleb()
		augEnd := r.p + int(n)
		for _, a := range aug[1:] {
			switch a {
			case 'R':
				c.ptrEnc = r.u8()
			case 'L':
				r.u8()
			case 'P':
				e := r.u8()
				t.encoded(r, e&0x7f)
			}
		}
		if augEnd > end || augEnd < r.p {
			return nil
		}
		r.p = augEnd
	} else if len(aug) > 0 {
		return nil // unknown augmentation without a length
	}
	if r.err != nil || r.p > end {
		return nil
	}
	c.initial = t.sec[r.p:end]
	t.cies[off] = c
	return c
}

func (t *cfiTable) index() {
	for off := 0; off+8 <= len(t.sec); {
		r := &cfiReader{b: t.sec, p: off}
		length := r.u32()
		if length == 0 { // .eh_frame terminator
			break
		}
		if length == 0xffffffff || uint64(off)+4+length > uint64(len(t.sec)) {
			break
		}
		end := off + 4 + int(length)
		r.b = t.sec[:end]
		idPos := r.p
		id := r.u32()
		isCIE := (t.eh && id == 0) || (!t.eh && id == 0xffffffff)
		if !isCIE {
			cieOff := int(id)
			if t.eh {
				cieOff = idPos - int(id)
			}
			if c := t.parseCIE(cieOff); c != nil {
				var lo, n uint64
				if t.eh {
					lo = t.encoded(r, c.ptrEnc)
					n = t.encoded(r, c.ptrEnc&0x0f)
					if c.hasAug {
						k := r.uleb()
						if k > uint64(end-r.p) {
							r.err = errCFI
						} else {
							r.p += int(k)
						}
					}
				} else {
					lo, n = r.u32(), r.u32()
				}
				if r.err == nil && lo != 0 && r.p <= end {
					t.fdes = append(t.fdes, fde{Lo: lo, Hi: lo + n, CIE: cieOff, Instr: [2]int{r.p, end}})
				}
			}
		}
		off = end
	}
	slices.SortFunc(t.fdes, func(a, b fde) int { return cmp.Compare(a.Lo, b.Lo) })
}

// rowAt evaluates the CFI program of the function containing pc up to pc.
func (t *cfiTable) rowAt(pc uint64) (*cfiRow, uint64, bool) {
	i := sort.Search(len(t.fdes), func(i int) bool { return t.fdes[i].Lo > pc }) - 1
	if i < 0 || pc >= t.fdes[i].Hi {
		return nil, 0, false
	}
	fd := t.fdes[i]
	c := t.cies[fd.CIE]
	if c == nil {
		return nil, 0, false
	}
	row := &cfiRow{}
	if !t.exec(row, nil, c, c.initial, fd.Lo, pc) {
		return nil, 0, false
	}
	init := *row
	if !t.exec(row, &init, c, t.sec[fd.Instr[0]:fd.Instr[1]], fd.Lo, pc) {
		return nil, 0, false
	}
	return row, c.raReg, true
}

// exec runs CFA instructions until the location passes pc.
func (t *cfiTable) exec(row, init *cfiRow, c *cie, prog []byte, loc, pc uint64) bool {
	r := &cfiReader{b: prog}
	var stack []cfiRow
	set := func(reg uint64, ru rule) {
		if reg < cfiMaxReg {
			row.Rules[reg] = ru
		}
	}
	restore := func(reg uint64) {
		if reg < cfiMaxReg {
			if init != nil {
				row.Rules[reg] = init.Rules[reg]
			} else {
				row.Rules[reg] = rule{}
			}
		}
	}
	for r.p < len(r.b) && r.err == nil {
		op := r.u8()
		switch op >> 6 {
		case 1:
			loc += uint64(op&0x3f) * c.codeAlign
			if loc > pc {
				return true
			}
			continue
		case 2:
			set(uint64(op&0x3f), rule{ruleOffset, int64(r.uleb()) * c.dataAlign})
			continue
		case 3:
			restore(uint64(op & 0x3f))
			continue
		}
		switch op {
		case 0x00:
		case 0x01:
			loc = r.u32()
		case 0x02, 0x03, 0x04:
			var d uint64
			switch op {
			case 0x02:
				d = uint64(r.u8())
			case 0x03:
				d = r.u16()
			default:
				d = r.u32()
			}
			loc += d * c.codeAlign
		case 0x05:
			reg := r.uleb()
			set(reg, rule{ruleOffset, int64(r.uleb()) * c.dataAlign})
		case 0x06:
			restore(r.uleb())
		case 0x07:
			set(r.uleb(), rule{Kind: ruleUndef})
		case 0x08:
			set(r.uleb(), rule{Kind: ruleSame})
		case 0x09:
			reg := r.uleb()
			set(reg, rule{ruleRegister, int64(r.uleb())})
		case 0x0a:
			if len(stack) > 64 {
				return false
			}
			stack = append(stack, *row)
		case 0x0b:
			if len(stack) == 0 {
				return false
			}
			*row = stack[len(stack)-1]
			stack = stack[:len(stack)-1]
		case 0x0c:
			row.CFAReg = r.uleb()
			row.CFAOff = int64(r.uleb())
		case 0x0d:
			row.CFAReg = r.uleb()
		case 0x0e:
			row.CFAOff = int64(r.uleb())
		case 0x0f: // def_cfa_expression: not supported
			return false
		case 0x10, 0x16: // expression, val_expression: rule not supported
			reg := r.uleb()
			n := r.uleb()
			if n > uint64(len(r.b)) {
				return false
			}
			r.p += int(n)
			set(reg, rule{Kind: ruleUndef})
		case 0x11:
			reg := r.uleb()
			set(reg, rule{ruleOffset, r.sleb() * c.dataAlign})
		case 0x12:
			row.CFAReg = r.uleb()
			row.CFAOff = r.sleb() * c.dataAlign
		case 0x13:
			row.CFAOff = r.sleb() * c.dataAlign
		case 0x14:
			reg := r.uleb()
			set(reg, rule{ruleValOffset, int64(r.uleb()) * c.dataAlign})
		case 0x15:
			reg := r.uleb()
			set(reg, rule{ruleValOffset, r.sleb() * c.dataAlign})
		case 0x2e:
			r.uleb()
		case 0x2f:
			reg := r.uleb()
			set(reg, rule{ruleOffset, -int64(r.uleb()) * c.dataAlign})
		default:
			return false
		}
		if loc > pc {
			return true
		}
	}
	return r.err == nil
}

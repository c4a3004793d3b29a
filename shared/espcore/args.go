package espcore

import (
	"debug/dwarf"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// param is a formal parameter of a subprogram or inlined subroutine.
type param struct {
	Name string
	// Loc is a location expression; when nil, List is an offset into
	// .debug_loc (ListV5 false) or .debug_loclists (ListV5 true).
	Loc     []byte
	List    int64
	HasList bool
	ListV5  bool
	Type    typeDesc
}

// typeDesc is as much of a parameter's type as printing it needs.
type typeDesc struct {
	Kind string // "charptr", "funcptr", "ptr", "char", "int", "uint", "bool", "enum", "" (not printed)
	Size int64
	Enum map[int64]string
}

// originEntry follows DW_AT_abstract_origin to the abstract entry, which
// holds the name and type of an inlined or out-of-line instance.
func originEntry(d *dwarf.Data, e *dwarf.Entry) *dwarf.Entry {
	ref, ok := e.Val(dwarf.AttrAbstractOrigin).(dwarf.Offset)
	if !ok {
		return nil
	}
	r := d.Reader()
	r.Seek(ref)
	o, err := r.Next()
	if err != nil {
		return nil
	}
	return o
}

func readParam(d *dwarf.Data, e *dwarf.Entry, names map[dwarf.Offset]string, types map[dwarf.Offset]typeDesc) param {
	p := param{Name: entryName(d, e, names, 0)}
	f := e.AttrField(dwarf.AttrLocation)
	if f != nil {
		switch f.Class {
		case dwarf.ClassExprLoc:
			p.Loc, _ = f.Val.([]byte)
		case dwarf.ClassLocListPtr:
			p.List, p.HasList = f.Val.(int64)
		case dwarf.ClassLocList:
			p.List, p.HasList = f.Val.(int64)
			p.ListV5 = true
		}
	}
	typeOf := e
	if _, ok := e.Val(dwarf.AttrType).(dwarf.Offset); !ok {
		if o := originEntry(d, e); o != nil {
			typeOf = o
		}
	}
	if off, ok := typeOf.Val(dwarf.AttrType).(dwarf.Offset); ok {
		if t, ok := types[off]; ok {
			p.Type = t
		} else {
			p.Type = classifyType(d, off)
			types[off] = p.Type
		}
	}
	return p
}

// entryAt reads the entry at off.
func entryAt(d *dwarf.Data, off dwarf.Offset) (*dwarf.Entry, *dwarf.Reader) {
	r := d.Reader()
	r.Seek(off)
	e, err := r.Next()
	if err != nil || e == nil {
		return nil, nil
	}
	return e, r
}

// skipQualifiers follows typedefs and qualifiers to the type they name.
func skipQualifiers(d *dwarf.Data, off dwarf.Offset) (*dwarf.Entry, *dwarf.Reader) {
	for i := 0; i < 16; i++ {
		e, r := entryAt(d, off)
		if e == nil {
			return nil, nil
		}
		switch e.Tag {
		case dwarf.TagTypedef, dwarf.TagConstType, dwarf.TagVolatileType, dwarf.TagRestrictType, dwarf.TagAtomicType:
			next, ok := e.Val(dwarf.AttrType).(dwarf.Offset)
			if !ok {
				return e, r // a qualified void
			}
			off = next
		default:
			return e, r
		}
	}
	return nil, nil
}

// DW_ATE_* base type encodings.
const (
	ateBoolean      = 0x02
	ateSigned       = 0x05
	ateSignedChar   = 0x06
	ateUnsigned     = 0x07
	ateUnsignedChar = 0x08
)

// classifyType reads just enough of a type to print a value of it,
// without building Go's whole type graph (which pulls in every structure
// a pointer leads to).
func classifyType(d *dwarf.Data, off dwarf.Offset) typeDesc {
	e, r := skipQualifiers(d, off)
	if e == nil {
		return typeDesc{}
	}
	size, _ := e.Val(dwarf.AttrByteSize).(int64)
	switch e.Tag {
	case dwarf.TagPointerType:
		pointee, ok := e.Val(dwarf.AttrType).(dwarf.Offset)
		if !ok {
			return typeDesc{Kind: "ptr", Size: 4}
		}
		pe, _ := skipQualifiers(d, pointee)
		switch {
		case pe == nil:
		case pe.Tag == dwarf.TagSubroutineType:
			return typeDesc{Kind: "funcptr", Size: 4}
		case pe.Tag == dwarf.TagBaseType:
			enc, _ := pe.Val(dwarf.AttrEncoding).(int64)
			psize, _ := pe.Val(dwarf.AttrByteSize).(int64)
			if psize == 1 && (enc == ateSignedChar || enc == ateUnsignedChar) {
				return typeDesc{Kind: "charptr", Size: 4}
			}
		}
		return typeDesc{Kind: "ptr", Size: 4}
	case dwarf.TagBaseType:
		enc, _ := e.Val(dwarf.AttrEncoding).(int64)
		switch enc {
		case ateSignedChar, ateUnsignedChar:
			return typeDesc{Kind: "char", Size: size}
		case ateSigned:
			return typeDesc{Kind: "int", Size: size}
		case ateUnsigned:
			return typeDesc{Kind: "uint", Size: size}
		case ateBoolean:
			return typeDesc{Kind: "bool", Size: size}
		}
	case dwarf.TagEnumerationType:
		t := typeDesc{Kind: "enum", Size: size, Enum: map[int64]string{}}
		if !e.Children {
			return t
		}
		for i := 0; i < 4096; i++ {
			c, err := r.Next()
			if err != nil || c == nil || c.Tag == 0 {
				break
			}
			name, _ := c.Val(dwarf.AttrName).(string)
			switch v := c.Val(dwarf.AttrConstValue).(type) {
			case int64:
				t.Enum[v] = name
			case uint64:
				t.Enum[int64(v)] = name
			}
		}
		return t
	}
	return typeDesc{}
}

// frameState is what the unwinder knows of one frame's registers, by
// DWARF register number, and its canonical frame address.
type frameState struct {
	Regs    [32]uint32
	Known   uint32 // bit n set when Regs[n] is known
	CFA     uint32
	HaveCFA bool
}

func (s *frameState) reg(n uint64) (uint32, bool) {
	if n >= 32 || s.Known&(1<<n) == 0 {
		return 0, false
	}
	return s.Regs[n], true
}

// locExpr returns the location expression of p at pc.
func (x *dwarfIndex) locExpr(cu *cuInfo, p param, pc uint64) []byte {
	if p.Loc != nil {
		return p.Loc
	}
	if !p.HasList || x.compressed {
		return nil
	}
	le := binary.LittleEndian
	if !p.ListV5 {
		b := x.sections[".debug_loc"]
		base := cu.base
		for o := p.List; o >= 0 && o+8 <= int64(len(b)); {
			lo, hi := uint64(le.Uint32(b[o:])), uint64(le.Uint32(b[o+4:]))
			o += 8
			if lo == 0 && hi == 0 {
				return nil
			}
			if lo == 0xffffffff {
				base = hi
				continue
			}
			if o+2 > int64(len(b)) {
				return nil
			}
			n := int64(le.Uint16(b[o:]))
			o += 2
			if o+n > int64(len(b)) {
				return nil
			}
			if pc >= base+lo && pc < base+hi {
				return b[o : o+n]
			}
			o += n
		}
		return nil
	}
	b := x.sections[".debug_loclists"]
	if p.List < 0 || p.List >= int64(len(b)) {
		return nil
	}
	r := &cfiReader{b: b, p: int(p.List)}
	base := cu.base
	for r.err == nil {
		kind := r.u8()
		var lo, hi uint64
		switch kind {
		case 0: // DW_LLE_end_of_list
			return nil
		case 4: // DW_LLE_offset_pair
			lo, hi = base+r.uleb(), 0
			hi = base + r.uleb()
		case 5: // DW_LLE_default_location
			lo, hi = 0, 1<<32
		case 6: // DW_LLE_base_address
			base = r.u32()
			continue
		case 7: // DW_LLE_start_end
			lo, hi = r.u32(), r.u32()
		case 8: // DW_LLE_start_length
			lo = r.u32()
			hi = lo + r.uleb()
		default: // indexed forms need .debug_addr: not supported
			return nil
		}
		n := r.uleb()
		if r.err != nil || n > uint64(len(b)-r.p) {
			return nil
		}
		expr := b[r.p : r.p+int(n)]
		r.p += int(n)
		if pc >= lo && pc < hi {
			return expr
		}
	}
	return nil
}

// Kinds of result of a location expression.
const (
	locNone = iota
	locReg
	locMem
	locValue
)

// evalLoc evaluates the subset of DWARF expressions compilers use for
// parameters: registers, register or frame-base relative memory, constants
// and stack values. Anything else (entry values, pieces) is unknown.
//
// entry, when not nil, gives the value a register had on entry to the
// function (DW_OP_entry_value), from the caller's call site.
func evalLoc(expr, frameBase []byte, st *frameState, depth int, entry func(reg uint64) (uint32, bool)) (kind int, v uint32) {
	r := &cfiReader{b: expr}
	var stack []uint32
	push := func(x uint32) { stack = append(stack, x) }
	for r.p < len(expr) && r.err == nil {
		op := r.u8()
		switch {
		case op >= 0x50 && op <= 0x6f: // DW_OP_reg0..31
			if r.p != len(expr) {
				return locNone, 0
			}
			val, ok := st.reg(uint64(op - 0x50))
			if !ok {
				return locNone, 0
			}
			return locReg, val
		case op == 0x90: // DW_OP_regx
			val, ok := st.reg(r.uleb())
			if !ok || r.p != len(expr) {
				return locNone, 0
			}
			return locReg, val
		case op >= 0x70 && op <= 0x8f: // DW_OP_breg0..31
			val, ok := st.reg(uint64(op - 0x70))
			off := r.sleb()
			if !ok {
				return locNone, 0
			}
			push(uint32(int64(val) + off))
		case op == 0x91: // DW_OP_fbreg
			off := r.sleb()
			if depth > 0 || frameBase == nil {
				return locNone, 0
			}
			k, fb := evalLoc(frameBase, nil, st, depth+1, nil)
			if k != locMem && k != locValue {
				return locNone, 0
			}
			push(uint32(int64(fb) + off))
		case op == 0xa3 || op == 0xf3: // DW_OP_entry_value, DW_OP_GNU_entry_value
			n := r.uleb()
			if entry == nil || r.err != nil || n > uint64(len(expr)-r.p) {
				return locNone, 0
			}
			reg, ok := singleReg(expr[r.p : r.p+int(n)])
			r.p += int(n)
			if !ok {
				return locNone, 0
			}
			val, ok := entry(reg)
			if !ok {
				return locNone, 0
			}
			push(val)
		case op == 0xa5 || op == 0xf5: // DW_OP_regval_type: a register's value
			val, ok := st.reg(r.uleb())
			r.uleb()
			if !ok {
				return locNone, 0
			}
			push(val)
		case op == 0xa8 || op == 0xf7: // DW_OP_convert: 32-bit values stay as they are
			r.uleb()
		case op == 0x9c: // DW_OP_call_frame_cfa
			if !st.HaveCFA {
				return locNone, 0
			}
			push(st.CFA)
		case op == 0x03: // DW_OP_addr
			push(uint32(r.u32()))
		case op >= 0x30 && op <= 0x4f: // DW_OP_lit0..31
			push(uint32(op - 0x30))
		case op == 0x08:
			push(uint32(r.u8()))
		case op == 0x09:
			push(uint32(int8(r.u8())))
		case op == 0x0a:
			push(uint32(r.u16()))
		case op == 0x0b:
			push(uint32(int16(r.u16())))
		case op == 0x0c, op == 0x0d:
			push(uint32(r.u32()))
		case op == 0x10:
			push(uint32(r.uleb()))
		case op == 0x11:
			push(uint32(r.sleb()))
		case op == 0x23: // DW_OP_plus_uconst
			if len(stack) == 0 {
				return locNone, 0
			}
			stack[len(stack)-1] += uint32(r.uleb())
		case op == 0x22, op == 0x1c: // DW_OP_plus, DW_OP_minus
			if len(stack) < 2 {
				return locNone, 0
			}
			a, b := stack[len(stack)-2], stack[len(stack)-1]
			stack = stack[:len(stack)-2]
			if op == 0x22 {
				push(a + b)
			} else {
				push(a - b)
			}
		case op == 0x9f: // DW_OP_stack_value
			if len(stack) == 0 || r.p != len(expr) {
				return locNone, 0
			}
			return locValue, stack[len(stack)-1]
		default:
			return locNone, 0
		}
	}
	if r.err != nil || len(stack) == 0 {
		return locNone, 0
	}
	return locMem, stack[len(stack)-1]
}

// Arg is a function argument as the decoder could recover it.
type Arg struct {
	Name string `json:"name"`
	// Value is formatted as GDB would, or "<optimized out>" when the
	// location is not known at this PC.
	Value string `json:"value"`
}

// args evaluates the parameters of a scope for one frame.
func (d *decoder) args(idx *dwarfIndex, cu *cuInfo, sc scope, frameBase []byte, pc uint64, st *frameState, entry func(uint64) (uint32, bool)) []Arg {
	var out []Arg
	for _, p := range sc.Params {
		if p.Name == "" {
			continue
		}
		a := Arg{Name: p.Name, Value: "<optimized out>"}
		if expr := idx.locExpr(cu, p, pc); expr != nil {
			switch kind, v := evalLoc(expr, frameBase, st, 0, entry); kind {
			case locReg, locValue:
				a.Value = d.formatValue(p.Type, uint64(v))
			case locMem:
				if val, ok := d.readValue(v, p.Type.Size); ok {
					a.Value = d.formatValue(p.Type, val)
				} else {
					a.Value = fmt.Sprintf("<error: Cannot access memory at address 0x%x>", v)
				}
			}
		}
		out = append(out, a)
	}
	return out
}

func (d *decoder) readValue(addr uint32, size int64) (uint64, bool) {
	switch size {
	case 1, 2, 3, 4, 0:
		w, ok := d.im.read32(addr &^ 3)
		if !ok {
			return 0, false
		}
		if addr&3 != 0 || size < 4 && size > 0 {
			// Unaligned or short: assemble from the bytes.
			var v uint64
			n := size
			if n == 0 {
				n = 4
			}
			for i := int64(0); i < n; i++ {
				a := addr + uint32(i)
				w, ok := d.im.read32(a &^ 3)
				if !ok {
					return 0, false
				}
				v |= uint64(byte(w>>(8*(a&3)))) << (8 * i)
			}
			return v, true
		}
		return uint64(w), true
	case 8:
		lo, ok1 := d.readValue(addr, 4)
		hi, ok2 := d.readValue(addr+4, 4)
		return lo | hi<<32, ok1 && ok2
	}
	return 0, false
}

// formatValue prints a value the way GDB prints arguments.
func (d *decoder) formatValue(t typeDesc, v uint64) string {
	switch t.Kind {
	case "charptr", "funcptr", "ptr":
		// GDB names the symbol a pointer points into (when it lies in a
		// section of the firmware) and prints the string a char* points to.
		s := fmt.Sprintf("0x%x", uint32(v))
		if v != 0 {
			if sym := d.fw.symbolize(uint32(v)); sym != "" {
				s += " <" + sym + ">"
			}
		}
		if t.Kind == "charptr" && v != 0 {
			if str, ok := d.readString(uint32(v), 200); ok {
				s += " " + strconv.Quote(str)
			}
		}
		return s
	case "char":
		c := byte(v)
		if c >= 0x20 && c < 0x7f {
			return fmt.Sprintf("%d '%c'", int8(c), c)
		}
		return fmt.Sprintf("%d %s", int8(c), strings.Trim(strconv.QuoteRune(rune(c)), "\""))
	case "bool":
		if v&0xff != 0 {
			return "true"
		}
		return "false"
	case "enum":
		if n, ok := t.Enum[int64(int32(v))]; ok {
			return n
		}
		return fmt.Sprintf("%d", int32(v))
	case "int":
		switch t.Size {
		case 1:
			return fmt.Sprintf("%d", int8(v))
		case 2:
			return fmt.Sprintf("%d", int16(v))
		case 8:
			return fmt.Sprintf("%d", int64(v))
		}
		return fmt.Sprintf("%d", int32(v))
	case "uint":
		switch t.Size {
		case 1:
			return fmt.Sprintf("%d", uint8(v))
		case 2:
			return fmt.Sprintf("%d", uint16(v))
		case 8:
			return fmt.Sprintf("%d", v)
		}
		return fmt.Sprintf("%d", uint32(v))
	}
	return "..."
}

// readString reads a NUL-terminated string from dump memory.
func (d *decoder) readString(addr uint32, max int) (string, bool) {
	var b []byte
	for i := 0; i < max; i++ {
		a := addr + uint32(i)
		w, ok := d.im.read32(a &^ 3)
		if !ok {
			return "", false
		}
		c := byte(w >> (8 * (a & 3)))
		if c == 0 {
			return string(b), true
		}
		b = append(b, c)
	}
	return string(b) + "...", true
}

// entryValue finds the value register reg had when the function of frame
// i was entered, from the call site at the return address in frame i+1:
// the caller's DWARF says how to compute the argument it passed there.
func (d *decoder) entryValue(idx *dwarfIndex, raw []rawFrame, i int, reg uint64) (uint32, bool) {
	if i+1 >= len(raw) || raw[i+1].State == nil {
		return 0, false
	}
	caller := raw[i+1]
	cu := idx.cuFor(uint64(caller.PC) - 1)
	if cu == nil {
		return 0, false
	}
	for _, cs := range cu.calls {
		if cs.Return != uint64(caller.PC) {
			continue
		}
		for _, p := range cs.Params {
			if p.Reg != reg {
				continue
			}
			var fb []byte
			if sc := cu.scopesAt(uint64(caller.PC) - 1); len(sc) > 0 {
				fb = sc[0].FrameBase
			}
			// A call value is computed, not a location: whatever is on top
			// of the stack is the value.
			if k, v := evalLoc(p.Value, fb, caller.State, 0, nil); k != locNone {
				return v, true
			}
			return 0, false
		}
	}
	return 0, false
}

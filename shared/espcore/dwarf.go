package espcore

import (
	"cmp"
	"debug/dwarf"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
)

// dwarfIndex finds the compilation unit of an address through
// .debug_aranges and parses that unit's line table and scopes on first
// use, so decoding a dump touches only the units its addresses fall in.
type dwarfIndex struct {
	full       *dwarf.Data // set when units are read from one whole-file Data
	compressed bool        // debug sections are compressed: no raw location lists
	sections   map[string][]byte
	info       []byte
	ranges     []cuRange // sorted by Lo

	mu  sync.Mutex
	cus map[dwarf.Offset]*cuInfo
}

type cuRange struct {
	Lo, Hi uint64
	// CU is the offset of the unit header (from .debug_aranges) or, when
	// Entry is set, of the unit's first entry.
	CU    dwarf.Offset
	Entry bool
}

// cuInfo is what one compilation unit knows about its addresses.
// GNU names of the DWARF 5 call site entries, which GCC emits before
// DWARF 5.
const (
	tagGNUCallSite          dwarf.Tag  = 0x4109
	tagGNUCallSiteParameter dwarf.Tag  = 0x410a
	attrGNUCallSiteValue    dwarf.Attr = 0x2111
	// callSiteMark and below mark call sites on the entry stack of
	// loadCU: callSiteMark-i is call site i.
	callSiteMark = -10
)

// callSite is a call instruction the compiler described, with the values
// of the argument registers at the call, in the caller's terms.
type callSite struct {
	Return uint64 // the return address
	Params []callParam
}

type callParam struct {
	Reg   uint64
	Value []byte // DWARF expression computing the value in the caller's frame
}

// singleReg returns N for an expression that is just DW_OP_regN.
func singleReg(expr []byte) (uint64, bool) {
	switch {
	case len(expr) == 1 && expr[0] >= 0x50 && expr[0] <= 0x6f:
		return uint64(expr[0] - 0x50), true
	case len(expr) >= 2 && expr[0] == 0x90: // DW_OP_regx
		r := &cfiReader{b: expr, p: 1}
		n := r.uleb()
		return n, r.err == nil && r.p == len(expr)
	case len(expr) >= 3 && (expr[0] == 0xa5 || expr[0] == 0xf5): // DW_OP_regval_type, GNU form
		r := &cfiReader{b: expr, p: 1}
		n := r.uleb()
		r.uleb()
		return n, r.err == nil && r.p == len(expr)
	}
	return 0, false
}

type cuInfo struct {
	calls  []callSite
	d      *dwarf.Data
	base   uint64       // the unit's low_pc, base of its location lists
	entry  dwarf.Offset // offset of the unit's first entry in d
	rows   []lineRow    // sorted by address
	files  []*dwarf.LineFile
	scopes []scope // subprograms and inlined subroutines
	err    error
}

type lineRow struct {
	Addr   uint64
	File   string
	Line   int
	IsStmt bool
	End    bool
}

// scope is a subprogram or an inlined subroutine with its address ranges.
type scope struct {
	Ranges   [][2]uint64
	Name     string
	Depth    int
	Inline   bool
	CallFile string
	CallLine int
	// FrameBase is the subprogram's DW_AT_frame_base expression.
	FrameBase []byte
	Params    []param
}

func (f *Firmware) dwarfData() (*dwarfIndex, error) {
	f.dwarfOnce.Do(func() {
		defer func() {
			if p := recover(); p != nil {
				f.dwarfErr = fmt.Errorf("reading firmware DWARF: malformed: %v", p)
			}
		}()
		idx := &dwarfIndex{cus: map[dwarf.Offset]*cuInfo{}, sections: map[string][]byte{}}
		compressed := false
		for _, s := range f.ef.Sections {
			if strings.HasPrefix(s.Name, ".debug_") || strings.HasPrefix(s.Name, ".zdebug_") {
				if s.Flags&elf.SHF_COMPRESSED != 0 || strings.HasPrefix(s.Name, ".zdebug_") {
					compressed = true
				}
				if _, b := f.section(s.Name); b != nil {
					idx.sections[s.Name] = b
				}
			}
		}
		idx.compressed = compressed
		idx.info = idx.sections[".debug_info"]
		if idx.info == nil && !compressed {
			f.dwarfErr = errors.New("reading firmware DWARF: no .debug_info section")
			return
		}
		if ar := idx.sections[".debug_aranges"]; ar != nil && !compressed {
			idx.ranges = parseAranges(ar)
		}
		if len(idx.ranges) == 0 {
			// Without aranges (or with compressed sections) read the
			// whole DWARF once and find the units' ranges from their
			// entries.
			d, err := f.ef.DWARF()
			if err != nil {
				f.dwarfErr = fmt.Errorf("reading firmware DWARF: %w", err)
				return
			}
			idx.full = d
			idx.ranges = rangesFromUnits(d)
		}
		slices.SortFunc(idx.ranges, func(a, b cuRange) int { return cmp.Compare(a.Lo, b.Lo) })
		f.dwarf = idx
	})
	return f.dwarf, f.dwarfErr
}

// unitData returns a dwarf.Data holding only the unit whose header is at
// off in .debug_info, and the offset of its first entry in that Data.
// Parsing one unit instead of all of them is what keeps the first
// decode against a large firmware fast.
func (x *dwarfIndex) unitData(off dwarf.Offset) (*dwarf.Data, dwarf.Offset, error) {
	if int(off)+4 > len(x.info) {
		return nil, 0, fmt.Errorf("unit offset %#x is past .debug_info", off)
	}
	n := binary.LittleEndian.Uint32(x.info[off:])
	if n >= 0xfffffff0 || uint64(off)+4+uint64(n) > uint64(len(x.info)) {
		return nil, 0, fmt.Errorf("unit at %#x has bad length %#x", off, n)
	}
	s := x.sections
	d, err := dwarf.New(s[".debug_abbrev"], nil, nil, x.info[off:uint64(off)+4+uint64(n)], s[".debug_line"], nil, s[".debug_ranges"], s[".debug_str"])
	if err != nil {
		return nil, 0, err
	}
	for _, name := range []string{".debug_addr", ".debug_line_str", ".debug_str_offsets", ".debug_rnglists"} {
		if b := s[name]; b != nil {
			if err := d.AddSection(name, b); err != nil {
				return nil, 0, err
			}
		}
	}
	return d, x.unitHeaderLen(off), nil
}

// parseAranges reads .debug_aranges (DWARF 2-5, 32-bit format, 4-byte
// addresses). Malformed sets end the parse; what was read is kept.
func parseAranges(b []byte) []cuRange {
	le := binary.LittleEndian
	var out []cuRange
	for p := 0; p+16 <= len(b); {
		unitLen := int(le.Uint32(b[p:]))
		if unitLen == 0xffffffff || unitLen < 12 || p+4+unitLen > len(b) {
			break
		}
		end := p + 4 + unitLen
		cu := dwarf.Offset(le.Uint32(b[p+6:]))
		addrSize, segSize := b[p+10], b[p+11]
		if addrSize != 4 || segSize != 0 {
			p = end
			continue
		}
		q := p + 16 // tuples are aligned to twice the address size from the unit start
		for ; q+8 <= end; q += 8 {
			// Zero pairs end a set but also stand for discarded code
			// inside it, so read to the unit's end and skip them.
			lo, n := le.Uint32(b[q:]), le.Uint32(b[q+4:])
			if lo != 0 && n != 0 {
				out = append(out, cuRange{Lo: uint64(lo), Hi: uint64(lo) + uint64(n), CU: cu})
			}
		}
		p = end
	}
	return out
}

func rangesFromUnits(d *dwarf.Data) []cuRange {
	var out []cuRange
	r := d.Reader()
	for {
		e, err := r.Next()
		if err != nil || e == nil {
			break
		}
		if e.Tag == dwarf.TagCompileUnit {
			if rs, err := d.Ranges(e); err == nil {
				for _, rg := range rs {
					if rg[0] != 0 && rg[1] > rg[0] {
						out = append(out, cuRange{Lo: rg[0], Hi: rg[1], CU: e.Offset, Entry: true})
					}
				}
			}
		}
		r.SkipChildren()
	}
	return out
}

// unitFor returns the DWARF data and first entry of the unit covering pc
// without parsing its line table and scopes.
func (x *dwarfIndex) unitFor(pc uint64) (*dwarf.Data, dwarf.Offset, bool) {
	off, entry, ok := x.unitOffset(pc)
	if !ok {
		return nil, 0, false
	}
	if x.full != nil {
		if !entry {
			off += x.unitHeaderLen(off)
		}
		return x.full, off, true
	}
	d, start, err := x.unitData(off)
	return d, start, err == nil
}

// unitOffset finds the unit covering pc through the range index.
func (x *dwarfIndex) unitOffset(pc uint64) (dwarf.Offset, bool, bool) {
	i := sort.Search(len(x.ranges), func(i int) bool { return x.ranges[i].Lo > pc }) - 1
	for n := 0; i >= 0 && n < 64; i, n = i-1, n+1 {
		if pc >= x.ranges[i].Lo && pc < x.ranges[i].Hi {
			return x.ranges[i].CU, x.ranges[i].Entry, true
		}
	}
	return 0, false, false
}

// cuFor returns the parsed compilation unit covering pc, or nil.
func (x *dwarfIndex) cuFor(pc uint64) *cuInfo {
	i := sort.Search(len(x.ranges), func(i int) bool { return x.ranges[i].Lo > pc }) - 1
	var off dwarf.Offset
	found, entry := false, false
	for n := 0; i >= 0 && n < 64; i, n = i-1, n+1 {
		if pc >= x.ranges[i].Lo && pc < x.ranges[i].Hi {
			off, found, entry = x.ranges[i].CU, true, x.ranges[i].Entry
			break
		}
	}
	if !found {
		return nil
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if cu, ok := x.cus[off]; ok {
		return cu
	}
	var cu *cuInfo
	if x.full != nil {
		start := off
		if !entry {
			start += x.unitHeaderLen(off)
		}
		cu = x.loadCU(x.full, start)
	} else if d, start, err := x.unitData(off); err != nil {
		cu = &cuInfo{err: fmt.Errorf("reading DWARF unit at %#x: %w", off, err)}
	} else {
		cu = x.loadCU(d, start)
	}
	x.cus[off] = cu
	return cu
}

func (x *dwarfIndex) loadCU(d *dwarf.Data, off dwarf.Offset) (cu *cuInfo) {
	cu = &cuInfo{d: d, entry: off}
	defer func() {
		if p := recover(); p != nil {
			cu = &cuInfo{err: fmt.Errorf("reading DWARF unit at %#x: malformed: %v", off, p)}
		}
	}()
	r := d.Reader()
	r.Seek(off)
	e, err := r.Next()
	if err != nil || e == nil || e.Tag != dwarf.TagCompileUnit {
		cu.err = fmt.Errorf("reading DWARF unit at %#x: %v", off, err)
		return cu
	}
	if lr, err := d.LineReader(e); err == nil && lr != nil {
		cu.files = lr.Files()
		var le dwarf.LineEntry
		for lr.Next(&le) == nil {
			name := ""
			if le.File != nil {
				name = le.File.Name
			}
			cu.rows = append(cu.rows, lineRow{Addr: le.Address, File: name, Line: le.Line, IsStmt: le.IsStmt, End: le.EndSequence})
		}
		slices.SortStableFunc(cu.rows, func(a, b lineRow) int { return cmp.Compare(a.Addr, b.Addr) })
	}
	if lo, ok := e.Val(dwarf.AttrLowpc).(uint64); ok {
		cu.base = lo
	}
	if !e.Children {
		return cu
	}
	// stack holds, per open entry with children, the index of its scope
	// in cu.scopes (or -1), so parameters find the function they belong to.
	stack := []int{-1}
	names := map[dwarf.Offset]string{}
	types := map[dwarf.Offset]typeDesc{}
	for len(stack) > 0 {
		e, err := r.Next()
		if err != nil || e == nil {
			break
		}
		if e.Tag == 0 {
			stack = stack[:len(stack)-1]
			continue
		}
		idx := -1
		switch e.Tag {
		case dwarf.TagSubprogram, dwarf.TagInlinedSubroutine:
			rs, _ := d.Ranges(e)
			if len(rs) > 0 {
				s := scope{Ranges: rs, Depth: len(stack), Inline: e.Tag == dwarf.TagInlinedSubroutine}
				s.Name = entryName(d, e, names, 0)
				if s.Inline {
					if fi, ok := e.Val(dwarf.AttrCallFile).(int64); ok && fi >= 0 && int(fi) < len(cu.files) && cu.files[fi] != nil {
						s.CallFile = cu.files[fi].Name
					}
					if ln, ok := e.Val(dwarf.AttrCallLine).(int64); ok {
						s.CallLine = int(ln)
					}
				} else if fb, ok := e.Val(dwarf.AttrFrameBase).([]byte); ok {
					s.FrameBase = fb
				}
				cu.scopes = append(cu.scopes, s)
				idx = len(cu.scopes) - 1
			}
		case dwarf.TagFormalParameter:
			if p := stack[len(stack)-1]; p >= 0 {
				cu.scopes[p].Params = append(cu.scopes[p].Params, readParam(d, e, names, types))
			}
		case dwarf.TagCallSite, tagGNUCallSite:
			ret, ok := e.Val(dwarf.AttrCallReturnPC).(uint64)
			if !ok {
				ret, ok = e.Val(dwarf.AttrLowpc).(uint64)
			}
			if ok {
				cu.calls = append(cu.calls, callSite{Return: ret})
				idx = callSiteMark - len(cu.calls) + 1
			}
		case dwarf.TagCallSiteParameter, tagGNUCallSiteParameter:
			if c := stack[len(stack)-1]; c <= callSiteMark {
				loc, _ := e.Val(dwarf.AttrLocation).([]byte)
				val, ok := e.Val(dwarf.AttrCallValue).([]byte)
				if !ok {
					val, _ = e.Val(attrGNUCallSiteValue).([]byte)
				}
				if reg, ok := singleReg(loc); ok && val != nil {
					cs := &cu.calls[callSiteMark-c]
					cs.Params = append(cs.Params, callParam{Reg: reg, Value: val})
				}
			}
		}
		if e.Children {
			switch e.Tag {
			case dwarf.TagSubprogram, dwarf.TagInlinedSubroutine, dwarf.TagLexDwarfBlock, dwarf.TagCallSite, tagGNUCallSite:
				stack = append(stack, idx)
			default:
				// Types, variables and parameters hold no code ranges.
				r.SkipChildren()
			}
		}
	}
	return cu
}

// unitHeaderLen returns the size of the unit header at off in
// .debug_info, so the unit's first entry can be found from the offset
// .debug_aranges gives.
func (x *dwarfIndex) unitHeaderLen(off dwarf.Offset) dwarf.Offset {
	if int(off)+6 > len(x.info) {
		return 11
	}
	if binary.LittleEndian.Uint16(x.info[off+4:]) >= 5 {
		return 12
	}
	return 11
}

// entryName resolves the name of a subprogram through
// DW_AT_abstract_origin and DW_AT_specification.
func entryName(d *dwarf.Data, e *dwarf.Entry, cache map[dwarf.Offset]string, hops int) string {
	if n, ok := e.Val(dwarf.AttrName).(string); ok {
		return n
	}
	if hops > 4 {
		return ""
	}
	for _, a := range []dwarf.Attr{dwarf.AttrAbstractOrigin, dwarf.AttrSpecification} {
		ref, ok := e.Val(a).(dwarf.Offset)
		if !ok {
			continue
		}
		if n, ok := cache[ref]; ok {
			return n
		}
		r := d.Reader()
		r.Seek(ref)
		o, err := r.Next()
		if err != nil || o == nil {
			continue
		}
		n := entryName(d, o, cache, hops+1)
		cache[ref] = n
		return n
	}
	return ""
}

// lineAt returns the line table row covering pc and whether pc starts a
// statement (an is_stmt row sits at pc), which is when GDB leaves the
// address out of a frame line.
func (cu *cuInfo) lineAt(pc uint64) (lineRow, bool, bool) {
	i := sort.Search(len(cu.rows), func(i int) bool { return cu.rows[i].Addr > pc }) - 1
	if i < 0 || cu.rows[i].End {
		return lineRow{}, false, false
	}
	// Several rows may share an address; GDB reports the last one.
	r := cu.rows[i]
	stmt := false
	for j := i; j >= 0 && cu.rows[j].Addr == pc; j-- {
		stmt = stmt || cu.rows[j].IsStmt
	}
	return r, stmt, true
}

// scopesAt returns the subprogram and inlined subroutines containing pc,
// outermost first.
func (cu *cuInfo) scopesAt(pc uint64) []scope {
	var out []scope
	for _, s := range cu.scopes {
		for _, r := range s.Ranges {
			if pc >= r[0] && pc < r[1] {
				out = append(out, s)
				break
			}
		}
	}
	slices.SortStableFunc(out, func(a, b scope) int { return cmp.Compare(a.Depth, b.Depth) })
	// Keep only the chain from the innermost subprogram down.
	start := 0
	for i, s := range out {
		if !s.Inline {
			start = i
		}
	}
	return out[start:]
}

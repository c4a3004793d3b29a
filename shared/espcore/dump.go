package espcore

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"slices"
	"sort"
)

// Dump versions, the low 16 bits of core_dump_header_t.version: the major
// number selects the binary (0) or ELF (1) format, the minor number the
// header layout and checksum (esp_core_dump_types.h, esp-coredump loader).
const (
	verBinV1        = 0x0001 // legacy binary, before IDF v4.1: 4-word header
	verBinV2        = 0x0002 // binary with memory segments: 5-word header
	verBinV2_1      = 0x0003 // binary with chip revision: 6-word header
	verELFCRC32V2   = 0x0100 // ELF, CRC32, 5-word header
	verELFSHA256V2  = 0x0101 // ELF, SHA256, 5-word header
	verELFCRC32V2_1 = 0x0102 // ELF, CRC32, 6-word header with chip revision
	verELFSHAV2_1   = 0x0103 // ELF, SHA256, 6-word header with chip revision
	verELFV2_2      = 0x0104 // ELF, 3-word header (length, version, chip revision)
	verELFV2_2b     = 0x0105 // ELF, 3-word header, other checksum
)

// Note types and names that ESP-IDF writes into ELF core dumps
// (core_dump_elf.c, esp-coredump elf.py).
const (
	ntPRStatus        = 1    // NT_PRSTATUS, owner "CORE": registers of one task
	ntESPInfo         = 8266 // owner "ESP_CORE_DUMP_INFO": version and app ELF SHA256
	ntESPExtraInfo    = 677  // owner "ESP_EXTRA_INFO"/"EXTRA_INFO": crashed TCB, exception registers
	ntESPTaskInfo     = 678  // owner "TASK_INFO": per-task status
	ntESPPanicDetails = 679  // owner "ESP_PANIC_DETAILS": panic reason text
	currTaskMarker    = 0xdeadbeef
)

// Offsets inside the prstatus note of both architectures.
const (
	prstatusPIDOff  = 24
	prstatusRegsOff = 72
)

// segment is one memory region carried in a dump.
type segment struct {
	Addr  uint32
	Data  []byte
	Flags uint32 // ELF PF_* flags
}

// dumpTask is one task of a dump: its TCB and its registers at the time of
// the dump, in the layout of the architecture's gregset.
type dumpTask struct {
	TCB  uint32
	Regs []uint32
	// Flags is the TASK_INFO status (0 correct, 1 TCB corrupted, 2 stack
	// corrupted), or 0 if the dump has no TASK_INFO notes.
	Flags      uint32
	StackStart uint32
	StackEnd   uint32
	Name       string // from TASK_INFO, else filled from the TCB
}

// image is a dump parsed from its container, before symbolization.
type image struct {
	Chip     chipInfo
	Version  uint32 // full version word
	ChipRev  int    // -1 when the header carries none
	Format   string
	Checksum string // "crc32" or "sha256"
	Segments []segment
	Tasks    []dumpTask

	CrashedTCB  uint32
	HaveCrashed bool
	InISR       bool
	HaveISR     bool
	// Extra holds the register pairs of the EXTRA_INFO note after the
	// crashed TCB: id, value, id, value...
	Extra     []uint32
	ExcCause  uint32
	ExcVAddr  uint32
	HaveExc   bool
	Panic     string
	AppSHA256 string // hex prefix as the device stored it
	InfoVer   uint32

	byAddr []int  // segment indices sorted by address, built by read32
	maxLen uint64 // longest segment
}

// read32 reads a little-endian word of dump memory. The first segment
// holding all four bytes wins.
func (im *image) read32(addr uint32) (uint32, bool) {
	if im.byAddr == nil {
		im.byAddr = make([]int, len(im.Segments))
		for i := range im.byAddr {
			im.byAddr[i] = i
		}
		slices.SortStableFunc(im.byAddr, func(a, b int) int {
			return cmp.Compare(im.Segments[a].Addr, im.Segments[b].Addr)
		})
		im.maxLen = 0
		for _, s := range im.Segments {
			im.maxLen = max(im.maxLen, uint64(len(s.Data)))
		}
	}
	// Segments starting after addr cannot hold it; of the others only
	// those starting within maxLen bytes below it can.
	n := sort.Search(len(im.byAddr), func(i int) bool { return im.Segments[im.byAddr[i]].Addr > addr })
	best := -1
	for k := n - 1; k >= 0; k-- {
		s := &im.Segments[im.byAddr[k]]
		if uint64(addr)-uint64(s.Addr) > im.maxLen {
			break
		}
		if uint64(addr)+4 <= uint64(s.Addr)+uint64(len(s.Data)) && (best < 0 || im.byAddr[k] < best) {
			best = im.byAddr[k]
		}
	}
	if best < 0 {
		return 0, false
	}
	s := &im.Segments[best]
	return binary.LittleEndian.Uint32(s.Data[addr-s.Addr:]), true
}

// unwrap turns the bytes a device uploaded into the raw partition bytes:
// base64 text (with or without the CORE DUMP START/END framing) is
// decoded, anything else is returned unchanged.
func unwrap(in []byte) ([]byte, error) {
	if bytes.HasPrefix(in, []byte("\x7fELF")) || looksRaw(in) || (len(in) >= 12 && !looksText(in)) {
		return in, nil
	}
	text := in
	if i := bytes.Index(text, []byte("CORE DUMP START")); i >= 0 {
		text = text[i:]
		if j := bytes.IndexByte(text, '\n'); j >= 0 {
			text = text[j+1:]
		} else {
			text = nil
		}
		if k := bytes.Index(text, []byte("CORE DUMP END")); k >= 0 {
			text = text[:k]
			if j := bytes.LastIndexByte(text, '\n'); j >= 0 {
				text = text[:j]
			} else {
				text = nil
			}
		}
	}
	out := make([]byte, 0, base64.StdEncoding.DecodedLen(len(text)))
	off := 0
	for len(text) > 0 {
		line := text
		next := len(text)
		if j := bytes.IndexByte(text, '\n'); j >= 0 {
			line, next = text[:j], j+1
		}
		line = bytes.TrimSpace(line)
		if len(line) > 0 {
			buf := out[len(out):cap(out)]
			n, err := base64.StdEncoding.Decode(buf, line)
			if err != nil {
				if len(out) == 0 {
					return nil, fmt.Errorf("%w: not raw, ELF or base64 (text offset %d: %v)", ErrNotCoreDump, off, err)
				}
				return nil, formatErr(int64(off), "decoding base64 text: %v", err)
			}
			out = out[:len(out)+n]
		}
		off += next
		text = text[next:]
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: empty input", ErrNotCoreDump)
	}
	return out, nil
}

// looksText reports whether the start of b is printable ASCII text.
func looksText(b []byte) bool {
	for _, c := range b[:min(len(b), 256)] {
		if (c < 0x20 || c > 0x7e) && c != '\n' && c != '\r' && c != '\t' {
			return false
		}
	}
	return true
}

// looksRaw reports whether b starts with a core dump header of a known
// version and chip.
func looksRaw(b []byte) bool {
	if len(b) < 12 {
		return false
	}
	ver := binary.LittleEndian.Uint32(b[4:])
	if _, ok := chipByID(uint16(ver >> 16)); !ok {
		return false
	}
	_, _, _, ok := headerLayout(uint16(ver))
	return ok
}

// headerLayout returns the header size, checksum kind ("crc32", "sha256",
// or "auto" when it must be recognised by verification) and whether the
// payload is ELF, for a dump version.
func headerLayout(ver uint16) (hdr int, sum string, isELF bool, ok bool) {
	switch ver {
	case verBinV1:
		return 16, "crc32", false, true
	case verBinV2:
		return 20, "crc32", false, true
	case verBinV2_1:
		return 24, "crc32", false, true
	case verELFCRC32V2:
		return 20, "crc32", true, true
	case verELFSHA256V2:
		return 20, "sha256", true, true
	case verELFCRC32V2_1:
		return 24, "crc32", true, true
	case verELFSHAV2_1:
		return 24, "sha256", true, true
	case verELFV2_2, verELFV2_2b:
		return 12, "auto", true, true
	}
	return 0, "", false, false
}

func formatName(ver uint16) string {
	switch ver {
	case verBinV1:
		return "bin 0.1"
	case verBinV2:
		return "bin 0.2"
	case verBinV2_1:
		return "bin 0.3"
	case verELFCRC32V2, verELFSHA256V2:
		return "elf 2.0"
	case verELFCRC32V2_1, verELFSHAV2_1:
		return "elf 2.1"
	}
	return "elf 2.2"
}

// parseImage parses raw partition bytes, a bare ELF core, or base64 text.
func parseImage(in []byte) (*image, error) {
	b, err := unwrap(in)
	if err != nil {
		return nil, err
	}
	if bytes.HasPrefix(b, []byte("\x7fELF")) {
		im := &image{ChipRev: -1, Format: "elf core"}
		if err := parseELFCore(im, b, 0); err != nil {
			return nil, err
		}
		if im.InfoVer == 0 {
			return nil, formatErr(0, "ELF core has no ESP_CORE_DUMP_INFO note to name the chip")
		}
		c, ok := chipByID(uint16(im.InfoVer >> 16))
		if !ok {
			return nil, formatErr(0, "unknown chip ID %d in ESP_CORE_DUMP_INFO note", im.InfoVer>>16)
		}
		im.Chip, im.Version = c, im.InfoVer
		return im, nil
	}
	if len(b) < 12 {
		return nil, fmt.Errorf("%w: %d bytes is too short for a header", ErrNotCoreDump, len(b))
	}
	totLen := binary.LittleEndian.Uint32(b[0:])
	ver := binary.LittleEndian.Uint32(b[4:])
	c, ok := chipByID(uint16(ver >> 16))
	if !ok {
		return nil, formatErr(4, "unknown chip ID %d in version word %#x", ver>>16, ver)
	}
	hdr, sum, isELF, ok := headerLayout(uint16(ver))
	if !ok {
		return nil, formatErr(4, "unsupported core dump version %#x", uint16(ver))
	}
	if uint64(totLen) > uint64(len(b)) {
		return nil, formatErr(0, "data length %d exceeds the %d bytes given", totLen, len(b))
	}
	im := &image{Chip: c, Version: ver, ChipRev: -1, Format: formatName(uint16(ver))}
	data := b[:totLen]
	sumLen, err := verifyChecksum(data, hdr, sum)
	if err != nil {
		return nil, err
	}
	im.Checksum = map[int]string{4: "crc32", 32: "sha256"}[sumLen]
	switch hdr {
	case 24:
		im.ChipRev = int(binary.LittleEndian.Uint32(b[20:]))
	case 12:
		im.ChipRev = int(binary.LittleEndian.Uint32(b[8:]))
	}
	payload := data[hdr : len(data)-sumLen]
	if isELF {
		if err := parseELFCore(im, payload, int64(hdr)); err != nil {
			return nil, err
		}
	} else if err := parseBinary(im, data[:hdr], payload); err != nil {
		return nil, err
	}
	return im, nil
}

// verifyChecksum checks the trailing checksum of data, which covers the
// header and the payload, and returns the checksum length.
func verifyChecksum(data []byte, hdr int, kind string) (int, error) {
	try := func(n int) (bool, string, string) {
		if len(data) < hdr+n {
			return false, "", ""
		}
		body, stored := data[:len(data)-n], data[len(data)-n:]
		if n == 4 {
			got := crc32.ChecksumIEEE(body)
			want := binary.LittleEndian.Uint32(stored)
			return got == want, fmt.Sprintf("%08x", got), fmt.Sprintf("%08x", want)
		}
		got := sha256.Sum256(body)
		return bytes.Equal(got[:], stored), hex.EncodeToString(got[:]), hex.EncodeToString(stored)
	}
	switch kind {
	case "crc32", "sha256":
		n := 4
		if kind == "sha256" {
			n = 32
		}
		if len(data) < hdr+n {
			return 0, formatErr(0, "data length %d is too short for a %d-byte header and %s", len(data), hdr, kind)
		}
		ok, got, want := try(n)
		if !ok {
			return 0, formatErr(int64(len(data)-n), "%s checksum mismatch: computed %s, stored %s", kind, got, want)
		}
		return n, nil
	}
	if ok, _, _ := try(32); ok {
		return 32, nil
	}
	if ok, _, _ := try(4); ok {
		return 4, nil
	}
	if len(data) < hdr+4 {
		return 0, formatErr(0, "data length %d is too short for a %d-byte header and checksum", len(data), hdr)
	}
	return 0, formatErr(int64(len(data)-4), "neither a SHA256 nor a CRC32 checksum matches the data")
}

// parseELFCore reads an ELF core file: its load segments become dump
// memory, its notes the tasks and crash details. base is the offset of b
// within the dump, so errors name dump offsets.
func parseELFCore(im *image, b []byte, base int64) error {
	if len(b) < 52 {
		return formatErr(base, "ELF header needs 52 bytes, have %d", len(b))
	}
	if !bytes.HasPrefix(b, []byte("\x7fELF")) {
		return formatErr(base, "missing ELF magic")
	}
	if b[4] != 1 || b[5] != 1 {
		return formatErr(base+4, "ELF class %d data %d: want ELF32 little-endian", b[4], b[5])
	}
	le := binary.LittleEndian
	machine := le.Uint16(b[18:])
	phoff := le.Uint32(b[28:])
	phentsize := le.Uint16(b[42:])
	phnum := le.Uint16(b[44:])
	switch machine {
	case emXtensa, emRISCV:
	default:
		return formatErr(base+18, "ELF machine %d is neither Xtensa nor RISC-V", machine)
	}
	if im.Chip.Name != "" && machineOf(im.Chip.Arch) != machine {
		return formatErr(base+18, "ELF machine %d does not match chip %s", machine, im.Chip.Name)
	}
	if phnum > 0 && phentsize < 32 {
		return formatErr(base+42, "program header size %d is below 32", phentsize)
	}
	if uint64(phoff)+uint64(phnum)*uint64(phentsize) > uint64(len(b)) {
		return formatErr(base+28, "%d program headers at %#x run past the end (%d bytes)", phnum, phoff, len(b))
	}
	var taskInfos []dumpTask
	for i := 0; i < int(phnum); i++ {
		p := int(phoff) + i*int(phentsize)
		typ := le.Uint32(b[p:])
		off := le.Uint32(b[p+4:])
		vaddr := le.Uint32(b[p+8:])
		filesz := le.Uint32(b[p+16:])
		flags := le.Uint32(b[p+24:])
		if uint64(off)+uint64(filesz) > uint64(len(b)) {
			return formatErr(base+int64(p), "segment %d data [%#x, +%#x) runs past the end (%d bytes)", i, off, filesz, len(b))
		}
		data := b[off : off+filesz]
		switch typ {
		case 1: // PT_LOAD
			if uint64(vaddr)+uint64(filesz) > 1<<32 {
				return formatErr(base+int64(p)+8, "segment %d at %#x with %#x bytes wraps the address space", i, vaddr, filesz)
			}
			im.Segments = append(im.Segments, segment{Addr: vaddr, Data: data, Flags: flags})
		case 4: // PT_NOTE
			if err := parseNotes(im, data, base+int64(off), machine, &taskInfos); err != nil {
				return err
			}
		}
	}
	info := make(map[uint32]dumpTask, len(taskInfos))
	for _, ti := range taskInfos {
		info[ti.TCB] = ti
	}
	for k := range im.Tasks {
		if ti, ok := info[im.Tasks[k].TCB]; ok {
			im.Tasks[k].Flags = ti.Flags
			im.Tasks[k].StackStart, im.Tasks[k].StackEnd = ti.StackStart, ti.StackEnd
			if ti.Name != "" {
				im.Tasks[k].Name = ti.Name
			}
		}
	}
	return nil
}

func machineOf(a Arch) uint16 {
	if a == ArchXtensa {
		return emXtensa
	}
	return emRISCV
}

func align4(n uint64) uint64 { return (n + 3) &^ 3 }

// parseNotes reads the notes of one PT_NOTE segment.
func parseNotes(im *image, b []byte, base int64, machine uint16, taskInfos *[]dumpTask) error {
	le := binary.LittleEndian
	for p := 0; p < len(b); {
		if len(b)-p < 12 {
			return formatErr(base+int64(p), "note header needs 12 bytes, have %d", len(b)-p)
		}
		namesz := uint64(le.Uint32(b[p:]))
		descsz := uint64(le.Uint32(b[p+4:]))
		typ := le.Uint32(b[p+8:])
		nameOff := uint64(p) + 12
		descOff := nameOff + align4(namesz)
		end := descOff + align4(descsz)
		if descOff+descsz > uint64(len(b)) {
			return formatErr(base+int64(p), "note with name size %d and desc size %d runs past the segment end", namesz, descsz)
		}
		name := string(bytes.TrimRight(b[nameOff:nameOff+namesz], "\x00"))
		desc := b[descOff : descOff+descsz]
		dbase := base + int64(descOff)
		if err := parseNote(im, name, typ, desc, dbase, machine, taskInfos); err != nil {
			return err
		}
		if end > uint64(len(b)) {
			end = uint64(len(b))
		}
		p = int(end)
	}
	return nil
}

func parseNote(im *image, name string, typ uint32, desc []byte, base int64, machine uint16, taskInfos *[]dumpTask) error {
	le := binary.LittleEndian
	switch {
	case name == "CORE" && typ == ntPRStatus:
		nregs := 32
		if machine == emXtensa {
			nregs = xtRegNum
		}
		need := prstatusRegsOff + 4*nregs
		if machine == emXtensa && len(desc) < need {
			// Registers past a15 are optional.
			need = prstatusRegsOff + 4*(xtRegAR+16)
			nregs = xtRegAR + 16
		}
		if len(desc) < need {
			return formatErr(base, "prstatus note has %d bytes, need %d", len(desc), need)
		}
		regs := make([]uint32, nregs)
		for i := range regs {
			regs[i] = le.Uint32(desc[prstatusRegsOff+4*i:])
		}
		im.Tasks = append(im.Tasks, dumpTask{TCB: le.Uint32(desc[prstatusPIDOff:]), Regs: regs})
	case typ == ntESPInfo:
		if len(desc) < 4 {
			return formatErr(base, "ESP_CORE_DUMP_INFO note has %d bytes, need 4", len(desc))
		}
		im.InfoVer = le.Uint32(desc)
		sha := desc[4:]
		if i := bytes.IndexByte(sha, 0); i >= 0 {
			sha = sha[:i]
		}
		for _, c := range sha {
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return formatErr(base+4, "app ELF SHA256 %q is not lowercase hex", sha)
			}
		}
		im.AppSHA256 = string(sha)
	case typ == ntESPExtraInfo:
		if len(desc) < 4 {
			return formatErr(base, "EXTRA_INFO note has %d bytes, need 4", len(desc))
		}
		im.CrashedTCB, im.HaveCrashed = le.Uint32(desc), true
		words := make([]uint32, (len(desc)-4)/4)
		for i := range words {
			words[i] = le.Uint32(desc[4+4*i:])
		}
		if machine == emXtensa {
			// xtensa_extra_info_t: exccause and excvaddr pairs, 16 more
			// register pairs (zero when unused), then, in newer releases,
			// the ISR flag.
			const pairWords = 2 * (2 + 16)
			for i := 0; i+1 < len(words) && i+1 < pairWords; i += 2 {
				if words[i] == 0 && words[i+1] == 0 {
					continue
				}
				im.Extra = append(im.Extra, words[i], words[i+1])
				switch words[i] {
				case xtSREXCCAUSE:
					im.ExcCause, im.HaveExc = words[i+1], true
				case xtSREXCVADDR:
					im.ExcVAddr = words[i+1]
				}
			}
			if len(words) > pairWords {
				im.InISR, im.HaveISR = words[pairWords] != 0, true
			}
		} else if len(words) > 0 {
			// riscv_extra_info_t: the crashed TCB, then the ISR flag.
			im.InISR, im.HaveISR = words[0] != 0, true
		}
	case typ == ntESPPanicDetails:
		im.Panic = string(bytes.TrimRight(desc, "\x00"))
	case typ == ntESPTaskInfo:
		// EspTaskStatus: index, flags, tcb, stack start, stack len, name[16].
		if len(desc) < 20 {
			return formatErr(base, "TASK_INFO note has %d bytes, need 20", len(desc))
		}
		t := dumpTask{
			Flags:      le.Uint32(desc[4:]),
			TCB:        le.Uint32(desc[8:]),
			StackStart: le.Uint32(desc[12:]),
		}
		t.StackEnd = t.StackStart + le.Uint32(desc[16:])
		if len(desc) >= 36 {
			t.Name = cString(desc[20:36])
		}
		*taskInfos = append(*taskInfos, t)
	}
	return nil
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	for _, c := range b {
		if c < 0x20 || c >= 0x7f {
			return fmt.Sprintf("%q", b)
		}
	}
	return string(b)
}

// parseBinary reads the binary format (versions 0.x): a list of tasks,
// each a task header, the TCB and the stack, then memory segments.
func parseBinary(im *image, hdr, b []byte) error {
	le := binary.LittleEndian
	base := int64(len(hdr))
	taskNum := le.Uint32(hdr[8:])
	tcbSz := le.Uint32(hdr[12:])
	var segNum uint32
	if len(hdr) >= 20 {
		segNum = le.Uint32(hdr[16:])
	}
	if tcbSz > 4096 {
		return formatErr(12, "TCB size %d is implausible", tcbSz)
	}
	if uint64(taskNum)*(12+uint64(tcbSz)) > uint64(len(b)) {
		return formatErr(8, "%d tasks of %d-byte TCBs do not fit in %d bytes", taskNum, tcbSz, len(b))
	}
	p := uint64(0)
	for i := uint32(0); i < taskNum; i++ {
		if p+12+uint64(tcbSz) > uint64(len(b)) {
			return formatErr(base+int64(p), "task %d header and TCB run past the end", i)
		}
		tcb := le.Uint32(b[p:])
		top := le.Uint32(b[p+4:])
		end := le.Uint32(b[p+8:])
		p += 12
		tcbData := b[p : p+uint64(tcbSz)]
		p += align4(uint64(tcbSz))
		lo, hi := top, end
		if lo > hi {
			lo, hi = hi, lo
		}
		stackLen := align4(uint64(hi - lo))
		if stackLen > 1<<20 || p+stackLen > uint64(len(b)) {
			return formatErr(base+int64(p)-12-int64(align4(uint64(tcbSz))), "task %d stack [%#x, %#x) runs past the end of the dump", i, lo, hi)
		}
		stack := b[p : p+stackLen]
		p += stackLen
		im.Segments = append(im.Segments,
			segment{Addr: tcb, Data: tcbData, Flags: 6},
			segment{Addr: lo, Data: stack, Flags: 6})
		regs, exc, err := regsFromStack(im.Chip.Arch, stack, base+int64(p-stackLen))
		if err != nil {
			return fmt.Errorf("reading registers of task %d (TCB %#x): %w", i, tcb, err)
		}
		t := dumpTask{TCB: tcb, Regs: regs, StackStart: lo, StackEnd: lo + uint32(stackLen)}
		if i == 0 {
			im.CrashedTCB, im.HaveCrashed = tcb, true
			if exc != nil {
				im.ExcCause, im.ExcVAddr, im.HaveExc = exc[0], exc[1], true
				im.Extra = []uint32{xtSREXCCAUSE, exc[0], xtSREXCVADDR, exc[1]}
			}
		}
		im.Tasks = append(im.Tasks, t)
	}
	if im.Version&0xffff == verBinV1 {
		return nil
	}
	for i := uint32(0); i < segNum; i++ {
		if p+8 > uint64(len(b)) {
			return formatErr(base+int64(p), "memory segment %d header runs past the end", i)
		}
		start := le.Uint32(b[p:])
		size := uint64(le.Uint32(b[p+4:]))
		if p+8+size > uint64(len(b)) {
			return formatErr(base+int64(p)+4, "memory segment %d of %d bytes runs past the end", i, size)
		}
		im.Segments = append(im.Segments, segment{Addr: start, Data: b[p+8 : p+8+size], Flags: 6})
		p += 8 + size
	}
	return nil
}

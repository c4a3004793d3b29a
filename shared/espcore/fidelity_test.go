package espcore_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/espfleet/crashdumps/shared/espcore"
)

// expectedReport is what the fidelity test reads from an esp-coredump
// info_corefile report.
type expectedReport struct {
	CrashedTCB  uint32
	CrashedName string
	PanicReason string
	Registers   map[string]uint32
	RegOrder    []string
	Threads     []expThread // THREADS INFO and THREAD n sections
	Table       []string    // task table rows, normalised
	Regions     []string    // "name addr size attrs"
	Current     []expFrame
}

type expThread struct {
	TCB    uint32
	Frame0 expFrame
	Frames []expFrame
}

type expFrame struct {
	PC       uint32
	HasPC    bool
	Function string
	File     string
	Line     int
	Args     []string // "name=value", as printed
}

// splitArgs splits GDB's argument list, which starts after the "(" that
// follows the function name, at top-level commas; strings may hold
// parentheses and commas.
func splitArgs(s string) []string {
	var out []string
	depth, start, inStr := 0, 0, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inStr:
			if c == '\\' {
				i++
			} else if c == '"' {
				inStr = false
			}
		case c == '"':
			inStr = true
		case c == '(' || c == '<':
			depth++
		case c == '>' && depth > 0:
			depth--
		case c == ')':
			if depth == 0 {
				if a := strings.TrimSpace(s[start:i]); a != "" {
					out = append(out, a)
				}
				return out
			}
			depth--
		case c == ',' && depth == 0:
			out = append(out, strings.TrimSpace(s[start:i]))
			start = i + 1
		}
	}
	return out
}

// normArg drops what GDB adds from call-site information ("x=x@entry=1"
// becomes "x=1") and folds its two ways of saying a value is gone.
func normArg(a string) string {
	name, val, _ := strings.Cut(a, "=")
	if v, ok := strings.CutPrefix(val, name+"@entry="); ok {
		val = v
	}
	if val == "<error reading variable: value has been optimized out>" {
		val = "<optimized out>"
	}
	return name + "=" + val
}

func (f expFrame) String() string {
	if f.File == "" {
		return f.Function
	}
	return fmt.Sprintf("%s %s:%d", f.Function, f.File, f.Line)
}

var (
	reCrashed = regexp.MustCompile(`^Crashed task handle: 0x([0-9a-f]+), name: '([^']*)'`)
	reReg     = regexp.MustCompile(`^([a-z0-9_]+)\s+0x([0-9a-f]+)`)
	reFrame   = regexp.MustCompile(`^#(\d+)\s+(?:0x([0-9a-f]+) in )?(\S+) \(`)
	reAt      = regexp.MustCompile(`\) at (\S+):(\d+)$`)
	reInfo    = regexp.MustCompile(`^[* ] (\d+)\s+process (\d+) (.*)$`)
	reTable   = regexp.MustCompile(`^0x([0-9a-f]+)\s+(\S+)\s+(\d+/\d+)\s+(-?\d+/-?\d+)$`)
	reThread  = regexp.MustCompile(`^=+ THREAD (\d+) \(TCB: 0x([0-9a-f]+)`)
	reRegion  = regexp.MustCompile(`^(\.\S+) 0x([0-9a-f]+) 0x([0-9a-f]+) (.*)$`)
)

func parseFrame(s string) (expFrame, bool) {
	m := reFrame.FindStringSubmatch(s)
	if m == nil {
		// THREADS INFO lines have no "#n".
		m = reFrame.FindStringSubmatch("#0  " + s)
		if m == nil {
			return expFrame{}, false
		}
	}
	f := expFrame{Function: m[3]}
	if i := strings.Index(s, m[3]+" ("); i >= 0 {
		for _, a := range splitArgs(s[i+len(m[3])+2:]) {
			f.Args = append(f.Args, normArg(a))
		}
	}
	if m[2] != "" {
		v, _ := strconv.ParseUint(m[2], 16, 32)
		f.PC, f.HasPC = uint32(v), true
	}
	if a := reAt.FindStringSubmatch(s); a != nil {
		f.File = a[1]
		f.Line, _ = strconv.Atoi(a[2])
	}
	return f, true
}

func parseExpected(path string) (*expectedReport, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	r := &expectedReport{Registers: map[string]uint32{}}
	section := ""
	thread := -1
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.Contains(line, "CURRENT THREAD REGISTERS"):
			section = "regs"
			continue
		case strings.Contains(line, "CURRENT THREAD STACK"):
			section = "stack"
			continue
		case strings.Contains(line, "THREADS INFO"):
			section = "info"
			continue
		case strings.Contains(line, "ALL MEMORY REGIONS"):
			section = "regions"
			continue
		case strings.Contains(line, "CORE DUMP MEMORY CONTENTS"), strings.Contains(line, "CORE DUMP END"):
			section = "end"
			continue
		}
		if m := reThread.FindStringSubmatch(line); m != nil {
			section = "thread"
			thread, _ = strconv.Atoi(m[1])
			thread--
			continue
		}
		if m := reCrashed.FindStringSubmatch(line); m != nil {
			v, _ := strconv.ParseUint(m[1], 16, 32)
			r.CrashedTCB, r.CrashedName = uint32(v), m[2]
		}
		if s, ok := strings.CutPrefix(line, "Panic reason: "); ok {
			r.PanicReason = s
		}
		switch section {
		case "regs":
			if m := reReg.FindStringSubmatch(line); m != nil {
				v, _ := strconv.ParseUint(m[2], 16, 32)
				r.Registers[m[1]] = uint32(v)
				r.RegOrder = append(r.RegOrder, m[1])
			}
		case "stack":
			if f, ok := parseFrame(line); ok && strings.HasPrefix(line, "#") {
				r.Current = append(r.Current, f)
			}
		case "info":
			if m := reInfo.FindStringSubmatch(line); m != nil {
				tcb, _ := strconv.ParseUint(m[2], 10, 32)
				f, _ := parseFrame(m[3])
				r.Threads = append(r.Threads, expThread{TCB: uint32(tcb), Frame0: f})
			} else if m := reTable.FindStringSubmatch(line); m != nil {
				r.Table = append(r.Table, strings.Join(m[1:], " "))
			}
		case "thread":
			if f, ok := parseFrame(line); ok && strings.HasPrefix(line, "#") && thread >= 0 && thread < len(r.Threads) {
				r.Threads[thread].Frames = append(r.Threads[thread].Frames, f)
			}
		case "regions":
			if m := reRegion.FindStringSubmatch(line); m != nil {
				a, _ := strconv.ParseUint(m[2], 16, 32)
				n, _ := strconv.ParseUint(m[3], 16, 32)
				r.Regions = append(r.Regions, fmt.Sprintf("%s 0x%x 0x%x %s", m[1], a, n, strings.TrimSpace(m[4])))
			}
		}
	}
	return r, sc.Err()
}

// comparable frames: named frames inside the firmware. ROM frames (no
// source, outside the firmware's code) and "??" frames are left out.
func expFrames(fs []expFrame, fw func(uint32) bool) []string {
	var out []string
	for _, f := range fs {
		if f.Function == "??" || (f.File == "" && f.HasPC && !fw(f.PC)) {
			continue
		}
		out = append(out, f.String())
	}
	return out
}

func gotFrames(fs []espcore.Frame) []string {
	var out []string
	for _, f := range fs {
		if f.Function == "" || !f.InFirmware {
			continue
		}
		out = append(out, expFrame{Function: f.Function, File: f.File, Line: f.Line}.String())
	}
	return out
}

// Fidelity sections, in the order of the table in docs/decoder.md.
var sections = []string{"crashed task", "panic reason", "registers", "task table", "thread list", "memory regions", "backtraces", "arguments"}

// knownDiffs lists the sections in which the built-in report is known to
// differ from esp-coredump's, with the reason. The test fails on any other
// difference, and on a listed difference that has gone away.
var knownDiffs = map[string]map[string]string{
	"esp32 bin": {
		"registers": "the binary format carries only EXCCAUSE and EXCVADDR; esp-coredump prints epc1-7 and eps2-7 as 0, the decoder leaves them out",
	},
	"esp32c6 elf": {
		"backtraces": "GDB stops at the ROM frame 0x40018ebe even with the ROM ELF; the decoder scans past it and also reports app_main, main_task and vPortTaskWrapper",
	},
}

func compareSection(section string, exp *expectedReport, r *espcore.Report, isCode func(uint32) bool) string {
	switch section {
	case "crashed task":
		if uint32(r.CrashedTCB) != exp.CrashedTCB || r.CrashedTask != exp.CrashedName {
			return fmt.Sprintf("got %#x %q, want %#x %q", uint32(r.CrashedTCB), r.CrashedTask, exp.CrashedTCB, exp.CrashedName)
		}
	case "panic reason":
		if r.PanicReason != exp.PanicReason {
			return fmt.Sprintf("got %q, want %q", r.PanicReason, exp.PanicReason)
		}
	case "registers":
		got := map[string]uint32{}
		for _, x := range append(append([]espcore.Register{}, r.ExceptionRegisters...), r.Registers...) {
			got[x.Name] = uint32(x.Value)
		}
		var diffs []string
		for _, name := range exp.RegOrder {
			if v, ok := got[name]; !ok {
				diffs = append(diffs, name+" missing")
			} else if v != exp.Registers[name] {
				diffs = append(diffs, fmt.Sprintf("%s=%#x want %#x", name, v, exp.Registers[name]))
			}
		}
		if len(diffs) > 0 {
			return strings.Join(diffs, "; ")
		}
	case "task table":
		var got []string
		for _, t := range r.Tasks {
			got = append(got, fmt.Sprintf("%08x %s %d/%d %d/%d", uint32(t.TCB), t.Name, t.Priority, t.BasePriority, t.StackUsed, t.StackFree))
		}
		if strings.Join(got, "\n") != strings.Join(exp.Table, "\n") {
			return fmt.Sprintf("got %q, want %q", got, exp.Table)
		}
	case "thread list":
		if len(r.Tasks) != len(exp.Threads) {
			return fmt.Sprintf("got %d threads, want %d", len(r.Tasks), len(exp.Threads))
		}
		for i, th := range exp.Threads {
			t := r.Tasks[i]
			if uint32(t.TCB) != th.TCB {
				return fmt.Sprintf("thread %d TCB %#x, want %#x", i+1, uint32(t.TCB), th.TCB)
			}
			want := expFrames([]expFrame{th.Frame0}, isCode)
			got := gotFrames(t.Backtrace[:min(1, len(t.Backtrace))])
			if strings.Join(got, "") != strings.Join(want, "") {
				return fmt.Sprintf("thread %d frame %q, want %q", i+1, got, want)
			}
		}
	case "memory regions":
		var got []string
		for _, m := range r.MemoryRegions {
			got = append(got, fmt.Sprintf("%s 0x%x 0x%x %s", m.Name, uint32(m.Addr), m.Size, strings.TrimSpace(m.Attrs)))
		}
		if strings.Join(got, "\n") != strings.Join(exp.Regions, "\n") {
			return fmt.Sprintf("got %q, want %q", got, exp.Regions)
		}
	case "arguments":
		var diffs []string
		cmpArgs := func(name string, want []expFrame, got []espcore.Frame) {
			var w, g [][]string
			for _, f := range want {
				if f.Function != "??" && !(f.File == "" && f.HasPC && !isCode(f.PC)) {
					w = append(w, f.Args)
				}
			}
			for _, f := range got {
				if f.Function != "" && f.InFirmware {
					var as []string
					for _, a := range f.Args {
						as = append(as, a.Name+"="+a.Value)
					}
					g = append(g, as)
				}
			}
			for i := 0; i < len(w) && i < len(g); i++ {
				if strings.Join(w[i], ", ") != strings.Join(g[i], ", ") {
					diffs = append(diffs, fmt.Sprintf("%s frame %d: got (%s), want (%s)", name, i, strings.Join(g[i], ", "), strings.Join(w[i], ", ")))
				}
			}
		}
		cmpArgs("current thread", exp.Current, r.Backtrace)
		for i, th := range exp.Threads {
			if i < len(r.Tasks) {
				cmpArgs(fmt.Sprintf("thread %d", i+1), th.Frames, r.Tasks[i].Backtrace)
			}
		}
		if len(diffs) > 0 {
			return strings.Join(diffs, "; ")
		}
	case "backtraces":
		want := [][]string{expFrames(exp.Current, isCode)}
		got := [][]string{gotFrames(r.Backtrace)}
		for i, th := range exp.Threads {
			want = append(want, expFrames(th.Frames, isCode))
			if i < len(r.Tasks) {
				got = append(got, gotFrames(r.Tasks[i].Backtrace))
			}
		}
		for i := range want {
			if i >= len(got) || strings.Join(got[i], "\n") != strings.Join(want[i], "\n") {
				g := []string{}
				if i < len(got) {
					g = got[i]
				}
				name := "current thread"
				if i > 0 {
					name = fmt.Sprintf("thread %d", i)
				}
				return fmt.Sprintf("%s: got %q, want %q", name, g, want[i])
			}
		}
	}
	return ""
}

// TestDecode_Fidelity compares the decoder with esp-coredump's reports for
// the real dumps, section by section, and logs the table kept in
// docs/decoder.md.
func TestDecode_Fidelity(t *testing.T) {
	dir := realDumpsDir(t)
	var table strings.Builder
	fmt.Fprintf(&table, "| dump | %s |\n|---|%s\n", strings.Join(sections, " | "), strings.Repeat("---|", len(sections)))
	for _, rd := range realDumps {
		t.Run(rd.Name, func(t *testing.T) {
			fh, err := os.Open(filepath.Join(dir, rd.ELF))
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			fw, err := espcore.OpenFirmware(fh)
			if err != nil {
				t.Fatalf("OpenFirmware(%s): %v", rd.ELF, err)
			}
			dump, err := os.ReadFile(filepath.Join(dir, rd.Dump))
			if err != nil {
				t.Fatal(err)
			}
			r, err := espcore.Decode(dump, fw)
			if err != nil {
				t.Fatalf("Decode(%s): %v", rd.Dump, err)
			}
			exp, err := parseExpected(filepath.Join(dir, rd.Expected))
			if err != nil {
				t.Fatalf("reading %s: %v", rd.Expected, err)
			}
			isCode := fw.IsCode
			fmt.Fprintf(&table, "| %s |", rd.Name)
			for _, s := range sections {
				diff := compareSection(s, exp, r, isCode)
				known := knownDiffs[rd.Name][s]
				switch {
				case diff == "" && known == "":
					fmt.Fprint(&table, " agree |")
				case diff == "" && known != "":
					t.Errorf("%s: agrees now; remove the known difference %q", s, known)
				case known != "":
					fmt.Fprintf(&table, " differ: %s |", known)
					t.Logf("%s: known difference: %s", s, diff)
				default:
					fmt.Fprint(&table, " DIFFER |")
					t.Errorf("%s: %s", s, diff)
				}
			}
			fmt.Fprintln(&table)
		})
	}
	t.Logf("fidelity table:\n%s", table.String())
}

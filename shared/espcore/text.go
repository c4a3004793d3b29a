package espcore

import (
	"fmt"
	"strings"
)

// Text renders the report laid out like esp-coredump's info_corefile
// output, section by section. Function arguments are not printed.
func (r *Report) Text() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("===============================================================\n")
	p("==================== ESP32 CORE DUMP START ====================\n\n")
	p("Chip: %s (%s), dump format %s", r.Chip, r.Arch, r.DumpFormat)
	if r.Checksum != "" {
		p(", %s verified", r.Checksum)
	}
	p("\n")
	if r.AppELFSHA256 != "" {
		match := "matches"
		if !r.SHA256Match {
			match = "does NOT match"
		}
		p("App ELF SHA256: %s (%s firmware ELF %s)\n", r.AppELFSHA256, match, r.FirmwareSHA256)
	} else {
		p("App ELF SHA256: not in dump (firmware ELF %s)\n", r.FirmwareSHA256)
	}
	p("\nCrashed task handle: 0x%x, name: '%s', GDB name: 'process %d'\n", uint32(r.CrashedTCB), r.CrashedTask, uint32(r.CrashedTCB))
	if r.InISR {
		p("Crashed task is in the interrupt context\n")
	} else if r.ISRKnown {
		p("Crashed task is not in the interrupt context\n")
	}
	if r.PanicReason != "" {
		p("Panic reason: %s\n", r.PanicReason)
	}

	p("\n================== CURRENT THREAD REGISTERS ===================\n")
	if r.Arch == ArchXtensa {
		for _, x := range r.ExceptionRegisters {
			if x.Name == "exccause" {
				p("%-15s0x%x (%s)\n", x.Name, uint32(x.Value), r.ExceptionCause)
				continue
			}
			p("%-15s0x%x\n", x.Name, uint32(x.Value))
		}
		if len(r.ExceptionRegisters) == 0 {
			p("Exception registers have not been found!\n")
		}
	}
	for _, x := range r.Registers {
		p("%s\n", registerLine(r.Arch, x))
		if r.Arch == ArchXtensa && x.Name == "ps" {
			for _, n := range []string{"threadptr", "br", "scompare1", "acclo", "acchi", "m0", "m1", "m2", "m3",
				"expstate", "f64r_lo", "f64r_hi", "f64s", "fcr", "fsr"} {
				p("%-15s<unavailable>\n", n)
			}
		}
	}

	p("\n==================== CURRENT THREAD STACK =====================\n")
	writeFrames(&b, r.Backtrace)

	p("\n======================== THREADS INFO =========================\n")
	p("  Id   Target Id          Frame \n")
	for i, t := range r.Tasks {
		mark := " "
		if t.Crashed {
			mark = "*"
		}
		frame := ""
		if len(t.Backtrace) > 0 {
			frame = frameText(t.Backtrace[0])
		}
		p("%s %-4d process %d %s\n", mark, i+1, uint32(t.TCB), frame)
	}
	p("\n\n       TCB             NAME PRIO C/B  STACK USED/FREE\n")
	p("---------- ---------------- -------- ----------------\n")
	for _, t := range r.Tasks {
		p("0x%08x %16s %8s %16s\n", uint32(t.TCB), t.Name,
			fmt.Sprintf("%d/%d", t.Priority, t.BasePriority), fmt.Sprintf("%d/%d", t.StackUsed, t.StackFree))
	}
	for i, t := range r.Tasks {
		p("\n==================== THREAD %d (TCB: 0x%x, name: '%s') =====================\n", i+1, uint32(t.TCB), t.Name)
		writeFrames(&b, t.Backtrace)
		if t.Corrupted {
			p("The task '%d' is corrupted.\n", i+1)
		}
	}

	p("\n\n======================= ALL MEMORY REGIONS ========================\n")
	p("Name   Address   Size   Attrs\n")
	for _, m := range r.MemoryRegions {
		p("%s 0x%x 0x%x %s\n", m.Name, uint32(m.Addr), m.Size, m.Attrs)
	}
	if len(r.Warnings) > 0 {
		p("\n=========================== WARNINGS ==========================\n")
		for _, w := range r.Warnings {
			p("%s\n", w)
		}
	}
	p("\n===================== ESP32 CORE DUMP END =====================\n")
	p("===============================================================\n")
	return b.String()
}

func registerLine(a Arch, x Register) string {
	second := fmt.Sprintf("%d", uint32(x.Value))
	switch {
	case x.Pointer:
		second = fmt.Sprintf("0x%x", uint32(x.Value))
		if x.Symbol != "" {
			second += " <" + x.Symbol + ">"
		}
	case x.Signed:
		second = fmt.Sprintf("%d", int32(x.Value))
	}
	if a == ArchRISCV {
		return fmt.Sprintf("%-15s0x%x\t%s", x.Name, uint32(x.Value), second)
	}
	return fmt.Sprintf("%-15s%-20s%s", x.Name, fmt.Sprintf("0x%x", uint32(x.Value)), second)
}

func frameText(f Frame) string {
	var b strings.Builder
	if f.ShowPC {
		fmt.Fprintf(&b, "0x%08x in ", uint32(f.PC))
	}
	name := f.Function
	if name == "" {
		name = "??"
	}
	b.WriteString(name)
	b.WriteString(" (")
	for i, a := range f.Args {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(a.Name + "=" + a.Value)
	}
	b.WriteString(")")
	if f.File != "" {
		fmt.Fprintf(&b, " at %s:%d", f.File, f.Line)
	}
	return b.String()
}

func writeFrames(b *strings.Builder, frames []Frame) {
	for i, f := range frames {
		fmt.Fprintf(b, "#%-2d %s\n", i, frameText(f))
	}
}

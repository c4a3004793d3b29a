package espcore

import (
	"encoding/binary"
	"fmt"
)

// Xtensa gregset layout in prstatus notes (GDB xtensa_elf_gregset_t).
const (
	xtRegPC     = 0
	xtRegPS     = 1
	xtRegLBEG   = 2
	xtRegLEND   = 3
	xtRegLCOUNT = 4
	xtRegSAR    = 5
	xtRegAR     = 64
	xtRegNum    = 129
)

// Xtensa special register numbers used as IDs in the EXTRA_INFO note.
const (
	xtSREPC1     = 177
	xtSREPS2     = 194
	xtSREXCCAUSE = 232
	xtSREXCVADDR = 238
)

// Word indices of the frames FreeRTOS saves on an Xtensa task stack
// (xtensa_context.h): XT_STK_* for an interrupt or exception frame and
// XT_SOL_* for a solicited (voluntary) switch.
const (
	xtStkExit     = 0
	xtStkPC       = 1
	xtStkPS       = 2
	xtStkAR       = 3
	xtStkSAR      = 19
	xtStkEXCCAUSE = 20
	xtStkEXCVADDR = 21
	xtStkLBEG     = 22
	xtStkLEND     = 23
	xtStkLCOUNT   = 24
	xtStkFrameLen = 25
	xtSolPC       = 1
	xtSolPS       = 2
	xtSolAR       = 4
)

// regsFromStack recovers the registers of a task of a binary-format dump
// from the frame saved at the top of its stack. For Xtensa it also returns
// EXCCAUSE and EXCVADDR when the frame is an exception frame.
func regsFromStack(a Arch, stack []byte, off int64) ([]uint32, []uint32, error) {
	word := func(i int) uint32 { return binary.LittleEndian.Uint32(stack[4*i:]) }
	if a == ArchRISCV {
		if len(stack) < 4*32 {
			return nil, nil, formatErr(off, "RISC-V frame needs 128 bytes of stack, have %d", len(stack))
		}
		regs := make([]uint32, 32)
		for i := range regs {
			regs[i] = word(i)
		}
		return regs, nil, nil
	}
	if len(stack) < 4*xtStkFrameLen {
		return nil, nil, formatErr(off, "Xtensa frame needs %d bytes of stack, have %d", 4*xtStkFrameLen, len(stack))
	}
	regs := make([]uint32, xtRegNum)
	if word(xtStkExit) != 0 {
		regs[xtRegPC] = word(xtStkPC)
		regs[xtRegPS] = word(xtStkPS)
		for i := 0; i < 16; i++ {
			regs[xtRegAR+i] = word(xtStkAR + i)
		}
		regs[xtRegSAR] = word(xtStkSAR)
		regs[xtRegLBEG] = word(xtStkLBEG)
		regs[xtRegLEND] = word(xtStkLEND)
		regs[xtRegLCOUNT] = word(xtStkLCOUNT)
		// With PS.EXCM set GDB takes the frame for a call0 one; clear PS.UM
		// as esp-coredump does so it unwinds with the windowed ABI.
		if regs[xtRegPS]&(1<<5) != 0 {
			regs[xtRegPS] &^= 1 << 4
		}
		cause := word(xtStkEXCCAUSE)
		if _, ok := xtExcCauses[cause]; !ok {
			cause = 0xffff
		}
		return regs, []uint32{cause, word(xtStkEXCVADDR)}, nil
	}
	regs[xtRegPC] = word(xtSolPC)
	regs[xtRegPS] = word(xtSolPS)
	for i := 0; i < 4; i++ {
		regs[xtRegAR+i] = word(xtSolAR + i)
	}
	return regs, nil, nil
}

// riscvRegNames are the GDB names of x1..x31.
var riscvRegNames = [32]string{"pc", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "fp", "s1",
	"a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7",
	"s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11",
	"t3", "t4", "t5", "t6"}

// xtExcCauses names the Xtensa EXCCAUSE values (Xtensa ISA reference,
// table "Exception Causes") and the ESP-IDF panic pseudo causes.
var xtExcCauses = map[uint32]string{
	0: "IllegalInstructionCause", 1: "SyscallCause", 2: "InstructionFetchErrorCause",
	3: "LoadStoreErrorCause", 4: "Level1InterruptCause", 5: "AllocaCause",
	6: "IntegerDivideByZeroCause", 8: "PrivilegedCause", 9: "LoadStoreAlignmentCause",
	12: "InstrPIFDataErrorCause", 13: "LoadStorePIFDataErrorCause", 14: "InstrPIFAddrErrorCause",
	15: "LoadStorePIFAddrErrorCause", 16: "InstTLBMissCause", 17: "InstTLBMultiHitCause",
	18: "InstFetchPrivilegeCause", 20: "InstFetchProhibitedCause", 24: "LoadStoreTLBMissCause",
	25: "LoadStoreTLBMultiHitCause", 26: "LoadStorePrivilegeCause", 28: "LoadProhibitedCause",
	29: "StoreProhibitedCause", 32: "Coprocessor0Disabled", 33: "Coprocessor1Disabled",
	34: "Coprocessor2Disabled", 35: "Coprocessor3Disabled", 36: "Coprocessor4Disabled",
	37: "Coprocessor5Disabled", 38: "Coprocessor6Disabled", 39: "Coprocessor7Disabled",
	0xffff: "InvalidCauseRegister",
	64:     "UnknownException", 65: "DebugException", 66: "DoubleException",
	67: "KernelException", 68: "CoprocessorException", 69: "InterruptWDTTimoutCPU0",
	70: "InterruptWDTTimoutCPU1", 71: "CacheError",
}

// xtExcCauseName names an EXCCAUSE value.
func xtExcCauseName(c uint32) string {
	if n, ok := xtExcCauses[c]; ok {
		return n
	}
	return fmt.Sprintf("Invalid EXCCAUSE code %d", c)
}

// xtExtraRegName names the register with a special register number as
// used in the EXTRA_INFO note, or "" for the ones not printed.
func xtExtraRegName(id uint32) string {
	switch {
	case id >= xtSREPC1 && id <= xtSREPC1+6:
		return fmt.Sprintf("epc%d", id-xtSREPC1+1)
	case id >= xtSREPS2 && id <= xtSREPS2+5:
		return fmt.Sprintf("eps%d", id-xtSREPS2+2)
	}
	return ""
}

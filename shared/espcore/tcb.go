package espcore

import (
	"debug/dwarf"
	"sync"
)

// tcbLayout holds the offsets of the FreeRTOS TCB_t fields the task table
// reads. They moved between ESP-IDF releases (FreeRTOS 10.4 to 10.5), so
// they are read from the firmware's DWARF description of
// tskTaskControlBlock when it has one.
type tcbLayout struct {
	TopOfStack, Priority, Stack, Name, EndOfStack, BasePriority int64
	HaveEnd, HaveBase                                           bool
}

// defaultTCB is the layout of ESP-IDF v4.x and v5.0/v5.1 (tasks.c TCB_t):
// pxTopOfStack, xStateListItem, xEventListItem, uxPriority, pxStack,
// pcTaskName[16], xCoreID, pxEndOfStack, uxBasePriority.
var defaultTCB = tcbLayout{TopOfStack: 0, Priority: 44, Stack: 48, Name: 52, EndOfStack: 72, BasePriority: 76, HaveEnd: true, HaveBase: true}

type tcbCache struct {
	once   sync.Once
	layout tcbLayout
	fromDW bool
}

// tasksFunctions are functions of FreeRTOS tasks.c, whose compilation
// unit describes the TCB.
var tasksFunctions = []string{"vTaskSwitchContext", "xTaskGetTickCount", "vTaskDelete", "uxTaskGetNumberOfTasks", "xTaskIncrementTick", "vTaskSuspendAll"}

func (f *Firmware) tcbLayout() tcbLayout {
	f.tcb.once.Do(func() {
		f.tcb.layout = defaultTCB
		idx, err := f.dwarfData()
		if err != nil {
			return
		}
		for _, name := range tasksFunctions {
			addr, ok := f.funcAddr(name)
			if !ok {
				continue
			}
			d, entry, ok := idx.unitFor(uint64(addr))
			if !ok {
				continue
			}
			if l, ok := structTCB(d, entry); ok {
				f.tcb.layout, f.tcb.fromDW = l, true
			}
			return
		}
	})
	return f.tcb.layout
}

func (f *Firmware) funcAddr(name string) (uint32, bool) {
	for _, s := range f.funcs {
		if s.Name == name {
			return s.Addr, true
		}
	}
	return 0, false
}

// structTCB looks for tskTaskControlBlock among the types of the unit.
func structTCB(d *dwarf.Data, cuEntry dwarf.Offset) (l tcbLayout, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	if d == nil {
		return l, false
	}
	r := d.Reader()
	r.Seek(cuEntry)
	cu, err := r.Next()
	if err != nil || cu == nil || !cu.Children {
		return l, false
	}
	for {
		e, err := r.Next()
		if err != nil || e == nil || e.Tag == 0 {
			return l, false
		}
		if e.Tag != dwarf.TagStructType || e.Val(dwarf.AttrName) != "tskTaskControlBlock" || !e.Children {
			if e.Children {
				r.SkipChildren()
			}
			continue
		}
		have := map[string]int64{}
		for {
			m, err := r.Next()
			if err != nil || m == nil || m.Tag == 0 {
				break
			}
			if m.Children {
				r.SkipChildren()
			}
			name, _ := m.Val(dwarf.AttrName).(string)
			if off, ok := m.Val(dwarf.AttrDataMemberLoc).(int64); ok {
				have[name] = off
			}
		}
		for _, need := range []string{"pxTopOfStack", "uxPriority", "pxStack", "pcTaskName"} {
			if _, ok := have[need]; !ok {
				return l, false
			}
		}
		l = tcbLayout{TopOfStack: have["pxTopOfStack"], Priority: have["uxPriority"], Stack: have["pxStack"], Name: have["pcTaskName"]}
		l.EndOfStack, l.HaveEnd = have["pxEndOfStack"]
		l.BasePriority, l.HaveBase = have["uxBasePriority"]
		return l, true
	}
}

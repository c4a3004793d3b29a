package espcore_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/espfleet/crashdumps/shared/espcore"
	"github.com/espfleet/crashdumps/shared/espcore/espsynth"
)

// synthFirmware opens the synthetic firmware of a chip.
func synthFirmware(t testing.TB, chip string) ([]byte, *espcore.Firmware) {
	t.Helper()
	elf, err := espsynth.Firmware(chip)
	if err != nil {
		t.Fatalf("espsynth.Firmware(%q): %v", chip, err)
	}
	fw, err := espcore.OpenFirmware(bytes.NewReader(elf))
	if err != nil {
		t.Fatalf("OpenFirmware(%s synthetic): %v", chip, err)
	}
	return elf, fw
}

func frameNames(fs []espcore.Frame) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Function)
	}
	return out
}

func TestDecode_Synthetic(t *testing.T) {
	wantFrames := []string{"panic_abort", "esp_system_abort", "abort", "sensor_read", "app_main", "main_task", "vPortTaskWrapper"}
	for _, chip := range espcore.Chips() {
		elf, fw := synthFirmware(t, chip)
		for _, format := range espsynth.Formats {
			t.Run(chip+"/"+string(format), func(t *testing.T) {
				dump, err := espsynth.DumpFormat(chip, elf, format)
				if err != nil {
					t.Fatalf("DumpFormat: %v", err)
				}
				isBin := strings.HasPrefix(string(format), "bin")
				for _, in := range [][]byte{dump, espsynth.Base64(dump, false), espsynth.Base64(dump, true)} {
					r, err := espcore.Decode(in, fw)
					if err != nil {
						t.Fatalf("Decode: %v", err)
					}
					if got, want := r.Chip, chip; got != want {
						t.Errorf("Chip = %q, want %q", got, want)
					}
					if got, want := r.CrashedTask, espsynth.CrashedTask; got != want {
						t.Errorf("CrashedTask = %q, want %q", got, want)
					}
					if got, want := frameNames(r.Backtrace), wantFrames; !reflect.DeepEqual(got, want) {
						t.Errorf("backtrace = %v, want %v", got, want)
					}
					if got, want := r.TopFrame, "sensor_read"; got != want {
						t.Errorf("TopFrame = %q, want %q", got, want)
					}
					if got, want := len(r.Tasks), 2; got != want {
						t.Fatalf("len(Tasks) = %d, want %d", got, want)
					}
					if got, want := r.Tasks[1].Name, espsynth.IdleTask; got != want {
						t.Errorf("Tasks[1].Name = %q, want %q", got, want)
					}
					if isBin {
						continue
					}
					if got, want := r.PanicReason, espsynth.PanicReason(chip); got != want {
						t.Errorf("PanicReason = %q, want %q", got, want)
					}
					if !r.SHA256Match {
						t.Errorf("SHA256Match = false, want true (dump %s, firmware %s)", r.AppELFSHA256, r.FirmwareSHA256)
					}
					if got, want := r.Backtrace[3].Line, 42; got != want {
						t.Errorf("sensor_read line = %d, want %d", got, want)
					}
					if got, want := r.Backtrace[0].Args, []espcore.Arg{{Name: "details", Value: "0x" + strconv.FormatUint(uint64(espsynth.DetailsAddr(chip)), 16) + " " + strconv.Quote(espsynth.PanicReason(chip))}}; !reflect.DeepEqual(got, want) {
						t.Errorf("panic_abort args = %v, want %v", got, want)
					}
				}
			})
		}
	}
}

func TestDecode_SignatureStable(t *testing.T) {
	elf, fw := synthFirmware(t, "esp32c3")
	a, _ := espsynth.DumpFormat("esp32c3", elf, espsynth.ELFCRC32V2_1)
	b, _ := espsynth.DumpFormat("esp32c3", elf, espsynth.ELFV2_2)
	ra, err := espcore.Decode(a, fw)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := espcore.Decode(b, fw)
	if err != nil {
		t.Fatal(err)
	}
	if ra.Signature != rb.Signature || len(ra.Signature) != 32 {
		t.Errorf("signatures %q and %q: want equal 32-digit hex", ra.Signature, rb.Signature)
	}
	_, fw32 := synthFirmware(t, "esp32")
	elf32, _ := espsynth.Firmware("esp32")
	c, _ := espsynth.Dump("esp32", elf32)
	rc, err := espcore.Decode(c, fw32)
	if err != nil {
		t.Fatal(err)
	}
	if rc.Signature == ra.Signature {
		t.Errorf("esp32 and esp32c3 share signature %s, want different (chip is hashed)", rc.Signature)
	}
}

func TestDecode_Errors(t *testing.T) {
	elf, fw := synthFirmware(t, "esp32c3")
	good, _ := espsynth.Dump("esp32c3", elf)
	flip := func(off int) []byte {
		b := bytes.Clone(good)
		b[off] ^= 0x40
		return b
	}
	otherELF := bytes.Clone(elf)
	otherELF = append(otherELF, 0) // same code, other file hash
	otherDump, _ := espsynth.Dump("esp32c3", otherELF)
	_, fw32 := synthFirmware(t, "esp32")

	tests := []struct {
		name     string
		dump     []byte
		fw       *espcore.Firmware
		wantIs   error
		wantFmt  bool
		contains string
	}{
		{name: "ErrMismatch", dump: otherDump, fw: fw, wantIs: espcore.ErrELFMismatch, contains: "does not match"},
		{name: "ErrArchMismatch", dump: good, fw: fw32, wantIs: espcore.ErrELFMismatch},
		{name: "ErrChecksum", dump: flip(100), fw: fw, wantFmt: true, contains: "checksum mismatch"},
		{name: "ErrTruncated", dump: good[:len(good)-10], fw: fw, wantFmt: true, contains: "exceeds"},
		{name: "ErrEmpty", dump: nil, fw: fw, wantIs: espcore.ErrNotCoreDump},
		{name: "ErrGarbage", dump: []byte("hello, world!"), fw: fw, wantIs: espcore.ErrNotCoreDump},
		{name: "ErrVersion", dump: flip(5), fw: fw, wantFmt: true, contains: "version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := espcore.Decode(tt.dump, tt.fw)
			if err == nil {
				t.Fatalf("Decode = %v, nil error; want error", r)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v: want errors.Is %v", err, tt.wantIs)
			}
			var fe *espcore.FormatError
			if got := errors.As(err, &fe); got != tt.wantFmt {
				t.Errorf("error %v: errors.As FormatError = %v, want %v", err, got, tt.wantFmt)
			}
			if !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("error %q does not contain %q", err, tt.contains)
			}
		})
	}
	t.Run("MismatchNamesBothHashes", func(t *testing.T) {
		_, err := espcore.Decode(otherDump, fw)
		var me *espcore.MismatchError
		if !errors.As(err, &me) {
			t.Fatalf("error %v: want *MismatchError", err)
		}
		if got, want := me.FirmwareSHA256, fw.SHA256(); got != want {
			t.Errorf("FirmwareSHA256 = %s, want %s", got, want)
		}
		if me.DumpSHA256 == "" || !strings.Contains(err.Error(), me.DumpSHA256) || !strings.Contains(err.Error(), me.FirmwareSHA256) {
			t.Errorf("error %q should name both hashes", err)
		}
	})
}

func TestOpenFirmwareBytes(t *testing.T) {
	elf, viaReader := synthFirmware(t, "esp32c3")
	fw, err := espcore.OpenFirmwareBytes(elf)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fw.SHA256(), viaReader.SHA256(); got != want {
		t.Errorf("SHA256 = %s, want %s", got, want)
	}
	dump, _ := espsynth.Dump("esp32c3", elf)
	if _, err := espcore.Decode(dump, fw); err != nil {
		t.Errorf("Decode: %v", err)
	}
	if _, err := espcore.OpenFirmwareBytes([]byte("\x7fELF not really")); err == nil {
		t.Error("OpenFirmwareBytes(garbage) = nil error, want error")
	}
}

func TestOpenFirmware_Errors(t *testing.T) {
	elf, _ := espsynth.Firmware("esp32c3")
	// brokenSymtab points .symtab at a section that is not a string
	// table, so opening fails after the ELF header parsed.
	brokenSymtab := func() []byte {
		b := bytes.Clone(elf)
		le := binary.LittleEndian
		shoff, shnum := le.Uint32(b[32:]), le.Uint16(b[48:])
		for i := uint32(0); i < uint32(shnum); i++ {
			h := shoff + 40*i
			if le.Uint32(b[h+4:]) == 2 { // SHT_SYMTAB
				le.PutUint32(b[h+24:], 1)
			}
		}
		return b
	}
	tests := []struct {
		name string
		elf  []byte
		want string
	}{
		{"ErrEmpty", nil, "parsing firmware ELF"},
		{"ErrNotELF", []byte("definitely not an ELF file, just text"), "parsing firmware ELF"},
		{"ErrSymtabLink", brokenSymtab(), "string table 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fw, err := espcore.OpenFirmware(bytes.NewReader(tt.elf))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("OpenFirmware = %v, %v; want error containing %q", fw, err, tt.want)
			}
			// The firmware hash runs in a goroutine; give it time to
			// finish so a failure there shows up in this test.
			time.Sleep(20 * time.Millisecond)
		})
	}
}

func TestReport_JSON(t *testing.T) {
	elf, fw := synthFirmware(t, "esp32")
	dump, _ := espsynth.Dump("esp32", elf)
	r, err := espcore.Decode(dump, fw)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"chip":"esp32"`, `"signature":"`, `"top_frame":"sensor_read"`, `"crashed_tcb":"0x3ffb0400"`, `"panic_reason":"abort()`} {
		if !bytes.Contains(b, []byte(key)) {
			t.Errorf("JSON lacks %s: %s", key, b)
		}
	}
	var back espcore.Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if got, want := back.Signature, r.Signature; got != want {
		t.Errorf("round-trip Signature = %q, want %q", got, want)
	}
	if got, want := back.CrashedTCB, r.CrashedTCB; got != want {
		t.Errorf("round-trip CrashedTCB = %v, want %v", got, want)
	}
}

func TestReport_Text(t *testing.T) {
	elf, fw := synthFirmware(t, "esp32c3")
	dump, _ := espsynth.Dump("esp32c3", elf)
	r, err := espcore.Decode(dump, fw)
	if err != nil {
		t.Fatal(err)
	}
	text := r.Text()
	for _, want := range []string{
		"Crashed task handle: 0x3fc90400, name: 'main'",
		"Crashed task is not in the interrupt context",
		"Panic reason: abort() was called at PC",
		"================== CURRENT THREAD REGISTERS ===================",
		"pc             0x42000030\t0x42000030 <panic_abort+16>",
		"#3  0x4200008c in sensor_read () at main/app_main.c:42",
		"0x3fc90400             main      1/1",
		"======================= ALL MEMORY REGIONS ========================",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text report lacks %q:\n%s", want, text)
		}
	}
}

func TestFirmware_Concurrent(t *testing.T) {
	for _, chip := range []string{"esp32", "esp32c3", "esp32c6"} {
		t.Run(chip, func(t *testing.T) {
			elf, ref := synthFirmware(t, chip)
			dump, _ := espsynth.Dump(chip, elf)
			want, err := espcore.Decode(dump, ref)
			if err != nil {
				t.Fatal(err)
			}
			// A fresh Firmware, so the lazy DWARF and CFI loading races too.
			_, fw := synthFirmware(t, chip)
			errs := make(chan error, 8)
			for i := 0; i < 8; i++ {
				go func() {
					r, err := espcore.Decode(dump, fw)
					if err == nil && r.Signature != want.Signature {
						err = fmt.Errorf("signature %s under concurrency, want %s", r.Signature, want.Signature)
					}
					errs <- err
				}()
			}
			for i := 0; i < 8; i++ {
				if err := <-errs; err != nil {
					t.Error(err)
				}
			}
		})
	}
}

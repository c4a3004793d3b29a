package crashgroup_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/espfleet/crashdumps/shared/crashdump"
	"github.com/espfleet/crashdumps/shared/crashgroup"
	"github.com/espfleet/crashdumps/shared/parse"
)

func TestValidateSignature(t *testing.T) {
	tests := []struct {
		name, sig string
		ok        bool
	}{
		{"OK", "0123456789abcdef0123456789abcdef", true},
		{"OKSidecarForm", "esp32:LoadProhibited:app_main", true},
		{"OKLongest", strings.Repeat("a", crashgroup.MaxSignature), true},
		{"ErrEmpty", "", false},
		{"ErrTooLong", strings.Repeat("a", crashgroup.MaxSignature+1), false},
		{"ErrSpace", "a b", false},
		{"ErrControl", "a\x00b", false},
		{"ErrNonASCII", "é", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := crashgroup.ValidateSignature(tt.sig)
			if got := err == nil; got != tt.ok {
				t.Errorf("got %v, want ok %v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, parse.ErrNoSignature) {
				t.Errorf("got %v, want parse.ErrNoSignature", err)
			}
		})
	}
}

func TestNewCrash(t *testing.T) {
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	d := crashdump.Dump{
		ID: crashdump.NewID(at), DeviceKey: "dev1", ModelCode: "ps1", Chip: "esp32",
		FirmwareVersion: "1.0", UploadedAt: at, Signature: "abc", TopFrame: "app_main",
	}
	t.Run("OK", func(t *testing.T) {
		c, err := crashgroup.NewCrash(&d, "abort() was called")
		want := crashgroup.Crash{Signature: "abc", Chip: "esp32", CrashKind: "abort() was called",
			TopFrame: "app_main", DeviceKey: "dev1", DumpID: d.ID, Model: "ps1", FirmwareVersion: "1.0", UploadedAt: at}
		if err != nil || c != want {
			t.Errorf("got %+v, %v, want %+v", c, err, want)
		}
	})
	t.Run("ErrNoSignature", func(t *testing.T) {
		e := d
		e.Signature = ""
		if _, err := crashgroup.NewCrash(&e, ""); !errors.Is(err, parse.ErrNoSignature) {
			t.Errorf("got %v, want ErrNoSignature", err)
		}
	})
}

func TestPosition(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	// Positions sort as last seen times, then signatures, whatever the
	// time zone and precision given.
	ordered := []string{
		crashgroup.Position(t0.Add(-time.Millisecond), "zzz"),
		crashgroup.Position(t0.In(time.FixedZone("x", 3600)), "aaa"),
		crashgroup.Position(t0.Add(999*time.Microsecond), "aab"),
		crashgroup.Position(t0.Add(time.Millisecond), "a"),
		crashgroup.Position(t0.AddDate(1, 0, 0), "a"),
	}
	for i := 1; i < len(ordered); i++ {
		if ordered[i-1] >= ordered[i] {
			t.Errorf("got %s >= %s, want ordered", ordered[i-1], ordered[i])
		}
	}
	if got, want := ordered[1], "2026-12-03T10:00:00.000Z#aaa"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestShard(t *testing.T) {
	seen := map[int]int{}
	for i := range 1000 {
		s := crashgroup.Shard(strings.Repeat("x", i%50) + string(rune('a'+i%26)))
		if s < 0 || s >= crashgroup.Shards {
			t.Fatalf("got shard %d, want 0..%d", s, crashgroup.Shards-1)
		}
		seen[s]++
	}
	if len(seen) != crashgroup.Shards {
		t.Errorf("got shards %v, want all %d used", seen, crashgroup.Shards)
	}
}

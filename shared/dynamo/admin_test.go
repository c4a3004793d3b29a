package dynamo_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/espfleet/crashdumps/shared/admin"
	"github.com/espfleet/crashdumps/shared/crashdump"
)

func seedAdmin(t *testing.T, n int) ([]crashdump.Dump, time.Time) {
	t.Helper()
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var dumps []crashdump.Dump
	for i := range n {
		at := day.Add(time.Duration(i) * time.Minute)
		id := crashdump.NewID(at)
		d := crashdump.Dump{
			ID: id, DeviceKey: "dev1", ModelCode: "ps1", Chip: "esp32", FirmwareVersion: "1.0",
			Size: 1, SHA256: strconv.Itoa(i), UploadedAt: at, ParseStatus: crashdump.StatusPending,
			Output: "report",
		}
		if i%3 == 0 {
			d.ParseStatus, d.Chip = crashdump.StatusError, "esp32c3"
		}
		dumps = append(dumps, d)
	}
	return dumps, day
}

func TestStore_QueryFleet(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	dumps, day := seedAdmin(t, 60)
	if err := s.PutDumps(ctx, dumps); err != nil {
		t.Fatal(err)
	}
	t.Run("OKEveryShard", func(t *testing.T) {
		// Every dump is in the partition that FleetPK names for it.
		seen := 0
		for shard := range crashdump.FleetShards {
			got, err := s.QueryFleet(ctx, day, shard, admin.Range{}, admin.Filter{}, 100)
			if err != nil {
				t.Fatal(err)
			}
			for i, d := range got {
				if crashdump.FleetShard(d.ID) != shard {
					t.Errorf("dump %s of shard %d in shard %d", d.ID, crashdump.FleetShard(d.ID), shard)
				}
				if i > 0 && d.ID >= got[i-1].ID {
					t.Errorf("not newest first at %d", i)
				}
				if d.Output != "" {
					t.Errorf("a listing read the output")
				}
			}
			seen += len(got)
		}
		if seen != len(dumps) {
			t.Errorf("got %d dumps over the shards, want %d", seen, len(dumps))
		}
	})
	t.Run("OKRangeAndFilter", func(t *testing.T) {
		hi := dumps[30].ID
		got, err := s.ListDevice(ctx, "dev1", admin.Range{Hi: hi}, admin.Filter{Status: crashdump.StatusError, Chip: "esp32c3"}, 4)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{dumps[27].ID, dumps[24].ID, dumps[21].ID, dumps[18].ID}
		if len(got) != len(want) {
			t.Fatalf("got %d dumps, want %d", len(got), len(want))
		}
		for i := range want {
			if got[i].ID != want[i] {
				t.Errorf("dump %d: got %s, want %s", i, got[i].ID, want[i])
			}
		}
	})
	t.Run("OKFirmware", func(t *testing.T) {
		got, err := s.QueryFirmware(ctx, "ps1", "1.0", admin.Range{Lo: dumps[50].ID}, admin.Filter{}, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 10 || got[0].ID != dumps[59].ID || got[9].ID != dumps[50].ID {
			t.Errorf("got %d dumps, want the 10 from %s down to %s", len(got), dumps[59].ID, dumps[50].ID)
		}
	})
}

func TestStore_DeleteDeviceRest(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	dumps, _ := seedAdmin(t, 3)
	if err := s.PutDumps(ctx, dumps); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteDeviceRest(ctx, "dev1"); err != nil {
		t.Fatal(err)
	}
	left, err := s.DeviceDumps(ctx, "dev1")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(left), 3; got != want {
		t.Errorf("dump records: got %d, want %d kept", got, want)
	}
	if _, err := s.DumpBySHA(ctx, "dev1", dumps[0].SHA256); err != crashdump.ErrNotFound {
		t.Errorf("marker: got %v, want it gone", err)
	}
}

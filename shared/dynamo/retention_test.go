package dynamo_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/espfleet/crashdumps/shared/crashdump"
	"github.com/espfleet/crashdumps/shared/retention"
)

func TestStore_Registered(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	var dumps []crashdump.Dump
	var keys []string
	for i := range 150 {
		dev := fmt.Sprintf("reg%03d", i)
		keys = append(keys, dev)
		if i%2 == 0 {
			now := time.Now()
			dumps = append(dumps, crashdump.Dump{ID: crashdump.NewID(now), DeviceKey: dev, ModelCode: "ps1", UploadedAt: now})
		}
	}
	if err := s.ImportDumps(ctx, dumps); err != nil {
		t.Fatal(err)
	}
	t.Run("OK", func(t *testing.T) {
		got, err := s.Registered(ctx, keys)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 75 {
			t.Errorf("registered: got %d, want 75", len(got))
		}
		for i, k := range keys {
			if got[k] != (i%2 == 0) {
				t.Errorf("%s: got %v, want %v", k, got[k], i%2 == 0)
			}
		}
	})
	t.Run("OKPaged", func(t *testing.T) {
		seen := 0
		for shard := range crashdump.DeviceShards {
			after := ""
			for {
				page, more, err := s.RegistryPage(ctx, shard, after, 3)
				if err != nil {
					t.Fatal(err)
				}
				for _, k := range page {
					if k <= after {
						t.Errorf("shard %d: %s after %s, want key order", shard, k, after)
					}
					after = k
				}
				seen += len(page)
				if !more || len(page) == 0 {
					break
				}
			}
		}
		if seen != 75 {
			t.Errorf("devices paged: got %d, want 75", seen)
		}
	})
}

func TestStore_FailStuck(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	s := newStore(t)
	t.Run("OK", func(t *testing.T) {
		d := putDump(t, s, now)
		setParsing(t, s, d, now.Add(-time.Minute))
		d.ParseStatus = crashdump.StatusParsing
		if err := s.FailStuck(ctx, *d, "gave up", now); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetDump(ctx, d.DeviceKey, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.ParseStatus != crashdump.StatusError || got.ParseError != "gave up" {
			t.Errorf("got %s %q, want ERROR %q", got.ParseStatus, got.ParseError, "gave up")
		}
		n := 0
		// The test helper left the index value of the upload, PENDING.
		q := retention.StuckQuery{Status: crashdump.StatusPending, FromID: d.ID, ToID: d.ID}
		err = s.StuckDumps(ctx, q, func(crashdump.Dump) error { n++; return nil })
		if err != nil || n != 0 {
			t.Errorf("work index: got %d entries (%v), want the dump gone from it", n, err)
		}
	})
	t.Run("ErrConflict", func(t *testing.T) {
		d := putDump(t, s, now.Add(time.Millisecond))
		setParsing(t, s, d, now.Add(time.Minute))
		d.ParseStatus = crashdump.StatusParsing
		if err := s.FailStuck(ctx, *d, "gave up", now); !errors.Is(err, crashdump.ErrConflict) {
			t.Errorf("got %v, want ErrConflict", err)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		d := crashdump.Dump{ID: crashdump.NewID(now), DeviceKey: "dev1", ParseStatus: crashdump.StatusPending}
		if err := s.FailStuck(ctx, d, "gave up", now); !errors.Is(err, crashdump.ErrNotFound) {
			t.Errorf("got %v, want ErrNotFound", err)
		}
	})
}

func TestStore_Checkpoint(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	if _, ok, err := s.LoadCheckpoint(ctx); ok || err != nil {
		t.Fatalf("empty table: got %v, %v; want no checkpoint", ok, err)
	}
	want := retention.Checkpoint{Phase: retention.PhaseDevices, Shard: 7, After: "abcd1234"}
	if err := s.SaveCheckpoint(ctx, want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.LoadCheckpoint(ctx)
	if err != nil || !ok || got != want {
		t.Errorf("got %+v %v %v, want %+v", got, ok, err, want)
	}
	if err := s.ClearCheckpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := s.LoadCheckpoint(ctx); ok {
		t.Errorf("checkpoint left after clearing")
	}
}

package dynamo_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/espfleet/crashdumps/shared/crashgroup"
	"github.com/espfleet/crashdumps/shared/dynamo"
)

func crash(sig, device, version string, at time.Time) crashgroup.Crash {
	return crashgroup.Crash{
		Signature: sig, Chip: "esp32c3", CrashKind: "Load access fault", TopFrame: "app_main",
		DeviceKey: device, DumpID: fmt.Sprintf("%s-%d", device, at.UnixMilli()), Model: "ps1",
		FirmwareVersion: version, UploadedAt: at,
	}
}

func group(t *testing.T, s *dynamo.Store, sig string) crashgroup.Group {
	t.Helper()
	g, ok, err := s.GetGroup(context.Background(), sig)
	if err != nil || !ok {
		t.Fatalf("group %s: got %v, %v, want one", sig, ok, err)
	}
	return g
}

func TestStore_RecordCrash(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	const sig = "0123456789abcdef0123456789abcdef"
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	first := crash(sig, "dev1", "1.0", t0)

	t.Run("OKNew", func(t *testing.T) {
		counted, err := s.RecordCrash(ctx, first)
		if err != nil || !counted {
			t.Fatalf("got %v, %v, want counted", counted, err)
		}
		g := group(t, s, sig)
		if g.Count != 1 || g.Devices != 1 || !g.FirstSeen.Equal(t0) || !g.LastSeen.Equal(t0) {
			t.Errorf("got %+v, want 1 dump, 1 device, seen at %v", g, t0)
		}
		if g.SampleDumpID != first.DumpID || g.SampleDeviceKey != "dev1" || g.TopFrame != "app_main" ||
			g.CrashKind != "Load access fault" || g.Chip != "esp32c3" {
			t.Errorf("got %+v, want the first crash's fields", g)
		}
	})
	t.Run("OKDuplicate", func(t *testing.T) {
		counted, err := s.RecordCrash(ctx, first)
		if err != nil || counted {
			t.Fatalf("got %v, %v, want not counted again", counted, err)
		}
		if g := group(t, s, sig); g.Count != 1 || g.Devices != 1 {
			t.Errorf("got %d dumps of %d devices, want 1 of 1", g.Count, g.Devices)
		}
	})
	t.Run("OKSameDeviceNewer", func(t *testing.T) {
		c := crash(sig, "dev1", "1.1", t0.Add(time.Hour))
		if counted, err := s.RecordCrash(ctx, c); err != nil || !counted {
			t.Fatalf("got %v, %v, want counted", counted, err)
		}
		g := group(t, s, sig)
		if g.Count != 2 || g.Devices != 1 {
			t.Errorf("got %d dumps of %d devices, want 2 of 1", g.Count, g.Devices)
		}
		if !g.LastSeen.Equal(c.UploadedAt) || g.SampleDumpID != c.DumpID || !g.FirstSeen.Equal(t0) {
			t.Errorf("got last %v sample %s first %v, want last %v sample %s first %v",
				g.LastSeen, g.SampleDumpID, g.FirstSeen, c.UploadedAt, c.DumpID, t0)
		}
		if want := []string{"1.0", "1.1"}; !slices.Equal(g.FirmwareVersions, want) {
			t.Errorf("versions: got %v, want %v", g.FirmwareVersions, want)
		}
	})
	t.Run("OKOtherDeviceOlder", func(t *testing.T) {
		c := crash(sig, "dev2", "0.9", t0.Add(-time.Hour))
		c.Model = "ps2"
		if counted, err := s.RecordCrash(ctx, c); err != nil || !counted {
			t.Fatalf("got %v, %v, want counted", counted, err)
		}
		g := group(t, s, sig)
		if g.Count != 3 || g.Devices != 2 {
			t.Errorf("got %d dumps of %d devices, want 3 of 2", g.Count, g.Devices)
		}
		if !g.FirstSeen.Equal(c.UploadedAt) || !g.LastSeen.Equal(t0.Add(time.Hour)) || g.SampleDeviceKey != "dev1" {
			t.Errorf("got first %v last %v sample %s, want first %v, last and sample unchanged",
				g.FirstSeen, g.LastSeen, g.SampleDeviceKey, c.UploadedAt)
		}
		if want := []string{"ps1", "ps2"}; !slices.Equal(g.Models, want) {
			t.Errorf("models: got %v, want %v", g.Models, want)
		}
	})
}

// TestStore_RecordCrashRedelivered delivers every crash three times, in a
// shuffled order: each dump and each device still counts once. The
// deliveries run one after another: moto applies concurrent writes to one
// item without isolation (it loses increments that DynamoDB serializes),
// so a concurrent run would test the emulator.
func TestStore_RecordCrashRedelivered(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	const sig = "fedcba9876543210fedcba9876543210"
	t0 := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	var crashes, deliveries []crashgroup.Crash
	for i := range 12 {
		c := crash(sig, fmt.Sprintf("dev%d", i%4), "2.0", t0.Add(time.Duration(i)*time.Minute))
		crashes = append(crashes, c)
		deliveries = append(deliveries, c, c, c)
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(deliveries), func(i, j int) {
		deliveries[i], deliveries[j] = deliveries[j], deliveries[i]
	})
	counted := 0
	for _, c := range deliveries {
		ok, err := s.RecordCrash(ctx, c)
		if err != nil {
			t.Fatalf("recording: %v", err)
		}
		if ok {
			counted++
		}
	}
	if counted != 12 {
		t.Errorf("counted: got %d deliveries as new, want 12", counted)
	}
	g := group(t, s, sig)
	if g.Count != 12 || g.Devices != 4 {
		t.Errorf("got %d dumps of %d devices, want 12 of 4", g.Count, g.Devices)
	}
	last := crashes[len(crashes)-1]
	if !g.FirstSeen.Equal(t0) || !g.LastSeen.Equal(last.UploadedAt) || g.SampleDumpID != last.DumpID {
		t.Errorf("got first %v last %v sample %s, want %v %v %s",
			g.FirstSeen, g.LastSeen, g.SampleDumpID, t0, last.UploadedAt, last.DumpID)
	}
}

func TestStore_QueryGroups(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	// 40 groups, one crash each, an hour apart; even ones on esp32s3
	// with firmware 2.0, odd ones on esp32c3 with 1.0.
	byShard := map[int][]string{}
	for i := range 40 {
		c := crash(fmt.Sprintf("sig%02d", i), "dev1", "1.0", t0.Add(time.Duration(i)*time.Hour))
		if i%2 == 0 {
			c.Chip, c.FirmwareVersion = "esp32s3", "2.0"
		}
		if _, err := s.RecordCrash(ctx, c); err != nil {
			t.Fatal(err)
		}
		sh := crashgroup.Shard(c.Signature)
		byShard[sh] = append([]string{c.Signature}, byShard[sh]...)
	}
	sigs := func(gs []crashgroup.Group) []string {
		var out []string
		for _, g := range gs {
			out = append(out, g.Signature)
		}
		return out
	}
	tests := []struct {
		name  string
		q     crashgroup.Query
		limit int
		want  func(sig string, i int) bool
	}{
		{"OK", crashgroup.Query{}, 100, func(string, int) bool { return true }},
		{"OKLimit", crashgroup.Query{}, 3, func(string, int) bool { return true }},
		{"OKChip", crashgroup.Query{Chip: "esp32s3"}, 100, func(_ string, i int) bool { return i%2 == 0 }},
		{"OKFirmware", crashgroup.Query{FirmwareVersion: "1.0"}, 100, func(_ string, i int) bool { return i%2 == 1 }},
		{"OKModelNone", crashgroup.Query{Model: "nope"}, 100, func(string, int) bool { return false }},
		{"OKRange", crashgroup.Query{
			Lo: crashgroup.Position(t0.Add(10*time.Hour), ""),
			Hi: crashgroup.Position(t0.Add(20*time.Hour), "sig20"),
		}, 100, func(_ string, i int) bool { return i >= 10 && i < 20 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for shard, all := range byShard {
				got, err := s.QueryGroups(ctx, shard, tt.q, tt.limit)
				if err != nil {
					t.Fatal(err)
				}
				var want []string
				for _, sig := range all {
					var i int
					fmt.Sscanf(sig, "sig%d", &i)
					if tt.want(sig, i) && len(want) < tt.limit {
						want = append(want, sig)
					}
				}
				if !slices.Equal(sigs(got), want) {
					t.Errorf("shard %d: got %v, want %v", shard, sigs(got), want)
				}
			}
		})
	}
}

// TestStore_RecordCrashMarkers checks the marker items: the dump marker
// expires a week after its dump would, the device marker and the group
// never.
func TestStore_RecordCrashMarkers(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	s.RetentionDays = 30
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	c := crash("markers", "dev1", "1.0", at)
	if _, err := s.RecordCrash(ctx, c); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"DUMP#" + c.DumpID: strconv.FormatInt(at.Add(37*24*time.Hour).Unix(), 10),
		"DEV#dev1":         "",
		"GROUP":            "",
	}
	out, err := s.Client.Query(ctx, &dynamodb.QueryInput{
		TableName:                 &s.Table,
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: "GROUP#markers"}},
		ConsistentRead:            aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Items) != len(want) {
		t.Errorf("got %d items, want %d", len(out.Items), len(want))
	}
	for _, item := range out.Items {
		sk := item["sk"].(*types.AttributeValueMemberS).Value
		exp := ""
		if v, ok := item["expires_at"].(*types.AttributeValueMemberN); ok {
			exp = v.Value
		}
		if w, ok := want[sk]; !ok || exp != w {
			t.Errorf("%s: got expires_at %q, want %q", sk, exp, w)
		}
	}
}

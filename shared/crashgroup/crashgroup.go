// Package crashgroup keeps crash groups: every parsed dump with a crash
// signature counts in the group of that signature, and admins list the
// groups newest first by the last time one of their crashes was uploaded.
//
// A group is kept up to date when a dump becomes PARSED, never computed by
// a scan: the store records each dump and each device in its group once,
// whatever the number of deliveries or re-parses, so the dump count and the
// device count are exact. Deleting a dump does not take it out of its
// group's counts.
package crashgroup

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/espfleet/crashdumps/shared/crashdump"
	"github.com/espfleet/crashdumps/shared/parse"
)

// Group is the aggregate of one crash signature.
type Group struct {
	Signature string `json:"signature"`
	Chip      string `json:"chip"`
	// CrashKind is the panic reason or exception cause the signature
	// was computed from, when the parser reported it.
	CrashKind string `json:"crash_kind,omitempty"`
	// TopFrame is the first frame of the crashed task that is not panic
	// or abort plumbing.
	TopFrame string `json:"top_frame,omitempty"`
	// Count is how many dumps were parsed with this signature.
	Count int64 `json:"count"`
	// Devices is how many distinct devices uploaded them.
	Devices          int64    `json:"device_count"`
	FirmwareVersions []string `json:"firmware_versions"`
	Models           []string `json:"models"`
	// FirstSeen and LastSeen are the upload times of the oldest and the
	// newest of the dumps.
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// SampleDumpID and SampleDeviceKey name the newest dump, which may
	// have been deleted since.
	SampleDumpID    string `json:"sample_dump_id"`
	SampleDeviceKey string `json:"sample_device_key"`
}

// Crash is one parsed dump as its group counts it.
type Crash struct {
	Signature       string
	Chip            string
	CrashKind       string
	TopFrame        string
	DeviceKey       string
	DumpID          string
	Model           string
	FirmwareVersion string
	// UploadedAt is when the dump was uploaded: the group's first and
	// last seen times are upload times, not parse times.
	UploadedAt time.Time
}

// MaxSignature is the longest signature kept; the built-in decoder's are
// 32 hex digits.
const MaxSignature = 128

// ErrNoSignature says a dump has no signature that a group can be kept
// for; it is the parse function's own, so that it can tell this case.
var ErrNoSignature = parse.ErrNoSignature

var _ parse.GroupRecorder = (*Recorder)(nil)

// NewCrash returns the crash of a parsed dump, or ErrNoSignature when its
// signature is empty, too long or holds other bytes than printable ASCII
// without spaces.
func NewCrash(d *crashdump.Dump, kind string) (Crash, error) {
	if err := ValidateSignature(d.Signature); err != nil {
		return Crash{}, err
	}
	return Crash{
		Signature:       d.Signature,
		Chip:            d.Chip,
		CrashKind:       kind,
		TopFrame:        d.TopFrame,
		DeviceKey:       d.DeviceKey,
		DumpID:          d.ID,
		Model:           d.ModelCode,
		FirmwareVersion: d.FirmwareVersion,
		UploadedAt:      d.UploadedAt,
	}, nil
}

// ValidateSignature returns ErrNoSignature unless sig can name a group.
func ValidateSignature(sig string) error {
	if sig == "" || len(sig) > MaxSignature {
		return ErrNoSignature
	}
	for i := 0; i < len(sig); i++ {
		if sig[i] <= ' ' || sig[i] > '~' {
			return ErrNoSignature
		}
	}
	return nil
}

// Shards is how many partitions of the groups index the groups are spread
// over, so that the writes of a crash burst do not all land on one.
const Shards = 4

// Shard returns the index partition of a signature.
func Shard(sig string) int {
	h := fnv.New32a()
	h.Write([]byte(sig))
	return int(h.Sum32() % Shards)
}

// timeLayout is the fixed-width form of a time in a position, so that
// positions sort as their times do.
const timeLayout = "2006-01-02T15:04:05.000Z"

// Position is a group's sort key in the groups index: its last seen time,
// then its signature. Positions order every group, newest first when
// read backwards; a cursor carries one.
func Position(lastSeen time.Time, sig string) string {
	return lastSeen.UTC().Format(timeLayout) + "#" + sig
}

// timeBound is the position before every group last seen at t or later.
func timeBound(t time.Time) string { return t.UTC().Format(timeLayout) }

// checkPosition reports whether p is a position Position can make.
func checkPosition(p string) bool {
	n := len(timeLayout)
	if len(p) < n+2 || p[n] != '#' {
		return false
	}
	if _, err := time.Parse(timeLayout, p[:n]); err != nil {
		return false
	}
	return ValidateSignature(p[n+1:]) == nil
}

// Query selects groups from one partition of the groups index.
type Query struct {
	// Lo <= position < Hi; an empty bound is open.
	Lo, Hi string
	// Chip, when set, must equal the group's chip; FirmwareVersion and
	// Model, when set, must be among the group's.
	Chip            string
	FirmwareVersion string
	Model           string
}

// Store keeps crash groups.
type Store interface {
	// RecordCrash counts c in its group unless its dump was counted
	// before, and counts its device unless the device was counted
	// before. It reports whether the dump was new to the group. Its
	// first and last seen times and its sample are brought up to date
	// either way.
	RecordCrash(ctx context.Context, c Crash) (bool, error)
	// QueryGroups returns up to limit groups of one partition of the
	// groups index that match q, from the highest position down.
	QueryGroups(ctx context.Context, shard int, q Query, limit int) ([]Group, error)
}

// Recorder counts parsed dumps in their groups. It implements the parse
// function's crash group hook.
type Recorder struct {
	Store Store
}

// RecordParsed counts the parsed dump d, whose parser named its crash
// kind, in its group. A dump without a usable signature returns
// ErrNoSignature.
func (r *Recorder) RecordParsed(ctx context.Context, d *crashdump.Dump, kind string) error {
	c, err := NewCrash(d, kind)
	if err != nil {
		return err
	}
	if _, err := r.Store.RecordCrash(ctx, c); err != nil {
		return fmt.Errorf("recording %s in group %s: %w", d.ID, c.Signature, err)
	}
	return nil
}

// fingerprint identifies a query for its cursors. Validated fields hold
// no NUL bytes.
func fingerprint(parts ...string) string { return strings.Join(parts, "\x00") }

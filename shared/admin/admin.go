// Package admin owns the rules of the admin API: listing a device's dumps
// and the fleet's with opaque cursors, reading one dump with its parsed
// output, handing out a short-lived download link, deleting one dump or
// all of a device, and putting a dump back in line for a new parse.
//
// Listings are always served by key queries, never scans: a device's dumps
// from its own partition, the fleet's from the day×shard partitions of the
// fleet index (merged newest first), or from the firmware index when the
// query names both a model and a firmware version.
package admin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/espfleet/crashdumps/shared/crashdump"
	"github.com/espfleet/crashdumps/shared/parse"
)

// Range bounds the ids of a query: Lo <= id < Hi. An empty bound is open.
type Range struct {
	Lo, Hi string
}

// Filter narrows a listing to the dumps whose fields equal the set ones.
type Filter struct {
	Status          crashdump.Status
	Chip            string
	FirmwareVersion string
	Model           string
}

// Store is what the admin rules need of the metadata store.
type Store interface {
	parse.ResetStore
	crashdump.RecordRemover
	// GetDump returns one dump, or crashdump.ErrNotFound.
	GetDump(ctx context.Context, deviceKey, id string) (*crashdump.Dump, error)
	// ListDevice returns up to limit of the device's dumps in r that
	// match f, newest first, without their parsed output.
	ListDevice(ctx context.Context, deviceKey string, r Range, f Filter, limit int) ([]crashdump.Dump, error)
	// QueryFleet returns up to limit dumps in r that match f from one
	// partition of the fleet index: the dumps uploaded on day (UTC) whose
	// id falls in shard (crashdump.FleetShard), newest first, without
	// their parsed output.
	QueryFleet(ctx context.Context, day time.Time, shard int, r Range, f Filter, limit int) ([]crashdump.Dump, error)
	// QueryFirmware returns up to limit dumps in r that match f from the
	// firmware index partition of one model and version, newest first,
	// without their parsed output.
	QueryFirmware(ctx context.Context, model, version string, r Range, f Filter, limit int) ([]crashdump.Dump, error)
	// DeviceDumps returns all of the device's dumps with at least the
	// fields that removing them needs.
	DeviceDumps(ctx context.Context, deviceKey string) ([]crashdump.Dump, error)
	// DeleteDeviceRest removes what is left of a device once its dumps
	// are gone: its hourly rate counters, stray duplicate markers and
	// its registry entry. Dump records are left alone.
	DeleteDeviceRest(ctx context.Context, deviceKey string) error
}

// Objects is what the admin rules need of object storage.
type Objects interface {
	crashdump.ObjectRemover
	// PresignGet returns a URL that downloads the object at key for ttl,
	// offered to the browser as an attachment named filename.
	PresignGet(ctx context.Context, key, filename string, ttl time.Duration) (string, error)
	// ReadOutput returns the parsed output stored at key, at most max
	// bytes of it, or crashdump.ErrNotFound.
	ReadOutput(ctx context.Context, key string, max int64) (string, error)
}

// DownloadTTL is how long a download link is valid.
const DownloadTTL = 5 * time.Minute

// MaxOutputBytes is the most of a parsed output stored in S3 that one
// response carries; a Lambda response is at most 6 MB.
const MaxOutputBytes = 4 << 20

// ReparseReason is the reason a re-parse by an admin gives in its queue
// message.
const ReparseReason = "admin re-parse"

// Service applies the admin rules.
type Service struct {
	Store   Store
	Objects Objects
	Queue   parse.Queue
	Cursors *Cursors
	// RetentionDays is how long dumps are kept (0: no age limit); a
	// fleet-wide query never looks further back.
	RetentionDays int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Page is one page of a listing. NextCursor is empty on the last page.
type Page struct {
	Items      []crashdump.Dump
	NextCursor string
}

// Get returns one dump of the device with its parsed output, read from
// object storage when it was stored there. A dump of another device is not
// found, exactly like a missing one.
func (s *Service) Get(ctx context.Context, deviceKey, id string) (*crashdump.Dump, error) {
	d, err := s.dump(ctx, deviceKey, id)
	if err != nil {
		return nil, err
	}
	if d.OutputKey != "" && d.Output == "" {
		out, err := s.Objects.ReadOutput(ctx, d.OutputKey, MaxOutputBytes)
		switch {
		case errors.Is(err, crashdump.ErrNotFound):
			// A re-parse or a deletion is replacing it; the record
			// is still worth showing.
		case err != nil:
			return nil, fmt.Errorf("reading output of %s: %w", id, err)
		default:
			d.Output = out
		}
	}
	return d, nil
}

// DownloadURL returns a link to the raw bytes of one dump, valid for
// DownloadTTL, that saves them as "<device_key>-<id>.dmp".
func (s *Service) DownloadURL(ctx context.Context, deviceKey, id string) (string, error) {
	d, err := s.dump(ctx, deviceKey, id)
	if err != nil {
		return "", err
	}
	name := d.DeviceKey + "-" + d.ID + ".dmp"
	u, err := s.Objects.PresignGet(ctx, d.ObjectKey(), name, DownloadTTL)
	if err != nil {
		return "", fmt.Errorf("presigning download of %s: %w", id, err)
	}
	return u, nil
}

// Delete removes one dump: its record first, then its bytes and output.
func (s *Service) Delete(ctx context.Context, deviceKey, id string) error {
	d, err := s.dump(ctx, deviceKey, id)
	if err != nil {
		return err
	}
	return crashdump.Remove(ctx, s.Store, s.Objects, []crashdump.Dump{*d})
}

// DeleteAll removes every dump of the device, records before objects,
// then the device's rate counters, markers and registry entry. It returns
// how many dumps it removed; a device without dumps is not an error.
func (s *Service) DeleteAll(ctx context.Context, deviceKey string) (int, error) {
	if err := crashdump.ValidateDeviceKey(deviceKey); err != nil {
		return 0, err
	}
	dumps, err := s.Store.DeviceDumps(ctx, deviceKey)
	if err != nil {
		return 0, fmt.Errorf("listing dumps of %s: %w", deviceKey, err)
	}
	if err := crashdump.Remove(ctx, s.Store, s.Objects, dumps); err != nil {
		return 0, err
	}
	if err := s.Store.DeleteDeviceRest(ctx, deviceKey); err != nil {
		return len(dumps), fmt.Errorf("deleting the rest of %s: %w", deviceKey, err)
	}
	return len(dumps), nil
}

// Reparse puts one dump back to PENDING and queues a parse for it. It
// answers a conflict while a parse holds a valid lease on the dump.
func (s *Service) Reparse(ctx context.Context, deviceKey, id string) (*crashdump.Dump, error) {
	if err := validateKeys(deviceKey, id); err != nil {
		return nil, err
	}
	return parse.Requeue(ctx, s.Store, s.Queue, deviceKey, id, ReparseReason, s.now(), false)
}

// dump reads one dump after checking the keys.
func (s *Service) dump(ctx context.Context, deviceKey, id string) (*crashdump.Dump, error) {
	if err := validateKeys(deviceKey, id); err != nil {
		return nil, err
	}
	d, err := s.Store.GetDump(ctx, deviceKey, id)
	if errors.Is(err, crashdump.ErrNotFound) {
		return nil, crashdump.Errorf(crashdump.ENotFound, "no such coredump")
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", id, err)
	}
	return d, nil
}

func validateKeys(deviceKey, id string) error {
	if err := crashdump.ValidateDeviceKey(deviceKey); err != nil {
		return err
	}
	return crashdump.ValidateID(id)
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Package upload owns the rules for taking a core dump from a device: what
// is accepted, how duplicates and crash loops are absorbed, the order in
// which the record and the bytes are written, and the per-device cap that is
// applied after every new dump.
package upload

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/espfleet/crashdumps/shared/crashdump"
)

// Store is what the upload rules need of the metadata store.
type Store interface {
	// CreateDump writes the dump's record, its duplicate marker and one
	// count against the device's hourly limit, all or nothing. It returns
	// crashdump.ErrDuplicate when the device already has a dump with the
	// same SHA256, and crashdump.ErrRateLimited when the device has
	// reached limitPerHour new dumps in the hour of d.UploadedAt.
	CreateDump(ctx context.Context, d *crashdump.Dump, limitPerHour int) error
	// DumpBySHA returns the device's dump whose bytes have the digest.
	DumpBySHA(ctx context.Context, deviceKey, sha string) (*crashdump.Dump, error)
	// DeviceDumps returns the device's dumps, newest first, with at least
	// the fields needed to delete them.
	DeviceDumps(ctx context.Context, deviceKey string) ([]crashdump.Dump, error)
	// DeleteDumps removes the records of the dumps and their duplicate
	// markers. Deleting a record that is gone is not an error.
	DeleteDumps(ctx context.Context, dumps []crashdump.Dump) error
}

// Objects is what the upload rules need of object storage.
type Objects interface {
	// PutDump stores the dump's bytes under d.ObjectKey() with the
	// dump's metadata as object metadata.
	PutDump(ctx context.Context, d *crashdump.Dump, body []byte) error
	// Exists reports whether an object is stored at key.
	Exists(ctx context.Context, key string) (bool, error)
	// Delete removes the objects; a missing one is not an error.
	Delete(ctx context.Context, keys ...string) error
}

// Limits are the configurable bounds of the upload rules.
type Limits struct {
	MaxBytes     int64 // largest accepted dump
	MaxPerHour   int   // new dumps one device may add in one hour
	MaxPerDevice int   // dumps kept per device, newest first
}

// Request is one upload as the HTTP layer has checked it.
type Request struct {
	Device          crashdump.Device
	Chip            string
	FirmwareVersion string
	Body            []byte
}

// Result is what the device is told.
type Result struct {
	ID          string
	ParseStatus crashdump.Status
	Duplicate   bool
}

// Service applies the upload rules.
type Service struct {
	Store   Store
	Objects Objects
	Limits  Limits
	Logger  *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Upload validates req and stores the dump.
//
// Write order: the record goes first, in one transaction with its duplicate
// marker and the rate-limit count, and the bytes second. The parse function
// is started only by the object's creation event, so it never sees an object
// whose record is missing, and a record whose bytes never arrive (the put
// failed and the clean-up failed too) is an item without an object, which
// the retention sweep finds and removes once it is older than the upload
// grace period.
func (s *Service) Upload(ctx context.Context, req Request) (Result, error) {
	if err := crashdump.ValidateChip(req.Chip); err != nil {
		return Result{}, err
	}
	if err := crashdump.ValidateFirmwareVersion(req.FirmwareVersion); err != nil {
		return Result{}, err
	}
	if len(req.Body) == 0 {
		return Result{}, crashdump.Errorf(crashdump.EInvalid, "the request body must hold the core dump")
	}
	if int64(len(req.Body)) > s.Limits.MaxBytes {
		return Result{}, tooLarge(s.Limits.MaxBytes)
	}

	now := s.now()
	sum := sha256.Sum256(req.Body)
	d := &crashdump.Dump{
		ID:              crashdump.NewID(now),
		DeviceKey:       req.Device.Key,
		ModelCode:       req.Device.ModelCode,
		Chip:            req.Chip,
		FirmwareVersion: req.FirmwareVersion,
		Size:            int64(len(req.Body)),
		SHA256:          hex.EncodeToString(sum[:]),
		UploadedAt:      now.UTC(),
		ParseStatus:     crashdump.StatusPending,
	}

	err := s.Store.CreateDump(ctx, d, s.Limits.MaxPerHour)
	switch {
	case errors.Is(err, crashdump.ErrDuplicate):
		return s.duplicate(ctx, d, req.Body)
	case errors.Is(err, crashdump.ErrRateLimited):
		next := now.Truncate(time.Hour).Add(time.Hour)
		return Result{}, &crashdump.Error{
			Code:       crashdump.ERateLimited,
			Message:    fmt.Sprintf("this device may upload at most %d new coredumps an hour", s.Limits.MaxPerHour),
			RetryAfter: int(next.Sub(now).Seconds()) + 1,
		}
	case err != nil:
		return Result{}, fmt.Errorf("creating dump record: %w", err)
	}

	if err := s.Objects.PutDump(ctx, d, req.Body); err != nil {
		// Undo the record so a retry is a new upload, not a duplicate
		// of bytes that were never stored. If this fails too, the
		// record is an item without object for the retention sweep.
		if derr := s.Store.DeleteDumps(context.WithoutCancel(ctx), []crashdump.Dump{*d}); derr != nil {
			s.logger().ErrorContext(ctx, "removing record after failed put",
				"device_key", d.DeviceKey, "dump_id", d.ID, "error", derr)
		}
		return Result{}, fmt.Errorf("storing dump %s: %w", d.ObjectKey(), err)
	}

	if err := s.enforceCap(ctx, d.DeviceKey); err != nil {
		// The dump is stored; the next upload or sweep applies the cap.
		s.logger().WarnContext(ctx, "applying per-device cap failed; the retention sweep will retry",
			"device_key", d.DeviceKey, "dump_id", d.ID, "error", err)
	}
	return Result{ID: d.ID, ParseStatus: d.ParseStatus}, nil
}

// duplicate answers a retry of bytes the device already uploaded. If the
// first upload's bytes are not stored yet (it is still in flight, or its
// put failed after the record was written), they are stored now: the bytes
// are the same, so writing them again is harmless, and afterwards the record
// and the object both exist as a 200 promises.
func (s *Service) duplicate(ctx context.Context, d *crashdump.Dump, body []byte) (Result, error) {
	prev, err := s.Store.DumpBySHA(ctx, d.DeviceKey, d.SHA256)
	if errors.Is(err, crashdump.ErrNotFound) {
		// The first copy was removed between our write and this read.
		return Result{}, &crashdump.Error{Code: crashdump.EUnavailable,
			Message: "the coredump changed while it was stored; retry the upload", RetryAfter: 1}
	}
	if err != nil {
		return Result{}, fmt.Errorf("reading duplicate of %s: %w", d.SHA256, err)
	}
	ok, err := s.Objects.Exists(ctx, prev.ObjectKey())
	if err != nil {
		return Result{}, fmt.Errorf("checking object of duplicate %s: %w", prev.ID, err)
	}
	if !ok {
		if err := s.Objects.PutDump(ctx, prev, body); err != nil {
			return Result{}, fmt.Errorf("storing bytes of duplicate %s: %w", prev.ID, err)
		}
	}
	return Result{ID: prev.ID, ParseStatus: prev.ParseStatus, Duplicate: true}, nil
}

// enforceCap removes the device's dumps beyond the newest MaxPerDevice,
// records first and then objects. Every upload runs it after its own write,
// so the last of any number of concurrent uploads sees all their records and
// leaves exactly the cap; no upload removes one of the newest MaxPerDevice,
// because none of them has that many newer dumps in any view.
func (s *Service) enforceCap(ctx context.Context, deviceKey string) error {
	dumps, err := s.Store.DeviceDumps(ctx, deviceKey)
	if err != nil {
		return fmt.Errorf("listing dumps of %s: %w", deviceKey, err)
	}
	if len(dumps) <= s.Limits.MaxPerDevice {
		return nil
	}
	return crashdump.Remove(ctx, s.Store, s.Objects, dumps[s.Limits.MaxPerDevice:])
}

func tooLarge(limit int64) error {
	return crashdump.Errorf(crashdump.ETooLarge, "the coredump is larger than %d bytes", limit)
}

// TooLarge is the error for a body over the configured limit, for layers
// that stop reading before the whole body is in memory.
func (s *Service) TooLarge() error { return tooLarge(s.Limits.MaxBytes) }

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

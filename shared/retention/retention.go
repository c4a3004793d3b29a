// Package retention owns the sweep that keeps stored dumps within their
// bounds: the per-device cap, the maximum age, objects and records that lost
// their other half (orphans), and parses that got stuck.
//
// One sweep walks the device registry shard by shard, then the device
// prefixes in object storage (for devices without a registry entry), then
// the sparse work index for stuck parses. It holds one device's records at a
// time, streams every listing page by page, stops before a deadline and
// carries on from a checkpoint in the next invocation.
package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/espfleet/crashdumps/shared/crashdump"
	"github.com/espfleet/crashdumps/shared/parse"
	"github.com/espfleet/crashdumps/shared/telemetry"
)

// Store is what the sweep needs of the metadata store.
type Store interface {
	parse.ResetStore
	crashdump.RecordRemover
	// RegistryPage returns up to limit device keys of a registry shard
	// that sort after after, in key order, and whether more may follow.
	RegistryPage(ctx context.Context, shard int, after string, limit int) (keys []string, more bool, err error)
	// Registered reports which of the device keys have a registry entry.
	Registered(ctx context.Context, deviceKeys []string) (map[string]bool, error)
	// DeviceRecords returns every dump record of the device in id order,
	// oldest first, with all fields.
	DeviceRecords(ctx context.Context, deviceKey string) ([]crashdump.Dump, error)
	// StuckDumps calls fn for each dump the query selects from the work
	// index, in id order; an error from fn ends the walk and is returned.
	StuckDumps(ctx context.Context, q StuckQuery, fn func(crashdump.Dump) error) error
	// FailStuck sets a stuck dump ERROR with the reason, provided it is
	// still in the status it was read in (and, for PARSING, its lease
	// is still past at now); otherwise it returns crashdump.ErrConflict.
	FailStuck(ctx context.Context, d crashdump.Dump, reason string, now time.Time) error
	// LoadCheckpoint returns the stored checkpoint; ok is false when
	// there is none.
	LoadCheckpoint(ctx context.Context) (cp Checkpoint, ok bool, err error)
	// SaveCheckpoint stores the checkpoint, replacing any other.
	SaveCheckpoint(ctx context.Context, cp Checkpoint) error
	// ClearCheckpoint removes the checkpoint.
	ClearCheckpoint(ctx context.Context) error
}

// StuckQuery selects dumps of one status from the work index.
type StuckQuery struct {
	Status crashdump.Status
	// FromID and ToID bound the ids, both inclusive; empty means open.
	FromID, ToID string
	// LeaseBefore, when set, keeps only dumps whose lease ended before
	// it, or that have none.
	LeaseBefore time.Time
	// DeviceKey, when set, keeps only that device's dumps.
	DeviceKey string
}

// Object is one entry of an object listing.
type Object struct {
	Key          string
	LastModified time.Time
}

// Objects is what the sweep needs of object storage.
type Objects interface {
	crashdump.ObjectRemover
	// DumpObjects calls fn for every object under the device's dump
	// prefix, in key order (which is id order); an error from fn ends
	// the listing and is returned.
	DumpObjects(ctx context.Context, deviceKey string, fn func(Object) error) error
	// DevicePrefixes calls fn with pages of the device keys that have
	// objects under the dump prefix, in key order, starting after the
	// device key after; an error from fn ends the listing.
	DevicePrefixes(ctx context.Context, after string, fn func(deviceKeys []string) error) error
}

// Rules are the bounds a sweep enforces.
type Rules struct {
	// MaxPerDevice is how many dumps a device keeps, newest first
	// (MAX_COREDUMPS).
	MaxPerDevice int
	// MaxAge is how long a dump is kept (MAX_COREDUMP_AGE_DAYS); zero
	// keeps dumps for ever.
	MaxAge time.Duration
	// OrphanObjectAge is how old an object without a record must be
	// before it is deleted.
	OrphanObjectAge time.Duration
	// UploadGrace is how old a record without an object must be before
	// it is deleted: an upload writes its record before its object.
	UploadGrace time.Duration
	// StuckPendingAfter is how long a dump may stay PENDING.
	StuckPendingAfter time.Duration
	// MaxRequeues is how often a stuck parse is queued again before it
	// is set ERROR.
	MaxRequeues int
}

// DefaultRules returns the documented defaults with the given cap and age.
func DefaultRules(maxPerDevice, maxAgeDays int) Rules {
	return Rules{
		MaxPerDevice:      maxPerDevice,
		MaxAge:            time.Duration(maxAgeDays) * 24 * time.Hour,
		OrphanObjectAge:   time.Hour,
		UploadGrace:       15 * time.Minute,
		StuckPendingAfter: 30 * time.Minute,
		MaxRequeues:       3,
	}
}

// Options choose what one sweep does.
type Options struct {
	// DryRun computes the report and changes nothing, the checkpoint
	// included.
	DryRun bool
	// DeviceKey, when set, limits the sweep to one device: its cap, age
	// and orphans, and its stuck parses.
	DeviceKey string
	// Deadline, when set, is when the sweep stops taking new work. Each
	// sweep does at least one unit of work (a device or a stuck dump),
	// so that a chain of sweeps always gets further.
	Deadline time.Time
}

// Sweeper runs retention sweeps.
type Sweeper struct {
	Store   Store
	Objects Objects
	Queue   parse.Queue
	Rules   Rules
	Logger  *slog.Logger
	Metrics *telemetry.Metrics
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Concurrency is how many devices are swept at once; 0 means 8.
	Concurrency int
	// PageSize is how many registry entries are read at once; 0 means
	// 100.
	PageSize int
	// MaxListed caps each list in the report; 0 means 100.
	MaxListed int
}

// Metric names of the counts a sweep records besides its outcome.
const (
	MetricDeleted  = "retention_deleted"
	MetricOrphans  = "retention_orphans"
	MetricRequeued = "retention_requeued"
	MetricFailed   = "retention_failed"
	MetricErrors   = "retention_errors"
	// Operation is the metric operation of a sweep.
	Operation = "retention_sweep"
)

// errStop ends a walk when the deadline has passed.
var errStop = errors.New("sweep deadline reached")

// Sweep runs one sweep. A sweep over the whole fleet that is not a dry run
// starts from the stored checkpoint, if any, stores a new one when it stops
// early and removes it when it completes. Failures on single devices or
// dumps are counted and listed in the report and do not end the sweep;
// failures to walk the registry, the listing or the work index do, and are
// returned with the report so far.
func (s *Sweeper) Sweep(ctx context.Context, opts Options) (*Report, error) {
	start := s.now()
	if opts.DeviceKey != "" {
		if err := crashdump.ValidateDeviceKey(opts.DeviceKey); err != nil {
			return nil, err
		}
	}
	r := &sweep{s: s, opts: opts, rep: newReport(opts, s.maxListed())}
	useCheckpoint := !opts.DryRun && opts.DeviceKey == ""
	var err error
	if useCheckpoint {
		var cp Checkpoint
		var ok bool
		cp, ok, err = s.Store.LoadCheckpoint(ctx)
		if err != nil {
			err = fmt.Errorf("loading checkpoint: %w", err)
		} else if ok {
			r.cp = cp
			r.rep.ResumedFrom = cp.Token()
		}
	}
	if err == nil {
		err = r.run(ctx)
	}
	switch {
	case errors.Is(err, errStop):
		err = nil
		r.rep.Resume = r.cp.Token()
		if useCheckpoint {
			if serr := s.Store.SaveCheckpoint(ctx, r.cp); serr != nil {
				err = fmt.Errorf("saving checkpoint %s: %w", r.cp.Token(), serr)
			}
		}
	case err == nil:
		r.rep.Complete = true
		if useCheckpoint {
			if cerr := s.Store.ClearCheckpoint(ctx); cerr != nil {
				err = fmt.Errorf("clearing checkpoint: %w", cerr)
			}
		}
	default:
		// Keep the checkpoint of the last finished work, so that the
		// next sweep does not repeat it.
		r.rep.Resume = r.cp.Token()
		if useCheckpoint && r.cp.Phase != "" {
			if serr := s.Store.SaveCheckpoint(context.WithoutCancel(ctx), r.cp); serr != nil {
				s.logger().ErrorContext(ctx, "saving checkpoint after a failed sweep",
					"checkpoint", r.cp.Token(), "error", serr)
			}
		}
	}
	r.rep.DurationMS = s.now().Sub(start).Milliseconds()
	s.record(ctx, r.rep, s.now().Sub(start), err)
	return r.rep, err
}

// sweep is the state of one Sweep call.
type sweep struct {
	s    *Sweeper
	opts Options
	rep  *Report
	cp   Checkpoint

	mu       sync.Mutex
	progress bool // some unit of work was done in this call
}

// more reports whether another unit of work may start, and marks that one
// does.
func (r *sweep) more() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.progress && !r.opts.Deadline.IsZero() && !r.s.now().Before(r.opts.Deadline) {
		return false
	}
	r.progress = true
	return true
}

func (r *sweep) run(ctx context.Context) error {
	if r.opts.DeviceKey != "" {
		if !r.more() {
			return errStop
		}
		r.device(ctx, r.opts.DeviceKey)
		return r.stuckPhases(ctx)
	}
	if r.cp.Phase == "" {
		r.cp = Checkpoint{Phase: PhaseDevices}
	}
	if r.cp.Phase == PhaseDevices {
		if err := r.registry(ctx); err != nil {
			return err
		}
		r.cp = Checkpoint{Phase: PhaseUnregistered}
	}
	if r.cp.Phase == PhaseUnregistered {
		if err := r.unregistered(ctx); err != nil {
			return err
		}
		r.cp = Checkpoint{Phase: PhasePending}
	}
	return r.stuckPhases(ctx)
}

// registry sweeps every registered device, shard by shard.
func (r *sweep) registry(ctx context.Context) error {
	for ; r.cp.Shard < crashdump.DeviceShards; r.cp.Shard, r.cp.After = r.cp.Shard+1, "" {
		for {
			keys, more, err := r.s.Store.RegistryPage(ctx, r.cp.Shard, r.cp.After, r.s.pageSize())
			if err != nil {
				return fmt.Errorf("reading registry shard %d: %w", r.cp.Shard, err)
			}
			if err := r.devices(ctx, keys); err != nil {
				return err
			}
			if !more || len(keys) == 0 {
				break
			}
		}
	}
	return nil
}

// unregistered sweeps the devices that have objects but no registry entry.
func (r *sweep) unregistered(ctx context.Context) error {
	err := r.s.Objects.DevicePrefixes(ctx, r.cp.After, func(keys []string) error {
		known, err := r.s.Store.Registered(ctx, keys)
		if err != nil {
			return fmt.Errorf("checking registry: %w", err)
		}
		var todo []string
		for _, k := range keys {
			if !known[k] {
				todo = append(todo, k)
			}
		}
		if err := r.devices(ctx, todo); err != nil {
			return err
		}
		// Registered devices of the page were swept in the registry
		// phase; move past them too.
		if len(keys) > 0 && keys[len(keys)-1] > r.cp.After {
			r.cp.After = keys[len(keys)-1]
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return fmt.Errorf("listing device prefixes: %w", err)
	}
	return err
}

// devices sweeps the devices, in order, some at once. When the deadline
// passes it stops starting new ones, waits for those running and returns
// errStop with the checkpoint on the last one started.
func (r *sweep) devices(ctx context.Context, keys []string) error {
	sem := make(chan struct{}, r.s.concurrency())
	var wg sync.WaitGroup
	stopped := false
	for _, k := range keys {
		if !r.more() {
			stopped = true
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r.device(ctx, k)
		}()
		r.cp.After = k
	}
	wg.Wait()
	if stopped {
		return errStop
	}
	return nil
}

// stuckPhases requeues or fails stuck parses: PENDING first, then PARSING,
// so that a dump requeued from PARSING in this sweep is not taken again as
// a stuck PENDING one.
func (r *sweep) stuckPhases(ctx context.Context) error {
	now := r.s.now()
	if r.cp.Phase == "" {
		r.cp = Checkpoint{Phase: PhasePending}
	}
	if r.cp.Phase == PhasePending {
		q := StuckQuery{
			Status:    crashdump.StatusPending,
			ToID:      crashdump.MaxID(now.Add(-r.s.Rules.StuckPendingAfter)),
			DeviceKey: r.opts.DeviceKey,
		}
		if err := r.stuck(ctx, q); err != nil {
			return err
		}
		r.cp = Checkpoint{Phase: PhaseParsing}
	}
	q := StuckQuery{
		Status:      crashdump.StatusParsing,
		LeaseBefore: now,
		DeviceKey:   r.opts.DeviceKey,
	}
	return r.stuck(ctx, q)
}

func (r *sweep) stuck(ctx context.Context, q StuckQuery) error {
	afterDev, afterID := r.cp.dump()
	q.FromID = afterID
	err := r.s.Store.StuckDumps(ctx, q, func(d crashdump.Dump) error {
		if d.ID == afterID && d.DeviceKey == afterDev {
			return nil
		}
		if !r.more() {
			return errStop
		}
		r.unstick(ctx, d, q.Status)
		r.cp.After = d.DeviceKey + "/" + d.ID
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return fmt.Errorf("querying stuck %s dumps: %w", q.Status, err)
	}
	return err
}

// unstick queues a stuck dump again, or sets it ERROR once it was queued
// again MaxRequeues times.
func (r *sweep) unstick(ctx context.Context, d crashdump.Dump, status crashdump.Status) {
	why := "lease expired while PARSING"
	if status == crashdump.StatusPending {
		why = fmt.Sprintf("PENDING for over %s", r.s.Rules.StuckPendingAfter)
	}
	now := r.s.now()
	if d.Requeues >= r.s.Rules.MaxRequeues {
		reason := fmt.Sprintf("parse stuck (%s) after %d requeues; retention gave up", why, d.Requeues)
		if !r.opts.DryRun {
			err := r.s.Store.FailStuck(ctx, d, reason, now)
			if errors.Is(err, crashdump.ErrConflict) || errors.Is(err, crashdump.ErrNotFound) {
				return // it moved on by itself
			}
			if err != nil {
				r.rep.addError(fmt.Errorf("failing stuck dump %s/%s: %w", d.DeviceKey, d.ID, err))
				return
			}
		}
		r.rep.add(ActionFailStuck, d.DeviceKey, d.ID, reason)
		return
	}
	if !r.opts.DryRun {
		_, err := parse.Requeue(ctx, r.s.Store, r.s.Queue, d.DeviceKey, d.ID, "retention: "+why, now, true)
		code := crashdump.ErrorCode(err)
		if code == crashdump.EConflict || code == crashdump.ENotFound {
			return // a parse took it, or it was deleted
		}
		if err != nil {
			r.rep.addError(fmt.Errorf("requeueing stuck dump %s/%s: %w", d.DeviceKey, d.ID, err))
			return
		}
	}
	r.rep.add(ActionRequeue, d.DeviceKey, d.ID, why)
}

// device applies the cap, the age and the orphan rules to one device.
//
// The device's records are read first and its objects listed second, both
// in id order, and joined. Reading in this order keeps uploads in flight
// safe: an upload writes its record, then its object, so an object that the
// listing finds without a record in the read was either written after the
// read (its id is fresh) or really lost its record.
func (r *sweep) device(ctx context.Context, deviceKey string) {
	now := r.s.now()
	rules := r.s.Rules
	recs, err := r.s.Store.DeviceRecords(ctx, deviceKey)
	if err != nil {
		r.rep.addError(fmt.Errorf("reading records of %s: %w", deviceKey, err))
		return
	}
	hasObject := make([]bool, len(recs))
	var orphans []string
	objects := 0
	flush := func() error {
		if len(orphans) == 0 {
			return nil
		}
		if !r.opts.DryRun {
			if err := r.s.Objects.Delete(ctx, orphans...); err != nil {
				return fmt.Errorf("deleting orphan objects of %s: %w", deviceKey, err)
			}
		}
		for _, k := range orphans {
			r.rep.add(ActionOrphanObject, deviceKey, "", k)
		}
		orphans = orphans[:0]
		return nil
	}
	i := 0
	err = r.s.Objects.DumpObjects(ctx, deviceKey, func(o Object) error {
		objects++
		for i < len(recs) && recs[i].ObjectKey() < o.Key {
			i++
		}
		if i < len(recs) && recs[i].ObjectKey() == o.Key {
			hasObject[i] = true
			i++
			return nil
		}
		if objectTime(o).Before(now.Add(-rules.OrphanObjectAge)) {
			orphans = append(orphans, o.Key)
			if len(orphans) >= 1000 {
				return flush()
			}
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	r.rep.countSeen(1, len(recs))
	r.rep.countObjects(objects)
	if err != nil {
		// Without the full listing no record can be judged an orphan.
		r.rep.addError(fmt.Errorf("listing objects of %s: %w", deviceKey, err))
		return
	}

	var remove, live []crashdump.Dump
	var actions []string
	for i, d := range recs {
		t := crashdump.IDTime(d.ID)
		switch {
		case rules.MaxAge > 0 && t.Before(now.Add(-rules.MaxAge)):
			remove = append(remove, d)
			actions = append(actions, ActionExpired)
		case !hasObject[i] && t.Before(now.Add(-rules.UploadGrace)):
			remove = append(remove, d)
			actions = append(actions, ActionOrphanRecord)
		default:
			live = append(live, d)
		}
	}
	if over := len(live) - rules.MaxPerDevice; rules.MaxPerDevice > 0 && over > 0 {
		for _, d := range live[:over] {
			remove = append(remove, d)
			actions = append(actions, ActionOverCap)
		}
	}
	if len(remove) == 0 {
		return
	}
	if !r.opts.DryRun {
		if err := crashdump.Remove(ctx, r.s.Store, r.s.Objects, remove); err != nil {
			r.rep.addError(fmt.Errorf("removing %d dumps of %s: %w", len(remove), deviceKey, err))
			return
		}
	}
	for i, d := range remove {
		r.rep.add(actions[i], d.DeviceKey, d.ID, "")
	}
}

// objectTime is the age reference of an object: the earlier of the upload
// time in its id and its LastModified. In AWS the two agree to within the
// upload's own duration (the record, written first, is what the id dates);
// the emulator cannot backdate LastModified, so tests date objects by id.
// An object whose key is not a dump key is dated by LastModified alone.
func objectTime(o Object) time.Time {
	_, id, err := crashdump.ParseObjectKey(o.Key)
	if err != nil {
		return o.LastModified
	}
	t := crashdump.IDTime(id)
	if !o.LastModified.IsZero() && o.LastModified.Before(t) {
		return o.LastModified
	}
	return t
}

func (s *Sweeper) record(ctx context.Context, rep *Report, d time.Duration, err error) {
	status := "complete"
	level := slog.LevelInfo
	switch {
	case err != nil:
		status = crashdump.ErrorCode(err)
		level = slog.LevelError
	case !rep.Complete:
		status = "partial"
	}
	if rep.DryRun {
		status = "dry_run_" + status
	}
	if err == nil && rep.Errors > 0 {
		level = slog.LevelWarn
	}
	if s.Metrics != nil {
		s.Metrics.Record(ctx, Operation, status, d, map[string]float64{
			MetricDeleted:  float64(rep.DeletedOverCap + rep.DeletedExpired),
			MetricOrphans:  float64(rep.OrphanObjects + rep.OrphanRecords),
			MetricRequeued: float64(rep.Requeued),
			MetricFailed:   float64(rep.FailedStuck),
			MetricErrors:   float64(rep.Errors),
		})
	}
	attrs := []any{
		"operation", Operation, "status", status, "dry_run", rep.DryRun,
		"devices", rep.Devices, "dumps_seen", rep.DumpsSeen, "objects_seen", rep.ObjectsSeen,
		"deleted_over_cap", rep.DeletedOverCap, "deleted_expired", rep.DeletedExpired,
		"orphan_objects", rep.OrphanObjects, "orphan_records", rep.OrphanRecords,
		"requeued", rep.Requeued, "failed_stuck", rep.FailedStuck, "errors", rep.Errors,
		"complete", rep.Complete, "duration_ms", d.Milliseconds(),
	}
	if rep.DeviceKey != "" {
		attrs = append(attrs, "device_key", rep.DeviceKey)
	}
	if rep.ResumedFrom != "" {
		attrs = append(attrs, "resumed_from", rep.ResumedFrom)
	}
	if rep.Resume != "" {
		attrs = append(attrs, "resume", rep.Resume)
	}
	if len(rep.ErrorSamples) > 0 {
		// Internal error text goes to the log only; the report that an
		// admin receives counts the errors.
		attrs = append(attrs, "error_samples", rep.ErrorSamples)
	}
	if err != nil {
		attrs = append(attrs, "error", err.Error())
	}
	s.logger().Log(ctx, level, "retention sweep", attrs...)
}

func (s *Sweeper) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Sweeper) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func (s *Sweeper) concurrency() int {
	if s.Concurrency > 0 {
		return s.Concurrency
	}
	return 8
}

func (s *Sweeper) pageSize() int {
	if s.PageSize > 0 {
		return s.PageSize
	}
	return 100
}

func (s *Sweeper) maxListed() int {
	if s.MaxListed > 0 {
		return s.MaxListed
	}
	return 100
}

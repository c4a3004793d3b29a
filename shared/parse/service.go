package parse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/espfleet/crashdumps/shared/crashdump"
)

// Operation is the metric operation of every parse outcome.
const Operation = "coredump_parse"

// Metric statuses of Operation, one per path through the parse function.
const (
	MetricParsed             = "parsed"              // PARSED
	MetricParseError         = "parse_error"         // ERROR: the parser could not read the dump
	MetricSidecarFailed      = "sidecar_failed"      // ERROR: the sidecar failed after its retries
	MetricFirmwareInvalid    = "firmware_invalid"    // ERROR: the ZIP is corrupt or lacks the ELF
	MetricFirmwareMissing    = "firmware_missing"    // WAITING_FOR_FIRMWARE
	MetricUnexpectedError    = "unexpected_error"    // batch item failure, the queue retries
	MetricNotFound           = "not_found"           // no item yet, the queue retries
	MetricDeleted            = "deleted"             // neither item nor object: dropped
	MetricSkipped            = "skipped"             // duplicate delivery or dump already done
	MetricLeaseLost          = "lease_lost"          // another delivery took the dump over
	MetricDecoderUnavailable = "decoder_unavailable" // left PENDING
	MetricMalformed          = "malformed"           // message dropped
	MetricIgnored            = "ignored"             // test events, other event types
	MetricFirmwareArrived    = "firmware_arrived"    // waiting dumps queued again
)

// MaxInlineOutput is the largest output kept in the dump's item; a longer
// one goes to object storage under OutputKey.
const MaxInlineOutput = 64 << 10

// DefaultLease is how long a claim lasts when the context has no
// deadline; with one, the lease runs to the deadline plus LeaseMargin.
const (
	DefaultLease = 15 * time.Minute
	LeaseMargin  = 30 * time.Second
)

// OutputKey is where the output of a dump too long for its item lives.
func OutputKey(deviceKey, id string) string {
	return "parsed/" + deviceKey + "/" + id + ".txt"
}

// Store keeps the parse state of dumps. Every method that ends a claim is
// conditional on the lease it was given: when another delivery has taken
// the dump over since, it returns crashdump.ErrConflict and changes
// nothing.
type Store interface {
	// ClaimParse moves a dump from PENDING, or from PARSING whose lease
	// ended before now, to PARSING with a lease to leaseUntil, counts
	// one parse attempt and returns the claimed dump. A missing dump is
	// crashdump.ErrNotFound; any other state is crashdump.ErrConflict.
	ClaimParse(ctx context.Context, deviceKey, id string, now, leaseUntil time.Time) (*crashdump.Dump, error)
	// FinishParse records the outcome held by d (PARSED or ERROR, with
	// its fields) and removes the lease and the work index entry.
	FinishParse(ctx context.Context, d *crashdump.Dump, lease time.Time) error
	// ReleaseParse ends a claim without an outcome, moving the dump to
	// PENDING or WAITING_FOR_FIRMWARE.
	ReleaseParse(ctx context.Context, deviceKey, id string, lease time.Time, to crashdump.Status) error
	// WaitingForFirmware lists the dumps of a model and version that
	// wait for their firmware.
	WaitingForFirmware(ctx context.Context, model, version string) ([]crashdump.Dump, error)
	// WakeWaiting moves a dump from WAITING_FOR_FIRMWARE to PENDING; any
	// other state is crashdump.ErrConflict.
	WakeWaiting(ctx context.Context, deviceKey, id string) error
}

// Objects stores long outputs and tells whether a dump's bytes exist.
type Objects interface {
	Exists(ctx context.Context, key string) (bool, error)
	PutText(ctx context.Context, key, text string) error
	Delete(ctx context.Context, keys ...string) error
}

// Parser turns a dump and its firmware ELF into a report. The sidecar
// client and the built-in decoder both implement it.
type Parser interface {
	// Name is recorded as the dump's parser.
	Name() string
	// Parse returns the report. An *UnparseableError ends the dump in
	// ERROR; ErrParserUnavailable leaves it PENDING; any other error is
	// the queue's to retry.
	Parse(ctx context.Context, job *Job) (*Result, error)
}

// Job is one dump to parse with its firmware.
type Job struct {
	Dump *crashdump.Dump
	ELF  *ELF
}

// Result is a parser's report.
type Result struct {
	Output    string
	Signature string
	TopFrame  string
	// CrashKind is the panic reason or exception cause the signature
	// was computed from, when the parser reports it.
	CrashKind string
	// Attempts is how many calls the parser made (sidecar retries).
	Attempts int
}

// ErrParserUnavailable says no parser can run yet; the dump stays PENDING.
var ErrParserUnavailable = errors.New("no parser available")

// UnparseableError says a dump cannot be parsed with what is stored now.
// It ends the dump in ERROR with its Reason.
type UnparseableError struct {
	// Metric is the status recorded for the outcome (MetricParseError,
	// MetricSidecarFailed, MetricFirmwareInvalid).
	Metric string
	// Reason is written to the dump as "Unable to parse coredump: <Reason>".
	Reason string
}

// Error implements the error interface.
func (e *UnparseableError) Error() string { return "unable to parse coredump: " + e.Reason }

// Unparseable returns an *UnparseableError.
func Unparseable(metric, format string, args ...any) *UnparseableError {
	return &UnparseableError{Metric: metric, Reason: fmt.Sprintf(format, args...)}
}

// Recorder records metrics, like telemetry.Metrics.
type Recorder interface {
	Record(ctx context.Context, operation, status string, d time.Duration, extra map[string]float64)
}

// Service runs the parse state machine.
type Service struct {
	Store    Store
	Objects  Objects
	Firmware *Firmware
	Parser   Parser
	Queue    Queue
	Logger   *slog.Logger
	Metrics  Recorder
	// Groups counts parsed dumps in their crash groups when set.
	Groups GroupRecorder
	// Lease is the claim length without a context deadline; 0 means
	// DefaultLease.
	Lease time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	unavailableOnce sync.Once
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) leaseUntil(ctx context.Context, now time.Time) time.Time {
	if dl, ok := ctx.Deadline(); ok {
		return now.Add(time.Until(dl) + LeaseMargin)
	}
	if s.Lease > 0 {
		return now.Add(s.Lease)
	}
	return now.Add(DefaultLease)
}

func (s *Service) record(ctx context.Context, status string, start time.Time, extra map[string]float64) {
	s.Metrics.Record(ctx, Operation, status, s.now().Sub(start), extra)
}

// ParseDump claims one dump and parses it. It returns an error only when
// the queue should deliver the request again: the dump does not exist yet,
// or a dependency failed. Every path records one metric.
func (s *Service) ParseDump(ctx context.Context, deviceKey, id string) error {
	start := s.now()
	log := s.Logger.With("device_key", deviceKey, "id", id)
	lease := s.leaseUntil(ctx, start)
	d, err := s.Store.ClaimParse(ctx, deviceKey, id, start, lease)
	switch {
	case errors.Is(err, crashdump.ErrNotFound):
		// The bytes are written after the record, and a removal deletes
		// the record first: with bytes, the record is still to come;
		// without, the dump is gone and no delivery will find it.
		ok, xerr := s.Objects.Exists(ctx, crashdump.ObjectKey(deviceKey, id))
		if xerr == nil && !ok {
			s.record(ctx, MetricDeleted, start, nil)
			log.InfoContext(ctx, "dump deleted; request dropped")
			return nil
		}
		s.record(ctx, MetricNotFound, start, nil)
		log.WarnContext(ctx, "dump record not found; will retry")
		return fmt.Errorf("claiming %s: %w", id, err)
	case errors.Is(err, crashdump.ErrConflict):
		s.record(ctx, MetricSkipped, start, nil)
		status := ""
		if d != nil {
			status = string(d.ParseStatus)
		}
		log.InfoContext(ctx, "dump not claimable; skipped", "parse_status", status)
		return nil
	case err != nil:
		s.record(ctx, MetricUnexpectedError, start, nil)
		log.ErrorContext(ctx, "claiming dump failed; will retry", "error", err)
		return fmt.Errorf("claiming %s: %w", id, err)
	}
	log = log.With("model", d.ModelCode, "firmware_version", d.FirmwareVersion, "attempt", d.ParseAttempt)

	elf, err := s.Firmware.Find(ctx, d.ModelCode, d.FirmwareVersion)
	if errors.Is(err, ErrFirmwareMissing) {
		return s.wait(ctx, log, d, lease, start)
	}
	if err != nil {
		return s.fail(ctx, log, d, lease, start, err)
	}
	res, err := s.Parser.Parse(ctx, &Job{Dump: d, ELF: elf})
	if err != nil {
		return s.fail(ctx, log, d, lease, start, err)
	}
	return s.finish(ctx, log, d, lease, start, res)
}

// wait parks the dump until its firmware appears. The firmware is looked
// up once more after, so that a ZIP uploaded between the first look and
// the write is not missed: its event may have found no waiting dump.
func (s *Service) wait(ctx context.Context, log *slog.Logger, d *crashdump.Dump, lease, start time.Time) error {
	err := s.Store.ReleaseParse(ctx, d.DeviceKey, d.ID, lease, crashdump.StatusWaitingForFirmware)
	if errors.Is(err, crashdump.ErrConflict) {
		s.record(ctx, MetricLeaseLost, start, nil)
		log.WarnContext(ctx, "lease lost before waiting for firmware")
		return nil
	}
	if err != nil {
		s.record(ctx, MetricUnexpectedError, start, nil)
		log.ErrorContext(ctx, "marking dump waiting failed; will retry", "error", err)
		return fmt.Errorf("marking %s waiting: %w", d.ID, err)
	}
	s.record(ctx, MetricFirmwareMissing, start, nil)
	log.InfoContext(ctx, "firmware missing; dump waits", "firmware_key", s.Firmware.ZIPKey.Expand(d.ModelCode, d.FirmwareVersion))
	ok, err := s.Firmware.Exists(ctx, d.ModelCode, d.FirmwareVersion)
	if err != nil || !ok {
		return nil // the firmware event will wake the dump
	}
	if err := s.wake(ctx, []crashdump.Dump{*d}, "firmware appeared while waiting"); err != nil {
		return fmt.Errorf("waking %s: %w", d.ID, err)
	}
	return nil
}

// fail handles a parse that stopped with err.
func (s *Service) fail(ctx context.Context, log *slog.Logger, d *crashdump.Dump, lease, start time.Time, err error) error {
	var un *UnparseableError
	switch {
	case errors.As(err, &un):
		oldKey := d.OutputKey
		d.ParseStatus = crashdump.StatusError
		d.ParseError = "Unable to parse coredump: " + un.Reason
		d.Parser = s.Parser.Name()
		d.Output, d.OutputKey, d.Signature, d.TopFrame = "", "", "", ""
		d.ParsedAt = s.now()
		d.DurationMS = d.ParsedAt.Sub(start).Milliseconds()
		if err := s.Store.FinishParse(ctx, d, lease); err != nil {
			return s.finishFailed(ctx, log, d, start, err)
		}
		s.deleteOutput(ctx, log, oldKey)
		s.record(ctx, un.Metric, start, nil)
		log.WarnContext(ctx, "dump not parsed", "reason", un.Reason, "status", un.Metric)
		return nil
	case errors.Is(err, ErrParserUnavailable):
		s.unavailableOnce.Do(func() {
			log.WarnContext(ctx, "no parser: PARSE_SIDECAR_URL is unset and the built-in decoder is not available; dumps stay PENDING")
		})
		s.release(ctx, log, d, lease)
		s.record(ctx, MetricDecoderUnavailable, start, nil)
		return nil
	}
	s.release(ctx, log, d, lease)
	s.record(ctx, MetricUnexpectedError, start, nil)
	log.ErrorContext(ctx, "parse failed; will retry", "error", err)
	return fmt.Errorf("parsing %s: %w", d.ID, err)
}

// release gives the claim back so that the next delivery need not wait
// for the lease to run out. It is best effort: the lease ends anyway.
func (s *Service) release(ctx context.Context, log *slog.Logger, d *crashdump.Dump, lease time.Time) {
	err := s.Store.ReleaseParse(ctx, d.DeviceKey, d.ID, lease, crashdump.StatusPending)
	if err != nil && !errors.Is(err, crashdump.ErrConflict) {
		log.WarnContext(ctx, "releasing claim failed; the lease will expire", "error", err)
	}
}

func (s *Service) finishFailed(ctx context.Context, log *slog.Logger, d *crashdump.Dump, start time.Time, err error) error {
	if errors.Is(err, crashdump.ErrConflict) {
		s.record(ctx, MetricLeaseLost, start, nil)
		log.WarnContext(ctx, "lease lost; outcome dropped")
		return nil
	}
	s.record(ctx, MetricUnexpectedError, start, nil)
	log.ErrorContext(ctx, "recording outcome failed; will retry", "error", err)
	return fmt.Errorf("recording outcome of %s: %w", d.ID, err)
}

// finish records a report.
func (s *Service) finish(ctx context.Context, log *slog.Logger, d *crashdump.Dump, lease, start time.Time, res *Result) error {
	oldKey := d.OutputKey
	d.ParseStatus = crashdump.StatusParsed
	d.Parser = s.Parser.Name()
	d.Signature, d.TopFrame = res.Signature, res.TopFrame
	d.Output, d.OutputKey = res.Output, ""
	if len(res.Output) > MaxInlineOutput {
		d.Output, d.OutputKey = "", OutputKey(d.DeviceKey, d.ID)
		if err := s.Objects.PutText(ctx, d.OutputKey, res.Output); err != nil {
			s.release(ctx, log, d, lease)
			s.record(ctx, MetricUnexpectedError, start, nil)
			log.ErrorContext(ctx, "storing output failed; will retry", "error", err)
			return fmt.Errorf("storing output of %s: %w", d.ID, err)
		}
	}
	d.ParsedAt = s.now()
	d.DurationMS = d.ParsedAt.Sub(start).Milliseconds()
	if err := s.Store.FinishParse(ctx, d, lease); err != nil {
		return s.finishFailed(ctx, log, d, start, err)
	}
	if d.OutputKey == "" {
		s.deleteOutput(ctx, log, oldKey)
	}
	s.recordGroup(ctx, log, d, res.CrashKind)
	s.record(ctx, MetricParsed, start, map[string]float64{"ParserAttempts": float64(res.Attempts)})
	log.InfoContext(ctx, "dump parsed", "parser", d.Parser, "duration_ms", d.DurationMS,
		"output_bytes", len(res.Output), "crash_signature", d.Signature)
	return nil
}

// deleteOutput removes the long output of an earlier parse that the item
// no longer points to. A failure leaves an orphan for the retention sweep.
func (s *Service) deleteOutput(ctx context.Context, log *slog.Logger, key string) {
	if key == "" {
		return
	}
	if err := s.Objects.Delete(ctx, key); err != nil {
		log.WarnContext(ctx, "deleting previous output failed", "output_key", key, "error", err)
	}
}

// FirmwareArrived queues again every dump that waits for the firmware of
// model and version. It returns an error when the queue should deliver
// the event again.
func (s *Service) FirmwareArrived(ctx context.Context, model, version string) error {
	start := s.now()
	dumps, err := s.Store.WaitingForFirmware(ctx, model, version)
	if err == nil {
		err = s.wake(ctx, dumps, "firmware "+model+" "+version+" uploaded")
	}
	if err != nil {
		s.record(ctx, MetricUnexpectedError, start, nil)
		s.Logger.ErrorContext(ctx, "queueing waiting dumps failed; will retry", "model", model,
			"firmware_version", version, "error", err)
		return fmt.Errorf("queueing dumps waiting for %s %s: %w", model, version, err)
	}
	s.record(ctx, MetricFirmwareArrived, start, map[string]float64{"Requeued": float64(len(dumps))})
	s.Logger.InfoContext(ctx, "firmware arrived", "model", model, "firmware_version", version, "requeued", len(dumps))
	return nil
}

// wake moves waiting dumps to PENDING and queues a parse of each.
func (s *Service) wake(ctx context.Context, dumps []crashdump.Dump, reason string) error {
	msgs := make([]Message, 0, len(dumps))
	for _, d := range dumps {
		err := s.Store.WakeWaiting(ctx, d.DeviceKey, d.ID)
		if errors.Is(err, crashdump.ErrConflict) {
			continue // woken by someone else, or deleted
		}
		if err != nil {
			return fmt.Errorf("waking %s: %w", d.ID, err)
		}
		msgs = append(msgs, Message{Type: MessageTypeReparse, DeviceKey: d.DeviceKey, ID: d.ID, Reason: truncate(reason, 200)})
	}
	if len(msgs) == 0 {
		return nil
	}
	return s.Queue.SendParse(ctx, msgs...)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

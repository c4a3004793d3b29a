package parse

import (
	"context"
	"errors"
	"log/slog"

	"github.com/espfleet/crashdumps/shared/crashdump"
)

// GroupOperation is the metric operation of counting a parsed dump in its
// crash group.
const GroupOperation = "crash_group_record"

// Metric statuses of GroupOperation.
const (
	GroupRecorded    = "recorded"     // counted, or found counted before
	GroupNoSignature = "no_signature" // the parser gave no usable signature
	GroupFailed      = "failed"       // the store failed; the group misses the dump
)

// GroupRecorder counts parsed dumps in their crash groups; crashgroup's
// Recorder implements it.
type GroupRecorder interface {
	// RecordParsed counts d, just recorded PARSED, in the group of its
	// signature; kind is the crash kind its parser reported. It returns
	// an error wrapping ErrNoSignature when d has no usable signature.
	RecordParsed(ctx context.Context, d *crashdump.Dump, kind string) error
}

// ErrNoSignature is what a GroupRecorder wraps when a dump has no usable
// signature.
var ErrNoSignature = errors.New("no usable crash signature")

// recordGroup counts a parsed dump in its crash group when a recorder is
// set. The parse outcome is already recorded: a failure here is logged and
// counted in a metric, and the parse still succeeds. The dump is then
// missing from its group until it is parsed again.
func (s *Service) recordGroup(ctx context.Context, log *slog.Logger, d *crashdump.Dump, kind string) {
	if s.Groups == nil {
		return
	}
	start := s.now()
	err := s.Groups.RecordParsed(ctx, d, kind)
	status := GroupRecorded
	switch {
	case errors.Is(err, ErrNoSignature):
		status = GroupNoSignature
		log.InfoContext(ctx, "no crash signature; not grouped")
	case err != nil:
		status = GroupFailed
		log.ErrorContext(ctx, "recording crash group failed; the group misses this dump", "error", err)
	}
	s.Metrics.Record(ctx, GroupOperation, status, s.now().Sub(start), nil)
}

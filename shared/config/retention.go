package config

import (
	"time"

	"github.com/espfleet/crashdumps/shared/retention"
)

// Retention is the retention function's configuration.
type Retention struct {
	Common
	// Scope is ADMIN_SCOPE, which POST /api/retention requires.
	Scope string
	// QueueURL is PARSE_QUEUE_URL, where stuck parses are queued again.
	QueueURL string
	// OrphanObjectAge is ORPHAN_OBJECT_AGE, how old an object without a
	// record must be before it goes.
	OrphanObjectAge time.Duration
	// UploadGrace is UPLOAD_GRACE, how old a record without an object
	// must be before it goes.
	UploadGrace time.Duration
	// StuckPendingAfter is STUCK_PENDING_AFTER.
	StuckPendingAfter time.Duration
	// MaxRequeues is MAX_PARSE_REQUEUES.
	MaxRequeues int
	// Concurrency is SWEEP_CONCURRENCY, devices swept at once.
	Concurrency int
	// Margin is SWEEP_MARGIN, the time kept before the deadline.
	Margin time.Duration
	// HTTPBudget is HTTP_SWEEP_BUDGET, the longest sweep an HTTP request
	// runs.
	HTTPBudget time.Duration
	// MaxChain is MAX_CHAINED_SWEEPS, chained invocations of one sweep;
	// 0 leaves an unfinished sweep to the next schedule.
	MaxChain int
	// FunctionName is AWS_LAMBDA_FUNCTION_NAME, which Lambda sets: the
	// function a chained invocation starts.
	FunctionName string
}

// LoadRetention reads and checks the retention function's configuration.
func LoadRetention(lookup Lookup) (Retention, error) {
	r := NewReader(lookup)
	c := Retention{
		Common:            r.common(),
		Scope:             r.String("ADMIN_SCOPE", DefaultAdminScope),
		OrphanObjectAge:   r.Duration("ORPHAN_OBJECT_AGE", time.Hour, 15*time.Minute, 30*24*time.Hour),
		UploadGrace:       r.Duration("UPLOAD_GRACE", 15*time.Minute, time.Minute, 24*time.Hour),
		StuckPendingAfter: r.Duration("STUCK_PENDING_AFTER", 30*time.Minute, time.Minute, 30*24*time.Hour),
		MaxRequeues:       r.Int("MAX_PARSE_REQUEUES", 3, 0, 100),
		Concurrency:       r.Int("SWEEP_CONCURRENCY", 8, 1, 64),
		Margin:            r.Duration("SWEEP_MARGIN", 30*time.Second, time.Second, 5*time.Minute),
		HTTPBudget:        r.Duration("HTTP_SWEEP_BUDGET", 25*time.Second, time.Second, 29*time.Second),
		MaxChain:          r.Int("MAX_CHAINED_SWEEPS", 10, 0, 1000),
		FunctionName:      r.String("AWS_LAMBDA_FUNCTION_NAME", ""),
	}
	r.Required("PARSE_QUEUE_URL")
	c.QueueURL = r.URL("PARSE_QUEUE_URL")
	return c, r.Err()
}

// Rules returns the bounds the sweep enforces.
func (c Retention) Rules() retention.Rules {
	return retention.Rules{
		MaxPerDevice:      c.MaxDumps,
		MaxAge:            time.Duration(c.RetentionDays) * 24 * time.Hour,
		OrphanObjectAge:   c.OrphanObjectAge,
		UploadGrace:       c.UploadGrace,
		StuckPendingAfter: c.StuckPendingAfter,
		MaxRequeues:       c.MaxRequeues,
	}
}

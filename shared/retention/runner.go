package retention

import (
	"context"
	"time"
)

// ContinuationSource marks the event of a chained invocation, which
// carries on a sweep that stopped before its invocation's deadline.
const ContinuationSource = "crashdumps.retention"

// Continuation is the event a sweep that stopped early sends to start the
// next invocation of the function.
type Continuation struct {
	Source string `json:"source"`
	// Chain counts the invocations of this sweep before the one the
	// event starts.
	Chain int `json:"chain"`
}

// Chainer starts another invocation of the retention function,
// asynchronously, with the event.
type Chainer interface {
	Continue(ctx context.Context, c Continuation) error
}

// Runner runs sweeps within the time of one Lambda invocation.
//
// A sweep stops Margin before the invocation's deadline and stores its
// checkpoint. When it is a fleet sweep that changes things, the Runner then
// starts a chained asynchronous invocation through Chain, which resumes from
// the checkpoint, up to MaxChain invocations in a row; without a Chainer, or
// past MaxChain, the next scheduled sweep resumes from the checkpoint.
type Runner struct {
	Sweeper *Sweeper
	// Margin is the time kept free before the invocation's deadline, to
	// finish the devices in flight and store the checkpoint.
	Margin time.Duration
	// HTTPBudget bounds a sweep started by an HTTP request, which API
	// Gateway abandons after 30 seconds.
	HTTPBudget time.Duration
	// Chain starts chained invocations; nil leaves the rest of the
	// sweep to the next schedule.
	Chain Chainer
	// MaxChain bounds the chained invocations of one sweep.
	MaxChain int
}

// Scheduled runs the fleet sweep of a scheduled or chained invocation;
// chain is the number of invocations of this sweep before this one.
func (r *Runner) Scheduled(ctx context.Context, chain int) (*Report, error) {
	rep, err := r.Sweeper.Sweep(ctx, Options{Deadline: r.deadline(ctx, 0)})
	if err != nil {
		return rep, err
	}
	return rep, r.chain(ctx, rep, chain)
}

// Request runs a sweep an admin asked for over HTTP.
func (r *Runner) Request(ctx context.Context, opts Options) (*Report, error) {
	opts.Deadline = r.deadline(ctx, r.HTTPBudget)
	rep, err := r.Sweeper.Sweep(ctx, opts)
	if err != nil {
		return rep, err
	}
	return rep, r.chain(ctx, rep, 0)
}

// deadline is when a sweep stops taking new work: Margin before the
// context's deadline, and within budget when that is set.
func (r *Runner) deadline(ctx context.Context, budget time.Duration) time.Time {
	var d time.Time
	if dl, ok := ctx.Deadline(); ok {
		d = dl.Add(-r.Margin)
	}
	if budget > 0 {
		if b := r.Sweeper.now().Add(budget); d.IsZero() || b.Before(d) {
			d = b
		}
	}
	return d
}

// chain starts the next invocation of a fleet sweep that stopped early.
func (r *Runner) chain(ctx context.Context, rep *Report, chain int) error {
	if rep.Complete || rep.DryRun || rep.DeviceKey != "" || r.Chain == nil || chain >= r.MaxChain {
		return nil
	}
	if err := r.Chain.Continue(ctx, Continuation{Source: ContinuationSource, Chain: chain + 1}); err != nil {
		// The checkpoint is stored: the next schedule carries on.
		r.Sweeper.logger().ErrorContext(ctx, "starting chained retention sweep failed; the next schedule resumes",
			"resume", rep.Resume, "chain", chain+1, "error", err)
		return nil
	}
	rep.Continued = true
	r.Sweeper.logger().InfoContext(ctx, "retention sweep continues in a chained invocation",
		"resume", rep.Resume, "chain", chain+1)
	return nil
}

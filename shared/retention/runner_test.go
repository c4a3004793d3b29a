package retention_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/espfleet/crashdumps/shared/retention"
)

// chainer records the continuations instead of invoking a function.
type chainer struct {
	got []retention.Continuation
	err error
}

func (c *chainer) Continue(_ context.Context, next retention.Continuation) error {
	c.got = append(c.got, next)
	return c.err
}

var _ retention.Chainer = (*chainer)(nil)

// invocation is a context whose deadline is already within the margin, so
// that each sweep does one unit of work.
func invocation(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestRunner_Scheduled(t *testing.T) {
	t.Run("OKChainsUntilComplete", func(t *testing.T) {
		e := newEnv(t, testRules())
		seedScenario(t, e)
		c := &chainer{}
		r := &retention.Runner{Sweeper: e.sweeper, Margin: time.Hour, Chain: c, MaxChain: 1000}
		rep, err := r.Scheduled(invocation(t), 0)
		if err != nil {
			t.Fatal(err)
		}
		// Each continuation is what the next invocation receives.
		for !rep.Complete {
			if !rep.Continued || len(c.got) == 0 {
				t.Fatalf("stopped at %q without a chained invocation", rep.Resume)
			}
			next := c.got[len(c.got)-1]
			if got, want := next.Source, retention.ContinuationSource; got != want {
				t.Fatalf("source: got %v, want %v", got, want)
			}
			if rep, err = r.Scheduled(invocation(t), next.Chain); err != nil {
				t.Fatal(err)
			}
		}
		if got, want := len(c.got), c.got[len(c.got)-1].Chain; got != want || got < 5 {
			t.Errorf("chained invocations: got %d (last chain %d), want at least 5 numbered in order", got, want)
		}
		e.state(t).check(t, testRules())
	})
	t.Run("OKStopsAtMaxChain", func(t *testing.T) {
		e := newEnv(t, testRules())
		seedScenario(t, e)
		c := &chainer{}
		r := &retention.Runner{Sweeper: e.sweeper, Margin: time.Hour, Chain: c, MaxChain: 3}
		rep, err := r.Scheduled(invocation(t), 3)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Complete || rep.Continued || len(c.got) != 0 {
			t.Errorf("got complete %v, continued %v, %d chained; want a stop for the next schedule",
				rep.Complete, rep.Continued, len(c.got))
		}
		if _, ok, _ := e.store.LoadCheckpoint(context.Background()); !ok {
			t.Errorf("no checkpoint for the next schedule")
		}
	})
	t.Run("OKChainFailureLeavesCheckpoint", func(t *testing.T) {
		e := newEnv(t, testRules())
		seedScenario(t, e)
		c := &chainer{err: errors.New("injected: invoke denied")}
		r := &retention.Runner{Sweeper: e.sweeper, Margin: time.Hour, Chain: c, MaxChain: 3}
		rep, err := r.Scheduled(invocation(t), 0)
		if err != nil {
			t.Fatalf("got %v, want the failure logged and the checkpoint kept", err)
		}
		if rep.Continued {
			t.Errorf("continued: got true, want false")
		}
		if _, ok, _ := e.store.LoadCheckpoint(context.Background()); !ok {
			t.Errorf("no checkpoint for the next schedule")
		}
	})
	t.Run("OKNoDeadline", func(t *testing.T) {
		e := newEnv(t, testRules())
		seedScenario(t, e)
		c := &chainer{}
		r := &retention.Runner{Sweeper: e.sweeper, Margin: time.Hour, Chain: c, MaxChain: 3}
		rep, err := r.Scheduled(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Complete || len(c.got) != 0 {
			t.Errorf("got complete %v with %d chained, want complete in one", rep.Complete, len(c.got))
		}
	})
}

func TestRunner_Request(t *testing.T) {
	t.Run("OKDryRunNeverChains", func(t *testing.T) {
		e := newEnv(t, testRules())
		seedScenario(t, e)
		c := &chainer{}
		r := &retention.Runner{Sweeper: e.sweeper, Margin: time.Hour, Chain: c, MaxChain: 3}
		rep, err := r.Request(invocation(t), retention.Options{DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Complete || len(c.got) != 0 {
			t.Errorf("got complete %v with %d chained, want a partial dry run and no chain", rep.Complete, len(c.got))
		}
	})
	t.Run("OKBudget", func(t *testing.T) {
		e := newEnv(t, testRules())
		seedScenario(t, e)
		r := &retention.Runner{Sweeper: e.sweeper, HTTPBudget: time.Nanosecond}
		rep, err := r.Request(context.Background(), retention.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Complete || rep.Resume == "" {
			t.Errorf("got complete %v, resume %q; want a stop within the budget", rep.Complete, rep.Resume)
		}
	})
}

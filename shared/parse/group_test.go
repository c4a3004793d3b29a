package parse_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/espfleet/crashdumps/shared/crashdump"
	"github.com/espfleet/crashdumps/shared/parse"
)

// fakeGroups is a hand-written parse.GroupRecorder that records its calls
// and answers err.
type fakeGroups struct {
	mu    sync.Mutex
	err   error
	calls []string // "<id> <status> <signature>"
}

func (g *fakeGroups) RecordParsed(_ context.Context, d *crashdump.Dump, kind string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls = append(g.calls, d.ID+" "+string(d.ParseStatus)+" "+d.Signature)
	return g.err
}

var _ parse.GroupRecorder = (*fakeGroups)(nil)

func TestService_RecordGroup(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status string
		log    string
	}{
		{"OK", nil, parse.GroupRecorded, ""},
		{"OKNoSignature", fmt.Errorf("dump x: %w", parse.ErrNoSignature), parse.GroupNoSignature, "no crash signature; not grouped"},
		{"ErrStoreFails", errors.New("throttled"), parse.GroupFailed, "recording crash group failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, &fakeParser{output: "report"})
			groups := &fakeGroups{err: tt.err}
			e.svc.Groups = groups
			e.putFirmware(t)
			d := e.putDump(t, "esp32", model, version, []byte("dump"))
			// A failure to record the group does not fail the parse.
			wantNoFailures(t, e.deliver(t, dumpEvent(e, d)))
			got := e.metrics.take()
			want := []string{parse.Operation + "/" + parse.MetricParsed, parse.GroupOperation + "/" + tt.status}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("metrics: got %v, want %v", got, want)
			}
			// The group is recorded after the outcome, never before.
			if want := []string{d.ID + " PARSED sig"}; !slices.Equal(groups.calls, want) {
				t.Errorf("calls: got %v, want %v", groups.calls, want)
			}
			if got := attr(e.item(t, d), "parse_status"); got != "PARSED" {
				t.Errorf("parse_status: got %s, want PARSED", got)
			}
			if tt.log != "" && !strings.Contains(e.logs.String(), tt.log) {
				t.Errorf("logs lack %q", tt.log)
			}
		})
	}
	t.Run("OKNotOnError", func(t *testing.T) {
		e := newEnv(t, &fakeParser{err: parse.Unparseable(parse.MetricParseError, "bad dump")})
		groups := &fakeGroups{}
		e.svc.Groups = groups
		e.putFirmware(t)
		d := e.putDump(t, "esp32", model, version, []byte("dump"))
		wantNoFailures(t, e.deliver(t, dumpEvent(e, d)))
		wantMetrics(t, e, parse.MetricParseError)
		if len(groups.calls) != 0 {
			t.Errorf("calls: got %v, want none", groups.calls)
		}
	})
}

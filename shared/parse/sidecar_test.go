package parse_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/espfleet/crashdumps/shared/crashdump"
	"github.com/espfleet/crashdumps/shared/parse"
	"github.com/espfleet/crashdumps/shared/sidecar"
)

// TestService_ParseDumpSidecar runs the whole parse with the sidecar
// parser against a real HTTP server that downloads the presigned dump and
// ELF from the emulator.
func TestService_ParseDumpSidecar(t *testing.T) {
	get := func(u string) []byte {
		resp, err := http.Get(u)
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return b
	}
	dumpBytes := []byte("raw dump bytes")
	tests := []struct {
		name     string
		status   int
		metric   string
		want     crashdump.Status
		attempts int32
	}{
		{"OK", http.StatusOK, parse.MetricParsed, crashdump.StatusParsed, 1},
		{"ErrSidecarFailsAfterRetries", http.StatusServiceUnavailable, parse.MetricSidecarFailed, crashdump.StatusError, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				q := r.URL.Query()
				core, elf := get(q.Get("core")), get(q.Get("elf"))
				if !bytes.Equal(core, dumpBytes) || !bytes.Equal(elf, elfBytes) {
					http.Error(w, "wrong bytes", http.StatusBadRequest)
					return
				}
				if tc.status != http.StatusOK {
					http.Error(w, "overloaded", tc.status)
					return
				}
				json.NewEncoder(w).Encode(map[string]string{"output": "sidecar report for " + q.Get("chip")})
			}))
			defer srv.Close()
			e := newEnv(t, nil)
			e.svc.Parser = &sidecar.Parser{
				Client: &sidecar.Client{
					BaseURL: srv.URL,
					Sleep:   func(context.Context, time.Duration) error { return nil },
				},
				Objects: e.objects,
			}
			e.putFirmware(t)
			d := e.putDump(t, "esp32c6", model, version, dumpBytes)
			wantNoFailures(t, e.deliver(t, dumpEvent(e, d)))
			wantMetrics(t, e, tc.metric)
			if got := calls.Load(); got != tc.attempts {
				t.Errorf("got %d sidecar calls, want %d", got, tc.attempts)
			}
			got := e.get(t, d)
			if got.ParseStatus != tc.want || got.Parser != "sidecar" {
				t.Fatalf("got %s by %q (%s), want %s by sidecar", got.ParseStatus, got.Parser, got.ParseError, tc.want)
			}
			if tc.want == crashdump.StatusParsed && got.Output != "sidecar report for esp32c6" {
				t.Errorf("got output %q", got.Output)
			}
			if tc.want == crashdump.StatusError && !strings.Contains(got.ParseError, "after 3 attempt(s): HTTP 503") {
				t.Errorf("got parse_error %q", got.ParseError)
			}
		})
	}
}

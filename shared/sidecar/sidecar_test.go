package sidecar_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/espfleet/crashdumps/shared/awsconf"
	"github.com/espfleet/crashdumps/shared/awstest"
	"github.com/espfleet/crashdumps/shared/crashdump"
	"github.com/espfleet/crashdumps/shared/parse"
	"github.com/espfleet/crashdumps/shared/s3store"
	"github.com/espfleet/crashdumps/shared/sidecar"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// fakeSidecar is a real HTTP server that behaves like the parse sidecar:
// it downloads both presigned URLs, checks the bytes, and answers by the
// fault mode of the attempt.
type fakeSidecar struct {
	t        *testing.T
	srv      *httptest.Server
	core     []byte // expected dump bytes
	elf      []byte // expected ELF bytes
	modes    []string
	attempts atomic.Int32
	mu       sync.Mutex
	fetched  []string
}

// mode names per attempt; the last one repeats.
const (
	modeOK        = "ok"
	mode500       = "500"
	mode429       = "429"
	mode429Wait   = "429-retry-after"
	mode400       = "400"
	modeSlow      = "slow"
	modeMalformed = "malformed"
)

func newFakeSidecar(t *testing.T, core, elf []byte, modes ...string) *fakeSidecar {
	f := &fakeSidecar{t: t, core: core, elf: elf, modes: modes}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeSidecar) serve(w http.ResponseWriter, r *http.Request) {
	n := int(f.attempts.Add(1))
	mode := f.modes[min(n, len(f.modes))-1]
	if r.URL.Path != "/parse-coredump" {
		http.Error(w, "no such path", http.StatusNotFound)
		return
	}
	q := r.URL.Query()
	if mode == modeOK && f.core != nil {
		for name, want := range map[string][]byte{"core": f.core, "elf": f.elf} {
			got, err := fetch(q.Get(name))
			if err != nil || !bytes.Equal(got, want) {
				http.Error(w, fmt.Sprintf("%s: got %d bytes (%v), want %d", name, len(got), err, len(want)), http.StatusBadGateway)
				return
			}
			f.mu.Lock()
			f.fetched = append(f.fetched, name)
			f.mu.Unlock()
		}
	}
	switch mode {
	case modeOK:
		json.NewEncoder(w).Encode(map[string]string{"output": "report for " + q.Get("chip")})
	case mode500:
		http.Error(w, "esp-coredump crashed", http.StatusInternalServerError)
	case mode429:
		http.Error(w, "busy", http.StatusTooManyRequests)
	case mode429Wait:
		w.Header().Set("Retry-After", "7")
		http.Error(w, "busy", http.StatusTooManyRequests)
	case mode400:
		http.Error(w, "chip is not supported", http.StatusBadRequest)
	case modeSlow:
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	case modeMalformed:
		io.WriteString(w, `<html>gateway</html>`)
	}
}

func fetch(u string) ([]byte, error) {
	if !strings.HasPrefix(u, "http://127.0.0.1:") {
		return nil, fmt.Errorf("URL %q is not on loopback", u)
	}
	resp, err := http.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return io.ReadAll(resp.Body)
}

// sleeper records the backoff delays instead of sleeping.
type sleeper struct {
	mu     sync.Mutex
	delays []time.Duration
}

func (s *sleeper) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delays = append(s.delays, d)
	return ctx.Err()
}

func newClient(base string, s *sleeper) *sidecar.Client {
	return &sidecar.Client{
		BaseURL:   base,
		Timeout:   300 * time.Millisecond,
		BaseDelay: 100 * time.Millisecond,
		Sleep:     s.Sleep,
		Jitter:    func(d time.Duration) time.Duration { return d / 2 },
	}
}

func closedURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func TestClient_Parse(t *testing.T) {
	tests := []struct {
		name       string
		modes      []string
		refused    bool
		want       string
		attempts   int
		delays     []time.Duration
		retryable  bool
		wantStatus int
	}{
		{name: "OK", modes: []string{modeOK}, want: "report for esp32", attempts: 1},
		{name: "OK500ThenSuccess", modes: []string{mode500, modeOK}, want: "report for esp32", attempts: 2,
			delays: []time.Duration{75 * time.Millisecond}},
		{name: "OK429ThenSuccess", modes: []string{mode429, mode429, modeOK}, want: "report for esp32", attempts: 3,
			delays: []time.Duration{75 * time.Millisecond, 150 * time.Millisecond}},
		{name: "OK429RetryAfter", modes: []string{mode429Wait, modeOK}, want: "report for esp32", attempts: 2,
			delays: []time.Duration{7 * time.Second}},
		{name: "ErrAlways500", modes: []string{mode500}, attempts: 3, retryable: true, wantStatus: 500,
			delays: []time.Duration{75 * time.Millisecond, 150 * time.Millisecond}},
		{name: "ErrSlowPastTimeout", modes: []string{modeSlow}, attempts: 3, retryable: true,
			delays: []time.Duration{75 * time.Millisecond, 150 * time.Millisecond}},
		{name: "Err400NotRetried", modes: []string{mode400}, attempts: 1, wantStatus: 400},
		{name: "ErrMalformedJSONNotRetried", modes: []string{modeMalformed}, attempts: 1, wantStatus: 200},
		{name: "ErrConnectionRefused", refused: true, attempts: 3, retryable: true,
			delays: []time.Duration{75 * time.Millisecond, 150 * time.Millisecond}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := closedURL(t)
			var srv *fakeSidecar
			if !tc.refused {
				srv = newFakeSidecar(t, nil, nil, tc.modes...)
				base = srv.srv.URL
			}
			s := &sleeper{}
			out, n, err := newClient(base, s).Parse(context.Background(), sidecar.Request{CoreURL: "c", ELFURL: "e", Chip: "esp32"})
			if n != tc.attempts {
				t.Errorf("got %d attempts, want %d", n, tc.attempts)
			}
			if srv != nil && int(srv.attempts.Load()) != tc.attempts {
				t.Errorf("server saw %d requests, want %d", srv.attempts.Load(), tc.attempts)
			}
			if !slices.Equal(s.delays, tc.delays) {
				t.Errorf("got delays %v, want %v", s.delays, tc.delays)
			}
			if tc.want != "" {
				if err != nil || out != tc.want {
					t.Fatalf("got %q, %v, want %q", out, err, tc.want)
				}
				return
			}
			var se *sidecar.Error
			if !errors.As(err, &se) {
				t.Fatalf("got %v, want a *sidecar.Error", err)
			}
			if se.Attempts != tc.attempts || se.Retryable != tc.retryable || se.Status != tc.wantStatus {
				t.Errorf("got attempts %d retryable %v status %d, want %d %v %d",
					se.Attempts, se.Retryable, se.Status, tc.attempts, tc.retryable, tc.wantStatus)
			}
		})
	}

	t.Run("ErrDeadlineStopsRetries", func(t *testing.T) {
		srv := newFakeSidecar(t, nil, nil, mode500)
		s := &sleeper{}
		c := newClient(srv.srv.URL, s)
		c.BaseDelay = time.Second
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		dl, _ := ctx.Deadline()
		// 2.5 s left: one attempt fits, a retry after 0.5 s of backoff
		// would leave less than MinAttemptTime.
		c.Now = func() time.Time { return dl.Add(-2500 * time.Millisecond) }
		_, n, err := c.Parse(ctx, sidecar.Request{Chip: "esp32"})
		if n != 1 || err == nil {
			t.Errorf("got %d attempts, %v, want 1 and an error", n, err)
		}
		if len(s.delays) != 0 {
			t.Errorf("got delays %v, want none", s.delays)
		}
	})

	t.Run("ErrNoTimeLeft", func(t *testing.T) {
		srv := newFakeSidecar(t, nil, nil, modeOK)
		c := newClient(srv.srv.URL, &sleeper{})
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		dl, _ := ctx.Deadline()
		c.Now = func() time.Time { return dl.Add(-time.Second) }
		_, n, err := c.Parse(ctx, sidecar.Request{Chip: "esp32"})
		if n != 0 || err == nil || srv.attempts.Load() != 0 {
			t.Errorf("got %d attempts (%d requests), %v, want none and an error", n, srv.attempts.Load(), err)
		}
	})
}

func TestClient_ParseBackoffJitter(t *testing.T) {
	// With real jitter every delay stays within [d/2, d].
	srv := newFakeSidecar(t, nil, nil, mode500)
	s := &sleeper{}
	c := newClient(srv.srv.URL, s)
	c.Jitter = nil
	c.Attempts = 5
	c.MaxDelay = 300 * time.Millisecond
	c.Parse(context.Background(), sidecar.Request{Chip: "esp32"})
	ceil := []time.Duration{100, 200, 300, 300}
	if len(s.delays) != len(ceil) {
		t.Fatalf("got delays %v, want %d", s.delays, len(ceil))
	}
	for i, d := range s.delays {
		hi := ceil[i] * time.Millisecond
		if d < hi/2 || d > hi {
			t.Errorf("delay %d: got %v, want within [%v, %v]", i, d, hi/2, hi)
		}
	}
}

// stack is a dump in the emulator and an ELF on disk.
type stack struct {
	objects  *s3store.Objects
	requests *atomic.Int64
	dump     *crashdump.Dump
	core     []byte
	elf      *parse.ELF
	elfBytes []byte
}

func newStack(t *testing.T) *stack {
	cfg := awstest.Config(t)
	n := awstest.CountRequests(&cfg)
	res := awstest.Resources(t)
	st := &stack{
		objects:  &s3store.Objects{Client: s3.NewFromConfig(cfg, awsconf.S3Options()), Bucket: res.Bucket},
		requests: n,
		core:     []byte("core dump bytes \x00\x01\x02"),
		elfBytes: bytes.Repeat([]byte("\x7fELF firmware "), 4096),
	}
	now := time.Now()
	st.dump = &crashdump.Dump{ID: crashdump.NewID(now), DeviceKey: "dev1", ModelCode: "ps1", Chip: "esp32c3",
		FirmwareVersion: "1.0", UploadedAt: now, ParseStatus: crashdump.StatusParsing}
	if err := st.objects.PutDump(context.Background(), st.dump, st.core); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "ps1.elf")
	if err := os.WriteFile(p, st.elfBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	st.elf = &parse.ELF{Path: p, Name: "ps1.elf", Size: int64(len(st.elfBytes)),
		ArchiveKey: "firmware/ps1/1.0.zip", ArchiveETag: `"0123abcd"`}
	return st
}

func TestParser_Parse(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		st := newStack(t)
		srv := newFakeSidecar(t, st.core, st.elfBytes, modeOK)
		p := &sidecar.Parser{Client: newClient(srv.srv.URL, &sleeper{}), Objects: st.objects}
		res, err := p.Parse(context.Background(), &parse.Job{Dump: st.dump, ELF: st.elf})
		if err != nil {
			t.Fatal(err)
		}
		if res.Output != "report for esp32c3" || res.Attempts != 1 {
			t.Errorf("got %q after %d attempts, want %q after 1", res.Output, res.Attempts, "report for esp32c3")
		}
		if !slices.Contains(srv.fetched, "core") || !slices.Contains(srv.fetched, "elf") {
			t.Errorf("sidecar fetched %v, want core and elf", srv.fetched)
		}
		key := sidecar.XferKey(st.elf)
		if !strings.HasPrefix(key, "xfer/") || !strings.HasSuffix(key, "/ps1.elf") {
			t.Errorf("got staging key %q, want xfer/<build>/ps1.elf", key)
		}
		if ok, _ := st.objects.Exists(context.Background(), key); !ok {
			t.Errorf("got no object at %s, want the staged ELF", key)
		}

		// A second dump of the same build: the ELF is not staged again
		// and presigning sends nothing, so S3 sees no request at all.
		before := st.requests.Load()
		if _, err := p.Parse(context.Background(), &parse.Job{Dump: st.dump, ELF: st.elf}); err != nil {
			t.Fatal(err)
		}
		if got := st.requests.Load() - before; got != 0 {
			t.Errorf("got %d S3 requests for the second dump, want 0", got)
		}
	})

	t.Run("OKStagedByAnotherInstance", func(t *testing.T) {
		st := newStack(t)
		srv := newFakeSidecar(t, st.core, st.elfBytes, modeOK)
		if err := st.objects.PutFile(context.Background(), sidecar.XferKey(st.elf), st.elf.Path); err != nil {
			t.Fatal(err)
		}
		before := st.requests.Load()
		p := &sidecar.Parser{Client: newClient(srv.srv.URL, &sleeper{}), Objects: st.objects}
		if _, err := p.Parse(context.Background(), &parse.Job{Dump: st.dump, ELF: st.elf}); err != nil {
			t.Fatal(err)
		}
		if got := st.requests.Load() - before; got != 1 {
			t.Errorf("got %d S3 requests, want 1 (the existence check, no upload)", got)
		}
	})

	for _, tc := range []struct {
		name  string
		modes []string
		want  string
	}{
		{"ErrAlways500", []string{mode500}, "sidecar failed after 3 attempt(s): HTTP 500: esp-coredump crashed"},
		{"Err400", []string{mode400}, "sidecar failed after 1 attempt(s): HTTP 400: chip is not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newStack(t)
			srv := newFakeSidecar(t, st.core, st.elfBytes, tc.modes...)
			p := &sidecar.Parser{Client: newClient(srv.srv.URL, &sleeper{}), Objects: st.objects}
			_, err := p.Parse(context.Background(), &parse.Job{Dump: st.dump, ELF: st.elf})
			var un *parse.UnparseableError
			if !errors.As(err, &un) {
				t.Fatalf("got %v, want an *parse.UnparseableError", err)
			}
			if un.Metric != parse.MetricSidecarFailed || un.Reason != tc.want {
				t.Errorf("got %s %q, want %s %q", un.Metric, un.Reason, parse.MetricSidecarFailed, tc.want)
			}
		})
	}
}

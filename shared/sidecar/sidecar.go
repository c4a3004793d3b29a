// Package sidecar calls the parse sidecar, an HTTP service that runs
// Espressif's esp-coredump on a dump and a firmware ELF it downloads from
// presigned URLs:
//
//	GET {base}/parse-coredump?core=<url>&elf=<url>&chip=<chip>
//	200 {"output": "..."}
//
// Calls are retried with exponential backoff and jitter, each attempt
// bounded by its own timeout, all within the caller's deadline.
package sidecar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Defaults of a Client.
const (
	DefaultAttempts  = 3
	DefaultTimeout   = 120 * time.Second
	DefaultBaseDelay = time.Second
	DefaultMaxDelay  = 20 * time.Second
	// MinAttemptTime is the least time left before the deadline for an
	// attempt to start; less, and the client stops.
	MinAttemptTime = 2 * time.Second
	// maxResponse bounds the response body read.
	maxResponse = 32 << 20
)

// Client calls the sidecar. The zero values of its optional fields take
// the defaults above.
type Client struct {
	// BaseURL is PARSE_SIDECAR_URL, without a trailing slash.
	BaseURL string
	// HTTP sends the requests; nil means a client with no overall
	// timeout (each attempt has its own).
	HTTP *http.Client
	// Attempts is how many calls at most (PARSE_SIDECAR_ATTEMPTS).
	Attempts int
	// Timeout bounds each attempt (PARSE_SIDECAR_TIMEOUT).
	Timeout time.Duration
	// BaseDelay and MaxDelay shape the backoff: before attempt n+1 the
	// client sleeps a random time between half and all of
	// min(MaxDelay, BaseDelay*2^(n-1)).
	BaseDelay, MaxDelay time.Duration
	// Sleep waits d or until ctx ends; nil means a timer. Tests replace
	// it to run fast and see the delays.
	Sleep func(ctx context.Context, d time.Duration) error
	// Jitter returns a random duration in [0, d); nil means math/rand.
	Jitter func(d time.Duration) time.Duration
	// Now is the clock for the deadline arithmetic; nil means time.Now.
	Now func() time.Time
}

// Error is a failed sidecar call after its last attempt.
type Error struct {
	// Attempts is how many calls were made.
	Attempts int
	// Status is the last HTTP status, or 0 when no answer came.
	Status int
	// Retryable says the last failure was one a retry could fix (the
	// attempts or the time ran out).
	Retryable bool
	// Err is the last failure.
	Err error
}

// Error implements the error interface.
func (e *Error) Error() string {
	return fmt.Sprintf("sidecar failed after %d attempt(s): %v", e.Attempts, e.Err)
}

// Unwrap returns the last failure.
func (e *Error) Unwrap() error { return e.Err }

// Request names what to parse.
type Request struct {
	CoreURL string
	ELFURL  string
	Chip    string
}

// Parse calls the sidecar until it answers, a failure is not worth a
// retry, the attempts run out, or too little time is left. It returns the
// output and the number of attempts made; a failure is an *Error.
func (c *Client) Parse(ctx context.Context, req Request) (string, int, error) {
	attempts := c.Attempts
	if attempts <= 0 {
		attempts = DefaultAttempts
	}
	u := c.BaseURL + "/parse-coredump?" + url.Values{
		"core": {req.CoreURL}, "elf": {req.ELFURL}, "chip": {req.Chip},
	}.Encode()
	var last *Error
	var wait time.Duration // a 429's Retry-After
	for n := 1; n <= attempts; n++ {
		if n > 1 {
			d := max(c.backoff(n-1), wait)
			if !c.timeLeft(ctx, d+MinAttemptTime) {
				break
			}
			if err := c.sleep(ctx, d); err != nil {
				break
			}
		} else if !c.timeLeft(ctx, MinAttemptTime) {
			return "", 0, &Error{Err: errors.New("too little time left to call the sidecar"), Retryable: true}
		}
		out, status, err := c.attempt(ctx, u)
		if err == nil {
			return out, n, nil
		}
		last = &Error{Attempts: n, Status: status, Err: err, Retryable: retryable(status, err)}
		var se *statusError
		if errors.As(err, &se) {
			wait = se.retryAfter
		}
		if !last.Retryable || ctx.Err() != nil {
			break
		}
	}
	return "", last.Attempts, last
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// timeLeft reports whether the context's deadline, if any, is more than
// need away.
func (c *Client) timeLeft(ctx context.Context, need time.Duration) bool {
	dl, ok := ctx.Deadline()
	return !ok || dl.Sub(c.now()) > need
}

func (c *Client) backoff(retry int) time.Duration {
	base, maxD := c.BaseDelay, c.MaxDelay
	if base <= 0 {
		base = DefaultBaseDelay
	}
	if maxD <= 0 {
		maxD = DefaultMaxDelay
	}
	d := base << (retry - 1)
	if d > maxD || d <= 0 {
		d = maxD
	}
	half := d / 2
	if c.Jitter != nil {
		return half + c.Jitter(d-half)
	}
	return half + rand.N(d-half+1)
}

func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	if c.Sleep != nil {
		return c.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// errMalformed marks a 200 answer that is not the documented JSON.
var errMalformed = errors.New("malformed answer")

// statusError is a non-200 answer.
type statusError struct {
	status     int
	body       string
	retryAfter time.Duration
}

func (e *statusError) Error() string {
	if e.body == "" {
		return "HTTP " + strconv.Itoa(e.status)
	}
	return fmt.Sprintf("HTTP %d: %s", e.status, e.body)
}

// attempt makes one call, bounded by the per-attempt timeout and the
// context's deadline less a margin to record the outcome.
func (c *Client) attempt(ctx context.Context, u string) (string, int, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, dl.Sub(c.now())-MinAttemptTime/2)
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(actx, http.MethodGet, u, nil)
	if err != nil {
		return "", 0, fmt.Errorf("building request: %w", err)
	}
	hreq.Header.Set("Accept", "application/json")
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(hreq)
	if err != nil {
		return "", 0, fmt.Errorf("calling sidecar: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return "", 0, fmt.Errorf("reading sidecar answer: %w", err) // no whole answer: retry
	}
	if resp.StatusCode != http.StatusOK {
		se := &statusError{status: resp.StatusCode, body: snippet(body)}
		if resp.StatusCode == http.StatusTooManyRequests {
			se.retryAfter = c.retryAfter(resp.Header.Get("Retry-After"))
		}
		return "", resp.StatusCode, se
	}
	if len(body) > maxResponse {
		return "", resp.StatusCode, fmt.Errorf("sidecar answer over %d bytes: %w", maxResponse, errMalformed)
	}
	var out struct {
		Output *string `json:"output"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return "", resp.StatusCode, fmt.Errorf("decoding sidecar answer: %w: %v", errMalformed, err)
	}
	if out.Output == nil {
		return "", resp.StatusCode, fmt.Errorf("sidecar answer has no output: %w", errMalformed)
	}
	return *out.Output, resp.StatusCode, nil
}

// retryAfter reads a Retry-After header in seconds, capped at MaxDelay.
func (c *Client) retryAfter(h string) time.Duration {
	secs, err := strconv.Atoi(strings.TrimSpace(h))
	if err != nil || secs <= 0 {
		return 0
	}
	maxD := c.MaxDelay
	if maxD <= 0 {
		maxD = DefaultMaxDelay
	}
	return min(time.Duration(secs)*time.Second, maxD)
}

func snippet(b []byte) string {
	s := strings.TrimSpace(strings.ToValidUTF8(string(b[:min(len(b), 200)]), ""))
	return strings.Join(strings.Fields(s), " ")
}

// retryable reports whether a failed attempt is worth another: no answer
// (connection refused or reset, attempt timed out), 429 or a 5xx. Other
// 4xx answers and malformed 200 answers are not: the same request would
// get the same answer.
func retryable(status int, err error) bool {
	if errors.Is(err, errMalformed) {
		return false
	}
	switch {
	case status == 0:
		return true
	case status == http.StatusTooManyRequests, status >= 500:
		return true
	}
	return false
}

// Package config reads the functions' settings from environment variables
// and checks them at start-up, so that a wrong setting stops the function
// with a message that names the variable, not a failure at the first
// request. Every variable is documented in the README and set in
// template.yaml.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/espfleet/crashdumps/shared/crashdump"
	"github.com/espfleet/crashdumps/shared/upload"
)

// Lookup reads one variable, like os.LookupEnv.
type Lookup func(string) (string, bool)

// Reader reads variables through a Lookup and collects every problem, so
// that one start-up reports all of them.
type Reader struct {
	lookup Lookup
	errs   []error
}

// NewReader returns a Reader over lookup.
func NewReader(lookup Lookup) *Reader { return &Reader{lookup: lookup} }

// Err returns every problem found so far, or nil.
func (r *Reader) Err() error {
	if len(r.errs) == 0 {
		return nil
	}
	return fmt.Errorf("configuration: %w", errors.Join(r.errs...))
}

func (r *Reader) get(name string) (string, bool) {
	v, ok := r.lookup(name)
	v = strings.TrimSpace(v)
	return v, ok && v != ""
}

func (r *Reader) fail(name, format string, args ...any) {
	r.errs = append(r.errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
}

// Required returns a variable that must be set.
func (r *Reader) Required(name string) string {
	v, ok := r.get(name)
	if !ok {
		r.fail(name, "is required")
	}
	return v
}

// String returns a variable, or def when it is unset.
func (r *Reader) String(name, def string) string {
	if v, ok := r.get(name); ok {
		return v
	}
	return def
}

// Int returns an integer variable in [lo, hi], or def when it is unset.
func (r *Reader) Int(name string, def, lo, hi int) int {
	v, ok := r.get(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		r.fail(name, "must be a whole number from %d to %d, not %q", lo, hi, v)
		return def
	}
	return n
}

// Duration returns a duration variable in [lo, hi], or def when unset. A
// bare number is read as seconds.
func (r *Reader) Duration(name string, def, lo, hi time.Duration) time.Duration {
	v, ok := r.get(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		n, nerr := strconv.Atoi(v)
		d, err = time.Duration(n)*time.Second, nerr
	}
	if err != nil || d < lo || d > hi {
		r.fail(name, "must be a duration from %s to %s (like 90s), not %q", lo, hi, v)
		return def
	}
	return d
}

// URL returns an http or https URL variable, or "" when it is unset.
func (r *Reader) URL(name string) string {
	v, ok := r.get(name)
	if !ok {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		r.fail(name, "must be an http or https URL, not %q", v)
		return ""
	}
	return strings.TrimRight(v, "/")
}

// Level returns a log level variable (debug, info, warn, error).
func (r *Reader) Level(name string) slog.Level {
	v, ok := r.get(name)
	if !ok {
		return slog.LevelInfo
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(v)); err != nil {
		r.fail(name, "must be debug, info, warn or error, not %q", v)
	}
	return l
}

// Common holds what every function reads.
type Common struct {
	Bucket   string     // COREDUMP_BUCKET
	Table    string     // COREDUMP_TABLE
	LogLevel slog.Level // LOG_LEVEL
	// MaxDumps is MAX_COREDUMPS, dumps kept per device.
	MaxDumps int
	// RetentionDays is MAX_COREDUMP_AGE_DAYS; 0 turns age expiry off.
	RetentionDays int
}

func (r *Reader) common() Common {
	return Common{
		Bucket:        r.Required("COREDUMP_BUCKET"),
		Table:         r.Required("COREDUMP_TABLE"),
		LogLevel:      r.Level("LOG_LEVEL"),
		MaxDumps:      r.Int("MAX_COREDUMPS", 20, 1, 10000),
		RetentionDays: r.Int("MAX_COREDUMP_AGE_DAYS", 90, 0, 36500),
	}
}

// Upload is the upload function's configuration.
type Upload struct {
	Common
	MaxBytes      int64                      // MAX_COREDUMP_BYTES
	MaxPerHour    int                        // MAX_UPLOADS_PER_HOUR
	DeviceClaim   string                     // DEVICE_CLAIM
	ClientID      *crashdump.ClientIDMatcher // DEVICE_CLIENT_ID_PATTERN
	ClientPattern string
}

// LoadUpload reads and checks the upload function's configuration.
func LoadUpload(lookup Lookup) (Upload, error) {
	r := NewReader(lookup)
	c := Upload{
		Common:        r.common(),
		MaxBytes:      int64(r.Int("MAX_COREDUMP_BYTES", 1<<20, 1, 4<<20)),
		MaxPerHour:    r.Int("MAX_UPLOADS_PER_HOUR", 10, 1, 100000),
		DeviceClaim:   r.String("DEVICE_CLAIM", "azp"),
		ClientPattern: r.String("DEVICE_CLIENT_ID_PATTERN", crashdump.DefaultClientIDPattern),
	}
	m, err := crashdump.NewClientIDMatcher(c.ClientPattern)
	if err != nil {
		r.fail("DEVICE_CLIENT_ID_PATTERN", "%v", err)
	}
	c.ClientID = m
	return c, r.Err()
}

// Limits returns the upload rules' bounds.
func (c Upload) Limits() upload.Limits {
	return upload.Limits{
		MaxBytes:     c.MaxBytes,
		MaxPerHour:   c.MaxPerHour,
		MaxPerDevice: c.MaxDumps,
	}
}

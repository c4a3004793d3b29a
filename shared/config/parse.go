package config

import (
	"os"
	"path/filepath"
	"time"

	"github.com/espfleet/crashdumps/shared/parse"
)

// Parse is the parse function's configuration.
type Parse struct {
	Common
	// QueueURL is PARSE_QUEUE_URL, where dumps waiting for firmware are
	// queued again.
	QueueURL string
	// FirmwareBucket is FIRMWARE_BUCKET, by default the dump bucket.
	FirmwareBucket string
	// FirmwareZIPKey is FIRMWARE_ZIP_KEY and FirmwareELFName is
	// FIRMWARE_ELF_NAME, templates over {model} and {version}.
	FirmwareZIPKey  *parse.Template
	FirmwareELFName *parse.Template
	// SidecarURL is PARSE_SIDECAR_URL; empty selects the built-in decoder.
	SidecarURL string
	// SidecarTimeout is PARSE_SIDECAR_TIMEOUT, per attempt.
	SidecarTimeout time.Duration
	// SidecarAttempts is PARSE_SIDECAR_ATTEMPTS.
	SidecarAttempts int
	// ELFCacheDir is ELF_CACHE_DIR and ELFCacheBytes ELF_CACHE_BYTES.
	ELFCacheDir   string
	ELFCacheBytes int64
	// Lease is PARSE_LEASE, the claim length when the invocation has no
	// deadline (in Lambda it runs to the deadline plus a margin).
	Lease time.Duration
	// Workers is PARSE_WORKERS, messages of one batch parsed at once.
	Workers int
}

// LoadParse reads and checks the parse function's configuration.
func LoadParse(lookup Lookup) (Parse, error) {
	r := NewReader(lookup)
	c := Parse{
		Common:          r.common(),
		QueueURL:        r.Required("PARSE_QUEUE_URL"),
		SidecarURL:      r.URL("PARSE_SIDECAR_URL"),
		SidecarTimeout:  r.Duration("PARSE_SIDECAR_TIMEOUT", 120*time.Second, time.Second, 15*time.Minute),
		SidecarAttempts: r.Int("PARSE_SIDECAR_ATTEMPTS", 3, 1, 10),
		ELFCacheDir:     r.String("ELF_CACHE_DIR", filepath.Join(os.TempDir(), "elf-cache")),
		ELFCacheBytes:   int64(r.Int("ELF_CACHE_BYTES", parse.DefaultELFCacheBytes, 1<<20, 10<<30)),
		Lease:           r.Duration("PARSE_LEASE", parse.DefaultLease, 10*time.Second, 12*time.Hour),
		Workers:         r.Int("PARSE_WORKERS", 4, 1, 64),
	}
	c.FirmwareBucket = r.String("FIRMWARE_BUCKET", c.Bucket)
	var err error
	if c.FirmwareZIPKey, err = parse.NewTemplate(r.String("FIRMWARE_ZIP_KEY", parse.DefaultFirmwareZIPKey), true); err != nil {
		r.fail("FIRMWARE_ZIP_KEY", "%v", err)
	}
	if c.FirmwareELFName, err = parse.NewTemplate(r.String("FIRMWARE_ELF_NAME", parse.DefaultFirmwareELFName), false); err != nil {
		r.fail("FIRMWARE_ELF_NAME", "%v", err)
	}
	return c, r.Err()
}

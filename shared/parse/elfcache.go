package parse

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// DefaultELFCacheBytes bounds the ELF cache when no size is configured.
const DefaultELFCacheBytes = 512 << 20

// ELFCache keeps extracted firmware ELFs in a local directory (/tmp in a
// Lambda) across warm invocations. Files are named by cache key; when the
// files together pass MaxBytes, the least recently used go first.
type ELFCache struct {
	Dir      string
	MaxBytes int64

	mu sync.Mutex
}

const elfSuffix = ".elf"

func (c *ELFCache) path(key string) string { return filepath.Join(c.Dir, key+elfSuffix) }

// Lookup returns the cached file of key and its size, and marks it used.
func (c *ELFCache) Lookup(key string) (string, int64, bool) {
	p := c.path(key)
	fi, err := os.Stat(p)
	if err != nil || !fi.Mode().IsRegular() {
		return "", 0, false
	}
	now := time.Now()
	os.Chtimes(p, now, now) // recency for eviction; harmless if it fails
	return p, fi.Size(), true
}

// Store copies r into the cache under key. check sees the byte count and
// CRC-32 (IEEE, as ZIP uses) before the file becomes visible; its error,
// wrapped, is returned and nothing is kept.
func (c *ELFCache) Store(key string, r io.Reader, check func(n int64, crc uint32) error) (string, error) {
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return "", fmt.Errorf("creating ELF cache %s: %w", c.Dir, err)
	}
	tmp, err := os.CreateTemp(c.Dir, key+".*.tmp")
	if err != nil {
		return "", fmt.Errorf("creating cache file: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	h := crc32.NewIEEE()
	n, err := io.Copy(io.MultiWriter(tmp, h), r)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("writing cache file: %w", err)
	}
	if check != nil {
		if err := check(n, h.Sum32()); err != nil {
			return "", &checkError{err}
		}
	}
	p := c.path(key)
	if err := os.Rename(tmp.Name(), p); err != nil {
		return "", fmt.Errorf("keeping cache file: %w", err)
	}
	c.evict(p)
	return p, nil
}

// evict removes the least recently used files, never keep, until the
// cache fits MaxBytes.
func (c *ELFCache) evict(keep string) {
	if c.MaxBytes <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	entries, err := os.ReadDir(c.Dir)
	if err != nil {
		return
	}
	type file struct {
		path string
		size int64
		used time.Time
	}
	var files []file
	var total int64
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), elfSuffix) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		files = append(files, file{filepath.Join(c.Dir, e.Name()), fi.Size(), fi.ModTime()})
		total += fi.Size()
	}
	sort.Slice(files, func(i, j int) bool { return files[i].used.Before(files[j].used) })
	for _, f := range files {
		if total <= c.MaxBytes {
			break
		}
		if f.path == keep {
			continue
		}
		if err := os.Remove(f.path); err == nil || errors.Is(err, os.ErrNotExist) {
			total -= f.size
		}
	}
}

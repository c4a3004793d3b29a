package parse

import (
	"archive/zip"
	"compress/flate"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"strings"
	"sync"

	"github.com/espfleet/crashdumps/shared/crashdump"
)

// Default firmware locations: the ZIP key and the ELF's name inside it.
const (
	DefaultFirmwareZIPKey  = "firmware/{model}/{version}.zip"
	DefaultFirmwareELFName = "{model}.elf"
)

// ErrFirmwareMissing says no firmware ZIP is stored for a model and
// version; the dump waits for it.
var ErrFirmwareMissing = errors.New("firmware missing")

// Template is a key or file name with the placeholders {model} and
// {version}.
type Template struct {
	text string
	re   *regexp.Regexp
}

// NewTemplate checks a template. With needBoth, it must hold both
// placeholders, so that a key names one build and can be read back.
func NewTemplate(text string, needBoth bool) (*Template, error) {
	if text == "" {
		return nil, errors.New("template is empty")
	}
	rest := strings.NewReplacer("{model}", "", "{version}", "").Replace(text)
	if strings.ContainsAny(rest, "{}") {
		return nil, fmt.Errorf("template %q has a placeholder other than {model} and {version}", text)
	}
	if needBoth && (strings.Count(text, "{model}") != 1 || strings.Count(text, "{version}") != 1) {
		return nil, fmt.Errorf("template %q must hold {model} and {version} once each", text)
	}
	var b strings.Builder
	b.WriteString("^")
	for s := text; s != ""; {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			b.WriteString(regexp.QuoteMeta(s))
			break
		}
		b.WriteString(regexp.QuoteMeta(s[:i]))
		switch {
		case strings.HasPrefix(s[i:], "{model}"):
			b.WriteString(`(?P<model>[a-z0-9]{1,32})`)
			s = s[i+len("{model}"):]
		default:
			b.WriteString(`(?P<version>[A-Za-z0-9._+-]{1,64})`)
			s = s[i+len("{version}"):]
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, fmt.Errorf("compiling template %q: %w", text, err)
	}
	return &Template{text: text, re: re}, nil
}

// String returns the template text.
func (t *Template) String() string { return t.text }

// Expand fills the placeholders.
func (t *Template) Expand(model, version string) string {
	return strings.NewReplacer("{model}", model, "{version}", version).Replace(t.text)
}

// Match reads model and version back from a key the template made.
func (t *Template) Match(key string) (model, version string, ok bool) {
	m := t.re.FindStringSubmatch(key)
	if m == nil {
		return "", "", false
	}
	if i := t.re.SubexpIndex("model"); i >= 0 {
		model = m[i]
	}
	if i := t.re.SubexpIndex("version"); i >= 0 {
		version = m[i]
	}
	if crashdump.ValidateModelCode(model) != nil || crashdump.ValidateFirmwareVersion(version) != nil {
		return "", "", false
	}
	return model, version, true
}

// Archive is a stored ZIP read in place: ReadAt fetches byte ranges.
type Archive interface {
	io.ReaderAt
	// Size is the archive's length in bytes.
	Size() int64
	// ETag identifies the stored version of the archive.
	ETag() string
	// ReadRange streams n bytes from off in one request.
	ReadRange(ctx context.Context, off, n int64) (io.ReadCloser, error)
	// Err returns the first transport error of any read, so that a
	// failed read is not mistaken for a corrupt archive.
	Err() error
}

// Archives opens stored firmware ZIPs.
type Archives interface {
	// OpenArchive returns the archive at key, or crashdump.ErrNotFound.
	OpenArchive(ctx context.Context, key string) (Archive, error)
}

// ELF is a firmware ELF extracted to a local file.
type ELF struct {
	// Path is the local file.
	Path string
	// Name is the ELF's name in the archive.
	Name string
	// Size is the ELF's length in bytes.
	Size int64
	// ArchiveKey and ArchiveETag identify the ZIP it came from; the
	// ETag names the firmware build in caches.
	ArchiveKey  string
	ArchiveETag string
}

// CacheKey names the ELF across invocations: the ZIP's ETag and the ELF's
// name, hashed into a safe file name.
func (e *ELF) CacheKey() string { return cacheKey(e.ArchiveETag, e.Name) }

func cacheKey(etag, name string) string {
	h := sha256.Sum256([]byte(strings.Trim(etag, `"`) + "\x00" + name))
	return hex.EncodeToString(h[:16])
}

// Firmware finds the ELF of a model and version: the ZIP at ZIPKey, the
// entry ELFName inside it, extracted once per ZIP version into Cache.
type Firmware struct {
	Archives Archives
	ZIPKey   *Template
	ELFName  *Template
	Cache    *ELFCache

	mu       sync.Mutex
	inflight map[string]*extraction
}

// Exists reports whether the ZIP of model and version is stored.
func (f *Firmware) Exists(ctx context.Context, model, version string) (bool, error) {
	_, err := f.Archives.OpenArchive(ctx, f.ZIPKey.Expand(model, version))
	if errors.Is(err, crashdump.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Find returns the ELF of model and version. A missing ZIP is
// ErrFirmwareMissing; a ZIP that is corrupt or lacks the ELF is an
// *UnparseableError; any other error is a failed read.
func (f *Firmware) Find(ctx context.Context, model, version string) (*ELF, error) {
	key := f.ZIPKey.Expand(model, version)
	arch, err := f.Archives.OpenArchive(ctx, key)
	if errors.Is(err, crashdump.ErrNotFound) {
		return nil, ErrFirmwareMissing
	}
	if err != nil {
		return nil, fmt.Errorf("opening firmware %s: %w", key, err)
	}
	elf := &ELF{Name: f.ELFName.Expand(model, version), ArchiveKey: key, ArchiveETag: arch.ETag()}
	if p, size, ok := f.Cache.Lookup(elf.CacheKey()); ok {
		elf.Path, elf.Size = p, size
		return elf, nil
	}
	// Messages of one batch run at once; the first to miss the cache
	// extracts, the others of the same build wait for it.
	f.mu.Lock()
	if f.inflight == nil {
		f.inflight = map[string]*extraction{}
	}
	if x, ok := f.inflight[elf.CacheKey()]; ok {
		f.mu.Unlock()
		select {
		case <-x.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if x.err != nil {
			return nil, x.err
		}
		elf.Path, elf.Size = x.path, x.size
		return elf, nil
	}
	// Look again: an extraction may have ended since the first look.
	if p, size, ok := f.Cache.Lookup(elf.CacheKey()); ok {
		f.mu.Unlock()
		elf.Path, elf.Size = p, size
		return elf, nil
	}
	x := &extraction{done: make(chan struct{})}
	f.inflight[elf.CacheKey()] = x
	f.mu.Unlock()

	x.err = f.extract(ctx, arch, elf)
	x.path, x.size = elf.Path, elf.Size
	f.mu.Lock()
	delete(f.inflight, elf.CacheKey())
	f.mu.Unlock()
	close(x.done)
	if x.err != nil {
		return nil, x.err
	}
	return elf, nil
}

// extraction is one ELF being extracted, which other callers may wait for.
type extraction struct {
	done chan struct{}
	path string
	size int64
	err  error
}

// extract reads the ZIP's central directory through ranged reads, then
// the ELF's compressed bytes in one request, and decompresses them into
// the cache, checking the size and CRC-32 the directory gives.
func (f *Firmware) extract(ctx context.Context, arch Archive, elf *ELF) error {
	zr, err := zip.NewReader(arch, arch.Size())
	if err != nil {
		if aerr := arch.Err(); aerr != nil {
			return fmt.Errorf("reading firmware %s: %w", elf.ArchiveKey, aerr)
		}
		return Unparseable(MetricFirmwareInvalid, "firmware %s is not a readable ZIP archive (%v)", elf.ArchiveKey, err)
	}
	zf := findEntry(zr, elf.Name)
	if zf == nil {
		return Unparseable(MetricFirmwareInvalid, "firmware %s has no %s", elf.ArchiveKey, elf.Name)
	}
	if zf.Method != zip.Store && zf.Method != zip.Deflate {
		return Unparseable(MetricFirmwareInvalid, "firmware %s: %s uses compression method %d, not stored or deflate",
			elf.ArchiveKey, zf.Name, zf.Method)
	}
	if zf.UncompressedSize64 > uint64(MaxELFSize) {
		return Unparseable(MetricFirmwareInvalid, "firmware %s: %s is %d bytes, over the %d-byte limit",
			elf.ArchiveKey, zf.Name, zf.UncompressedSize64, MaxELFSize)
	}
	off, err := zf.DataOffset()
	if err != nil {
		if aerr := arch.Err(); aerr != nil {
			return fmt.Errorf("reading firmware %s: %w", elf.ArchiveKey, aerr)
		}
		return Unparseable(MetricFirmwareInvalid, "firmware %s: bad local header of %s (%v)", elf.ArchiveKey, zf.Name, err)
	}
	if zf.CompressedSize64 > uint64(arch.Size()-off) {
		return Unparseable(MetricFirmwareInvalid, "firmware %s: %s runs past the end of the archive", elf.ArchiveKey, zf.Name)
	}
	body, err := arch.ReadRange(ctx, off, int64(zf.CompressedSize64))
	if err != nil {
		return fmt.Errorf("reading %s from firmware %s: %w", zf.Name, elf.ArchiveKey, err)
	}
	defer body.Close()
	var r io.Reader = body
	if zf.Method == zip.Deflate {
		fr := flate.NewReader(body)
		defer fr.Close()
		r = fr
	}
	want := int64(zf.UncompressedSize64)
	p, err := f.Cache.Store(elf.CacheKey(), io.LimitReader(r, want+1), func(n int64, sum uint32) error {
		if n != want || sum != zf.CRC32 {
			return fmt.Errorf("%d bytes with CRC-32 %08x, directory says %d bytes, %08x", n, sum, want, zf.CRC32)
		}
		return nil
	})
	if err != nil {
		if aerr := arch.Err(); aerr != nil {
			return fmt.Errorf("reading %s from firmware %s: %w", zf.Name, elf.ArchiveKey, aerr)
		}
		var ce *checkError
		var fe flate.CorruptInputError
		if errors.As(err, &ce) || errors.As(err, &fe) || errors.Is(err, io.ErrUnexpectedEOF) {
			return Unparseable(MetricFirmwareInvalid, "firmware %s: %s is corrupt (%v)", elf.ArchiveKey, zf.Name, err)
		}
		return fmt.Errorf("extracting %s from firmware %s: %w", zf.Name, elf.ArchiveKey, err)
	}
	elf.Path, elf.Size = p, want
	return nil
}

// MaxELFSize bounds the firmware ELF extracted from a ZIP.
const MaxELFSize = 256 << 20

// findEntry returns the entry named name, or else the only entry whose
// base name is name (a ZIP of a build directory), or nil.
func findEntry(zr *zip.Reader, name string) *zip.File {
	var base *zip.File
	n := 0
	for _, f := range zr.File {
		if f.Name == name {
			return f
		}
		if path.Base(f.Name) == name {
			base = f
			n++
		}
	}
	if n == 1 {
		return base
	}
	return nil
}

// checkError is a failed check of an extracted file.
type checkError struct{ err error }

func (e *checkError) Error() string { return e.err.Error() }
func (e *checkError) Unwrap() error { return e.err }

package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/espfleet/crashdumps/shared/crashdump"
	"github.com/espfleet/crashdumps/shared/parse"
)

var _ parse.Archives = (*Archives)(nil)

// DefaultReadAhead is how much a small ReadAt fetches at once. The ZIP
// reader asks for a few KiB at a time; fetching 64 KiB serves the whole
// central directory of a typical firmware ZIP in one request.
const DefaultReadAhead = 64 << 10

// Archives opens objects in one bucket for reading in place, through
// ranged GETs, and counts the body bytes read.
type Archives struct {
	Client *s3.Client
	Bucket string
	// ReadAhead is the least a ReadAt fetches; 0 means DefaultReadAhead.
	ReadAhead int

	bytesRead atomic.Int64
	requests  atomic.Int64
}

// BytesRead is the number of object bytes read so far.
func (a *Archives) BytesRead() int64 { return a.bytesRead.Load() }

// Requests is the number of ranged GETs sent so far.
func (a *Archives) Requests() int64 { return a.requests.Load() }

// OpenArchive reads the size and ETag of the object at key; a missing
// object is crashdump.ErrNotFound.
func (a *Archives) OpenArchive(ctx context.Context, key string) (parse.Archive, error) {
	out, err := a.Client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &a.Bucket, Key: &key})
	if isNotFound(err) {
		return nil, crashdump.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading size of %s: %w", key, err)
	}
	ra := a.ReadAhead
	if ra <= 0 {
		ra = DefaultReadAhead
	}
	return &RangeReader{
		ctx: ctx, a: a, key: key,
		size: aws.ToInt64(out.ContentLength), etag: aws.ToString(out.ETag),
		readAhead: int64(ra),
	}, nil
}

// RangeReader is an io.ReaderAt over one version of an S3 object: every
// read is a ranged GET conditional on the ETag, so a replaced object fails
// the read rather than mixing two versions. It keeps the last fetched
// block, so that the many small reads of a ZIP reader cost one request.
type RangeReader struct {
	ctx       context.Context
	a         *Archives
	key, etag string
	size      int64
	readAhead int64

	mu     sync.Mutex
	buf    []byte
	bufOff int64
	err    error
}

var _ parse.Archive = (*RangeReader)(nil)

// Size is the object's length.
func (r *RangeReader) Size() int64 { return r.size }

// ETag is the object's ETag.
func (r *RangeReader) ETag() string { return r.etag }

// Err returns the first failed request, or nil.
func (r *RangeReader) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

func (r *RangeReader) fail(err error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil {
		r.err = err
	}
	return err
}

// ReadAt implements io.ReaderAt.
func (r *RangeReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("reading %s: negative offset %d", r.key, off)
	}
	if off >= r.size {
		return 0, io.EOF
	}
	want := min(int64(len(p)), r.size-off)
	r.mu.Lock()
	if off >= r.bufOff && off+want <= r.bufOff+int64(len(r.buf)) {
		n := copy(p, r.buf[off-r.bufOff:])
		r.mu.Unlock()
		return r.eof(n, len(p))
	}
	r.mu.Unlock()
	n := max(want, r.readAhead)
	n = min(n, r.size-off)
	body, err := r.ReadRange(r.ctx, off, n)
	if err != nil {
		return 0, err
	}
	defer body.Close()
	block := make([]byte, n)
	if _, err := io.ReadFull(body, block); err != nil {
		return 0, r.fail(fmt.Errorf("reading %s at %d: %w", r.key, off, err))
	}
	r.mu.Lock()
	r.buf, r.bufOff = block, off
	r.mu.Unlock()
	return r.eof(copy(p, block), len(p))
}

func (r *RangeReader) eof(n, want int) (int, error) {
	if n < want {
		return n, io.EOF
	}
	return n, nil
}

// ReadRange streams n bytes from off in one ranged GET.
func (r *RangeReader) ReadRange(ctx context.Context, off, n int64) (io.ReadCloser, error) {
	if n <= 0 {
		return io.NopCloser(&emptyReader{}), nil
	}
	r.a.requests.Add(1)
	out, err := r.a.Client.GetObject(ctx, &s3.GetObjectInput{
		Bucket:  &r.a.Bucket,
		Key:     &r.key,
		Range:   aws.String("bytes=" + strconv.FormatInt(off, 10) + "-" + strconv.FormatInt(off+n-1, 10)),
		IfMatch: nonEmpty(r.etag),
	}, quietChecksums)
	if err != nil {
		return nil, r.fail(fmt.Errorf("reading %s bytes %d+%d: %w", r.key, off, n, err))
	}
	return &countingBody{rc: out.Body, r: r}, nil
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

type emptyReader struct{}

func (*emptyReader) Read([]byte) (int, error) { return 0, io.EOF }

// countingBody counts the bytes read from a GET body and records its
// failures as the reader's transport error.
type countingBody struct {
	rc io.ReadCloser
	r  *RangeReader
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.r.a.bytesRead.Add(int64(n))
	if err != nil && !errors.Is(err, io.EOF) {
		b.r.fail(fmt.Errorf("reading %s: %w", b.r.key, err))
	}
	return n, err
}

func (b *countingBody) Close() error { return b.rc.Close() }

// quietChecksums stops the SDK logging, on every ranged GET, that a part
// of an object has no checksum to validate.
func quietChecksums(o *s3.Options) { o.DisableLogOutputChecksumValidationSkipped = true }

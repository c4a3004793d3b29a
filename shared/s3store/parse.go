package s3store

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/espfleet/crashdumps/shared/crashdump"
	"github.com/espfleet/crashdumps/shared/parse"
)

var _ parse.Objects = (*Objects)(nil)

// PutText stores a parsed report.
func (o *Objects) PutText(ctx context.Context, key, text string) error {
	_, err := o.Client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        &o.Bucket,
		Key:           &key,
		Body:          strings.NewReader(text),
		ContentLength: aws.Int64(int64(len(text))),
		ContentType:   aws.String("text/plain; charset=utf-8"),
	})
	if err != nil {
		return fmt.Errorf("putting %s: %w", key, err)
	}
	return nil
}

// GetBytes reads a whole object of at most max bytes; a missing object is
// crashdump.ErrNotFound.
func (o *Objects) GetBytes(ctx context.Context, key string, max int64) ([]byte, error) {
	out, err := o.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: &o.Bucket, Key: &key}, quietChecksums)
	if isNotFound(err) {
		return nil, fmt.Errorf("getting %s: %w", key, crashdump.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("getting %s: %w", key, err)
	}
	defer out.Body.Close()
	if n := aws.ToInt64(out.ContentLength); n > max {
		return nil, fmt.Errorf("getting %s: %d bytes is over %d", key, n, max)
	}
	b, err := io.ReadAll(io.LimitReader(out.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("getting %s: %w", key, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("getting %s: over %d bytes", key, max)
	}
	return b, nil
}

// PutFile stores a local file at key.
func (o *Objects) PutFile(ctx context.Context, key, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("opening %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("opening %s: %w", path, err)
	}
	_, err = o.Client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        &o.Bucket,
		Key:           &key,
		Body:          f,
		ContentLength: aws.Int64(fi.Size()),
		ContentType:   aws.String("application/octet-stream"),
	})
	if err != nil {
		return fmt.Errorf("putting %s: %w", key, err)
	}
	return nil
}

// MaxPresignTTL is the longest life of a presigned URL this service makes.
const MaxPresignTTL = 15 * time.Minute

// PresignRead returns a URL that reads the object at key for ttl, at most
// MaxPresignTTL.
func (o *Objects) PresignRead(ctx context.Context, key string, ttl time.Duration) (string, error) {
	ttl = min(ttl, MaxPresignTTL)
	req, err := s3.NewPresignClient(o.Client).PresignGetObject(ctx,
		&s3.GetObjectInput{Bucket: &o.Bucket, Key: &key}, s3.WithPresignExpires(ttl))
	if err != nil {
		return "", fmt.Errorf("presigning %s: %w", key, err)
	}
	return req.URL, nil
}

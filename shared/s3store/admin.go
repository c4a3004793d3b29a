package s3store

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/espfleet/crashdumps/shared/admin"
	"github.com/espfleet/crashdumps/shared/crashdump"
)

var _ admin.Objects = (*Objects)(nil)

// PresignGet returns a presigned GET of the object at key, valid for ttl,
// whose response asks the browser to save it as filename. The link is
// signed with the function's own credentials, so it also ends when they
// expire.
func (o *Objects) PresignGet(ctx context.Context, key, filename string, ttl time.Duration) (string, error) {
	req, err := s3.NewPresignClient(o.Client).PresignGetObject(ctx, &s3.GetObjectInput{
		Bucket:                     &o.Bucket,
		Key:                        &key,
		ResponseContentDisposition: aws.String(`attachment; filename="` + filename + `"`),
	}, s3.WithPresignExpires(ttl))
	if err != nil {
		return "", fmt.Errorf("presigning %s: %w", key, err)
	}
	return req.URL, nil
}

// ReadOutput returns at most max bytes of the parsed output at key, or
// crashdump.ErrNotFound when no object is there.
func (o *Objects) ReadOutput(ctx context.Context, key string, max int64) (string, error) {
	out, err := o.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: &o.Bucket, Key: &key})
	if isNotFound(err) {
		return "", crashdump.ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(io.LimitReader(out.Body, max))
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", key, err)
	}
	return string(b), nil
}

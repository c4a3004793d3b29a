// Package s3store keeps dump bytes, parsed outputs and firmware archives in
// S3. It implements the object-storage interfaces of the domain packages.
package s3store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/espfleet/crashdumps/shared/crashdump"
	"github.com/espfleet/crashdumps/shared/upload"
)

var _ upload.Objects = (*Objects)(nil)

// Objects is the S3 adapter for one bucket.
type Objects struct {
	Client *s3.Client
	Bucket string
}

// Object metadata keys written with every dump (as x-amz-meta-*).
const (
	MetaDumpID          = "dump-id"
	MetaDeviceKey       = "device-key"
	MetaModelCode       = "model-code"
	MetaChip            = "chip"
	MetaFirmwareVersion = "firmware-version"
	MetaSHA256          = "sha256"
	MetaUploadedAt      = "uploaded-at"
)

// PutDump stores the dump's bytes with its metadata.
func (o *Objects) PutDump(ctx context.Context, d *crashdump.Dump, body []byte) error {
	_, err := o.Client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        &o.Bucket,
		Key:           aws.String(d.ObjectKey()),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
		ContentType:   aws.String("application/octet-stream"),
		// S3 checks the bytes against the digest the upload computed
		// anyway, so the SDK need not read them for a checksum of its own.
		ChecksumSHA256: checksumSHA256(d.SHA256),
		Metadata: map[string]string{
			MetaDumpID:          d.ID,
			MetaDeviceKey:       d.DeviceKey,
			MetaModelCode:       d.ModelCode,
			MetaChip:            d.Chip,
			MetaFirmwareVersion: d.FirmwareVersion,
			MetaSHA256:          d.SHA256,
			MetaUploadedAt:      d.UploadedAt.UTC().Format(time.RFC3339Nano),
		},
	})
	if err != nil {
		return fmt.Errorf("putting %s: %w", d.ObjectKey(), err)
	}
	return nil
}

// checksumSHA256 turns a hex SHA-256 into the base64 form S3 expects, or
// nil when it is not a digest.
func checksumSHA256(hexDigest string) *string {
	b, err := hex.DecodeString(hexDigest)
	if err != nil || len(b) != sha256.Size {
		return nil
	}
	return aws.String(base64.StdEncoding.EncodeToString(b))
}

// Exists reports whether an object is stored at key.
func (o *Objects) Exists(ctx context.Context, key string) (bool, error) {
	_, err := o.Client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &o.Bucket, Key: &key})
	if isNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("checking %s: %w", key, err)
	}
	return true, nil
}

// maxDeleteObjects is S3's limit of keys in one DeleteObjects request.
const maxDeleteObjects = 1000

// Delete removes the objects in batches of S3's limit; a missing object is
// not an error.
func (o *Objects) Delete(ctx context.Context, keys ...string) error {
	for len(keys) > 0 {
		n := min(len(keys), maxDeleteObjects)
		ids := make([]types.ObjectIdentifier, n)
		for i, k := range keys[:n] {
			ids[i] = types.ObjectIdentifier{Key: aws.String(k)}
		}
		keys = keys[n:]
		out, err := o.Client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: &o.Bucket,
			Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		})
		if err != nil {
			return fmt.Errorf("deleting %d objects: %w", n, err)
		}
		if len(out.Errors) > 0 {
			e := out.Errors[0]
			return fmt.Errorf("deleting %s: %s: %s (and %d more errors)",
				aws.ToString(e.Key), aws.ToString(e.Code), aws.ToString(e.Message),
				len(out.Errors)-1)
		}
	}
	return nil
}

// isNotFound reports whether err says the object or bucket key is absent.
func isNotFound(err error) bool {
	if err == nil {
		return false
	}
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) {
		return true
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NotFound", strconv.Itoa(404):
			return true
		}
	}
	return false
}

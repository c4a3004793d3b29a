package s3store

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/espfleet/crashdumps/shared/crashdump"
	"github.com/espfleet/crashdumps/shared/retention"
)

var _ retention.Objects = (*Objects)(nil)

// DumpObjects lists the objects under the device's dump prefix page by
// page, in key order.
func (o *Objects) DumpObjects(ctx context.Context, deviceKey string, fn func(retention.Object) error) error {
	prefix := crashdump.DumpPrefix + deviceKey + "/"
	p := s3.NewListObjectsV2Paginator(o.Client, &s3.ListObjectsV2Input{
		Bucket: &o.Bucket,
		Prefix: aws.String(prefix),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("listing %s: %w", prefix, err)
		}
		for _, obj := range page.Contents {
			if err := fn(retention.Object{Key: aws.ToString(obj.Key), LastModified: aws.ToTime(obj.LastModified)}); err != nil {
				return err
			}
		}
	}
	return nil
}

// DevicePrefixes lists the device prefixes under the dump prefix with the
// delimiter "/", a page (up to 1,000 devices) at a time, after the device
// key after.
func (o *Objects) DevicePrefixes(ctx context.Context, after string, fn func([]string) error) error {
	in := &s3.ListObjectsV2Input{
		Bucket:    &o.Bucket,
		Prefix:    aws.String(crashdump.DumpPrefix),
		Delimiter: aws.String("/"),
	}
	if after != "" {
		// Every key of the device after sorts below this: device keys
		// are letters and digits, and "0" is the byte after "/", so
		// the next device's keys sort above it.
		in.StartAfter = aws.String(crashdump.DumpPrefix + after + "0")
	}
	p := s3.NewListObjectsV2Paginator(o.Client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("listing %s: %w", crashdump.DumpPrefix, err)
		}
		keys := make([]string, 0, len(page.CommonPrefixes))
		for _, cp := range page.CommonPrefixes {
			dev := strings.TrimSuffix(strings.TrimPrefix(aws.ToString(cp.Prefix), crashdump.DumpPrefix), "/")
			if dev != "" && dev > after {
				keys = append(keys, dev)
			}
		}
		if len(keys) == 0 {
			continue
		}
		if err := fn(keys); err != nil {
			return err
		}
	}
	return nil
}

// Package awsconf loads the AWS SDK configuration the same way in a Lambda,
// in the local stack and in tests: from the environment, with
// AWS_ENDPOINT_URL pointing every client at an emulator when it is set.
package awsconf

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Load returns the SDK configuration from the environment. The SDK itself
// honours AWS_ENDPOINT_URL for every service.
func Load(ctx context.Context, opts ...func(*config.LoadOptions) error) (aws.Config, error) {
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("loading AWS configuration: %w", err)
	}
	return cfg, nil
}

// Emulated reports whether clients talk to an emulator rather than AWS.
func Emulated() bool { return os.Getenv("AWS_ENDPOINT_URL") != "" }

// S3Options returns the S3 client options for this environment: emulators
// are reached by path-style addressing, since a bucket name cannot be a
// subdomain of a loopback address.
func S3Options() func(*s3.Options) {
	path := Emulated()
	return func(o *s3.Options) { o.UsePathStyle = path }
}

// Package awstest gives integration tests an AWS emulator and fresh
// resources in it. A package's TestMain calls Main; each test calls
// Resources for its own bucket, table and queues, so tests do not see each
// other's data.
package awstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go/middleware"

	"github.com/espfleet/crashdumps/shared/awsconf"
	"github.com/espfleet/crashdumps/shared/emulator"
	"github.com/espfleet/crashdumps/shared/provision"
)

// Server is the moto server Main started, or nil when AWS_ENDPOINT_URL
// named an emulator already.
var Server *emulator.Server

// Main starts the emulator (unless AWS_ENDPOINT_URL names one), runs the
// package's tests, stops it and runs the cleanups (such as
// lambdatest.Cleanup) before the process exits.
func Main(m *testing.M, cleanups ...func()) {
	s, stop, err := emulator.Setup(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "awstest:", err)
		os.Exit(1)
	}
	Server = s
	code := m.Run()
	stop()
	for _, c := range cleanups {
		c()
	}
	os.Exit(code)
}

// Config returns the SDK configuration for the emulator.
func Config(t testing.TB) aws.Config {
	t.Helper()
	cfg, err := awsconf.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Resources creates a bucket, table and queues with names unique to this
// test.
func Resources(t testing.TB) provision.Resources {
	t.Helper()
	suffix := Suffix()
	res, err := provision.Create(context.Background(), Config(t), provision.Names{
		Bucket:          "coredumps-" + suffix,
		Table:           "coredumps-" + suffix,
		Queue:           "parse-" + suffix,
		DeadLetterQueue: "parse-dlq-" + suffix,
	})
	if err != nil {
		t.Fatalf("creating resources: %v", err)
	}
	return res
}

// Suffix returns a random lowercase suffix for resource names.
func Suffix() string {
	var b [5]byte
	rand.Read(b[:])
	return strings.ToLower(hex.EncodeToString(b[:]))
}

// CountRequests makes every client built from cfg count the requests it
// sends (each retry counts) and returns the counter.
func CountRequests(cfg *aws.Config) *atomic.Int64 {
	var n atomic.Int64
	cfg.APIOptions = append(cfg.APIOptions, func(st *middleware.Stack) error {
		return st.Finalize.Add(middleware.FinalizeMiddlewareFunc("countRequests",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				n.Add(1)
				return next.HandleFinalize(ctx, in)
			}), middleware.After)
	})
	return &n
}

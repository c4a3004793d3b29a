// Package app assembles each Lambda function from its configuration: the
// clients, adapters, domain services and handler. A function's main calls
// its constructor once, outside the handler, and the local stack calls the
// same constructors, so both run the same code with the same settings.
package app

import (
	"context"
	"io"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/espfleet/crashdumps/shared/awsconf"
	"github.com/espfleet/crashdumps/shared/config"
	"github.com/espfleet/crashdumps/shared/telemetry"
)

// Env is what every function is built from.
type Env struct {
	// Lookup reads configuration, like os.LookupEnv.
	Lookup config.Lookup
	// Out receives log lines and metric records (os.Stdout in Lambda).
	Out io.Writer
	// AWS is the SDK configuration; nil loads it from the environment.
	AWS *aws.Config
}

func (e Env) aws(ctx context.Context) (aws.Config, error) {
	if e.AWS != nil {
		return *e.AWS, nil
	}
	return awsconf.Load(ctx)
}

func (e Env) telemetry(level slog.Level) (*slog.Logger, *telemetry.Metrics) {
	return telemetry.NewLogger(e.Out, level), telemetry.NewMetrics(e.Out)
}

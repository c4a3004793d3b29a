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
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/espfleet/crashdumps/shared/awsconf"
	"github.com/espfleet/crashdumps/shared/config"
	"github.com/espfleet/crashdumps/shared/dynamo"
	"github.com/espfleet/crashdumps/shared/s3store"
	"github.com/espfleet/crashdumps/shared/sqsqueue"
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

func (e Env) telemetry(level slog.Level) (*slog.Logger, *telemetry.Metrics) {
	return telemetry.NewLogger(e.Out, level), telemetry.NewMetrics(e.Out)
}

// adapters are the clients and storage adapters that every function builds
// the same way from the settings they share: one client per service.
type adapters struct {
	aws     aws.Config
	s3      *s3.Client
	store   *dynamo.Store
	objects *s3store.Objects
}

func (e Env) adapters(ctx context.Context, c config.Common) (adapters, error) {
	var a adapters
	if e.AWS != nil {
		a.aws = *e.AWS
	} else {
		cfg, err := awsconf.Load(ctx)
		if err != nil {
			return a, err
		}
		a.aws = cfg
	}
	a.s3 = s3.NewFromConfig(a.aws, awsconf.S3Options())
	a.store = &dynamo.Store{
		Client:        dynamodb.NewFromConfig(a.aws),
		Table:         c.Table,
		RetentionDays: c.RetentionDays,
	}
	a.objects = &s3store.Objects{Client: a.s3, Bucket: c.Bucket}
	return a, nil
}

// queue returns the parse queue's adapter.
func (a adapters) queue(url string) *sqsqueue.Queue {
	return &sqsqueue.Queue{Client: sqs.NewFromConfig(a.aws), URL: url}
}

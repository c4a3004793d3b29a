package app

import (
	"context"
	"net/http"

	"github.com/aws/aws-lambda-go/events"

	"github.com/espfleet/crashdumps/shared/config"
	"github.com/espfleet/crashdumps/shared/crashgroup"
	"github.com/espfleet/crashdumps/shared/parse"
	"github.com/espfleet/crashdumps/shared/parse/builtin"
	"github.com/espfleet/crashdumps/shared/s3store"
	"github.com/espfleet/crashdumps/shared/sidecar"
)

// The S3 adapter is what both parsers read through.
var (
	_ sidecar.Objects = (*s3store.Objects)(nil)
	_ builtin.Dumps   = (*s3store.Objects)(nil)
)

// SQSHandler is the handler of a Lambda fed by an SQS event source with
// ReportBatchItemFailures.
type SQSHandler = func(context.Context, events.SQSEvent) (events.SQSEventResponse, error)

// Parse builds the parse function's SQS handler. The sidecar parses when
// PARSE_SIDECAR_URL is set, the built-in decoder otherwise.
func Parse(ctx context.Context, env Env) (SQSHandler, error) {
	cfg, err := config.LoadParse(env.Lookup)
	if err != nil {
		return nil, err
	}
	a, err := env.adapters(ctx, cfg.Common)
	if err != nil {
		return nil, err
	}
	logger, metrics := env.telemetry(cfg.LogLevel)
	objects := a.objects
	var parser parse.Parser
	if cfg.SidecarURL != "" {
		parser = &sidecar.Parser{
			Client: &sidecar.Client{
				BaseURL:  cfg.SidecarURL,
				HTTP:     &http.Client{},
				Attempts: cfg.SidecarAttempts,
				Timeout:  cfg.SidecarTimeout,
			},
			Objects: objects,
		}
	} else {
		parser = &builtin.Parser{Dumps: objects}
	}
	svc := &parse.Service{
		Store:   a.store,
		Objects: objects,
		Firmware: &parse.Firmware{
			Archives: &s3store.Archives{Client: a.s3, Bucket: cfg.FirmwareBucket},
			ZIPKey:   cfg.FirmwareZIPKey,
			ELFName:  cfg.FirmwareELFName,
			Cache:    &parse.ELFCache{Dir: cfg.ELFCacheDir, MaxBytes: cfg.ELFCacheBytes},
		},
		Parser:  parser,
		Queue:   a.queue(cfg.QueueURL),
		Logger:  logger,
		Metrics: metrics,
		Lease:   cfg.Lease,
		Groups:  &crashgroup.Recorder{Store: a.store},
	}
	h := &parse.Handler{
		Service:        svc,
		DumpBucket:     cfg.Bucket,
		FirmwareBucket: cfg.FirmwareBucket,
		Workers:        cfg.Workers,
	}
	return h.Handle, nil
}

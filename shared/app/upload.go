package app

import (
	"context"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/espfleet/crashdumps/shared/awsconf"
	"github.com/espfleet/crashdumps/shared/config"
	"github.com/espfleet/crashdumps/shared/dynamo"
	"github.com/espfleet/crashdumps/shared/httpapi"
	"github.com/espfleet/crashdumps/shared/s3store"
	"github.com/espfleet/crashdumps/shared/upload"
)

// Upload builds the upload function's HTTP handler.
func Upload(ctx context.Context, env Env) (http.Handler, error) {
	cfg, err := config.LoadUpload(env.Lookup)
	if err != nil {
		return nil, err
	}
	awsCfg, err := env.aws(ctx)
	if err != nil {
		return nil, err
	}
	logger, metrics := env.telemetry(cfg.LogLevel)
	api := &httpapi.API{
		Logger:  logger,
		Metrics: metrics,
		Devices: httpapi.DeviceAuth{Claim: cfg.DeviceClaim, ClientID: cfg.ClientID},
		Upload: &upload.Service{
			Store: &dynamo.Store{
				Client:        dynamodb.NewFromConfig(awsCfg),
				Table:         cfg.Table,
				RetentionDays: cfg.RetentionDays,
			},
			Objects: &s3store.Objects{
				Client: s3.NewFromConfig(awsCfg, awsconf.S3Options()),
				Bucket: cfg.Bucket,
			},
			Limits: cfg.Limits(),
			Logger: logger,
		},
	}
	return api.Handler(), nil
}

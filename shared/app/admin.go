package app

import (
	"context"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/espfleet/crashdumps/shared/admin"
	"github.com/espfleet/crashdumps/shared/awsconf"
	"github.com/espfleet/crashdumps/shared/config"
	"github.com/espfleet/crashdumps/shared/crashgroup"
	"github.com/espfleet/crashdumps/shared/dynamo"
	"github.com/espfleet/crashdumps/shared/httpapi"
	"github.com/espfleet/crashdumps/shared/s3store"
	"github.com/espfleet/crashdumps/shared/sqsqueue"
)

// Admin builds the admin function's HTTP handler.
func Admin(ctx context.Context, env Env) (http.Handler, error) {
	cfg, err := config.LoadAdmin(env.Lookup)
	if err != nil {
		return nil, err
	}
	cursors, err := admin.NewCursors(cfg.CursorSecret)
	if err != nil {
		return nil, err
	}
	awsCfg, err := env.aws(ctx)
	if err != nil {
		return nil, err
	}
	logger, metrics := env.telemetry(cfg.LogLevel)
	store := &dynamo.Store{
		Client:        dynamodb.NewFromConfig(awsCfg),
		Table:         cfg.Table,
		RetentionDays: cfg.RetentionDays,
	}
	api := &httpapi.API{
		Logger:  logger,
		Metrics: metrics,
		Admins:  httpapi.AdminAuth{Scope: cfg.Scope},
		Admin: &admin.Service{
			Store: store,
			Objects: &s3store.Objects{
				Client: s3.NewFromConfig(awsCfg, awsconf.S3Options()),
				Bucket: cfg.Bucket,
			},
			Queue:         &sqsqueue.Queue{Client: sqs.NewFromConfig(awsCfg), URL: cfg.QueueURL},
			Cursors:       cursors,
			RetentionDays: cfg.RetentionDays,
		},
		CrashGroups: &crashgroup.Service{Store: store, Cursors: cursors},
	}
	return api.Handler(), nil
}

// Command upload is the Lambda that takes core dumps from devices through
// API Gateway (HTTP API, JWT authorizer) and stores them.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/espfleet/crashdumps/shared/awsconf"
	"github.com/espfleet/crashdumps/shared/config"
	"github.com/espfleet/crashdumps/shared/dynamo"
	"github.com/espfleet/crashdumps/shared/httpapi"
	"github.com/espfleet/crashdumps/shared/s3store"
	"github.com/espfleet/crashdumps/shared/telemetry"
	"github.com/espfleet/crashdumps/shared/upload"
)

func main() {
	cfg, err := config.LoadUpload(os.LookupEnv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	aws, err := awsconf.Load(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	logger := telemetry.NewLogger(os.Stdout, cfg.LogLevel)
	api := &httpapi.API{
		Logger:  logger,
		Metrics: telemetry.NewMetrics(os.Stdout),
		Devices: httpapi.DeviceAuth{Claim: cfg.DeviceClaim, ClientID: cfg.ClientID},
		Upload: &upload.Service{
			Store:   &dynamo.Store{Client: dynamodb.NewFromConfig(aws), Table: cfg.Table, RetentionDays: cfg.RetentionDays},
			Objects: &s3store.Objects{Client: s3.NewFromConfig(aws, awsconf.S3Options()), Bucket: cfg.Bucket},
			Limits:  cfg.Limits(),
			Logger:  logger,
		},
	}
	lambda.Start(httpapi.Lambda(api.Handler()))
}

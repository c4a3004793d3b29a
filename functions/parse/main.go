// Command parse is the Lambda that parses core dumps: the parse queue (S3
// events for new dumps and firmware ZIPs, and re-parse requests) feeds it
// through an SQS event source with ReportBatchItemFailures.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/espfleet/crashdumps/shared/app"
)

func main() {
	h, err := app.Parse(context.Background(), app.Env{Lookup: os.LookupEnv, Out: os.Stdout})
	if err != nil {
		fmt.Fprintln(os.Stderr, "parse:", err)
		os.Exit(1)
	}
	lambda.Start(h)
}

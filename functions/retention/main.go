// Command retention is the Lambda that keeps stored dumps within their cap
// and age, removes orphans and requeues stuck parses, on the EventBridge
// schedule and on an admin's POST /api/retention.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/espfleet/crashdumps/shared/app"
)

func main() {
	h, err := app.Retention(context.Background(), app.Env{Lookup: os.LookupEnv, Out: os.Stdout})
	if err != nil {
		fmt.Fprintln(os.Stderr, "retention:", err)
		os.Exit(1)
	}
	lambda.Start(h)
}

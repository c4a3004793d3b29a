// Command upload is the Lambda that takes core dumps from devices through
// API Gateway (HTTP API, JWT authorizer) and stores them.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/espfleet/crashdumps/shared/app"
	"github.com/espfleet/crashdumps/shared/httpapi"
)

func main() {
	h, err := app.Upload(context.Background(), app.Env{Lookup: os.LookupEnv, Out: os.Stdout})
	if err != nil {
		fmt.Fprintln(os.Stderr, "upload:", err)
		os.Exit(1)
	}
	lambda.Start(httpapi.Lambda(h))
}

// Command admin is the Lambda behind the admin API (HTTP API, JWT
// authorizer with the admin scope): listing, reading, downloading,
// deleting and re-parsing dumps, and the OpenAPI document.
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
	h, err := app.Admin(context.Background(), app.Env{Lookup: os.LookupEnv, Out: os.Stdout})
	if err != nil {
		fmt.Fprintln(os.Stderr, "admin:", err)
		os.Exit(1)
	}
	lambda.Start(httpapi.Lambda(h))
}

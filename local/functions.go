package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/aws/aws-lambda-go/events"

	"github.com/espfleet/crashdumps/shared/app"
)

// httpFunctions are the functions behind the HTTP API, by CodeUri: the same
// constructors their main packages call.
var httpFunctions = map[string]func(context.Context, app.Env) (http.Handler, error){
	"functions/upload": app.Upload,
	"functions/admin":  app.Admin,
}

// queueFunctions are the functions with an SQS event source, by CodeUri.
var queueFunctions = map[string]func(context.Context, app.Env) (QueueFunction, error){
	"functions/parse": func(ctx context.Context, env app.Env) (QueueFunction, error) {
		h, err := app.Parse(ctx, env)
		return QueueFunction(h), err
	},
}

// rawFunctions take the raw event and tell its kind themselves; the
// gateway hands them the HTTP API event as JSON, as Lambda does.
var rawFunctions = map[string]func(context.Context, app.Env) (app.RetentionHandler, error){
	"functions/retention": app.Retention,
}

// rawHTTP adapts a raw-event function to the gateway.
func rawHTTP(h app.RetentionHandler) HTTPFunction {
	return func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		in, err := json.Marshal(ev)
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		out, err := h(ctx, in)
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		b, err := json.Marshal(out)
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		var resp events.APIGatewayV2HTTPResponse
		if err := json.Unmarshal(b, &resp); err != nil || resp.StatusCode == 0 {
			return resp, fmt.Errorf("the function's answer is no HTTP API response: %s", b)
		}
		return resp, nil
	}
}

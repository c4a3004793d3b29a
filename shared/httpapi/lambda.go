package httpapi

import (
	"context"
	"net/http"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
)

// Lambda serves h as an HTTP API (payload 2.0) Lambda handler. An event the
// proxy cannot turn into a request is answered 400 here instead of failing
// the invocation.
func Lambda(h http.Handler) func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	adapter := httpadapter.NewV2(h)
	return func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		resp, err := adapter.ProxyWithContext(ctx, ev)
		if err != nil {
			// The proxy fails only on events it cannot turn into a
			// request: a body marked base64 that is not, or a
			// method or path that is no valid HTTP.
			return badEvent("the request could not be read; a binary body must be valid base64"), nil
		}
		return resp, nil
	}
}

func badEvent(msg string) events.APIGatewayV2HTTPResponse {
	return events.APIGatewayV2HTTPResponse{
		StatusCode: http.StatusBadRequest,
		Headers:    map[string]string{"Content-Type": "application/json"},
		Body:       `{"code":"invalid","message":"` + msg + `"}`,
	}
}

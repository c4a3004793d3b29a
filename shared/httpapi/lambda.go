package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
)

// Lambda serves h as an HTTP API (payload 2.0) Lambda handler.
//
// The body is decoded here, once, into a buffer of its exact size, and the
// handler reads that buffer in place: the proxy alone would copy a base64
// body twice (to bytes, then decoded), and a handler reading it a third
// time, which puts a 1 MiB dump over 3 MiB of memory. An event whose body
// is not valid base64, or that the proxy cannot turn into a request, is
// answered 400 here instead of failing the invocation.
func Lambda(h http.Handler) func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	adapter := httpadapter.NewV2(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b, ok := r.Context().Value(bodyKey{}).([]byte); ok {
			r.Body = &body{Reader: bytes.NewReader(b), b: b}
			r.ContentLength = int64(len(b))
		}
		h.ServeHTTP(w, r)
	}))
	return func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		var b []byte
		if ev.IsBase64Encoded {
			b = make([]byte, base64.StdEncoding.DecodedLen(len(ev.Body)))
			n, err := base64.StdEncoding.Decode(b, []byte(ev.Body))
			if err != nil {
				return badEvent("the body is marked base64 but is not valid base64"), nil
			}
			b = b[:n]
		} else {
			b = []byte(ev.Body)
		}
		ev.Body, ev.IsBase64Encoded = "", false
		resp, err := adapter.ProxyWithContext(context.WithValue(ctx, bodyKey{}, b), ev)
		if err != nil {
			// The proxy fails only on events it cannot turn into a
			// request: a method or path that is no valid HTTP.
			return badEvent("the request could not be read"), nil
		}
		return resp, nil
	}
}

type bodyKey struct{}

// body is a request body whose bytes a handler may take without copying.
type body struct {
	*bytes.Reader
	b []byte
}

func (*body) Close() error { return nil }

// Bytes returns the whole body.
func (b *body) Bytes() []byte { return b.b }

func badEvent(msg string) events.APIGatewayV2HTTPResponse {
	return events.APIGatewayV2HTTPResponse{
		StatusCode: http.StatusBadRequest,
		Headers:    map[string]string{"Content-Type": "application/json"},
		Body:       `{"code":"invalid","message":"` + msg + `"}`,
	}
}

package app

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	ltypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/espfleet/crashdumps/shared/config"
	"github.com/espfleet/crashdumps/shared/crashdump"
	"github.com/espfleet/crashdumps/shared/httpapi"
	"github.com/espfleet/crashdumps/shared/retention"
)

// RetentionHandler is the retention function's Lambda handler. It takes
// the raw event and tells by its shape what started it: an HTTP API (2.0)
// request, the EventBridge schedule, or a chained invocation.
type RetentionHandler func(ctx context.Context, event json.RawMessage) (any, error)

// Retention builds the retention function's handler.
func Retention(ctx context.Context, env Env) (RetentionHandler, error) {
	cfg, err := config.LoadRetention(env.Lookup)
	if err != nil {
		return nil, err
	}
	a, err := env.adapters(ctx, cfg.Common)
	if err != nil {
		return nil, err
	}
	logger, metrics := env.telemetry(cfg.LogLevel)
	runner := &retention.Runner{
		Sweeper: &retention.Sweeper{
			Store:       a.store,
			Objects:     a.objects,
			Queue:       a.queue(cfg.QueueURL),
			Rules:       cfg.Rules(),
			Logger:      logger,
			Metrics:     metrics,
			Concurrency: cfg.Concurrency,
		},
		Margin:     cfg.Margin,
		HTTPBudget: cfg.HTTPBudget,
		MaxChain:   cfg.MaxChain,
	}
	if cfg.FunctionName != "" && cfg.MaxChain > 0 {
		runner.Chain = &lambdaChainer{client: lambda.NewFromConfig(a.aws), function: cfg.FunctionName}
	}
	api := &httpapi.API{
		Logger:    logger,
		Metrics:   metrics,
		Admins:    httpapi.AdminAuth{Scope: cfg.Scope},
		Retention: runner,
	}
	serveHTTP := httpapi.Lambda(api.Handler())

	return func(ctx context.Context, event json.RawMessage) (any, error) {
		var probe struct {
			Source         string `json:"source"`
			Chain          int    `json:"chain"`
			RequestContext struct {
				HTTP struct {
					Method string `json:"method"`
				} `json:"http"`
			} `json:"requestContext"`
		}
		if err := json.Unmarshal(event, &probe); err != nil {
			logger.ErrorContext(ctx, "unreadable event", "error", err)
			return nil, fmt.Errorf("reading event: %w", err)
		}
		switch {
		case probe.RequestContext.HTTP.Method != "":
			var req events.APIGatewayV2HTTPRequest
			if err := json.Unmarshal(event, &req); err != nil {
				return nil, fmt.Errorf("reading HTTP event: %w", err)
			}
			return serveHTTP(ctx, req)
		case probe.Source == "aws.events":
			return runner.Scheduled(ctx, 0)
		case probe.Source == retention.ContinuationSource:
			return runner.Scheduled(ctx, probe.Chain)
		}
		logger.ErrorContext(ctx, "event of unknown kind", "source", probe.Source)
		return nil, crashdump.Errorf(crashdump.EInvalid,
			"the event is neither an HTTP API request, the schedule nor a chained sweep")
	}, nil
}

// lambdaChainer starts the chained invocation through the Lambda API.
type lambdaChainer struct {
	client   *lambda.Client
	function string
}

var _ retention.Chainer = (*lambdaChainer)(nil)

// Continue invokes the function asynchronously with the continuation.
func (c *lambdaChainer) Continue(ctx context.Context, next retention.Continuation) error {
	payload, err := json.Marshal(next)
	if err != nil {
		return fmt.Errorf("encoding continuation: %w", err)
	}
	_, err = c.client.Invoke(ctx, &lambda.InvokeInput{
		FunctionName:   aws.String(c.function),
		InvocationType: ltypes.InvocationTypeEvent,
		Payload:        payload,
	})
	if err != nil {
		return fmt.Errorf("invoking %s: %w", c.function, err)
	}
	return nil
}

package httpapi_test

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/espfleet/crashdumps/shared/awsconf"
	"github.com/espfleet/crashdumps/shared/awstest"
	"github.com/espfleet/crashdumps/shared/crashdump"
	"github.com/espfleet/crashdumps/shared/dynamo"
	"github.com/espfleet/crashdumps/shared/httpapi"
	"github.com/espfleet/crashdumps/shared/retention"
	"github.com/espfleet/crashdumps/shared/s3store"
	"github.com/espfleet/crashdumps/shared/sqsqueue"
	"github.com/espfleet/crashdumps/shared/telemetry"
)

// retentionEvent returns the fixture event with the body and, unless
// claims is nil, the authorizer's claims and scopes replaced; an empty
// claims map removes the authorizer.
func retentionEvent(t *testing.T, body string, claims map[string]string, scopes []string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	raw, err := os.ReadFile("testdata/retention-event.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	ev.Body = body
	delete(ev.Headers, "content-length")
	switch {
	case claims == nil:
	case len(claims) == 0:
		ev.RequestContext.Authorizer = nil
	default:
		ev.RequestContext.Authorizer.JWT.Claims = claims
		ev.RequestContext.Authorizer.JWT.Scopes = scopes
	}
	return ev
}

func newRetentionAPI(t *testing.T) (func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error), *dynamo.Store, *awstest.Buffer) {
	t.Helper()
	res := awstest.Resources(t)
	cfg := awstest.Config(t)
	logs := &awstest.Buffer{}
	store := &dynamo.Store{Client: dynamodb.NewFromConfig(cfg), Table: res.Table}
	logger := telemetry.NewLogger(logs, nil)
	metrics := telemetry.NewMetrics(logs)
	runner := &retention.Runner{
		Sweeper: &retention.Sweeper{
			Store:   store,
			Objects: &s3store.Objects{Client: s3.NewFromConfig(cfg, awsconf.S3Options()), Bucket: res.Bucket},
			Queue:   &sqsqueue.Queue{Client: sqs.NewFromConfig(cfg), URL: res.QueueURL},
			Rules:   retention.DefaultRules(2, 90),
			Logger:  logger,
			Metrics: metrics,
		},
		HTTPBudget: 25 * time.Second,
	}
	api := &httpapi.API{
		Logger:    logger,
		Metrics:   metrics,
		Admins:    httpapi.AdminAuth{Scope: "coredumps/admin"},
		Retention: runner,
	}
	return httpapi.Lambda(api.Handler()), store, logs
}

func TestAPI_Retention(t *testing.T) {
	h, store, logs := newRetentionAPI(t)
	ctx := context.Background()
	var seeded []crashdump.Dump
	for i := range 4 {
		at := time.Now().Add(-time.Duration(4-i) * time.Hour)
		seeded = append(seeded, crashdump.Dump{
			ID: crashdump.NewID(at), DeviceKey: "abcd1234", ModelCode: "ps1", Chip: "esp32",
			FirmwareVersion: "1.0", UploadedAt: at, ParseStatus: crashdump.StatusParsed,
		})
	}
	if err := store.ImportDumps(ctx, seeded); err != nil {
		t.Fatal(err)
	}
	do := func(t *testing.T, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, map[string]any) {
		t.Helper()
		resp, err := h(ctx, ev)
		if err != nil {
			t.Fatalf("handler returned a Lambda error: %v", err)
		}
		var body map[string]any
		if err := json.Unmarshal([]byte(resp.Body), &body); err != nil {
			t.Fatalf("response body %q is not JSON: %v", resp.Body, err)
		}
		return resp, body
	}

	t.Run("OKDryRun", func(t *testing.T) {
		resp, body := do(t, retentionEvent(t, `{"dry_run":true,"device_key":"abcd1234"}`, nil, nil))
		if got, want := resp.StatusCode, 200; got != want {
			t.Fatalf("status: got %d, want %d (%s)", got, want, resp.Body)
		}
		// Four dumps, none with an object: the records are older than
		// the upload grace period, so all four are orphans.
		for k, want := range map[string]any{"dry_run": true, "complete": true, "devices": 1.0, "dumps_seen": 4.0, "orphan_records": 4.0} {
			if got := body[k]; got != want {
				t.Errorf("%s: got %v, want %v", k, got, want)
			}
		}
		if recs, _ := store.DeviceRecords(ctx, "abcd1234"); len(recs) != 4 {
			t.Errorf("records after a dry run: got %d, want 4", len(recs))
		}
	})
	t.Run("OK", func(t *testing.T) {
		resp, body := do(t, retentionEvent(t, `{"dry_run": false}`, nil, nil))
		if got, want := resp.StatusCode, 200; got != want {
			t.Fatalf("status: got %d, want %d (%s)", got, want, resp.Body)
		}
		if got, want := body["orphan_records"], 4.0; got != want {
			t.Errorf("orphan_records: got %v, want %v", got, want)
		}
		if recs, _ := store.DeviceRecords(ctx, "abcd1234"); len(recs) != 0 {
			t.Errorf("records after the sweep: got %d, want 0", len(recs))
		}
	})

	deviceClaims := map[string]string{"azp": "iotdevice-ps1-abcd1234", "scope": "coredumps/upload"}
	tests := []struct {
		name   string
		ev     events.APIGatewayV2HTTPRequest
		status int
		code   string
	}{
		{"ErrNoToken", retentionEvent(t, `{"dry_run":true}`, map[string]string{}, nil), 401, "unauthorized"},
		{"ErrDeviceToken", retentionEvent(t, `{"dry_run":true}`, deviceClaims, nil), 403, "forbidden"},
		{"ErrEmptyBody", retentionEvent(t, ``, nil, nil), 400, "invalid"},
		{"ErrNoDryRun", retentionEvent(t, `{"device_key":"abcd1234"}`, nil, nil), 400, "invalid"},
		{"ErrNull", retentionEvent(t, `null`, nil, nil), 400, "invalid"},
		{"ErrArray", retentionEvent(t, `[true]`, nil, nil), 400, "invalid"},
		{"ErrNotJSON", retentionEvent(t, `dry_run=true`, nil, nil), 400, "invalid"},
		{"ErrUnknownField", retentionEvent(t, `{"dry_run":true,"force":true}`, nil, nil), 400, "invalid"},
		{"ErrDryRunType", retentionEvent(t, `{"dry_run":"yes"}`, nil, nil), 400, "invalid"},
		{"ErrDeviceKeyType", retentionEvent(t, `{"dry_run":true,"device_key":7}`, nil, nil), 400, "invalid"},
		{"ErrBadDeviceKey", retentionEvent(t, `{"dry_run":true,"device_key":"abc/../x"}`, nil, nil), 400, "invalid"},
		{"ErrEmptyDeviceKey", retentionEvent(t, `{"dry_run":true,"device_key":""}`, nil, nil), 400, "invalid"},
		{"ErrTrailing", retentionEvent(t, `{"dry_run":true} {"dry_run":false}`, nil, nil), 400, "invalid"},
		{"ErrTooLarge", retentionEvent(t, `{"dry_run":true,"device_key":"`+strings.Repeat("a", 5000)+`"}`, nil, nil), 413, "too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := do(t, tt.ev)
			if got, want := resp.StatusCode, tt.status; got != want {
				t.Errorf("status: got %d, want %d (%s)", got, want, resp.Body)
			}
			if got, want := body["code"], tt.code; got != want {
				t.Errorf("code: got %v, want %v", got, want)
			}
			if msg, _ := body["message"].(string); msg == "" || strings.Contains(msg, "json:") {
				t.Errorf("message: got %q, want a safe message", msg)
			}
		})
	}
	if got := logs.String(); !strings.Contains(got, `"Operation":"retention_request"`) || !strings.Contains(got, `"Status":"forbidden"`) {
		t.Errorf("outcomes have no metric:\n%s", got)
	}
}

package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/espfleet/crashdumps/shared/app"
	"github.com/espfleet/crashdumps/shared/awstest"
	"github.com/espfleet/crashdumps/shared/retention"
)

func retentionHandler(t *testing.T, drop string) (app.RetentionHandler, error) {
	t.Helper()
	res := awstest.Resources(t)
	cfg := awstest.Config(t)
	vars := map[string]string{
		"COREDUMP_BUCKET": res.Bucket,
		"COREDUMP_TABLE":  res.Table,
		"PARSE_QUEUE_URL": res.QueueURL,
	}
	delete(vars, drop)
	env := app.Env{
		Lookup: func(k string) (string, bool) { v, ok := vars[k]; return v, ok },
		Out:    &bytes.Buffer{},
		AWS:    &cfg,
	}
	return app.Retention(context.Background(), env)
}

func readFixture(t *testing.T, path string) json.RawMessage {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRetention(t *testing.T) {
	ctx := context.Background()
	h, err := retentionHandler(t, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("OKSchedule", func(t *testing.T) {
		out, err := h(ctx, readFixture(t, "testdata/retention-schedule-event.json"))
		if err != nil {
			t.Fatal(err)
		}
		rep, ok := out.(*retention.Report)
		if !ok || !rep.Complete || rep.DryRun {
			t.Errorf("got %#v, want a complete report", out)
		}
	})
	t.Run("OKChained", func(t *testing.T) {
		out, err := h(ctx, json.RawMessage(`{"source":"crashdumps.retention","chain":2}`))
		if err != nil {
			t.Fatal(err)
		}
		if rep, ok := out.(*retention.Report); !ok || !rep.Complete {
			t.Errorf("got %#v, want a complete report", out)
		}
	})
	t.Run("OKHTTP", func(t *testing.T) {
		ev := readFixture(t, "../httpapi/testdata/retention-event.json")
		out, err := h(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		resp, ok := out.(events.APIGatewayV2HTTPResponse)
		if !ok || resp.StatusCode != 200 || !strings.Contains(resp.Body, `"dry_run":true`) {
			t.Errorf("got %#v, want a 200 with the dry run's report", out)
		}
	})
	t.Run("ErrUnknownEvent", func(t *testing.T) {
		if _, err := h(ctx, json.RawMessage(`{"Records":[]}`)); err == nil {
			t.Errorf("got nil, want an error for an event of unknown kind")
		}
	})
	t.Run("ErrNotJSON", func(t *testing.T) {
		if _, err := h(ctx, json.RawMessage(`"x`)); err == nil {
			t.Errorf("got nil, want an error")
		}
	})
	t.Run("ErrNoQueue", func(t *testing.T) {
		_, err := retentionHandler(t, "PARSE_QUEUE_URL")
		if err == nil || !strings.Contains(err.Error(), "PARSE_QUEUE_URL") {
			t.Errorf("got %v, want an error naming PARSE_QUEUE_URL", err)
		}
	})
}

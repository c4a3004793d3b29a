package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/espfleet/crashdumps/shared/awstest"
	"github.com/espfleet/crashdumps/shared/lambdatest"
)

func TestMain(m *testing.M) { awstest.Main(m, lambdatest.Cleanup) }

// TestBootstrap builds the deployed artifact and invokes it under the
// Runtime Interface Emulator with a real HTTP API event of an admin.
func TestBootstrap(t *testing.T) {
	res := awstest.Resources(t)
	bin := lambdatest.Build(t, ".")
	rie := lambdatest.Start(t, bin, lambdatest.Env(map[string]string{
		"COREDUMP_BUCKET": res.Bucket,
		"COREDUMP_TABLE":  res.Table,
		"PARSE_QUEUE_URL": res.QueueURL,
		"CURSOR_SECRET":   "a cursor secret for tests, 32 bytes or more",
	}))
	event, err := os.ReadFile("testdata/event.json")
	if err != nil {
		t.Fatal(err)
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(rie.Invoke(t, event), &resp); err != nil {
		t.Fatal(err)
	}
	if got, want := resp.StatusCode, 200; got != want {
		t.Fatalf("status: got %d, want %d (%s)", got, want, resp.Body)
	}
	if got, want := resp.Body, `{"items":[]}`+"\n"; got != want {
		t.Errorf("body: got %q, want %q", got, want)
	}
}

// TestBootstrap_BadConfig shows that missing settings stop the function
// at start-up with a message naming each.
func TestBootstrap_BadConfig(t *testing.T) {
	bin := lambdatest.Build(t, ".")
	rie := lambdatest.Start(t, bin, lambdatest.Env(map[string]string{
		"COREDUMP_BUCKET": "b",
		"COREDUMP_TABLE":  "t",
	}))
	resp, err := http.Post(rie.URL, "application/json", bytes.NewReader([]byte(`{}`)))
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Errorf("invoke of a misconfigured function: got 200")
		}
	}
	for _, want := range []string{"CURSOR_SECRET: is required", "PARSE_QUEUE_URL: is required"} {
		rie.WaitForLog(t, want)
	}
}

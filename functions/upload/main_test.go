package main

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/espfleet/crashdumps/shared/awstest"
	"github.com/espfleet/crashdumps/shared/lambdatest"
)

func TestMain(m *testing.M) { awstest.Main(m, lambdatest.Cleanup) }

// TestBootstrap builds the deployed artifact and invokes it under the
// Runtime Interface Emulator with a real HTTP API event.
func TestBootstrap(t *testing.T) {
	res := awstest.Resources(t)
	bin := lambdatest.Build(t, ".")
	rie := lambdatest.Start(t, bin, lambdatest.Env(map[string]string{
		"COREDUMP_BUCKET": res.Bucket,
		"COREDUMP_TABLE":  res.Table,
	}))
	event, err := os.ReadFile("testdata/event.json")
	if err != nil {
		t.Fatal(err)
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(rie.Invoke(t, event), &resp); err != nil {
		t.Fatal(err)
	}
	if got, want := resp.StatusCode, 201; got != want {
		t.Fatalf("status: got %d, want %d (%s)", got, want, resp.Body)
	}
	var body struct {
		ID          string `json:"id"`
		ParseStatus string `json:"parse_status"`
	}
	if err := json.Unmarshal([]byte(resp.Body), &body); err != nil {
		t.Fatal(err)
	}
	if body.ID == "" || body.ParseStatus != "PENDING" {
		t.Errorf("body: got %+v, want an id and PENDING", body)
	}
	// The same bytes again are a duplicate: the function kept its state
	// across warm invocations and its clients work.
	if err := json.Unmarshal(rie.Invoke(t, event), &resp); err != nil {
		t.Fatal(err)
	}
	if got, want := resp.StatusCode, 200; got != want {
		t.Errorf("second invoke status: got %d, want %d (%s)", got, want, resp.Body)
	}
}

// TestBootstrap_BadConfig shows that a missing variable stops the function
// at start-up with a message naming it.
func TestBootstrap_BadConfig(t *testing.T) {
	bin := lambdatest.Build(t, ".")
	rie := lambdatest.Start(t, bin, lambdatest.Env(map[string]string{"MAX_COREDUMPS": "lots"}))
	resp, err := httpPost(rie.URL, []byte(`{}`))
	if err == nil && resp == 200 {
		t.Errorf("invoke of a misconfigured function: got 200")
	}
	for _, want := range []string{"COREDUMP_BUCKET: is required", "MAX_COREDUMPS: must be a whole number"} {
		rie.WaitForLog(t, want)
	}
}

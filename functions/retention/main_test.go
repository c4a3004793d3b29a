package main

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/espfleet/crashdumps/shared/awstest"
	"github.com/espfleet/crashdumps/shared/lambdatest"
)

func TestMain(m *testing.M) { awstest.Main(m, lambdatest.Cleanup) }

// TestBootstrap builds the deployed artifact and invokes it under the
// Runtime Interface Emulator with the schedule's event: an empty table is
// swept completely.
func TestBootstrap(t *testing.T) {
	res := awstest.Resources(t)
	rie := lambdatest.Start(t, lambdatest.Build(t, "."), lambdatest.Env(map[string]string{
		"COREDUMP_BUCKET":          res.Bucket,
		"COREDUMP_TABLE":           res.Table,
		"PARSE_QUEUE_URL":          res.QueueURL,
		"AWS_LAMBDA_FUNCTION_NAME": "crashdumps-retention",
	}))
	event, err := os.ReadFile("testdata/schedule-event.json")
	if err != nil {
		t.Fatal(err)
	}
	out := rie.Invoke(t, event)
	var report map[string]any
	if err := json.Unmarshal(out, &report); err != nil {
		t.Fatalf("answer %s is not JSON: %v", out, err)
	}
	if got, want := report["complete"], true; got != want {
		t.Errorf("complete: got %v, want %v (%s)", got, want, out)
	}
	if got, want := report["dry_run"], false; got != want {
		t.Errorf("dry_run: got %v, want %v", got, want)
	}
}

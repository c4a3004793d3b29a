package httpapi_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/espfleet/crashdumps/shared/app"
	"github.com/espfleet/crashdumps/shared/crashdump"
	"github.com/espfleet/crashdumps/shared/espcore/espsynth"
)

// TestAdmin_ReparseToParsed takes a dump that failed for want of its
// firmware through an admin's re-parse and the real parse function, with
// the built-in decoder, to PARSED.
func TestAdmin_ReparseToParsed(t *testing.T) {
	e := newAdminEnv(t)
	ctx := context.Background()
	const chip = "esp32c3"
	elf, err := espsynth.Firmware(chip)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := espsynth.Dump(chip, elf)
	if err != nil {
		t.Fatal(err)
	}
	d := newDump("abcd1234", time.Now())
	sum := sha256.Sum256(raw)
	d.Chip, d.Size, d.SHA256 = chip, int64(len(raw)), hex.EncodeToString(sum[:])
	d.ParseStatus, d.ParseError = crashdump.StatusError, "Unable to parse coredump: no firmware"
	if err := e.store.PutDumps(ctx, []crashdump.Dump{d}); err != nil {
		t.Fatal(err)
	}
	if err := e.objects.PutDump(ctx, &d, raw); err != nil {
		t.Fatal(err)
	}
	var zipped bytes.Buffer
	zw := zip.NewWriter(&zipped)
	w, _ := zw.Create("ps1.elf")
	w.Write(elf)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s3.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &e.res.Bucket, Key: aws.String("firmware/ps1/1.4.2.zip"), Body: bytes.NewReader(zipped.Bytes()),
	}); err != nil {
		t.Fatal(err)
	}
	e.reparseMessages(t) // the seeding's S3 notifications

	resp, body := e.call(t, "POST", dumpPath(&d, "/reparse"), nil, asAdmin)
	if got, want := resp.StatusCode, 202; got != want {
		t.Fatalf("status: got %d, want %d (%s)", got, want, body)
	}
	msgs := e.reparseMessages(t)
	if len(msgs) != 1 {
		t.Fatalf("queued: got %d re-parse messages, want 1", len(msgs))
	}

	vars := map[string]string{
		"COREDUMP_BUCKET": e.res.Bucket,
		"COREDUMP_TABLE":  e.res.Table,
		"PARSE_QUEUE_URL": e.res.QueueURL,
		"ELF_CACHE_DIR":   t.TempDir(),
	}
	handle, err := app.Parse(ctx, app.Env{
		Lookup: func(k string) (string, bool) { v, ok := vars[k]; return v, ok },
		Out:    e.logs,
		AWS:    &e.cfg,
	})
	if err != nil {
		t.Fatal(err)
	}
	msgBody, _ := json.Marshal(msgs[0])
	out, err := handle(ctx, events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m1", Body: string(msgBody)}}})
	if err != nil || len(out.BatchItemFailures) != 0 {
		t.Fatalf("parse: got %v, %+v, want no failures", err, out.BatchItemFailures)
	}

	resp, body = e.call(t, "GET", dumpPath(&d), nil, asAdmin)
	var got crashdump.Dump
	json.Unmarshal(body, &got)
	if resp.StatusCode != 200 || got.ParseStatus != crashdump.StatusParsed {
		t.Fatalf("got %d %s (%s), want 200 PARSED", resp.StatusCode, got.ParseStatus, got.ParseError)
	}
	if want := espsynth.PanicReason(chip); !strings.Contains(got.Output, want) {
		t.Errorf("output lacks the panic reason %q:\n%s", want, got.Output)
	}
	if got.ParseError != "" {
		t.Errorf("parse_error: got %q, want none", got.ParseError)
	}
}

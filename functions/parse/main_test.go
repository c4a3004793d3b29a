package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/espfleet/crashdumps/shared/awsconf"
	"github.com/espfleet/crashdumps/shared/awstest"
	"github.com/espfleet/crashdumps/shared/crashdump"
	"github.com/espfleet/crashdumps/shared/dynamo"
	"github.com/espfleet/crashdumps/shared/espcore/espsynth"
	"github.com/espfleet/crashdumps/shared/lambdatest"
	"github.com/espfleet/crashdumps/shared/s3store"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// TestBootstrap builds the deployed artifact, runs it under the Runtime
// Interface Emulator, and hands it the SQS batch the emulator's bucket
// notifications put in the parse queue after an upload: the dump ends
// PARSED by the built-in decoder with no other step.
func TestBootstrap(t *testing.T) {
	ctx := context.Background()
	cfg := awstest.Config(t)
	res := awstest.Resources(t)
	s3c := s3.NewFromConfig(cfg, awsconf.S3Options())
	store := &dynamo.Store{Client: dynamodb.NewFromConfig(cfg), Table: res.Table}
	objects := &s3store.Objects{Client: s3c, Bucket: res.Bucket}

	elf, err := espsynth.Firmware("esp32s3")
	if err != nil {
		t.Fatal(err)
	}
	dump, err := espsynth.Dump("esp32s3", elf)
	if err != nil {
		t.Fatal(err)
	}
	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	w, _ := zw.Create("gw2.elf")
	w.Write(elf)
	zw.Close()
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &res.Bucket, Key: aws.String("firmware/gw2/3.1.0.zip"), Body: bytes.NewReader(zbuf.Bytes()),
	}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	d := &crashdump.Dump{ID: crashdump.NewID(now), DeviceKey: "dev9", ModelCode: "gw2", Chip: "esp32s3",
		FirmwareVersion: "3.1.0", Size: int64(len(dump)), SHA256: strconv.FormatInt(now.UnixNano(), 16),
		UploadedAt: now, ParseStatus: crashdump.StatusPending}
	if err := objects.PutDump(ctx, d, dump); err != nil {
		t.Fatal(err)
	}
	if err := store.CreateDump(ctx, d, 100); err != nil {
		t.Fatal(err)
	}

	event := events.SQSEvent{Records: receiveAll(t, sqs.NewFromConfig(cfg), res.QueueURL)}
	event.Records = append(event.Records, events.SQSMessage{MessageId: "junk", Body: "not a message"})
	payload, _ := json.Marshal(event)

	rie := lambdatest.Start(t, lambdatest.Build(t, "."), lambdatest.Env(map[string]string{
		"COREDUMP_BUCKET": res.Bucket,
		"COREDUMP_TABLE":  res.Table,
		"PARSE_QUEUE_URL": res.QueueURL,
		"ELF_CACHE_DIR":   t.TempDir(),
	}))
	var resp events.SQSEventResponse
	if err := json.Unmarshal(rie.Invoke(t, payload), &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.BatchItemFailures) != 0 {
		t.Errorf("got batch item failures %v, want none", resp.BatchItemFailures)
	}
	got, err := store.GetDump(ctx, d.DeviceKey, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ParseStatus != crashdump.StatusParsed || got.Parser != "builtin" || got.Signature == "" {
		t.Errorf("got %s by %q signature %q (%s), want PARSED by builtin with a signature",
			got.ParseStatus, got.Parser, got.Signature, got.ParseError)
	}
}

// receiveAll takes every message in the queue.
func receiveAll(t *testing.T, q *sqs.Client, url string) []events.SQSMessage {
	t.Helper()
	var msgs []events.SQSMessage
	for {
		out, err := q.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: &url, MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			return msgs
		}
		for _, m := range out.Messages {
			msgs = append(msgs, events.SQSMessage{MessageId: aws.ToString(m.MessageId), Body: aws.ToString(m.Body),
				ReceiptHandle: aws.ToString(m.ReceiptHandle), EventSource: "aws:sqs"})
		}
	}
}

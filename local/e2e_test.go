package main

import (
	"archive/zip"
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/espfleet/crashdumps/shared/awsconf"
	"github.com/espfleet/crashdumps/shared/awstest"
	"github.com/espfleet/crashdumps/shared/crashdump"
	"github.com/espfleet/crashdumps/shared/dynamo"
	"github.com/espfleet/crashdumps/shared/espcore/espsynth"
)

// TestStack_UploadToParsed follows a dump through the whole local stack:
// uploaded before its firmware exists it waits; once the firmware ZIP is
// uploaded it is parsed by the built-in decoder with no other step.
func TestStack_UploadToParsed(t *testing.T) {
	key := testKey(t)
	s := startStack(t, key, nil)
	cfg := awstest.Config(t)
	store := &dynamo.Store{Client: dynamodb.NewFromConfig(cfg), Table: s.Resources.Table}
	s3c := s3.NewFromConfig(cfg, awsconf.S3Options())

	elf, err := espsynth.Firmware("esp32c3")
	if err != nil {
		t.Fatal(err)
	}
	dump, err := espsynth.Dump("esp32c3", elf)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := DevToken(key, "iotdevice-ps1-abcd1234", "", time.Hour)
	status, body := post(t, s.URL+"/iot/coredump?chip=esp32c3&firmware_version=2.0.1", tok, dump)
	if status != 201 {
		t.Fatalf("upload: got %d, want 201 (%v)", status, body)
	}
	id := body["id"].(string)
	waitStatus(t, store, id, crashdump.StatusWaitingForFirmware)

	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	w, _ := zw.Create("ps1.elf")
	w.Write(elf)
	zw.Close()
	if _, err := s3c.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: &s.Resources.Bucket, Key: aws.String("firmware/ps1/2.0.1.zip"), Body: bytes.NewReader(zbuf.Bytes()),
	}); err != nil {
		t.Fatal(err)
	}
	d := waitStatus(t, store, id, crashdump.StatusParsed)
	if d.Output == "" && d.OutputKey == "" {
		t.Errorf("parsed dump has no output")
	}
	if d.Parser == "" || d.Signature == "" {
		t.Errorf("parsed dump: parser %q, signature %q; want both set", d.Parser, d.Signature)
	}
}

func waitStatus(t *testing.T, store *dynamo.Store, id string, want crashdump.Status) *crashdump.Dump {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last crashdump.Status
	for time.Now().Before(deadline) {
		d, err := store.GetDump(context.Background(), "abcd1234", id)
		if err == nil {
			last = d.ParseStatus
			if last == want {
				return d
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("dump %s: status %s after 60s, want %s", id, last, want)
	return nil
}

package dynamo_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/espfleet/crashdumps/shared/awstest"
	"github.com/espfleet/crashdumps/shared/crashdump"
	"github.com/espfleet/crashdumps/shared/dynamo"
)

func TestMain(m *testing.M) { awstest.Main(m) }

func newStore(t *testing.T) *dynamo.Store {
	t.Helper()
	res := awstest.Resources(t)
	return &dynamo.Store{Client: dynamodb.NewFromConfig(awstest.Config(t)), Table: res.Table}
}

func putDump(t *testing.T, s *dynamo.Store, now time.Time) *crashdump.Dump {
	t.Helper()
	d := &crashdump.Dump{
		ID: crashdump.NewID(now), DeviceKey: "dev1", ModelCode: "ps1", Chip: "esp32",
		FirmwareVersion: "1.0", Size: 4, SHA256: strconv.FormatInt(now.UnixNano(), 16),
		UploadedAt: now, ParseStatus: crashdump.StatusPending,
	}
	if err := s.CreateDump(context.Background(), d, 100); err != nil {
		t.Fatal(err)
	}
	return d
}

func setParsing(t *testing.T, s *dynamo.Store, d *crashdump.Dump, lease time.Time) {
	t.Helper()
	_, err := s.Client.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName: &s.Table,
		Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: "DEV#" + d.DeviceKey},
			"sk": &types.AttributeValueMemberS{Value: "DUMP#" + d.ID},
		},
		UpdateExpression: aws.String("SET parse_status = :p, lease_until = :l"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":p": &types.AttributeValueMemberS{Value: "PARSING"},
			":l": &types.AttributeValueMemberN{Value: strconv.FormatInt(lease.Unix(), 10)},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestStore_ResetToPending(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	s := newStore(t)
	t.Run("ErrNotFound", func(t *testing.T) {
		_, err := s.ResetToPending(ctx, "dev1", crashdump.NewID(now), now, false)
		if !errors.Is(err, crashdump.ErrNotFound) {
			t.Errorf("got %v, want ErrNotFound", err)
		}
	})
	t.Run("ErrConflict", func(t *testing.T) {
		d := putDump(t, s, now)
		setParsing(t, s, d, now.Add(time.Minute))
		_, err := s.ResetToPending(ctx, "dev1", d.ID, now, false)
		if !errors.Is(err, crashdump.ErrConflict) {
			t.Errorf("got %v, want ErrConflict", err)
		}
	})
	t.Run("OKLeaseExpired", func(t *testing.T) {
		d := putDump(t, s, now.Add(time.Millisecond))
		setParsing(t, s, d, now.Add(-time.Minute))
		got, err := s.ResetToPending(ctx, "dev1", d.ID, now, true)
		if err != nil {
			t.Fatal(err)
		}
		if got.ParseStatus != crashdump.StatusPending || got.Requeues != 1 {
			t.Errorf("got status %s requeues %d, want PENDING 1", got.ParseStatus, got.Requeues)
		}
	})
}

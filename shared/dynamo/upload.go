package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/espfleet/crashdumps/shared/crashdump"
	"github.com/espfleet/crashdumps/shared/upload"
)

var _ upload.Store = (*Store)(nil)

// CreateDump writes the record, the duplicate marker, one count against the
// hourly limit and the device's registry entry in one transaction.
func (s *Store) CreateDump(ctx context.Context, d *crashdump.Dump, limitPerHour int) error {
	rec, err := attributevalue.MarshalMap(toRecord(d, s.RetentionDays))
	if err != nil {
		return fmt.Errorf("encoding record %s: %w", d.ID, err)
	}
	marker := map[string]types.AttributeValue{
		"pk":      str(devicePK(d.DeviceKey)),
		"sk":      str(shaSK(d.SHA256)),
		"dump_id": str(d.ID),
	}
	if v, ok := rec["expires_at"]; ok {
		marker["expires_at"] = v
	}
	hourEnd := d.UploadedAt.Truncate(time.Hour).Add(2 * time.Hour)
	_, err = s.Client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems: []types.TransactWriteItem{
			{Put: &types.Put{
				TableName:           &s.Table,
				Item:                rec,
				ConditionExpression: aws.String("attribute_not_exists(pk)"),
			}},
			{Put: &types.Put{
				TableName:           &s.Table,
				Item:                marker,
				ConditionExpression: aws.String("attribute_not_exists(pk)"),
			}},
			{Update: &types.Update{
				TableName: &s.Table,
				Key: map[string]types.AttributeValue{
					"pk": str(devicePK(d.DeviceKey)),
					"sk": str(rateSK(d.UploadedAt)),
				},
				UpdateExpression:    aws.String("ADD n :one SET expires_at = :exp"),
				ConditionExpression: aws.String("attribute_not_exists(n) OR n < :limit"),
				ExpressionAttributeValues: map[string]types.AttributeValue{
					":one":   num(1),
					":limit": num(int64(limitPerHour)),
					":exp":   num(hourEnd.Unix()),
				},
			}},
			{Update: &types.Update{
				TableName: &s.Table,
				Key: map[string]types.AttributeValue{
					"pk": str(registryPK(d.DeviceKey)),
					"sk": str(d.DeviceKey),
				},
				UpdateExpression: aws.String("SET device_key = :d, model_code = :m, last_upload_at = :t"),
				ExpressionAttributeValues: map[string]types.AttributeValue{
					":d": str(d.DeviceKey),
					":m": str(d.ModelCode),
					":t": str(d.UploadedAt.UTC().Format(time.RFC3339Nano)),
				},
			}},
		},
	})
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) {
		reasons := tce.CancellationReasons
		if failedCondition(reasons, 1) {
			return crashdump.ErrDuplicate
		}
		if failedCondition(reasons, 2) {
			return crashdump.ErrRateLimited
		}
		if failedCondition(reasons, 0) {
			return fmt.Errorf("record %s exists already: %w", d.ID, crashdump.ErrConflict)
		}
	}
	if err != nil {
		return fmt.Errorf("writing record %s: %w", d.ID, err)
	}
	return nil
}

func failedCondition(reasons []types.CancellationReason, i int) bool {
	return i < len(reasons) && aws.ToString(reasons[i].Code) == "ConditionalCheckFailed"
}

// DumpBySHA follows the device's duplicate marker to its dump.
func (s *Store) DumpBySHA(ctx context.Context, deviceKey, sha string) (*crashdump.Dump, error) {
	out, err := s.Client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.Table,
		Key:            key(devicePK(deviceKey), shaSK(sha)),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("reading marker %s: %w", sha, err)
	}
	id, ok := out.Item["dump_id"].(*types.AttributeValueMemberS)
	if !ok {
		return nil, crashdump.ErrNotFound
	}
	return s.GetDump(ctx, deviceKey, id.Value)
}

// GetDump reads one record with a strongly consistent read.
func (s *Store) GetDump(ctx context.Context, deviceKey, id string) (*crashdump.Dump, error) {
	out, err := s.Client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.Table,
		Key:            key(devicePK(deviceKey), dumpSK(id)),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("reading record %s: %w", id, err)
	}
	if out.Item == nil {
		return nil, crashdump.ErrNotFound
	}
	var r record
	if err := attributevalue.UnmarshalMap(out.Item, &r); err != nil {
		return nil, fmt.Errorf("decoding record %s: %w", id, err)
	}
	d := r.dump()
	return &d, nil
}

// DeviceDumps lists the device's dumps, newest first, with the fields that
// removing them needs.
func (s *Store) DeviceDumps(ctx context.Context, deviceKey string) ([]crashdump.Dump, error) {
	return s.deviceDumps(ctx, deviceKey, false, "id, device_key, sha256, output_key, uploaded_at")
}

// deviceDumps reads every dump record of the device, page by page with
// strongly consistent reads, oldest first or newest first, with only the
// projected attributes when projection is not empty.
func (s *Store) deviceDumps(ctx context.Context, deviceKey string, oldestFirst bool, projection string) ([]crashdump.Dump, error) {
	in := &dynamodb.QueryInput{
		TableName:              &s.Table,
		KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :dump)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk":   str(devicePK(deviceKey)),
			":dump": str("DUMP#"),
		},
		ScanIndexForward: aws.Bool(oldestFirst),
		ConsistentRead:   aws.Bool(true),
	}
	if projection != "" {
		in.ProjectionExpression = aws.String(projection)
	}
	var dumps []crashdump.Dump
	p := dynamodb.NewQueryPaginator(s.Client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing dumps of %s: %w", deviceKey, err)
		}
		for _, item := range page.Items {
			var r record
			if err := attributevalue.UnmarshalMap(item, &r); err != nil {
				return nil, fmt.Errorf("decoding record of %s: %w", deviceKey, err)
			}
			dumps = append(dumps, r.dump())
		}
	}
	return dumps, nil
}

// DeleteDumps removes the records and their duplicate markers, in batches
// of DynamoDB's limit of 25 requests, retrying unprocessed items.
func (s *Store) DeleteDumps(ctx context.Context, dumps []crashdump.Dump) error {
	reqs := make([]types.WriteRequest, 0, 2*len(dumps))
	for _, d := range dumps {
		reqs = append(reqs, deleteRequest(devicePK(d.DeviceKey), dumpSK(d.ID)))
		if d.SHA256 != "" {
			reqs = append(reqs, deleteRequest(devicePK(d.DeviceKey), shaSK(d.SHA256)))
		}
	}
	return s.batchWrite(ctx, reqs)
}

// maxBatchWrite is DynamoDB's limit of requests in one BatchWriteItem. The
// emulator does not enforce it; AWS rejects the whole call past it.
const maxBatchWrite = 25

func (s *Store) batchWrite(ctx context.Context, reqs []types.WriteRequest) error {
	for len(reqs) > 0 {
		n := min(len(reqs), maxBatchWrite)
		batch := reqs[:n]
		reqs = reqs[n:]
		for attempt := 0; len(batch) > 0; attempt++ {
			if attempt > 0 {
				if attempt > 8 {
					return fmt.Errorf("batch write: %d requests still unprocessed", len(batch))
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(time.Duration(25<<attempt) * time.Millisecond):
				}
			}
			out, err := s.Client.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{
				RequestItems: map[string][]types.WriteRequest{s.Table: batch},
			})
			if err != nil {
				return fmt.Errorf("batch write of %d requests: %w", len(batch), err)
			}
			batch = out.UnprocessedItems[s.Table]
		}
	}
	return nil
}

func deleteRequest(pk, sk string) types.WriteRequest {
	return types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: key(pk, sk)}}
}

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": str(pk), "sk": str(sk)}
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

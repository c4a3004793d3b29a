package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/espfleet/crashdumps/shared/crashdump"
	"github.com/espfleet/crashdumps/shared/retention"
)

var _ retention.Store = (*Store)(nil)

// The sweep's checkpoint item.
const (
	checkpointPK = "SWEEP"
	checkpointSK = "STATE"
)

// RegistryPage returns up to limit device keys of a registry shard after
// the key after, in key order.
func (s *Store) RegistryPage(ctx context.Context, shard int, after string, limit int) ([]string, bool, error) {
	cond := "pk = :pk"
	values := map[string]types.AttributeValue{":pk": str("DEVICES#" + strconv.Itoa(shard))}
	if after != "" {
		cond += " AND sk > :after"
		values[":after"] = str(after)
	}
	out, err := s.Client.Query(ctx, &dynamodb.QueryInput{
		TableName:                 &s.Table,
		KeyConditionExpression:    aws.String(cond),
		ExpressionAttributeValues: values,
		ProjectionExpression:      aws.String("sk"),
		Limit:                     aws.Int32(int32(limit)),
	})
	if err != nil {
		return nil, false, fmt.Errorf("querying registry shard %d: %w", shard, err)
	}
	keys := make([]string, 0, len(out.Items))
	for _, item := range out.Items {
		if v, ok := item["sk"].(*types.AttributeValueMemberS); ok {
			keys = append(keys, v.Value)
		}
	}
	return keys, len(out.LastEvaluatedKey) > 0, nil
}

// maxBatchGet is DynamoDB's limit of keys in one BatchGetItem.
const maxBatchGet = 100

// Registered reports which devices have a registry entry, reading them in
// batches of DynamoDB's limit and retrying unprocessed keys.
func (s *Store) Registered(ctx context.Context, deviceKeys []string) (map[string]bool, error) {
	found := make(map[string]bool, len(deviceKeys))
	for len(deviceKeys) > 0 {
		n := min(len(deviceKeys), maxBatchGet)
		keys := make([]map[string]types.AttributeValue, n)
		for i, d := range deviceKeys[:n] {
			keys[i] = key(registryPK(d), d)
		}
		deviceKeys = deviceKeys[n:]
		req := map[string]types.KeysAndAttributes{s.Table: {Keys: keys, ProjectionExpression: aws.String("sk")}}
		for attempt := 0; len(req) > 0; attempt++ {
			if attempt > 0 {
				if attempt > 8 {
					return nil, fmt.Errorf("batch get: %d keys still unprocessed", len(req[s.Table].Keys))
				}
				if err := sleep(ctx, time.Duration(25<<attempt)*time.Millisecond); err != nil {
					return nil, err
				}
			}
			out, err := s.Client.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				return nil, fmt.Errorf("reading %d registry entries: %w", n, err)
			}
			for _, item := range out.Responses[s.Table] {
				if v, ok := item["sk"].(*types.AttributeValueMemberS); ok {
					found[v.Value] = true
				}
			}
			req = out.UnprocessedKeys
		}
	}
	return found, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// DeviceRecords returns every dump record of the device, oldest first,
// read page by page with strongly consistent reads.
func (s *Store) DeviceRecords(ctx context.Context, deviceKey string) ([]crashdump.Dump, error) {
	return s.deviceDumps(ctx, deviceKey, true, "")
}

// StuckDumps walks the work index for one status in id order, page by page.
func (s *Store) StuckDumps(ctx context.Context, q retention.StuckQuery, fn func(crashdump.Dump) error) error {
	from, to := q.FromID, q.ToID
	if from == "" {
		from = "0"
	}
	if to == "" {
		to = strings.Repeat("Z", 26)
	}
	in := &dynamodb.QueryInput{
		TableName:              &s.Table,
		IndexName:              aws.String(IndexWork),
		KeyConditionExpression: aws.String("work_pk = :st AND id BETWEEN :from AND :to"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":st":   str(string(q.Status)),
			":from": str(from),
			":to":   str(to),
		},
	}
	var filters []string
	if !q.LeaseBefore.IsZero() {
		filters = append(filters, "(attribute_not_exists(lease_until) OR lease_until < :lease)")
		in.ExpressionAttributeValues[":lease"] = num(q.LeaseBefore.Unix())
	}
	if q.DeviceKey != "" {
		filters = append(filters, "device_key = :dev")
		in.ExpressionAttributeValues[":dev"] = str(q.DeviceKey)
	}
	if len(filters) > 0 {
		in.FilterExpression = aws.String(strings.Join(filters, " AND "))
	}
	if from > to {
		return nil
	}
	p := dynamodb.NewQueryPaginator(s.Client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("querying %s dumps: %w", q.Status, err)
		}
		for _, item := range page.Items {
			var r record
			if err := attributevalue.UnmarshalMap(item, &r); err != nil {
				return fmt.Errorf("decoding %s dump: %w", q.Status, err)
			}
			if err := fn(r.dump()); err != nil {
				return err
			}
		}
	}
	return nil
}

// FailStuck sets the dump ERROR with the reason and takes it out of the
// work index, if it is still as the sweep read it.
func (s *Store) FailStuck(ctx context.Context, d crashdump.Dump, reason string, now time.Time) error {
	cond := "parse_status = :was"
	values := map[string]types.AttributeValue{
		":was":    str(string(d.ParseStatus)),
		":error":  str(string(crashdump.StatusError)),
		":reason": str(reason),
	}
	if d.ParseStatus == crashdump.StatusParsing {
		cond += " AND (attribute_not_exists(lease_until) OR lease_until < :now)"
		values[":now"] = num(now.Unix())
	}
	_, err := s.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           &s.Table,
		Key:                                 key(devicePK(d.DeviceKey), dumpSK(d.ID)),
		UpdateExpression:                    aws.String("SET parse_status = :error, parse_error = :reason REMOVE work_pk, lease_until"),
		ConditionExpression:                 aws.String("attribute_exists(pk) AND " + cond),
		ExpressionAttributeValues:           values,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		if len(ccf.Item) == 0 {
			return crashdump.ErrNotFound
		}
		return crashdump.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("setting %s ERROR: %w", d.ID, err)
	}
	return nil
}

// checkpointItem is the sweep's checkpoint as stored.
type checkpointItem struct {
	PK      string `dynamodbav:"pk"`
	SK      string `dynamodbav:"sk"`
	Phase   string `dynamodbav:"phase"`
	Shard   int    `dynamodbav:"shard"`
	After   string `dynamodbav:"after"`
	SavedAt string `dynamodbav:"saved_at"`
}

// LoadCheckpoint reads the sweep's checkpoint.
func (s *Store) LoadCheckpoint(ctx context.Context) (retention.Checkpoint, bool, error) {
	out, err := s.Client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.Table,
		Key:            key(checkpointPK, checkpointSK),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return retention.Checkpoint{}, false, fmt.Errorf("reading checkpoint: %w", err)
	}
	if out.Item == nil {
		return retention.Checkpoint{}, false, nil
	}
	var it checkpointItem
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return retention.Checkpoint{}, false, fmt.Errorf("decoding checkpoint: %w", err)
	}
	return retention.Checkpoint{Phase: it.Phase, Shard: it.Shard, After: it.After}, true, nil
}

// SaveCheckpoint writes the sweep's checkpoint.
func (s *Store) SaveCheckpoint(ctx context.Context, cp retention.Checkpoint) error {
	item, err := attributevalue.MarshalMap(checkpointItem{
		PK: checkpointPK, SK: checkpointSK,
		Phase: cp.Phase, Shard: cp.Shard, After: cp.After,
		SavedAt: time.Now().UTC().Format(time.RFC3339),
	})
	if err != nil {
		return fmt.Errorf("encoding checkpoint: %w", err)
	}
	if _, err := s.Client.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.Table, Item: item}); err != nil {
		return fmt.Errorf("writing checkpoint: %w", err)
	}
	return nil
}

// ClearCheckpoint deletes the sweep's checkpoint.
func (s *Store) ClearCheckpoint(ctx context.Context) error {
	_, err := s.Client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: &s.Table,
		Key:       key(checkpointPK, checkpointSK),
	})
	if err != nil {
		return fmt.Errorf("deleting checkpoint: %w", err)
	}
	return nil
}

// ImportDumps writes dump records as they are, with their duplicate markers
// and registry entries, in batches of 25 and without conditions or rate
// counts. It is for restoring records and for seeding test data; uploads go
// through CreateDump.
func (s *Store) ImportDumps(ctx context.Context, dumps []crashdump.Dump) error {
	reqs := make([]types.WriteRequest, 0, 3*len(dumps))
	devices := map[string]string{}
	for i := range dumps {
		d := &dumps[i]
		rec, err := attributevalue.MarshalMap(toRecord(d, s.RetentionDays))
		if err != nil {
			return fmt.Errorf("encoding record %s: %w", d.ID, err)
		}
		reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: rec}})
		if d.SHA256 != "" {
			reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: map[string]types.AttributeValue{
				"pk": str(devicePK(d.DeviceKey)), "sk": str(shaSK(d.SHA256)), "dump_id": str(d.ID),
			}}})
		}
		devices[d.DeviceKey] = d.ModelCode
	}
	for dev, model := range devices {
		reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: map[string]types.AttributeValue{
			"pk": str(registryPK(dev)), "sk": str(dev), "device_key": str(dev), "model_code": str(model),
		}}})
	}
	return s.batchWrite(ctx, reqs)
}

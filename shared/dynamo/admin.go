package dynamo

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/espfleet/crashdumps/shared/admin"
	"github.com/espfleet/crashdumps/shared/crashdump"
)

var _ admin.Store = (*Store)(nil)

// summaryAttrs are the attributes a listing reads: all of a dump but its
// parsed output, which may be hundreds of kilobytes.
var summaryAttrs = []string{
	"pk", "sk", "id", "device_key", "model_code", "chip", "firmware_version",
	"size", "sha256", "uploaded_at", "parse_status", "parse_attempts",
	"requeues", "parsed_at", "parser", "parse_duration_ms", "parse_error",
	"output_key", "crash_signature", "top_frame",
}

// Bounds of sort keys: every id sorts between them.
const (
	idFloor   = "0"
	idCeiling = "~"
)

// ListDevice queries the device's partition, newest first.
func (s *Store) ListDevice(ctx context.Context, deviceKey string, r admin.Range, f admin.Filter, limit int) ([]crashdump.Dump, error) {
	lo, hi := bounds(r)
	return s.collect(ctx, &dynamodb.QueryInput{
		TableName:              &s.Table,
		KeyConditionExpression: aws.String("pk = :pk AND sk BETWEEN :lo AND :hi"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": str(devicePK(deviceKey)),
			":lo": str(dumpSK(lo)),
			":hi": str(dumpSK(hi)),
		},
		ConsistentRead: aws.Bool(true),
	}, r, f, limit)
}

// QueryFleet queries one day×shard partition of the fleet index.
func (s *Store) QueryFleet(ctx context.Context, day time.Time, shard int, r admin.Range, f admin.Filter, limit int) ([]crashdump.Dump, error) {
	return s.queryIndex(ctx, IndexFleet, "fleet_pk", fleetPartition(day, shard), r, f, limit)
}

// QueryFirmware queries the firmware index partition of one build.
func (s *Store) QueryFirmware(ctx context.Context, model, version string, r admin.Range, f admin.Filter, limit int) ([]crashdump.Dump, error) {
	return s.queryIndex(ctx, IndexFirmware, "firmware_pk", FirmwarePK(model, version), r, f, limit)
}

// fleetPartition is the fleet index partition of one UTC day and shard,
// as FleetPK names it for a dump.
func fleetPartition(day time.Time, shard int) string {
	return day.UTC().Format("2006-01-02") + "#" + strconv.Itoa(shard)
}

func (s *Store) queryIndex(ctx context.Context, index, attr, partition string, r admin.Range, f admin.Filter, limit int) ([]crashdump.Dump, error) {
	lo, hi := bounds(r)
	return s.collect(ctx, &dynamodb.QueryInput{
		TableName:              &s.Table,
		IndexName:              aws.String(index),
		KeyConditionExpression: aws.String(attr + " = :p AND id BETWEEN :lo AND :hi"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":p":  str(partition),
			":lo": str(lo),
			":hi": str(hi),
		},
	}, r, f, limit)
}

// bounds turns a half-open range into the inclusive bounds of BETWEEN;
// collect drops the id equal to Hi.
func bounds(r admin.Range) (lo, hi string) {
	lo, hi = r.Lo, r.Hi
	if lo == "" {
		lo = idFloor
	}
	if hi == "" {
		hi = idCeiling
	}
	return lo, hi
}

// collect runs a query newest first, page after page, until it has limit
// dumps that match f or the partition ends.
func (s *Store) collect(ctx context.Context, in *dynamodb.QueryInput, r admin.Range, f admin.Filter, limit int) ([]crashdump.Dump, error) {
	in.ScanIndexForward = aws.Bool(false)
	names := map[string]string{}
	proj := make([]string, len(summaryAttrs))
	for i, a := range summaryAttrs {
		names["#"+a] = a
		proj[i] = "#" + a
	}
	in.ProjectionExpression = aws.String(strings.Join(proj, ", "))
	in.ExpressionAttributeNames = names
	var conds []string
	eq := func(attr, value string) {
		if value != "" {
			conds = append(conds, "#"+attr+" = :"+attr)
			in.ExpressionAttributeValues[":"+attr] = str(value)
		}
	}
	eq("parse_status", string(f.Status))
	eq("chip", f.Chip)
	eq("firmware_version", f.FirmwareVersion)
	eq("model_code", f.Model)
	if len(conds) > 0 {
		in.FilterExpression = aws.String(strings.Join(conds, " AND "))
	}
	return queryUpTo(ctx, s.Client, in, limit, func(item map[string]types.AttributeValue) (crashdump.Dump, bool, error) {
		var rec record
		if err := attributevalue.UnmarshalMap(item, &rec); err != nil {
			return crashdump.Dump{}, false, fmt.Errorf("decoding record: %w", err)
		}
		// The range's upper bound is exclusive.
		return rec.dump(), r.Hi == "" || rec.ID < r.Hi, nil
	})
}

// DeleteDeviceRest removes every item of the device's partition that is
// not a dump record (rate counters, duplicate markers) and the device's
// registry entry. A dump uploaded while its device is being deleted keeps
// its record and bytes.
func (s *Store) DeleteDeviceRest(ctx context.Context, deviceKey string) error {
	var reqs []types.WriteRequest
	p := dynamodb.NewQueryPaginator(s.Client, &dynamodb.QueryInput{
		TableName:                 &s.Table,
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(devicePK(deviceKey))},
		ProjectionExpression:      aws.String("pk, sk"),
		ConsistentRead:            aws.Bool(true),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("listing items of %s: %w", deviceKey, err)
		}
		for _, item := range page.Items {
			sk, _ := item["sk"].(*types.AttributeValueMemberS)
			if sk == nil || strings.HasPrefix(sk.Value, dumpSK("")) {
				continue
			}
			reqs = append(reqs, deleteRequest(devicePK(deviceKey), sk.Value))
		}
	}
	reqs = append(reqs, deleteRequest(registryPK(deviceKey), deviceKey))
	return s.batchWrite(ctx, reqs)
}

// PutDumps writes dump records, their duplicate markers and their devices'
// registry entries in batches, without the upload's checks or limits. It
// is for restoring records and for seeding tests and benchmarks.
func (s *Store) PutDumps(ctx context.Context, dumps []crashdump.Dump) error {
	reqs := make([]types.WriteRequest, 0, 2*len(dumps))
	last := map[string]crashdump.Dump{}
	for i := range dumps {
		d := &dumps[i]
		rec, err := attributevalue.MarshalMap(toRecord(d, s.RetentionDays))
		if err != nil {
			return fmt.Errorf("encoding record %s: %w", d.ID, err)
		}
		reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: rec}})
		if d.SHA256 != "" {
			reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: map[string]types.AttributeValue{
				"pk":      str(devicePK(d.DeviceKey)),
				"sk":      str(shaSK(d.SHA256)),
				"dump_id": str(d.ID),
			}}})
		}
		if l, ok := last[d.DeviceKey]; !ok || d.UploadedAt.After(l.UploadedAt) {
			last[d.DeviceKey] = *d
		}
	}
	for key, d := range last {
		reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: map[string]types.AttributeValue{
			"pk":             str(registryPK(key)),
			"sk":             str(key),
			"device_key":     str(key),
			"model_code":     str(d.ModelCode),
			"last_upload_at": str(d.UploadedAt.UTC().Format(time.RFC3339Nano)),
		}}})
	}
	return s.batchWrite(ctx, reqs)
}

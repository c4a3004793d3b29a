package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/espfleet/crashdumps/shared/crashdump"
	"github.com/espfleet/crashdumps/shared/parse"
)

var _ parse.Store = (*Store)(nil)

// ClaimParse takes a PENDING dump, or a PARSING one whose lease ended
// before now, with a lease to leaseUntil. On a conflict it returns the
// dump as it stands, with crashdump.ErrConflict.
func (s *Store) ClaimParse(ctx context.Context, deviceKey, id string, now, leaseUntil time.Time) (*crashdump.Dump, error) {
	out, err := s.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:        &s.Table,
		Key:              key(devicePK(deviceKey), dumpSK(id)),
		UpdateExpression: aws.String("SET parse_status = :parsing, work_pk = :parsing, lease_until = :lease ADD parse_attempts :one"),
		ConditionExpression: aws.String("attribute_exists(pk) AND (parse_status = :pending OR " +
			"(parse_status = :parsing AND (attribute_not_exists(lease_until) OR lease_until < :now)))"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":parsing": str(string(crashdump.StatusParsing)),
			":pending": str(string(crashdump.StatusPending)),
			":lease":   num(leaseUntil.Unix()),
			":now":     num(now.Unix()),
			":one":     num(1),
		},
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		if len(ccf.Item) == 0 {
			return nil, crashdump.ErrNotFound
		}
		d, derr := decodeDump(ccf.Item, id)
		if derr != nil {
			return nil, crashdump.ErrConflict
		}
		return d, crashdump.ErrConflict
	}
	if err != nil {
		return nil, fmt.Errorf("claiming %s: %w", id, err)
	}
	return decodeDump(out.Attributes, id)
}

func decodeDump(item map[string]types.AttributeValue, id string) (*crashdump.Dump, error) {
	var r record
	if err := attributevalue.UnmarshalMap(item, &r); err != nil {
		return nil, fmt.Errorf("decoding record %s: %w", id, err)
	}
	d := r.dump()
	return &d, nil
}

// leaseCondition holds while the claim with lease :lease is still the
// dump's.
const leaseCondition = "parse_status = :parsing AND lease_until = :lease"

// FinishParse records a PARSED or ERROR outcome and ends the claim.
func (s *Store) FinishParse(ctx context.Context, d *crashdump.Dump, lease time.Time) error {
	if d.ParseStatus != crashdump.StatusParsed && d.ParseStatus != crashdump.StatusError {
		return fmt.Errorf("finishing %s: status %s is not an outcome", d.ID, d.ParseStatus)
	}
	// Every attribute goes by a placeholder: "output" is a reserved word.
	names := map[string]string{}
	values := map[string]types.AttributeValue{
		":parsing": str(string(crashdump.StatusParsing)),
		":lease":   num(lease.Unix()),
	}
	var set, remove []string
	put := func(name string, v types.AttributeValue) {
		names["#"+name] = name
		values[":"+name] = v
		set = append(set, "#"+name+" = :"+name)
	}
	drop := func(name string) {
		names["#"+name] = name
		remove = append(remove, "#"+name)
	}
	opt := func(name, v string) {
		if v == "" {
			drop(name)
		} else {
			put(name, str(v))
		}
	}
	put("parse_status", str(string(d.ParseStatus)))
	put("parser", str(d.Parser))
	put("parsed_at", str(d.ParsedAt.UTC().Format(time.RFC3339Nano)))
	put("parse_duration_ms", num(d.DurationMS))
	drop("work_pk")
	drop("lease_until")
	if d.ParseStatus == crashdump.StatusParsed {
		drop("parse_error")
		opt("output", d.Output)
		opt("output_key", d.OutputKey)
		opt("crash_signature", d.Signature)
		opt("top_frame", d.TopFrame)
	} else {
		put("parse_error", str(d.ParseError))
		drop("output")
		drop("output_key")
		drop("crash_signature")
		drop("top_frame")
	}
	names["#parse_status"] = "parse_status"
	names["#lease_until"] = "lease_until"
	_, err := s.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.Table,
		Key:                       key(devicePK(d.DeviceKey), dumpSK(d.ID)),
		UpdateExpression:          aws.String("SET " + strings.Join(set, ", ") + " REMOVE " + strings.Join(remove, ", ")),
		ConditionExpression:       aws.String("#parse_status = :parsing AND #lease_until = :lease"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return crashdump.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("finishing %s: %w", d.ID, err)
	}
	return nil
}

// ReleaseParse ends a claim without an outcome: back to PENDING, or on to
// WAITING_FOR_FIRMWARE. The work index entry stays, with the new status.
func (s *Store) ReleaseParse(ctx context.Context, deviceKey, id string, lease time.Time, to crashdump.Status) error {
	if to != crashdump.StatusPending && to != crashdump.StatusWaitingForFirmware {
		return fmt.Errorf("releasing %s: cannot release to %s", id, to)
	}
	_, err := s.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           &s.Table,
		Key:                 key(devicePK(deviceKey), dumpSK(id)),
		UpdateExpression:    aws.String("SET parse_status = :to, work_pk = :to REMOVE lease_until"),
		ConditionExpression: aws.String(leaseCondition),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":to":      str(string(to)),
			":parsing": str(string(crashdump.StatusParsing)),
			":lease":   num(lease.Unix()),
		},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return crashdump.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("releasing %s: %w", id, err)
	}
	return nil
}

// WaitingForFirmware queries the firmware index for the dumps of model
// and version that wait for their firmware.
func (s *Store) WaitingForFirmware(ctx context.Context, model, version string) ([]crashdump.Dump, error) {
	var dumps []crashdump.Dump
	p := dynamodb.NewQueryPaginator(s.Client, &dynamodb.QueryInput{
		TableName:              &s.Table,
		IndexName:              aws.String(IndexFirmware),
		KeyConditionExpression: aws.String("firmware_pk = :fw"),
		FilterExpression:       aws.String("parse_status = :waiting"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":fw":      str(FirmwarePK(model, version)),
			":waiting": str(string(crashdump.StatusWaitingForFirmware)),
		},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing dumps waiting for %s %s: %w", model, version, err)
		}
		for _, item := range page.Items {
			d, err := decodeDump(item, "")
			if err != nil {
				return nil, err
			}
			dumps = append(dumps, *d)
		}
	}
	return dumps, nil
}

// WakeWaiting moves a dump from WAITING_FOR_FIRMWARE to PENDING.
func (s *Store) WakeWaiting(ctx context.Context, deviceKey, id string) error {
	_, err := s.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           &s.Table,
		Key:                 key(devicePK(deviceKey), dumpSK(id)),
		UpdateExpression:    aws.String("SET parse_status = :pending, work_pk = :pending"),
		ConditionExpression: aws.String("parse_status = :waiting"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pending": str(string(crashdump.StatusPending)),
			":waiting": str(string(crashdump.StatusWaitingForFirmware)),
		},
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return crashdump.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("waking %s: %w", id, err)
	}
	return nil
}

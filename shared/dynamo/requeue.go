package dynamo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/espfleet/crashdumps/shared/crashdump"
	"github.com/espfleet/crashdumps/shared/parse"
)

var _ parse.ResetStore = (*Store)(nil)

// ResetToPending sets a dump PENDING unless a parse holds a lease past now.
func (s *Store) ResetToPending(ctx context.Context, deviceKey, id string, now time.Time, countRequeue bool) (*crashdump.Dump, error) {
	update := "SET parse_status = :pending, work_pk = :pending REMOVE lease_until, parse_error"
	values := map[string]types.AttributeValue{
		":pending": str(string(crashdump.StatusPending)),
		":parsing": str(string(crashdump.StatusParsing)),
		":now":     num(now.Unix()),
	}
	if countRequeue {
		update = "SET parse_status = :pending, work_pk = :pending ADD requeues :one REMOVE lease_until, parse_error"
		values[":one"] = num(1)
	}
	out, err := s.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           &s.Table,
		Key:                                 key(devicePK(deviceKey), dumpSK(id)),
		UpdateExpression:                    aws.String(update),
		ConditionExpression:                 aws.String("attribute_exists(pk) AND (parse_status <> :parsing OR attribute_not_exists(lease_until) OR lease_until < :now)"),
		ExpressionAttributeValues:           values,
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		if len(ccf.Item) == 0 {
			return nil, crashdump.ErrNotFound
		}
		return nil, crashdump.ErrConflict
	}
	if err != nil {
		return nil, fmt.Errorf("resetting %s: %w", id, err)
	}
	var r record
	if err := attributevalue.UnmarshalMap(out.Attributes, &r); err != nil {
		return nil, fmt.Errorf("decoding record %s: %w", id, err)
	}
	d := r.dump()
	return &d, nil
}

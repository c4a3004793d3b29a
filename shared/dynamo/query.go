package dynamo

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// queryUpTo runs in page after page and keeps the items decode accepts,
// until it has limit of them or the partition ends. It sets the page
// size: one more than wanted, since the item at an exclusive upper bound
// may come back first, and four times that (at most 1,000) under a filter
// expression, since DynamoDB counts the items it evaluates, not the ones
// that pass.
func queryUpTo[T any](ctx context.Context, c *dynamodb.Client, in *dynamodb.QueryInput, limit int,
	decode func(map[string]types.AttributeValue) (T, bool, error)) ([]T, error) {
	page := limit + 1
	if in.FilterExpression != nil {
		page = min(4*page, 1000)
	}
	in.Limit = aws.Int32(int32(page))
	var out []T
	for {
		res, err := c.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("querying: %w", err)
		}
		for _, item := range res.Items {
			v, keep, err := decode(item)
			if err != nil {
				return nil, err
			}
			if !keep {
				continue
			}
			out = append(out, v)
			if len(out) == limit {
				return out, nil
			}
		}
		if len(res.LastEvaluatedKey) == 0 {
			return out, nil
		}
		in.ExclusiveStartKey = res.LastEvaluatedKey
	}
}

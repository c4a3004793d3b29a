// Package sqsqueue sends parse requests to the parse queue in SQS.
package sqsqueue

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/espfleet/crashdumps/shared/parse"
)

var _ parse.Queue = (*Queue)(nil)

// Queue is the SQS adapter for the parse queue.
type Queue struct {
	Client *sqs.Client
	URL    string
}

// maxBatch is SQS's limit of messages in one SendMessageBatch.
const maxBatch = 10

// SendParse sends the messages in batches of SQS's limit.
func (q *Queue) SendParse(ctx context.Context, msgs ...parse.Message) error {
	for len(msgs) > 0 {
		n := min(len(msgs), maxBatch)
		entries := make([]types.SendMessageBatchRequestEntry, n)
		for i, m := range msgs[:n] {
			body, err := json.Marshal(m)
			if err != nil {
				return fmt.Errorf("encoding parse request %s: %w", m.ID, err)
			}
			entries[i] = types.SendMessageBatchRequestEntry{
				Id:          aws.String(strconv.Itoa(i)),
				MessageBody: aws.String(string(body)),
			}
		}
		msgs = msgs[n:]
		out, err := q.Client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: &q.URL, Entries: entries})
		if err != nil {
			return fmt.Errorf("sending %d parse requests: %w", n, err)
		}
		if len(out.Failed) > 0 {
			f := out.Failed[0]
			return fmt.Errorf("sending parse requests: %d failed, first: %s %s",
				len(out.Failed), aws.ToString(f.Code), aws.ToString(f.Message))
		}
	}
	return nil
}

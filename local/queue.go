package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// QueueFunction is a function with an SQS event source.
type QueueFunction func(context.Context, events.SQSEvent) (events.SQSEventResponse, error)

// Poller stands in for Lambda's SQS event source mapping with
// ReportBatchItemFailures: it receives batches, invokes the function and
// deletes the messages the function did not report as failed. Failed ones
// come back after the visibility timeout, and the queue's redrive policy
// moves them to the dead-letter queue in the end, as in AWS.
type Poller struct {
	Client   *sqs.Client
	QueueURL string
	QueueARN string
	Function string
	Invoke   QueueFunction
	Logger   *slog.Logger
	Timeout  time.Duration
}

// Run polls until ctx ends.
func (p *Poller) Run(ctx context.Context) {
	for ctx.Err() == nil {
		out, err := p.Client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    &p.QueueURL,
			MaxNumberOfMessages:         10,
			WaitTimeSeconds:             1,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		})
		if err != nil {
			if ctx.Err() == nil {
				p.Logger.Warn("receiving from queue failed; will retry", "function", p.Function, "error", err.Error())
				time.Sleep(time.Second)
			}
			continue
		}
		if len(out.Messages) > 0 {
			p.deliver(ctx, out.Messages)
		}
	}
}

func (p *Poller) deliver(ctx context.Context, msgs []types.Message) {
	ev := events.SQSEvent{}
	for _, m := range msgs {
		ev.Records = append(ev.Records, events.SQSMessage{
			MessageId:      aws.ToString(m.MessageId),
			ReceiptHandle:  aws.ToString(m.ReceiptHandle),
			Body:           aws.ToString(m.Body),
			Md5OfBody:      aws.ToString(m.MD5OfBody),
			Attributes:     m.Attributes,
			EventSource:    "aws:sqs",
			EventSourceARN: p.QueueARN,
			AWSRegion:      "us-east-1",
		})
	}
	ictx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	ictx = lambdacontext.NewContext(ictx, &lambdacontext.LambdaContext{AwsRequestID: newRequestID()})
	resp, err := p.Invoke(ictx, ev)
	if err != nil {
		p.Logger.Error("function failed; the batch will be retried", "function", p.Function, "error", err.Error())
		return
	}
	failed := map[string]bool{}
	for _, f := range resp.BatchItemFailures {
		failed[f.ItemIdentifier] = true
	}
	var del []types.DeleteMessageBatchRequestEntry
	for _, m := range msgs {
		if !failed[aws.ToString(m.MessageId)] {
			del = append(del, types.DeleteMessageBatchRequestEntry{Id: m.MessageId, ReceiptHandle: m.ReceiptHandle})
		}
	}
	if len(del) > 0 {
		if _, err := p.Client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: &p.QueueURL, Entries: del}); err != nil && ctx.Err() == nil {
			p.Logger.Warn("deleting handled messages failed", "function", p.Function, "error", err.Error())
		}
	}
}

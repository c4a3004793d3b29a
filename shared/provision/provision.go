// Package provision creates the service's AWS resources in an emulator, for
// the local stack and the integration tests, with the same settings as
// template.yaml (a test compares the two). In AWS, CloudFormation creates
// them from the template instead.
package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	stypes "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	qtypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/espfleet/crashdumps/shared/awsconf"
	"github.com/espfleet/crashdumps/shared/crashdump"
	"github.com/espfleet/crashdumps/shared/dynamo"
)

// Names are the names of the resources to create.
type Names struct {
	Bucket          string // COREDUMP_BUCKET
	Table           string // COREDUMP_TABLE
	Queue           string // the parse queue's name
	DeadLetterQueue string // where the parse queue sends what keeps failing
}

// Resources are what Create made.
type Resources struct {
	Names
	QueueURL string // PARSE_QUEUE_URL
	QueueARN string
	DLQURL   string
}

// Queue and notification settings, shared with template.yaml.
const (
	// MaxReceiveCount is how often the parse queue delivers a message
	// before it moves it to the dead-letter queue.
	MaxReceiveCount = 5
	// VisibilityTimeoutSeconds is the parse queue's visibility timeout:
	// AWS asks for six times the consumer function's timeout.
	VisibilityTimeoutSeconds = 2520
	// FirmwarePrefix is where firmware ZIPs are uploaded.
	FirmwarePrefix = "firmware/"
	// TTLAttribute holds the epoch second after which DynamoDB may
	// delete an item.
	TTLAttribute = "expires_at"
)

// TableInput is the table definition: keys pk and sk, the fleet, firmware,
// work and crash groups indexes, on-demand billing.
func TableInput(name string) *dynamodb.CreateTableInput {
	attr := func(n string) dtypes.AttributeDefinition {
		return dtypes.AttributeDefinition{AttributeName: aws.String(n), AttributeType: dtypes.ScalarAttributeTypeS}
	}
	keys := func(hash, rng string) []dtypes.KeySchemaElement {
		return []dtypes.KeySchemaElement{
			{AttributeName: aws.String(hash), KeyType: dtypes.KeyTypeHash},
			{AttributeName: aws.String(rng), KeyType: dtypes.KeyTypeRange},
		}
	}
	gsi := func(name, hash string) dtypes.GlobalSecondaryIndex {
		return dtypes.GlobalSecondaryIndex{
			IndexName:  aws.String(name),
			KeySchema:  keys(hash, "id"),
			Projection: &dtypes.Projection{ProjectionType: dtypes.ProjectionTypeAll},
		}
	}
	return &dynamodb.CreateTableInput{
		TableName: aws.String(name),
		AttributeDefinitions: []dtypes.AttributeDefinition{
			attr("pk"), attr("sk"), attr("id"),
			attr("fleet_pk"), attr("firmware_pk"), attr("work_pk"),
			attr("group_shard"), attr("group_position"),
		},
		KeySchema:   keys("pk", "sk"),
		BillingMode: dtypes.BillingModePayPerRequest,
		GlobalSecondaryIndexes: []dtypes.GlobalSecondaryIndex{
			gsi(dynamo.IndexFleet, "fleet_pk"),
			gsi(dynamo.IndexFirmware, "firmware_pk"),
			gsi(dynamo.IndexWork, "work_pk"),
			{
				IndexName:  aws.String(dynamo.IndexGroups),
				KeySchema:  keys("group_shard", "group_position"),
				Projection: &dtypes.Projection{ProjectionType: dtypes.ProjectionTypeAll},
			},
		},
	}
}

// Create makes the bucket, table, queues and the bucket's notifications to
// the parse queue. Resources that exist already are kept.
func Create(ctx context.Context, cfg aws.Config, n Names) (Resources, error) {
	res := Resources{Names: n}
	db := dynamodb.NewFromConfig(cfg)
	if _, err := db.CreateTable(ctx, TableInput(n.Table)); err != nil && !exists(err) {
		return res, fmt.Errorf("creating table %s: %w", n.Table, err)
	}
	if _, err := db.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(n.Table),
		TimeToLiveSpecification: &dtypes.TimeToLiveSpecification{
			AttributeName: aws.String(TTLAttribute), Enabled: aws.Bool(true),
		},
	}); err != nil && !exists(err) {
		return res, fmt.Errorf("enabling TTL on %s: %w", n.Table, err)
	}

	q := sqs.NewFromConfig(cfg)
	dlq, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(n.DeadLetterQueue)})
	if err != nil {
		return res, fmt.Errorf("creating queue %s: %w", n.DeadLetterQueue, err)
	}
	res.DLQURL = aws.ToString(dlq.QueueUrl)
	dlqARN, err := queueARN(ctx, q, res.DLQURL)
	if err != nil {
		return res, err
	}
	redrive, _ := json.Marshal(map[string]any{
		"deadLetterTargetArn": dlqARN,
		"maxReceiveCount":     MaxReceiveCount,
	})
	main, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{
		QueueName: aws.String(n.Queue),
		Attributes: map[string]string{
			string(qtypes.QueueAttributeNameRedrivePolicy):     string(redrive),
			string(qtypes.QueueAttributeNameVisibilityTimeout): fmt.Sprint(VisibilityTimeoutSeconds),
		},
	})
	if err != nil {
		return res, fmt.Errorf("creating queue %s: %w", n.Queue, err)
	}
	res.QueueURL = aws.ToString(main.QueueUrl)
	if res.QueueARN, err = queueARN(ctx, q, res.QueueURL); err != nil {
		return res, err
	}

	s := s3.NewFromConfig(cfg, awsconf.S3Options())
	if _, err := s.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(n.Bucket)}); err != nil && !exists(err) {
		return res, fmt.Errorf("creating bucket %s: %w", n.Bucket, err)
	}
	filter := func(prefix string) *stypes.NotificationConfigurationFilter {
		return &stypes.NotificationConfigurationFilter{Key: &stypes.S3KeyFilter{
			FilterRules: []stypes.FilterRule{{Name: stypes.FilterRuleNamePrefix, Value: aws.String(prefix)}},
		}}
	}
	if _, err := s.PutBucketNotificationConfiguration(ctx, &s3.PutBucketNotificationConfigurationInput{
		Bucket: aws.String(n.Bucket),
		NotificationConfiguration: &stypes.NotificationConfiguration{
			QueueConfigurations: []stypes.QueueConfiguration{
				{QueueArn: aws.String(res.QueueARN), Events: []stypes.Event{"s3:ObjectCreated:*"}, Filter: filter(crashdump.DumpPrefix)},
				{QueueArn: aws.String(res.QueueARN), Events: []stypes.Event{"s3:ObjectCreated:*"}, Filter: filter(FirmwarePrefix)},
			},
		},
	}); err != nil {
		return res, fmt.Errorf("setting notifications of %s: %w", n.Bucket, err)
	}
	return res, nil
}

func queueARN(ctx context.Context, q *sqs.Client, url string) (string, error) {
	out, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(url),
		AttributeNames: []qtypes.QueueAttributeName{qtypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return "", fmt.Errorf("reading ARN of %s: %w", url, err)
	}
	return out.Attributes[string(qtypes.QueueAttributeNameQueueArn)], nil
}

func exists(err error) bool {
	var inUse *dtypes.ResourceInUseException
	var owned *stypes.BucketAlreadyOwnedByYou
	var taken *stypes.BucketAlreadyExists
	return errors.As(err, &inUse) || errors.As(err, &owned) || errors.As(err, &taken)
}

package provision_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"gopkg.in/yaml.v3"

	"github.com/espfleet/crashdumps/shared/awsconf"
	"github.com/espfleet/crashdumps/shared/awstest"
	"github.com/espfleet/crashdumps/shared/provision"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// template reads template.yaml at the module root. CloudFormation's short
// tags (!Ref, !Sub) are dropped by the YAML decoder; the values stay.
func template(t *testing.T) map[string]any {
	t.Helper()
	raw, err := os.ReadFile("../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("template.yaml: %v", err)
	}
	return doc
}

func props(t *testing.T, doc map[string]any, resource string) map[string]any {
	t.Helper()
	r, ok := doc["Resources"].(map[string]any)[resource].(map[string]any)
	if !ok {
		t.Fatalf("template.yaml has no resource %s", resource)
	}
	return r["Properties"].(map[string]any)
}

// keyString renders a key schema as "hash,range".
func keyString(elems []any) string {
	var hash, rng string
	for _, e := range elems {
		m := e.(map[string]any)
		if m["KeyType"] == "HASH" {
			hash = m["AttributeName"].(string)
		} else {
			rng = m["AttributeName"].(string)
		}
	}
	return hash + "," + rng
}

func TestTemplate_TableAgreesWithProvision(t *testing.T) {
	table := props(t, template(t), "CoredumpTable")
	want := provision.TableInput("x")

	if got, want := table["BillingMode"], string(want.BillingMode); got != want {
		t.Errorf("BillingMode: got %v, want %v", got, want)
	}
	if got := keyString(table["KeySchema"].([]any)); got != "pk,sk" {
		t.Errorf("KeySchema: got %s, want pk,sk", got)
	}
	var gotAttrs, wantAttrs []string
	for _, a := range table["AttributeDefinitions"].([]any) {
		m := a.(map[string]any)
		gotAttrs = append(gotAttrs, fmt.Sprint(m["AttributeName"], ":", m["AttributeType"]))
	}
	for _, a := range want.AttributeDefinitions {
		wantAttrs = append(wantAttrs, fmt.Sprint(*a.AttributeName, ":", a.AttributeType))
	}
	sort.Strings(gotAttrs)
	sort.Strings(wantAttrs)
	if !slices.Equal(gotAttrs, wantAttrs) {
		t.Errorf("AttributeDefinitions: got %v, want %v", gotAttrs, wantAttrs)
	}

	gotIdx := map[string]string{}
	for _, g := range table["GlobalSecondaryIndexes"].([]any) {
		m := g.(map[string]any)
		proj := m["Projection"].(map[string]any)["ProjectionType"]
		gotIdx[m["IndexName"].(string)] = keyString(m["KeySchema"].([]any)) + "/" + fmt.Sprint(proj)
	}
	wantIdx := map[string]string{}
	for _, g := range want.GlobalSecondaryIndexes {
		var elems []any
		for _, k := range g.KeySchema {
			elems = append(elems, map[string]any{"AttributeName": *k.AttributeName, "KeyType": string(k.KeyType)})
		}
		wantIdx[*g.IndexName] = keyString(elems) + "/" + string(g.Projection.ProjectionType)
	}
	if fmt.Sprint(gotIdx) != fmt.Sprint(wantIdx) {
		t.Errorf("GlobalSecondaryIndexes: got %v, want %v", gotIdx, wantIdx)
	}

	ttl := table["TimeToLiveSpecification"].(map[string]any)
	if got, want := ttl["AttributeName"], provision.TTLAttribute; got != want {
		t.Errorf("TTL attribute: got %v, want %v", got, want)
	}
}

func TestTemplate_QueueAndBucketAgreeWithProvision(t *testing.T) {
	doc := template(t)
	q := props(t, doc, "ParseQueue")
	if got, want := q["VisibilityTimeout"], provision.VisibilityTimeoutSeconds; got != want {
		t.Errorf("VisibilityTimeout: got %v, want %v", got, want)
	}
	redrive := q["RedrivePolicy"].(map[string]any)
	if got, want := redrive["maxReceiveCount"], provision.MaxReceiveCount; got != want {
		t.Errorf("maxReceiveCount: got %v, want %v", got, want)
	}
	var prefixes []string
	b := props(t, doc, "CoredumpBucket")
	for _, qc := range b["NotificationConfiguration"].(map[string]any)["QueueConfigurations"].([]any) {
		rules := qc.(map[string]any)["Filter"].(map[string]any)["S3Key"].(map[string]any)["Rules"].([]any)
		prefixes = append(prefixes, rules[0].(map[string]any)["Value"].(string))
	}
	sort.Strings(prefixes)
	if want := []string{"coredumps/", "firmware/"}; !slices.Equal(prefixes, want) {
		t.Errorf("notification prefixes: got %v, want %v", prefixes, want)
	}
}

func TestCreate_OK(t *testing.T) {
	ctx := context.Background()
	res := awstest.Resources(t)
	// Creating again keeps what exists.
	if _, err := provision.Create(ctx, awstest.Config(t), res.Names); err != nil {
		t.Fatalf("second Create: %v", err)
	}
	cfg := awstest.Config(t)
	s := s3.NewFromConfig(cfg, awsconf.S3Options())
	q := sqs.NewFromConfig(cfg)
	key := "coredumps/dev1/01JDX0000000000000000000AB.dmp"
	if _, err := s.PutObject(ctx, &s3.PutObjectInput{Bucket: &res.Bucket, Key: &key, Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutObject(ctx, &s3.PutObjectInput{Bucket: &res.Bucket, Key: aws.String("other/x"), Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	var keys []string
	for time.Now().Before(deadline) && len(keys) == 0 {
		out, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &res.QueueURL, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			var ev struct {
				Records []struct {
					S3 struct {
						Object struct{ Key string } `json:"object"`
					} `json:"s3"`
				}
			}
			json.Unmarshal([]byte(aws.ToString(m.Body)), &ev)
			for _, r := range ev.Records {
				// Event keys are URL-encoded (moto encodes even "/").
				k, err := url.QueryUnescape(r.S3.Object.Key)
				if err != nil {
					t.Fatal(err)
				}
				keys = append(keys, k)
			}
		}
	}
	if !slices.Equal(keys, []string{key}) {
		t.Errorf("notified keys: got %v, want [%s]", keys, key)
	}
}

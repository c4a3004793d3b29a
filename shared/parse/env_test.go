package parse_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/espfleet/crashdumps/shared/awsconf"
	"github.com/espfleet/crashdumps/shared/awstest"
	"github.com/espfleet/crashdumps/shared/crashdump"
	"github.com/espfleet/crashdumps/shared/dynamo"
	"github.com/espfleet/crashdumps/shared/parse"
	"github.com/espfleet/crashdumps/shared/provision"
	"github.com/espfleet/crashdumps/shared/s3store"
	"github.com/espfleet/crashdumps/shared/sqsqueue"
	"github.com/espfleet/crashdumps/shared/telemetry"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// env is a parse service wired to fresh emulator resources.
type env struct {
	res      provision.Resources
	db       *dynamodb.Client
	s3       *s3.Client
	sqs      *sqs.Client
	store    *dynamo.Store
	objects  *s3store.Objects
	archives *s3store.Archives
	svc      *parse.Service
	handler  *parse.Handler
	metrics  *recorder
	logs     *awstest.Buffer
}

func newEnv(t testing.TB, parser parse.Parser) *env {
	t.Helper()
	cfg := awstest.Config(t)
	res := awstest.Resources(t)
	e := &env{
		res:     res,
		db:      dynamodb.NewFromConfig(cfg),
		s3:      s3.NewFromConfig(cfg, awsconf.S3Options()),
		sqs:     sqs.NewFromConfig(cfg),
		metrics: &recorder{},
		logs:    &awstest.Buffer{},
	}
	e.store = &dynamo.Store{Client: e.db, Table: res.Table}
	e.objects = &s3store.Objects{Client: e.s3, Bucket: res.Bucket}
	e.archives = &s3store.Archives{Client: e.s3, Bucket: res.Bucket}
	zipKey, _ := parse.NewTemplate(parse.DefaultFirmwareZIPKey, true)
	elfName, _ := parse.NewTemplate(parse.DefaultFirmwareELFName, false)
	e.svc = &parse.Service{
		Store:   e.store,
		Objects: e.objects,
		Firmware: &parse.Firmware{
			Archives: e.archives,
			ZIPKey:   zipKey,
			ELFName:  elfName,
			Cache:    &parse.ELFCache{Dir: t.TempDir(), MaxBytes: 64 << 20},
		},
		Parser:  parser,
		Queue:   &sqsqueue.Queue{Client: e.sqs, URL: res.QueueURL},
		Logger:  telemetry.NewLogger(e.logs, slog.LevelDebug),
		Metrics: e.metrics,
	}
	e.handler = &parse.Handler{Service: e.svc, DumpBucket: res.Bucket, FirmwareBucket: res.Bucket, Workers: 2}
	return e
}

// putDump uploads a dump the way the upload function does: object, then
// record. Moto queues the S3 event; tests that do not read it drain it.
func (e *env) putDump(t testing.TB, chip, model, version string, body []byte) *crashdump.Dump {
	t.Helper()
	d := e.newDump(chip, model, version, body)
	if err := e.objects.PutDump(context.Background(), d, body); err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateDump(context.Background(), d, 1000); err != nil {
		t.Fatal(err)
	}
	return d
}

var idClock atomic.Int64

func (e *env) newDump(chip, model, version string, body []byte) *crashdump.Dump {
	now := time.Now().Add(time.Duration(idClock.Add(1)) * time.Millisecond)
	sum := sha256.Sum256(append(body, strconv.FormatInt(now.UnixNano(), 10)...))
	return &crashdump.Dump{
		ID: crashdump.NewID(now), DeviceKey: "dev" + strconv.FormatInt(idClock.Load()%7, 10),
		ModelCode: model, Chip: chip, FirmwareVersion: version, Size: int64(len(body)),
		SHA256: hex.EncodeToString(sum[:]), UploadedAt: now, ParseStatus: crashdump.StatusPending,
	}
}

// zipFile is one entry of a test firmware ZIP.
type zipFile struct {
	name   string
	data   []byte
	stored bool // store uncompressed rather than deflate
}

func makeZIP(t testing.TB, files ...zipFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		method := zip.Deflate
		if f.stored {
			method = zip.Store
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: f.name, Method: method})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(f.data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func (e *env) putObject(t testing.TB, key string, body []byte) {
	t.Helper()
	_, err := e.s3.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: &e.res.Bucket, Key: &key, Body: bytes.NewReader(body),
	})
	if err != nil {
		t.Fatal(err)
	}
}

// item reads the dump's item as stored.
func (e *env) item(t testing.TB, d *crashdump.Dump) map[string]types.AttributeValue {
	t.Helper()
	out, err := e.db.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: &e.res.Table,
		Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: "DEV#" + d.DeviceKey},
			"sk": &types.AttributeValueMemberS{Value: "DUMP#" + d.ID},
		},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

func attr(item map[string]types.AttributeValue, name string) string {
	switch v := item[name].(type) {
	case *types.AttributeValueMemberS:
		return v.Value
	case *types.AttributeValueMemberN:
		return v.Value
	}
	return ""
}

// get reads the dump back through the store.
func (e *env) get(t testing.TB, d *crashdump.Dump) *crashdump.Dump {
	t.Helper()
	got, err := e.store.GetDump(context.Background(), d.DeviceKey, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// deliver hands bodies to the handler as one SQS batch and returns the
// ids of the messages it wants again.
func (e *env) deliver(t testing.TB, bodies ...string) []string {
	t.Helper()
	ev := events.SQSEvent{}
	for i, b := range bodies {
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: "m" + strconv.Itoa(i), Body: b})
	}
	resp, err := e.handler.Handle(context.Background(), ev)
	if err != nil {
		t.Fatalf("handler failed the batch: %v", err)
	}
	var ids []string
	for _, f := range resp.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	return ids
}

// receive reads what is in the parse queue now and deletes it.
func (e *env) receive(t testing.TB) []string {
	t.Helper()
	ctx := context.Background()
	var bodies []string
	for {
		out, err := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: &e.res.QueueURL, MaxNumberOfMessages: 10, WaitTimeSeconds: 0,
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			return bodies
		}
		for _, m := range out.Messages {
			bodies = append(bodies, aws.ToString(m.Body))
			e.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &e.res.QueueURL, ReceiptHandle: m.ReceiptHandle})
		}
	}
}

// s3Event is the notification S3 sends for a new object.
func s3Event(bucket, key string) string {
	b, _ := json.Marshal(map[string]any{"Records": []any{map[string]any{
		"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
		"eventTime": time.Now().UTC().Format(time.RFC3339Nano), "eventName": "ObjectCreated:Put",
		"s3": map[string]any{
			"bucket": map[string]any{"name": bucket},
			"object": map[string]any{"key": url.QueryEscape(key), "size": 1},
		},
	}}})
	return string(b)
}

func reparse(d *crashdump.Dump) string {
	b, _ := json.Marshal(parse.Message{Type: parse.MessageTypeReparse, DeviceKey: d.DeviceKey, ID: d.ID})
	return string(b)
}

// recorder is a parse.Recorder that keeps the statuses.
type recorder struct {
	mu       sync.Mutex
	statuses []string
}

func (r *recorder) Record(_ context.Context, op, status string, _ time.Duration, _ map[string]float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.statuses = append(r.statuses, op+"/"+status)
}

// take returns the statuses recorded since the last take.
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.statuses
	r.statuses = nil
	return s
}

// fakeParser is a hand-written parse.Parser whose answer a test sets.
type fakeParser struct {
	mu     sync.Mutex
	output string
	err    error
	calls  int
	elf    []byte // the ELF bytes of the last call
	// during, when set, runs inside Parse (to act while a claim is held).
	during func(job *parse.Job)
}

func (p *fakeParser) Name() string { return "fake" }

func (p *fakeParser) Parse(ctx context.Context, job *parse.Job) (*parse.Result, error) {
	p.mu.Lock()
	p.calls++
	during := p.during
	p.mu.Unlock()
	if during != nil {
		during(job)
	}
	b, err := readFile(job.ELF.Path)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.elf = b
	if p.err != nil {
		return nil, p.err
	}
	return &parse.Result{Output: p.output, Signature: "sig", TopFrame: "frame", Attempts: 1}, nil
}

var _ parse.Parser = (*fakeParser)(nil)

func listen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

package httpapi_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/espfleet/crashdumps/shared/awsconf"
	"github.com/espfleet/crashdumps/shared/awstest"
	"github.com/espfleet/crashdumps/shared/crashdump"
	"github.com/espfleet/crashdumps/shared/dynamo"
	"github.com/espfleet/crashdumps/shared/httpapi"
	"github.com/espfleet/crashdumps/shared/s3store"
	"github.com/espfleet/crashdumps/shared/telemetry"
	"github.com/espfleet/crashdumps/shared/upload"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// uploadEnv is an upload API wired to fresh emulator resources.
type uploadEnv struct {
	api      *httpapi.API
	handler  func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)
	store    *dynamo.Store
	objects  *s3store.Objects
	s3       *s3.Client
	requests *atomic.Int64
	logs     *awstest.Buffer
	now      time.Time
}

func newUploadEnv(t testing.TB, limits upload.Limits) *uploadEnv {
	t.Helper()
	res := awstest.Resources(t)
	cfg := awstest.Config(t)
	e := &uploadEnv{requests: awstest.CountRequests(&cfg), logs: &awstest.Buffer{}}
	e.store = &dynamo.Store{Client: dynamodb.NewFromConfig(cfg), Table: res.Table, RetentionDays: 90}
	e.s3 = s3.NewFromConfig(cfg, awsconf.S3Options())
	e.objects = &s3store.Objects{Client: e.s3, Bucket: res.Bucket}
	m, err := crashdump.NewClientIDMatcher(crashdump.DefaultClientIDPattern)
	if err != nil {
		t.Fatal(err)
	}
	logger := telemetry.NewLogger(e.logs, nil)
	e.api = &httpapi.API{
		Logger:  logger,
		Metrics: telemetry.NewMetrics(e.logs),
		Devices: httpapi.DeviceAuth{Claim: "azp", ClientID: m},
		Upload:  &upload.Service{Store: e.store, Objects: e.objects, Limits: limits, Logger: logger},
	}
	e.handler = httpapi.Lambda(e.api.Handler())
	return e
}

func defaultLimits() upload.Limits {
	return upload.Limits{MaxBytes: 1 << 20, MaxPerHour: 10, MaxPerDevice: 20}
}

// uploadEvent returns the fixture event with the query, body and client id
// replaced; an empty client id removes the authorizer's claims.
func uploadEvent(t testing.TB, query url.Values, body []byte, clientID string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	raw, err := os.ReadFile("testdata/upload-event.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	ev.RawQueryString = query.Encode()
	ev.QueryStringParameters = map[string]string{}
	for k := range query {
		ev.QueryStringParameters[k] = query.Get(k)
	}
	ev.Body = base64.StdEncoding.EncodeToString(body)
	ev.Headers["content-length"] = fmt.Sprint(len(body))
	if clientID == "" {
		ev.RequestContext.Authorizer = nil
	} else {
		ev.RequestContext.Authorizer.JWT.Claims["azp"] = clientID
	}
	return ev
}

func validQuery() url.Values {
	return url.Values{"chip": {"esp32c3"}, "firmware_version": {"1.4.2"}}
}

const device = "iotdevice-ps1-abcd1234"

func (e *uploadEnv) do(t testing.TB, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, map[string]any) {
	t.Helper()
	resp, err := e.handler(context.Background(), ev)
	if err != nil {
		t.Fatalf("handler returned a Lambda error: %v", err)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(resp.Body), &body); err != nil {
		t.Fatalf("response body %q is not JSON: %v", resp.Body, err)
	}
	return resp, body
}

func (e *uploadEnv) upload(t testing.TB, body []byte) (events.APIGatewayV2HTTPResponse, map[string]any) {
	t.Helper()
	return e.do(t, uploadEvent(t, validQuery(), body, device))
}

func TestUpload_OK(t *testing.T) {
	e := newUploadEnv(t, defaultLimits())
	dump := []byte("core dump bytes \x00\x01\x02\xff")
	resp, body := e.upload(t, dump)
	if got, want := resp.StatusCode, 201; got != want {
		t.Fatalf("status: got %d, want %d (%s)", got, want, resp.Body)
	}
	if got, want := body["parse_status"], "PENDING"; got != want {
		t.Errorf("parse_status: got %v, want %v", got, want)
	}
	id, _ := body["id"].(string)
	if err := crashdump.ValidateID(id); err != nil {
		t.Fatalf("id %q: %v", id, err)
	}

	d, err := e.store.GetDump(context.Background(), "abcd1234", id)
	if err != nil {
		t.Fatalf("reading record: %v", err)
	}
	if d.ModelCode != "ps1" || d.Chip != "esp32c3" || d.FirmwareVersion != "1.4.2" || d.Size != int64(len(dump)) {
		t.Errorf("record: got %+v", d)
	}
	obj, err := e.s3.GetObject(context.Background(), &s3.GetObjectInput{
		Bucket: &e.objects.Bucket, Key: aws.String(crashdump.ObjectKey("abcd1234", id)),
	})
	if err != nil {
		t.Fatalf("reading object: %v", err)
	}
	defer obj.Body.Close()
	var got bytes.Buffer
	got.ReadFrom(obj.Body)
	if !bytes.Equal(got.Bytes(), dump) {
		t.Errorf("object bytes: got %q, want %q", got.Bytes(), dump)
	}
	if got, want := obj.Metadata[s3store.MetaDumpID], id; got != want {
		t.Errorf("object metadata dump-id: got %q, want %q", got, want)
	}
	if got, want := obj.Metadata[s3store.MetaSHA256], d.SHA256; got != want {
		t.Errorf("object metadata sha256: got %q, want %q", got, want)
	}

	logs := e.logs.String()
	for _, want := range []string{`"Operation":"coredump_upload"`, `"Status":"created"`, `"dump_id":"` + id + `"`, `"device_key":"abcd1234"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
}

func TestUpload_Errors(t *testing.T) {
	e := newUploadEnv(t, upload.Limits{MaxBytes: 64, MaxPerHour: 10, MaxPerDevice: 20})
	q := func(kv ...string) url.Values {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	dump := []byte("dump")
	tests := []struct {
		name     string
		query    url.Values
		body     []byte
		clientID string
		status   int
		code     string
	}{
		{"ErrNoChip", q("firmware_version", "1.0"), dump, device, 400, "invalid"},
		{"ErrBadChip", q("chip", "esp8266", "firmware_version", "1.0"), dump, device, 400, "invalid"},
		{"ErrNoVersion", q("chip", "esp32"), dump, device, 400, "invalid"},
		{"ErrBadVersion", q("chip", "esp32", "firmware_version", "1.0 beta"), dump, device, 400, "invalid"},
		{"ErrLongVersion", q("chip", "esp32", "firmware_version", strings.Repeat("1", 65)), dump, device, 400, "invalid"},
		{"ErrEmptyBody", validQuery(), nil, device, 400, "invalid"},
		{"ErrNoToken", validQuery(), dump, "", 401, "unauthorized"},
		{"ErrNotADevice", validQuery(), dump, "admin-console", 401, "unauthorized"},
		{"ErrBadDeviceKey", validQuery(), dump, "iotdevice-ps1-abc_d", 401, "unauthorized"},
		{"ErrTooLarge", validQuery(), bytes.Repeat([]byte{1}, 65), device, 413, "too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.do(t, uploadEvent(t, tt.query, tt.body, tt.clientID))
			if got, want := resp.StatusCode, tt.status; got != want {
				t.Errorf("status: got %d, want %d (%s)", got, want, resp.Body)
			}
			if got, want := body["code"], tt.code; got != want {
				t.Errorf("code: got %v, want %v", got, want)
			}
			if msg, _ := body["message"].(string); msg == "" {
				t.Errorf("message is empty")
			}
		})
	}
	if got := e.logs.String(); !strings.Contains(got, `"Status":"too_large"`) || !strings.Contains(got, `"Status":"unauthorized"`) {
		t.Errorf("error outcomes have no metric:\n%s", got)
	}
}

func TestUpload_BadBase64(t *testing.T) {
	e := newUploadEnv(t, defaultLimits())
	ev := uploadEvent(t, validQuery(), []byte("x"), device)
	ev.Body = "not base64 at all!"
	resp, body := e.do(t, ev)
	if got, want := resp.StatusCode, 400; got != want {
		t.Errorf("status: got %d, want %d", got, want)
	}
	if got, want := body["code"], "invalid"; got != want {
		t.Errorf("code: got %v, want %v", got, want)
	}
}

func TestUpload_Duplicate(t *testing.T) {
	e := newUploadEnv(t, defaultLimits())
	dump := []byte("the same crash")
	_, first := e.upload(t, dump)
	resp, second := e.upload(t, dump)
	if got, want := resp.StatusCode, 200; got != want {
		t.Fatalf("status: got %d, want %d (%s)", got, want, resp.Body)
	}
	if got, want := second["id"], first["id"]; got != want {
		t.Errorf("id: got %v, want %v", got, want)
	}
	if got, want := second["duplicate"], true; got != want {
		t.Errorf("duplicate: got %v, want %v", got, want)
	}
	dumps, err := e.store.DeviceDumps(context.Background(), "abcd1234")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(dumps), 1; got != want {
		t.Errorf("records: got %d, want %d", got, want)
	}
	if n := countObjects(t, e); n != 1 {
		t.Errorf("objects: got %d, want 1", n)
	}
}

func TestUpload_RateLimit(t *testing.T) {
	e := newUploadEnv(t, upload.Limits{MaxBytes: 1 << 20, MaxPerHour: 3, MaxPerDevice: 20})
	for i := range 3 {
		if resp, _ := e.upload(t, []byte(fmt.Sprint("crash ", i))); resp.StatusCode != 201 {
			t.Fatalf("upload %d: got %d, want 201", i, resp.StatusCode)
		}
	}
	// A retry of an accepted dump is not a new dump: it is answered.
	if resp, _ := e.upload(t, []byte("crash 0")); resp.StatusCode != 200 {
		t.Errorf("duplicate past the limit: got %d, want 200", resp.StatusCode)
	}
	resp, body := e.upload(t, []byte("crash 4"))
	if got, want := resp.StatusCode, 429; got != want {
		t.Fatalf("status: got %d, want %d", got, want)
	}
	if got, want := body["code"], "rate_limited"; got != want {
		t.Errorf("code: got %v, want %v", got, want)
	}
	ra := resp.Headers["Retry-After"]
	var secs int
	if _, err := fmt.Sscan(ra, &secs); err != nil || secs < 1 || secs > 3601 {
		t.Errorf("Retry-After: got %q, want 1 to 3601 seconds", ra)
	}
	// Another device is not affected.
	resp, _ = e.do(t, uploadEvent(t, validQuery(), []byte("crash 4"), "iotdevice-ps1-other9"))
	if got, want := resp.StatusCode, 201; got != want {
		t.Errorf("other device: got %d, want %d", got, want)
	}
}

func TestUpload_CapUnderConcurrency(t *testing.T) {
	const cap, uploads = 5, 20
	e := newUploadEnv(t, upload.Limits{MaxBytes: 1 << 20, MaxPerHour: 1000, MaxPerDevice: cap})
	ids := make([]string, uploads)
	var wg sync.WaitGroup
	for i := range uploads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, body := e.upload(t, []byte(fmt.Sprint("concurrent crash ", i)))
			if resp.StatusCode != 201 {
				t.Errorf("upload %d: got %d, want 201 (%s)", i, resp.StatusCode, resp.Body)
			}
			ids[i], _ = body["id"].(string)
		}()
	}
	wg.Wait()
	dumps, err := e.store.DeviceDumps(context.Background(), "abcd1234")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(dumps), cap; got != want {
		t.Fatalf("records after %d concurrent uploads: got %d, want %d", uploads, got, want)
	}
	if n := countObjects(t, e); n != cap {
		t.Errorf("objects: got %d, want %d", n, cap)
	}
	// The ones kept are the newest.
	newest := append([]string(nil), ids...)
	sortDesc(newest)
	for i, d := range dumps {
		if d.ID != newest[i] {
			t.Errorf("kept dump %d: got %s, want %s", i, d.ID, newest[i])
		}
	}
}

func TestUpload_RequestsPerUpload(t *testing.T) {
	e := newUploadEnv(t, defaultLimits())
	e.requests.Store(0)
	if resp, _ := e.upload(t, []byte("count my requests")); resp.StatusCode != 201 {
		t.Fatalf("status: got %d, want 201", resp.StatusCode)
	}
	if got, max := e.requests.Load(), int64(3); got > max {
		t.Errorf("AWS requests for one new upload: got %d, want at most %d", got, max)
	}
}

// failingObjects fails every put, standing in for an S3 outage midway
// through an upload: the record is written, the bytes are not.
type failingObjects struct{ *s3store.Objects }

func (failingObjects) PutDump(context.Context, *crashdump.Dump, []byte) error {
	return errors.New("injected: S3 unavailable")
}

// failingDeletes fails the clean-up too.
type failingDeletes struct{ *dynamo.Store }

func (failingDeletes) DeleteDumps(context.Context, []crashdump.Dump) error {
	return errors.New("injected: DynamoDB unavailable")
}

func TestUpload_StorageFailureMidway(t *testing.T) {
	t.Run("OKCleanedUp", func(t *testing.T) {
		e := newUploadEnv(t, defaultLimits())
		e.api.Upload.Objects = failingObjects{e.objects}
		e.handler = httpapi.Lambda(e.api.Handler())
		resp, body := e.upload(t, []byte("half written"))
		if got, want := resp.StatusCode, 500; got != want {
			t.Fatalf("status: got %d, want %d", got, want)
		}
		if msg := body["message"]; msg != "Internal error." {
			t.Errorf("message: got %q, want the generic one", msg)
		}
		if strings.Contains(resp.Body, "injected") {
			t.Errorf("internal error echoed to the client: %s", resp.Body)
		}
		dumps, err := e.store.DeviceDumps(context.Background(), "abcd1234")
		if err != nil {
			t.Fatal(err)
		}
		if len(dumps) != 0 || countObjects(t, e) != 0 {
			t.Errorf("left behind: %d records, %d objects", len(dumps), countObjects(t, e))
		}
		// The device's retry is a new upload that succeeds.
		e.api.Upload.Objects = e.objects
		e.handler = httpapi.Lambda(e.api.Handler())
		if resp, _ := e.upload(t, []byte("half written")); resp.StatusCode != 201 {
			t.Errorf("retry: got %d, want 201", resp.StatusCode)
		}
	})
	t.Run("OKRecordLeftIsFindable", func(t *testing.T) {
		e := newUploadEnv(t, defaultLimits())
		e.api.Upload.Objects = failingObjects{e.objects}
		e.api.Upload.Store = failingDeletes{e.store}
		e.handler = httpapi.Lambda(e.api.Handler())
		if resp, _ := e.upload(t, []byte("half written")); resp.StatusCode != 500 {
			t.Fatalf("status: got %d, want 500", resp.StatusCode)
		}
		// The record without bytes is where a sweep looks: in the
		// device's partition, marked PENDING, and no object exists.
		dumps, err := e.store.DeviceDumps(context.Background(), "abcd1234")
		if err != nil || len(dumps) != 1 {
			t.Fatalf("records: got %d (%v), want 1", len(dumps), err)
		}
		if n := countObjects(t, e); n != 0 {
			t.Errorf("objects: got %d, want 0", n)
		}
		// A retry of the same bytes stores them now, so the 200 is
		// true: record and object both exist.
		e.api.Upload.Objects = e.objects
		e.api.Upload.Store = e.store
		e.handler = httpapi.Lambda(e.api.Handler())
		resp, body := e.upload(t, []byte("half written"))
		if resp.StatusCode != 200 || body["id"] != dumps[0].ID {
			t.Errorf("retry: got %d %v, want 200 with id %s", resp.StatusCode, body["id"], dumps[0].ID)
		}
		if n := countObjects(t, e); n != 1 {
			t.Errorf("objects after retry: got %d, want 1", n)
		}
	})
}

func countObjects(t testing.TB, e *uploadEnv) int {
	t.Helper()
	out, err := e.s3.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{
		Bucket: &e.objects.Bucket, Prefix: aws.String(crashdump.DumpPrefix),
	})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Contents)
}

func sortDesc(s []string) {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] > s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
}

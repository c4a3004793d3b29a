package httpapi_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/middleware"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/espfleet/crashdumps/shared/admin"
	"github.com/espfleet/crashdumps/shared/awsconf"
	"github.com/espfleet/crashdumps/shared/awstest"
	"github.com/espfleet/crashdumps/shared/crashdump"
	"github.com/espfleet/crashdumps/shared/dynamo"
	"github.com/espfleet/crashdumps/shared/httpapi"
	"github.com/espfleet/crashdumps/shared/provision"
	"github.com/espfleet/crashdumps/shared/s3store"
	"github.com/espfleet/crashdumps/shared/sqsqueue"
	"github.com/espfleet/crashdumps/shared/telemetry"
)

const testCursorSecret = "a cursor secret for tests, 32 bytes or more"

// adminEnv is an admin API wired to fresh emulator resources.
type adminEnv struct {
	handler func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)
	svc     *admin.Service
	res     provision.Resources
	cfg     aws.Config
	db      *dynamodb.Client
	store   *dynamo.Store
	objects *s3store.Objects
	s3      *s3.Client
	sqs     *sqs.Client
	logs    *awstest.Buffer
	batches *batchSizes
	// requests counts every AWS request the clients send.
	requests *atomic.Int64
}

// batchSizes records the largest batch of each kind the clients sent:
// the emulator accepts batches that AWS would reject.
type batchSizes struct {
	writeItems, deleteObjects atomic.Int64 // largest batch
	writeCalls, deleteCalls   atomic.Int64
}

func raise(max *atomic.Int64, n int64) {
	for {
		old := max.Load()
		if n <= old || max.CompareAndSwap(old, n) {
			return
		}
	}
}

func (b *batchSizes) install(cfg *aws.Config) {
	cfg.APIOptions = append(cfg.APIOptions, func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("batchSizes",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				switch p := in.Parameters.(type) {
				case *dynamodb.BatchWriteItemInput:
					n := 0
					for _, reqs := range p.RequestItems {
						n += len(reqs)
					}
					b.writeCalls.Add(1)
					raise(&b.writeItems, int64(n))
				case *s3.DeleteObjectsInput:
					b.deleteCalls.Add(1)
					raise(&b.deleteObjects, int64(len(p.Delete.Objects)))
				}
				return next.HandleInitialize(ctx, in)
			}), middleware.Before)
	})
}

func newAdminEnv(t testing.TB) *adminEnv {
	t.Helper()
	e := &adminEnv{res: awstest.Resources(t), cfg: awstest.Config(t), logs: &awstest.Buffer{}, batches: &batchSizes{}}
	e.batches.install(&e.cfg)
	e.requests = awstest.CountRequests(&e.cfg)
	e.db = dynamodb.NewFromConfig(e.cfg)
	e.s3 = s3.NewFromConfig(e.cfg, awsconf.S3Options())
	e.sqs = sqs.NewFromConfig(e.cfg)
	e.store = &dynamo.Store{Client: e.db, Table: e.res.Table, RetentionDays: 90}
	e.objects = &s3store.Objects{Client: e.s3, Bucket: e.res.Bucket}
	cursors, err := admin.NewCursors([]byte(testCursorSecret))
	if err != nil {
		t.Fatal(err)
	}
	e.svc = &admin.Service{
		Store:         e.store,
		Objects:       e.objects,
		Queue:         &sqsqueue.Queue{Client: e.sqs, URL: e.res.QueueURL},
		Cursors:       cursors,
		RetentionDays: 90,
	}
	api := &httpapi.API{
		Logger:  telemetry.NewLogger(e.logs, nil),
		Metrics: telemetry.NewMetrics(e.logs),
		Admins:  httpapi.AdminAuth{Scope: "coredumps/admin"},
		Admin:   e.svc,
	}
	e.handler = httpapi.Lambda(api.Handler())
	return e
}

// caller is who sends a test request.
type caller int

const (
	asAdmin   caller = iota // a token with the admin scope
	asDevice                // a device's token
	anonymous               // no token
)

// adminEvent returns the admin fixture event with method, path and query
// replaced, authorized as who.
func adminEvent(t testing.TB, method, path string, query url.Values, who caller) events.APIGatewayV2HTTPRequest {
	t.Helper()
	ev := readEvent(t, "testdata/admin-event.json")
	ev.RouteKey = ""
	ev.RequestContext.RouteKey = ""
	ev.PathParameters = nil
	ev.RawPath = path
	ev.RequestContext.HTTP.Method = method
	ev.RequestContext.HTTP.Path = path
	ev.RawQueryString = query.Encode()
	ev.QueryStringParameters = map[string]string{}
	for k := range query {
		ev.QueryStringParameters[k] = query.Get(k)
	}
	switch who {
	case asDevice:
		ev.RequestContext.Authorizer = readEvent(t, "testdata/upload-event.json").RequestContext.Authorizer
	case anonymous:
		ev.RequestContext.Authorizer = nil
	}
	return ev
}

func readEvent(t testing.TB, name string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	raw, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// do sends ev through the Lambda handler, checks the response against the
// OpenAPI document and returns it with its body.
func (e *adminEnv) do(t testing.TB, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, []byte) {
	t.Helper()
	resp, err := e.handler(context.Background(), ev)
	if err != nil {
		t.Fatalf("handler returned a Lambda error: %v", err)
	}
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		if body, err = base64.StdEncoding.DecodeString(resp.Body); err != nil {
			t.Fatal(err)
		}
	}
	checkOpenAPI(t, ev, resp, body)
	return resp, body
}

// call is do with a request built from its parts.
func (e *adminEnv) call(t testing.TB, method, path string, query url.Values, who caller) (events.APIGatewayV2HTTPResponse, []byte) {
	t.Helper()
	return e.do(t, adminEvent(t, method, path, query, who))
}

// openAPIRouter finds a request's operation in the embedded document.
var openAPIRouter = sync.OnceValues(func() (routers.Router, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(httpapi.OpenAPI)
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, err
	}
	return legacy.NewRouter(doc)
})

// checkOpenAPI fails the test when a response does not match its
// operation in the OpenAPI document.
func checkOpenAPI(t testing.TB, ev events.APIGatewayV2HTTPRequest, resp events.APIGatewayV2HTTPResponse, body []byte) {
	t.Helper()
	if err := validateOpenAPI(ev, resp, body); err != nil {
		t.Errorf("%s %s answered %d against the OpenAPI document: %v\nbody: %s",
			ev.RequestContext.HTTP.Method, ev.RawPath, resp.StatusCode, err, body)
	}
}

// validateOpenAPI validates a response against the operation of its
// request in the OpenAPI document: status, headers and body.
func validateOpenAPI(ev events.APIGatewayV2HTTPRequest, resp events.APIGatewayV2HTTPResponse, body []byte) error {
	router, err := openAPIRouter()
	if err != nil {
		return fmt.Errorf("loading the OpenAPI document: %w", err)
	}
	u := "http://localhost" + ev.RawPath
	if ev.RawQueryString != "" {
		u += "?" + ev.RawQueryString
	}
	req, err := http.NewRequest(ev.RequestContext.HTTP.Method, u, nil)
	if err != nil {
		return err
	}
	route, params, err := router.FindRoute(req)
	if err != nil {
		return fmt.Errorf("finding the operation: %w", err)
	}
	h := http.Header{}
	for k, v := range resp.Headers {
		h.Set(k, v)
	}
	for k, vs := range resp.MultiValueHeaders {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 resp.StatusCode,
		Header:                 h,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true},
	}
	in.SetBodyBytes(body)
	return openapi3filter.ValidateResponse(context.Background(), in)
}

// newDump returns a dump of device uploaded at at, as the upload function
// would record it.
func newDump(device string, at time.Time) crashdump.Dump {
	id := crashdump.NewID(at)
	sum := sha256.Sum256([]byte(device + "/" + id))
	return crashdump.Dump{
		ID:              id,
		DeviceKey:       device,
		ModelCode:       "ps1",
		Chip:            "esp32c3",
		FirmwareVersion: "1.4.2",
		Size:            int64(len(dumpBytes(id))),
		SHA256:          hex.EncodeToString(sum[:]),
		UploadedAt:      at.UTC().Truncate(time.Millisecond),
		ParseStatus:     crashdump.StatusPending,
	}
}

// dumpBytes is the raw dump seeded for id.
func dumpBytes(id string) []byte { return []byte("core dump " + id + " \x00\x01\xfe\xff") }

// seed writes the records with BatchWriteItem through the store and, with
// objects, the raw bytes with PutObject from several goroutines.
func (e *adminEnv) seed(t testing.TB, dumps []crashdump.Dump, objects bool) {
	t.Helper()
	ctx := context.Background()
	if err := e.store.PutDumps(ctx, dumps); err != nil {
		t.Fatalf("seeding %d records: %v", len(dumps), err)
	}
	if !objects {
		return
	}
	work := make(chan *crashdump.Dump)
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 32 {
		wg.Go(func() {
			for d := range work {
				if err := e.objects.PutDump(ctx, d, dumpBytes(d.ID)); err != nil {
					failed.Store(err)
				}
			}
		})
	}
	for i := range dumps {
		work <- &dumps[i]
	}
	close(work)
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatalf("seeding objects: %v", err)
	}
}

// listPage is the body of a listing.
type listPage struct {
	Items      []crashdump.Dump `json:"items"`
	NextCursor string           `json:"next_cursor"`
}

// pages follows a listing from its first page to its last and returns
// the ids in the order served.
func (e *adminEnv) pages(t testing.TB, path string, query url.Values) (ids []string, pages int) {
	t.Helper()
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	for {
		resp, body := e.call(t, "GET", path, q, asAdmin)
		if resp.StatusCode != 200 {
			t.Fatalf("page %d: got %d, want 200 (%s)", pages+1, resp.StatusCode, body)
		}
		var p listPage
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatal(err)
		}
		pages++
		for _, d := range p.Items {
			ids = append(ids, d.ID)
		}
		if p.NextCursor == "" {
			return ids, pages
		}
		if pages > 1000 {
			t.Fatalf("listing does not end")
		}
		q.Set("cursor", p.NextCursor)
	}
}

// newestFirst returns the ids of dumps that keep says to, newest first.
func newestFirst(dumps []crashdump.Dump, keep func(*crashdump.Dump) bool) []string {
	var ids []string
	for i := range dumps {
		if keep == nil || keep(&dumps[i]) {
			ids = append(ids, dumps[i].ID)
		}
	}
	slices.Sort(ids)
	slices.Reverse(ids)
	return ids
}

// sameIDs reports the first difference between two id lists.
func sameIDs(t testing.TB, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("ids: got %d, want %d", len(got), len(want))
	}
	seen := map[string]bool{}
	for _, id := range got {
		if seen[id] {
			t.Errorf("id %s served twice", id)
		}
		seen[id] = true
	}
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Errorf("id %d: got %s, want %s", i, got[i], want[i])
			return
		}
	}
}

func errorCode(t testing.TB, body []byte) string {
	t.Helper()
	var e httpapi.ErrorBody
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	return e.Code
}

func dumpPath(d *crashdump.Dump, suffix ...string) string {
	return "/api/devices/" + d.DeviceKey + "/coredumps/" + d.ID + strings.Join(suffix, "")
}

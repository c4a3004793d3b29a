package retention_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/espfleet/crashdumps/shared/awsconf"
	"github.com/espfleet/crashdumps/shared/awstest"
	"github.com/espfleet/crashdumps/shared/crashdump"
	"github.com/espfleet/crashdumps/shared/dynamo"
	"github.com/espfleet/crashdumps/shared/parse"
	"github.com/espfleet/crashdumps/shared/retention"
	"github.com/espfleet/crashdumps/shared/s3store"
	"github.com/espfleet/crashdumps/shared/sqsqueue"
	"github.com/espfleet/crashdumps/shared/telemetry"
	"github.com/espfleet/crashdumps/shared/upload"
)

func TestMain(m *testing.M) { awstest.Main(m) }

// env is a sweeper wired to fresh emulator resources.
type env struct {
	store   *dynamo.Store
	objects *s3store.Objects
	sqs     *sqs.Client
	queue   *sqsqueue.Queue
	sweeper *retention.Sweeper
	logs    *awstest.Buffer
	// requests counts the AWS requests of every client of the env.
	requests *atomic.Int64
}

func newEnv(t testing.TB, rules retention.Rules) *env {
	t.Helper()
	res := awstest.Resources(t)
	cfg := awstest.Config(t)
	e := &env{logs: &awstest.Buffer{}}
	e.requests = awstest.CountRequests(&cfg)
	e.store = &dynamo.Store{Client: dynamodb.NewFromConfig(cfg), Table: res.Table, RetentionDays: 90}
	e.objects = &s3store.Objects{Client: s3.NewFromConfig(cfg, awsconf.S3Options()), Bucket: res.Bucket}
	e.sqs = sqs.NewFromConfig(cfg)
	e.queue = &sqsqueue.Queue{Client: e.sqs, URL: res.QueueURL}
	e.sweeper = &retention.Sweeper{
		Store:   e.store,
		Objects: e.objects,
		Queue:   e.queue,
		Rules:   rules,
		Logger:  telemetry.NewLogger(e.logs, nil),
		Metrics: telemetry.NewMetrics(e.logs),
	}
	return e
}

// dump returns a dump of the device uploaded age ago.
func dump(device string, age time.Duration, status crashdump.Status) crashdump.Dump {
	at := time.Now().Add(-age)
	id := crashdump.NewID(at)
	sum := sha256.Sum256([]byte(device + id))
	return crashdump.Dump{
		ID: id, DeviceKey: device, ModelCode: "ps1", Chip: "esp32c3",
		FirmwareVersion: "1.0.0", Size: 8, SHA256: hex.EncodeToString(sum[:]),
		UploadedAt: at.UTC(), ParseStatus: status,
	}
}

// seed writes the records in batches and the objects of withObject
// concurrently, through the adapters.
func (e *env) seed(t testing.TB, records []crashdump.Dump, withObject []crashdump.Dump) {
	t.Helper()
	if err := e.trySeed(records, withObject); err != nil {
		t.Fatal(err)
	}
}

// trySeed is seed for callers off the test's goroutine.
func (e *env) trySeed(records []crashdump.Dump, withObject []crashdump.Dump) error {
	ctx := context.Background()
	if err := e.store.ImportDumps(ctx, records); err != nil {
		return fmt.Errorf("seeding records: %w", err)
	}
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i := range withObject {
		sem <- struct{}{}
		wg.Add(1)
		go func(d *crashdump.Dump) {
			defer wg.Done()
			defer func() { <-sem }()
			if err := e.objects.PutDump(ctx, d, []byte("dumpdata")); err != nil {
				mu.Lock()
				firstErr = fmt.Errorf("seeding objects: %w", err)
				mu.Unlock()
			}
		}(&withObject[i])
	}
	wg.Wait()
	return firstErr
}

func (e *env) putObject(t testing.TB, key string) {
	t.Helper()
	_, err := e.objects.Client.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: &e.objects.Bucket, Key: aws.String(key), Body: strings.NewReader("x"),
	})
	if err != nil {
		t.Fatal(err)
	}
}

// state is every dump record and every object key, for comparing.
type state struct {
	records map[string]crashdump.Dump // by object key
	objects map[string]bool
}

func (e *env) state(t testing.TB) state {
	t.Helper()
	ctx := context.Background()
	st := state{records: map[string]crashdump.Dump{}, objects: map[string]bool{}}
	var devices []string
	for shard := range crashdump.DeviceShards {
		keys, _, err := e.store.RegistryPage(ctx, shard, "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		devices = append(devices, keys...)
	}
	for _, dev := range devices {
		recs, err := e.store.DeviceRecords(ctx, dev)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range recs {
			st.records[d.ObjectKey()] = d
		}
	}
	lp := s3.NewListObjectsV2Paginator(e.objects.Client, &s3.ListObjectsV2Input{Bucket: &e.objects.Bucket})
	for lp.HasMorePages() {
		page, err := lp.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			st.objects[aws.ToString(o.Key)] = true
		}
	}
	return st
}

func (s state) equal(o state) bool {
	if len(s.records) != len(o.records) || len(s.objects) != len(o.objects) {
		return false
	}
	for k, d := range s.records {
		od, ok := o.records[k]
		if !ok || od.ParseStatus != d.ParseStatus || od.Requeues != d.Requeues {
			return false
		}
	}
	for k := range s.objects {
		if !o.objects[k] {
			return false
		}
	}
	return true
}

// check asserts the invariants a finished sweep leaves: dumps within cap
// and age, and no record or object without its other half unless it is
// younger than the grace periods.
func (s state) check(t *testing.T, rules retention.Rules) {
	t.Helper()
	now := time.Now()
	perDevice := map[string]int{}
	for key, d := range s.records {
		perDevice[d.DeviceKey]++
		age := now.Sub(crashdump.IDTime(d.ID))
		if rules.MaxAge > 0 && age > rules.MaxAge {
			t.Errorf("record %s is %s old, over the age limit", key, age)
		}
		if !s.objects[key] && age > rules.UploadGrace {
			t.Errorf("record %s (%s old) has no object", key, age.Round(time.Second))
		}
	}
	for dev, n := range perDevice {
		if n > rules.MaxPerDevice {
			t.Errorf("device %s keeps %d dumps, over the cap of %d", dev, n, rules.MaxPerDevice)
		}
	}
	for key := range s.objects {
		if !strings.HasPrefix(key, crashdump.DumpPrefix) {
			continue
		}
		if _, ok := s.records[key]; ok {
			continue
		}
		_, id, err := crashdump.ParseObjectKey(key)
		if err != nil {
			t.Errorf("object %s is no dump key", key)
			continue
		}
		if age := now.Sub(crashdump.IDTime(id)); age > rules.OrphanObjectAge {
			t.Errorf("object %s (%s old) has no record", key, age.Round(time.Second))
		}
	}
}

func testRules() retention.Rules {
	r := retention.DefaultRules(3, 90)
	return r
}

// scenario is a seeded state with one of every case.
type scenario struct {
	keep    []string // object keys that must survive
	gone    []string // object keys that must be deleted
	stuck   map[string]crashdump.Dump
	outputs []string
}

const day = 24 * time.Hour

func seedScenario(t *testing.T, e *env) scenario {
	t.Helper()
	sc := scenario{stuck: map[string]crashdump.Dump{}}
	var records, objects []crashdump.Dump
	add := func(d crashdump.Dump, record, object, keep bool) crashdump.Dump {
		if record {
			records = append(records, d)
		}
		if object {
			objects = append(objects, d)
		}
		if object {
			if keep {
				sc.keep = append(sc.keep, d.ObjectKey())
			} else {
				sc.gone = append(sc.gone, d.ObjectKey())
			}
		}
		return d
	}
	// Over the cap of 3: the two oldest of five go.
	for i := range 5 {
		add(dump("capdev", time.Duration(5-i)*day, crashdump.StatusParsed), true, true, i >= 2)
	}
	// Expired, with a parsed output; and a young one.
	old := dump("olddev", 100*day, crashdump.StatusParsed)
	old.OutputKey = "parsed/olddev/" + old.ID + ".json"
	add(old, true, true, false)
	sc.outputs = append(sc.outputs, old.OutputKey)
	add(dump("olddev", day, crashdump.StatusParsed), true, true, true)
	// Orphans: old and fresh objects without records, old and fresh
	// records without objects.
	add(dump("orphdev", 2*time.Hour, crashdump.StatusParsed), false, true, false)
	add(dump("orphdev", 10*time.Minute, crashdump.StatusPending), false, true, true)
	add(dump("orphdev", time.Hour, crashdump.StatusParsed), true, false, false)
	add(dump("orphdev", 5*time.Minute, crashdump.StatusPending), true, false, true)
	add(dump("orphdev", 2*day, crashdump.StatusParsed), true, true, true)
	// A device without a registry entry: its old object goes, its
	// fresh one stays.
	add(dump("ghostdev", 3*time.Hour, crashdump.StatusParsed), false, true, false)
	add(dump("ghostdev", 5*time.Minute, crashdump.StatusParsed), false, true, true)
	// Stuck parses.
	parsing := dump("stuckdev", 3*time.Hour, crashdump.StatusParsing)
	parsing.LeaseUntil = time.Now().Add(-time.Hour)
	sc.stuck["requeue-parsing"] = add(parsing, true, true, true)
	pending := dump("stuckdev", 2*time.Hour, crashdump.StatusPending)
	pending.Requeues = 1
	sc.stuck["requeue-pending"] = add(pending, true, true, true)
	limit := dump("stuckdev", 4*time.Hour, crashdump.StatusPending)
	limit.Requeues = 3
	sc.stuck["fail"] = add(limit, true, true, true)
	leased := dump("leasedev", 90*time.Minute, crashdump.StatusParsing)
	leased.LeaseUntil = time.Now().Add(time.Hour)
	sc.stuck["leased"] = add(leased, true, true, true)
	sc.stuck["fresh"] = add(dump("fine", 5*time.Minute, crashdump.StatusPending), true, true, true)
	// Healthy dumps of a healthy device.
	add(dump("fine", 3*day, crashdump.StatusParsed), true, true, true)
	add(dump("fine", 2*day, crashdump.StatusError), true, true, true)

	e.seed(t, records, objects)
	for _, k := range sc.outputs {
		e.putObject(t, k)
	}
	return sc
}

func wantCounts(t *testing.T, rep *retention.Report, dry bool) {
	t.Helper()
	got := map[string]int{
		"deleted_over_cap": rep.DeletedOverCap, "deleted_expired": rep.DeletedExpired,
		"orphan_objects": rep.OrphanObjects, "orphan_records": rep.OrphanRecords,
		"requeued": rep.Requeued, "failed_stuck": rep.FailedStuck, "errors": rep.Errors,
		"devices": rep.Devices,
	}
	want := map[string]int{
		"deleted_over_cap": 2, "deleted_expired": 1, "orphan_objects": 2, "orphan_records": 1,
		"requeued": 2, "failed_stuck": 1, "errors": 0, "devices": 7,
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: got %d, want %d", k, got[k], w)
		}
	}
	if rep.DryRun != dry || !rep.Complete || rep.Resume != "" {
		t.Errorf("dry_run, complete, resume: got %v, %v, %q, want %v, true, \"\"", rep.DryRun, rep.Complete, rep.Resume, dry)
	}
	if t.Failed() {
		b, _ := json.MarshalIndent(rep, "", "  ")
		t.Logf("report: %s", b)
	}
}

func TestSweeper_Sweep(t *testing.T) {
	ctx := context.Background()
	rules := testRules()
	e := newEnv(t, rules)
	sc := seedScenario(t, e)
	before := e.state(t)

	t.Run("OKDryRunChangesNothing", func(t *testing.T) {
		rep, err := e.sweeper.Sweep(ctx, retention.Options{DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		wantCounts(t, rep, true)
		if after := e.state(t); !after.equal(before) {
			t.Errorf("a dry run changed the state: %d records, %d objects before; %d, %d after",
				len(before.records), len(before.objects), len(after.records), len(after.objects))
		}
		if _, ok, _ := e.store.LoadCheckpoint(ctx); ok {
			t.Errorf("a dry run stored a checkpoint")
		}
	})

	t.Run("OK", func(t *testing.T) {
		rep, err := e.sweeper.Sweep(ctx, retention.Options{})
		if err != nil {
			t.Fatal(err)
		}
		wantCounts(t, rep, false)
		after := e.state(t)
		after.check(t, rules)
		for _, k := range sc.keep {
			if !after.objects[k] {
				t.Errorf("object %s was deleted, want kept", k)
			}
		}
		for _, k := range append(sc.gone, sc.outputs...) {
			if after.objects[k] {
				t.Errorf("object %s was kept, want deleted", k)
			}
		}
		status := func(name string) crashdump.Dump {
			d := sc.stuck[name]
			got, err := e.store.GetDump(ctx, d.DeviceKey, d.ID)
			if err != nil {
				t.Fatalf("reading %s: %v", name, err)
			}
			return *got
		}
		if d := status("requeue-parsing"); d.ParseStatus != crashdump.StatusPending || d.Requeues != 1 {
			t.Errorf("stuck PARSING: got %s with %d requeues, want PENDING with 1", d.ParseStatus, d.Requeues)
		}
		if d := status("requeue-pending"); d.ParseStatus != crashdump.StatusPending || d.Requeues != 2 {
			t.Errorf("stuck PENDING: got %s with %d requeues, want PENDING with 2", d.ParseStatus, d.Requeues)
		}
		if d := status("fail"); d.ParseStatus != crashdump.StatusError || !strings.Contains(d.ParseError, "after 3 requeues") {
			t.Errorf("requeue limit: got %s %q, want ERROR saying it gave up after 3 requeues", d.ParseStatus, d.ParseError)
		}
		if d := status("leased"); d.ParseStatus != crashdump.StatusParsing || d.Requeues != 0 {
			t.Errorf("leased: got %s with %d requeues, want PARSING untouched", d.ParseStatus, d.Requeues)
		}
		if d := status("fresh"); d.ParseStatus != crashdump.StatusPending || d.Requeues != 0 {
			t.Errorf("fresh: got %s with %d requeues, want PENDING untouched", d.ParseStatus, d.Requeues)
		}
		msgs := e.receive(t)
		sort.Strings(msgs)
		want := []string{sc.stuck["requeue-parsing"].ID, sc.stuck["requeue-pending"].ID}
		sort.Strings(want)
		if fmt.Sprint(msgs) != fmt.Sprint(want) {
			t.Errorf("queued parses: got %v, want %v", msgs, want)
		}
		logs := e.logs.String()
		for _, w := range []string{
			`"msg":"retention sweep"`, `"Operation":"retention_sweep"`,
			`"retention_deleted":3`, `"retention_orphans":3`,
			`"retention_requeued":2`, `"retention_failed":1`,
		} {
			if !strings.Contains(logs, w) {
				t.Errorf("logs lack %s:\n%s", w, logs)
			}
		}
	})

	t.Run("OKSecondSweepFindsNothing", func(t *testing.T) {
		rep, err := e.sweeper.Sweep(ctx, retention.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if n := rep.DeletedOverCap + rep.DeletedExpired + rep.OrphanObjects + rep.OrphanRecords + rep.FailedStuck; n != 0 {
			t.Errorf("second sweep acted %d times, want 0: %+v", n, rep.Actions)
		}
	})

	t.Run("OKLoweredCap", func(t *testing.T) {
		e.sweeper.Rules.MaxPerDevice = 1
		defer func() { e.sweeper.Rules.MaxPerDevice = rules.MaxPerDevice }()
		if _, err := e.sweeper.Sweep(ctx, retention.Options{}); err != nil {
			t.Fatal(err)
		}
		lowered := rules
		lowered.MaxPerDevice = 1
		after := e.state(t)
		after.check(t, lowered)
		for _, dev := range []string{"capdev", "olddev", "fine"} {
			var newest string
			n := 0
			for _, d := range after.records {
				if d.DeviceKey == dev {
					n++
					newest = d.ID
				}
			}
			if n != 1 {
				t.Errorf("%s keeps %d dumps, want 1", dev, n)
				continue
			}
			for _, d := range before.records {
				if d.DeviceKey == dev && d.ID > newest {
					t.Errorf("%s kept %s, not its newest %s", dev, newest, d.ID)
				}
			}
		}
	})
}

func (e *env) receive(t *testing.T) []string {
	t.Helper()
	var ids []string
	for range 5 {
		out, err := e.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: &e.queue.URL, MaxNumberOfMessages: 10,
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			break
		}
		for _, m := range out.Messages {
			var msg parse.Message
			if json.Unmarshal([]byte(aws.ToString(m.Body)), &msg) == nil && msg.Type == parse.MessageTypeReparse {
				ids = append(ids, msg.ID)
			}
		}
	}
	return ids
}

func TestSweeper_SweepBudget(t *testing.T) {
	ctx := context.Background()
	rules := testRules()
	e := newEnv(t, rules)
	seedScenario(t, e)

	t.Run("OKResumesAndFinishes", func(t *testing.T) {
		var total retention.Report
		var sweeps int
		var last *retention.Report
		for !total.Complete {
			if sweeps++; sweeps > 200 {
				t.Fatalf("no end after %d sweeps; last stopped at %q", sweeps, last.Resume)
			}
			// A deadline in the past: each sweep does one unit of work
			// and stops.
			rep, err := e.sweeper.Sweep(ctx, retention.Options{Deadline: time.Now()})
			if err != nil {
				t.Fatal(err)
			}
			if sweeps == 1 && (rep.Complete || rep.Resume == "") {
				t.Fatalf("first sweep: complete %v, resume %q; want it stopped early", rep.Complete, rep.Resume)
			}
			if sweeps == 2 && rep.ResumedFrom != last.Resume {
				t.Errorf("second sweep resumed from %q, want %q", rep.ResumedFrom, last.Resume)
			}
			if !rep.Complete {
				cp, ok, err := e.store.LoadCheckpoint(ctx)
				if err != nil || !ok || cp.Token() != rep.Resume {
					t.Fatalf("stored checkpoint: got %q %v %v, want %q", cp.Token(), ok, err, rep.Resume)
				}
			}
			total.Complete = rep.Complete
			total.Devices += rep.Devices
			total.DeletedOverCap += rep.DeletedOverCap
			total.DeletedExpired += rep.DeletedExpired
			total.OrphanObjects += rep.OrphanObjects
			total.OrphanRecords += rep.OrphanRecords
			total.Requeued += rep.Requeued
			total.FailedStuck += rep.FailedStuck
			total.Errors += rep.Errors
			last = rep
		}
		if sweeps < 10 {
			t.Errorf("sweeps: got %d, want one per device and stuck dump at least", sweeps)
		}
		wantCounts(t, &total, false)
		if _, ok, _ := e.store.LoadCheckpoint(ctx); ok {
			t.Errorf("checkpoint left after the sweep completed")
		}
		e.state(t).check(t, rules)
		if ids := e.receive(t); len(ids) != 2 {
			t.Errorf("queued parses: got %d, want 2 (no requeue twice)", len(ids))
		}
	})
}

func TestSweeper_SweepDevice(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, testRules())
	seedScenario(t, e)
	t.Run("OK", func(t *testing.T) {
		rep, err := e.sweeper.Sweep(ctx, retention.Options{DeviceKey: "capdev"})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Devices != 1 || rep.DeletedOverCap != 2 || rep.OrphanObjects+rep.Requeued+rep.FailedStuck != 0 {
			t.Errorf("got %d devices, %d over cap, %d others; want 1, 2, 0",
				rep.Devices, rep.DeletedOverCap, rep.OrphanObjects+rep.Requeued+rep.FailedStuck)
		}
		rep, err = e.sweeper.Sweep(ctx, retention.Options{DeviceKey: "stuckdev", DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Requeued != 2 || rep.FailedStuck != 1 {
			t.Errorf("stuckdev: got %d requeued, %d failed; want 2, 1", rep.Requeued, rep.FailedStuck)
		}
	})
	t.Run("ErrBadDeviceKey", func(t *testing.T) {
		_, err := e.sweeper.Sweep(ctx, retention.Options{DeviceKey: "no/such"})
		if got, want := crashdump.ErrorCode(err), crashdump.EInvalid; got != want {
			t.Errorf("got %v, want %v", got, want)
		}
	})
}

func TestSweeper_SweepDuringUploads(t *testing.T) {
	ctx := context.Background()
	rules := testRules()
	e := newEnv(t, rules)
	seedScenario(t, e)
	logger := telemetry.NewLogger(e.logs, nil)
	svc := &upload.Service{
		Store: e.store, Objects: e.objects, Logger: logger,
		Limits: upload.Limits{MaxBytes: 1 << 10, MaxPerHour: 1000, MaxPerDevice: rules.MaxPerDevice},
	}
	devices := []string{"capdev", "orphdev", "fine", "newdev"}

	done := make(chan struct{})
	var sweeps sync.WaitGroup
	sweeps.Add(1)
	var sweepErr error
	runs := 0
	go func() {
		defer sweeps.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := e.sweeper.Sweep(ctx, retention.Options{}); err != nil {
				sweepErr = err
				return
			}
			runs++
		}
	}()
	var uploads sync.WaitGroup
	var mu sync.Mutex
	var uploaded []string
	for w := range 4 {
		uploads.Add(1)
		go func() {
			defer uploads.Done()
			for i := range 10 {
				dev := devices[(w+i)%len(devices)]
				res, err := svc.Upload(ctx, upload.Request{
					Device: crashdump.Device{ModelCode: "ps1", Key: dev},
					Chip:   "esp32", FirmwareVersion: "2.0.0",
					Body: []byte(fmt.Sprintf("crash %d of worker %d", i, w)),
				})
				if err != nil {
					t.Errorf("upload: %v", err)
					continue
				}
				mu.Lock()
				uploaded = append(uploaded, crashdump.ObjectKey(dev, res.ID))
				mu.Unlock()
			}
		}()
	}
	uploads.Wait()
	close(done)
	sweeps.Wait()
	if sweepErr != nil {
		t.Fatal(sweepErr)
	}
	t.Logf("%d sweeps ran during the uploads", runs)
	if _, err := e.sweeper.Sweep(ctx, retention.Options{}); err != nil {
		t.Fatal(err)
	}
	st := e.state(t)
	st.check(t, rules)
	// Every upload has finished: each kept its record and its object, or
	// lost both to the cap; never one without the other.
	for _, key := range uploaded {
		_, rec := st.records[key]
		if rec != st.objects[key] {
			t.Errorf("upload %s: record %v, object %v; want both or neither", key, rec, st.objects[key])
		}
	}
	if n := countDevice(st, "newdev"); n != rules.MaxPerDevice {
		t.Errorf("newdev keeps %d dumps, want the cap %d", n, rules.MaxPerDevice)
	}
}

func countDevice(st state, dev string) int {
	n := 0
	for _, d := range st.records {
		if d.DeviceKey == dev {
			n++
		}
	}
	return n
}

func TestObjects_DevicePrefixes(t *testing.T) {
	e := newEnv(t, testRules())
	for _, k := range []string{
		"coredumps/a1/x.dmp", "coredumps/a1/y.dmp", "coredumps/a10/x.dmp",
		"coredumps/b2/x.dmp", "coredumps/loose.dmp", "parsed/a1/x.json",
	} {
		e.putObject(t, k)
	}
	tests := []struct {
		name, after string
		want        []string
	}{
		{"OK", "", []string{"a1", "a10", "b2"}},
		{"OKAfter", "a1", []string{"a10", "b2"}},
		{"OKAfterLast", "b2", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			err := e.objects.DevicePrefixes(context.Background(), tt.after, func(keys []string) error {
				got = append(got, keys...)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

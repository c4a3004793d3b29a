package parse

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/espfleet/crashdumps/shared/crashdump"
)

// Handler is the parse function's SQS handler. The queue carries three
// kinds of body: S3 event notifications for new dumps (under
// crashdump.DumpPrefix of DumpBucket) and new firmware ZIPs (keys that
// FirmwareKeys matches, in FirmwareBucket), and Message requests of the
// project's own. A body that is none of these is logged and dropped, since
// delivering it again cannot make it valid.
type Handler struct {
	Service        *Service
	DumpBucket     string
	FirmwareBucket string
	// Workers is how many messages of a batch run at once; 0 means 1.
	Workers int
}

// Handle processes a batch and reports the messages the queue should
// deliver again. It never fails the whole batch. Messages about the same
// dump (an S3 event and a re-parse request, or a redelivery) run one after
// the other, so the second finds the first's outcome instead of racing it
// for the claim; other messages run up to Workers at a time.
func (h *Handler) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	var (
		mu   sync.Mutex
		resp events.SQSEventResponse
		wg   sync.WaitGroup
		sem  = make(chan struct{}, max(h.Workers, 1))
	)
	for _, group := range h.byDump(ev.Records) {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			for _, m := range group {
				if err := h.message(ctx, m); err != nil {
					mu.Lock()
					resp.BatchItemFailures = append(resp.BatchItemFailures,
						events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return resp, nil
}

// byDump groups a batch's messages by the one dump each is about, keeping
// their order; a message about no single dump is a group of its own.
func (h *Handler) byDump(msgs []events.SQSMessage) [][]events.SQSMessage {
	var groups [][]events.SQSMessage
	index := map[string]int{}
	for _, m := range msgs {
		key := h.dumpOf(m)
		if i, ok := index[key]; ok && key != "" {
			groups[i] = append(groups[i], m)
			continue
		}
		if key != "" {
			index[key] = len(groups)
		}
		groups = append(groups, []events.SQSMessage{m})
	}
	return groups
}

// dumpOf returns "<device>/<id>" of the dump a message is about, or "".
func (h *Handler) dumpOf(m events.SQSMessage) string {
	body, err := DecodeBody([]byte(m.Body))
	switch {
	case err != nil:
		return ""
	case body.Message != nil:
		return body.Message.DeviceKey + "/" + body.Message.ID
	case len(body.Records) == 1 && body.Records[0].Bucket == h.DumpBucket:
		if dev, id, err := crashdump.ParseObjectKey(body.Records[0].Key); err == nil {
			return dev + "/" + id
		}
	}
	return ""
}

// message handles one body; an error asks for another delivery.
func (h *Handler) message(ctx context.Context, m events.SQSMessage) (err error) {
	s := h.Service
	defer func() {
		if r := recover(); r != nil {
			s.Metrics.Record(ctx, Operation, MetricUnexpectedError, 0, nil)
			s.Logger.ErrorContext(ctx, "panic handling message; will retry", "message_id", m.MessageId, "panic", fmt.Sprint(r))
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	body, err := DecodeBody([]byte(m.Body))
	if err != nil {
		s.Metrics.Record(ctx, Operation, MetricMalformed, 0, nil)
		s.Logger.WarnContext(ctx, "malformed message dropped", "message_id", m.MessageId,
			"error", err, "body", truncate(m.Body, 512))
		return nil
	}
	if body.Message != nil {
		return s.ParseDump(ctx, body.Message.DeviceKey, body.Message.ID)
	}
	if body.TestEvent {
		s.Metrics.Record(ctx, Operation, MetricIgnored, 0, nil)
		s.Logger.InfoContext(ctx, "S3 test event ignored", "message_id", m.MessageId)
		return nil
	}
	var errs []error
	for _, r := range body.Records {
		if err := h.record(ctx, m.MessageId, r); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// record handles one S3 event record.
func (h *Handler) record(ctx context.Context, msgID string, r S3Record) error {
	s := h.Service
	if !strings.HasPrefix(r.EventName, "ObjectCreated:") {
		s.Metrics.Record(ctx, Operation, MetricIgnored, 0, nil)
		s.Logger.InfoContext(ctx, "S3 event ignored", "message_id", msgID, "event_name", r.EventName, "key", r.Key)
		return nil
	}
	if r.Bucket == h.DumpBucket && strings.HasPrefix(r.Key, crashdump.DumpPrefix) {
		dev, id, err := crashdump.ParseObjectKey(r.Key)
		if err == nil {
			return s.ParseDump(ctx, dev, id)
		}
	} else if r.Bucket == h.FirmwareBucket {
		if model, version, ok := s.Firmware.ZIPKey.Match(r.Key); ok {
			return s.FirmwareArrived(ctx, model, version)
		}
	}
	s.Metrics.Record(ctx, Operation, MetricMalformed, 0, nil)
	s.Logger.WarnContext(ctx, "S3 event for an unexpected object dropped", "message_id", msgID,
		"bucket", r.Bucket, "key", r.Key)
	return nil
}

// Body is a decoded parse-queue message body: exactly one of Message,
// Records (an S3 event notification) or TestEvent.
type Body struct {
	Message   *Message
	Records   []S3Record
	TestEvent bool
}

// S3Record is the part of an S3 event notification record that the parse
// function reads. Key is decoded (S3 sends it URL-encoded, '+' for space).
type S3Record struct {
	EventName string
	EventTime time.Time
	Bucket    string
	Key       string
	Size      int64
	ETag      string
}

// s3Event mirrors the notification JSON. eventTime stays a string: AWS
// writes RFC 3339 with a zone, some emulators leave the zone out.
type s3Event struct {
	Records []struct {
		EventSource string `json:"eventSource"`
		EventName   string `json:"eventName"`
		EventTime   string `json:"eventTime"`
		S3          struct {
			Bucket struct {
				Name string `json:"name"`
			} `json:"bucket"`
			Object struct {
				Key  string `json:"key"`
				Size int64  `json:"size"`
				ETag string `json:"eTag"`
			} `json:"object"`
		} `json:"s3"`
	} `json:"Records"`
}

// maxBody bounds a message body; SQS allows 256 KiB.
const maxBody = 256 << 10

// DecodeBody reads and checks a parse-queue message body.
func DecodeBody(b []byte) (*Body, error) {
	if len(b) > maxBody {
		return nil, fmt.Errorf("body of %d bytes is over %d", len(b), maxBody)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, fmt.Errorf("decoding body: %w", err)
	}
	switch {
	case top["Records"] != nil:
		return decodeS3Event(b)
	case top["type"] != nil:
		var m Message
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("decoding parse message: %w", err)
		}
		if err := m.Validate(); err != nil {
			return nil, fmt.Errorf("checking parse message: %w", err)
		}
		return &Body{Message: &m}, nil
	case string(top["Event"]) == `"s3:TestEvent"`:
		return &Body{TestEvent: true}, nil
	}
	return nil, errors.New("body is neither an S3 event notification nor a parse message")
}

func decodeS3Event(b []byte) (*Body, error) {
	var ev s3Event
	if err := json.Unmarshal(b, &ev); err != nil {
		return nil, fmt.Errorf("decoding S3 event: %w", err)
	}
	if len(ev.Records) == 0 {
		return nil, errors.New("S3 event has no records")
	}
	body := &Body{Records: make([]S3Record, 0, len(ev.Records))}
	for i, r := range ev.Records {
		if r.EventSource != "aws:s3" {
			return nil, fmt.Errorf("Records[%d].eventSource is %q, not aws:s3", i, r.EventSource)
		}
		if r.EventName == "" || r.S3.Bucket.Name == "" || r.S3.Object.Key == "" {
			return nil, fmt.Errorf("Records[%d] lacks eventName, s3.bucket.name or s3.object.key", i)
		}
		key, err := url.QueryUnescape(r.S3.Object.Key)
		if err != nil {
			return nil, fmt.Errorf("Records[%d].s3.object.key: %w", i, err)
		}
		t, err := parseEventTime(r.EventTime)
		if err != nil {
			return nil, fmt.Errorf("Records[%d].eventTime: %w", i, err)
		}
		body.Records = append(body.Records, S3Record{
			EventName: r.EventName,
			EventTime: t,
			Bucket:    r.S3.Bucket.Name,
			Key:       key,
			Size:      r.S3.Object.Size,
			ETag:      r.S3.Object.ETag,
		})
	}
	return body, nil
}

// parseEventTime reads an RFC 3339 time; one without a zone is UTC.
func parseEventTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	t, err := time.ParseInLocation("2006-01-02T15:04:05.999999999", s, time.UTC)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time", s)
	}
	return t, nil
}

// Package telemetry writes the service's structured logs (log/slog JSON,
// with the Lambda request id on every line) and its metrics in CloudWatch
// Embedded Metric Format, which CloudWatch Logs turns into metrics without
// any API call from the function.
package telemetry

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// NewLogger returns a JSON logger on w that adds the Lambda request id of
// the context to every record logged with a context.
func NewLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})
	return slog.New(requestIDHandler{h})
}

type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(as)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

// RequestID returns the Lambda request id carried by ctx, or "".
func RequestID(ctx context.Context) string {
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		return lc.AwsRequestID
	}
	return ""
}

// Namespace is the CloudWatch namespace of every metric of the service.
const Namespace = "CrashDumps"

// Metrics writes Embedded Metric Format records. It is safe for concurrent
// use; each record is one line.
type Metrics struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
}

// NewMetrics returns a Metrics writing to w (os.Stdout in a Lambda).
func NewMetrics(w io.Writer) *Metrics { return &Metrics{w: w, now: time.Now} }

// Record writes one outcome of an operation: its status, its duration in
// milliseconds and a count of 1, with Operation and Status as dimensions,
// plus any extra counts as further metrics of the same record.
func (m *Metrics) Record(ctx context.Context, operation, status string, d time.Duration, extra map[string]float64) {
	type metric struct {
		Name string `json:"Name"`
		Unit string `json:"Unit"`
	}
	metrics := []metric{{"Duration", "Milliseconds"}, {"Count", "Count"}}
	rec := map[string]any{
		"Operation": operation,
		"Status":    status,
		"Duration":  float64(d.Microseconds()) / 1000,
		"Count":     1,
	}
	for name, v := range extra {
		metrics = append(metrics, metric{name, "Count"})
		rec[name] = v
	}
	if id := RequestID(ctx); id != "" {
		rec["request_id"] = id
	}
	rec["_aws"] = map[string]any{
		"Timestamp": m.now().UnixMilli(),
		"CloudWatchMetrics": []any{map[string]any{
			"Namespace":  Namespace,
			"Dimensions": [][]string{{"Operation", "Status"}},
			"Metrics":    metrics,
		}},
	}
	line, err := json.Marshal(rec)
	if err != nil {
		return // only plain values above; cannot fail
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.w.Write(append(line, '\n'))
}

// Package httpapi is the HTTP layer of the service: its routes, the
// authorization of devices and admins from the claims API Gateway's JWT
// authorizer verified, the one table from application error codes to HTTP
// statuses, and the wrapper that gives every endpoint its metric and its log
// line. Handlers call the domain packages and hold no rules of their own.
package httpapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/espfleet/crashdumps/shared/admin"
	"github.com/espfleet/crashdumps/shared/crashdump"
	"github.com/espfleet/crashdumps/shared/crashgroup"
	"github.com/espfleet/crashdumps/shared/telemetry"
	"github.com/espfleet/crashdumps/shared/upload"
)

// API serves the routes of whichever services are set: a function's main
// sets only its own.
type API struct {
	Logger  *slog.Logger
	Metrics *telemetry.Metrics
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// Devices authorizes device requests.
	Devices DeviceAuth
	// Upload serves POST /iot/coredump when set.
	Upload *upload.Service

	// Admins authorizes admin requests.
	Admins AdminAuth
	// Admin serves the admin routes under /api/ when set.
	Admin *admin.Service
	// CrashGroups serves GET /api/crash-groups, for admins, when set.
	CrashGroups *crashgroup.Service
	// Retention serves POST /api/retention, for admins, when set.
	Retention RetentionSweeper
}

// Handler returns the routes of the services set on a.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	if a.Upload != nil {
		mux.Handle("POST /iot/coredump", a.endpoint("coredump_upload", a.upload))
	}
	if a.Admin != nil {
		a.adminRoutes(mux)
	}
	if a.CrashGroups != nil {
		mux.Handle("GET /api/crash-groups", a.endpoint("crash_group_list", a.adminOnly(a.listCrashGroups)))
	}
	if a.Retention != nil {
		mux.Handle("POST /api/retention", a.endpoint("retention_request", a.adminOnly(a.retention)))
	}
	mux.Handle("/", a.endpoint("not_found", func(w http.ResponseWriter, r *http.Request, o *Outcome) error {
		return crashdump.Errorf(crashdump.ENotFound, "no route for %s %s", r.Method, r.URL.Path)
	}))
	return mux
}

// statusOf is the one table from application error codes to HTTP statuses.
var statusOf = map[string]int{
	crashdump.EInvalid:      http.StatusBadRequest,
	crashdump.EUnauthorized: http.StatusUnauthorized,
	crashdump.EForbidden:    http.StatusForbidden,
	crashdump.ENotFound:     http.StatusNotFound,
	crashdump.EConflict:     http.StatusConflict,
	crashdump.ETooLarge:     http.StatusRequestEntityTooLarge,
	crashdump.ERateLimited:  http.StatusTooManyRequests,
	crashdump.EUnavailable:  http.StatusServiceUnavailable,
	crashdump.EUnsupported:  http.StatusUnsupportedMediaType,
	crashdump.EInternal:     http.StatusInternalServerError,
}

// StatusOf returns the HTTP status of an error's code.
func StatusOf(err error) int {
	if s, ok := statusOf[crashdump.ErrorCode(err)]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Outcome collects what one request's log line and metric say besides the
// error: the status word for success, and attributes such as the device and
// dump id.
type Outcome struct {
	// Status is the metric's status on success; "ok" when empty.
	Status string
	attrs  []any
}

// Add records attributes for the request's log line.
func (o *Outcome) Add(args ...any) { o.attrs = append(o.attrs, args...) }

// handlerFunc is an endpoint: it writes its success response itself and
// returns any error for the wrapper to answer.
type handlerFunc func(w http.ResponseWriter, r *http.Request, o *Outcome) error

// endpoint wraps h with the error answer, the metric and the log line that
// every outcome gets, error paths included.
func (a *API) endpoint(op string, h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := a.now()
		o := &Outcome{}
		err := h(w, r, o)
		status := o.Status
		if status == "" {
			status = "ok"
		}
		level := slog.LevelInfo
		attrs := append([]any{"operation", op, "method", r.Method, "path", r.URL.Path}, o.attrs...)
		if err != nil {
			status = crashdump.ErrorCode(err)
			if status == crashdump.EInternal || status == crashdump.EUnavailable {
				level = slog.LevelError
				attrs = append(attrs, "error", err.Error())
			} else {
				level = slog.LevelWarn
				attrs = append(attrs, "reason", crashdump.ErrorMessage(err))
			}
			a.writeError(w, err)
		}
		d := a.now().Sub(start)
		attrs = append(attrs, "status", status, "duration_ms", d.Milliseconds())
		a.Logger.Log(r.Context(), level, "request", attrs...)
		a.Metrics.Record(r.Context(), op, status, d, nil)
	})
}

func (a *API) writeError(w http.ResponseWriter, err error) {
	var ae *crashdump.Error
	if errors.As(err, &ae) && ae.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(ae.RetryAfter))
	}
	writeJSON(w, StatusOf(err), ErrorBody{
		Code:    crashdump.ErrorCode(err),
		Message: crashdump.ErrorMessage(err),
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (a *API) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

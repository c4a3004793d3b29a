package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/espfleet/crashdumps/shared/crashdump"
	"github.com/espfleet/crashdumps/shared/retention"
)

// RetentionSweeper runs the sweep an admin asks for.
type RetentionSweeper interface {
	Request(ctx context.Context, opts retention.Options) (*retention.Report, error)
}

var _ RetentionSweeper = (*retention.Runner)(nil)

// RetentionRequest is the body of POST /api/retention.
type RetentionRequest struct {
	// DryRun is required: a sweep that deletes must be asked for.
	DryRun *bool `json:"dry_run"`
	// DeviceKey, when set, limits the sweep to one device.
	DeviceKey *string `json:"device_key,omitempty"`
}

// maxRetentionBody bounds the request body; a valid one is far smaller.
const maxRetentionBody = 4 << 10

// retention serves POST /api/retention with the body
// {"dry_run": true|false, "device_key": "..."}, answering the report.
func (a *API) retention(w http.ResponseWriter, r *http.Request, o *Outcome) error {
	req, err := readRetentionRequest(r)
	if err != nil {
		return err
	}
	opts := retention.Options{DryRun: *req.DryRun}
	if req.DeviceKey != nil {
		opts.DeviceKey = *req.DeviceKey
		o.Add("device_key", opts.DeviceKey)
	}
	o.Add("dry_run", opts.DryRun)
	rep, err := a.Retention.Request(r.Context(), opts)
	if err != nil {
		return fmt.Errorf("running retention sweep: %w", err)
	}
	o.Status = "complete"
	if !rep.Complete {
		o.Status = "partial"
	}
	if rep.DryRun {
		o.Status = "dry_run_" + o.Status
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// readRetentionRequest decodes the body strictly: one JSON object with
// only the known fields, each of its type, dry_run present and a valid
// device key when one is given.
func readRetentionRequest(r *http.Request) (RetentionRequest, error) {
	var req RetentionRequest
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxRetentionBody))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return req, crashdump.Errorf(crashdump.ETooLarge, "the body is larger than %d bytes", maxRetentionBody)
	}
	if err != nil {
		return req, fmt.Errorf("reading body: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, bodyError(err)
	}
	if dec.More() {
		return req, crashdump.Errorf(crashdump.EInvalid, "the body must hold one JSON object and nothing after it")
	}
	if req.DryRun == nil {
		return req, crashdump.Errorf(crashdump.EInvalid, "dry_run is required (true or false)")
	}
	if req.DeviceKey != nil {
		if err := crashdump.ValidateDeviceKey(*req.DeviceKey); err != nil {
			return req, err
		}
	}
	return req, nil
}

// bodyError turns a JSON decoding error into a message that names the
// field or the offset and holds nothing of the input.
func bodyError(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return crashdump.Errorf(crashdump.EInvalid, "%s must be a JSON %s", typeErr.Field, jsonType(typeErr.Field))
	case errors.As(err, &typeErr):
		return crashdump.Errorf(crashdump.EInvalid, "the body must be a JSON object")
	case errors.As(err, &syntaxErr):
		return crashdump.Errorf(crashdump.EInvalid, "the body is not valid JSON (at byte %d)", syntaxErr.Offset)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return crashdump.Errorf(crashdump.EInvalid, "the body must be a JSON object with dry_run")
	}
	// The decoder reports an unknown field only as text.
	return crashdump.Errorf(crashdump.EInvalid, "the body may hold only dry_run and device_key")
}

func jsonType(field string) string {
	if field == "dry_run" {
		return "boolean"
	}
	return "string"
}

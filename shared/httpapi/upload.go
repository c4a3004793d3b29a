package httpapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/espfleet/crashdumps/shared/crashdump"
	"github.com/espfleet/crashdumps/shared/upload"
)

// UploadResponse is the body of a successful upload.
type UploadResponse struct {
	ID          string           `json:"id"`
	ParseStatus crashdump.Status `json:"parse_status"`
	Duplicate   bool             `json:"duplicate,omitempty"`
}

// upload serves POST /iot/coredump?chip=&firmware_version= with the raw
// dump as the body.
func (a *API) upload(w http.ResponseWriter, r *http.Request, o *Outcome) error {
	dev, err := a.Devices.Device(r)
	if err != nil {
		return err
	}
	o.Add("device_key", dev.Key, "model_code", dev.ModelCode)
	q := r.URL.Query()
	body, err := readBody(r, a.Upload.Limits.MaxBytes)
	if err != nil {
		return err
	}
	res, err := a.Upload.Upload(r.Context(), upload.Request{
		Device:          dev,
		Chip:            q.Get("chip"),
		FirmwareVersion: q.Get("firmware_version"),
		Body:            body,
	})
	if err != nil {
		return err
	}
	o.Add("dump_id", res.ID)
	status := http.StatusCreated
	o.Status = "created"
	if res.Duplicate {
		status = http.StatusOK
		o.Status = "duplicate"
	}
	writeJSON(w, status, UploadResponse{ID: res.ID, ParseStatus: res.ParseStatus, Duplicate: res.Duplicate})
	return nil
}

// readBody reads at most limit bytes of the body into one buffer of the
// right size, answering 413 past the limit without reading further.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	tooLarge := crashdump.Errorf(crashdump.ETooLarge, "the coredump is larger than %d bytes", limit)
	if r.ContentLength > limit {
		return nil, tooLarge
	}
	if b, ok := r.Body.(interface{ Bytes() []byte }); ok {
		// Lambda decoded the body once already: use it in place.
		if int64(len(b.Bytes())) > limit {
			return nil, tooLarge
		}
		return b.Bytes(), nil
	}
	if r.ContentLength >= 0 {
		buf := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			return nil, crashdump.Errorf(crashdump.EInvalid, "the body ended before its declared length")
		}
		return buf, nil
	}
	buf, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, limit))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, tooLarge
	}
	if err != nil {
		return nil, fmt.Errorf("reading body: %w", err)
	}
	return buf, nil
}

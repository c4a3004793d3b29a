package httpapi

import (
	"bytes"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/espfleet/crashdumps/shared/crashdump"
)

// FuzzReadRetentionRequest checks that any body is either a valid request
// or a client error, never a panic or an internal error.
func FuzzReadRetentionRequest(f *testing.F) {
	for _, seed := range []string{
		`{"dry_run": true}`,
		`{"dry_run": false, "device_key": "abcd1234"}`,
		`{"dry_run": "yes"}`,
		`{"dry_run": true, "extra": 1}`,
		`{"dry_run": true}{"dry_run": false}`,
		`[]`, `null`, ``, `{"device_key": "a/b"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("POST", "/api/retention", bytes.NewReader(body))
		req, err := readRetentionRequest(r)
		if err == nil {
			if req.DryRun == nil {
				t.Fatalf("accepted %q without dry_run", body)
			}
			if req.DeviceKey != nil && crashdump.ValidateDeviceKey(*req.DeviceKey) != nil {
				t.Fatalf("accepted %q with a bad device key", body)
			}
			return
		}
		var ae *crashdump.Error
		if !errors.As(err, &ae) || (ae.Code != crashdump.EInvalid && ae.Code != crashdump.ETooLarge) {
			t.Fatalf("body %q: got %v, want a client error", body, err)
		}
	})
}

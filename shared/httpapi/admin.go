package httpapi

import (
	_ "embed"
	"net/http"

	"github.com/espfleet/crashdumps/shared/admin"
	"github.com/espfleet/crashdumps/shared/crashdump"
)

// OpenAPI is the OpenAPI 3.1 document of every route of the service,
// served at GET /api/openapi.json.
//
//go:embed openapi.json
var OpenAPI []byte

// ListResponse is the body of a listing.
type ListResponse struct {
	Items      []crashdump.Dump `json:"items"`
	NextCursor string           `json:"next_cursor,omitempty"`
}

// ReparseResponse is the body of an accepted re-parse.
type ReparseResponse struct {
	ID          string           `json:"id"`
	DeviceKey   string           `json:"device_key"`
	ParseStatus crashdump.Status `json:"parse_status"`
}

// adminRoutes registers the admin API on mux. Every route checks the
// admin scope itself, whatever the API Gateway route already did.
func (a *API) adminRoutes(mux *http.ServeMux) {
	const dumps = "/api/devices/{device_key}/coredumps"
	const dump = dumps + "/{id}"
	routes := []struct {
		pattern, op string
		h           handlerFunc
	}{
		{"GET " + dumps, "coredump_list", a.listDumps},
		{"DELETE " + dumps, "coredump_delete_all", a.deleteAllDumps},
		{"GET " + dump, "coredump_get", a.getDump},
		{"DELETE " + dump, "coredump_delete", a.deleteDump},
		{"GET " + dump + "/download", "coredump_download", a.downloadDump},
		{"POST " + dump + "/reparse", "coredump_reparse", a.reparseDump},
		{"GET /api/coredumps", "coredump_fleet_list", a.listFleet},
		{"GET /api/openapi.json", "openapi", a.openAPI},
	}
	for _, rt := range routes {
		mux.Handle(rt.pattern, a.endpoint(rt.op, a.adminOnly(rt.h)))
	}
}

// adminOnly answers 401 or 403 before h sees a request without the admin
// scope.
func (a *API) adminOnly(h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, o *Outcome) error {
		if err := a.Admins.Check(r); err != nil {
			return err
		}
		return h(w, r, o)
	}
}

// listDumps serves GET /api/devices/{device_key}/coredumps.
func (a *API) listDumps(w http.ResponseWriter, r *http.Request, o *Outcome) error {
	q := r.URL.Query()
	req := admin.ListRequest{
		DeviceKey:   r.PathValue("device_key"),
		ParseStatus: q.Get("parse_status"),
		Limit:       q.Get("limit"),
		Cursor:      q.Get("cursor"),
	}
	o.Add("device_key", req.DeviceKey)
	p, err := a.Admin.List(r.Context(), req)
	if err != nil {
		return err
	}
	o.Add("items", len(p.Items))
	writeJSON(w, http.StatusOK, ListResponse{Items: p.Items, NextCursor: p.NextCursor})
	return nil
}

// listFleet serves GET /api/coredumps.
func (a *API) listFleet(w http.ResponseWriter, r *http.Request, o *Outcome) error {
	q := r.URL.Query()
	p, err := a.Admin.Fleet(r.Context(), admin.FleetRequest{
		ParseStatus:     q.Get("parse_status"),
		Chip:            q.Get("chip"),
		FirmwareVersion: q.Get("firmware_version"),
		Model:           q.Get("model"),
		Since:           q.Get("since"),
		Until:           q.Get("until"),
		Limit:           q.Get("limit"),
		Cursor:          q.Get("cursor"),
	})
	if err != nil {
		return err
	}
	o.Add("items", len(p.Items))
	writeJSON(w, http.StatusOK, ListResponse{Items: p.Items, NextCursor: p.NextCursor})
	return nil
}

// getDump serves GET /api/devices/{device_key}/coredumps/{id}.
func (a *API) getDump(w http.ResponseWriter, r *http.Request, o *Outcome) error {
	key, id := dumpPath(r, o)
	d, err := a.Admin.Get(r.Context(), key, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

// downloadDump serves GET /api/devices/{device_key}/coredumps/{id}/download
// with a redirect to a short-lived presigned URL of the raw bytes.
func (a *API) downloadDump(w http.ResponseWriter, r *http.Request, o *Outcome) error {
	key, id := dumpPath(r, o)
	u, err := a.Admin.DownloadURL(r.Context(), key, id)
	if err != nil {
		return err
	}
	w.Header().Set("Location", u)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusFound)
	return nil
}

// deleteDump serves DELETE /api/devices/{device_key}/coredumps/{id}.
func (a *API) deleteDump(w http.ResponseWriter, r *http.Request, o *Outcome) error {
	key, id := dumpPath(r, o)
	if err := a.Admin.Delete(r.Context(), key, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// deleteAllDumps serves DELETE /api/devices/{device_key}/coredumps.
func (a *API) deleteAllDumps(w http.ResponseWriter, r *http.Request, o *Outcome) error {
	key := r.PathValue("device_key")
	o.Add("device_key", key)
	n, err := a.Admin.DeleteAll(r.Context(), key)
	o.Add("deleted", n)
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// reparseDump serves POST /api/devices/{device_key}/coredumps/{id}/reparse.
func (a *API) reparseDump(w http.ResponseWriter, r *http.Request, o *Outcome) error {
	key, id := dumpPath(r, o)
	d, err := a.Admin.Reparse(r.Context(), key, id)
	if err != nil {
		return err
	}
	o.Status = "accepted"
	writeJSON(w, http.StatusAccepted, ReparseResponse{ID: d.ID, DeviceKey: d.DeviceKey, ParseStatus: d.ParseStatus})
	return nil
}

// openAPI serves GET /api/openapi.json.
func (a *API) openAPI(w http.ResponseWriter, r *http.Request, o *Outcome) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(OpenAPI)
	return nil
}

// dumpPath returns the device key and dump id of the path, as given: the
// domain validates them.
func dumpPath(r *http.Request, o *Outcome) (deviceKey, id string) {
	deviceKey, id = r.PathValue("device_key"), r.PathValue("id")
	o.Add("device_key", deviceKey, "dump_id", id)
	return deviceKey, id
}

package httpapi

import (
	"net/http"

	"github.com/espfleet/crashdumps/shared/crashgroup"
)

// CrashGroupList is the body of a crash group listing.
type CrashGroupList struct {
	Items      []crashgroup.Group `json:"items"`
	NextCursor string             `json:"next_cursor,omitempty"`
}

// listCrashGroups serves GET /api/crash-groups.
func (a *API) listCrashGroups(w http.ResponseWriter, r *http.Request, o *Outcome) error {
	q := r.URL.Query()
	p, err := a.CrashGroups.List(r.Context(), crashgroup.ListRequest{
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
	writeJSON(w, http.StatusOK, CrashGroupList{Items: p.Items, NextCursor: p.NextCursor})
	return nil
}

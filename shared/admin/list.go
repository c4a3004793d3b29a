package admin

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/espfleet/crashdumps/shared/crashdump"
)

// Page sizes of listings.
const (
	DefaultLimit = 20
	MaxLimit     = 100
)

// Fleet-wide query windows.
const (
	// DefaultFleetDays is how far back a fleet-wide query without since
	// looks when dumps are kept without an age limit; with one, it
	// looks back over the retention period.
	DefaultFleetDays = 90
	// MaxFleetDays is the longest since..until window one fleet-wide
	// query may span, since every day costs FleetShards queries when it
	// holds no matching dump.
	MaxFleetDays = 366
	// maxDaysAtOnce bounds how many days' partitions are queried at the
	// same time while walking back.
	maxDaysAtOnce = 8
	// MaxDaysPerPage bounds how many days one page looks through. A
	// page that reaches it before it is full ends there, shorter than
	// the limit (even empty), with a cursor that resumes before the
	// oldest day it looked at.
	MaxDaysPerPage = 31
)

// ListRequest is a listing of one device's dumps, as the HTTP layer
// received it.
type ListRequest struct {
	DeviceKey   string
	ParseStatus string
	Limit       string
	Cursor      string
}

// List returns one page of the device's dumps, newest first, as summaries
// without parsed output.
func (s *Service) List(ctx context.Context, req ListRequest) (Page, error) {
	if err := crashdump.ValidateDeviceKey(req.DeviceKey); err != nil {
		return Page{}, err
	}
	var f Filter
	if req.ParseStatus != "" {
		st, err := crashdump.ParseStatus(req.ParseStatus)
		if err != nil {
			return Page{}, err
		}
		f.Status = st
	}
	limit, err := parseLimit(req.Limit)
	if err != nil {
		return Page{}, err
	}
	query := fingerprint("device", req.DeviceKey, string(f.Status), strconv.Itoa(limit))
	var r Range
	if req.Cursor != "" {
		if r.Hi, err = s.Cursors.Decode(query, req.Cursor); err != nil {
			return Page{}, err
		}
	}
	items, err := s.Store.ListDevice(ctx, req.DeviceKey, r, f, limit+1)
	if err != nil {
		return Page{}, fmt.Errorf("listing dumps of %s: %w", req.DeviceKey, err)
	}
	return s.page(query, items, limit), nil
}

// FleetRequest is a fleet-wide listing, as the HTTP layer received it.
// Since and Until are RFC 3339 times bounding the upload time, both
// inclusive.
type FleetRequest struct {
	ParseStatus     string
	Chip            string
	FirmwareVersion string
	Model           string
	Since           string
	Until           string
	Limit           string
	Cursor          string
}

// fleetQuery is a checked FleetRequest.
type fleetQuery struct {
	filter       Filter
	since, until time.Time
	limit        int
	fingerprint  string
}

// Fleet returns one page of the fleet's dumps, newest first, as summaries.
//
// The plan: with both a model and a firmware version, one partition of the
// firmware index holds every candidate, in id order. Otherwise the fleet
// index does: each upload day is spread over FleetShards partitions, so
// the plan walks back day by day from until (or the cursor) to since,
// queries the shards of a day in parallel, merges them newest first, and
// stops as soon as the page is full. Other filters are applied by the
// queries as filter expressions. Ids begin with their upload time, so one
// id orders the whole fleet and is all a cursor needs to carry.
func (s *Service) Fleet(ctx context.Context, req FleetRequest) (Page, error) {
	q, err := s.fleetQuery(req)
	if err != nil {
		return Page{}, err
	}
	r := Range{
		Lo: crashdump.MinID(q.since),
		Hi: crashdump.MinID(q.until.Add(time.Millisecond)),
	}
	if req.Cursor != "" {
		after, err := s.Cursors.Decode(q.fingerprint, req.Cursor)
		if err != nil {
			return Page{}, err
		}
		r.Hi = min(r.Hi, after)
	}
	if r.Lo >= r.Hi {
		return s.page(q.fingerprint, nil, q.limit), nil
	}
	var items []crashdump.Dump
	var resume string
	if q.filter.Model != "" && q.filter.FirmwareVersion != "" {
		f := Filter{Status: q.filter.Status, Chip: q.filter.Chip}
		items, err = s.Store.QueryFirmware(ctx, q.filter.Model, q.filter.FirmwareVersion, r, f, q.limit+1)
	} else {
		items, resume, err = s.walkFleet(ctx, r, q.filter, q.limit+1)
	}
	if err != nil {
		return Page{}, fmt.Errorf("listing the fleet's dumps: %w", err)
	}
	p := s.page(q.fingerprint, items, q.limit)
	if resume != "" && p.NextCursor == "" {
		p.NextCursor = s.Cursors.Encode(q.fingerprint, resume)
	}
	return p, nil
}

// fleetQuery checks req and fills in the defaults of the window.
func (s *Service) fleetQuery(req FleetRequest) (fleetQuery, error) {
	var q fleetQuery
	var err error
	if req.ParseStatus != "" {
		if q.filter.Status, err = crashdump.ParseStatus(req.ParseStatus); err != nil {
			return q, err
		}
	}
	if req.Chip != "" {
		if err := crashdump.ValidateChip(req.Chip); err != nil {
			return q, err
		}
		q.filter.Chip = req.Chip
	}
	if req.FirmwareVersion != "" {
		if err := crashdump.ValidateFirmwareVersion(req.FirmwareVersion); err != nil {
			return q, err
		}
		q.filter.FirmwareVersion = req.FirmwareVersion
	}
	if req.Model != "" {
		if err := crashdump.ValidateModelCode(req.Model); err != nil {
			return q, err
		}
		q.filter.Model = req.Model
	}
	if q.limit, err = parseLimit(req.Limit); err != nil {
		return q, err
	}
	now := s.now().UTC()
	q.until = now
	if req.Until != "" {
		if q.until, err = parseTime("until", req.Until); err != nil {
			return q, err
		}
	}
	days := DefaultFleetDays
	if s.RetentionDays > 0 {
		days = s.RetentionDays
	}
	q.since = q.until.AddDate(0, 0, -days)
	if req.Since != "" {
		if q.since, err = parseTime("since", req.Since); err != nil {
			return q, err
		}
	}
	if q.since.After(q.until) {
		return q, crashdump.Errorf(crashdump.EInvalid, "since must not be after until")
	}
	// Nothing older than the retention period is kept: do not walk
	// through days that can only be empty.
	// The fingerprint holds the window as the client gave it: the
	// defaults and the clamp below move with the clock between pages.
	q.fingerprint = fingerprint("fleet", string(q.filter.Status), q.filter.Chip,
		q.filter.FirmwareVersion, q.filter.Model, stamp(req.Since, q.since),
		stamp(req.Until, q.until), strconv.Itoa(q.limit))
	if q.until.Sub(q.since) > MaxFleetDays*24*time.Hour {
		return q, crashdump.Errorf(crashdump.EInvalid,
			"since and until may be at most %d days apart", MaxFleetDays)
	}
	if s.RetentionDays > 0 {
		q.since = maxTime(q.since, now.AddDate(0, 0, -s.RetentionDays-1))
	}
	// Nor is anything newer than now (give or take the clocks of other
	// instances).
	if latest := now.Add(time.Minute); q.until.After(latest) {
		q.until = latest
	}
	return q, nil
}

// walkFleet collects up to want dumps in r that match f from the fleet
// index, newest first. It queries the days from the newest down, a few
// days at a time, the shards of each day in parallel, and merges. When it
// stops at MaxDaysPerPage with days left to look at, resume is the bound
// below which the next page goes on.
func (s *Service) walkFleet(ctx context.Context, r Range, f Filter, want int) (out []crashdump.Dump, resume string, err error) {
	top := crashdump.IDTime(r.Hi)
	if strings.HasSuffix(r.Hi, boundarySuffix) {
		// A bound made by MinID: every id below it is older.
		top = top.Add(-time.Millisecond)
	}
	newest := utcDay(top)
	oldest := utcDay(crashdump.IDTime(r.Lo))
	var days []time.Time
	for d := newest; !d.Before(oldest); d = d.AddDate(0, 0, -1) {
		if len(days) == MaxDaysPerPage {
			resume = crashdump.MinID(days[len(days)-1])
			break
		}
		days = append(days, d)
	}
	for i, window := 0, 1; i < len(days) && len(out) < want; window = min(2*window, maxDaysAtOnce) {
		batch := days[i:min(i+window, len(days))]
		i += len(batch)
		need := want - len(out)
		found, err := s.queryDays(ctx, batch, r, f, need)
		if err != nil {
			return nil, "", err
		}
		for _, day := range found {
			out = append(out, day[:min(len(day), want-len(out))]...)
			if len(out) == want {
				break
			}
		}
	}
	if len(out) == want {
		resume = ""
	}
	return out, resume, nil
}

// queryDays queries every shard of each day at once, up to need dumps per
// shard, and returns each day's dumps merged newest first.
func (s *Service) queryDays(ctx context.Context, days []time.Time, r Range, f Filter, need int) ([][]crashdump.Dump, error) {
	type result struct {
		dumps []crashdump.Dump
		err   error
	}
	results := make([]result, len(days)*crashdump.FleetShards)
	var wg sync.WaitGroup
	for i, day := range days {
		for shard := range crashdump.FleetShards {
			wg.Go(func() {
				res := &results[i*crashdump.FleetShards+shard]
				res.dumps, res.err = s.Store.QueryFleet(ctx, day, shard, r, f, need)
				if res.err != nil {
					res.err = fmt.Errorf("querying %s shard %d: %w", day.Format(time.DateOnly), shard, res.err)
				}
			})
		}
	}
	wg.Wait()
	merged := make([][]crashdump.Dump, len(days))
	for i := range days {
		var day []crashdump.Dump
		for shard := range crashdump.FleetShards {
			res := results[i*crashdump.FleetShards+shard]
			if res.err != nil {
				return nil, res.err
			}
			day = append(day, res.dumps...)
		}
		slices.SortFunc(day, func(a, b crashdump.Dump) int { return strings.Compare(b.ID, a.ID) })
		merged[i] = day
	}
	return merged, nil
}

// page cuts items, fetched with one more than limit, to a page and signs
// the cursor that follows it.
func (s *Service) page(query string, items []crashdump.Dump, limit int) Page {
	p := Page{Items: items}
	if len(items) > limit {
		p.Items = items[:limit]
		p.NextCursor = s.Cursors.Encode(query, p.Items[limit-1].ID)
	}
	if p.Items == nil {
		p.Items = []crashdump.Dump{}
	}
	for i := range p.Items {
		p.Items[i].Output = ""
	}
	return p
}

func parseLimit(v string) (int, error) {
	if v == "" {
		return DefaultLimit, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxLimit {
		return 0, crashdump.Errorf(crashdump.EInvalid, "limit must be a whole number from 1 to %d", MaxLimit)
	}
	return n, nil
}

func parseTime(field, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, v)
	if err != nil || t.Before(time.Unix(0, 0)) {
		return time.Time{}, crashdump.Errorf(crashdump.EInvalid,
			"%s must be an RFC 3339 time such as 2026-12-01T00:00:00Z", field)
	}
	return t.UTC(), nil
}

// stamp is a time's part of a query fingerprint: empty when the client
// left it out (the default moves with the clock between pages).
func stamp(given string, t time.Time) string {
	if given == "" {
		return ""
	}
	return t.Format(time.RFC3339Nano)
}

// boundarySuffix ends the ids that MinID makes.
const boundarySuffix = "0000000000000000"

// fingerprint identifies a query for its cursors. Validated fields hold
// no NUL bytes.
func fingerprint(parts ...string) string { return strings.Join(parts, "\x00") }

func utcDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

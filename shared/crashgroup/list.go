package crashgroup

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/espfleet/crashdumps/shared/admin"
	"github.com/espfleet/crashdumps/shared/crashdump"
)

// Service lists crash groups for admins.
type Service struct {
	Store   Store
	Cursors *admin.Cursors
}

// ListRequest is a listing of crash groups, as the HTTP layer received
// it. Since and Until are RFC 3339 times bounding the last seen time, both
// inclusive.
type ListRequest struct {
	Chip            string
	FirmwareVersion string
	Model           string
	Since           string
	Until           string
	Limit           string
	Cursor          string
}

// Page is one page of groups. NextCursor is empty on the last page.
type Page struct {
	Items      []Group
	NextCursor string
}

// List returns one page of crash groups, the most recently seen first.
//
// The plan: the groups index spreads the groups over Shards partitions,
// each sorted by position (last seen time, then signature). Each partition
// is queried for one more than the page from the cursor's position down,
// at once, and the results are merged: the page's groups are the highest
// positions among them. Since and until bound the positions in the key
// condition; chip, firmware version and model are filter expressions.
func (s *Service) List(ctx context.Context, req ListRequest) (Page, error) {
	q, limit, query, err := s.query(req)
	if err != nil {
		return Page{}, err
	}
	if req.Cursor != "" {
		after, err := s.Cursors.DecodeKey(query, req.Cursor)
		if err != nil {
			return Page{}, err
		}
		if !checkPosition(after) {
			return Page{}, crashdump.Errorf(crashdump.EInvalid, "cursor is not valid for this query; start again without it")
		}
		if q.Hi == "" || after < q.Hi {
			q.Hi = after
		}
	}
	if q.Hi != "" && q.Lo >= q.Hi {
		return Page{Items: []Group{}}, nil
	}
	groups, err := s.queryShards(ctx, q, limit+1)
	if err != nil {
		return Page{}, fmt.Errorf("listing crash groups: %w", err)
	}
	p := Page{Items: groups}
	if len(groups) > limit {
		p.Items = groups[:limit]
		last := p.Items[limit-1]
		p.NextCursor = s.Cursors.EncodeKey(query, Position(last.LastSeen, last.Signature))
	}
	if p.Items == nil {
		p.Items = []Group{}
	}
	return p, nil
}

// query checks req and returns the store query, the page size and the
// fingerprint that cursors are signed for.
func (s *Service) query(req ListRequest) (q Query, limit int, query string, err error) {
	if req.Chip != "" {
		if err := crashdump.ValidateChip(req.Chip); err != nil {
			return q, 0, "", err
		}
		q.Chip = req.Chip
	}
	if req.FirmwareVersion != "" {
		if err := crashdump.ValidateFirmwareVersion(req.FirmwareVersion); err != nil {
			return q, 0, "", err
		}
		q.FirmwareVersion = req.FirmwareVersion
	}
	if req.Model != "" {
		if err := crashdump.ValidateModelCode(req.Model); err != nil {
			return q, 0, "", err
		}
		q.Model = req.Model
	}
	limit = admin.DefaultLimit
	if req.Limit != "" {
		n, err := strconv.Atoi(req.Limit)
		if err != nil || n < 1 || n > admin.MaxLimit {
			return q, 0, "", crashdump.Errorf(crashdump.EInvalid, "limit must be a whole number from 1 to %d", admin.MaxLimit)
		}
		limit = n
	}
	var since, until time.Time
	if req.Since != "" {
		if since, err = parseTime("since", req.Since); err != nil {
			return q, 0, "", err
		}
		q.Lo = timeBound(since)
	}
	if req.Until != "" {
		if until, err = parseTime("until", req.Until); err != nil {
			return q, 0, "", err
		}
		// Inclusive: every position of the last millisecond is below.
		q.Hi = timeBound(until.Truncate(time.Millisecond).Add(time.Millisecond))
	}
	if req.Since != "" && req.Until != "" && since.After(until) {
		return q, 0, "", crashdump.Errorf(crashdump.EInvalid, "since must not be after until")
	}
	query = fingerprint("crash-groups", q.Chip, q.FirmwareVersion, q.Model, q.Lo, q.Hi, strconv.Itoa(limit))
	return q, limit, query, nil
}

// queryShards queries every partition of the groups index at once, up to
// want groups each, and returns the highest want positions among them.
func (s *Service) queryShards(ctx context.Context, q Query, want int) ([]Group, error) {
	results := make([][]Group, Shards)
	errs := make([]error, Shards)
	var wg sync.WaitGroup
	for shard := range Shards {
		wg.Go(func() {
			results[shard], errs[shard] = s.Store.QueryGroups(ctx, shard, q, want)
			if errs[shard] != nil {
				errs[shard] = fmt.Errorf("querying shard %d: %w", shard, errs[shard])
			}
		})
	}
	wg.Wait()
	var all []Group
	for shard := range Shards {
		if errs[shard] != nil {
			return nil, errs[shard]
		}
		all = append(all, results[shard]...)
	}
	slices.SortFunc(all, func(a, b Group) int {
		return strings.Compare(Position(b.LastSeen, b.Signature), Position(a.LastSeen, a.Signature))
	})
	return all[:min(len(all), want)], nil
}

func parseTime(field, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, v)
	if err != nil || t.Before(time.Unix(0, 0)) || t.Year() > 9999 {
		return time.Time{}, crashdump.Errorf(crashdump.EInvalid,
			"%s must be an RFC 3339 time such as 2026-12-01T00:00:00Z", field)
	}
	return t.UTC(), nil
}

package api

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/intakehq/intake/api/internal/jobspec"
	"github.com/intakehq/intake/api/internal/store"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// runFilter checks the filters of a ListRuns request and returns them with
// a key that identifies them (the same filters, in any order, give the same
// key), which the page tokens carry.
func runFilter(req *intakev1.ListRunsRequest) (store.RunFilter, string, error) {
	var (
		f  store.RunFilter
		vs jobspec.Violations
	)
	add := func(field, format string, args ...any) {
		vs = append(vs, jobspec.Violation{Field: field, Description: fmt.Sprintf(format, args...)})
	}
	for i, st := range req.GetStates() {
		if _, ok := intakev1.RunState_name[int32(st)]; !ok || st == intakev1.RunState_RUN_STATE_UNSPECIFIED {
			add(fmt.Sprintf("states[%d]", i), "%d is not a run state (QUEUED, FETCHING, MAPPING, LOADING, SUCCEEDED, PARTIALLY_SUCCEEDED, FAILED, SKIPPED or CANCELLED)", int32(st))
			continue
		}
		if !slices.Contains(f.States, st) {
			f.States = append(f.States, st)
		}
	}
	for i, t := range req.GetTriggers() {
		if _, ok := intakev1.Trigger_name[int32(t)]; !ok || t == intakev1.Trigger_TRIGGER_UNSPECIFIED {
			add(fmt.Sprintf("triggers[%d]", i), "%d is not a trigger (SCHEDULE, RUN_NOW, TRIGGER_API or REPLAY)", int32(t))
			continue
		}
		if !slices.Contains(f.Triggers, t) {
			f.Triggers = append(f.Triggers, t)
		}
	}
	slices.Sort(f.States)
	slices.Sort(f.Triggers)
	if ts := req.GetCreateTimeFrom(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			add("create_time_from", "%v", err)
		} else {
			f.From = ts.AsTime().UTC()
		}
	}
	if ts := req.GetCreateTimeTo(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			add("create_time_to", "%v", err)
		} else {
			f.To = ts.AsTime().UTC()
		}
	}
	if !f.From.IsZero() && !f.To.IsZero() && f.To.Before(f.From) {
		add("create_time_to", "%s is before create_time_from %s", f.To.Format(time.RFC3339Nano), f.From.Format(time.RFC3339Nano))
	}
	if len(vs) > 0 {
		return f, "", invalid("invalid request", vs)
	}
	var b strings.Builder
	for _, st := range f.States {
		fmt.Fprintf(&b, "s%d,", st)
	}
	for _, t := range f.Triggers {
		fmt.Fprintf(&b, "t%d,", t)
	}
	if !f.From.IsZero() {
		fmt.Fprintf(&b, "f%d,", f.From.UnixNano())
	}
	if !f.To.IsZero() {
		fmt.Fprintf(&b, "u%d,", f.To.UnixNano())
	}
	sum := sha256.Sum256([]byte(b.String()))
	return f, hex.EncodeToString(sum[:8]), nil
}

// runsPageScope is the scope of ListRuns page tokens: the parent and the
// key of the filters.
func runsPageScope(parent, filterKey string) string { return parent + "?" + filterKey }

// decodeRunsPageToken reads a ListRuns page token of this parent and these
// filters. A token of ListRuns issued for another parent or other filters
// is refused as not matching the request.
func decodeRunsPageToken(parent, filterKey, token string) (*store.Cursor, error) {
	c, err := decodePageToken("runs", runsPageScope(parent, filterKey), token)
	if err == nil {
		return c, nil
	}
	if raw, derr := base64.RawURLEncoding.DecodeString(token); derr == nil {
		if parts := strings.SplitN(string(raw), "|", 4); len(parts) == 4 && parts[0] == "runs" {
			if _, perr := strconv.ParseInt(parts[2], 10, 64); perr == nil {
				return nil, invalid("page_token does not match the request", jobspec.Violations{{Field: "page_token",
					Description: "it was issued for another parent or other filters: repeat the request that returned it, changing only page_token, or start again without a page_token"}})
			}
		}
	}
	return nil, err
}

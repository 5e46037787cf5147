package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// RunFilter selects runs of a list. Its zero value selects every run.
type RunFilter struct {
	// States and Triggers: only runs in one of these (any when empty).
	States   []intakev1.RunState
	Triggers []intakev1.Trigger
	// From and To: only runs created at or after From and before To (no
	// bound when zero).
	From, To time.Time
}

// ListRuns returns up to limit runs of a job (every job when jobID is
// empty) that f selects, after the cursor, newest first. Row errors are
// left out.
func (s *Store) ListRuns(ctx context.Context, jobID string, f RunFilter, after *Cursor, limit int) ([]*intakev1.Run, error) {
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if jobID != "" {
		where = append(where, "job_id = "+arg(jobID))
	}
	if t := TenantOf(ctx); t != "" {
		where = append(where, "tenant_id = "+arg(t))
	}
	if len(f.States) > 0 {
		states := make([]int16, len(f.States))
		for i, st := range f.States {
			states[i] = int16(st)
		}
		where = append(where, "state = ANY("+arg(states)+"::smallint[])")
	}
	if len(f.Triggers) > 0 {
		triggers := make([]int16, len(f.Triggers))
		for i, t := range f.Triggers {
			triggers[i] = int16(t)
		}
		where = append(where, "trigger = ANY("+arg(triggers)+"::smallint[])")
	}
	if !f.From.IsZero() {
		where = append(where, "create_time >= "+arg(f.From))
	}
	if !f.To.IsZero() {
		where = append(where, "create_time < "+arg(f.To))
	}
	if after != nil {
		where = append(where, "(create_time, id) < ("+arg(after.Time)+", "+arg(after.ID)+")")
	}
	sql := `SELECT ` + runColumns + ` FROM intake.runs`
	if len(where) > 0 {
		sql += ` WHERE ` + strings.Join(where, " AND ")
	}
	sql += ` ORDER BY create_time DESC, id DESC LIMIT ` + arg(limit)
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	defer rows.Close()
	var out []*intakev1.Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("list runs: %w", err)
		}
		out = append(out, r.proto())
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return out, nil
}

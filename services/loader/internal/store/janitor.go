package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The janitor's side of the store. A run the control API ended elsewhere
// (cancelled, failed in another stage) may never send the loader another
// message: its staging table and bookkeeping would stay forever. The loader's
// janitor lists the open runs idle for a while (StaleRuns), asks the API
// about each (ResolveStale), and drops those that ended; it also forgets
// old abandoned markers (DeleteAbandoned).
//
// A run's last activity is intake.load_runs.update_time: set when the run is
// first seen, and bumped when a batch is staged, when the run is sealed, and
// when it is committed or abandoned.

// janitorClass is the first key of the advisory lock a janitor holds on a
// run while it resolves it (the second is the hash of the run id), so that
// of several loaders one asks about a run at a time.
const janitorClass = 0x1a7e1a17

// StaleRun is an open run (neither committed nor abandoned) without
// activity for a while.
type StaleRun struct {
	// Run is the run's resource name, jobs/{job}/runs/{run}.
	Run string
	// LastActivity is when the run last staged a batch, was sealed, or was
	// first seen.
	LastActivity time.Time
}

// Outcome is what ResolveStale did with a run.
type Outcome int

// The outcomes of ResolveStale.
const (
	// Skipped: another janitor holds the run, or it is no longer stale
	// (active again, committed or abandoned meanwhile). Nobody was asked.
	Skipped Outcome = iota
	// Kept: the run goes on (the ask said so); it is left as it is.
	Kept
	// Dropped: the run was abandoned: its staging and bookkeeping are gone
	// and its abandoned marker is set.
	Dropped
)

func (o Outcome) String() string {
	switch o {
	case Skipped:
		return "skipped"
	case Kept:
		return "kept"
	case Dropped:
		return "dropped"
	default:
		return fmt.Sprintf("Outcome(%d)", int(o))
	}
}

// micros is d in microseconds, for "$n * interval '1 microsecond'".
func micros(d time.Duration) int64 { return d.Microseconds() }

// StaleRuns returns up to limit open runs whose last activity is older than
// idle, the longest idle first.
func (s *Store) StaleRuns(ctx context.Context, idle time.Duration, limit int) ([]StaleRun, error) {
	rows, err := s.pool.Query(ctx, `SELECT run, update_time FROM intake.load_runs
		WHERE NOT committed AND NOT abandoned AND update_time < now() - $1 * interval '1 microsecond'
		ORDER BY update_time, run_id LIMIT $2`, micros(idle), limit)
	if err != nil {
		return nil, fmt.Errorf("list stale runs: %w", err)
	}
	runs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (StaleRun, error) {
		var sr StaleRun
		err := r.Scan(&sr.Run, &sr.LastActivity)
		return sr, err
	})
	if err != nil {
		return nil, fmt.Errorf("list stale runs: %w", err)
	}
	return runs, nil
}

// ResolveStale claims the run and, if it is still open and idle for longer
// than idle, calls ask; when ask says abandon, the run is abandoned as by
// Abandon. The claim is an advisory lock held until the end: a second
// janitor (another loader) skips the run meanwhile, and the loader's
// stagers and commits never wait for it. ask's error is returned as it is,
// and then nothing changed.
func (s *Store) ResolveStale(ctx context.Context, run string, idle time.Duration,
	ask func(ctx context.Context) (abandon bool, err error)) (Outcome, error) {
	_, id, err := ParseRun(run)
	if err != nil {
		return Skipped, err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return Skipped, fmt.Errorf("resolve stale run %s: %w", run, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit it is a no-op
	var claimed, stale bool
	if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1, hashtext($2))`, janitorClass, id).Scan(&claimed); err != nil {
		return Skipped, fmt.Errorf("resolve stale run %s: claim: %w", run, err)
	}
	if !claimed {
		return Skipped, nil
	}
	// Look again: the list is from before the claim. now() is the
	// transaction's start, so a run active since then is not stale.
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM intake.load_runs WHERE run_id = $1
		AND NOT committed AND NOT abandoned AND update_time < now() - $2 * interval '1 microsecond')`,
		id, micros(idle)).Scan(&stale); err != nil {
		return Skipped, fmt.Errorf("resolve stale run %s: %w", run, err)
	}
	if !stale {
		return Skipped, nil
	}
	drop, err := ask(ctx)
	if err != nil {
		return Skipped, err
	}
	out := Kept
	if drop {
		// abandon takes the run's row lock: it waits for stagers in flight,
		// and leaves a run committed meanwhile as it is.
		dropped, err := abandon(ctx, tx, id, run)
		if err != nil {
			return Skipped, fmt.Errorf("abandon run %s: %w", run, err)
		}
		if out = Skipped; dropped {
			out = Dropped
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return Skipped, fmt.Errorf("resolve stale run %s: %w", run, err)
	}
	return out, nil
}

// DeleteAbandoned forgets the abandoned markers older than age (a batch of
// such a run that still comes makes the run open again, and the janitor
// drops it again), at most limit of them, and returns how many it deleted.
// Rows locked by someone else are left for the next time.
func (s *Store) DeleteAbandoned(ctx context.Context, age time.Duration, limit int) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM intake.load_runs WHERE run_id IN (
			SELECT run_id FROM intake.load_runs
			WHERE abandoned AND update_time < now() - $1 * interval '1 microsecond'
			ORDER BY update_time LIMIT $2 FOR UPDATE SKIP LOCKED)`, micros(age), limit)
	if err != nil {
		return 0, fmt.Errorf("delete abandoned markers: %w", err)
	}
	return tag.RowsAffected(), nil
}

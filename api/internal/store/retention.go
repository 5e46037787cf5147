package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// retentionLock is the key of the session advisory lock that lets one API
// replica at a time sweep the archived files ("intake retention").
const retentionLock int64 = 0x1a7e_0004_f11e

// ExpiredFile is the archived file of a run that the retention policy no
// longer keeps.
type ExpiredFile struct {
	JobID, RunID string
	// Fetched is true when the run reported its file fetched (it has a
	// hash): the file was stored once.
	Fetched bool
}

// DeleteFunc deletes the archived file of a run. It reports whether there
// was a file to delete; an error leaves the run to the next sweep.
type DeleteFunc func(ctx context.Context, f ExpiredFile) (deleted bool, err error)

// SweepFiles applies the retention policy to the archived files of every
// job's runs, deleting each file with del and marking its run: a run whose
// file was stored once is then source_expired. A job's own policy applies
// when it sets keep_runs or keep_days; otherwise def does. A final run's
// file is expired when more than keep_runs runs of its job are newer, or
// it was created more than keep_days days ago (a limit of 0 does not
// apply). Runs not final yet are left alone. Runs of deleted jobs follow
// def.
//
// Only one caller at a time (across API replicas on the database) sweeps:
// the others return ran=false at once. It returns how many runs it marked.
func (s *Store) SweepFiles(ctx context.Context, def *intakev1.RetentionPolicy, batch int, del DeleteFunc) (swept int, ran bool, err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return 0, false, fmt.Errorf("sweep source files: %w", err)
	}
	defer conn.Release()
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, retentionLock).Scan(&ran); err != nil {
		return 0, false, fmt.Errorf("sweep source files: take the retention lock: %w", err)
	}
	if !ran {
		return 0, false, nil
	}
	defer func() {
		// A lost connection releases the lock by itself.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, uerr := conn.Exec(uctx, `SELECT pg_advisory_unlock($1)`, retentionLock); uerr != nil {
			conn.Conn().Close(uctx) //nolint:errcheck // closing releases the lock
		}
	}()
	for {
		files, err := s.expiredFiles(ctx, def, batch)
		if err != nil {
			return swept, true, err
		}
		failed := 0
		for _, f := range files {
			deleted, err := del(ctx, f)
			if err != nil {
				if ctx.Err() != nil {
					return swept, true, err
				}
				failed++
				continue
			}
			if err := s.markSwept(ctx, f, deleted || f.Fetched); err != nil {
				return swept, true, err
			}
			swept++
		}
		if len(files) < batch || failed == len(files) {
			if failed > 0 {
				return swept, true, fmt.Errorf("sweep source files: %d of %d files could not be deleted; retrying at the next sweep", failed, len(files))
			}
			return swept, true, nil
		}
	}
}

// expiredFiles returns up to limit runs outside their job's retention
// policy whose file was not swept yet, oldest first.
func (s *Store) expiredFiles(ctx context.Context, def *intakev1.RetentionPolicy, limit int) ([]ExpiredFile, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT r.id, r.job_id, r.sha256 <> ''
		FROM (
			SELECT id, job_id, sha256, state, create_time, source_swept,
				row_number() OVER (PARTITION BY job_id ORDER BY create_time DESC, id DESC) AS n
			FROM intake.runs
			WHERE job_id IN (SELECT DISTINCT job_id FROM intake.runs WHERE NOT source_swept)
		) r
		LEFT JOIN intake.jobs j ON j.id = r.job_id
		CROSS JOIN LATERAL (SELECT
			GREATEST(COALESCE((j.spec->'retention'->>'keepRuns')::int, 0), 0) AS runs,
			GREATEST(COALESCE((j.spec->'retention'->>'keepDays')::int, 0), 0) AS days) own
		CROSS JOIN LATERAL (SELECT
			CASE WHEN own.runs > 0 OR own.days > 0 THEN own.runs ELSE $1 END AS keep_runs,
			CASE WHEN own.runs > 0 OR own.days > 0 THEN own.days ELSE $2 END AS keep_days) p
		WHERE NOT r.source_swept AND r.state >= $3
			AND ((p.keep_runs > 0 AND r.n > p.keep_runs)
				OR (p.keep_days > 0 AND r.create_time < $4::timestamptz - make_interval(days => p.keep_days)))
		ORDER BY r.create_time, r.id
		LIMIT $5`,
		max(def.GetKeepRuns(), 0), max(def.GetKeepDays(), 0), int16(intakev1.RunState_RUN_STATE_SUCCEEDED), s.now(), limit)
	if err != nil {
		return nil, fmt.Errorf("sweep source files: find expired files: %w", err)
	}
	files, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ExpiredFile, error) {
		var f ExpiredFile
		err := row.Scan(&f.RunID, &f.JobID, &f.Fetched)
		return f, err
	})
	if err != nil {
		return nil, fmt.Errorf("sweep source files: find expired files: %w", err)
	}
	return files, nil
}

func (s *Store) markSwept(ctx context.Context, f ExpiredFile, expired bool) error {
	now := s.now()
	if _, err := s.pool.Exec(ctx, `UPDATE intake.runs SET source_swept = true, source_expired = $2,
			version = version + 1, update_time = $3 WHERE id = $1`, f.RunID, expired, now); err != nil {
		return fmt.Errorf("mark the file of run %s expired: %w", RunName(f.JobID, f.RunID), err)
	}
	return nil
}

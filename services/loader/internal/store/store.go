// Package store is the loader's database side: the per-run staging tables in
// the intake_staging schema, the bookkeeping in intake.load_runs and
// intake.load_chunks, and the commit that merges a run's staged rows into its
// object table in one transaction.
//
// Every method is idempotent, so a redelivered message changes nothing: a
// chunk is staged at most once, a run is committed at most once, and a run
// that was abandoned is never committed.
//
// Locks, always taken in this order so nothing deadlocks: the run's row in
// intake.load_runs (stagers FOR KEY SHARE, so they run in parallel; commit and
// abandon FOR UPDATE, so they wait for the stagers in flight and every later
// stager sees their outcome), then the advisory lock of the object table
// (commits into the same table take turns), then the tables themselves. The
// janitor's claim on a run (an advisory lock, see ResolveStale), which
// nobody waits for, comes before all of these.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/intakehq/intake/pkg/objects"
	pipelinev1 "github.com/intakehq/intake/proto/gen/intake/pipeline/v1"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// StagingSchema holds one staging table per run.
const StagingSchema = "intake_staging"

// advisoryClass is the first key of the advisory lock a commit takes on its
// object table (the second is the hash of the table name).
const advisoryClass = 0x1a7e10ad

// commitWorkMem is the work_mem of a commit: enough to group and sort a large
// run's keys in memory.
const commitWorkMem = "64MB"

// Store stages and commits runs. It is safe for concurrent use, also by
// several processes on the same database.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a store on pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// InvalidError is a message the loader can never process, whatever the
// number of attempts: an unknown object or attribute, a value of the wrong
// type, a run name that is not one. The run cannot land whole.
type InvalidError struct{ msg string }

func (e *InvalidError) Error() string { return e.msg }

func invalidf(format string, args ...any) error {
	return &InvalidError{msg: fmt.Sprintf(format, args...)}
}

// IsInvalid reports whether err is, or wraps, an *InvalidError.
func IsInvalid(err error) bool {
	var e *InvalidError
	return errors.As(err, &e)
}

// ParseRun splits a run resource name "jobs/{job}/runs/{run}" into the job
// and run ids. The run id must be a UUID.
func ParseRun(name string) (job, run string, err error) {
	parts := strings.Split(name, "/")
	if len(parts) != 4 || parts[0] != "jobs" || parts[2] != "runs" || parts[1] == "" {
		return "", "", invalidf("run %q is not a run name (jobs/{job}/runs/{run})", name)
	}
	if u, err := uuid.Parse(parts[3]); err != nil || len(parts[3]) != 36 || u.String() != strings.ToLower(parts[3]) {
		return "", "", invalidf("run %q: run id %q is not a UUID", name, parts[3])
	}
	return parts[1], parts[3], nil
}

// StagingTable is the staging table of a run id.
func StagingTable(runID string) pgx.Identifier {
	return pgx.Identifier{StagingSchema, "run_" + strings.ReplaceAll(strings.ToLower(runID), "-", "")}
}

// Counts are what a commit did, per key of the staged rows (after the last
// row of the file won for each key).
type Counts struct {
	// Created are new keys inserted (the run allows new records).
	Created int64 `json:"rows_created"`
	// Updated are existing keys whose mapped attributes changed.
	Updated int64 `json:"rows_updated"`
	// Unchanged are existing keys whose mapped attributes were equal already.
	Unchanged int64 `json:"rows_unchanged"`
	// Ignored are new keys not inserted (the run does not allow new records).
	Ignored int64 `json:"rows_ignored"`
}

// State is where a run stands in the loader.
type State int

// The states of a run.
const (
	// Open runs take batches and wait for their commit.
	Open State = iota
	// Committed runs have landed; their counts are stored.
	Committed
	// Abandoned runs were dropped on the API's word; they never land.
	Abandoned
)

func (s State) String() string {
	switch s {
	case Open:
		return "open"
	case Committed:
		return "committed"
	case Abandoned:
		return "abandoned"
	default:
		return fmt.Sprintf("State(%d)", int(s))
	}
}

// StageResult is the outcome of StageBatch.
type StageResult struct {
	// State of the run. When it is not Open nothing was staged.
	State State
	// Staged is true when this call copied the rows; false when the chunk
	// had been staged before (a redelivered batch) or the run is not open.
	Staged bool
	// Rows are the chunk's staged rows (by this call or the earlier one).
	Rows int64
	// Counts are the stored counts of a Committed run.
	Counts Counts
}

// SealResult is the outcome of Seal.
type SealResult struct {
	State State
	// Counts are the stored counts of a Committed run.
	Counts Counts
}

// CommitResult is the outcome of TryCommit.
type CommitResult struct {
	Counts Counts
	// Merged is true when this call merged the run (or, for a dry run,
	// counted it); false when an earlier call (or another loader) had
	// committed it.
	Merged bool
	// DryRun: the counts are what the run would have done; the object
	// table is unchanged.
	DryRun bool
}

// Readiness is where a run stands for its commit (see CheckCommit).
type Readiness struct {
	State State
	// Ready is true when the run is open, sealed, and every chunk is staged
	// and reported: it can be committed now.
	Ready bool
	// RowsStaged are the rows staged so far, over every chunk.
	RowsStaged int64
	// DryRun: the run only counts what it would do.
	DryRun bool
	// Counts are the stored counts of a Committed run.
	Counts Counts
}

// querier is a pool or a transaction.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// runRow is a row of intake.load_runs.
type runRow struct {
	name       string
	object     *int32
	allowNew   *bool
	attributes []string
	chunks     *int64
	committed  bool
	abandoned  bool
	counters   []byte
	// types are the attribute types in the order of attributes; nil until
	// a batch brought them.
	types  []int32
	dryRun bool
	// tenant is the id of the tenant whose object tables the run loads
	// into ("default").
	tenant string
}

func (r *runRow) state() State {
	switch {
	case r.committed:
		return Committed
	case r.abandoned:
		return Abandoned
	default:
		return Open
	}
}

func (r *runRow) counts() (Counts, error) {
	var c Counts
	if r.counters == nil {
		return c, nil
	}
	if err := json.Unmarshal(r.counters, &c); err != nil {
		return c, fmt.Errorf("stored counters of run %s: %w", r.name, err)
	}
	return c, nil
}

// shape is what the run loads, as its first batch or its seal said.
func (r *runRow) shape() (*shape, error) {
	if r.object == nil {
		return nil, nil
	}
	var types []intakev1.AttributeType
	if len(r.types) == len(r.attributes) {
		for _, t := range r.types {
			types = append(types, intakev1.AttributeType(t))
		}
	}
	return newShape("run "+r.name, intakev1.ObjectType(*r.object), r.allowNew != nil && *r.allowNew, r.attributes, types, false)
}

// matches checks that a message's shape and dry-run flag agree with the
// run's.
func (r *runRow) matches(what string, sh *shape, dryRun bool) error {
	if r.dryRun != dryRun {
		return invalidf("%s: dry_run %t differs from the run's %t", what, dryRun, r.dryRun)
	}
	if r.object == nil || sh == nil {
		return nil
	}
	if intakev1.ObjectType(*r.object) != sh.object.Type {
		return invalidf("%s: object %s differs from the run's %v", what, sh.object.Name, intakev1.ObjectType(*r.object))
	}
	if r.allowNew != nil && *r.allowNew != sh.allowNew {
		return invalidf("%s: allow_new_records %t differs from the run's %t", what, sh.allowNew, *r.allowNew)
	}
	if !sameAttributes(r.attributes, sh.names()) {
		return invalidf("%s: attributes %v differ from the run's %v", what, sh.names(), r.attributes)
	}
	if len(r.types) == len(r.attributes) {
		for i, name := range r.attributes {
			got, want := sh.typeOf(name), intakev1.AttributeType(r.types[i])
			if got != intakev1.AttributeType_ATTRIBUTE_TYPE_UNSPECIFIED && got != want {
				return invalidf("%s: attribute %q is %s, but the run's is %s", what, name, objects.TypeName(got), objects.TypeName(want))
			}
		}
	}
	return nil
}

const runColumns = `run, object, allow_new_records, attributes, chunks, committed, abandoned, counters, types, dry_run, tenant_id`

func (r *runRow) dest() []any {
	return []any{&r.name, &r.object, &r.allowNew, &r.attributes, &r.chunks, &r.committed, &r.abandoned, &r.counters, &r.types, &r.dryRun, &r.tenant}
}

func getRun(ctx context.Context, q querier, id, lock string) (runRow, bool, error) {
	var r runRow
	err := q.QueryRow(ctx, `SELECT `+runColumns+` FROM intake.load_runs WHERE run_id = $1`+lock, id).Scan(r.dest()...)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, false, nil
	}
	if err != nil {
		return r, false, fmt.Errorf("read run %s: %w", id, err)
	}
	return r, true, nil
}

// getRunStaged is getRun without a lock plus the number of the run's chunks
// staged, in one statement so that both come from the same snapshot.
func getRunStaged(ctx context.Context, q querier, id string) (runRow, int64, bool, error) {
	var r runRow
	var staged int64
	err := q.QueryRow(ctx, `SELECT `+runColumns+`, (SELECT count(*) FROM intake.load_chunks c
			WHERE c.run_id = r.run_id AND c.chunk < coalesce(r.chunks, 0) AND c.reported)
		FROM intake.load_runs r WHERE run_id = $1`, id).Scan(append(r.dest(), &staged)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, 0, false, nil
	}
	if err != nil {
		return r, 0, false, fmt.Errorf("read run %s: %w", id, err)
	}
	return r, staged, true, nil
}

// ensureRun returns the run's row, creating it when this is the first
// message of the run, and records the run's shape when it has none yet, and
// its attribute types when it has none yet and the message brings them.
// It takes no lock that would make concurrent stagers wait.
//
// The run's tenant is the message's; a message without one (of a version
// before tenants) is of the tenant of the control API's run, else of the
// default tenant.
func (s *Store) ensureRun(ctx context.Context, id, name, tenant string, sh *shape, dryRun bool) (runRow, error) {
	r, found, err := getRun(ctx, s.pool, id, "")
	if err != nil {
		return r, err
	}
	var object *int32
	var allowNew *bool
	var attrs []string
	var types []int32
	if sh != nil {
		o := int32(sh.object.Type)
		object, allowNew, attrs = &o, &sh.allowNew, sh.names()
		if sh.typed() {
			types = sh.types()
		}
	}
	switch {
	case !found:
		if _, err := s.pool.Exec(ctx, `INSERT INTO intake.load_runs (run_id, run, object, allow_new_records, attributes, types, dry_run, tenant_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7,
				COALESCE(NULLIF($8::text, ''), (SELECT r.tenant_id FROM intake.runs r WHERE r.id = $1), 'default'))
			ON CONFLICT (run_id) DO NOTHING`, id, name, object, allowNew, attrs, types, dryRun, tenant); err != nil {
			return r, fmt.Errorf("record run %s: %w", id, err)
		}
	case r.state() != Open || sh == nil:
		return r, nil
	case r.object == nil:
		if _, err := s.pool.Exec(ctx, `UPDATE intake.load_runs SET object = $2, allow_new_records = $3, attributes = $4, types = $5, update_time = now()
			WHERE run_id = $1 AND object IS NULL`, id, object, allowNew, attrs, types); err != nil {
			return r, fmt.Errorf("record the object of run %s: %w", id, err)
		}
	case r.types == nil && types != nil && sameAttributes(r.attributes, attrs):
		// The run's shape came from its seal, which has no types: record
		// them in the order of the run's attributes.
		ordered := make([]int32, len(r.attributes))
		for i, n := range r.attributes {
			ordered[i] = int32(sh.typeOf(n))
		}
		if _, err := s.pool.Exec(ctx, `UPDATE intake.load_runs SET types = $2, update_time = now()
			WHERE run_id = $1 AND types IS NULL`, id, ordered); err != nil {
			return r, fmt.Errorf("record the attribute types of run %s: %w", id, err)
		}
	default:
		return r, nil
	}
	r, found, err = getRun(ctx, s.pool, id, "")
	if err == nil && !found {
		err = fmt.Errorf("run %s vanished from intake.load_runs", id)
	}
	return r, err
}

// createStagingSQL creates the run's staging table: the row number, then one
// typed column per mapped attribute. It is unlogged (fast to write, and
// written once): a PostgreSQL crash empties it while intake.load_chunks
// still records its chunks, which the commit detects (see merge).
func createStagingSQL(table pgx.Identifier, sh *shape) string {
	var b strings.Builder
	b.WriteString("CREATE UNLOGGED TABLE IF NOT EXISTS ")
	b.WriteString(table.Sanitize())
	b.WriteString(` ("_row" bigint NOT NULL`)
	for _, a := range sh.attributes {
		b.WriteString(", ")
		b.WriteString(ident(a.Name))
		b.WriteString(" ")
		b.WriteString(pgType(a))
	}
	b.WriteString(") WITH (autovacuum_enabled = false)")
	return b.String()
}

// createStaging creates the run's staging table unless it exists. Two
// loaders creating it at once make one of them fail (on the catalog's unique
// index, or finding the table's row type made); that one finds the table
// made.
func createStaging(ctx context.Context, q querier, table pgx.Identifier, sh *shape) error {
	_, err := q.Exec(ctx, createStagingSQL(table, sh))
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505", // unique_violation
			"42P07", // duplicate_table
			"42710": // duplicate_object
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("create staging table %s: %w", table.Sanitize(), err)
	}
	return nil
}

// StageBatch copies a batch's rows into its run's staging table and records
// the chunk, in one transaction, unless the chunk is recorded already. The
// first batch of a run (or its seal) records what the run loads.
func (s *Store) StageBatch(ctx context.Context, b *pipelinev1.Batch) (StageResult, error) {
	_, id, err := ParseRun(b.Run)
	if err != nil {
		return StageResult{}, err
	}
	what := fmt.Sprintf("run %s, batch of chunk %d", b.Run, b.Chunk)
	if b.Chunk < 0 {
		return StageResult{}, invalidf("%s: the chunk index is negative", what)
	}
	sh, err := newShape(what, b.Object, b.AllowNewRecords, b.Attributes, b.Types, true)
	if err != nil {
		return StageResult{}, err
	}
	rows, err := convertRows(sh, b)
	if err != nil {
		return StageResult{}, fmt.Errorf("run %s: %w", b.Run, err)
	}
	r, err := s.ensureRun(ctx, id, b.Run, b.Tenant, sh, b.DryRun)
	if err != nil {
		return StageResult{}, err
	}
	if st := r.state(); st != Open {
		c, err := r.counts()
		return StageResult{State: st, Counts: c}, err
	}
	if err := r.matches(what, sh, b.DryRun); err != nil {
		return StageResult{}, err
	}
	if r.chunks != nil && b.Chunk >= *r.chunks {
		return StageResult{}, invalidf("%s: the run's seal says it has %d chunks", what, *r.chunks)
	}
	runShape, err := r.shape()
	if err != nil {
		return StageResult{}, err
	}
	if runShape == nil || !runShape.typed() {
		return StageResult{}, fmt.Errorf("%s: the run's attribute types are not recorded", what)
	}
	table := StagingTable(id)
	if err := createStaging(ctx, s.pool, table, runShape); err != nil {
		return StageResult{}, fmt.Errorf("run %s: %w", id, err)
	}

	columns := append([]string{"_row"}, sh.names()...)
	var res StageResult
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		r, found, err := getRun(ctx, tx, id, " FOR KEY SHARE")
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("run %s vanished from intake.load_runs", id)
		}
		if st := r.state(); st != Open {
			// Committed or abandoned since we looked: their staging table
			// is gone, and the one we just made is an orphan.
			if _, err := tx.Exec(ctx, "DROP TABLE IF EXISTS "+table.Sanitize()); err != nil {
				return fmt.Errorf("drop staging table: %w", err)
			}
			c, err := r.counts()
			res = StageResult{State: st, Counts: c}
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO intake.load_chunks (run_id, chunk, rows) VALUES ($1, $2, $3)
			ON CONFLICT (run_id, chunk) DO NOTHING`, id, b.Chunk, int64(len(rows)))
		if err != nil {
			return fmt.Errorf("record chunk: %w", err)
		}
		if tag.RowsAffected() == 0 {
			res.State = Open
			if err := tx.QueryRow(ctx, `SELECT rows FROM intake.load_chunks WHERE run_id = $1 AND chunk = $2`, id, b.Chunk).Scan(&res.Rows); err != nil {
				return fmt.Errorf("read staged chunk: %w", err)
			}
			return nil
		}
		n, err := tx.CopyFrom(ctx, table, columns, pgx.CopyFromRows(rows))
		if err != nil {
			return fmt.Errorf("copy into %s: %w", table.Sanitize(), err)
		}
		res = StageResult{State: Open, Staged: true, Rows: n}
		return nil
	})
	if err != nil {
		return StageResult{}, fmt.Errorf("stage %s: %w", what, err)
	}
	if res.Staged {
		// The run's last activity, for the janitor (StaleRuns). After the
		// transaction, not in it: the row lock of an UPDATE would make the
		// run's stagers take turns.
		if _, err := s.pool.Exec(ctx, `UPDATE intake.load_runs SET update_time = now()
			WHERE run_id = $1 AND NOT committed AND NOT abandoned`, id); err != nil {
			return StageResult{}, fmt.Errorf("stage %s: record the run's activity: %w", what, err)
		}
	}
	return res, nil
}

// Seal records how many chunks the run has. The seal may come before or
// after the run's batches, and again after the commit.
func (s *Store) Seal(ctx context.Context, m *pipelinev1.Seal) (SealResult, error) {
	_, id, err := ParseRun(m.Run)
	if err != nil {
		return SealResult{}, err
	}
	what := "seal of run " + m.Run
	if m.Chunks < 0 {
		return SealResult{}, invalidf("%s: %d chunks", what, m.Chunks)
	}
	var sh *shape
	if m.Object != intakev1.ObjectType_OBJECT_TYPE_UNSPECIFIED && len(m.Attributes) > 0 {
		if sh, err = newShape(what, m.Object, m.AllowNewRecords, m.Attributes, nil, false); err != nil {
			return SealResult{}, err
		}
	}
	r, err := s.ensureRun(ctx, id, m.Run, m.Tenant, sh, m.DryRun)
	if err != nil {
		return SealResult{}, err
	}
	if st := r.state(); st != Open {
		c, err := r.counts()
		return SealResult{State: st, Counts: c}, err
	}
	if err := r.matches(what, sh, m.DryRun); err != nil {
		return SealResult{}, err
	}
	if r.chunks != nil {
		if *r.chunks != m.Chunks {
			return SealResult{}, invalidf("%s: %d chunks, but an earlier seal said %d", what, m.Chunks, *r.chunks)
		}
		return SealResult{State: Open}, nil
	}
	if _, err := s.pool.Exec(ctx, `UPDATE intake.load_runs SET chunks = $2, update_time = now()
		WHERE run_id = $1 AND chunks IS NULL`, id, m.Chunks); err != nil {
		return SealResult{}, fmt.Errorf("%s: record chunks: %w", what, err)
	}
	return SealResult{State: Open}, nil
}

// countChunks counts the run's chunks staged and reported.
func countChunks(ctx context.Context, q querier, id string, chunks int64) (int64, error) {
	var n int64
	err := q.QueryRow(ctx, `SELECT count(*) FROM intake.load_chunks WHERE run_id = $1 AND chunk < $2 AND reported`, id, chunks).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count staged chunks of run %s: %w", id, err)
	}
	return n, nil
}

// ChunkReported records that the control API took the chunk's CHUNK_DONE
// report. A run commits once every chunk is staged and reported, so that its
// FINISHED report comes after every CHUNK_DONE, and every chunk's report was
// a chance for the API to abandon the run before it lands.
func (s *Store) ChunkReported(ctx context.Context, run string, chunk int64) error {
	_, id, err := ParseRun(run)
	if err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, `UPDATE intake.load_chunks SET reported = true
		WHERE run_id = $1 AND chunk = $2 AND NOT reported`, id, chunk); err != nil {
		return fmt.Errorf("run %s, chunk %d: record the report: %w", run, chunk, err)
	}
	return nil
}

// CheckCommit says where the run stands for its commit, without a lock:
// committed (with its counts), abandoned, or open and whether it is ready
// (sealed, every chunk staged and reported), with the rows staged so far.
// The loader asks the control API whether it may commit (the commit gate)
// between CheckCommit and TryCommit.
func (s *Store) CheckCommit(ctx context.Context, run string) (Readiness, error) {
	_, id, err := ParseRun(run)
	if err != nil {
		return Readiness{}, err
	}
	r, staged, found, err := getRunStaged(ctx, s.pool, id)
	if err != nil || !found {
		return Readiness{}, err
	}
	res := Readiness{State: r.state(), DryRun: r.dryRun}
	switch res.State {
	case Committed:
		res.Counts, err = r.counts()
		return res, err
	case Abandoned:
		return res, nil
	}
	if err := s.pool.QueryRow(ctx, `SELECT coalesce(sum(rows), 0)::bigint FROM intake.load_chunks WHERE run_id = $1`, id).Scan(&res.RowsStaged); err != nil {
		return Readiness{}, fmt.Errorf("sum the staged rows of run %s: %w", id, err)
	}
	res.Ready = r.chunks != nil && staged >= *r.chunks
	return res, nil
}

// TryCommit commits the run if it is sealed and every chunk is staged (and
// reported, see ChunkReported): in one transaction it merges the staged rows
// into the object table, stores the counts, drops the staging table and
// forgets the chunks. committed
// reports whether the run is committed, by this call (res.Merged) or before;
// then res.Counts are the run's counts. Calls for a run that is not complete
// yet, or abandoned, return committed false.
func (s *Store) TryCommit(ctx context.Context, run string) (res CommitResult, committed bool, err error) {
	_, id, err := ParseRun(run)
	if err != nil {
		return res, false, err
	}
	// Look without a lock first: most calls come from batches of runs that
	// are not complete yet, and must not make the other stagers wait.
	ok, c, err := ready(ctx, s.pool, id, false)
	if err != nil || !ok || c != nil {
		if c != nil {
			return CommitResult{Counts: *c}, true, nil
		}
		return res, false, err
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		ok, c, err := ready(ctx, tx, id, true)
		if err != nil || !ok || c != nil {
			if c != nil {
				res, committed = CommitResult{Counts: *c}, true
			}
			return err
		}
		r, _, err := getRun(ctx, tx, id, "")
		if err != nil {
			return err
		}
		counts, err := merge(ctx, tx, id, &r)
		if err != nil {
			return err
		}
		res.DryRun = r.dryRun
		if _, err := tx.Exec(ctx, `UPDATE intake.load_runs SET committed = true, counters = $2, update_time = now()
			WHERE run_id = $1`, id, counts); err != nil {
			return fmt.Errorf("record commit: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM intake.load_chunks WHERE run_id = $1`, id); err != nil {
			return fmt.Errorf("forget chunks: %w", err)
		}
		res.Counts, res.Merged, committed = counts, true, true
		return nil
	})
	if err != nil {
		return CommitResult{}, false, fmt.Errorf("commit run %s: %w", run, err)
	}
	return res, committed, nil
}

// ready reports whether the run can be committed now, or its counts when
// it is committed already. With lock it locks the run's row first and then
// counts the staged chunks, so that it sees every stager that held the row
// before; without, it reads both from one snapshot, so that a commit in
// between cannot make a committed run look incomplete.
func ready(ctx context.Context, q querier, id string, lock bool) (bool, *Counts, error) {
	var r runRow
	var staged int64
	var found bool
	var err error
	if lock {
		r, found, err = getRun(ctx, q, id, " FOR UPDATE")
	} else {
		r, staged, found, err = getRunStaged(ctx, q, id)
	}
	if err != nil || !found {
		return false, nil, err
	}
	switch r.state() {
	case Committed:
		c, err := r.counts()
		return false, &c, err
	case Abandoned:
		return false, nil, nil
	}
	if r.chunks == nil {
		return false, nil, nil
	}
	if lock {
		if staged, err = countChunks(ctx, q, id, *r.chunks); err != nil {
			return false, nil, err
		}
	}
	return staged >= *r.chunks, nil, nil
}

// merge merges the run's staged rows into the object table and drops the
// staging table. It runs in the commit transaction. For a dry run it counts
// exactly the same but changes nothing in the object table.
func merge(ctx context.Context, tx pgx.Tx, id string, r *runRow) (Counts, error) {
	var c Counts
	table := StagingTable(id)
	sh, err := r.shape()
	if err != nil {
		return c, err
	}
	if sh == nil || !sh.typed() {
		// No batch came, so nothing was staged: a run of zero chunks.
		if *r.chunks > 0 {
			return c, fmt.Errorf("run %s has %d chunks staged but no object recorded", id, *r.chunks)
		}
		_, err := tx.Exec(ctx, "DROP TABLE IF EXISTS "+table.Sanitize())
		return c, err
	}
	if sh.schema, err = tenantSchema(ctx, tx, r.tenant); err != nil {
		return c, fmt.Errorf("run %s: %w", r.name, err)
	}
	if _, err := tx.Exec(ctx, "SET LOCAL work_mem = '"+commitWorkMem+"'"); err != nil {
		return c, fmt.Errorf("set work_mem: %w", err)
	}
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, hashtext($2))", advisoryClass, sh.table()); err != nil {
		return c, fmt.Errorf("lock %s: %w", sh.tableName(), err)
	}
	if _, err := tx.Exec(ctx, createStagingSQL(table, sh)); err != nil {
		return c, fmt.Errorf("create staging table: %w", err)
	}
	// The planner needs the staging table's size and key spread to pick hash
	// joins and aggregates. A small sample is enough for that, and ten
	// times faster than the default.
	if _, err := tx.Exec(ctx, "SET LOCAL default_statistics_target = 10"); err != nil {
		return c, fmt.Errorf("set default_statistics_target: %w", err)
	}
	if _, err := tx.Exec(ctx, "ANALYZE "+table.Sanitize()); err != nil {
		return c, fmt.Errorf("analyze staging table: %w", err)
	}
	var keys, rows, newKeys int64
	if err := tx.QueryRow(ctx, countsSQL(table, sh)).Scan(&keys, &rows, &newKeys); err != nil {
		return c, fmt.Errorf("count staged keys: %w", err)
	}
	var recorded int64
	if err := tx.QueryRow(ctx, `SELECT coalesce(sum(rows), 0)::bigint FROM intake.load_chunks WHERE run_id = $1`, id).Scan(&recorded); err != nil {
		return c, fmt.Errorf("sum staged rows: %w", err)
	}
	if rows != recorded {
		return c, invalidf("run %s: the staging table holds %d rows but %d were staged: "+
			"PostgreSQL lost the unlogged staging table (a crash?); run the job again", r.name, rows, recorded)
	}
	var missing []string
	if err := tx.QueryRow(ctx, `SELECT coalesce(array_agg(n ORDER BY n), '{}') FROM unnest($1::text[]) n
		WHERE NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = $2::regclass AND attname = n AND attnum > 0 AND NOT attisdropped)`,
		sh.names(), sh.table()).Scan(&missing); err != nil {
		return c, fmt.Errorf("read the columns of %s: %w", sh.tableName(), err)
	}
	if len(missing) > 0 {
		return c, invalidf("run %s: mapped attributes %q are not columns of %s: deleted from the data model since the run started?",
			r.name, missing, sh.tableName())
	}
	var changed int64
	if r.dryRun {
		// What the merge would update: existing keys whose mapped
		// attributes differ (the merge's WHEN MATCHED condition).
		if q := changedSQL(table, sh, rows > keys); q != "" {
			if err := tx.QueryRow(ctx, q).Scan(&changed); err != nil {
				return c, missingColumn(r.name, sh, fmt.Errorf("count the changes a merge into %s would make: %w", sh.tableName(), err))
			}
		}
	} else if q := mergeSQL(table, sh, rows > keys); q != "" {
		tag, err := tx.Exec(ctx, q, id)
		if err != nil {
			return c, missingColumn(r.name, sh, fmt.Errorf("merge into %s: %w", sh.tableName(), err))
		}
		changed = tag.RowsAffected()
		if sh.allowNew {
			changed -= newKeys
		}
	}
	c.Updated = changed
	if sh.allowNew {
		c.Created = newKeys
	} else {
		c.Ignored = newKeys
	}
	c.Unchanged = keys - newKeys - c.Updated
	if _, err := tx.Exec(ctx, "DROP TABLE "+table.Sanitize()); err != nil {
		return c, fmt.Errorf("drop staging table: %w", err)
	}
	return c, nil
}

// missingColumn turns the error of a statement on the object table that
// names a column it does not have (a custom attribute deleted since the run
// started) into an InvalidError saying so; other errors pass.
func missingColumn(run string, sh *shape, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42703" { // undefined_column
		return invalidf("run %s: %s has no column for a mapped attribute (deleted from the data model since the run started?): %s",
			run, sh.tableName(), pgErr.Message)
	}
	return err
}

// Abandon drops the run's staging and chunk bookkeeping and marks it so it
// is never committed: a later batch or seal of it changes nothing. A
// committed run stays as it is.
func (s *Store) Abandon(ctx context.Context, run string) error {
	_, id, err := ParseRun(run)
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := abandon(ctx, tx, id, run)
		return err
	})
	if err != nil {
		return fmt.Errorf("abandon run %s: %w", run, err)
	}
	return nil
}

// abandon is Abandon in the transaction tx. It reports whether this call
// marked the run abandoned (false: it was committed or abandoned before).
func abandon(ctx context.Context, tx pgx.Tx, id, run string) (bool, error) {
	if _, err := tx.Exec(ctx, `INSERT INTO intake.load_runs (run_id, run) VALUES ($1, $2)
		ON CONFLICT (run_id) DO NOTHING`, id, run); err != nil {
		return false, fmt.Errorf("record run: %w", err)
	}
	var committed, abandoned bool
	if err := tx.QueryRow(ctx, `SELECT committed, abandoned FROM intake.load_runs WHERE run_id = $1 FOR UPDATE`, id).Scan(&committed, &abandoned); err != nil {
		return false, fmt.Errorf("lock run: %w", err)
	}
	if committed {
		return false, nil
	}
	if _, err := tx.Exec(ctx, `UPDATE intake.load_runs SET abandoned = true, update_time = now() WHERE run_id = $1`, id); err != nil {
		return false, fmt.Errorf("mark abandoned: %w", err)
	}
	if _, err := tx.Exec(ctx, "DROP TABLE IF EXISTS "+StagingTable(id).Sanitize()); err != nil {
		return false, fmt.Errorf("drop staging table: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM intake.load_chunks WHERE run_id = $1`, id); err != nil {
		return false, fmt.Errorf("forget chunks: %w", err)
	}
	return !abandoned, nil
}

// tenantSchema returns the schema of a tenant's object tables
// (intake.tenants); an InvalidError for a tenant that has none.
func tenantSchema(ctx context.Context, q querier, tenant string) (string, error) {
	if tenant == "" {
		tenant = "default"
	}
	var schema string
	err := q.QueryRow(ctx, `SELECT object_schema FROM intake.tenants WHERE id = $1`, tenant).Scan(&schema)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", invalidf("tenant %q has no object tables (it is not in intake.tenants)", tenant)
	}
	if err != nil {
		return "", fmt.Errorf("read the object schema of tenant %q: %w", tenant, err)
	}
	return schema, nil
}

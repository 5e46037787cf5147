package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/intakehq/intake/pkg/mapping"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// ReportResult is what a report did.
type ReportResult struct {
	Directive intakev1.Directive
	Run       *intakev1.Run
	// Finished is true when this report moved the run to a final state.
	Finished bool
}

// StageName is the lowercase name of a stage, as in messages and metrics.
func StageName(s intakev1.Stage) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "STAGE_"))
}

// maxReasonLen bounds the reason of a stored row error.
const maxReasonLen = 1000

// Report applies a stage's report to its run, following the state rules of
// docs/pipeline.md, in one transaction holding the run's row lock.
func (s *Store) Report(ctx context.Context, jobID, runID string, req *intakev1.ReportRunEventRequest) (*ReportResult, error) {
	name := RunName(jobID, runID)
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return nil, fmt.Errorf("report on run %s: %w", name, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit it is a no-op
	r, err := readRun(ctx, tx, jobID, runID, "FOR UPDATE", false)
	if err != nil {
		return nil, err
	}
	res := &ReportResult{Directive: intakev1.Directive_DIRECTIVE_CONTINUE}
	if IsFinal(r.state) {
		// A final state never changes. The loader re-reports FINISHED after
		// a redelivered message: that is no news, so tell it to go on.
		// So is a redelivered COMMITTING of a run that committed: the
		// loader re-reports its stored counts. Any other report of a final
		// run — a commit question of a failed or cancelled run included —
		// is told to drop its work.
		kind := req.GetKind()
		if !(r.committed && req.GetStage() == intakev1.Stage_STAGE_LOAD &&
			(kind == intakev1.RunEventKind_RUN_EVENT_KIND_FINISHED || kind == intakev1.RunEventKind_RUN_EVENT_KIND_COMMITTING)) {
			res.Directive = intakev1.Directive_DIRECTIVE_ABANDON
		}
		if r.rowErrors, err = readRowErrors(ctx, tx, runID); err != nil {
			return nil, err
		}
		res.Run = r.proto()
		return res, tx.Commit(ctx)
	}

	at := s.now()
	if t := req.GetEventTime(); t != nil && t.IsValid() && t.GetSeconds() > 0 {
		at = t.AsTime().UTC().Truncate(time.Microsecond)
	}
	if r.start == nil {
		r.start = &at
	}
	stage := req.GetStage()
	st := r.stage(stage)
	if st.StartTime == nil {
		st.StartTime = ts(&at)
	}
	advance := func(to intakev1.RunState) {
		if to > r.state {
			r.state = to
		}
	}
	finish := func(state intakev1.RunState, message string) {
		r.state, r.message, r.end = state, message, &at
		res.Finished = true
	}

	switch req.GetKind() {
	case intakev1.RunEventKind_RUN_EVENT_KIND_STARTED:
		advance(stageState(stage))

	case intakev1.RunEventKind_RUN_EVENT_KIND_FETCHED:
		advance(intakev1.RunState_RUN_STATE_FETCHING)
		if err := putCounters(ctx, tx, runID, stage, -1, req.GetCounters()); err != nil {
			return nil, err
		}
		if len(req.GetHeader()) > 0 {
			if err := checkHeader(ctx, tx, r, req.GetHeader()); err != nil {
				return nil, err
			}
		}
		// issue 5 (connections): the validators, size and time of the file.
		if err := putFetched(ctx, tx, r, req); err != nil {
			return nil, err
		}
		if req.GetNotModified() {
			if err := s.notModified(ctx, tx, r, req, res, func(msg string) {
				st.EndTime = ts(&at)
				finish(intakev1.RunState_RUN_STATE_SKIPPED, msg)
			}, func(msg string) {
				st.EndTime = ts(&at)
				finish(intakev1.RunState_RUN_STATE_FAILED, msg)
			}); err != nil {
				return nil, err
			}
			break
		}
		changed := r.sha256 != req.GetSha256()
		r.sha256 = req.GetSha256()
		if req.GetSource() != "" {
			r.source = req.GetSource()
		}
		switch {
		case len(r.missing) > 0:
			st.EndTime = ts(&at)
			finish(intakev1.RunState_RUN_STATE_FAILED, "mapped columns missing from the file: "+quoteList(r.missing))
			res.Directive = intakev1.Directive_DIRECTIVE_ABANDON
		case changed && !r.dryRun && !r.force: // issue 4 (files): a forced run (or replay) is never skipped
			// A dry run changes nothing, so it is never skipped: it says
			// what a run would do now.
			prevID, prevSHA, err := lastSuccess(ctx, tx, jobID, runID)
			if err != nil {
				return nil, err
			}
			if prevID != "" && prevSHA == req.GetSha256() {
				st.EndTime = ts(&at)
				finish(intakev1.RunState_RUN_STATE_SKIPPED,
					fmt.Sprintf("file unchanged since run %s (sha256 %s)", RunName(jobID, prevID), req.GetSha256()[:12]))
				res.Directive = intakev1.Directive_DIRECTIVE_SKIP
			}
		}

	case intakev1.RunEventKind_RUN_EVENT_KIND_COMMITTING:
		advance(intakev1.RunState_RUN_STATE_LOADING)
		if err := putCounters(ctx, tx, runID, stage, -1, req.GetCounters()); err != nil {
			return nil, err
		}
		if err := s.sumCounters(ctx, tx, r); err != nil {
			return nil, err
		}
		job, err := runSnapshot(ctx, tx, runID)
		if err != nil {
			return nil, err
		}
		// Cancel (cancel.go): once told CONTINUE, a run is committing — it
		// lands whole and is no longer cancelled — and a repeated question
		// (two loaders, a redelivery) gets the same answer.
		committing, err := isCommitting(ctx, tx, runID)
		if err != nil {
			return nil, err
		}
		if msg := OverBudget(job.GetErrorBudget(), r.counters.GetRowsRejected(), r.counters.GetRowsRead()); msg != "" && !committing {
			finish(intakev1.RunState_RUN_STATE_FAILED, msg)
			res.Directive = intakev1.Directive_DIRECTIVE_ABANDON
		}
		if res.Directive == intakev1.Directive_DIRECTIVE_CONTINUE && !committing {
			if err := markCommitting(ctx, tx, runID); err != nil {
				return nil, err
			}
		}

	case intakev1.RunEventKind_RUN_EVENT_KIND_CHUNK_DONE:
		if err := putCounters(ctx, tx, runID, stage, req.GetChunk(), req.GetCounters()); err != nil {
			return nil, err
		}
		advance(stageState(stage))

	case intakev1.RunEventKind_RUN_EVENT_KIND_FINISHED:
		if err := putCounters(ctx, tx, runID, stage, -1, req.GetCounters()); err != nil {
			return nil, err
		}
		st.EndTime = ts(&at)
		switch stage {
		case intakev1.Stage_STAGE_FETCH:
			advance(intakev1.RunState_RUN_STATE_MAPPING)
		default:
			advance(stageState(stage))
		}

	case intakev1.RunEventKind_RUN_EVENT_KIND_FAILED:
		msg := strings.TrimSpace(req.GetMessage())
		if msg == "" {
			msg = "failed (no reason given)"
		}
		st.EndTime = ts(&at)
		finish(intakev1.RunState_RUN_STATE_FAILED, StageName(stage)+": "+msg)
	}
	if len(req.GetRowErrors()) > 0 {
		if err := s.putRowErrors(ctx, tx, r, req.GetRowErrors()); err != nil {
			return nil, err
		}
	}

	if err := s.sumCounters(ctx, tx, r); err != nil {
		return nil, err
	}
	// The mappers are done once every chunk the fetcher cut is mapped.
	if m := r.stage(intakev1.Stage_STAGE_MAP); m.EndTime == nil && m.StartTime != nil &&
		r.counters.GetChunks() > 0 && m.GetChunksDone() >= r.counters.GetChunks() {
		m.EndTime = ts(&at)
	}
	if stage == intakev1.Stage_STAGE_LOAD && req.GetKind() == intakev1.RunEventKind_RUN_EVENT_KIND_FINISHED {
		r.committed = true
		switch c := r.counters; {
		case c.GetRowsRejected() > 0 && c.GetRowsRejected() >= c.GetRowsRead():
			finish(intakev1.RunState_RUN_STATE_FAILED, fmt.Sprintf("every row was rejected: %d rows", c.GetRowsRejected()))
		case c.GetRowsRejected() > 0:
			finish(intakev1.RunState_RUN_STATE_PARTIALLY_SUCCEEDED, "")
		default:
			finish(intakev1.RunState_RUN_STATE_SUCCEEDED, "")
		}
	}
	if IsFinal(r.state) {
		for _, s := range r.stages {
			if s.StartTime != nil && s.EndTime == nil {
				s.EndTime = ts(&at)
			}
		}
	}
	sortStages(r.stages)
	// Failure policy (failurepolicy.go): a run that ends here counts for its job.
	var disabled *AutoDisabled
	if res.Finished {
		if disabled, err = s.countRunOutcome(ctx, tx, r); err != nil {
			return nil, err
		}
	}

	if err := saveRun(ctx, tx, r, s.now()); err != nil {
		return nil, err
	}
	if r.rowErrors, err = readRowErrors(ctx, tx, runID); err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("report on run %s: %w", name, err)
	}
	s.autoDisabled(ctx, disabled)
	r.version++
	res.Run = r.proto()
	return res, nil
}

// putFetched records what a FETCHED report says about the file: the HTTP
// validators (for the next run's conditional request) and its size and
// modification time.
func putFetched(ctx context.Context, q querier, r *runRow, req *intakev1.ReportRunEventRequest) error {
	var size *int64 // 0: unknown (an empty file fails before FETCHED)
	if v := req.GetSourceSize(); v > 0 {
		size = &v
	}
	var modified *time.Time
	if t := req.GetSourceModifyTime(); t != nil && t.IsValid() && t.GetSeconds() > 0 {
		v := t.AsTime().UTC().Truncate(time.Microsecond)
		modified = &v
	}
	if _, err := q.Exec(ctx, `UPDATE intake.runs SET etag = COALESCE(NULLIF($2, ''), etag), last_modified = COALESCE(NULLIF($3, ''), last_modified),
			source_size = COALESCE($4, source_size), source_modify_time = COALESCE($5, source_modify_time)
		WHERE id = $1`, r.id, req.GetEtag(), req.GetLastModified(), size, modified); err != nil {
		return fmt.Errorf("record the file of run %s: %w", RunName(r.jobID, r.id), err)
	}
	if size != nil {
		r.sourceSize = size
	}
	if modified != nil {
		r.sourceModify = modified
	}
	return nil
}

// notModified handles a FETCHED report whose conditional request was
// answered 304 Not Modified: the fetcher has no file, so the run ends
// SKIPPED, its file being the one of the job's last successful run (whose
// validators ResolveConnection gave): the run takes that run's sha256 and
// source, and file_run points at it (the run archive keeps the file under
// that run). A dry or forced run needs the file: it fails, since it should
// never have sent a conditional request.
func (s *Store) notModified(ctx context.Context, q querier, r *runRow, req *intakev1.ReportRunEventRequest, res *ReportResult,
	skip, fail func(msg string)) error {
	res.Directive = intakev1.Directive_DIRECTIVE_ABANDON
	if r.dryRun || r.force {
		what := "a forced run"
		if r.dryRun {
			what = "a dry run"
		}
		fail("the server answered 304 Not Modified, but " + what + " needs the file: it must not send a conditional request")
		return nil
	}
	prev, err := lastSuccessRun(ctx, q, r.jobID, r.id)
	if err != nil {
		return err
	}
	if prev == nil {
		fail("the server answered 304 Not Modified, but the job has no successful run whose file this would be")
		return nil
	}
	r.sha256, r.source = prev.sha256, prev.source
	if req.GetSource() != "" {
		r.source = req.GetSource()
	}
	if _, err := q.Exec(ctx, `UPDATE intake.runs SET file_run = $2,
			source_size = COALESCE(source_size, $3), source_modify_time = COALESCE(source_modify_time, $4)
		WHERE id = $1`, r.id, prev.id, prev.sourceSize, prev.sourceModify); err != nil {
		return fmt.Errorf("record the file of run %s: %w", RunName(r.jobID, r.id), err)
	}
	if r.sourceSize == nil {
		r.sourceSize = prev.sourceSize
	}
	if r.sourceModify == nil {
		r.sourceModify = prev.sourceModify
	}
	skip(fmt.Sprintf("file unchanged since run %s (the server answered 304 Not Modified)", RunName(r.jobID, prev.id)))
	res.Directive = intakev1.Directive_DIRECTIVE_SKIP
	return nil
}

// derefInt64 is *p, 0 for nil.
func derefInt64(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// prevRun is what a run needs of the job's last successful run.
type prevRun struct {
	id, sha256, source, etag, lastModified string
	sourceSize                             *int64
	sourceModify                           *time.Time
}

// lastSuccessRun is the job's most recent successful run other than runID
// (as lastSuccess), nil when there is none.
func lastSuccessRun(ctx context.Context, q querier, jobID, runID string) (*prevRun, error) {
	var p prevRun
	err := q.QueryRow(ctx, `SELECT id, sha256, source, etag, last_modified, source_size, source_modify_time FROM intake.runs
		WHERE job_id = $1 AND id <> $2 AND state IN ($3, $4) AND NOT dry_run
		ORDER BY end_time DESC NULLS LAST, create_time DESC LIMIT 1`,
		jobID, runID, int16(intakev1.RunState_RUN_STATE_SUCCEEDED), int16(intakev1.RunState_RUN_STATE_PARTIALLY_SUCCEEDED)).Scan(
		&p.id, &p.sha256, &p.source, &p.etag, &p.lastModified, &p.sourceSize, &p.sourceModify)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up the last successful run of job %s: %w", jobID, err)
	}
	return &p, nil
}

// Validators are what a fetcher needs for a conditional request: the
// validators of the job's last successful run and the source it read.
type Validators struct {
	// Run is that run's name; "" when the job has none.
	Run                string
	ETag, LastModified string
	Source             string
}

// LastValidators returns the validators of the job's last successful run
// (not a dry run) other than runID; zero when there is none.
func (s *Store) LastValidators(ctx context.Context, jobID, runID string) (Validators, error) {
	p, err := lastSuccessRun(ctx, s.pool, jobID, runID)
	if err != nil || p == nil {
		return Validators{}, err
	}
	return Validators{Run: RunName(jobID, p.id), ETag: p.etag, LastModified: p.lastModified, Source: p.source}, nil
}

// RunSnapshot returns the job a run was created with (its snapshot, as the
// run request carries it); ErrNotFound for an unknown run.
func (s *Store) RunSnapshot(ctx context.Context, jobID, runID string) (*intakev1.Job, error) {
	var b []byte
	if err := runField(ctx, s.pool, jobID, runID, "job", "job snapshot", &b); err != nil {
		return nil, err
	}
	job := &intakev1.Job{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, job); err != nil {
		return nil, fmt.Errorf("decode the job snapshot of run %s: %w", RunName(jobID, runID), err)
	}
	return job, nil
}

// FileRun is the id of the run whose archived file is run runID's: runID
// itself, or for a run that did not download its file (304 Not Modified)
// the run whose file it is.
func (s *Store) FileRun(ctx context.Context, jobID, runID string) (string, error) {
	var fileRun string
	if err := runField(ctx, s.pool, jobID, runID, "file_run", "file run", &fileRun); err != nil {
		return "", err
	}
	if fileRun == "" {
		return runID, nil
	}
	return fileRun, nil
}

// FileRunOf is FileRun by run id alone (the archive's key); the run id
// itself when no run has that id.
func (s *Store) FileRunOf(ctx context.Context, runID string) (string, error) {
	var fileRun string
	err := s.pool.QueryRow(ctx, `SELECT file_run FROM intake.runs WHERE id = $1 AND ($2::text = '' OR tenant_id = $2)`, runID, TenantOf(ctx)).Scan(&fileRun)
	if errors.Is(err, pgx.ErrNoRows) || err == nil && fileRun == "" {
		return runID, nil
	}
	if err != nil {
		return "", fmt.Errorf("read run %s: %w", runID, err)
	}
	return fileRun, nil
}

// stageState is the state a run is in while stage works on it.
func stageState(s intakev1.Stage) intakev1.RunState {
	switch s {
	case intakev1.Stage_STAGE_MAP:
		return intakev1.RunState_RUN_STATE_MAPPING
	case intakev1.Stage_STAGE_LOAD:
		return intakev1.RunState_RUN_STATE_LOADING
	default:
		return intakev1.RunState_RUN_STATE_FETCHING
	}
}

func sortStages(stages []*intakev1.StageStatus) {
	sort.Slice(stages, func(i, j int) bool { return stages[i].GetStage() < stages[j].GetStage() })
}

// lastSuccess is the id and hash of the job's most recent successful run
// other than runID. Dry runs do not count: they changed nothing.
func lastSuccess(ctx context.Context, q querier, jobID, runID string) (string, string, error) {
	var id, sha string
	err := q.QueryRow(ctx, `SELECT id, sha256 FROM intake.runs
		WHERE job_id = $1 AND id <> $2 AND state IN ($3, $4) AND NOT dry_run
		ORDER BY end_time DESC NULLS LAST, create_time DESC LIMIT 1`,
		jobID, runID, int16(intakev1.RunState_RUN_STATE_SUCCEEDED), int16(intakev1.RunState_RUN_STATE_PARTIALLY_SUCCEEDED)).Scan(&id, &sha)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("look up the last successful run of job %s: %w", jobID, err)
	}
	return id, sha, nil
}

// putCounters stores the counters of (run, stage, chunk), replacing any
// earlier report of the same chunk. chunk -1 holds the stage's totals.
func putCounters(ctx context.Context, q querier, runID string, stage intakev1.Stage, chunk int64, c *intakev1.RunCounters) error {
	_, err := q.Exec(ctx, `INSERT INTO intake.run_chunks (run_id, stage, chunk, bytes, chunks, rows_read, rows_rejected,
			rows_staged, rows_created, rows_updated, rows_unchanged, rows_ignored)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
		ON CONFLICT (run_id, stage, chunk) DO UPDATE SET bytes = EXCLUDED.bytes, chunks = EXCLUDED.chunks,
			rows_read = EXCLUDED.rows_read, rows_rejected = EXCLUDED.rows_rejected, rows_staged = EXCLUDED.rows_staged,
			rows_created = EXCLUDED.rows_created, rows_updated = EXCLUDED.rows_updated,
			rows_unchanged = EXCLUDED.rows_unchanged, rows_ignored = EXCLUDED.rows_ignored`,
		runID, int16(stage), chunk, c.GetBytes(), c.GetChunks(), c.GetRowsRead(), c.GetRowsRejected(),
		c.GetRowsStaged(), c.GetRowsCreated(), c.GetRowsUpdated(), c.GetRowsUnchanged(), c.GetRowsIgnored())
	if err != nil {
		return fmt.Errorf("store counters of run %s stage %s chunk %d: %w", runID, StageName(stage), chunk, err)
	}
	return nil
}

// maxRecordLen bounds the raw record kept with a row error.
const maxRecordLen = 64 << 10

// putRowErrors keeps the run's row errors, with their records, for the
// rejects download: at most RowErrorCap per run, those with the lowest
// row numbers. A redelivered report's errors are stored once.
func (s *Store) putRowErrors(ctx context.Context, q querier, r *runRow, errs []*intakev1.RowError) error {
	runID := r.id
	sorted := make([]*intakev1.RowError, len(errs))
	copy(sorted, errs)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].GetRow() < sorted[j].GetRow() })
	rows := make([]int64, len(sorted))
	cols := make([]string, len(sorted))
	reasons := make([]string, len(sorted))
	records := make([]string, len(sorted))
	for i, e := range sorted {
		rows[i], cols[i] = e.GetRow(), e.GetColumn()
		reasons[i] = shorten(e.GetReason(), maxReasonLen)
		records[i] = shorten(e.GetRecord(), maxRecordLen)
	}
	tag, err := q.Exec(ctx, `INSERT INTO intake.run_row_errors (run_id, row, col, reason, record)
		SELECT $1, r, c, e, d FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[]) AS t(r, c, e, d)
		ON CONFLICT DO NOTHING`, runID, rows, cols, reasons, records)
	if err != nil {
		return fmt.Errorf("store row errors of run %s: %w", runID, err)
	}
	var kept int64
	if err := q.QueryRow(ctx, `UPDATE intake.runs SET row_errors_kept = row_errors_kept + $2 WHERE id = $1
		RETURNING row_errors_kept`, runID, tag.RowsAffected()).Scan(&kept); err != nil {
		return fmt.Errorf("count row errors of run %s: %w", runID, err)
	}
	if over := kept - s.maxRowErrors; over > 0 {
		if _, err := q.Exec(ctx, `DELETE FROM intake.run_row_errors e USING (
				SELECT row, col FROM intake.run_row_errors WHERE run_id = $1 ORDER BY row DESC, col DESC LIMIT $2
			) x WHERE e.run_id = $1 AND e.row = x.row AND e.col = x.col`, runID, over); err != nil {
			return fmt.Errorf("trim row errors of run %s: %w", runID, err)
		}
		if _, err := q.Exec(ctx, `UPDATE intake.runs SET row_errors_kept = $2, row_errors_dropped = row_errors_dropped + $3
			WHERE id = $1`, runID, s.maxRowErrors, over); err != nil {
			return fmt.Errorf("count row errors of run %s: %w", runID, err)
		}
	}
	return nil
}

// shorten cuts s to at most n bytes (on a character boundary), marking the cut.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// runSnapshot is the job a run was created with.
func runSnapshot(ctx context.Context, q querier, runID string) (*intakev1.Job, error) {
	var b []byte
	if err := q.QueryRow(ctx, `SELECT job FROM intake.runs WHERE id = $1`, runID).Scan(&b); err != nil {
		return nil, fmt.Errorf("read the job snapshot of run %s: %w", runID, err)
	}
	job := &intakev1.Job{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, job); err != nil {
		return nil, fmt.Errorf("decode the job snapshot of run %s: %w", runID, err)
	}
	return job, nil
}

// checkHeader compares the file's header with the columns the run's
// mapping reads: r.missing gets the mapped columns the header lacks,
// r.newColumns the unmapped columns that were not in the file at the job's
// last passing validation (none when it never passed, or is gone).
func checkHeader(ctx context.Context, q querier, r *runRow, header []string) error {
	job, err := runSnapshot(ctx, q, r.id)
	if err != nil {
		return err
	}
	used := mapping.UsedColumns(job.GetMapping())
	inHeader := make(map[string]bool, len(header))
	for _, h := range header {
		inHeader[h] = true
	}
	r.missing = r.missing[:0]
	for _, c := range used {
		if !inHeader[c] {
			r.missing = append(r.missing, c)
		}
	}
	var raw []byte
	err = q.QueryRow(ctx, `SELECT validated_columns FROM intake.jobs WHERE id = $1`, r.jobID).Scan(&raw)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("read the validated columns of job %s: %w", r.jobID, err)
	}
	r.newColumns = r.newColumns[:0]
	if raw == nil {
		return nil
	}
	var validated []string
	if err := json.Unmarshal(raw, &validated); err != nil {
		return fmt.Errorf("decode the validated columns of job %s: %w", r.jobID, err)
	}
	seen := make(map[string]bool, len(validated)+len(used))
	for _, c := range validated {
		seen[c] = true
	}
	for _, c := range used {
		seen[c] = true
	}
	for _, h := range header {
		if !seen[h] {
			seen[h] = true
			r.newColumns = append(r.newColumns, h)
		}
	}
	return nil
}

// quoteList quotes names for a message: "A", "B".
func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}

// OverBudget says why a run with rejected of read rows is over the error
// budget b, or "" when it is within (or there is no budget).
func OverBudget(b *intakev1.ErrorBudget, rejected, read int64) string {
	switch l := b.GetLimit().(type) {
	case *intakev1.ErrorBudget_MaxRejectedRows:
		if rejected > l.MaxRejectedRows {
			return fmt.Sprintf("%s rejected, more than the error budget of %s", rows(rejected), rows(l.MaxRejectedRows))
		}
	case *intakev1.ErrorBudget_MaxRejectedPercent:
		if float64(rejected)*100 > l.MaxRejectedPercent*float64(read) {
			return fmt.Sprintf("%s rejected, more than the error budget of %s%% of %s read",
				rows(rejected), strconv.FormatFloat(l.MaxRejectedPercent, 'f', -1, 64), rows(read))
		}
	}
	return ""
}

func rows(n int64) string {
	if n == 1 {
		return "1 row"
	}
	return strconv.FormatInt(n, 10) + " rows"
}

// owner is the stage whose reports count each counter; a counter reported
// by another stage is ignored, so no number is counted twice.
var owner = map[string]intakev1.Stage{
	"bytes": intakev1.Stage_STAGE_FETCH, "chunks": intakev1.Stage_STAGE_FETCH,
	"rows_read": intakev1.Stage_STAGE_MAP, "rows_rejected": intakev1.Stage_STAGE_MAP,
	"rows_staged": intakev1.Stage_STAGE_LOAD, "rows_created": intakev1.Stage_STAGE_LOAD,
	"rows_updated": intakev1.Stage_STAGE_LOAD, "rows_unchanged": intakev1.Stage_STAGE_LOAD,
	"rows_ignored": intakev1.Stage_STAGE_LOAD,
}

var counterNames = []string{"bytes", "chunks", "rows_read", "rows_rejected", "rows_staged",
	"rows_created", "rows_updated", "rows_unchanged", "rows_ignored"}

// sumCounters sets r.counters and each stage's chunks_done from the stored
// reports. A counter is its owning stage's per-chunk sum, or the stage's
// reported total when that is larger (a FINISHED report carries totals).
func (s *Store) sumCounters(ctx context.Context, q querier, r *runRow) error {
	rows, err := q.Query(ctx, `SELECT stage, chunk >= 0, count(*), sum(bytes), sum(chunks), sum(rows_read), sum(rows_rejected),
			sum(rows_staged), sum(rows_created), sum(rows_updated), sum(rows_unchanged), sum(rows_ignored)
		FROM intake.run_chunks WHERE run_id = $1 GROUP BY 1, 2`, r.id)
	if err != nil {
		return fmt.Errorf("sum counters of run %s: %w", r.id, err)
	}
	defer rows.Close()
	type key struct {
		stage    intakev1.Stage
		perChunk bool
	}
	sums := map[key]map[string]int64{}
	chunksDone := map[intakev1.Stage]int64{}
	for rows.Next() {
		var (
			stage    int16
			perChunk bool
			n        int64
			v        = make([]int64, len(counterNames))
		)
		dest := []any{&stage, &perChunk, &n}
		for i := range v {
			dest = append(dest, &v[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("sum counters of run %s: %w", r.id, err)
		}
		m := map[string]int64{}
		for i, name := range counterNames {
			m[name] = v[i]
		}
		sums[key{intakev1.Stage(stage), perChunk}] = m
		if perChunk {
			chunksDone[intakev1.Stage(stage)] = n
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sum counters of run %s: %w", r.id, err)
	}
	total := map[string]int64{}
	for _, name := range counterNames {
		st := owner[name]
		total[name] = max(sums[key{st, true}][name], sums[key{st, false}][name])
	}
	r.counters = &intakev1.RunCounters{
		Bytes: total["bytes"], Chunks: total["chunks"], RowsRead: total["rows_read"], RowsRejected: total["rows_rejected"],
		RowsStaged: total["rows_staged"], RowsCreated: total["rows_created"], RowsUpdated: total["rows_updated"],
		RowsUnchanged: total["rows_unchanged"], RowsIgnored: total["rows_ignored"],
	}
	for stage, n := range chunksDone {
		if stage != intakev1.Stage_STAGE_FETCH {
			r.stage(stage).ChunksDone = n
		}
	}
	return nil
}

func saveRun(ctx context.Context, q querier, r *runRow, now time.Time) error {
	counters, err := jsonOpts.Marshal(r.counters)
	if err != nil {
		return fmt.Errorf("encode counters of run %s: %w", r.id, err)
	}
	stages, err := encodeStages(r.stages)
	if err != nil {
		return err
	}
	_, err = q.Exec(ctx, `UPDATE intake.runs SET state = $2, start_time = $3, end_time = $4, sha256 = $5, source = $6,
			message = $7, counters = $8::jsonb, stages = $9::jsonb, version = version + 1, update_time = $10,
			new_columns = $11, missing_columns = $12, committed = $13
		WHERE id = $1`,
		r.id, int16(r.state), r.start, r.end, r.sha256, r.source, r.message, string(counters), stages, now,
		nonNil(r.newColumns), nonNil(r.missing), r.committed)
	if err != nil {
		return fmt.Errorf("save run %s: %w", r.id, err)
	}
	return nil
}

// nonNil is s, or an empty slice for nil (the columns are NOT NULL).
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

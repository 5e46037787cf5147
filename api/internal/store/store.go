// Package store keeps the control API's jobs and runs in PostgreSQL (schema
// intake, see pkg/schema/migrations/00001_control.sql) and holds the run
// state machine that stage reports drive. Every report is one transaction
// with a row lock on its run, so concurrent reports of one run take turns.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/intakehq/intake/api/internal/jobspec"
	"github.com/intakehq/intake/pkg/secretbox"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// Conditions the API maps to gRPC codes.
var (
	ErrNotFound      = errors.New("not found")
	ErrAlreadyExists = errors.New("already exists")
	// ErrIDUsed: the id belonged to a deleted job whose run history is
	// kept; reusing it would mix that history (and its file hashes) into the
	// new job's.
	ErrIDUsed = errors.New("id used by a deleted job")
	// ErrDisabled: the job is disabled, so its schedule does not fire.
	ErrDisabled = errors.New("job is disabled")
	// ErrExpired: a validation token is older than ValidationTTL.
	ErrExpired = errors.New("expired")
)

// Store reads and writes jobs and runs.
type Store struct {
	pool *pgxpool.Pool
	now  func() time.Time
	// maxRowErrors bounds the row errors kept per run.
	maxRowErrors int64
	// onAutoDisable is told when the failure policy disables a job.
	onAutoDisable func(ctx context.Context, d AutoDisabled)
	// ring seals and opens secrets (connections.go, webhook.go); nil when
	// no key is configured.
	ring *secretbox.Ring
	// onSaveJob checks the stored connection a job names (connections.go).
	onSaveJob JobConnectionCheck
	// schemas caches the tenants' object schemas (tenant.go).
	schemas tenantSchemas
	// jobs keeps decoded jobs by version (jobcache.go).
	jobs JobCache
}

// New returns a Store on pool.
func New(pool *pgxpool.Pool) *Store {
	return &Store{pool: pool, now: func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
		maxRowErrors: MaxRowErrorsKept}
}

// SetKeyRing sets the key ring that seals and opens secrets: connections'
// secrets and webhook secrets. Without one (nil), a connection with a
// secret cannot be stored and webhook secrets are stored in plain text.
func (s *Store) SetKeyRing(r *secretbox.Ring) { s.ring = r }

// SetRowErrorCap bounds the row errors kept per run (MaxRowErrorsKept by
// default); for tests.
func (s *Store) SetRowErrorCap(n int64) { s.maxRowErrors = n }

// RowErrorCap is how many row errors are kept per run.
func (s *Store) RowErrorCap() int64 { return s.maxRowErrors }

// Cursor is a position in a list: the create time and id of the last item
// of the previous page.
type Cursor struct {
	Time time.Time
	ID   string
}

// JobName is the resource name of a job id.
func JobName(id string) string { return "jobs/" + id }

// RunName is the resource name of a run.
func RunName(jobID, runID string) string { return "jobs/" + jobID + "/runs/" + runID }

var jsonOpts = protojson.MarshalOptions{}

// specOf is the job as stored: without its name and output-only fields.
func specOf(job *intakev1.Job) ([]byte, error) {
	j := proto.Clone(job).(*intakev1.Job)
	jobspec.ClearOutputOnly(j) // disabled_reason, consecutive_failures: columns of their own
	// The webhook secret is write only: a column of its own (webhook.go).
	jobspec.ClearWebhookSecret(j)
	j.Name, j.Etag = "", ""
	b, err := jsonOpts.Marshal(j)
	if err != nil {
		return nil, fmt.Errorf("encode job: %w", err)
	}
	return b, nil
}

// newEtag is a fresh random etag: it only has to differ from the previous one.
func newEtag() string { return fmt.Sprintf("%016x", rand.Uint64()) }

// jobColumns are the columns scanJob reads, the job's last run among them.
const jobColumns = jobColumnsHead + lastRunColumnSQL + jobColumnsTail

// jobColumnsNoLastRun are jobColumns with an empty last run: the scheduled
// runs' batch does not look each job's last run up (scheduledruns.go).
const jobColumnsNoLastRun = jobColumnsHead + `''` + jobColumnsTail

const (
	jobColumnsHead   = `j.id, j.spec, j.etag, j.create_time, j.update_time, `
	lastRunColumnSQL = `COALESCE((SELECT r.id FROM intake.runs r WHERE r.job_id = j.id ORDER BY r.create_time DESC, r.id DESC LIMIT 1), '')`
	jobColumnsTail   = `, j.validated_hash, j.validate_time, j.validated_columns, j.disabled_reason, j.consecutive_failures,
	j.webhook_secret IS NOT NULL OR j.webhook_secret_sealed IS NOT NULL` // webhook.go
)

// JobValidation is a job's validation state.
type JobValidation struct {
	// Hash is the mapping hash (jobspec.MappingHash) that passed
	// ValidateMapping; "" when the job's current mapping has not passed;
	// GrandfatheredHash for a job enabled before validation existed.
	Hash string
	// Time is when it passed.
	Time time.Time
	// Columns is the file's header at the job's last passing validation,
	// nil when it never passed. It is kept when the mapping changes.
	Columns []string
}

// GrandfatheredHash marks the mapping of a job that was enabled before
// validation existed: valid until the mapping changes.
const GrandfatheredHash = "*"

// Valid reports whether the state says that a job whose mapping hashes to
// hash has passed validation.
func (v *JobValidation) Valid(hash string) bool {
	return v != nil && v.Hash != "" && (v.Hash == hash || v.Hash == GrandfatheredHash)
}

func scanJob(row pgx.Row) (*intakev1.Job, error) {
	job, _, err := scanJobState(row)
	return job, err
}

// scanJobState reads a row of jobColumns, followed by the columns extra
// scans into.
func scanJobState(row pgx.Row, extra ...any) (*intakev1.Job, *JobValidation, error) {
	var (
		id, etag, lastRun string
		spec              []byte
		created, updated  time.Time
		v                 JobValidation
		validated         *time.Time
		columns           []byte
		disabledReason    string
		failures          int32
		secretSet         bool
	)
	if err := row.Scan(append([]any{&id, &spec, &etag, &created, &updated, &lastRun, &v.Hash, &validated, &columns,
		&disabledReason, &failures, &secretSet}, extra...)...); err != nil {
		return nil, nil, err
	}
	if validated != nil {
		v.Time = *validated
	}
	if columns != nil {
		if err := json.Unmarshal(columns, &v.Columns); err != nil {
			return nil, nil, fmt.Errorf("decode the validated columns of job %s: %w", id, err)
		}
		if v.Columns == nil {
			v.Columns = []string{}
		}
	}
	job := &intakev1.Job{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(spec, job); err != nil {
		return nil, nil, fmt.Errorf("decode job %s: %w", id, err)
	}
	jobspec.ClearOutputOnly(job) // a spec saved before they were cleared on save
	job.Name = JobName(id)
	job.Etag = etag
	job.CreateTime = timestamppb.New(created)
	job.UpdateTime = timestamppb.New(updated)
	job.DisabledReason, job.ConsecutiveFailures = disabledReason, failures
	withSecretSet(job, secretSet) // webhook.go
	if lastRun != "" {
		job.LastRun = RunName(id, lastRun)
	}
	if v.Valid(jobspec.MappingHash(job)) {
		job.MappingValidated = true
		if !v.Time.IsZero() {
			job.MappingValidateTime = timestamppb.New(v.Time)
		}
	}
	return job, &v, nil
}

// encodeColumns is the jsonb of a validation's columns; nil stays NULL.
func encodeColumns(cols []string) (*string, error) {
	if cols == nil {
		return nil, nil
	}
	b, err := json.Marshal(cols)
	if err != nil {
		return nil, fmt.Errorf("encode columns: %w", err)
	}
	s := string(b)
	return &s, nil
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// CreateJob stores job under id, with its validation state (nil: not
// validated). ErrAlreadyExists when the id is taken.
func (s *Store) CreateJob(ctx context.Context, id string, job *intakev1.Job, v *JobValidation) (*intakev1.Job, error) {
	spec, err := specOf(job)
	if err != nil {
		return nil, err
	}
	if v == nil {
		v = &JobValidation{}
	}
	cols, err := encodeColumns(v.Columns)
	if err != nil {
		return nil, err
	}
	plain, sealed, err := s.webhookSecretOf(id, job) // webhook.go
	if err != nil {
		return nil, err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("insert job %s: %w", id, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit it is a no-op
	// The tenant of the runs of a deleted job with this id, if any: the
	// id is that tenant's history (another tenant sees only "taken").
	var usedBy string
	err = tx.QueryRow(ctx, `SELECT r.tenant_id FROM intake.runs r
		WHERE r.job_id = $1 AND NOT EXISTS (SELECT 1 FROM intake.jobs WHERE id = $1) LIMIT 1`, id).Scan(&usedBy)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("check job id %s: %w", id, err)
	}
	if usedBy != "" && usedBy != tenantOrDefault(ctx) {
		return nil, ErrIDTaken
	}
	if usedBy != "" {
		return nil, ErrIDUsed
	}
	named := proto.Clone(job).(*intakev1.Job)
	named.Name = JobName(id)
	if err := s.lockJobConnection(ctx, tx, named); err != nil { // connections.go
		return nil, err
	}
	now := s.now()
	tenant := tenantOrDefault(ctx)
	_, err = tx.Exec(ctx, `INSERT INTO intake.jobs (id, spec, enabled, etag, create_time, update_time,
			validated_hash, validate_time, validated_columns, webhook_secret, webhook_secret_sealed, tenant_id)
		VALUES ($1, $2::jsonb, $3, $4, $5, $5, $6, $7, $8::jsonb, $9, $10, $11)`,
		id, string(spec), job.GetEnabled(), newEtag(), now, v.Hash, nullTime(v.Time), cols, plain, sealed, tenant)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		var owner string
		if err := s.pool.QueryRow(ctx, `SELECT tenant_id FROM intake.jobs WHERE id = $1`, id).Scan(&owner); err == nil && owner != tenant {
			return nil, ErrIDTaken
		}
		return nil, ErrAlreadyExists
	}
	if err != nil {
		return nil, fmt.Errorf("insert job %s: %w", id, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("insert job %s: %w", id, err)
	}
	return s.GetJob(ctx, id)
}

// GetJob returns the job with the given id.
func (s *Store) GetJob(ctx context.Context, id string) (*intakev1.Job, error) {
	return getJob(ctx, s.pool, id, "")
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func getJob(ctx context.Context, q querier, id, lock string) (*intakev1.Job, error) {
	job, _, err := getJobState(ctx, q, id, lock)
	return job, err
}

func getJobState(ctx context.Context, q querier, id, lock string) (*intakev1.Job, *JobValidation, error) {
	job, v, err := scanJobState(q.QueryRow(ctx, `SELECT `+jobColumns+` FROM intake.jobs j
		WHERE j.id = $1 AND ($2::text = '' OR j.tenant_id = $2) `+lock, id, TenantOf(ctx)))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, ErrNotFound
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read job %s: %w", id, err)
	}
	return job, v, nil
}

// GetJobValidation returns a job with its validation state.
func (s *Store) GetJobValidation(ctx context.Context, id string) (*intakev1.Job, *JobValidation, error) {
	return getJobState(ctx, s.pool, id, "")
}

// ListJobs returns up to limit jobs after the cursor, oldest first. It
// reads the page's ids, versions and last runs, and the rows of the jobs
// the cache does not hold at that version (JobCache): the scheduler lists
// every job every few seconds. A job deleted between the two reads makes
// it read the page again, so that a short page always means the last one.
// withLastRun says whether to look each job's last run up (a query of the runs
// per job, which the scheduler's poll does not need).
func (s *Store) ListJobs(ctx context.Context, after *Cursor, limit int, withLastRun bool) ([]*intakev1.Job, error) {
	for attempt := 1; ; attempt++ {
		jobs, complete, err := s.listJobsPage(ctx, after, limit, withLastRun)
		switch {
		case err != nil:
			return nil, err
		case complete:
			return jobs, nil
		case attempt == 5:
			return nil, fmt.Errorf("list jobs: jobs were deleted while the page was read, 5 times: try again")
		}
	}
}

// listJobsPage is one attempt of ListJobs; complete is false when a job of
// the page was deleted before its row was read.
func (s *Store) listJobsPage(ctx context.Context, after *Cursor, limit int, withLastRun bool) (jobs []*intakev1.Job, complete bool, err error) {
	lastRunSQL := `''`
	if withLastRun {
		lastRunSQL = lastRunColumnSQL
	}
	page := `SELECT j.id, j.version, ` + lastRunSQL + ` FROM intake.jobs j `
	var rows pgx.Rows
	if after == nil {
		rows, err = s.pool.Query(ctx, page+`WHERE ($2::text = '' OR j.tenant_id = $2)
			ORDER BY j.create_time, j.id LIMIT $1`, limit, TenantOf(ctx))
	} else {
		rows, err = s.pool.Query(ctx, page+`WHERE (j.create_time, j.id) > ($1, $2) AND ($4::text = '' OR j.tenant_id = $4)
			ORDER BY j.create_time, j.id LIMIT $3`, after.Time, after.ID, limit, TenantOf(ctx))
	}
	if err != nil {
		return nil, false, fmt.Errorf("list jobs: %w", err)
	}
	var (
		versions []jobVersion
		lastRuns []string
		v        jobVersion
		lastRun  string
	)
	if _, err := pgx.ForEachRow(rows, []any{&v.id, &v.version, &lastRun}, func() error {
		versions, lastRuns = append(versions, v), append(lastRuns, lastRun)
		return nil
	}); err != nil {
		return nil, false, fmt.Errorf("list jobs: %w", err)
	}
	cached, err := s.jobsByVersion(ctx, versions)
	if err != nil {
		return nil, false, fmt.Errorf("list jobs: %w", err)
	}
	jobs = make([]*intakev1.Job, 0, len(versions))
	for i, v := range versions {
		e := cached[v.id]
		if e == nil {
			return nil, false, nil // deleted since the page was read
		}
		job, err := e.copyJob(v.id, lastRuns[i])
		if err != nil {
			return nil, false, fmt.Errorf("list jobs: %w", err)
		}
		jobs = append(jobs, job)
	}
	return jobs, true, nil
}

// UpdateJob locks the job, lets update change it and its validation state
// (an error from update aborts), stores the result with a new etag and
// update time.
func (s *Store) UpdateJob(ctx context.Context, id string, update func(job *intakev1.Job, v *JobValidation) error) (*intakev1.Job, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("update job %s: %w", id, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit it is a no-op
	job, v, err := getJobState(ctx, tx, id, "FOR UPDATE OF j")
	if err != nil {
		return nil, err
	}
	if err := update(job, v); err != nil {
		return nil, err
	}
	spec, err := specOf(job)
	if err != nil {
		return nil, err
	}
	cols, err := encodeColumns(v.Columns)
	if err != nil {
		return nil, err
	}
	if err := s.lockJobConnection(ctx, tx, job); err != nil { // connections.go
		return nil, err
	}
	keepSecret, plain, sealed, err := s.webhookSecretUpdate(id, job) // webhook.go
	if err != nil {
		return nil, err
	}
	// Enabling a disabled job clears what the failure policy recorded.
	if _, err := tx.Exec(ctx, `UPDATE intake.jobs SET spec = $2::jsonb, enabled = $3, etag = $4, update_time = $5,
			validated_hash = $6, validate_time = $7, validated_columns = $8::jsonb,
			disabled_reason = CASE WHEN $3 AND NOT enabled THEN '' ELSE disabled_reason END,
			consecutive_failures = CASE WHEN $3 AND NOT enabled THEN 0 ELSE consecutive_failures END,
			webhook_secret = CASE WHEN $9 THEN webhook_secret ELSE $10 END,
			webhook_secret_sealed = CASE WHEN $9 THEN webhook_secret_sealed ELSE $11 END
		WHERE id = $1`,
		id, string(spec), job.GetEnabled(), newEtag(), s.now(), v.Hash, nullTime(v.Time), cols, keepSecret, plain, sealed); err != nil {
		return nil, fmt.Errorf("update job %s: %w", id, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("update job %s: %w", id, err)
	}
	return s.GetJob(ctx, id)
}

// DeleteJob deletes a job. Its runs stay, as history; the ones still in
// progress are CANCELLED, so the workers drop their work — except a run
// whose commit has begun, which lands whole and ends as its commit says.
// It returns the cancelled runs.
func (s *Store) DeleteJob(ctx context.Context, id string) ([]*intakev1.Run, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("delete job %s: %w", id, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit it is a no-op
	// Lock the job's unfinished runs before the job: a report that ends a
	// run locks the run, then the job (failure policy), so taking the locks
	// in the same order here cannot deadlock with it.
	if _, err := getJob(ctx, tx, id, ""); err != nil { // another tenant's job is not found
		return nil, err
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM intake.runs WHERE job_id = $1 AND state < $2 ORDER BY id FOR UPDATE`,
		id, int16(intakev1.RunState_RUN_STATE_SUCCEEDED)); err != nil {
		return nil, fmt.Errorf("delete job %s: lock its runs: %w", id, err)
	}
	tag, err := tx.Exec(ctx, `DELETE FROM intake.jobs WHERE id = $1 AND ($2::text = '' OR tenant_id = $2)`, id, TenantOf(ctx))
	if err != nil {
		return nil, fmt.Errorf("delete job %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return nil, ErrNotFound
	}
	now := s.now()
	rows, err := tx.Query(ctx, `UPDATE intake.runs SET state = $2, message = $3, end_time = $4,
			version = version + 1, update_time = $4
		WHERE job_id = $1 AND state < $5 AND NOT committing RETURNING `+runColumns, // a committing run lands whole (cancel.go)
		id, int16(intakev1.RunState_RUN_STATE_CANCELLED), "cancelled: job "+JobName(id)+" was deleted", now,
		int16(intakev1.RunState_RUN_STATE_SUCCEEDED))
	if err != nil {
		return nil, fmt.Errorf("cancel the runs of job %s: %w", id, err)
	}
	defer rows.Close()
	var cancelled []*intakev1.Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("cancel the runs of job %s: %w", id, err)
		}
		cancelled = append(cancelled, r.proto())
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cancel the runs of job %s: %w", id, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("delete job %s: %w", id, err)
	}
	return cancelled, nil
}

// JobKnown reports whether a job exists or once existed (has runs).
func (s *Store) JobKnown(ctx context.Context, id string) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM intake.jobs WHERE id = $1 AND ($2::text = '' OR tenant_id = $2))
		OR EXISTS (SELECT 1 FROM intake.runs WHERE job_id = $1 AND ($2::text = '' OR tenant_id = $2))`, id, TenantOf(ctx)).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("look up job %s: %w", id, err)
	}
	return ok, nil
}

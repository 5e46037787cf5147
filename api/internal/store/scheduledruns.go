package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// ScheduledTick is one schedule tick of a job: the (job, scheduled time)
// pair a scheduled run is idempotent on.
type ScheduledTick struct {
	JobID string
	Time  time.Time
}

// ScheduledRun is the outcome of one tick of CreateScheduledRuns: as
// CreateScheduledRun returns it, or Err.
type ScheduledRun struct {
	Run *intakev1.Run
	// Job is the job as it is now (also set with ErrDisabled), without its
	// last run, in binary protobuf, as the run request carries it (shared
	// with the store's cache: do not modify it). DecodeJob decodes it.
	Job []byte
	// JobID and Object are the job's id and object.
	JobID  string
	Object intakev1.ObjectType
	// Created is false when the run of this tick already existed.
	Created bool
	// Model is the data model stored with a created run (the one its run
	// request carries); nil when the run already existed.
	Model *intakev1.DataObject
	// Tenant is the job's tenant (its run request carries it).
	Tenant string
	// Err is ErrNotFound for an unknown job and ErrDisabled for a disabled
	// one that has no run for this tick yet; the run was not created.
	Err error
}

// DecodeJob decodes the run's job (without its last run).
func (r *ScheduledRun) DecodeJob() (*intakev1.Job, error) { return decodeJob(r.JobID, r.Job) }

// scheduledKey identifies a tick: job id and scheduled time in Unix
// microseconds (the precision PostgreSQL keeps).
type scheduledKey struct {
	job  string
	tick int64
}

// ModelFunc returns the data model of an object, stored with the runs that
// load into it.
type ModelFunc func(ctx context.Context, object intakev1.ObjectType) (*intakev1.DataObject, error)

// CreateScheduledRuns creates the runs of many ticks at once, each as
// CreateScheduledRun would: a tick whose run exists returns that run with
// created=false. It reads the jobs' versions in one query (and the rows of
// the jobs the store's JobCache lacks at that version in another), looks up the existing
// runs in one, inserts the new ones in one multi-row INSERT … ON CONFLICT
// DO NOTHING (a concurrent caller's run wins and is returned) and stores
// with each new run the model of its job's object (model, called once per
// object), so its run request can be published without reading it back.
// The results are in the order of ticks; a tick repeated in ticks gets the
// same run. An error is returned only when the database fails.
func (s *Store) CreateScheduledRuns(ctx context.Context, ticks []ScheduledTick, model ModelFunc) ([]ScheduledRun, error) {
	out := make([]ScheduledRun, len(ticks))
	if len(ticks) == 0 {
		return out, nil
	}
	keyOf := func(job string, t time.Time) scheduledKey { return scheduledKey{job, t.UnixMicro()} }
	// first is the index of each distinct tick's first occurrence.
	first := make(map[scheduledKey]int, len(ticks))
	norm := make([]time.Time, len(ticks))
	var jobIDs []string
	seenJob := map[string]bool{}
	for i, t := range ticks {
		norm[i] = t.Time.UTC().Truncate(time.Microsecond)
		k := keyOf(t.JobID, norm[i])
		if _, ok := first[k]; !ok {
			first[k] = i
		}
		if !seenJob[t.JobID] {
			seenJob[t.JobID] = true
			jobIDs = append(jobIDs, t.JobID)
		}
	}

	jobs, err := s.currentJobs(ctx, jobIDs)
	if err != nil {
		return nil, err
	}

	// The rows to insert: the distinct ticks of enabled jobs (a tick whose
	// run exists conflicts, and is looked up after). The ticks of disabled
	// jobs get their run if it exists, else ErrDisabled.
	var (
		ins      insertRows
		insIdx   = map[string]int{} // run id → index in ticks
		disabled []int
	)
	// A tenant's data model is its own (its custom attributes).
	type modelKey struct {
		tenant string
		obj    intakev1.ObjectType
	}
	models := map[modelKey]*intakev1.DataObject{}
	modelIdx := map[modelKey]int32{} // in ins.models, from 1
	for i, t := range ticks {
		if first[keyOf(t.JobID, norm[i])] != i {
			continue
		}
		e := jobs[t.JobID]
		if e == nil {
			out[i].Err = ErrNotFound
			continue
		}
		out[i].Job, out[i].JobID, out[i].Object, out[i].Tenant = e.wire, t.JobID, e.object, e.tenant
		if !e.enabled {
			disabled = append(disabled, i)
			continue
		}
		obj := e.object
		mk := modelKey{e.tenant, obj}
		mi, ok := modelIdx[mk]
		if !ok {
			m, err := model(WithTenant(ctx, mk.tenant), obj)
			if err != nil {
				return nil, fmt.Errorf("read the data model of %s: %w", obj, err)
			}
			b, err := jsonOpts.Marshal(m)
			if err != nil {
				return nil, fmt.Errorf("encode the data model of %s: %w", obj, err)
			}
			models[mk] = m
			ins.models = append(ins.models, string(b))
			// The job's last run likely stores the same model.
			ins.templates = append(ins.templates, t.JobID)
			mi = int32(len(ins.models))
			modelIdx[mk] = mi
		}
		id := NewRunID()
		insIdx[id] = i
		ins.add(id, t.JobID, e.tenant, e.snapshot, norm[i], mi)
	}

	runs, err := ins.exec(ctx, s, s.now())
	if err != nil {
		return nil, err
	}
	// Ticks whose run existed (a retry, another replica, a catch-up of a
	// tick that did fire), or was inserted meanwhile by another caller:
	// look them up, with the disabled jobs' ticks.
	var lost []int
	for id, i := range insIdx {
		if r, ok := runs[id]; ok {
			out[i].Run, out[i].Created, out[i].Model = r, true, models[modelKey{out[i].Tenant, out[i].Object}]
			continue
		}
		lost = append(lost, i)
	}
	existing, err := s.scheduledRunIDs(ctx, ticks, norm, append(lost, disabled...))
	if err != nil {
		return nil, err
	}
	for _, i := range lost {
		if _, ok := existing[keyOf(ticks[i].JobID, norm[i])]; !ok {
			return nil, fmt.Errorf("run of job %s at %s vanished", ticks[i].JobID, norm[i].Format(time.RFC3339))
		}
	}
	for _, i := range disabled {
		if _, ok := existing[keyOf(ticks[i].JobID, norm[i])]; !ok {
			out[i].Err = ErrDisabled
		}
	}
	// Existing runs: read whole, as GetRun does (rare: retries, other
	// replicas, catch-ups of ticks that did fire).
	for i, t := range ticks {
		if first[keyOf(t.JobID, norm[i])] != i || out[i].Err != nil || out[i].Run != nil {
			continue
		}
		id, ok := existing[keyOf(t.JobID, norm[i])]
		if !ok {
			continue
		}
		if out[i].Run, err = s.GetRun(ctx, t.JobID, id); err != nil {
			return nil, fmt.Errorf("read the run of job %s at %s: %w", t.JobID, norm[i].Format(time.RFC3339), err)
		}
	}
	// Repeated ticks share the first occurrence's result, as not created.
	for i, t := range ticks {
		if f := first[keyOf(t.JobID, norm[i])]; f != i {
			out[i] = out[f]
			out[i].Created, out[i].Model = false, nil
		}
	}
	return out, nil
}

// currentJobs returns the jobs with the given ids as they are now, through
// the cache (one query for their versions and tenants, one for the rows of
// those the cache lacks); an unknown id is absent from the map.
func (s *Store) currentJobs(ctx context.Context, ids []string) (map[string]*cachedJob, error) {
	rows, err := s.pool.Query(ctx, `SELECT j.id, j.version FROM intake.jobs j WHERE j.id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("read the versions of %d jobs: %w", len(ids), err)
	}
	versions := make([]jobVersion, 0, len(ids))
	var v jobVersion
	if _, err := pgx.ForEachRow(rows, []any{&v.id, &v.version}, func() error {
		versions = append(versions, v)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read the versions of %d jobs: %w", len(ids), err)
	}
	return s.jobsByVersion(ctx, versions)
}

// scheduledRunIDs returns the id of the run of each tick ticks[i] (at
// norm[i]), for i in idx, that has one, by job and scheduled time (Unix
// microseconds).
func (s *Store) scheduledRunIDs(ctx context.Context, ticks []ScheduledTick, norm []time.Time, idx []int) (map[scheduledKey]string, error) {
	out := map[scheduledKey]string{}
	if len(idx) == 0 {
		return out, nil
	}
	jobIDs := make([]string, 0, len(idx))
	times := make([]time.Time, 0, len(idx))
	for _, i := range idx {
		jobIDs = append(jobIDs, ticks[i].JobID)
		times = append(times, norm[i])
	}
	rows, err := s.pool.Query(ctx, `SELECT r.job_id, r.scheduled_time, r.id
		FROM unnest($1::text[], $2::timestamptz[]) AS t(job_id, tick)
		JOIN intake.runs r ON r.job_id = t.job_id AND r.scheduled_time = t.tick`, jobIDs, times)
	if err != nil {
		return nil, fmt.Errorf("look up the runs of %d ticks: %w", len(jobIDs), err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			job, id string
			at      time.Time
		)
		if err := rows.Scan(&job, &at, &id); err != nil {
			return nil, fmt.Errorf("look up the runs of %d ticks: %w", len(jobIDs), err)
		}
		out[scheduledKey{job, at.UnixMicro()}] = id
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("look up the runs of %d ticks: %w", len(jobIDs), err)
	}
	return out, nil
}

// insertRows are the columns of scheduled runs to insert with one
// statement. models holds each distinct data model (protojson) once, and
// model the index of each row's in it (from 1), so PostgreSQL parses a
// model once per statement, not once per run. templates holds, for each
// model, a job whose last run may already store the same model: when it
// does, the new runs take its stored value, already compressed, instead of
// compressing the same 2 KB again for every run. Each row names its tenant
// (the jobs' tenants were read with them), so the runs_tenant trigger does
// not look it up per row.
type insertRows struct {
	ids, jobIDs, tenants, snapshots []string
	ticks                           []time.Time
	model                           []int32
	models, templates               []string
}

func (r *insertRows) add(id, jobID, tenant, snapshot string, tick time.Time, model int32) {
	r.ids = append(r.ids, id)
	r.jobIDs = append(r.jobIDs, jobID)
	r.tenants = append(r.tenants, tenant)
	r.snapshots = append(r.snapshots, snapshot)
	r.ticks = append(r.ticks, tick)
	r.model = append(r.model, model)
}

// exec inserts the rows as QUEUED scheduled runs created at now, skipping
// a tick whose run exists, and returns the runs it inserted, by id, as
// they were stored (RETURNING: no second read).
func (r *insertRows) exec(ctx context.Context, s *Store, now time.Time) (map[string]*intakev1.Run, error) {
	created := make(map[string]*intakev1.Run, len(r.ids))
	if len(r.ids) == 0 {
		return created, nil
	}
	rows, err := s.pool.Query(ctx, `WITH m AS MATERIALIZED (
			SELECT u.n::int AS n, COALESCE(
				(SELECT p.model FROM (SELECT r.model FROM intake.runs r WHERE r.job_id = ($10::text[])[u.n]
					ORDER BY r.create_time DESC, r.id DESC LIMIT 1) p WHERE p.model = u.v::jsonb),
				u.v::jsonb) AS model
			FROM unnest($6::text[]) WITH ORDINALITY AS u(v, n))
		INSERT INTO intake.runs (id, job_id, tenant_id, state, trigger, job, scheduled_time, create_time, update_time, dry_run, model)
		SELECT t.id, t.job_id, t.tenant_id, $7, $8, t.job::jsonb, t.tick, $9, $9, false, m.model
		FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::int[], $11::text[]) AS t(id, job_id, job, tick, model, tenant_id)
		JOIN m ON m.n = t.model
		ON CONFLICT (job_id, scheduled_time) WHERE scheduled_time IS NOT NULL DO NOTHING
		RETURNING `+runColumns,
		r.ids, r.jobIDs, r.snapshots, r.ticks, r.model, r.models,
		int16(intakev1.RunState_RUN_STATE_QUEUED), int16(intakev1.Trigger_TRIGGER_SCHEDULE), now, r.templates, r.tenants)
	if err != nil {
		return nil, fmt.Errorf("insert %d scheduled runs: %w", len(r.ids), err)
	}
	defer rows.Close()
	for rows.Next() {
		run, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("insert %d scheduled runs: %w", len(r.ids), err)
		}
		created[run.id] = run.proto()
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("insert %d scheduled runs: %w", len(r.ids), err)
	}
	return created, nil
}

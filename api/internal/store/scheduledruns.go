package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

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
	// Job is the job as it is now (also set with ErrDisabled).
	Job *intakev1.Job
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
// created=false. It reads the jobs in one query, looks up the existing
// runs in one, inserts the new ones in one multi-row INSERT … ON CONFLICT
// DO NOTHING (a concurrent caller's run wins and is returned) and stores
// with each new run the model of its job's object (model, called once per
// object), so its run request can be published without reading it back.
// The results are in the order of ticks; a tick repeated in ticks gets the
// same run. An error is returned only when the database fails.
//
// cache, which may be nil, keeps the jobs decoded by earlier calls.
func (s *Store) CreateScheduledRuns(ctx context.Context, ticks []ScheduledTick, model ModelFunc, cache *JobCache) ([]ScheduledRun, error) {
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

	jobs, snapshots, err := s.jobsByID(ctx, jobIDs, cache)
	if err != nil {
		return nil, err
	}
	tenants, err := s.jobTenants(ctx, jobIDs)
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
		job := jobs[t.JobID]
		if job == nil {
			out[i].Err = ErrNotFound
			continue
		}
		out[i].Job, out[i].Tenant = job, tenants[t.JobID]
		if !job.GetEnabled() {
			disabled = append(disabled, i)
			continue
		}
		snap := snapshots[t.JobID]
		obj := job.GetObject()
		mk := modelKey{tenants[t.JobID], obj}
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
			ins.templates = append(ins.templates, templateRun(jobs, ticks, obj))
			mi = int32(len(ins.models))
			modelIdx[mk] = mi
		}
		id := NewRunID()
		insIdx[id] = i
		ins.add(id, t.JobID, snap, norm[i], mi)
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
			out[i].Run, out[i].Created, out[i].Model = r, true, models[modelKey{out[i].Tenant, out[i].Job.GetObject()}]
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

// jobsByID reads the jobs with the given ids, as GetJob does, and the
// snapshot each run of them keeps (protojson); an unknown id is absent from
// the maps. A job whose row is unchanged since cache saw it (but for its
// last run) is not decoded again.
// jobTenants returns the tenant of each of the jobs ids that exist.
func (s *Store) jobTenants(ctx context.Context, ids []string) (map[string]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, tenant_id FROM intake.jobs WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("read the tenants of %d jobs: %w", len(ids), err)
	}
	out := make(map[string]string, len(ids))
	var id, tenant string
	if _, err := pgx.ForEachRow(rows, []any{&id, &tenant}, func() error {
		out[id] = tenant
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read the tenants of %d jobs: %w", len(ids), err)
	}
	return out, nil
}

func (s *Store) jobsByID(ctx context.Context, ids []string, cache *JobCache) (map[string]*intakev1.Job, map[string]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+jobColumns+` FROM intake.jobs j WHERE j.id = ANY($1)`, ids)
	if err != nil {
		return nil, nil, fmt.Errorf("read %d jobs: %w", len(ids), err)
	}
	defer rows.Close()
	jobs := make(map[string]*intakev1.Job, len(ids))
	snapshots := make(map[string]string, len(ids))
	for rows.Next() {
		job, snap, err := cache.scan(rows)
		if err != nil {
			return nil, nil, fmt.Errorf("read %d jobs: %w", len(ids), err)
		}
		id := job.GetName()[len("jobs/"):]
		jobs[id], snapshots[id] = job, snap
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read %d jobs: %w", len(ids), err)
	}
	return jobs, snapshots, nil
}

// JobCache keeps, per job, the job as scanJob decodes its row (without its
// last run) and that job's snapshot, so that the ticks of a job whose row
// has not changed since its previous tick decode and encode no JSON
// (protojson takes some 50 µs a job, most of a scheduled run's cost in the
// API). An entry is used only while every column of the job's row but its
// last run hashes the same. The zero value is ready to use; it is safe for
// concurrent use.
type JobCache struct {
	mu   sync.Mutex
	seed maphash.Seed
	m    map[string]cachedJob
}

type cachedJob struct {
	sum      uint64 // of the row's columns but the last run
	job      []byte // the job without its last run, binary protobuf
	snapshot string // the job without its last run, protojson
}

// maxCachedJobs bounds a JobCache: past it, it starts again empty.
const maxCachedJobs = 200_000

// lastRunColumn is the index of the last run among jobColumns.
const lastRunColumn = 5

// scan reads the job at rows (a row of jobColumns) and its snapshot,
// through the cache when c is not nil.
func (c *JobCache) scan(rows pgx.Rows) (*intakev1.Job, string, error) {
	raw := rows.RawValues()
	if c == nil || len(raw) <= lastRunColumn {
		job, err := scanJob(rows)
		if err != nil {
			return nil, "", err
		}
		b, err := jsonOpts.Marshal(job)
		if err != nil {
			return nil, "", fmt.Errorf("encode the snapshot of %s: %w", job.GetName(), err)
		}
		return job, string(b), nil
	}
	id, lastRun := string(raw[0]), string(raw[lastRunColumn])
	c.mu.Lock()
	if c.m == nil {
		c.m, c.seed = map[string]cachedJob{}, maphash.MakeSeed()
	}
	seed := c.seed
	c.mu.Unlock()
	var h maphash.Hash
	h.SetSeed(seed)
	for i, v := range raw {
		if i == lastRunColumn {
			continue
		}
		var n [9]byte // the length, or a NULL
		if v == nil {
			n[8] = 1
		} else {
			binary.LittleEndian.PutUint64(n[:8], uint64(len(v)))
		}
		_, _ = h.Write(n[:])
		_, _ = h.Write(v)
	}
	sum := h.Sum64()
	c.mu.Lock()
	e, ok := c.m[id]
	c.mu.Unlock()
	job := &intakev1.Job{}
	if ok && e.sum == sum {
		if err := proto.Unmarshal(e.job, job); err != nil {
			return nil, "", fmt.Errorf("decode cached job %s: %w", id, err)
		}
		if lastRun != "" {
			job.LastRun = RunName(id, lastRun) // as scanJob sets it
		}
		return job, withLastRun(e.snapshot, job.GetLastRun()), nil
	}
	job, err := scanJob(rows)
	if err != nil {
		return nil, "", err
	}
	withRun := job.GetLastRun()
	job.LastRun = ""
	b, err := proto.Marshal(job)
	if err != nil {
		return nil, "", fmt.Errorf("encode job %s: %w", job.GetName(), err)
	}
	snap, err := jsonOpts.Marshal(job)
	if err != nil {
		return nil, "", fmt.Errorf("encode the snapshot of %s: %w", job.GetName(), err)
	}
	job.LastRun = withRun
	c.mu.Lock()
	if len(c.m) >= maxCachedJobs {
		clear(c.m)
	}
	c.m[id] = cachedJob{sum: sum, job: b, snapshot: string(snap)}
	c.mu.Unlock()
	return job, withLastRun(string(snap), withRun), nil
}

// withLastRun is the protojson object snapshot (of a job without its last
// run) with the field lastRun added, as protojson would write it. Key order
// does not matter: the snapshot is stored as jsonb.
func withLastRun(snapshot, lastRun string) string {
	if lastRun == "" {
		return snapshot
	}
	rest, ok := strings.CutPrefix(strings.TrimSpace(snapshot), "{")
	if !ok {
		return snapshot
	}
	v, _ := json.Marshal(lastRun) // a string always encodes
	sep := ","
	if strings.HasPrefix(strings.TrimSpace(rest), "}") {
		sep = ""
	}
	return `{"lastRun":` + string(v) + sep + rest
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
// model, a run that may already store the same model (or ""): when it does,
// the new runs take its stored value, already compressed, instead of
// compressing the same 2 KB again for every run.
type insertRows struct {
	ids, jobIDs, snapshots []string
	ticks                  []time.Time
	model                  []int32
	models, templates      []string
}

func (r *insertRows) add(id, jobID, snapshot string, tick time.Time, model int32) {
	r.ids = append(r.ids, id)
	r.jobIDs = append(r.jobIDs, jobID)
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
				(SELECT r.model FROM intake.runs r WHERE r.id = ($10::text[])[u.n] AND r.model = u.v::jsonb),
				u.v::jsonb) AS model
			FROM unnest($6::text[]) WITH ORDINALITY AS u(v, n))
		INSERT INTO intake.runs (id, job_id, state, trigger, job, scheduled_time, create_time, update_time, dry_run, model)
		SELECT t.id, t.job_id, $7, $8, t.job::jsonb, t.tick, $9, $9, false, m.model
		FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::int[]) AS t(id, job_id, job, tick, model)
		JOIN m ON m.n = t.model
		ON CONFLICT (job_id, scheduled_time) WHERE scheduled_time IS NOT NULL DO NOTHING
		RETURNING `+runColumns,
		r.ids, r.jobIDs, r.snapshots, r.ticks, r.model, r.models,
		int16(intakev1.RunState_RUN_STATE_QUEUED), int16(intakev1.Trigger_TRIGGER_SCHEDULE), now, r.templates)
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

// templateRun is the id of the last run of a job of object among ticks (a
// run of the previous tick, usually, which stores the model the new runs
// get), or "" when none has one.
func templateRun(jobs map[string]*intakev1.Job, ticks []ScheduledTick, object intakev1.ObjectType) string {
	for _, t := range ticks {
		j := jobs[t.JobID]
		if j.GetObject() != object || j.GetLastRun() == "" {
			continue
		}
		if _, run, ok := strings.Cut(j.GetLastRun(), "/runs/"); ok {
			return run
		}
	}
	return ""
}

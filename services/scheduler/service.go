package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/google/uuid"
	"github.com/jonboulle/clockwork"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/intakehq/intake/pkg/pipeline"
	"github.com/intakehq/intake/pkg/schedule"
	pipelinev1 "github.com/intakehq/intake/proto/gen/intake/pipeline/v1"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

const (
	// tickTimeout bounds one tick's work (create the run, publish the
	// request), retries included. Shutdown waits for running ticks up to
	// a little more than this, so a tick is not cut between the two steps.
	tickTimeout = 20 * time.Second
	// listTimeout bounds one poll of the job list.
	listTimeout = 30 * time.Second
	// listPageSize is the page size asked of ListJobs.
	listPageSize = 200
	// createAttempts is how often CreateScheduledRun is tried while the API
	// answers Unavailable.
	createAttempts = 5
	// kvTimeout bounds one read or write of the last-tick bucket.
	kvTimeout = 10 * time.Second
	// bulkLastTicks: from this many jobs to check for a missed tick on,
	// the last-tick bucket is read whole rather than key by key.
	bulkLastTicks = 32
)

// Service fires the scheduled runs of the control API's jobs.
type Service struct {
	cfg   Config
	log   *slog.Logger
	clock clockwork.Clock
	m     *metrics

	started atomic.Bool
	synced  atomic.Bool // the job list was read at least once
	nc      atomic.Pointer[nats.Conn]

	// Set by Run before the first job is armed.
	sched    gocron.Scheduler
	jobsAPI  intakev1.JobServiceClient
	stageAPI intakev1.StageServiceClient
	js       jetstream.JetStream
	last     lastTicks
	tickCtx  context.Context
	replica  string // this replica's id, in logs and tick locks

	// mu guards the scheduled jobs and serialises every change of the
	// gocron jobs: reconcile and the re-arming after a tick.
	mu      sync.Mutex
	jobs    map[string]*entry // by job name
	invalid map[string]string // job name → fingerprint of a schedule already reported invalid
}

// entry is one scheduled job: a gocron one-time job armed at next.
type entry struct {
	job         string // "jobs/{job}"
	fingerprint string
	cad         schedule.Cadence
	id          uuid.UUID // the gocron job
	next        time.Time
	rescheduled bool // replaces an entry with another schedule
}

// New checks cfg and returns a Service that Run starts.
func New(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	replica := uuid.NewString()
	return &Service{
		cfg:     cfg,
		replica: replica,
		log:     cfg.Logger.With("replica", replica),
		clock:   cfg.Clock,
		m:       m,
		jobs:    map[string]*entry{},
		invalid: map[string]string{},
	}, nil
}

// Ready reports whether the scheduler has read the job list at least once
// and is connected to NATS.
func (s *Service) Ready() bool {
	nc := s.nc.Load()
	return s.synced.Load() && nc != nil && nc.IsConnected()
}

// NextRun returns when the scheduled job ("jobs/{job}") fires next, and
// false when this scheduler does not hold it (unknown, disabled, without a
// valid schedule, or not yet picked up).
func (s *Service) NextRun(job string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.jobs[job]
	if !ok {
		return time.Time{}, false
	}
	return e.next, true
}

// Run schedules the jobs until ctx is cancelled, then stops the scheduler
// (waiting for ticks in flight), closes its connections and returns
// ctx.Err(). It may be called once.
func (s *Service) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("scheduler: Run called more than once")
	}
	nc, err := nats.Connect(s.cfg.NATSURL,
		nats.Name("intake-scheduler"),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
	)
	if err != nil {
		return fmt.Errorf("scheduler: connect to NATS %s: %w", s.cfg.NATSURL, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("scheduler: JetStream on %s: %w", s.cfg.NATSURL, err)
	}
	ticks, last, err := s.ensureBuckets(ctx, js)
	if err != nil {
		return err
	}
	locker := &tickLocker{kv: ticks, replica: s.replica, m: s.m, log: s.log}
	conn, err := grpc.NewClient(s.cfg.APIAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("scheduler: control API client for %s: %w", s.cfg.APIAddr, err)
	}
	defer conn.Close()
	sched, err := gocron.NewScheduler(
		gocron.WithClock(s.clock),
		gocron.WithLocation(time.UTC),
		gocron.WithLogger(s.log),
		gocron.WithStopTimeout(tickTimeout+5*time.Second),
		gocron.WithDistributedLocker(locker),
	)
	if err != nil {
		return fmt.Errorf("scheduler: new gocron scheduler: %w", err)
	}
	// Ticks outlive ctx so that a tick that created its run also publishes
	// it; Shutdown waits for them, and they are cancelled when Run returns.
	tickCtx, cancelTicks := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelTicks()

	s.mu.Lock()
	s.sched, s.js, s.tickCtx, s.last = sched, js, tickCtx, lastTicks{kv: last}
	s.jobsAPI = intakev1.NewJobServiceClient(conn)
	s.stageAPI = intakev1.NewStageServiceClient(conn)
	s.mu.Unlock()
	s.nc.Store(nc)
	sched.Start()
	s.log.Info("scheduler: started", "api", s.cfg.APIAddr, "nats", s.cfg.NATSURL, "poll_interval", s.cfg.PollInterval)

	poll := s.clock.NewTicker(s.cfg.PollInterval)
	for {
		if err := s.reconcile(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("scheduler: could not read the job list; keeping the current schedule", "err", err)
		}
		select {
		case <-poll.Chan():
			continue
		case <-ctx.Done():
		}
		break
	}
	poll.Stop()

	s.synced.Store(false)
	if err := sched.Shutdown(); err != nil {
		s.log.Warn("scheduler: stopping gocron", "err", err)
	}
	s.mu.Lock()
	clear(s.jobs)
	s.m.jobs.Set(0)
	s.mu.Unlock()
	s.nc.Store(nil)
	s.log.Info("scheduler: stopped")
	return ctx.Err()
}

// ensureBuckets creates or updates the tick-lock and last-tick buckets,
// retrying while NATS is unreachable, until ctx ends.
func (s *Service) ensureBuckets(ctx context.Context, js jetstream.JetStream) (ticks, last jetstream.KeyValue, err error) {
	replicas := max(s.cfg.KVReplicas, 1)
	backoff := 250 * time.Millisecond
	for {
		bctx, cancel := context.WithTimeout(ctx, kvTimeout)
		ticks, err = js.CreateOrUpdateKeyValue(bctx, jetstream.KeyValueConfig{
			Bucket:      TickBucket,
			Description: "Intake scheduler: one key per job tick fired (the per-tick lock of the scheduler replicas).",
			TTL:         TickLockTTL,
			Replicas:    replicas,
			Storage:     jetstream.FileStorage,
		})
		if err == nil {
			last, err = js.CreateOrUpdateKeyValue(bctx, jetstream.KeyValueConfig{
				Bucket:      LastTickBucket,
				Description: "Intake scheduler: the scheduled time of each job's last fired tick (Unix seconds).",
				Replicas:    replicas,
				Storage:     jetstream.FileStorage,
			})
		}
		cancel()
		if err == nil {
			return ticks, last, nil
		}
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		s.log.Warn("scheduler: could not create the key-value buckets; retrying", "err", err)
		// Real time: this waits for a server, not for the schedule.
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// reconcile reads every job and makes the gocron jobs match: one per enabled
// job with a valid schedule, re-armed when the schedule changed. A job new to
// this replica (or rescheduled) whose previous tick no replica fired while it
// was enabled with this schedule fires that tick once, now: see catchUps.
func (s *Service) reconcile(ctx context.Context) error {
	jobs, err := s.listJobs(ctx)
	if err != nil {
		return err
	}
	listed := make(map[string]bool, len(jobs))
	want := make(map[string]*intakev1.Job, len(jobs))
	for _, j := range jobs {
		listed[j.GetName()] = true
		if j.GetEnabled() && j.GetSchedule().GetCadence() != nil {
			want[j.GetName()] = j
		}
	}

	// Under the lock: drop what is gone, parse what is new or changed.
	var (
		deleted []string
		fresh   []*entry
		specs   = map[*entry]*intakev1.Job{}
	)
	s.mu.Lock()
	for name, e := range s.jobs {
		if _, ok := want[name]; !ok {
			s.removeLocked(e)
			s.log.Info("scheduler: job unscheduled (disabled or deleted)", "job", name)
			if !listed[name] {
				deleted = append(deleted, name)
			}
		}
	}
	for name := range s.invalid {
		if _, ok := want[name]; !ok {
			delete(s.invalid, name)
		}
	}
	for name, j := range want {
		fp := fingerprint(j.GetSchedule())
		old, ok := s.jobs[name]
		if ok && old.fingerprint == fp {
			continue
		}
		if !ok && s.invalid[name] == fp {
			continue
		}
		if ok {
			s.removeLocked(old)
		}
		cad, err := schedule.Parse(j.GetSchedule())
		if err != nil {
			s.invalid[name] = fp
			s.log.Warn("scheduler: job not scheduled: invalid schedule", "job", name, "err", err)
			continue
		}
		delete(s.invalid, name)
		e := &entry{job: name, fingerprint: fp, cad: cad, rescheduled: ok}
		fresh = append(fresh, e)
		specs[e] = j
	}
	s.m.jobs.Set(float64(len(s.jobs)))
	s.mu.Unlock()

	// Without the lock (these read NATS): which new entries missed a tick.
	missed := s.catchUps(ctx, fresh, specs)

	s.mu.Lock()
	for _, e := range fresh {
		var err error
		if at, ok := missed[e]; ok {
			err = s.armCatchUpLocked(e, at)
		} else {
			err = s.armLocked(e, s.clock.Now())
		}
		if err != nil {
			s.log.Error("scheduler: job not scheduled", "job", e.job, "err", err)
			continue
		}
		s.jobs[e.job] = e
		verb := "scheduled"
		if e.rescheduled {
			verb = "rescheduled"
		}
		if at, ok := missed[e]; ok {
			s.log.Info("scheduler: job "+verb+"; catching up a missed tick", "job", e.job,
				"missed_tick", at.UTC().Format(time.RFC3339), "next_run", e.cad.Next(s.clock.Now()).Format(time.RFC3339))
			continue
		}
		s.log.Info("scheduler: job "+verb, "job", e.job, "next_run", e.next.Format(time.RFC3339))
	}
	s.m.jobs.Set(float64(len(s.jobs)))
	s.mu.Unlock()

	for _, name := range deleted {
		fctx, cancel := context.WithTimeout(ctx, kvTimeout)
		if err := s.last.forget(fctx, name); err != nil {
			s.log.Warn("scheduler: deleted job", "job", name, "err", err)
		}
		cancel()
	}
	s.synced.Store(true)
	return nil
}

// catchUps returns the missed tick to fire now of each entry that has one.
// An entry's missed tick is its schedule's last fire time before now, when
// that is after both the last tick any replica fired for the job and the
// job's last update (a tick before the job was enabled or got this schedule
// is not missed). A job with neither a recorded tick nor an update time is
// never caught up. Only the latest missed tick fires: a job that missed
// several runs once.
func (s *Service) catchUps(ctx context.Context, fresh []*entry, specs map[*entry]*intakev1.Job) map[*entry]time.Time {
	now := s.clock.Now()
	prevs := map[*entry]time.Time{}
	for _, e := range fresh {
		prev := e.cad.Prev(now)
		if prev.IsZero() {
			continue
		}
		if u := specs[e].GetUpdateTime(); u != nil && !prev.After(u.AsTime()) {
			continue
		}
		prevs[e] = prev
	}
	if len(prevs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, kvTimeout)
	defer cancel()
	var all map[string]time.Time
	if len(prevs) >= bulkLastTicks {
		var err error
		if all, err = s.last.all(ctx); err != nil {
			s.log.Warn("scheduler: could not read the last ticks; not catching up missed ticks", "err", err)
			return nil
		}
	}
	missed := map[*entry]time.Time{}
	for e, prev := range prevs {
		var last time.Time
		if all != nil {
			last = all[kvToken(e.job)]
		} else {
			var err error
			if last, err = s.last.get(ctx, e.job); err != nil {
				s.log.Warn("scheduler: not catching up a missed tick", "job", e.job, "err", err)
				continue
			}
		}
		if last.IsZero() && specs[e].GetUpdateTime() == nil {
			continue
		}
		if prev.After(last) {
			missed[e] = prev
		}
	}
	return missed
}

// listJobs reads all pages of ListJobs.
func (s *Service) listJobs(ctx context.Context) ([]*intakev1.Job, error) {
	ctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	var jobs []*intakev1.Job
	token := ""
	for {
		resp, err := s.jobsAPI.ListJobs(ctx, &intakev1.ListJobsRequest{PageSize: listPageSize, PageToken: token})
		if err != nil {
			return nil, fmt.Errorf("scheduler: list jobs (page after %d jobs): %w", len(jobs), err)
		}
		jobs = append(jobs, resp.GetJobs()...)
		next := resp.GetNextPageToken()
		if next == "" {
			return jobs, nil
		}
		if next == token {
			return nil, fmt.Errorf("scheduler: list jobs: the API returned the same page token %q twice", next)
		}
		token = next
	}
}

// removeLocked drops e's gocron job and forgets e.
func (s *Service) removeLocked(e *entry) {
	if err := s.sched.RemoveJob(e.id); err != nil && !errors.Is(err, gocron.ErrJobNotFound) {
		s.log.Warn("scheduler: remove gocron job", "job", e.job, "err", err)
	}
	delete(s.jobs, e.job)
}

// armLocked (re-)arms e's gocron job at its first fire time after from (or
// after now, when from has passed: missed ticks are not caught up). The
// gocron job is named by tickKey, the key of the tick's lock.
func (s *Service) armLocked(e *entry, from time.Time) error {
	var err error
	for range 3 {
		if now := s.clock.Now(); now.After(from) {
			from = now
		}
		at := e.cad.Next(from)
		if at.IsZero() {
			return fmt.Errorf("scheduler: %s never fires after %s", e.job, from.Format(time.RFC3339))
		}
		def := gocron.OneTimeJob(gocron.OneTimeJobStartDateTime(at))
		if err = s.putJobLocked(e, def, tickKey(e.job, at, false), at, false); err == nil {
			e.next = at
			return nil
		}
		// The clock passed at between computing and arming it: try the
		// next one.
		if !errors.Is(err, gocron.ErrOneTimeJobStartDateTimePast) {
			break
		}
	}
	return fmt.Errorf("scheduler: arm gocron job of %s: %w", e.job, err)
}

// armCatchUpLocked arms e's gocron job to fire its missed tick at now; after
// it, e is re-armed at its next tick as usual.
func (s *Service) armCatchUpLocked(e *entry, missed time.Time) error {
	def := gocron.OneTimeJob(gocron.OneTimeJobStartImmediately())
	if err := s.putJobLocked(e, def, tickKey(e.job, missed, true), missed, true); err != nil {
		return fmt.Errorf("scheduler: arm the catch-up of %s: %w", e.job, err)
	}
	e.next = missed
	return nil
}

// putJobLocked creates or updates e's gocron job: def, named name, firing
// e's tick at at. When another replica holds the tick's lock, e is re-armed
// at its next tick without firing.
func (s *Service) putJobLocked(e *entry, def gocron.JobDefinition, name string, at time.Time, catchUp bool) error {
	task := gocron.NewTask(func() { s.fire(e, at, catchUp) })
	opts := []gocron.JobOption{
		gocron.WithName(name),
		gocron.WithEventListeners(gocron.AfterLockError(func(uuid.UUID, string, error) {
			s.log.Debug("scheduler: tick fired by another replica", "job", e.job, "scheduled_time", at.UTC().Format(time.RFC3339))
			s.advance(e, at)
		})),
	}
	var j gocron.Job
	var err error
	if e.id == uuid.Nil {
		j, err = s.sched.NewJob(def, task, opts...)
	} else {
		j, err = s.sched.Update(e.id, def, task, opts...)
	}
	if err != nil {
		return err
	}
	e.id = j.ID()
	return nil
}

// fire runs on gocron's timer, with e's tick lock held, for e's tick at at:
// it re-arms e at its next tick, then runs this one and records it as the
// job's last tick.
func (s *Service) fire(e *entry, at time.Time, catchUp bool) {
	if catchUp {
		s.m.catchUps.Inc()
	} else {
		late := s.clock.Now().Sub(at)
		s.m.lateness.Observe(max(late, 0).Seconds())
	}
	if !s.advance(e, at) {
		// Unscheduled or rescheduled since this tick was armed.
		return
	}
	switch s.tick(e.job, at, catchUp) {
	case outcomeCreated, outcomeDuplicate:
		ctx, cancel := context.WithTimeout(s.tickCtx, kvTimeout)
		defer cancel()
		if err := s.last.set(ctx, e.job, at); err != nil {
			s.log.Warn("scheduler: tick fired, but not recorded as fired", "job", e.job, "err", err)
		}
	}
}

// advance re-arms e at its first tick after at, and reports whether e is
// still scheduled (not removed or replaced since the tick was armed).
func (s *Service) advance(e *entry, at time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.jobs[e.job] != e {
		return false
	}
	if err := s.armLocked(e, at); err != nil {
		// Forget the job: the next poll schedules it again.
		s.log.Error("scheduler: could not re-arm job", "job", e.job, "err", err)
		delete(s.jobs, e.job)
		s.m.jobs.Set(float64(len(s.jobs)))
	}
	return true
}

// tick creates the run of job's tick at at and publishes its run request,
// and returns the outcome (outcomeCreated, ...).
func (s *Service) tick(job string, at time.Time, catchUp bool) string {
	ctx, cancel := context.WithTimeout(s.tickCtx, tickTimeout)
	defer cancel()
	at = at.Truncate(time.Second)
	log := s.log.With("job", job, "scheduled_time", at.UTC().Format(time.RFC3339))
	if catchUp {
		log = log.With("catch_up", true)
	}
	outcome := s.runTick(ctx, log, job, at)
	s.m.ticks.WithLabelValues(outcome).Inc()
	return outcome
}

func (s *Service) runTick(ctx context.Context, log *slog.Logger, job string, at time.Time) string {
	resp, published, err := s.createRun(ctx, job, at)
	if err != nil {
		switch status.Code(err) {
		case codes.FailedPrecondition, codes.NotFound:
			// Disabled or deleted since the last poll.
			log.Info("scheduler: tick skipped: the job is no longer scheduled", "err", err)
			return outcomeSkipped
		default:
			log.Error("scheduler: tick failed: could not create the run", "err", err)
			return outcomeFailed
		}
	}
	run := resp.GetRun()
	if run.GetName() == "" {
		log.Error("scheduler: tick failed: CreateScheduledRun returned no run name")
		return outcomeFailed
	}
	log = log.With("run", run.GetName())
	if published {
		// The control API published the run request itself, with the
		// run's data model (see runRequestPublishedHeader).
		if resp.GetCreated() {
			log.Info("scheduler: run requested")
			return outcomeCreated
		} else {
			log.Debug("scheduler: run of this tick already existed")
			return outcomeDuplicate
		}
	}
	createTime := run.GetCreateTime()
	if createTime == nil {
		createTime = timestamppb.New(s.clock.Now())
	}
	req := &pipelinev1.RunRequest{
		Run:        run.GetName(),
		Job:        resp.GetJob(),
		Trigger:    intakev1.Trigger_TRIGGER_SCHEDULE,
		CreateTime: createTime,
	}
	// Published also when the run already existed: the replica or attempt
	// that created it may have died before publishing, and JetStream drops
	// the copy by its Nats-Msg-Id otherwise.
	if err := pipeline.Publish(ctx, s.js, pipeline.SubjectRunRequest, run.GetName(), req); err != nil {
		log.Error("scheduler: tick failed: could not publish the run request", "err", err)
		return outcomeFailed
	}
	if resp.GetCreated() {
		log.Info("scheduler: run requested")
		return outcomeCreated
	}
	log.Debug("scheduler: run of this tick already existed; request published again")
	return outcomeDuplicate
}

// runRequestPublishedHeader is the response header by which the control
// API's CreateScheduledRun says it has published the run request itself
// (with the run's data model) or that the run needs none; the scheduler
// then publishes nothing. Without it (an older API) the scheduler
// publishes the request, as before. See docs/pipeline.md, step 1.
const runRequestPublishedHeader = "intake-run-request-published"

// createRun calls CreateScheduledRun, retrying while the API is
// Unavailable (the API answers so also when it created the run but could
// not publish its request: the retry publishes it). published reports
// whether the API published the run request.
func (s *Service) createRun(ctx context.Context, job string, at time.Time) (resp *intakev1.CreateScheduledRunResponse, published bool, err error) {
	req := &intakev1.CreateScheduledRunRequest{Job: job, ScheduledTime: timestamppb.New(at)}
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		var header metadata.MD
		resp, err := s.stageAPI.CreateScheduledRun(ctx, req, grpc.Header(&header))
		if err == nil {
			return resp, slices.Contains(header.Get(runRequestPublishedHeader), "true"), nil
		}
		if status.Code(err) != codes.Unavailable || attempt >= createAttempts {
			return nil, false, fmt.Errorf("create scheduled run (attempt %d): %w", attempt, err)
		}
		s.log.Debug("scheduler: control API unavailable; retrying", "job", job, "attempt", attempt, "err", err)
		// Real time, not s.clock: this waits for a server, not for the schedule.
		select {
		case <-ctx.Done():
			return nil, false, fmt.Errorf("create scheduled run (attempt %d): %w", attempt, err)
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

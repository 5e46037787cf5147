package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/google/uuid"
	"github.com/jonboulle/clockwork"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/intakehq/intake/pkg/natsconn"
	"github.com/intakehq/intake/pkg/schedule"
	"github.com/intakehq/intake/pkg/tlsconf"
	"github.com/intakehq/intake/pkg/tracing"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

const (
	// tickTimeout bounds one tick's work (create the run, publish the
	// request), retries included. Shutdown waits for running ticks up to
	// a little more than this, so a tick is not cut between the two steps.
	tickTimeout = 20 * time.Second
	// listTimeout bounds one poll of the job list.
	listTimeout = 30 * time.Second
	// listPageSize is the page size asked of ListJobs (the API allows up
	// to 1000), and listMaxMsgSize the largest page accepted (jobs with
	// large mappings).
	listPageSize   = 500
	listMaxMsgSize = 64 << 20
	// createAttempts is how often CreateScheduledRun is tried while the API
	// answers Unavailable.
	createAttempts = 5
	// kvTimeout bounds one read or write of the last-tick bucket.
	kvTimeout = 10 * time.Second
	// bulkLastTicks: from this many jobs to check for a missed tick on,
	// the last-tick bucket is read whole rather than key by key.
	bulkLastTicks = 32
	// groupShards is how many tick groups the ticks of one instant are
	// split into (by job name hash): each group is one gocron job and one
	// lock key, whose value lists its jobs (8 bytes each).
	groupShards = 16
	// batchSize is the most ticks per CreateScheduledRuns call. A batch
	// takes the ticks queued until it is full or no tick came for
	// collectWindow. See batchesInFlight for how many calls run at once.
	batchSize     = 500
	collectWindow = 2 * time.Millisecond
	// singleInFlight is how many CreateScheduledRun calls run at once
	// for an API without CreateScheduledRuns.
	singleInFlight = 32
	// locksInFlight is how many ticks' own locks are taken at once.
	locksInFlight = 16
	// batchRetry is how long the scheduler calls CreateScheduledRun tick
	// by tick after the API answered CreateScheduledRuns Unimplemented,
	// before it tries the batch call again.
	batchRetry = time.Minute
	// manyJobs: from this many jobs picked up by one poll on, each is
	// logged at debug level, and their count at info.
	manyJobs = 100
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
	locker   *tickLocker
	tickCtx  context.Context
	replica  string // this replica's id, in logs and tick locks

	// batchOffUntil is the real time (Unix nanoseconds) until which
	// ticks are created one CreateScheduledRun call each (the API
	// answered CreateScheduledRuns Unimplemented).
	batchOffUntil atomic.Int64
	// queue holds the ticks to fire, for the fireWorkers.
	queue chan queuedTick
	// bg counts the catch-ups in flight.
	bg sync.WaitGroup
	// inflight counts the ticks being fired.
	inflight atomic.Int64
	// rec records fired ticks as their jobs' last ticks.
	rec *recorder

	// mu guards the scheduled jobs and their groups, and serialises every
	// change of the gocron jobs: reconcile and the re-arming after a tick.
	mu       sync.Mutex
	jobs     map[string]*entry  // by job name
	groups   map[string]*group  // by name (groupKeyName)
	invalid  map[string]string  // job name → fingerprint of a schedule already reported invalid
	cadences map[string]cadence // parsed schedules, by fingerprint, shared by the jobs that have them
}

// entry is one scheduled job, armed in the group of its next tick.
type entry struct {
	job         string // "jobs/{job}"
	fingerprint string // shared with the other entries of the same schedule
	cad         schedule.Cadence
	hash        uint64 // jobHash(job): its shard and its id in group locks
	next        time.Time
	group       *group // where next is armed; nil while its group fires
}

// cadence is a parsed schedule and its fingerprint.
type cadence struct {
	fingerprint string
	cad         schedule.Cadence
}

// New checks cfg and returns a Service that Run starts.
func New(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	replica := uuid.NewString()
	s := &Service{
		cfg:      cfg,
		replica:  replica,
		log:      cfg.Logger.With("replica", replica),
		clock:    cfg.Clock,
		jobs:     map[string]*entry{},
		groups:   map[string]*group{},
		invalid:  map[string]string{},
		cadences: map[string]cadence{},
		queue:    make(chan queuedTick, 4*batchSize),
		rec:      newRecorder(),
	}
	m, err := newMetrics(cfg.Registerer, s.Ready)
	if err != nil {
		return nil, err
	}
	s.m = m
	return s, nil
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
	// The scheduler keeps trying to connect (ticks resume when NATS is
	// back); the handlers say why it is not connected, e.g. a refused
	// password, instead of retrying silently.
	nc, err := natsconn.Connect(ctx, s.cfg.NATSURL, s.cfg.NATS, "intake-scheduler", nats.RetryOnFailedConnect(true),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			s.log.Error("scheduler: NATS error", "error", err)
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				s.log.Warn("scheduler: disconnected from NATS", "error", err)
			}
		}))
	if err != nil {
		return fmt.Errorf("scheduler: %w", err)
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
	locker := &tickLocker{kv: ticks, replica: s.replica, m: s.m, log: s.log, claim: s.claim, lost: s.lost}
	conn, err := grpc.NewClient(s.cfg.APIAddr, append(tlsconf.DialOptions(s.cfg.APITransport, s.cfg.APICredentials), tracing.GRPCDialOption())...)
	if err != nil {
		return fmt.Errorf("scheduler: control API client for %s: %w", s.cfg.APIAddr, err)
	}
	defer conn.Close()
	sched, err := gocron.NewScheduler(
		gocron.WithClock(s.clock),
		gocron.WithLocation(time.UTC),
		gocron.WithLogger(s.log),
		gocron.WithStopTimeout(s.cfg.ShutdownGrace),
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
	s.sched, s.js, s.tickCtx, s.locker = sched, tracing.JetStream(js), tickCtx, locker
	s.last = lastTicks{kv: last, js: js, subject: "$KV." + LastTickBucket + "."}
	s.jobsAPI = intakev1.NewJobServiceClient(conn)
	s.stageAPI = intakev1.NewStageServiceClient(conn)
	s.mu.Unlock()
	s.nc.Store(nc)
	sched.Start()
	s.log.Info("scheduler: started", "api", s.cfg.APIAddr, "nats", s.cfg.NATSURL, "poll_interval", s.cfg.PollInterval)

	var workers sync.WaitGroup
	stopWorkers, batches := make(chan struct{}), make(chan []queuedTick)
	workers.Go(func() { defer close(batches); s.collect(batches, stopWorkers) })
	for range batchesInFlight() {
		workers.Go(func() { s.fireWorker(batches) })
	}
	recDone, recStopped := make(chan struct{}), make(chan struct{})
	go func() { defer close(recStopped); s.runRecorder(recDone) }()

	poll := s.clock.NewTicker(s.cfg.PollInterval)
	var took time.Duration // of the last poll
	for {
		start := time.Now()
		if err := s.reconcile(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("scheduler: could not read the job list; keeping the current schedule", "err", err)
		}
		took = time.Since(start)
		select {
		case <-poll.Chan():
			s.waitQuiet(ctx, took)
			continue
		case <-ctx.Done():
		}
		break
	}
	poll.Stop()

	s.synced.Store(false)
	stopBy := time.Now().Add(s.cfg.ShutdownGrace) // one grace for the whole stop
	if err := sched.Shutdown(); err != nil {
		s.log.Warn("scheduler: stopping gocron", "err", err)
	}
	// Catch-ups in flight finish, for as long as a tick may take.
	done := make(chan struct{})
	go func() { s.bg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Until(stopBy)):
		cancelTicks()
		<-done
	}
	close(stopWorkers) // every tick fired (or given up: tickCtx)
	workers.Wait()
	close(recDone)
	<-recStopped
	s.mu.Lock()
	clear(s.jobs)
	clear(s.groups)
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

// listed is what reconcile keeps of a job the API listed: enough to decide
// whether to (re)schedule it, not the whole Job.
type listed struct {
	enabled     bool // enabled with a cadence
	fingerprint string
	schedule    *intakev1.Schedule // only while reconcile runs
	updated     time.Time          // zero when the API sets no update time
}

// fresh is a job reconcile (re)schedules.
type fresh struct {
	e           *entry
	updated     time.Time
	rescheduled bool // it replaces an entry with another schedule
}

// reconcile reads every job and makes the scheduled entries match: one per
// enabled job with a valid schedule, re-armed when the schedule changed. A
// job new to this replica (or rescheduled) whose previous tick no replica
// fired while it was enabled with this schedule fires that tick once, now:
// see catchUps.
func (s *Service) reconcile(ctx context.Context) error {
	jobs, err := s.listJobs(ctx)
	if err != nil {
		return err
	}

	// Under the lock: drop what is gone, parse what is new or changed.
	var (
		deleted []string
		news    []fresh
	)
	s.mu.Lock()
	removed := false
	for name, e := range s.jobs {
		if j, ok := jobs[name]; !ok || !j.enabled {
			s.removeLocked(e)
			removed = true
			s.log.Info("scheduler: job unscheduled (disabled or deleted)", "job", name)
			if !ok {
				deleted = append(deleted, name)
			}
		}
	}
	for name := range s.invalid {
		if j, ok := jobs[name]; !ok || !j.enabled {
			delete(s.invalid, name)
		}
	}
	for name, j := range jobs {
		if !j.enabled {
			continue
		}
		old, ok := s.jobs[name]
		if ok && old.fingerprint == j.fingerprint {
			continue
		}
		if !ok && s.invalid[name] == j.fingerprint {
			continue
		}
		if ok {
			s.removeLocked(old)
			removed = true
		}
		c, err := s.cadenceLocked(j.fingerprint, j.schedule)
		if err != nil {
			s.invalid[name] = j.fingerprint
			s.log.Warn("scheduler: job not scheduled: invalid schedule", "job", name, "err", err)
			continue
		}
		delete(s.invalid, name)
		e := &entry{job: name, fingerprint: c.fingerprint, cad: c.cad, hash: jobHash(name)}
		news = append(news, fresh{e: e, updated: j.updated, rescheduled: ok})
	}
	s.m.jobs.Set(float64(len(s.jobs)))
	s.mu.Unlock()
	jobs = nil

	// Without the lock (these read NATS): which new entries missed a tick.
	missed := s.catchUps(ctx, news)

	s.mu.Lock()
	now := s.clock.Now()
	scheduled := 0
	memo := &nextTicks{}
	for _, f := range news {
		e := f.e
		if err := s.armLocked(e, now, memo); err != nil {
			s.log.Error("scheduler: job not scheduled", "job", e.job, "err", err)
			delete(missed, e)
			continue
		}
		s.jobs[e.job] = e
		scheduled++
		level := slog.LevelInfo
		if len(news) > manyJobs {
			level = slog.LevelDebug
		}
		verb := "scheduled"
		if f.rescheduled {
			verb = "rescheduled"
		}
		if at, ok := missed[e]; ok {
			s.log.Log(ctx, level, "scheduler: job "+verb+"; catching up a missed tick", "job", e.job,
				"missed_tick", at.UTC().Format(time.RFC3339), "next_run", e.next.Format(time.RFC3339))
			continue
		}
		s.log.Log(ctx, level, "scheduler: job "+verb, "job", e.job, "next_run", e.next.Format(time.RFC3339))
	}
	if len(news) > manyJobs {
		s.log.Info("scheduler: jobs scheduled", "jobs", scheduled, "catch_ups", len(missed))
	}
	if removed {
		s.pruneCadencesLocked()
	}
	s.m.jobs.Set(float64(len(s.jobs)))
	s.mu.Unlock()

	if len(missed) > 0 {
		ticks := make([]firedTick, 0, len(missed))
		for e, at := range missed {
			ticks = append(ticks, firedTick{job: e.job, at: at, catchUp: true})
		}
		s.bg.Go(func() { s.fireOwn(ticks) })
	}

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

// cadenceLocked parses sched, whose fingerprint is fp, once for all the
// jobs that have it.
func (s *Service) cadenceLocked(fp string, sched *intakev1.Schedule) (cadence, error) {
	if c, ok := s.cadences[fp]; ok {
		return c, nil
	}
	cad, err := schedule.Parse(sched)
	if err != nil {
		return cadence{}, err
	}
	c := cadence{fingerprint: fp, cad: cad}
	s.cadences[fp] = c
	return c, nil
}

// pruneCadencesLocked forgets the parsed schedules no job has any more.
func (s *Service) pruneCadencesLocked() {
	used := make(map[string]bool, len(s.cadences))
	for _, e := range s.jobs {
		used[e.fingerprint] = true
	}
	for fp := range s.cadences {
		if !used[fp] {
			delete(s.cadences, fp)
		}
	}
}

// catchUps returns the missed tick to fire now of each entry that has one.
// An entry's missed tick is its schedule's last fire time before now, when
// that is after both the last tick any replica fired for the job and the
// job's last update (a tick before the job was enabled or got this schedule
// is not missed). A job with neither a recorded tick nor an update time is
// never caught up. Only the latest missed tick fires: a job that missed
// several runs once.
func (s *Service) catchUps(ctx context.Context, news []fresh) map[*entry]time.Time {
	now := s.clock.Now()
	prevs := map[*entry]time.Time{}
	updated := map[*entry]time.Time{}
	for _, f := range news {
		prev := f.e.cad.Prev(now)
		if prev.IsZero() {
			continue
		}
		if !f.updated.IsZero() && !prev.After(f.updated) {
			continue
		}
		prevs[f.e] = prev
		updated[f.e] = f.updated
	}
	if len(prevs) == 0 {
		return map[*entry]time.Time{}
	}
	ctx, cancel := context.WithTimeout(ctx, kvTimeout)
	defer cancel()
	var all map[string]time.Time
	if len(prevs) >= bulkLastTicks {
		var err error
		if all, err = s.last.all(ctx); err != nil {
			s.log.Warn("scheduler: could not read the last ticks; not catching up missed ticks", "err", err)
			return map[*entry]time.Time{}
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
		if last.IsZero() && updated[e].IsZero() {
			continue
		}
		if prev.After(last) {
			missed[e] = prev
		}
	}
	return missed
}

// listJobs reads all pages of ListJobs and keeps, per job, what reconcile
// needs (the pages themselves are dropped as they are read).
func (s *Service) listJobs(ctx context.Context) (map[string]listed, error) {
	// What a poll reads of each job: what decides its schedule (an API
	// older than read masks sends every field).
	listMask := &fieldmaskpb.FieldMask{Paths: []string{"name", "enabled", "schedule", "update_time"}}
	ctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	jobs := map[string]listed{}
	token := ""
	for {
		resp, err := s.jobsAPI.ListJobs(ctx, &intakev1.ListJobsRequest{PageSize: listPageSize, PageToken: token, ReadMask: listMask},
			grpc.MaxCallRecvMsgSize(listMaxMsgSize))
		if err != nil {
			return nil, fmt.Errorf("scheduler: list jobs (page after %d jobs): %w", len(jobs), err)
		}
		for _, j := range resp.GetJobs() {
			l := listed{enabled: j.GetEnabled() && j.GetSchedule().GetCadence() != nil}
			if l.enabled {
				l.fingerprint = fingerprint(j.GetSchedule())
				l.schedule = j.GetSchedule()
				if u := j.GetUpdateTime(); u != nil {
					l.updated = u.AsTime()
				}
			}
			jobs[j.GetName()] = l
		}
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

// batchesInFlight is how many CreateScheduledRuns calls a replica makes at
// once: one more than the cores of its machine (taken as the API's too), 3
// to 8. Each call alternates between the API, PostgreSQL and NATS (and
// waits for JetStream's acknowledgements): one call more than cores keeps
// them busy, more only make them take turns (on the 2-core benchmark
// machine, 3 calls at once did better than 2).
func batchesInFlight() int {
	return min(max(runtime.GOMAXPROCS(0)+1, 3), 8)
}

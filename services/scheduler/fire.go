package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/intakehq/intake/pkg/pipeline"
	pipelinev1 "github.com/intakehq/intake/proto/gen/intake/pipeline/v1"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// runRequestPublishedHeader is the response header by which the control
// API's CreateScheduledRun and CreateScheduledRuns say it has published the
// run requests itself (with the runs' data model) or that a run needs none;
// the scheduler then publishes nothing. Without it (an older API) the
// scheduler publishes the requests, as before. See docs/pipeline.md, step 1.
const runRequestPublishedHeader = "intake-run-request-published"

// firedTick is a tick this replica fires: the run of job at at.
type firedTick struct {
	job     string
	at      time.Time
	catchUp bool // the catch-up of a missed tick
}

func (t firedTick) logger(log *slog.Logger) *slog.Logger {
	log = log.With("job", t.job, "scheduled_time", t.at.UTC().Format(time.RFC3339))
	if t.catchUp {
		log = log.With("catch_up", true)
	}
	return log
}

// fireOwn fires ticks that each take their own lock (tickKey): catch-ups,
// and the ticks of a group that the group's winner did not hold. The
// locks are taken a few at a time; the ticks whose lock this replica got
// (or could not reach) are fired together.
func (s *Service) fireOwn(ticks []firedTick) {
	got := make([]bool, len(ticks))
	sem := make(chan struct{}, locksInFlight)
	var wg sync.WaitGroup
	for i, t := range ticks {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			_, err := s.locker.Lock(s.tickCtx, tickKey(t.job, t.at, t.catchUp))
			got[i] = err == nil
		})
	}
	wg.Wait()
	var fire []firedTick
	for i, t := range ticks {
		if !got[i] {
			s.log.Debug("scheduler: tick fired by another replica", "job", t.job, "scheduled_time", t.at.UTC().Format(time.RFC3339), "catch_up", t.catchUp)
			continue
		}
		if t.catchUp {
			s.m.catchUps.Inc()
		}
		fire = append(fire, t)
	}
	s.fireTicks(fire)
}

// queuedTick is a tick waiting in the replica's queue to be fired.
type queuedTick struct {
	firedTick
	call *fireCall
}

// fireCall counts the ticks of one fireTicks call still to fire.
type fireCall struct {
	left atomic.Int64
	done chan struct{} // closed when left reaches 0
}

func (c *fireCall) finish() {
	if c.left.Add(-1) == 0 {
		close(c.done)
	}
}

// fireTicks creates the runs of ticks (and has their requests published)
// through the replica's queue, and returns when every one is done. The
// queue's batchesInFlight workers send the ticks queued at about the same
// time (by every group of an instant) together, in batches of at most
// batchSize.
func (s *Service) fireTicks(ticks []firedTick) {
	if len(ticks) == 0 {
		return
	}
	s.inflight.Add(int64(len(ticks)))
	defer s.inflight.Add(-int64(len(ticks)))
	call := &fireCall{done: make(chan struct{})}
	call.left.Store(int64(len(ticks)))
	for _, t := range ticks {
		select {
		case s.queue <- queuedTick{firedTick: t, call: call}:
		case <-s.tickCtx.Done(): // stopped: not fired
			return
		}
	}
	select {
	case <-call.done:
	case <-s.tickCtx.Done():
	}
}

// collect forms batches of the queued ticks for the fireWorkers until stop
// is closed: a batch takes the ticks queued until it holds batchSize or no
// tick comes for collectWindow, and goes on taking them while every worker
// is busy.
func (s *Service) collect(batches chan<- []queuedTick, stop <-chan struct{}) {
	for {
		var batch []queuedTick
		select {
		case t := <-s.queue:
			batch = append(make([]queuedTick, 0, batchSize), t)
		case <-stop:
			return
		}
		timer := time.NewTimer(collectWindow)
	fill:
		for len(batch) < batchSize {
			select {
			case t := <-s.queue:
				batch = append(batch, t)
			case <-timer.C:
				break fill
			}
		}
		timer.Stop()
	handOff:
		for {
			in := s.queue
			if len(batch) >= batchSize {
				in = nil
			}
			select {
			case batches <- batch:
				break handOff
			case t := <-in:
				batch = append(batch, t)
			case <-stop:
				return
			}
		}
	}
}

// fireWorker fires the batches of ticks it is handed until batches is
// closed.
func (s *Service) fireWorker(batches <-chan []queuedTick) {
	for batch := range batches {
		ticks := make([]firedTick, len(batch))
		for i, t := range batch {
			ticks[i] = t.firedTick
		}
		s.fireBatch(ticks)
		for _, t := range batch {
			t.call.finish()
		}
	}
}

// fireBatch creates the runs of one batch of ticks, counts their outcomes
// and queues the fired ones to be recorded as their jobs' last ticks (see
// recorder). A tick's lateness is observed here, when the scheduler asks
// for its run.
func (s *Service) fireBatch(ticks []firedTick) {
	ctx, cancel := context.WithTimeout(s.tickCtx, tickTimeout)
	defer cancel()
	now := s.clock.Now()
	for _, t := range ticks {
		if !t.catchUp {
			s.m.lateness.Observe(max(now.Sub(t.at), 0).Seconds())
		}
	}
	outcomes := s.createRuns(ctx, ticks)
	counts := map[string]int{}
	fired := make([]firedTick, 0, len(ticks))
	for i, o := range outcomes {
		counts[o]++
		if o == outcomeCreated || o == outcomeDuplicate {
			fired = append(fired, ticks[i])
		}
	}
	for o, n := range counts {
		s.m.ticks.WithLabelValues(o).Add(float64(n))
	}
	if len(ticks) > 0 {
		s.log.Info("scheduler: ticks fired", "ticks", len(ticks), "scheduled_time", ticks[0].at.UTC().Format(time.RFC3339),
			"created", counts[outcomeCreated], "duplicate", counts[outcomeDuplicate],
			"skipped", counts[outcomeSkipped], "failed", counts[outcomeFailed])
	}
	s.rec.add(fired)
}

// createRuns creates the runs of ticks with CreateScheduledRuns, retrying
// the ticks the API answers Unavailable for (it does so also when it created
// a run but could not publish its request: the retry publishes it), and
// returns each tick's outcome. Against an API without CreateScheduledRuns
// it calls CreateScheduledRun per tick, a few at a time.
func (s *Service) createRuns(ctx context.Context, ticks []firedTick) []string {
	out := make([]string, len(ticks))
	pending := make([]int, len(ticks))
	for i := range pending {
		pending[i] = i
	}
	backoff := 100 * time.Millisecond
	for attempt := 1; len(pending) > 0; attempt++ {
		if time.Now().UnixNano() < s.batchOffUntil.Load() {
			s.createRunsOneByOne(ctx, ticks, pending, out)
			return out
		}
		// The API publishes the run requests (runRequestPublishedHeader), so
		// the results need not carry the jobs; an API older than omit_jobs
		// sends them, for finishTick to publish with.
		req := &intakev1.CreateScheduledRunsRequest{Ticks: make([]*intakev1.CreateScheduledRunRequest, len(pending)), OmitJobs: true}
		for k, i := range pending {
			req.Ticks[k] = &intakev1.CreateScheduledRunRequest{Job: ticks[i].job, ScheduledTime: timestamppb.New(ticks[i].at)}
		}
		var header metadata.MD
		resp, err := s.stageAPI.CreateScheduledRuns(ctx, req, grpc.Header(&header))
		switch {
		case status.Code(err) == codes.Unimplemented:
			s.log.Info("scheduler: the control API has no CreateScheduledRuns; creating runs one call per tick", "err", err)
			// Real time: this is about the API's version, not the schedule.
			s.batchOffUntil.Store(time.Now().Add(batchRetry).UnixNano())
			continue
		case err == nil && len(resp.GetResults()) != len(pending):
			err = fmt.Errorf("CreateScheduledRuns returned %d results for %d ticks", len(resp.GetResults()), len(pending))
			fallthrough
		case err != nil && (status.Code(err) != codes.Unavailable || attempt >= createAttempts):
			s.log.Error("scheduler: ticks failed: could not create their runs", "ticks", len(pending),
				"scheduled_time", ticks[pending[0]].at.UTC().Format(time.RFC3339), "attempt", attempt, "err", err)
			for _, i := range pending {
				out[i] = outcomeFailed
			}
			return out
		case err != nil:
			s.log.Debug("scheduler: control API unavailable; retrying", "ticks", len(pending), "attempt", attempt, "err", err)
		default:
			published := slices.Contains(header.Get(runRequestPublishedHeader), "true")
			var retry []int
			for k, r := range resp.GetResults() {
				i := pending[k]
				code := codes.Code(r.GetCode())
				switch {
				case code == codes.OK && r.GetError() == "" && r.GetResponse() != nil:
					out[i] = s.finishTick(ctx, ticks[i], r.GetResponse(), published)
				case code == codes.Unavailable && attempt < createAttempts:
					retry = append(retry, i)
				default:
					out[i] = s.tickError(ticks[i], status.Error(code, r.GetError()))
				}
			}
			if pending = retry; len(pending) == 0 {
				return out
			}
			s.log.Debug("scheduler: control API could not create some runs; retrying", "ticks", len(pending), "attempt", attempt)
		}
		// Real time, not s.clock: this waits for a server, not for the schedule.
		select {
		case <-ctx.Done():
			for _, i := range pending {
				out[i] = s.tickError(ticks[i], fmt.Errorf("create scheduled runs (attempt %d): %w", attempt, ctx.Err()))
			}
			return out
		case <-time.After(backoff):
		}
		backoff *= 2
	}
	return out
}

// createRunsOneByOne creates the runs of ticks[i] for i in pending with one
// CreateScheduledRun call each, singleInFlight at once.
func (s *Service) createRunsOneByOne(ctx context.Context, ticks []firedTick, pending []int, out []string) {
	sem := make(chan struct{}, singleInFlight)
	var wg sync.WaitGroup
	for _, i := range pending {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			resp, published, err := s.createRun(ctx, ticks[i].job, ticks[i].at)
			if err != nil {
				out[i] = s.tickError(ticks[i], err)
				return
			}
			out[i] = s.finishTick(ctx, ticks[i], resp, published)
		})
	}
	wg.Wait()
}

// tickError is the outcome of a tick whose run was not created: skipped
// when the job was disabled or deleted since the last poll, else failed.
func (s *Service) tickError(t firedTick, err error) string {
	switch status.Code(err) {
	case codes.FailedPrecondition, codes.NotFound:
		t.logger(s.log).Info("scheduler: tick skipped: the job is no longer scheduled", "err", err)
		return outcomeSkipped
	}
	t.logger(s.log).Error("scheduler: tick failed: could not create the run", "err", err)
	return outcomeFailed
}

// finishTick publishes the run request of a tick's run unless the API did
// (published), and returns the tick's outcome.
func (s *Service) finishTick(ctx context.Context, t firedTick, resp *intakev1.CreateScheduledRunResponse, published bool) string {
	run := resp.GetRun()
	if run.GetName() == "" {
		t.logger(s.log).Error("scheduler: tick failed: the control API returned no run name")
		return outcomeFailed
	}
	outcome := outcomeDuplicate
	if resp.GetCreated() {
		outcome = outcomeCreated
	}
	if published {
		// The control API published the run request itself, with the
		// run's data model (see runRequestPublishedHeader).
		return outcome
	}
	if resp.GetJob() == nil {
		t.logger(s.log).Error("scheduler: tick failed: the control API neither published the run request nor returned the job", "run", run.GetName())
		return outcomeFailed
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
		t.logger(s.log).Error("scheduler: tick failed: could not publish the run request", "run", run.GetName(), "err", err)
		return outcomeFailed
	}
	return outcome
}

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

package api

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/intakehq/intake/api/internal/store"
	"github.com/intakehq/intake/pkg/pipeline"
	pipelinev1 "github.com/intakehq/intake/proto/gen/intake/pipeline/v1"
)

const (
	// DefaultRequeueAfter is Config.RequeueAfter when it is zero.
	DefaultRequeueAfter = time.Minute
	// MinRequeueAfter is the shortest Config.RequeueAfter accepted.
	MinRequeueAfter = 100 * time.Millisecond
	// requeueBatch is how many runs one claim takes; a sweep claims
	// batches until it finds fewer.
	requeueBatch = 100
)

// requeueLoop sweeps for stuck runs every RequeueAfter/2 until ctx ends.
// The first sweep is one interval after start.
func (s *Server) requeueLoop(ctx context.Context) {
	every := s.cfg.RequeueAfter / 2
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := s.requeueStuck(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("requeue sweep failed; retrying at the next sweep", "every", every, "error", err)
		}
	}
}

// requeueStuck publishes the run request again of every run that is still
// QUEUED RequeueAfter after its creation with no stage report: the process
// that created it (the scheduler, or this API) may have died before
// publishing it, or NATS may have been down. The message id is the run
// name, so JetStream drops the copy when the first publish did land (within
// its dedupe window), and the fetcher ignores a redelivered request of a
// run it already started.
//
// Each run is claimed in PostgreSQL first (store.ClaimStuckRuns), so with
// several API replicas only one republishes it, and not again before
// RequeueAfter has passed. It returns how many requests were published.
func (s *Server) requeueStuck(ctx context.Context) (int, error) {
	published := 0
	var errs []error
	for {
		now := time.Now()
		runs, err := s.store.ClaimStuckRuns(ctx, now.Add(-s.cfg.RequeueAfter), requeueBatch)
		if err != nil {
			return published, errors.Join(append(errs, err)...)
		}
		for _, r := range runs {
			ok, err := s.requeue(ctx, r, now)
			if err != nil {
				errs = append(errs, err)
			}
			if ok {
				published++
			}
		}
		if len(runs) < requeueBatch || ctx.Err() != nil {
			return published, errors.Join(errs...)
		}
	}
}

// requeue publishes the run request of one claimed run, or fails the run
// when its job snapshot cannot be read. It reports whether it published.
func (s *Server) requeue(ctx context.Context, r store.StuckRun, now time.Time) (bool, error) {
	name := r.Name()
	log := s.log.With("job", r.JobID, "run", r.RunID, "trigger", r.Trigger.String(),
		"queued_for", now.Sub(r.CreateTime).Round(time.Second).String())
	if r.SnapshotErr != nil {
		// It can never run: say why instead of leaving it QUEUED.
		msg := fmt.Sprintf("could not queue the run again: %v", r.SnapshotErr)
		failed, err := s.store.FailQueued(ctx, r.JobID, r.RunID, msg)
		if err != nil {
			return false, fmt.Errorf("fail run %s: %w", name, err)
		}
		if failed {
			s.hub.notify(name)
			if run, err := s.store.GetRun(ctx, r.JobID, r.RunID); err == nil {
				s.metrics.runFinished(run)
			}
		}
		log.Error("stuck queued run failed: its job snapshot cannot be read", "error", r.SnapshotErr)
		return false, nil
	}
	pctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	model, err := s.runModel(pctx, name, r.Job.GetObject())
	if err == nil {
		err = pipeline.Publish(pctx, s.js, pipeline.SubjectRunRequest, name, &pipelinev1.RunRequest{
			Run: name, Job: r.Job, Trigger: r.Trigger, CreateTime: timestamppb.New(r.CreateTime), DryRun: r.DryRun, Model: model,
			ReplayOf: r.ReplayOf, // issue 4 (files)
			Tenant:   s.runTenant(pctx, name),
		})
	}
	if err != nil {
		log.Error("could not requeue a stuck queued run; retrying after RequeueAfter", "requeue_after", s.cfg.RequeueAfter, "error", err)
		return false, fmt.Errorf("requeue run %s: %w", name, err)
	}
	s.metrics.runsRequeued.Inc()
	log.Warn("run requeued: still queued with no stage report, its run request was published again")
	return true, nil
}

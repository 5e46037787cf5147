package loader

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/intakehq/intake/pkg/pipeline"
	"github.com/intakehq/intake/pkg/tracing"
	pipelinev1 "github.com/intakehq/intake/proto/gen/intake/pipeline/v1"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
	"github.com/intakehq/intake/services/loader/internal/store"
)

// Reports to the control API are retried this often while it is unavailable
// before the message goes back to the stream for a later attempt.
const (
	reportAttempts = 4
	reportBackoff  = 200 * time.Millisecond
	reportTimeout  = 10 * time.Second
)

func (s *Service) handle(ctx context.Context, msg jetstream.Msg) error {
	switch msg.Subject() {
	case pipeline.SubjectBatch:
		var b pipelinev1.Batch
		if err := proto.Unmarshal(msg.Data(), &b); err != nil {
			return pipeline.Term(fmt.Errorf("loader: %s message is not a Batch: %w", msg.Subject(), err))
		}
		log, err := s.runLog(b.Run)
		if err != nil {
			return pipeline.Term(err)
		}
		tracing.SetAttributes(ctx, tracing.Run(b.Run, "", b.Chunk)...)
		return s.handleBatch(ctx, tracing.Logger(ctx, log.With("chunk", b.Chunk)), &b)
	case pipeline.SubjectSeal:
		var m pipelinev1.Seal
		if err := proto.Unmarshal(msg.Data(), &m); err != nil {
			return pipeline.Term(fmt.Errorf("loader: %s message is not a Seal: %w", msg.Subject(), err))
		}
		log, err := s.runLog(m.Run)
		if err != nil {
			return pipeline.Term(err)
		}
		tracing.SetAttributes(ctx, tracing.Run(m.Run, "", -1)...)
		return s.handleSeal(ctx, tracing.Logger(ctx, log), &m)
	default:
		return pipeline.Term(fmt.Errorf("loader: unexpected subject %q on stream %s", msg.Subject(), pipeline.StreamLoad))
	}
}

// runLog is the logger of a run; a message whose run is not a run name can
// never be handled nor reported.
func (s *Service) runLog(run string) (*slog.Logger, error) {
	job, id, err := store.ParseRun(run)
	if err != nil {
		return nil, fmt.Errorf("loader: %w", err)
	}
	return s.log.With("job", job, "run", id), nil
}

// handleBatch stages a batch, reports the chunk, and commits the run if it
// was the last piece missing.
func (s *Service) handleBatch(ctx context.Context, log *slog.Logger, b *pipelinev1.Batch) error {
	start := time.Now()
	res, err := s.store.StageBatch(ctx, b)
	if store.IsInvalid(err) {
		return s.fail(ctx, log, b.Run, err)
	}
	if err != nil {
		return fmt.Errorf("loader: %w", err)
	}
	switch res.State {
	case store.Abandoned:
		log.Info("batch of an abandoned run dropped")
		return nil
	case store.Committed:
		// A redelivery after the commit: say again how it ended.
		return s.finished(ctx, log, b.Run, res.Counts)
	}
	if res.Staged {
		s.metrics.batchWrite.Observe(time.Since(start).Seconds())
		s.metrics.rowsStaged.Add(float64(res.Rows))
		log.Debug("batch staged", "rows", res.Rows)
	}
	d, err := s.report(ctx, log, &intakev1.ReportRunEventRequest{
		Run:      b.Run,
		Kind:     intakev1.RunEventKind_RUN_EVENT_KIND_CHUNK_DONE,
		Chunk:    b.Chunk,
		Counters: &intakev1.RunCounters{RowsStaged: res.Rows},
	})
	if err != nil {
		return err
	}
	if d == intakev1.Directive_DIRECTIVE_ABANDON {
		return s.abandon(ctx, log, b.Run)
	}
	if err := s.store.ChunkReported(ctx, b.Run, b.Chunk); err != nil {
		return fmt.Errorf("loader: %w", err)
	}
	return s.commit(ctx, log, b.Run)
}

// handleSeal records the run's chunk count and commits the run if every
// chunk is staged.
func (s *Service) handleSeal(ctx context.Context, log *slog.Logger, m *pipelinev1.Seal) error {
	res, err := s.store.Seal(ctx, m)
	if store.IsInvalid(err) {
		return s.fail(ctx, log, m.Run, err)
	}
	if err != nil {
		return fmt.Errorf("loader: %w", err)
	}
	switch res.State {
	case store.Abandoned:
		log.Info("seal of an abandoned run dropped")
		return nil
	case store.Committed:
		return s.finished(ctx, log, m.Run, res.Counts)
	}
	log.Debug("run sealed", "chunks", m.Chunks)
	return s.commit(ctx, log, m.Run)
}

// commit commits the run if it is complete, and reports how it ended. The
// commit gate comes first: the loader reports (LOAD, COMMITTING) with the
// rows staged, and the control API answers ABANDON when the run must not
// land (over its error budget, cancelled or failed meanwhile): the staging
// is then dropped. A dry run passes the same gate, then only counts.
func (s *Service) commit(ctx context.Context, log *slog.Logger, run string) error {
	rd, err := s.store.CheckCommit(ctx, run)
	if store.IsInvalid(err) {
		return s.fail(ctx, log, run, err)
	}
	if err != nil {
		return fmt.Errorf("loader: %w", err)
	}
	switch {
	case rd.State == store.Committed:
		return s.finished(ctx, log, run, rd.Counts)
	case rd.State == store.Abandoned || !rd.Ready:
		return nil
	}
	d, err := s.report(ctx, log, &intakev1.ReportRunEventRequest{
		Run:      run,
		Kind:     intakev1.RunEventKind_RUN_EVENT_KIND_COMMITTING,
		Counters: &intakev1.RunCounters{RowsStaged: rd.RowsStaged},
	})
	if err != nil {
		return err
	}
	if d == intakev1.Directive_DIRECTIVE_ABANDON {
		log.Info("the control API refused the commit", "rows_staged", rd.RowsStaged, "dry_run", rd.DryRun)
		return s.abandon(ctx, log, run)
	}

	ctx, span := tracing.Start(ctx, "commit run", append(tracing.Run(run, "", -1), tracing.AttrStage.String("load"))...)
	defer span.End()
	start := time.Now()
	res, committed, err := s.store.TryCommit(ctx, run)
	if store.IsInvalid(err) {
		return s.fail(ctx, log, run, err)
	}
	if err != nil {
		return fmt.Errorf("loader: %w", err)
	}
	span.SetAttributes(tracing.AttrMerged.Bool(committed && res.Merged))
	if !committed {
		// Abandoned between the gate and the commit.
		return nil
	}
	if res.Merged {
		took := time.Since(start)
		attrs := []any{"took", took, "created", res.Counts.Created, "updated", res.Counts.Updated,
			"unchanged", res.Counts.Unchanged, "ignored", res.Counts.Ignored}
		if res.DryRun {
			s.metrics.dryRuns.Inc()
			log.Info("dry run counted; the object table is unchanged", attrs...)
		} else {
			s.metrics.committed(res.Counts, took.Seconds())
			log.Info("run committed", attrs...)
		}
	}
	return s.finished(ctx, log, run, res.Counts)
}

// finished reports the committed run's counts.
func (s *Service) finished(ctx context.Context, log *slog.Logger, run string, c store.Counts) error {
	d, err := s.report(ctx, log, &intakev1.ReportRunEventRequest{
		Run:  run,
		Kind: intakev1.RunEventKind_RUN_EVENT_KIND_FINISHED,
		Counters: &intakev1.RunCounters{
			RowsCreated:   c.Created,
			RowsUpdated:   c.Updated,
			RowsUnchanged: c.Unchanged,
			RowsIgnored:   c.Ignored,
		},
	})
	if err != nil {
		return err
	}
	if d == intakev1.Directive_DIRECTIVE_ABANDON {
		// Too late: the run has landed. The API keeps the run's final state.
		log.Warn("the control API abandoned a run that is committed already")
	}
	return nil
}

// abandon drops the run's staging on the control API's word.
func (s *Service) abandon(ctx context.Context, log *slog.Logger, run string) error {
	if err := s.store.Abandon(ctx, run); err != nil {
		return fmt.Errorf("loader: %w", err)
	}
	log.Info("run abandoned: staging dropped")
	return nil
}

// fail reports a run the loader can never commit as failed, then drops it.
func (s *Service) fail(ctx context.Context, log *slog.Logger, run string, cause error) error {
	log.Error("run failed in the loader", "err", cause)
	if _, err := s.report(ctx, log, &intakev1.ReportRunEventRequest{
		Run:     run,
		Kind:    intakev1.RunEventKind_RUN_EVENT_KIND_FAILED,
		Message: cause.Error(),
	}); err != nil {
		return err
	}
	return s.abandon(ctx, log, run)
}

// report sends a LOAD event to the control API, retrying while it is
// unavailable. A run the API does not know (any more) is abandoned.
func (s *Service) report(ctx context.Context, log *slog.Logger, req *intakev1.ReportRunEventRequest) (intakev1.Directive, error) {
	req.Stage = intakev1.Stage_STAGE_LOAD
	req.EventTime = timestamppb.Now()
	backoff := reportBackoff
	for attempt := 1; ; attempt++ {
		rctx, cancel := context.WithTimeout(ctx, reportTimeout)
		resp, err := s.api.ReportRunEvent(rctx, req)
		cancel()
		if err == nil {
			return resp.GetDirective(), nil
		}
		code := status.Code(err)
		if code == codes.NotFound {
			log.Warn("the control API does not know the run: abandoning it", "err", err)
			return intakev1.Directive_DIRECTIVE_ABANDON, nil
		}
		if code != codes.Unavailable || attempt >= reportAttempts || ctx.Err() != nil {
			return 0, fmt.Errorf("loader: report %v of run %s: %w", req.Kind, req.Run, err)
		}
		log.Warn("control API unavailable; retrying the report", "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

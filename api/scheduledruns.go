package api

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/intakehq/intake/api/internal/store"
	"github.com/intakehq/intake/pkg/pipeline"
	"github.com/intakehq/intake/pkg/tracing"
	pipelinev1 "github.com/intakehq/intake/proto/gen/intake/pipeline/v1"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// MaxScheduledRunsBatch is how many ticks one CreateScheduledRuns call may
// carry.
const MaxScheduledRunsBatch = 5000

// CreateScheduledRuns creates the runs of many ticks at once (the ticks of
// one instant), each as CreateScheduledRun would, and publishes the run
// request of every run that is QUEUED (asynchronously, then waiting for
// every acknowledgement), with the run's data model; it sets
// RunRequestPublishedHeader as CreateScheduledRun does. A tick that cannot
// be created (an unknown or disabled job, a malformed tick, a request that
// could not be published) gets an error in its result, with the gRPC code
// CreateScheduledRun would return; the call itself fails only when the
// database does (the scheduler then retries the batch: it is idempotent).
func (g *stageService) CreateScheduledRuns(ctx context.Context, req *intakev1.CreateScheduledRunsRequest) (*intakev1.CreateScheduledRunsResponse, error) {
	s := g.s
	if n := len(req.GetTicks()); n > MaxScheduledRunsBatch {
		return nil, badField("ticks", "%d ticks; at most %d per call", n, MaxScheduledRunsBatch)
	}
	results := make([]*intakev1.CreateScheduledRunResult, len(req.GetTicks()))
	ticks := make([]store.ScheduledTick, 0, len(req.GetTicks()))
	index := make([]int, 0, len(req.GetTicks())) // ticks[k] is request tick index[k]
	for i, t := range req.GetTicks() {
		id, ok := strings.CutPrefix(t.GetJob(), "jobs/")
		switch {
		case !ok || id == "" || strings.Contains(id, "/"):
			results[i] = tickError(codes.InvalidArgument, "ticks[%d].job: %q is not a job name (jobs/{job})", i, t.GetJob())
			continue
		case t.GetScheduledTime() == nil:
			results[i] = tickError(codes.InvalidArgument, "ticks[%d].scheduled_time: required", i)
			continue
		}
		if err := t.GetScheduledTime().CheckValid(); err != nil {
			results[i] = tickError(codes.InvalidArgument, "ticks[%d].scheduled_time: %v", i, err)
			continue
		}
		ticks = append(ticks, store.ScheduledTick{JobID: id, Time: t.GetScheduledTime().AsTime()})
		index = append(index, i)
	}

	runs, err := s.store.CreateScheduledRuns(ctx, ticks, s.objectModel)
	if err != nil {
		return nil, s.storeError(ctx, "create the scheduled runs of", fmt.Sprintf("%d ticks", len(ticks)), err)
	}
	created := 0
	var queued []int // indexes into runs of the runs to publish
	for k, r := range runs {
		i := index[k]
		job := req.GetTicks()[i].GetJob()
		switch {
		case errors.Is(r.Err, store.ErrNotFound):
			results[i] = tickError(codes.NotFound, "job %s not found", job)
			continue
		case errors.Is(r.Err, store.ErrDisabled):
			results[i] = tickError(codes.FailedPrecondition, "job %s is disabled: its schedule does not fire", job)
			continue
		case r.Err != nil:
			results[i] = tickError(codes.Internal, "create the scheduled run of job %s: %v", job, r.Err)
			continue
		}
		resp := &intakev1.CreateScheduledRunResponse{Run: r.Run, Created: r.Created}
		if !req.GetOmitJobs() {
			if resp.Job, err = r.DecodeJob(); err != nil {
				results[i] = tickError(codes.Internal, "%v", err)
				continue
			}
		}
		results[i] = &intakev1.CreateScheduledRunResult{Response: resp}
		if r.Created {
			created++
			s.log.DebugContext(ctx, "scheduled run created", "job", job, "run", r.Run.GetName(),
				"scheduled_time", r.Run.GetScheduledTime().AsTime())
		}
		if r.Run.GetState() == intakev1.RunState_RUN_STATE_QUEUED {
			queued = append(queued, k)
		}
	}
	for k, err := range s.publishScheduledRuns(ctx, runs, queued) {
		i := index[k]
		s.log.ErrorContext(ctx, "scheduled run request not published", "job", store.JobName(runs[k].JobID), "run", runs[k].Run.GetName(), "error", err)
		results[i] = tickError(codes.Unavailable, "run %s is created but its run request could not be published (it stays queued: call again, or the requeue sweeper publishes it): %v",
			runs[k].Run.GetName(), err)
	}
	if created > 0 {
		s.log.InfoContext(ctx, "scheduled runs created", "created", created, "ticks", len(req.GetTicks()))
	}
	if err := grpc.SetHeader(ctx, metadata.Pairs(RunRequestPublishedHeader, "true")); err != nil {
		s.log.WarnContext(ctx, "could not set the run-request-published header", "error", err)
	}
	return &intakev1.CreateScheduledRunsResponse{Results: results}, nil
}

// runRequestModelField and runRequestJobField are the field numbers of
// RunRequest.model and RunRequest.job.
var (
	runRequestModelField = (&pipelinev1.RunRequest{}).ProtoReflect().Descriptor().Fields().ByName("model").Number()
	runRequestJobField   = (&pipelinev1.RunRequest{}).ProtoReflect().Descriptor().Fields().ByName("job").Number()
)

// tickError is the result of a tick whose run was not created.
func tickError(code codes.Code, format string, args ...any) *intakev1.CreateScheduledRunResult {
	return &intakev1.CreateScheduledRunResult{Error: fmt.Sprintf(format, args...), Code: int32(code)}
}

// publishScheduledRuns publishes the run requests of runs[k] for every k in
// queued: all at once with asynchronous publishes, then each one that failed
// again with pipeline.Publish (which retries). A created run carries the
// model stored with it; a run that already existed the one stored when its
// request was first published (see runModel). It returns the error of each
// run whose request could not be published, by index into runs.
func (s *Server) publishScheduledRuns(ctx context.Context, runs []store.ScheduledRun, queued []int) map[int]error {
	failed := map[int]error{}
	if len(queued) == 0 {
		return failed
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	type pending struct {
		k   int
		msg *nats.Msg
		ack jetstream.PubAckFuture
	}
	var inFlight []pending
	// A model is encoded once and appended to each request that carries
	// it, as is each job (a message's fields may come in any order on the
	// wire).
	models := map[*intakev1.DataObject][]byte{}
	for _, k := range queued {
		r := runs[k]
		model := r.Model
		if model == nil {
			var err error
			if model, err = s.runModel(pctx, r.Run.GetName(), r.Object); err != nil {
				failed[k] = err
				continue
			}
		}
		req := &pipelinev1.RunRequest{
			Run: r.Run.GetName(), Trigger: intakev1.Trigger_TRIGGER_SCHEDULE, CreateTime: r.Run.GetCreateTime(),
			Tenant: r.Tenant,
		}
		data, err := proto.Marshal(req)
		if err != nil {
			failed[k] = fmt.Errorf("encode the run request: %w", err)
			continue
		}
		// The job as the store keeps it encoded.
		data = protowire.AppendBytes(protowire.AppendTag(data, runRequestJobField, protowire.BytesType), r.Job)
		mb, ok := models[model]
		if !ok {
			if mb, err = proto.Marshal(model); err != nil {
				failed[k] = fmt.Errorf("encode the run request's model: %w", err)
				continue
			}
			models[model] = mb
		}
		data = protowire.AppendBytes(protowire.AppendTag(data, runRequestModelField, protowire.BytesType), mb)
		msg := nats.NewMsg(pipeline.SubjectRunRequest)
		msg.Data = data
		msg.Header.Set(jetstream.MsgIDHeader, r.Run.GetName())
		tracing.Inject(pctx, msg) // the tick's trace goes on to the fetcher
		ack, err := s.js.PublishMsgAsync(msg)
		if err != nil {
			ack = nil // published again below
		}
		inFlight = append(inFlight, pending{k: k, msg: msg, ack: ack})
	}
	for _, p := range inFlight {
		if p.ack != nil {
			select {
			case <-p.ack.Ok():
				continue
			case <-p.ack.Err():
			case <-pctx.Done():
			}
		}
		// Not acknowledged: publish it again, synchronously, with retries
		// (the stream drops a copy it already stored by its Nats-Msg-Id).
		// A new message: the asynchronous publish may still hold its own.
		msg := nats.NewMsg(p.msg.Subject)
		msg.Data, msg.Header = p.msg.Data, maps.Clone(p.msg.Header)
		if err := pipeline.PublishMsg(pctx, s.js, msg); err != nil {
			failed[p.k] = err
		}
	}
	return failed
}

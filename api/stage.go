package api

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/intakehq/intake/api/internal/jobspec"
	"github.com/intakehq/intake/api/internal/store"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

type stageService struct {
	intakev1.UnimplementedStageServiceServer
	s *Server
}

var sha256Pattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// checkReport checks a report against the pipeline contract.
func checkReport(req *intakev1.ReportRunEventRequest) error {
	var vs jobspec.Violations
	add := func(field, format string, args ...any) {
		vs = append(vs, jobspec.Violation{Field: field, Description: fmt.Sprintf(format, args...)})
	}
	if _, ok := intakev1.Stage_name[int32(req.GetStage())]; !ok || req.GetStage() == intakev1.Stage_STAGE_UNSPECIFIED {
		add("stage", "%v is not a stage (FETCH, MAP or LOAD)", req.GetStage())
	}
	kind := req.GetKind()
	if _, ok := intakev1.RunEventKind_name[int32(kind)]; !ok || kind == intakev1.RunEventKind_RUN_EVENT_KIND_UNSPECIFIED {
		add("kind", "%v is not an event kind", kind)
	}
	switch kind {
	case intakev1.RunEventKind_RUN_EVENT_KIND_CHUNK_DONE:
		if req.GetChunk() < 0 {
			add("chunk", "%d is not a chunk index (0 or more)", req.GetChunk())
		}
	case intakev1.RunEventKind_RUN_EVENT_KIND_FETCHED:
		if req.GetStage() != intakev1.Stage_STAGE_FETCH {
			add("stage", "FETCHED is reported by the FETCH stage, not %v", req.GetStage())
		}
		// A 304 Not Modified has no file, so no hash (issue 5).
		if !sha256Pattern.MatchString(req.GetSha256()) && !(req.GetNotModified() && req.GetSha256() == "") {
			add("sha256", "%q is not a lowercase hex SHA-256", req.GetSha256())
		}
		if req.GetSourceSize() < 0 {
			add("source_size", "%d is negative", req.GetSourceSize())
		}
	case intakev1.RunEventKind_RUN_EVENT_KIND_COMMITTING:
		if req.GetStage() != intakev1.Stage_STAGE_LOAD {
			add("stage", "COMMITTING is reported by the LOAD stage, not %v", req.GetStage())
		}
	}
	for i, e := range req.GetRowErrors() {
		if e.GetRow() < 1 {
			add(fmt.Sprintf("row_errors[%d].row", i), "%d is not a row number (1 or more)", e.GetRow())
		}
	}
	if len(vs) > 0 {
		return invalid("invalid report", vs)
	}
	return nil
}

func (g *stageService) ReportRunEvent(ctx context.Context, req *intakev1.ReportRunEventRequest) (*intakev1.ReportRunEventResponse, error) {
	s := g.s
	jobID, runID, err := parseRunName("run", req.GetRun())
	if err != nil {
		return nil, err
	}
	if err := checkReport(req); err != nil {
		return nil, err
	}
	res, err := s.store.Report(ctx, jobID, runID, req)
	if err != nil {
		return nil, s.storeError(ctx, "report on", "run "+req.GetRun(), err)
	}
	name := res.Run.GetName()
	s.hub.notify(name)
	log := s.log.With("job", jobID, "run", name, "stage", store.StageName(req.GetStage()), "kind", req.GetKind().String())
	log.DebugContext(ctx, "run event", "chunk", req.GetChunk(), "state", res.Run.GetState().String(), "directive", res.Directive.String())
	if res.Finished {
		s.metrics.runFinished(res.Run)
		log.InfoContext(ctx, "run finished", "state", res.Run.GetState().String(), "message", res.Run.GetMessage(),
			"rows_read", res.Run.GetCounters().GetRowsRead(), "rows_rejected", res.Run.GetCounters().GetRowsRejected())
	}
	return &intakev1.ReportRunEventResponse{Directive: res.Directive, Run: res.Run}, nil
}

func (g *stageService) CreateScheduledRun(ctx context.Context, req *intakev1.CreateScheduledRunRequest) (*intakev1.CreateScheduledRunResponse, error) {
	s := g.s
	jobID, err := parseJobName("job", req.GetJob())
	if err != nil {
		return nil, err
	}
	if req.GetScheduledTime() == nil {
		return nil, badField("scheduled_time", "required")
	}
	if err := req.GetScheduledTime().CheckValid(); err != nil {
		return nil, badField("scheduled_time", "%v", err)
	}
	tick := req.GetScheduledTime().AsTime()
	run, job, created, err := s.store.CreateScheduledRun(ctx, jobID, tick)
	if errors.Is(err, store.ErrDisabled) {
		return nil, status.Errorf(codes.FailedPrecondition, "job %s is disabled: its schedule does not fire", req.GetJob())
	}
	if err != nil {
		return nil, s.storeError(ctx, "create the scheduled run of", "job "+req.GetJob(), err)
	}
	if created {
		s.log.InfoContext(ctx, "scheduled run created", "job", jobID, "run", run.GetName(), "scheduled_time", tick)
	}
	if err := s.publishScheduledRun(ctx, run, job); err != nil {
		return nil, err
	}
	return &intakev1.CreateScheduledRunResponse{Run: run, Job: job, Created: created}, nil
}

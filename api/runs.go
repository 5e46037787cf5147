package api

import (
	"context"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/intakehq/intake/api/internal/store"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// watchPoll is how often WatchRun reads the run's version from the
// database, to see changes made through other API replicas.
const watchPoll = 300 * time.Millisecond

type runService struct {
	intakev1.UnimplementedRunServiceServer
	s *Server
}

func (r *runService) GetRun(ctx context.Context, req *intakev1.GetRunRequest) (*intakev1.Run, error) {
	jobID, runID, err := parseRunName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	run, err := r.s.store.GetRun(ctx, jobID, runID)
	if err != nil {
		return nil, r.s.storeError(ctx, "read", "run "+req.GetName(), err)
	}
	return run, nil
}

func (r *runService) ListRuns(ctx context.Context, req *intakev1.ListRunsRequest) (*intakev1.ListRunsResponse, error) {
	var jobID string
	if req.GetParent() != "jobs/-" {
		id, err := parseJobName("parent", req.GetParent())
		if err != nil {
			return nil, badField("parent", "%q is not a job name (jobs/{job}, or jobs/- for every job)", req.GetParent())
		}
		jobID = id
	}
	n, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	filter, filterKey, err := runFilter(req)
	if err != nil {
		return nil, err
	}
	after, err := decodeRunsPageToken(req.GetParent(), filterKey, req.GetPageToken())
	if err != nil {
		return nil, err
	}
	runs, err := r.s.store.ListRuns(ctx, jobID, filter, after, n+1)
	if err != nil {
		return nil, r.s.storeError(ctx, "list runs of", req.GetParent(), err)
	}
	if len(runs) == 0 && jobID != "" && after == nil {
		// No runs: tell a typo from a job that never ran.
		known, err := r.s.store.JobKnown(ctx, jobID)
		if err != nil {
			return nil, r.s.storeError(ctx, "list runs of", req.GetParent(), err)
		}
		if !known {
			return nil, status.Errorf(codes.NotFound, "job %s not found", req.GetParent())
		}
	}
	resp := &intakev1.ListRunsResponse{Runs: runs}
	if len(runs) > n {
		resp.Runs = runs[:n]
		last := resp.Runs[n-1]
		runID := last.GetName()[strings.LastIndex(last.GetName(), "/")+1:]
		resp.NextPageToken = encodePageToken("runs", runsPageScope(req.GetParent(), filterKey), store.Cursor{Time: last.GetCreateTime().AsTime(), ID: runID})
	}
	return resp, nil
}

// WatchRun sends the run, then the run again whenever it changes, and ends
// after sending a final state. Reports handled by this process wake it at
// once; it polls the database for the others.
func (r *runService) WatchRun(req *intakev1.WatchRunRequest, stream grpc.ServerStreamingServer[intakev1.WatchRunResponse]) error {
	s := r.s
	ctx := stream.Context()
	jobID, runID, err := parseRunName("name", req.GetName())
	if err != nil {
		return err
	}
	name := store.RunName(jobID, runID)
	s.hub.join(name)
	defer s.hub.leave(name)
	ticker := time.NewTicker(watchPoll)
	defer ticker.Stop()
	sent := int64(-1)
	for {
		changed := s.hub.changed(name)
		v, err := s.store.RunVersion(ctx, jobID, runID)
		if err != nil {
			return s.storeError(ctx, "watch", "run "+name, err)
		}
		if v != sent {
			run, v, err := s.store.GetRunVersioned(ctx, jobID, runID)
			if err != nil {
				return s.storeError(ctx, "watch", "run "+name, err)
			}
			if err := stream.Send(&intakev1.WatchRunResponse{Run: run}); err != nil {
				return err
			}
			sent = v
			if store.IsFinal(run.GetState()) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-s.stopping:
			return status.Errorf(codes.Unavailable, "the control API is shutting down; watch run %s again", name)
		case <-changed:
		case <-ticker.C:
		}
	}
}

package api

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/intakehq/intake/api/internal/store"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// CancelRun cancels a queued or running run: it is CANCELLED at once, and
// nothing of it lands (see "Cancel" in docs/pipeline.md). A run whose
// commit has begun, or that has ended, is refused with FailedPrecondition.
func (r *runService) CancelRun(ctx context.Context, req *intakev1.CancelRunRequest) (*intakev1.Run, error) {
	s := r.s
	jobID, runID, err := parseRunName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	name := store.RunName(jobID, runID)
	run, err := s.store.CancelRun(ctx, jobID, runID)
	var ended *store.EndedError
	switch {
	case errors.As(err, &ended):
		return nil, precondition("RUN_ENDED", name, "run "+name+" already ended: "+runState(ended.State))
	case errors.Is(err, store.ErrCommitting):
		return nil, precondition("RUN_COMMITTING", name,
			"run "+name+" cannot be cancelled: run is committing (its commit has begun, so it lands whole)")
	case err != nil:
		return nil, s.storeError(ctx, "cancel", "run "+name, err)
	}
	s.hub.notify(name)
	s.metrics.runFinished(run)
	s.log.InfoContext(ctx, "run cancelled", "job", jobID, "run", name)
	return run, nil
}

// precondition is a FailedPrecondition status with message, and a
// google.rpc.PreconditionFailure detail of type typ about subject.
func precondition(typ, subject, message string) error {
	st := status.New(codes.FailedPrecondition, message)
	if d, err := st.WithDetails(&errdetails.PreconditionFailure{Violations: []*errdetails.PreconditionFailure_Violation{
		{Type: typ, Subject: subject, Description: message},
	}}); err == nil {
		st = d
	}
	return st.Err()
}

// runState is a run state in words: "partially succeeded".
func runState(s intakev1.RunState) string {
	return strings.ReplaceAll(enumLabel(s.String(), "RUN_STATE_"), "_", " ")
}

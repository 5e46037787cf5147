package api

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/intakehq/intake/api/internal/jobspec"
	"github.com/intakehq/intake/api/internal/store"
)

// invalid is an InvalidArgument status whose message lists every
// violation and whose details carry them as a google.rpc.BadRequest.
func invalid(what string, vs jobspec.Violations) error {
	st := status.New(codes.InvalidArgument, what+": "+vs.Error())
	br := &errdetails.BadRequest{}
	for _, v := range vs {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: v.Field, Description: v.Description})
	}
	if d, err := st.WithDetails(br); err == nil {
		st = d
	}
	return st.Err()
}

// badField is invalid with one violation.
func badField(field, format string, args ...any) error {
	return invalid("invalid request", jobspec.Violations{{Field: field, Description: fmt.Sprintf(format, args...)}})
}

// failedPrecondition is a FailedPrecondition status with a
// google.rpc.PreconditionFailure detail.
func failedPrecondition(typ, subject, description string) error {
	st := status.New(codes.FailedPrecondition, subject+": "+description)
	if d, err := st.WithDetails(&errdetails.PreconditionFailure{Violations: []*errdetails.PreconditionFailure_Violation{
		{Type: typ, Subject: subject, Description: description},
	}}); err == nil {
		st = d
	}
	return st.Err()
}

// storeError turns a store error into a status; what names the resource,
// e.g. "job jobs/abc". Unexpected errors are logged and become Internal.
func (s *Server) storeError(ctx context.Context, op, what string, err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return status.Errorf(codes.NotFound, "%s not found", what)
	case errors.Is(err, store.ErrIDTaken):
		return idTaken(what)
	case errors.Is(err, store.ErrIDUsed):
		return status.Errorf(codes.AlreadyExists, "%s was deleted, and its run history is kept under that id: choose another id", what)
	case errors.Is(err, store.ErrAlreadyExists):
		return status.Errorf(codes.AlreadyExists, "%s already exists", what)
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		if ctx.Err() != nil {
			return status.FromContextError(ctx.Err()).Err()
		}
	}
	s.log.ErrorContext(ctx, "control API call failed", "op", op, "resource", what, "error", err)
	return status.Errorf(codes.Internal, "%s %s: %v", op, what, err)
}

// parseJobName returns the id of "jobs/{job}"; field names the request field.
func parseJobName(field, name string) (string, error) {
	id, ok := strings.CutPrefix(name, "jobs/")
	if !ok || id == "" || strings.Contains(id, "/") {
		return "", badField(field, "%q is not a job name (jobs/{job})", name)
	}
	if err := jobspec.CheckJobID(id); err != nil {
		return "", badField(field, "%q is not a job name: %v", name, err)
	}
	return id, nil
}

// parseRunName returns the job and run ids of "jobs/{job}/runs/{run}".
func parseRunName(field, name string) (string, string, error) {
	parts := strings.Split(name, "/")
	if len(parts) != 4 || parts[0] != "jobs" || parts[2] != "runs" || parts[1] == "" || parts[3] == "" {
		return "", "", badField(field, "%q is not a run name (jobs/{job}/runs/{run})", name)
	}
	if err := jobspec.CheckJobID(parts[1]); err != nil {
		return "", "", badField(field, "%q is not a run name: %v", name, err)
	}
	return parts[1], parts[3], nil
}

// Page sizes of the List calls.
const (
	defaultPageSize = 50
	maxPageSize     = 1000
)

func pageSize(n int32) (int, error) {
	switch {
	case n < 0:
		return 0, badField("page_size", "%d is negative", n)
	case n == 0:
		return defaultPageSize, nil
	case n > maxPageSize:
		return maxPageSize, nil
	}
	return int(n), nil
}

// A page token is opaque to clients: base64 of "kind|scope|micros|id". It
// only fits the list (kind, scope) it came from.
func encodePageToken(kind, scope string, c store.Cursor) string {
	raw := kind + "|" + scope + "|" + strconv.FormatInt(c.Time.UnixMicro(), 10) + "|" + c.ID
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func decodePageToken(kind, scope, token string) (*store.Cursor, error) {
	if token == "" {
		return nil, nil
	}
	bad := badField("page_token", "not a page token of this list; pass next_page_token of the previous page with the same parent")
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return nil, bad
	}
	parts := strings.SplitN(string(raw), "|", 4)
	if len(parts) != 4 || parts[0] != kind || parts[1] != scope || parts[3] == "" {
		return nil, bad
	}
	us, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return nil, bad
	}
	return &store.Cursor{Time: time.UnixMicro(us).UTC(), ID: parts[3]}, nil
}

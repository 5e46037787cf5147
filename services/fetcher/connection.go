package fetcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/intakehq/intake/pkg/source"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// errAbandoned: the control API no longer knows the run (its job was
// deleted); the run request is dropped.
var errAbandoned = errors.New("the control API does not know the run")

// fileMeta is what the fetcher knows of the file it opened.
type fileMeta struct {
	// source says where the file comes from, for users: "connections/x:
	// exports/accounts_2026-11-26.csv" for a stored connection.
	source string
	// etag and lastModified are the HTTP validators, for the next run's
	// conditional request.
	etag, lastModified string
	// size is the file's size as the server reported it; 0 or less when
	// unknown.
	size int64
	// modTime is the file's modification time; zero when unknown.
	modTime time.Time
	// notModified: the server answered 304 Not Modified to the conditional
	// request; there is no body.
	notModified bool
}

// openStored opens the file of the job's stored connection
// (Job.connection_name): it asks the control API for the connection (with
// its secrets) and the validators of the job's last successful run, then
// resolves the job's file selector at the run's time in the job's zone and
// opens the file, retrying transient failures (source.OpenFile). A failure
// of the connection or the file is a *fileError with the *source.Error's
// message (it names the connection and never holds a secret).
//
// The resolved connection is never logged: it holds secrets.
func (r *run) openStored(ctx context.Context) (io.ReadCloser, fileMeta, error) {
	job := r.req.GetJob()
	res, err := r.resolveConnection(ctx)
	if err != nil {
		return nil, fileMeta{}, err
	}
	loc, err := time.LoadLocation(job.GetSchedule().GetTimeZone())
	if err != nil {
		return nil, fileMeta{}, &fileError{msg: fmt.Sprintf("the job's time zone %q: %v", job.GetSchedule().GetTimeZone(), err)}
	}
	req := source.Request{
		Conn:     res.GetConnection(),
		File:     job.GetFile(),
		At:       r.runTime(),
		Location: loc,
	}
	// The validators are those of the file the last successful run read:
	// without its source they cannot be matched to a file.
	if res.GetLastSource() != "" {
		req.Cond = source.Conditional{ETag: res.GetEtag(), LastModified: res.GetLastModified()}
	}
	opts := source.Options{
		DevMode: r.s.cfg.DevMode, HTTPClient: r.s.http, Timeout: r.s.cfg.FetchTimeout,
		Retry: source.RetryPolicy{OnRetry: func(attempt int, err error, wait time.Duration) {
			// A *source.Error's message holds no secret.
			r.log.Warn("reading the file failed; retrying", "connection", job.GetConnectionName(),
				"attempt", attempt, "err", err.Error(), "wait", wait)
		}},
	}
	rc, fm, err := source.OpenFile(ctx, req, opts)
	if err == nil && fm.NotModified && fm.Source != res.GetLastSource() {
		// The validators were of another file (the path's date
		// placeholders have moved on since): read this one whole.
		r.log.Info("the server answered 304 Not Modified for another file than the last run's; reading it unconditionally",
			"source", fm.Source, "last_source", res.GetLastSource())
		req.Cond = source.Conditional{}
		rc, fm, err = source.OpenFile(ctx, req, opts)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, fileMeta{}, fmt.Errorf("fetcher: %w", err)
		}
		return nil, fileMeta{}, &fileError{msg: err.Error()}
	}
	meta := fileMeta{
		source: fm.Source, etag: fm.ETag, lastModified: fm.LastModified,
		size: fm.Size, modTime: fm.ModTime, notModified: fm.NotModified,
	}
	if meta.notModified {
		r.log.Info("the server answered 304 Not Modified: the file is unchanged since the last successful run",
			"source", meta.source)
		return nil, meta, nil
	}
	return rc, meta, nil
}

// runTime is the time the file selector's date placeholders stand for: the
// run's scheduled time, else its create time.
func (r *run) runTime() time.Time {
	for _, ts := range []*timestamppb.Timestamp{r.apiRun.GetScheduledTime(), r.apiRun.GetCreateTime(), r.req.GetCreateTime()} {
		if ts != nil && ts.IsValid() && ts.GetSeconds() > 0 {
			return ts.AsTime()
		}
	}
	return time.Now()
}

// resolveConnection asks the control API for the connection of the run's
// job. It retries while the API is unavailable; after that the error makes
// the run request redeliver. A run the API does not know is errAbandoned; a
// connection that cannot be given (deleted, no encryption key to open its
// secrets) fails the run.
func (r *run) resolveConnection(ctx context.Context) (*intakev1.ResolveConnectionResponse, error) {
	backoff := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, reportTimeout)
		resp, err := r.s.stage.ResolveConnection(cctx, &intakev1.ResolveConnectionRequest{Run: r.req.GetRun()})
		cancel()
		if err == nil {
			if resp.GetConnection().GetKind() == nil {
				return nil, &fileError{msg: fmt.Sprintf("the control API gave no connection for %s", r.req.GetJob().GetConnectionName())}
			}
			return resp, nil
		}
		switch status.Code(err) {
		case codes.NotFound:
			r.log.Warn("the control API does not know the run; dropping it", "err", err)
			return nil, errAbandoned
		case codes.FailedPrecondition:
			return nil, &fileError{msg: preconditionMessage(err)}
		case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted:
			if attempt < reportAttempts && ctx.Err() == nil {
				r.log.Warn("control API unavailable; retrying the connection lookup", "attempt", attempt, "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(backoff):
				}
				backoff *= 2
				continue
			}
		}
		return nil, fmt.Errorf("fetcher: resolve the connection %s of run %s with the control API: %w",
			r.req.GetJob().GetConnectionName(), r.req.GetRun(), err)
	}
}

// preconditionMessage is the description of a FailedPrecondition status
// (its message repeats the run's name before it), else its message.
func preconditionMessage(err error) string {
	st := status.Convert(err)
	for _, d := range st.Details() {
		if pf, ok := d.(*errdetails.PreconditionFailure); ok && len(pf.GetViolations()) > 0 && pf.GetViolations()[0].GetDescription() != "" {
			return pf.GetViolations()[0].GetDescription()
		}
	}
	return st.Message()
}

package fetcher

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/intakehq/intake/pkg/pipeline"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

const (
	reportTimeout  = 10 * time.Second
	reportAttempts = 5
)

// report sends a (FETCH, kind) event of the run to the control API and
// returns its directive (UNSPECIFIED counts as CONTINUE); the run as the API
// answers it is kept in r.apiRun. It retries while
// the API is unavailable; after that the error makes the run request
// redeliver. A run the API does not know (its job was deleted) is abandoned.
func (r *run) report(ctx context.Context, ev *intakev1.ReportRunEventRequest) (intakev1.Directive, error) {
	ev.Run = r.req.GetRun()
	ev.Stage = intakev1.Stage_STAGE_FETCH
	ev.EventTime = timestamppb.Now()
	kind := ev.GetKind().String()
	backoff := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, reportTimeout)
		resp, err := r.s.stage.ReportRunEvent(cctx, ev)
		cancel()
		if err == nil {
			if resp.GetRun() != nil {
				r.apiRun = resp.GetRun()
			}
			d := resp.GetDirective()
			if d == intakev1.Directive_DIRECTIVE_UNSPECIFIED {
				d = intakev1.Directive_DIRECTIVE_CONTINUE
			}
			return d, nil
		}
		switch status.Code(err) {
		case codes.NotFound:
			r.log.Warn("the control API does not know the run; dropping it", "event", kind, "err", err)
			return intakev1.Directive_DIRECTIVE_ABANDON, nil
		case codes.InvalidArgument:
			return 0, pipeline.Term(fmt.Errorf("fetcher: report %s: %w", kind, err))
		case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted:
			if attempt < reportAttempts && ctx.Err() == nil {
				r.log.Warn("control API unavailable; retrying the report", "event", kind, "attempt", attempt, "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(backoff):
				}
				backoff *= 2
				continue
			}
		}
		return 0, fmt.Errorf("fetcher: report %s to the control API: %w", kind, err)
	}
}

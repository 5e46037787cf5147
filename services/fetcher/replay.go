package fetcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/intakehq/intake/pkg/archive"
	"github.com/intakehq/intake/pkg/source"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// replayedRun is the resource name of the run a replay re-imports: the run
// id of RunRequest.replay_of, of the same job.
func (r *run) replayedRun() string {
	name := r.req.GetRun()
	return name[:strings.LastIndex(name, "/")+1] + r.req.GetReplayOf()
}

// describe is the source the run reports before it opens it: the job's
// connection, or for a replay "replay of jobs/x/runs/y (<the connection>)".
func (r *run) describe(conn *intakev1.Connection) string {
	src := source.Describe(conn)
	if r.req.GetReplayOf() == "" {
		return src
	}
	return fmt.Sprintf("replay of %s (%s)", r.replayedRun(), src)
}

// open opens the run's file and says where it comes from. A replay reads
// the archived file of the run it replays (RunRequest.replay_of), which
// fetch then copies to the run's own key, hashing and checking it as a
// download; any other run reads the job's connection. A problem of the file
// is a *fileError.
func (r *run) open(ctx context.Context, conn *intakev1.Connection, src string) (io.ReadCloser, string, error) {
	if id := r.req.GetReplayOf(); id != "" {
		rc, err := r.s.archive.Open(ctx, id)
		switch {
		case errors.Is(err, archive.ErrNotFound):
			return nil, "", &fileError{fmt.Sprintf("%s: the source file of run %s is no longer in the run archive (the retention policy may have deleted it)",
				src, r.replayedRun())}
		case err != nil:
			return nil, "", fmt.Errorf("fetcher: open the archived file of run %s: %w", r.replayedRun(), err)
		}
		r.log.Info("replaying the archived file of an earlier run", "replay_of", r.replayedRun())
		return rc, src, nil
	}
	body, sinfo, err := source.Open(ctx, conn, source.Options{
		DevMode: r.s.cfg.DevMode, HTTPClient: r.s.http, Timeout: r.s.cfg.FetchTimeout,
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, "", fmt.Errorf("fetcher: %w", err)
		}
		return nil, "", &fileError{err.Error()}
	}
	return body, sinfo.Source, nil
}

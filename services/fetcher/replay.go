package fetcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/intakehq/intake/pkg/archive"
	"github.com/intakehq/intake/pkg/source"
)

// replayedRun is the resource name of the run a replay re-imports: the run
// id of RunRequest.replay_of, of the same job.
func (r *run) replayedRun() string {
	name := r.req.GetRun()
	return name[:strings.LastIndex(name, "/")+1] + r.req.GetReplayOf()
}

// describe is the source the run reports before it opens it: the job's
// inline connection (its URL or path) or stored connection
// ("connections/x"), or for a replay "replay of jobs/x/runs/y (<that>)".
func (r *run) describe() string {
	job := r.req.GetJob()
	src := job.GetConnectionName()
	if src == "" {
		src = source.Describe(job.GetConnection())
	}
	if r.req.GetReplayOf() == "" {
		return src
	}
	return fmt.Sprintf("replay of %s (%s)", r.replayedRun(), src)
}

// open opens the run's file and says where it comes from. A replay reads
// the archived file of the run it replays (RunRequest.replay_of), which
// fetch then copies to the run's own key, hashing and checking it as a
// download; a job with a stored connection reads it (openStored); any other
// run reads the job's inline connection. A problem of the file is a
// *fileError.
func (r *run) open(ctx context.Context, src string) (io.ReadCloser, fileMeta, error) {
	if id := r.req.GetReplayOf(); id != "" {
		rc, err := r.s.archive.Open(ctx, id)
		switch {
		case errors.Is(err, archive.ErrNotFound):
			return nil, fileMeta{}, &fileError{msg: fmt.Sprintf("%s: the source file of run %s is no longer in the run archive (the retention policy may have deleted it)",
				src, r.replayedRun())}
		case err != nil:
			return nil, fileMeta{}, fmt.Errorf("fetcher: open the archived file of run %s: %w", r.replayedRun(), err)
		}
		r.log.Info("replaying the archived file of an earlier run", "replay_of", r.replayedRun())
		return rc, fileMeta{source: src}, nil
	}
	if r.req.GetJob().GetConnectionName() != "" {
		return r.openStored(ctx)
	}
	body, sinfo, err := source.Open(ctx, r.req.GetJob().GetConnection(), source.Options{
		DevMode: r.s.cfg.DevMode, HTTPClient: r.s.http, Timeout: r.s.cfg.FetchTimeout,
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, fileMeta{}, fmt.Errorf("fetcher: %w", err)
		}
		return nil, fileMeta{}, &fileError{msg: err.Error()}
	}
	return body, fileMeta{source: sinfo.Source}, nil
}

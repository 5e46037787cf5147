package api

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/intakehq/intake/api/internal/jobspec"
	"github.com/intakehq/intake/api/internal/store"
	"github.com/intakehq/intake/pkg/archive"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// ResolveConnection gives a fetcher what it needs to read a run's file:
// the connection of the run's job snapshot — the stored connection it names,
// as it is now, with its secrets in clear text, or the job's inline
// connection — and the validators (ETag, Last-Modified) and source of the
// job's last successful run, for a conditional request. A dry or forced run
// gets no validators: it must read the file whatever it is. The response
// holds secrets: it is never logged.
func (g *stageService) ResolveConnection(ctx context.Context, req *intakev1.ResolveConnectionRequest) (*intakev1.ResolveConnectionResponse, error) {
	s := g.s
	jobID, runID, err := parseRunName("run", req.GetRun())
	if err != nil {
		return nil, err
	}
	run, err := s.store.GetRun(ctx, jobID, runID)
	if err != nil {
		return nil, s.storeError(ctx, "read", "run "+req.GetRun(), err)
	}
	job, err := s.store.RunSnapshot(ctx, jobID, runID)
	if err != nil {
		return nil, s.storeError(ctx, "read", "run "+req.GetRun(), err)
	}
	var conn *intakev1.Connection
	switch name := job.GetConnectionName(); {
	case name != "":
		conn, err = s.openConnection(ctx, "job.connection_name", name)
		if status.Code(err) == codes.NotFound {
			return nil, failedPrecondition("CONNECTION_GONE", req.GetRun(),
				fmt.Sprintf("the connection %s of the run's job no longer exists", name))
		}
		if err != nil {
			return nil, err
		}
	case job.GetConnection().GetKind() != nil:
		conn = proto.Clone(job.GetConnection()).(*intakev1.Connection)
		conn.Name = ""
	default:
		return nil, failedPrecondition("NO_CONNECTION", req.GetRun(), "the run's job has no connection (connection_name or connection)")
	}
	resp := &intakev1.ResolveConnectionResponse{Connection: conn}
	if !run.GetDryRun() && !run.GetForce() {
		v, err := s.store.LastValidators(ctx, jobID, runID)
		if err != nil {
			return nil, s.storeError(ctx, "read", "the last successful run of job "+store.JobName(jobID), err)
		}
		resp.Etag, resp.LastModified, resp.LastSource = v.ETag, v.LastModified, v.Source
	}
	s.log.DebugContext(ctx, "connection resolved", "run", req.GetRun(), "connection", conn.GetName(),
		"kind", jobspec.ConnectionKind(conn), "conditional", resp.GetEtag() != "" || resp.GetLastModified() != "")
	return resp, nil
}

// fileRunArchive is the run archive as DownloadSource reads it: a run that
// did not download its file because the server answered 304 Not Modified
// (its file_run is the run whose file it is) reads that run's file. Put,
// Stat and Delete act on the run's own key: the retention policy never
// deletes another run's file through it, and a replay (which the fetcher
// copies from the run's own key) is refused for such a run.
type fileRunArchive struct {
	archive.Archive
	store *store.Store
}

// Open opens the archived file of run key, following file_run.
func (a fileRunArchive) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	rc, err := a.Archive.Open(ctx, key)
	if err == nil || !errors.Is(err, archive.ErrNotFound) {
		return rc, err
	}
	fileRun, ferr := a.store.FileRunOf(ctx, key)
	if ferr != nil || fileRun == key {
		return nil, err
	}
	return a.Archive.Open(ctx, fileRun)
}

// sealPlainSecrets runs at start: with a key ring it seals the webhook
// secrets still stored in plain text (written before secrets were sealed,
// or by an API without a key ring); without one it warns about them.
func (s *Server) sealPlainSecrets(ctx context.Context) error {
	sealed, plain, err := s.store.SealWebhookSecrets(ctx)
	if err != nil {
		return err
	}
	switch {
	case s.ring == nil && plain > 0:
		s.log.WarnContext(ctx, "webhook secrets are stored in plain text: set INTAKE_ENCRYPTION_KEYS (see README, Secrets at rest) to encrypt them",
			"jobs", plain)
	case s.ring == nil:
		s.log.InfoContext(ctx, "no encryption key configured (INTAKE_ENCRYPTION_KEYS): connections with secrets are refused")
	case sealed > 0:
		s.log.InfoContext(ctx, "webhook secrets encrypted", "jobs", sealed, "key", s.ring.CurrentID())
	}
	if s.ring != nil {
		s.log.InfoContext(ctx, "secrets encrypted at rest", "key", s.ring.CurrentID(), "keys", len(s.ring.IDs()))
	}
	return nil
}

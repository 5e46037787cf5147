package api

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/intakehq/intake/api/internal/store"
	"github.com/intakehq/intake/pkg/archive"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// sourceChunkSize is the size of each FileChunk of a source download.
const sourceChunkSize = 256 << 10

// Types of the PreconditionFailure of a run without a stored file.
const (
	precondSourceExpired = "SOURCE_EXPIRED"
	precondSourceNever   = "SOURCE_NEVER_STORED"
	precondSourcePending = "SOURCE_NOT_FETCHED_YET"
	precondSourceMissing = "SOURCE_MISSING"
	precondJobDeleted    = "JOB_DELETED"
)

// noFile is a FailedPrecondition status whose message is description and
// whose details carry a PreconditionFailure on the run.
func noFile(typ, run, description string) error {
	st := status.New(codes.FailedPrecondition, description)
	if d, err := st.WithDetails(&errdetails.PreconditionFailure{Violations: []*errdetails.PreconditionFailure_Violation{
		{Type: typ, Subject: run, Description: description},
	}}); err == nil {
		st = d
	}
	return st.Err()
}

// fileError says why run has no stored file, given that the archive has
// none (err wraps archive.ErrNotFound) or that the run's file expired; any
// other error is Internal.
func (s *Server) fileError(ctx context.Context, run *intakev1.Run, err error) error {
	name := run.GetName()
	switch {
	case run.GetSourceExpired():
		jobID, _, _ := parseRunName("name", name)
		job, jerr := s.store.GetJob(ctx, jobID)
		if jerr != nil && !errors.Is(jerr, store.ErrNotFound) {
			return s.storeError(ctx, "read", "job "+store.JobName(jobID), jerr)
		}
		// A deleted job's runs follow the default policy.
		return noFile(precondSourceExpired, name, fmt.Sprintf("the source file of run %s was deleted by the retention policy (%s)",
			name, describeRetention(s.retentionOf(job))))
	case err != nil && !errors.Is(err, archive.ErrNotFound):
		s.log.ErrorContext(ctx, "read the run archive", "run", name, "error", err)
		return status.Errorf(codes.Internal, "read the source file of run %s: %v", name, err)
	case run.GetSha256() != "":
		return noFile(precondSourceMissing, name, fmt.Sprintf("the source file of run %s is missing from the run archive (sha256 %s)", name, run.GetSha256()))
	case !store.IsFinal(run.GetState()):
		return noFile(precondSourcePending, name, fmt.Sprintf("run %s has not stored its file yet (it is %s): try again once it is fetched",
			name, strings.TrimPrefix(run.GetState().String(), "RUN_STATE_")))
	case run.GetState() == intakev1.RunState_RUN_STATE_CANCELLED:
		return noFile(precondSourceNever, name, fmt.Sprintf("run %s never stored a file: it was cancelled before the download finished", name))
	default:
		return noFile(precondSourceNever, name, fmt.Sprintf("run %s never stored a file: it failed before the download finished", name))
	}
}

// sourceFilename is the download name of a run's file:
// "<job>-<run>-<base name of the source>", "source.csv" when the source
// names no file.
func sourceFilename(jobID, runID, src string) string {
	// A replay's source is "replay of jobs/x/runs/y (<original source>)".
	if strings.HasPrefix(src, "replay of ") && strings.HasSuffix(src, ")") {
		if i := strings.Index(src, " ("); i >= 0 {
			src = src[i+2 : len(src)-1]
		}
	}
	p := src
	if u, err := url.Parse(src); err == nil && u.Scheme != "" {
		p = u.Path
	}
	base := path.Base(strings.ReplaceAll(p, `\`, "/"))
	clean := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '_'
	}, base)
	if strings.Trim(clean, "._") == "" {
		clean = "source.csv"
	}
	return jobID + "-" + runID + "-" + clean
}

// DownloadSource streams the archived source file of a run, byte for byte
// as it was fetched, in chunks of sourceChunkSize; the first names the file
// and its content type (application/gzip for gzip data, else text/csv). A
// run without a stored file is FailedPrecondition, saying why (see
// fileError). The bytes are checked against the run's SHA-256 on the way:
// a mismatch ends the stream with DataLoss.
func (r *runService) DownloadSource(req *intakev1.DownloadSourceRequest, stream grpc.ServerStreamingServer[intakev1.FileChunk]) error {
	s := r.s
	ctx := stream.Context()
	jobID, runID, err := parseRunName("name", req.GetName())
	if err != nil {
		return err
	}
	run, err := s.store.GetRun(ctx, jobID, runID)
	if err != nil {
		return s.storeError(ctx, "read", "run "+req.GetName(), err)
	}
	if run.GetSourceExpired() {
		return s.fileError(ctx, run, nil)
	}
	rc, err := s.archive.Open(ctx, runID)
	if err != nil {
		return s.fileError(ctx, run, err)
	}
	defer rc.Close()

	br := bufio.NewReaderSize(rc, sourceChunkSize)
	contentType := "text/csv"
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		contentType = "application/gzip"
	}
	h := sha256.New()
	buf := make([]byte, sourceChunkSize)
	var sent int64
	for first := true; ; first = false {
		n, rerr := io.ReadFull(br, buf)
		if rerr != nil && !errors.Is(rerr, io.EOF) && !errors.Is(rerr, io.ErrUnexpectedEOF) {
			if ctx.Err() != nil {
				return status.FromContextError(ctx.Err()).Err()
			}
			s.log.ErrorContext(ctx, "source download broke", "job", jobID, "run", runID, "sent", sent, "error", rerr)
			return status.Errorf(codes.DataLoss, "read the source file of run %s after %d bytes: %v", run.GetName(), sent, rerr)
		}
		if n == 0 && !first {
			break
		}
		h.Write(buf[:n])
		c := &intakev1.FileChunk{Data: buf[:n]}
		if first {
			c.Filename = sourceFilename(jobID, runID, run.GetSource())
			c.ContentType = contentType
		}
		if err := stream.Send(c); err != nil {
			return err
		}
		sent += int64(n)
		if rerr != nil {
			break
		}
	}
	if sum := hex.EncodeToString(h.Sum(nil)); run.GetSha256() != "" && sum != run.GetSha256() {
		s.log.ErrorContext(ctx, "archived source file differs from the fetched one", "job", jobID, "run", runID, "sha256", sum, "want", run.GetSha256())
		return status.Errorf(codes.DataLoss, "the archived source file of run %s has sha256 %s, not %s as fetched", run.GetName(), sum, run.GetSha256())
	}
	s.log.InfoContext(ctx, "source downloaded", "job", jobID, "run", runID, "bytes", sent)
	return nil
}

// ReplayRun re-imports the stored source file of a past run with its job's
// current mapping and model: a new run with trigger REPLAY, replay_of the
// old run, and force (a replay is never skipped for an unchanged file). The
// fetcher copies the old run's archived file instead of fetching.
func (r *runService) ReplayRun(ctx context.Context, req *intakev1.ReplayRunRequest) (*intakev1.Run, error) {
	s := r.s
	jobID, runID, err := parseRunName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	old, err := s.store.GetRun(ctx, jobID, runID)
	if err != nil {
		return nil, s.storeError(ctx, "read", "run "+req.GetName(), err)
	}
	job, err := s.store.GetJob(ctx, jobID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, noFile(precondJobDeleted, old.GetName(), fmt.Sprintf("run %s cannot be replayed: its job %s was deleted", old.GetName(), store.JobName(jobID)))
	}
	if err != nil {
		return nil, s.storeError(ctx, "read", "job "+store.JobName(jobID), err)
	}
	if old.GetSourceExpired() {
		return nil, s.fileError(ctx, old, nil)
	}
	// A run skipped on a 304 has no file of its own: it points at the run
	// whose file the server confirmed unchanged, and a replay takes that one.
	fileRun, err := s.store.FileRunOf(ctx, runID)
	if err != nil {
		return nil, s.storeError(ctx, "read", "run "+req.GetName(), err)
	}
	if _, err := s.archive.Stat(ctx, fileRun); err != nil {
		return nil, s.fileError(ctx, old, err)
	}
	return s.startRunWith(ctx, jobID, job, intakev1.Trigger_TRIGGER_REPLAY, store.RunOptions{
		DryRun: req.GetDryRun(), Force: true, ReplayOf: fileRun,
	})
}

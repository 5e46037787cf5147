package api

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/intakehq/intake/api/internal/store"
	"github.com/intakehq/intake/pkg/archive"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

const (
	// DefaultKeepRuns and DefaultKeepDays make the default of
	// Config.DefaultRetention: the files of a job's last 50 runs, for at
	// most 90 days.
	DefaultKeepRuns = 50
	DefaultKeepDays = 90
	// DefaultRetentionInterval is Config.RetentionInterval when it is zero.
	DefaultRetentionInterval = 10 * time.Minute
	// MinRetentionInterval is the shortest Config.RetentionInterval.
	MinRetentionInterval = 100 * time.Millisecond
	// retentionBatch is how many files a sweep deletes between queries.
	retentionBatch = 200
)

// defaultRetention is the RetentionPolicy used when Config.DefaultRetention is nil.
func defaultRetention() *intakev1.RetentionPolicy {
	return &intakev1.RetentionPolicy{KeepRuns: DefaultKeepRuns, KeepDays: DefaultKeepDays}
}

// checkRetention says what is wrong with a policy, "" when nothing.
func checkRetention(p *intakev1.RetentionPolicy) string {
	switch {
	case p.GetKeepRuns() < 0:
		return fmt.Sprintf("keep_runs %d is negative (0 keeps any number of runs' files)", p.GetKeepRuns())
	case p.GetKeepDays() < 0:
		return fmt.Sprintf("keep_days %d is negative (0 keeps files for any number of days)", p.GetKeepDays())
	}
	return ""
}

// retentionOf is the policy that applies to job (nil for a deleted job):
// its own when it sets keep_runs or keep_days, else the default.
func (s *Server) retentionOf(job *intakev1.Job) *intakev1.RetentionPolicy {
	if p := job.GetRetention(); p.GetKeepRuns() > 0 || p.GetKeepDays() > 0 {
		return p
	}
	return s.cfg.DefaultRetention
}

// describeRetention says what a policy keeps, e.g. "keep the last 10
// runs' files and files of the last 90 days".
func describeRetention(p *intakev1.RetentionPolicy) string {
	var parts []string
	switch n := p.GetKeepRuns(); {
	case n == 1:
		parts = append(parts, "keep the last run's file")
	case n > 1:
		parts = append(parts, "keep the last "+strconv.Itoa(int(n))+" runs' files")
	}
	switch n := p.GetKeepDays(); {
	case n == 1 && len(parts) > 0:
		parts = append(parts, "files of the last day")
	case n == 1:
		parts = append(parts, "keep files of the last day")
	case n > 1 && len(parts) > 0:
		parts = append(parts, "files of the last "+strconv.Itoa(int(n))+" days")
	case n > 1:
		parts = append(parts, "keep files of the last "+strconv.Itoa(int(n))+" days")
	}
	if len(parts) == 0 {
		return "keep every file"
	}
	return strings.Join(parts, " and ")
}

// retentionLoop applies the retention policy every RetentionInterval until
// ctx ends; the first sweep is one interval after start. With several API
// replicas one sweeps at a time (store.SweepFiles).
func (s *Server) retentionLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.RetentionInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := s.sweepFiles(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("retention sweep failed; retrying at the next sweep", "every", s.cfg.RetentionInterval, "error", err)
		}
	}
}

// sweepFiles deletes the archived files of runs outside their job's
// retention policy and marks those runs source_expired. It returns how many
// runs it marked.
func (s *Server) sweepFiles(ctx context.Context) (int, error) {
	n, ran, err := s.store.SweepFiles(ctx, s.cfg.DefaultRetention, retentionBatch, func(ctx context.Context, f store.ExpiredFile) (bool, error) {
		err := s.archive.Delete(ctx, f.RunID)
		switch {
		case errors.Is(err, archive.ErrNotFound):
			return false, nil
		case err != nil:
			s.log.Warn("retention: could not delete a run's file", "job", f.JobID, "run", f.RunID, "error", err)
			return false, err
		}
		s.log.Info("retention: run's source file deleted", "job", f.JobID, "run", f.RunID)
		s.metrics.filesExpired.Inc()
		return true, nil
	})
	if ran && n > 0 {
		s.log.Info("retention sweep done", "runs_marked", n)
	}
	if err != nil {
		return n, fmt.Errorf("retention: %w", err)
	}
	return n, nil
}

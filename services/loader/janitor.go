package loader

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
	"github.com/intakehq/intake/services/loader/internal/store"
)

// How much one sweep of the janitor handles at most; the rest waits for the
// next sweep.
const (
	janitorRuns    = 500
	janitorMarkers = 1000
)

// janitor sweeps every JanitorInterval until ctx is cancelled.
func (s *Service) janitor(ctx context.Context) {
	t := time.NewTicker(s.cfg.JanitorInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.sweep(ctx)
	}
}

// sweep asks the control API about every open run idle for longer than
// StaleAfter, drops those that ended, and deletes old abandoned markers.
// Failures are logged: the next sweep tries again.
func (s *Service) sweep(ctx context.Context) {
	log := s.log.With("component", "janitor")
	runs, err := s.store.StaleRuns(ctx, s.cfg.StaleAfter, janitorRuns)
	if err != nil {
		if ctx.Err() == nil {
			log.Error("janitor: cannot list idle runs", "err", err)
		}
		return
	}
	for _, r := range runs {
		if ctx.Err() != nil {
			return
		}
		rlog, err := s.runLog(r.Run)
		if err != nil {
			log.Error("janitor: idle run with a bad name", "run", r.Run, "err", err)
			continue
		}
		idle := time.Since(r.LastActivity).Round(time.Second)
		out, err := s.store.ResolveStale(ctx, r.Run, s.cfg.StaleAfter, func(ctx context.Context) (bool, error) {
			d, err := s.report(ctx, rlog, &intakev1.ReportRunEventRequest{
				Run:  r.Run,
				Kind: intakev1.RunEventKind_RUN_EVENT_KIND_STARTED,
			})
			return d == intakev1.Directive_DIRECTIVE_ABANDON, err
		})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			rlog.Warn("janitor: cannot resolve an idle run", "idle", idle, "err", err)
			if status.Code(err) == codes.Unavailable {
				return // the control API is down: so would be every other question
			}
			continue
		}
		switch out {
		case store.Dropped:
			s.metrics.janitorAbandoned.Inc()
			rlog.Info("janitor: idle run ended elsewhere: staging dropped", "idle", idle)
		case store.Kept:
			rlog.Debug("janitor: idle run still in progress", "idle", idle)
		}
	}
	n, err := s.store.DeleteAbandoned(ctx, s.cfg.AbandonedRetention, janitorMarkers)
	if err != nil {
		if ctx.Err() == nil {
			log.Error("janitor: cannot delete old abandoned markers", "err", err)
		}
		return
	}
	if n > 0 {
		log.Info("janitor: old abandoned markers deleted", "count", n, "older_than", s.cfg.AbandonedRetention)
	}
}

package scheduler

import (
	"context"
	"sync"
	"time"
)

const (
	// bigGroup is the number of ticks from which a group is a burst that
	// a poll of the job list should not run into.
	bigGroup = 250
	// maxPollDelay bounds how long a poll waits for a burst of ticks to
	// pass, so that job changes still arrive within seconds.
	maxPollDelay = 10 * time.Second
	// quietCheck is how often a waiting poll checks again.
	quietCheck = 50 * time.Millisecond
	// recordDelay bounds how long fired ticks wait to be recorded as their
	// jobs' last ticks while other ticks are being fired.
	recordDelay = 5 * time.Second
)

// waitQuiet postpones a poll of the job list while ticks are being fired
// or a big group fires before the poll would end (polling 10,000 jobs
// takes the control API about half a CPU second, which the burst of ticks
// needs more), by at most maxPollDelay. Real time: this waits for work to
// pass, not for the schedule.
func (s *Service) waitQuiet(ctx context.Context, pollTook time.Duration) {
	deadline := time.Now().Add(maxPollDelay)
	window := max(time.Second, 2*pollTook)
	for time.Now().Before(deadline) {
		if s.inflight.Load() == 0 && !s.burstWithin(window) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(quietCheck):
		}
	}
}

// burstWithin reports whether a group of at least bigGroup ticks fires
// within d from now.
func (s *Service) burstWithin(d time.Duration) bool {
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.groups {
		if len(g.members) >= bigGroup && g.at.Sub(now) <= d {
			return true
		}
	}
	return false
}

// recorder records fired ticks as their jobs' last ticks in batches, once
// no tick is being fired (or after recordDelay), so that the writes do not
// take CPU from a burst of ticks still being created.
type recorder struct {
	mu      sync.Mutex
	pending []firedTick
	since   time.Time // when the oldest pending tick was added
	wake    chan struct{}
}

func newRecorder() *recorder { return &recorder{wake: make(chan struct{}, 1)} }

// add queues ticks to record.
func (r *recorder) add(ticks []firedTick) {
	if len(ticks) == 0 {
		return
	}
	r.mu.Lock()
	if len(r.pending) == 0 {
		r.since = time.Now()
	}
	r.pending = append(r.pending, ticks...)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// take returns the pending ticks when they are due: nothing in flight, or
// waiting longer than recordDelay, or force.
func (r *recorder) take(inflight bool, force bool) []firedTick {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.pending) == 0 || (inflight && !force && time.Since(r.since) < recordDelay) {
		return nil
	}
	out := r.pending
	r.pending = nil
	return out
}

// runRecorder writes the queued last ticks until done is closed, then the
// rest.
func (s *Service) runRecorder(done <-chan struct{}) {
	flush := func(force bool) {
		ticks := s.rec.take(s.inflight.Load() > 0, force)
		if len(ticks) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(s.tickCtx), kvTimeout)
		defer cancel()
		if err := s.last.record(ctx, ticks); err != nil {
			s.log.Warn("scheduler: ticks fired, but not all recorded as fired", "ticks", len(ticks), "err", err)
		}
	}
	for {
		select {
		case <-done:
			flush(true)
			return
		case <-s.rec.wake:
		case <-time.After(quietCheck * 4):
		}
		flush(false)
	}
}

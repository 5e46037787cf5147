package scheduler

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/google/uuid"
)

// group is the ticks of one instant in one shard (jobs by jobHash): one
// gocron one-time job, named and locked by groupKeyName, whatever the
// number of jobs. When it fires, the replica that wins its lock fires the
// ticks of all its members at once (in CreateScheduledRuns batches), and
// every replica re-arms the members in the groups of their next ticks.
type group struct {
	name    string
	at      time.Time
	id      uuid.UUID // the gocron job
	members map[*entry]struct{}
	// Set by the lock (under Service.mu): the members this replica
	// claimed, and after losing the lock those the winner did not fire.
	claimed   []*entry
	leftovers []*entry
}

// shardOf is e's shard among the groups of an instant.
func shardOf(e *entry) int { return int(e.hash % groupShards) }

// removeLocked unschedules e: it leaves its group (whose gocron job goes
// with its last member) and the scheduled jobs.
func (s *Service) removeLocked(e *entry) {
	if g := e.group; g != nil {
		delete(g.members, e)
		if len(g.members) == 0 {
			s.dropGroupLocked(g)
		}
		e.group = nil
	}
	delete(s.jobs, e.job)
}

// dropGroupLocked removes g and its gocron job.
func (s *Service) dropGroupLocked(g *group) {
	if s.groups[g.name] == g {
		delete(s.groups, g.name)
	}
	if err := s.sched.RemoveJob(g.id); err != nil && !errors.Is(err, gocron.ErrJobNotFound) {
		s.log.Warn("scheduler: remove gocron job", "group", g.name, "err", err)
	}
}

// nextTicks memoizes the next fire time after one instant by schedule
// fingerprint: the jobs of a group often share a few schedules, and a
// wall-clock schedule's Next takes some 5-50 µs.
type nextTicks struct {
	from time.Time
	at   map[string]time.Time
}

func (m *nextTicks) next(e *entry, from time.Time) time.Time {
	if m == nil {
		return e.cad.Next(from)
	}
	if !m.from.Equal(from) || m.at == nil {
		m.from, m.at = from, map[string]time.Time{}
	}
	at, ok := m.at[e.fingerprint]
	if !ok {
		at = e.cad.Next(from)
		m.at[e.fingerprint] = at
	}
	return at
}

// armLocked arms e in the group of its first fire time after from (or
// after now, when from has passed: missed ticks are not caught up). memo,
// which may be nil, remembers fire times computed for other entries after
// the same from (which the caller then moves to now itself).
func (s *Service) armLocked(e *entry, from time.Time, memo *nextTicks) error {
	var err error
	for range 3 {
		if now := s.clock.Now(); memo == nil && now.After(from) {
			from = now
		}
		at := memo.next(e, from)
		if at.IsZero() {
			return fmt.Errorf("scheduler: %s never fires after %s", e.job, from.Format(time.RFC3339))
		}
		var g *group
		if g, err = s.groupLocked(at.Truncate(time.Second), shardOf(e)); err == nil {
			g.members[e] = struct{}{}
			e.group, e.next = g, at
			return nil
		}
		// The clock passed at between computing and arming it: try the
		// next one.
		if !errors.Is(err, gocron.ErrOneTimeJobStartDateTimePast) {
			break
		}
		memo = nil
	}
	return fmt.Errorf("scheduler: arm the tick of %s: %w", e.job, err)
}

// groupLocked returns the group of shard at at, creating it and its gocron
// job when needed.
func (s *Service) groupLocked(at time.Time, shard int) (*group, error) {
	name := groupKeyName(at, shard)
	if g, ok := s.groups[name]; ok {
		return g, nil
	}
	j, err := s.sched.NewJob(
		gocron.OneTimeJob(gocron.OneTimeJobStartDateTime(at)),
		gocron.NewTask(func() { s.fireGroup(name) }),
		gocron.WithName(name),
		gocron.WithEventListeners(gocron.AfterLockError(func(_ uuid.UUID, _ string, err error) {
			s.groupLockLost(name, err)
		})),
	)
	if err != nil {
		return nil, err
	}
	g := &group{name: name, at: at, id: j.ID(), members: map[*entry]struct{}{}}
	s.groups[name] = g
	return g, nil
}

// claim is the tickLocker's view of the group named key as its lock is
// taken: the members this replica fires if it wins.
func (s *Service) claim(key string) ([]*entry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups[key]
	if !ok {
		return nil, false
	}
	g.claimed = slices.Collect(maps.Keys(g.members))
	return g.claimed, true
}

// lost records, for the group named key whose lock another replica holds,
// the members that replica does not fire.
func (s *Service) lost(key string, leftovers []*entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g, ok := s.groups[key]; ok {
		g.leftovers = leftovers
	}
}

// fireGroup runs on gocron's timer, with the group's lock held (or the
// lock bucket unreachable): it re-arms the members at their next ticks and
// fires the ticks of the members it claimed that are still scheduled.
func (s *Service) fireGroup(name string) {
	s.mu.Lock()
	g, ok := s.groups[name]
	if !ok {
		s.mu.Unlock()
		return
	}
	claimed := g.claimed
	if claimed == nil { // not locked through claim
		claimed = slices.Collect(maps.Keys(g.members))
	}
	ticks := make([]firedTick, 0, len(claimed))
	for _, e := range claimed {
		if _, ok := g.members[e]; ok {
			ticks = append(ticks, firedTick{job: e.job, at: g.at})
		}
	}
	s.advanceLocked(g)
	s.mu.Unlock()
	s.fireTicks(ticks)
}

// groupLockLost runs when the group's lock was not taken: held by another
// replica (which fired the members it holds: this one fires, under their
// own locks, the ticks of the members the other did not hold), or the
// group is gone. Either way the members are re-armed at their next ticks.
func (s *Service) groupLockLost(name string, err error) {
	s.mu.Lock()
	g, ok := s.groups[name]
	if !ok {
		s.mu.Unlock()
		return
	}
	var ticks []firedTick
	for _, e := range g.leftovers {
		if _, ok := g.members[e]; ok {
			ticks = append(ticks, firedTick{job: e.job, at: g.at})
		}
	}
	s.advanceLocked(g)
	s.mu.Unlock()
	if errors.Is(err, errHeldElsewhere) {
		s.log.Debug("scheduler: tick group fired by another replica", "group", name,
			"scheduled_time", g.at.UTC().Format(time.RFC3339), "left_to_this_replica", len(ticks))
	} else {
		s.log.Warn("scheduler: tick group not fired", "group", name, "err", err)
	}
	if len(ticks) > 0 {
		s.fireOwn(ticks)
	}
}

// advanceLocked retires g (it fired) and arms each of its members that is
// still scheduled at its first tick after g's.
func (s *Service) advanceLocked(g *group) {
	s.dropGroupLocked(g)
	from := g.at
	if now := s.clock.Now(); now.After(from) {
		from = now
	}
	memo := &nextTicks{}
	for e := range g.members {
		if e.group != g {
			continue
		}
		e.group = nil
		if s.jobs[e.job] != e {
			continue
		}
		if err := s.armLocked(e, from, memo); err != nil {
			// Forget the job: the next poll schedules it again.
			s.log.Error("scheduler: could not re-arm job", "job", e.job, "err", err)
			delete(s.jobs, e.job)
			s.m.jobs.Set(float64(len(s.jobs)))
		}
	}
}

package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/nats-io/nats.go/jetstream"
)

// The JetStream key-value buckets of the scheduler replicas.
const (
	// TickBucket holds one key per (job, tick) fired, created with
	// kv.Create by the replica that fires the tick: the per-tick lock.
	// Keys expire after TickLockTTL.
	TickBucket = "INTAKE_SCHEDULER"
	// LastTickBucket holds, per job, the scheduled time of the last tick
	// fired (Unix seconds), for catching up a tick missed while every
	// replica was down. Keys do not expire; a deleted job's key is
	// removed when a scheduler sees the job gone.
	LastTickBucket = "INTAKE_SCHEDULER_LAST_TICK"
	// TickLockTTL is how long a tick's lock key lives. It only has to
	// outlast the spread between replicas firing the same tick (their
	// clock skew and timer lateness: normally well under a second).
	TickLockTTL = 15 * time.Minute
)

// Tick lock outcomes, the values of the outcome label of
// intake_scheduler_tick_locks_total.
const (
	lockAcquired      = "acquired"       // this replica fires the tick
	lockHeldElsewhere = "held_elsewhere" // another replica fires it
	lockError         = "error"          // the bucket could not be reached: fired anyway (the API's run creation is idempotent)
)

// errHeldElsewhere is the Lock error when another replica holds the tick.
var errHeldElsewhere = errors.New("scheduler: tick is fired by another replica")

// lockTimeout bounds taking a tick's lock.
const lockTimeout = 5 * time.Second

// tickLocker is the gocron.Locker of the scheduler: gocron asks it before
// running a job, with the job's name as the key. Every gocron job is one
// tick of one job and named by tickKey, so the lock is per tick: the first
// replica to create the key fires the tick, every other one skips it. The
// lock is never released (Unlock does nothing): the key expires with the
// bucket's TTL, so a replica whose timer fires late cannot fire the tick
// again.
type tickLocker struct {
	kv      jetstream.KeyValue
	replica string
	m       *metrics
	log     *slog.Logger
}

var _ gocron.Locker = (*tickLocker)(nil)

// Lock creates key. When the bucket cannot be reached it lets the tick fire
// (and logs it): the control API creates one run per (job, scheduled time)
// whichever replicas ask, so failing open costs a duplicate request, while
// failing closed would lose the tick.
func (l *tickLocker) Lock(ctx context.Context, key string) (gocron.Lock, error) {
	ctx, cancel := context.WithTimeout(ctx, lockTimeout)
	defer cancel()
	_, err := l.kv.Create(ctx, key, []byte(l.replica))
	switch {
	case err == nil:
		l.m.locks.WithLabelValues(lockAcquired).Inc()
		return noUnlock{}, nil
	case errors.Is(err, jetstream.ErrKeyExists):
		l.m.locks.WithLabelValues(lockHeldElsewhere).Inc()
		return nil, errHeldElsewhere
	}
	l.m.locks.WithLabelValues(lockError).Inc()
	l.log.Warn("scheduler: could not take the tick lock; firing anyway (run creation is idempotent)", "lock", key, "err", err)
	return noUnlock{}, nil
}

// noUnlock is a tick lock: it is kept until it expires.
type noUnlock struct{}

func (noUnlock) Unlock(context.Context) error { return nil }

// tickKey is the lock key, and gocron job name, of job's tick at at:
// "jobs/{job}.{unix seconds}", with ".catchup" appended for the catch-up of
// a missed tick (a separate lock, so that a tick whose firing replica died
// half-way can be caught up, still by one replica).
func tickKey(job string, at time.Time, catchUp bool) string {
	k := kvToken(job) + "." + strconv.FormatInt(at.Unix(), 10)
	if catchUp {
		k += ".catchup"
	}
	return k
}

// kvToken escapes s for a key-value key token: letters, digits, '-', '_'
// and '/' stay; any other byte becomes "=XX" (hex).
func kvToken(s string) string {
	var b strings.Builder
	for i := range len(s) {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '/':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "=%02X", c)
		}
	}
	return b.String()
}

// lastTicks reads and writes the last fired tick of each job.
type lastTicks struct {
	kv jetstream.KeyValue
}

// get is job's last fired tick; the zero time when none is recorded.
func (l lastTicks) get(ctx context.Context, job string) (time.Time, error) {
	e, err := l.kv.Get(ctx, kvToken(job))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read the last tick of %s: %w", job, err)
	}
	return parseTick(job, e.Value())
}

// all reads every job's last fired tick, by job key (kvToken).
func (l lastTicks) all(ctx context.Context) (map[string]time.Time, error) {
	w, err := l.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("read the last ticks: %w", err)
	}
	defer func() { _ = w.Stop() }()
	out := map[string]time.Time{}
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("read the last ticks: %w", ctx.Err())
		case e := <-w.Updates():
			if e == nil { // all current values were delivered
				return out, nil
			}
			t, err := parseTick(e.Key(), e.Value())
			if err != nil {
				return nil, err
			}
			out[e.Key()] = t
		}
	}
}

func parseTick(key string, v []byte) (time.Time, error) {
	u, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("last tick of %s is %q, not Unix seconds", key, v)
	}
	return time.Unix(u, 0), nil
}

// set records at as job's last fired tick unless a later one is recorded.
func (l lastTicks) set(ctx context.Context, job string, at time.Time) error {
	key, val := kvToken(job), []byte(strconv.FormatInt(at.Unix(), 10))
	for range 5 {
		e, err := l.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			_, err = l.kv.Create(ctx, key, val)
		case err != nil:
			return fmt.Errorf("record the last tick of %s: %w", job, err)
		default:
			if t, perr := parseTick(key, e.Value()); perr == nil && !t.Before(at) {
				return nil
			}
			_, err = l.kv.Update(ctx, key, val, e.Revision())
		}
		if !errors.Is(err, jetstream.ErrKeyExists) { // a concurrent write: read again
			if err != nil {
				return fmt.Errorf("record the last tick of %s: %w", job, err)
			}
			return nil
		}
	}
	return fmt.Errorf("record the last tick of %s: too many concurrent writes", job)
}

// forget removes job's last tick (the job was deleted).
func (l lastTicks) forget(ctx context.Context, job string) error {
	if err := l.kv.Purge(ctx, kvToken(job)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("forget the last tick of %s: %w", job, err)
	}
	return nil
}

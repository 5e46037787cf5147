package scheduler

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/nats-io/nats.go/jetstream"
)

// The JetStream key-value buckets of the scheduler replicas.
const (
	// TickBucket holds the tick locks, created with kv.Create by the
	// replica that fires the ticks: one key per tick group (the ticks of
	// one instant in one shard) and one per tick fired on its own (a
	// catch-up, or a tick the group's winner did not hold). Keys expire
	// after TickLockTTL.
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
// intake_scheduler_tick_locks_total. The metric counts ticks, whether their
// lock was a group's or their own.
const (
	lockAcquired      = "acquired"       // this replica fires the tick
	lockHeldElsewhere = "held_elsewhere" // another replica fires it
	lockError         = "error"          // the bucket could not be reached: fired anyway (the API's run creation is idempotent)
)

// errHeldElsewhere is the Lock error when another replica holds the tick.
var errHeldElsewhere = errors.New("scheduler: tick is fired by another replica")

// errGroupGone is the Lock error for a group that this replica no longer
// holds (its last job was unscheduled as its timer fired).
var errGroupGone = errors.New("scheduler: tick group is no longer scheduled")

// lockTimeout bounds taking a tick's lock.
const lockTimeout = 5 * time.Second

// groupLockPrefix starts the lock key (and gocron job name) of a tick
// group: "instant.{unix seconds}.{shard}". A job's key starts with "jobs/".
const groupLockPrefix = "instant."

// tickLocker is the gocron.Locker of the scheduler: gocron asks it before
// running a job, with the job's name as the key. A gocron job is a tick
// group (the ticks of one instant in one shard, see group), and its lock is
// the key groupKeyName in TickBucket, created with kv.Create: the replica
// that creates it fires the group, every other one skips it. The key's
// value lists the jobs the winner fires (replica id, a newline, then the
// 64-bit FNV-1a hash of every job name, big-endian): a replica that lost
// the lock but holds a job the winner did not (it picked the job up
// between the two replicas' polls) fires that job's tick itself, under the
// tick's own lock (tickKey). So every tick fires exactly once, whatever
// each replica holds, with one key per group instead of one per tick.
//
// Locks are never released (Unlock does nothing): keys expire with the
// bucket's TTL, so a replica whose timer fires late cannot fire a tick
// again.
type tickLocker struct {
	kv      jetstream.KeyValue
	replica string
	m       *metrics
	log     *slog.Logger
	// claim snapshots the members of the group named key that this
	// replica fires if it wins the lock; ok is false when it holds no
	// such group. lost hands it the members to fire after losing.
	claim func(key string) (members []*entry, ok bool)
	lost  func(key string, leftovers []*entry)
}

var _ gocron.Locker = (*tickLocker)(nil)

// Lock takes the lock of a group (groupLockPrefix) or of one tick. When the
// bucket cannot be reached it lets the ticks fire (and logs it): the control
// API creates one run per (job, scheduled time) whichever replicas ask, so
// failing open costs duplicate requests, while failing closed would lose
// ticks.
func (l *tickLocker) Lock(ctx context.Context, key string) (gocron.Lock, error) {
	if strings.HasPrefix(key, groupLockPrefix) {
		return l.lockGroup(ctx, key)
	}
	return l.lockTick(ctx, key)
}

// lockTick takes the lock of one tick (a catch-up, or a tick the winner of
// its group did not fire).
func (l *tickLocker) lockTick(ctx context.Context, key string) (gocron.Lock, error) {
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

// lockGroup takes the lock of a tick group. Losing it, it reads which jobs
// the winner fires and hands the others to lost.
func (l *tickLocker) lockGroup(ctx context.Context, key string) (gocron.Lock, error) {
	members, ok := l.claim(key)
	if !ok {
		return nil, errGroupGone
	}
	ctx, cancel := context.WithTimeout(ctx, lockTimeout)
	defer cancel()
	_, err := l.kv.Create(ctx, key, encodeClaim(l.replica, members))
	n := float64(len(members))
	switch {
	case err == nil:
		l.m.locks.WithLabelValues(lockAcquired).Add(n)
		return noUnlock{}, nil
	case errors.Is(err, jetstream.ErrKeyExists):
		left := members
		if e, gerr := l.kv.Get(ctx, key); gerr != nil {
			l.log.Warn("scheduler: could not read which jobs the replica holding a tick group fires; firing each of this replica's under its own lock",
				"lock", key, "err", gerr)
		} else if fired, derr := decodeClaim(e.Value()); derr != nil {
			l.log.Warn("scheduler: firing each tick of a group under its own lock", "lock", key, "err", derr)
		} else {
			left = left[:0:0]
			for _, e := range members {
				if !fired[e.hash] {
					left = append(left, e)
				}
			}
		}
		l.m.locks.WithLabelValues(lockHeldElsewhere).Add(n - float64(len(left)))
		l.lost(key, left)
		return nil, errHeldElsewhere
	}
	l.m.locks.WithLabelValues(lockError).Add(n)
	l.log.Warn("scheduler: could not take the lock of a tick group; firing it anyway (run creation is idempotent)",
		"lock", key, "ticks", len(members), "err", err)
	return noUnlock{}, nil
}

// encodeClaim is the value of a group's lock key: the replica id, a
// newline, and the 8-byte big-endian hash of every member's job name.
func encodeClaim(replica string, members []*entry) []byte {
	b := make([]byte, 0, len(replica)+1+8*len(members))
	b = append(b, replica...)
	b = append(b, '\n')
	for _, e := range members {
		b = binary.BigEndian.AppendUint64(b, e.hash)
	}
	return b
}

// decodeClaim reads the job hashes of a group lock's value.
func decodeClaim(v []byte) (map[uint64]bool, error) {
	i := bytes.IndexByte(v, '\n')
	if i < 0 || (len(v)-i-1)%8 != 0 {
		return nil, fmt.Errorf("the group lock's value (%d bytes) is not a replica id and job hashes", len(v))
	}
	out := make(map[uint64]bool, (len(v)-i-1)/8)
	for p := i + 1; p < len(v); p += 8 {
		out[binary.BigEndian.Uint64(v[p:p+8])] = true
	}
	return out, nil
}

// jobHash identifies a job in group locks and picks its shard: the 64-bit
// FNV-1a hash of its name, the same in every replica.
func jobHash(job string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(job))
	return h.Sum64()
}

// noUnlock is a tick lock: it is kept until it expires.
type noUnlock struct{}

func (noUnlock) Unlock(context.Context) error { return nil }

// groupKeyName is the lock key, and gocron job name, of the tick group of
// shard at at.
func groupKeyName(at time.Time, shard int) string {
	return groupLockPrefix + strconv.FormatInt(at.Unix(), 10) + "." + strconv.Itoa(shard)
}

// tickKey is the lock key of job's own tick at at:
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
	kv      jetstream.KeyValue
	js      jetstream.JetStream
	subject string // of the bucket's keys: "$KV.{bucket}."
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

// record stores the scheduled time of each fired tick as its job's last
// tick, with asynchronous puts (one JetStream publish per key, then
// waiting for the acknowledgements, recordChunk at a time), so that
// recording ten thousand ticks takes a few round trips rather than ten
// thousand. A catch-up fires before its job's next regular tick, so a
// job's records arrive in order.
func (l lastTicks) record(ctx context.Context, ticks []firedTick) error {
	var firstErr error
	for chunk := range slices.Chunk(ticks, recordChunk) {
		futures := make([]jetstream.PubAckFuture, 0, len(chunk))
		for _, t := range chunk {
			f, err := l.js.PublishAsync(l.subject+kvToken(t.job), []byte(strconv.FormatInt(t.at.Unix(), 10)))
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("record the last tick of %s: %w", t.job, err)
				}
				continue
			}
			futures = append(futures, f)
		}
		for _, f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				if firstErr == nil {
					firstErr = fmt.Errorf("record a last tick: %w", err)
				}
			case <-ctx.Done():
				return fmt.Errorf("record %d last ticks: %w", len(ticks), ctx.Err())
			}
		}
	}
	return firstErr
}

// recordChunk is how many last ticks record has in flight at once (below
// JetStream's limit of pending asynchronous publishes).
const recordChunk = 1000

// forget removes job's last tick (the job was deleted).
func (l lastTicks) forget(ctx context.Context, job string) error {
	if err := l.kv.Purge(ctx, kvToken(job)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("forget the last tick of %s: %w", job, err)
	}
	return nil
}

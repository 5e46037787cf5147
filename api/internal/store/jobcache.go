package store

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// JobCache keeps jobs decoded from their rows, encoded as binary protobuf
// and as a run's snapshot, by id and row version
// (intake.jobs.version: a new number with every change of the row,
// migration 00014), so that a job read again unchanged costs no JSON. The
// scheduled runs' batches (scheduledruns.go) and ListJobs (the scheduler's
// poll) read every job every minute; protojson takes some 50 µs a job. A
// reader first reads the versions of the jobs it needs, then the rows of
// those it does not hold (jobsByVersion). An entry holds the job without
// its last run, which changes without its row, and holds it encoded (some
// 2 KB a job), not as a decoded message (several times that). The zero
// value is ready to use; it is safe for concurrent use.
type JobCache struct {
	mu    sync.Mutex
	m     map[string]*cachedJob
	bytes int
	// maxBytes overrides maxCachedBytes (tests); 0: maxCachedBytes.
	maxBytes int

	hits, misses atomic.Uint64
}

// JobCacheStats are a JobCache's size and lookups, for metrics.
type JobCacheStats struct {
	Entries, Bytes int
	// Hits and Misses count the jobs looked up: held at their version, or
	// read and decoded.
	Hits, Misses uint64
}

// Stats returns the cache's size and lookups so far.
func (c *JobCache) Stats() JobCacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return JobCacheStats{Entries: len(c.m), Bytes: c.bytes, Hits: c.hits.Load(), Misses: c.misses.Load()}
}

// JobCacheStats are the size and lookups of the store's job cache.
func (s *Store) JobCacheStats() JobCacheStats { return s.jobs.Stats() }

func (c *JobCache) limit() int {
	if c.maxBytes > 0 {
		return c.maxBytes
	}
	return maxCachedBytes
}

// cachedJob is a job as decoded at one version of its row. Nothing in it
// changes once it is cached: wire is shared by every reader.
type cachedJob struct {
	version  int64
	tenant   string
	enabled  bool
	object   intakev1.ObjectType
	wire     []byte // the job without its last run, binary protobuf
	snapshot string // the same, protojson: what a run stores of it
}

// maxCachedBytes bounds a JobCache's encoded jobs (100,000 jobs of 2 KB
// fit): past it, entries are dropped at random until a quarter of the room
// is free, so that more jobs than fit cost some decoding, not all of it.
const maxCachedBytes = 256 << 20

func (e *cachedJob) size() int { return len(e.wire) + len(e.snapshot) + 128 }

// jobVersion names a job's row at one version.
type jobVersion struct {
	id      string
	version int64
}

func (c *JobCache) get(v jobVersion) *cachedJob {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.m[v.id]; e != nil && e.version == v.version {
		return e
	}
	return nil
}

func (c *JobCache) put(id string, e *cachedJob) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]*cachedJob{}
	}
	if c.bytes+e.size() > c.limit() {
		// Map iteration order is random: a random quarter goes.
		for k, old := range c.m {
			if c.bytes+e.size() <= c.limit()*3/4 {
				break
			}
			delete(c.m, k)
			c.bytes -= old.size()
		}
	}
	old := c.m[id]
	switch {
	case old == nil:
	case old.version > e.version:
		return
	default:
		c.bytes -= old.size()
	}
	c.m[id], c.bytes = e, c.bytes+e.size()
}

// jobsByVersion returns the jobs named by versions, from the cache when it
// holds that version, else read (one query for all of them), decoded and
// cached. A job read at a newer version than asked is returned at that
// version; a job deleted meanwhile is absent from the map.
func (s *Store) jobsByVersion(ctx context.Context, versions []jobVersion) (map[string]*cachedJob, error) {
	out := make(map[string]*cachedJob, len(versions))
	var missing []string
	for _, v := range versions {
		if e := s.jobs.get(v); e != nil {
			out[v.id] = e
			continue
		}
		missing = append(missing, v.id)
	}
	s.jobs.hits.Add(uint64(len(versions) - len(missing)))
	s.jobs.misses.Add(uint64(len(missing)))
	if len(missing) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+jobColumnsNoLastRun+`, j.version, j.tenant_id
		FROM intake.jobs j WHERE j.id = ANY($1)`, missing)
	if err != nil {
		return nil, fmt.Errorf("read %d jobs: %w", len(missing), err)
	}
	defer rows.Close()
	for rows.Next() {
		e, id, err := decodeCachedJob(rows)
		if err != nil {
			return nil, fmt.Errorf("read %d jobs: %w", len(missing), err)
		}
		s.jobs.put(id, e)
		out[id] = e
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %d jobs: %w", len(missing), err)
	}
	return out, nil
}

// decodeCachedJob decodes a row of jobColumnsNoLastRun, j.version and
// j.tenant_id, and returns the job's id.
func decodeCachedJob(rows pgx.Rows) (*cachedJob, string, error) {
	e := &cachedJob{}
	job, _, err := scanJobState(rows, &e.version, &e.tenant)
	if err != nil {
		return nil, "", err
	}
	job.LastRun = ""
	if e.wire, err = proto.Marshal(job); err != nil {
		return nil, "", fmt.Errorf("encode job %s: %w", job.GetName(), err)
	}
	snap, err := jsonOpts.Marshal(job)
	if err != nil {
		return nil, "", fmt.Errorf("encode the snapshot of %s: %w", job.GetName(), err)
	}
	e.snapshot, e.enabled, e.object = string(snap), job.GetEnabled(), job.GetObject()
	return e, job.GetName()[len("jobs/"):], nil
}

// copyJob decodes a job of the cache, with its last run (a run id, or "").
func (e *cachedJob) copyJob(id, lastRun string) (*intakev1.Job, error) {
	job, err := decodeJob(id, e.wire)
	if err != nil {
		return nil, err
	}
	if lastRun != "" {
		job.LastRun = RunName(id, lastRun) // as scanJobState sets it
	}
	return job, nil
}

// decodeJob decodes the binary protobuf of job id.
func decodeJob(id string, wire []byte) (*intakev1.Job, error) {
	job := &intakev1.Job{}
	if err := proto.Unmarshal(wire, job); err != nil {
		return nil, fmt.Errorf("decode cached job %s: %w", id, err)
	}
	return job, nil
}

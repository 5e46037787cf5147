package scheduler

import "time"

// GocronJobs is the number of jobs in the service's gocron scheduler.
func (s *Service) GocronJobs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sched == nil {
		return 0
	}
	return len(s.sched.Jobs())
}

// GroupLockKey is the lock key of the tick group that job's tick at at
// belongs to.
func GroupLockKey(job string, at time.Time) string {
	return groupKeyName(at, shardOf(&entry{hash: jobHash(job)}))
}

// GroupLockValue is the value of a group lock taken by replica, firing the
// ticks of jobs.
func GroupLockValue(replica string, jobs ...string) []byte {
	es := make([]*entry, len(jobs))
	for i, j := range jobs {
		es[i] = &entry{job: j, hash: jobHash(j)}
	}
	return encodeClaim(replica, es)
}

// GroupShards is how many tick groups one instant's ticks are split into.
const GroupShards = groupShards

package scheduler

// GocronJobs is the number of jobs in the service's gocron scheduler.
func (s *Service) GocronJobs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sched == nil {
		return 0
	}
	return len(s.sched.Jobs())
}

package api

import "context"

// RequeueStuckRuns runs one sweep of the requeue sweeper and returns how
// many run requests it published.
func (s *Server) RequeueStuckRuns(ctx context.Context) (int, error) { return s.requeueStuck(ctx) }

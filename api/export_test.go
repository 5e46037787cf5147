package api

import "context"

// RequeueStuckRuns runs one sweep of the requeue sweeper and returns how
// many run requests it published.
func (s *Server) RequeueStuckRuns(ctx context.Context) (int, error) { return s.requeueStuck(ctx) }

// SetRowErrorCap bounds the row errors the server keeps per run (the
// default is store.MaxRowErrorsKept). Call it before Run.
func SetRowErrorCap(s *Server, n int64) { s.rowErrorCap = n }

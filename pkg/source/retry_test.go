package source_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/pkg/source"
)

// fakeSleep records the waits instead of waiting.
type fakeSleep struct{ waits []time.Duration }

func (f *fakeSleep) sleep(ctx context.Context, d time.Duration) error {
	f.waits = append(f.waits, d)
	return ctx.Err()
}

func failing(errs ...error) (func(context.Context) error, *int) {
	calls := 0
	return func(context.Context) error {
		calls++
		if calls <= len(errs) {
			return errs[calls-1]
		}
		return nil
	}, &calls
}

var (
	errBusy      = source.Errorf(ekOther, true, nil, "GET https://h/a.csv: 503 Service Unavailable")
	errWrongPass = source.Errorf(ekAuth, false, nil, "GET https://h/a.csv: 401 Unauthorized")
)

func TestRetryTransientThenSuccess(t *testing.T) {
	t.Parallel()
	f := &fakeSleep{}
	fn, calls := failing(errBusy, errBusy, errBusy)
	var retried []int
	err := source.Retry(t.Context(), source.RetryPolicy{Sleep: f.sleep, OnRetry: func(n int, err error, _ time.Duration) {
		retried = append(retried, n)
		require.Equal(t, errBusy, err)
	}}, fn)
	require.NoError(t, err)
	require.Equal(t, 4, *calls)
	require.Equal(t, []int{1, 2, 3}, retried)
	// Exponential with jitter: each wait between half and all of 1s, 2s, 4s.
	require.Len(t, f.waits, 3)
	for i, full := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		require.GreaterOrEqual(t, f.waits[i], full/2, i)
		require.LessOrEqual(t, f.waits[i], full, i)
	}
}

func TestRetryGivesUp(t *testing.T) {
	t.Parallel()
	f := &fakeSleep{}
	fn, calls := failing(errBusy, errBusy, errBusy, errBusy, errBusy, errBusy, errBusy)
	err := source.Retry(t.Context(), source.RetryPolicy{Attempts: 6, Initial: time.Second, Max: 3 * time.Second, Sleep: f.sleep}, fn)
	require.Equal(t, 6, *calls)
	requireErrKind(t, err, ekOther, true, "GET https://h/a.csv: 503 Service Unavailable (after 6 attempts)")
	require.ErrorIs(t, err, errBusy)
	for _, w := range f.waits[2:] {
		require.LessOrEqual(t, w, 3*time.Second, "capped at Max")
		require.GreaterOrEqual(t, w, 1500*time.Millisecond)
	}
}

func TestRetryNeverRetriesPermanentErrors(t *testing.T) {
	t.Parallel()
	f := &fakeSleep{}
	fn, calls := failing(errBusy, errWrongPass)
	err := source.Retry(t.Context(), source.RetryPolicy{Sleep: f.sleep}, fn)
	require.Equal(t, 2, *calls)
	require.Equal(t, errWrongPass, err, "returned as it is")

	plain := errors.New("not a connection error")
	fn, calls = failing(plain)
	require.Equal(t, plain, source.Retry(t.Context(), source.RetryPolicy{Sleep: f.sleep}, fn))
	require.Equal(t, 1, *calls)

	fn, calls = failing(errBusy)
	require.Equal(t, errBusy, source.Retry(t.Context(), source.RetryPolicy{Attempts: 1, Sleep: f.sleep}, fn), "one attempt: nothing added")
	require.Equal(t, 1, *calls)
}

func TestRetryHonoursContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	fn, calls := failing(errBusy, errBusy, errBusy)
	time.AfterFunc(30*time.Millisecond, cancel)
	start := time.Now()
	err := source.Retry(ctx, source.RetryPolicy{Initial: time.Hour}, fn) // a real timer
	require.Less(t, time.Since(start), 10*time.Second)
	require.Equal(t, 1, *calls)
	require.ErrorIs(t, err, context.Canceled)
	requireErrKind(t, err, ekOther, false, "503 Service Unavailable (after 1 attempt; retrying stopped: context canceled)")
}

func TestRetryRealDelays(t *testing.T) {
	t.Parallel()
	fn, calls := failing(errBusy, errBusy)
	start := time.Now()
	require.NoError(t, source.Retry(t.Context(), source.RetryPolicy{Initial: 10 * time.Millisecond, Max: 20 * time.Millisecond}, fn))
	require.Equal(t, 3, *calls)
	require.GreaterOrEqual(t, time.Since(start), 15*time.Millisecond) // at least 5ms + 10ms
}

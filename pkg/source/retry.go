package source

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Retry defaults.
const (
	DefaultRetryAttempts = 4
	DefaultRetryInitial  = time.Second
	DefaultRetryMax      = 8 * time.Second
)

// RetryPolicy says how Retry retries. The zero value is the default: 4
// attempts, waiting about 1s, 2s, 4s (each wait doubles, capped at 8s).
type RetryPolicy struct {
	// Attempts bounds the calls, the first included; 1 never retries.
	// 0 means DefaultRetryAttempts.
	Attempts int
	// Initial is the wait before the second attempt; 0 means
	// DefaultRetryInitial. Each further wait doubles, up to Max.
	Initial time.Duration
	// Max caps a wait; 0 means DefaultRetryMax.
	Max time.Duration
	// Sleep waits d or until ctx is done (returning its error). Nil: a
	// timer. Tests pass a fake one.
	Sleep func(ctx context.Context, d time.Duration) error
	// OnRetry, when set, is called before each wait with the attempt that
	// failed (1-based), its error and the wait (for logs and metrics).
	OnRetry func(attempt int, err error, wait time.Duration)
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.Attempts <= 0 {
		p.Attempts = DefaultRetryAttempts
	}
	if p.Initial <= 0 {
		p.Initial = DefaultRetryInitial
	}
	if p.Max <= 0 {
		p.Max = DefaultRetryMax
	}
	if p.Max < p.Initial {
		p.Max = p.Initial
	}
	if p.Sleep == nil {
		p.Sleep = sleepCtx
	}
	return p
}

// backoff is the wait after the given failed attempt (1-based): the
// exponential delay with "equal jitter", between half of it and all of it,
// so that many workers failing together do not retry together.
func (p RetryPolicy) backoff(attempt int) time.Duration {
	d := p.Initial
	for i := 1; i < attempt && d < p.Max; i++ {
		d *= 2
	}
	d = min(d, p.Max)
	half := d / 2
	return half + rand.N(d-half+1)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// Retry calls fn until it succeeds, fails with an error that is not
// transient (IsTransient: a wrong password is never retried), or
// policy.Attempts calls were made, waiting with exponential backoff and
// jitter between calls. It stops when ctx is done.
//
// A non-transient error is returned as fn returned it. When the attempts run
// out or ctx ends a wait, the last error is returned with "(after N
// attempts)" added to its message, still an *Error of the same Kind (and
// for ctx, also matching ctx's error with errors.Is).
func Retry(ctx context.Context, policy RetryPolicy, fn func(ctx context.Context) error) error {
	p := policy.withDefaults()
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil || !IsTransient(err) {
			return err
		}
		if attempt >= p.Attempts {
			return afterAttempts(err, attempt, nil)
		}
		if ctx.Err() != nil {
			return afterAttempts(err, attempt, context.Cause(ctx))
		}
		wait := p.backoff(attempt)
		if p.OnRetry != nil {
			p.OnRetry(attempt, err, wait)
		}
		if serr := p.Sleep(ctx, wait); serr != nil {
			return afterAttempts(err, attempt, serr)
		}
	}
}

// afterAttempts adds the number of attempts to err's message; stop is why
// retrying stopped early (ctx), if it did.
func afterAttempts(err error, n int, stop error) error {
	if n == 1 && stop == nil {
		return err // a policy of one attempt: nothing to add
	}
	suffix := fmt.Sprintf(" (after %d %s)", n, plural(n, "attempt", "attempts"))
	if stop != nil {
		suffix = fmt.Sprintf(" (after %d %s; retrying stopped: %v)", n, plural(n, "attempt", "attempts"), stop)
	}
	var e *Error
	if !errors.As(err, &e) { // not transient then: not reached
		return fmt.Errorf("%w%s", err, suffix)
	}
	out := &Error{Kind: e.Kind, Msg: err.Error() + suffix, Transient: e.Transient, Err: err}
	if stop != nil {
		out.Transient = false
		out.Err = errors.Join(err, stop)
	}
	return out
}

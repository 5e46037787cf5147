package serve

import "sync/atomic"

// Drain is the readiness of a process that stops gracefully. When a
// process is told to stop, its readiness must turn false first, before it
// stops anything, so that Kubernetes (or any load balancer probing
// /readyz) stops sending it work while it finishes what it has; /healthz
// keeps answering 200 meanwhile, so that the process is not restarted in
// the middle of its stop. The zero Drain is not draining.
type Drain struct{ on atomic.Bool }

// Begin turns readiness off for good. It reports whether this call began
// the drain (false when it had begun already).
func (d *Drain) Begin() bool { return d.on.CompareAndSwap(false, true) }

// Draining reports whether Begin was called.
func (d *Drain) Draining() bool { return d.on.Load() }

// Ready returns the readiness to serve on /readyz: false once the drain
// began, else ready() (true for a nil ready).
func (d *Drain) Ready(ready func() bool) func() bool {
	return func() bool {
		if d.on.Load() {
			return false
		}
		return ready == nil || ready()
	}
}

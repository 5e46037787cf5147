package jobspec

import intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"

// validateFailurePolicy checks when a job's schedule is disabled after
// failed runs: after N consecutive ones (N >= 1), or never (0).
func validateFailurePolicy(vs *Violations, field string, p *intakev1.FailurePolicy) {
	if n := p.GetDisableAfterFailures(); n < 0 {
		vs.add(field+".disable_after_failures", "%d is negative (0: never disable; N: disable after N consecutive failed runs)", n)
	}
}

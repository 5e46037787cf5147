package jobspec

import intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"

// validateRetention checks how long a job's run files are kept: the last
// keep_runs runs' files and those of the last keep_days days, each 0 (or
// unset) for no limit of its own; a policy with neither set means the
// server's default.
func validateRetention(vs *Violations, field string, p *intakev1.RetentionPolicy) {
	if n := p.GetKeepRuns(); n < 0 {
		vs.add(field+".keep_runs", "%d is negative (0 or more runs; 0 and keep_days 0: the server's default)", n)
	}
	if n := p.GetKeepDays(); n < 0 {
		vs.add(field+".keep_days", "%d is negative (0 or more days; 0 and keep_runs 0: the server's default)", n)
	}
}

// ClearOutputOnly clears the output-only fields of a job a client sent
// (create_time, update_time, next_run_time, next_run_times, last_run,
// mapping_validated, mapping_validate_time, disabled_reason,
// consecutive_failures): the server sets them, whatever the client says.
// name and etag are kept: they identify the job and its version in an
// update.
func ClearOutputOnly(job *intakev1.Job) {
	if job == nil {
		return
	}
	job.CreateTime, job.UpdateTime, job.NextRunTime, job.NextRunTimes, job.LastRun = nil, nil, nil, nil, ""
	job.MappingValidated, job.MappingValidateTime = false, nil
	job.DisabledReason, job.ConsecutiveFailures = "", 0
}

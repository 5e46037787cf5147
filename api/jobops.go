package api

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/intakehq/intake/api/internal/jobspec"
	"github.com/intakehq/intake/api/internal/store"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// copyPrefix starts the display name of a duplicated job.
const copyPrefix = "Copy of "

// copyOf is what DuplicateJob saves of job: every setting, as a disabled
// job named "Copy of …", without the original's name and output fields.
func copyOf(job *intakev1.Job) *intakev1.Job {
	c := proto.Clone(job).(*intakev1.Job)
	jobspec.ClearOutputOnly(c)
	c.Name, c.Etag = "", ""
	c.Enabled = false
	name := []rune(copyPrefix + job.GetDisplayName())
	if len(name) > jobspec.MaxDisplayName {
		name = name[:jobspec.MaxDisplayName]
	}
	c.DisplayName = string(name)
	return c
}

// DuplicateJob saves a copy of a job as "Copy of …", disabled, under a new
// id (new_job_id, or generated), with no run history. The copy's mapping is
// the original's, so it is validated when the original's is.
func (j *jobService) DuplicateJob(ctx context.Context, req *intakev1.DuplicateJobRequest) (*intakev1.Job, error) {
	s := j.s
	id, err := parseJobName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	newID := req.GetNewJobId()
	if newID != "" {
		if err := jobspec.CheckJobID(newID); err != nil {
			return nil, badField("new_job_id", "%v", err)
		}
	}
	orig, v, err := s.store.GetJobValidation(ctx, id)
	if err != nil {
		return nil, s.storeError(ctx, "read", "job "+req.GetName(), err)
	}
	cp := copyOf(orig)
	if err := s.checkJob(ctx, nil, cp); err != nil {
		return nil, err
	}
	if err := s.ensureNewAttributes(ctx, cp); err != nil {
		return nil, err
	}
	// The header of the last validation stays, for telling new columns.
	val := &store.JobValidation{Columns: v.Columns}
	if v.Valid(jobspec.MappingHash(cp)) {
		val.Hash, val.Time = v.Hash, v.Time
	}
	var job *intakev1.Job
	for attempt := 0; ; attempt++ {
		tryID := newID
		if tryID == "" {
			tryID = newJobID()
		}
		job, err = s.store.CreateJob(ctx, tryID, cp, val)
		if err == nil {
			break
		}
		if newID != "" || !(errors.Is(err, store.ErrAlreadyExists) || errors.Is(err, store.ErrIDUsed)) || attempt >= 3 {
			return nil, s.storeError(ctx, "create", "job "+store.JobName(tryID), err)
		}
	}
	s.log.InfoContext(ctx, "job duplicated", "job", job.GetName(), "of", orig.GetName(), "mapping_validated", job.GetMappingValidated())
	return withNextRun(job, time.Now()), nil
}

// SetJobEnabled enables or disables a job's schedule. Enabling follows the
// save rule of UpdateJob (a validation token, or a mapping that passed
// already) and clears what the failure policy recorded (disabled_reason,
// consecutive_failures); disabling keeps everything else.
func (j *jobService) SetJobEnabled(ctx context.Context, req *intakev1.SetJobEnabledRequest) (*intakev1.Job, error) {
	s := j.s
	id, err := parseJobName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	tok, err := s.validationToken(ctx, req.GetValidationToken())
	if err != nil {
		return nil, err
	}
	job, err := s.store.UpdateJob(ctx, id, func(cur *intakev1.Job, v *store.JobValidation) error {
		before := jobspec.MappingHash(cur)
		cur.Enabled = req.GetEnabled()
		if cur.GetEnabled() {
			if err := s.checkJob(ctx, nil, cur); err != nil {
				return err
			}
		}
		return applyValidation(id, cur, v, before, tok)
	})
	if err != nil {
		return nil, s.storeError(ctx, "update", "job "+store.JobName(id), err)
	}
	s.log.InfoContext(ctx, "job "+map[bool]string{true: "enabled", false: "disabled"}[job.GetEnabled()], "job", id)
	return withNextRun(job, time.Now()), nil
}

// jobAutoDisabled logs and counts a job its failure policy disabled.
func (s *Server) jobAutoDisabled(ctx context.Context, d store.AutoDisabled) {
	s.metrics.jobsDisabled.Inc()
	s.log.InfoContext(ctx, "job disabled by its failure policy", "job", d.JobID, "run", d.Run,
		"consecutive_failures", d.Failures, "reason", d.Reason)
}

// registerJobOps adds the metrics of job operations.
func (m *metrics) registerJobOps(reg prometheus.Registerer) error {
	m.jobsDisabled = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "intake_api_jobs_auto_disabled_total",
		Help: "Jobs disabled by their failure policy after too many consecutive failed runs.",
	})
	if err := reg.Register(m.jobsDisabled); err != nil {
		return fmt.Errorf("api: register metrics: %w", err)
	}
	return nil
}

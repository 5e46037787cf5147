package api

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/intakehq/intake/api/internal/jobspec"
	"github.com/intakehq/intake/api/internal/store"
	"github.com/intakehq/intake/pkg/schedule"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// publishTimeout bounds the publish of a run request.
const publishTimeout = 10 * time.Second

type jobService struct {
	intakev1.UnimplementedJobServiceServer
	s *Server
}

// checkJob validates a job as it would be stored, its mapping against its
// object's data model.
func (s *Server) checkJob(ctx context.Context, extra jobspec.Violations, job *intakev1.Job) error {
	model, err := s.modelFor(ctx, job.GetObject())
	if err != nil {
		return err
	}
	vs := append(extra, jobspec.Validate("job", job, model)...)
	vs = append(vs, jobspec.ValidateWebhook("job.webhook", job.GetWebhook())...) // webhook.go
	if len(vs) > 0 {
		return invalid("invalid job", vs)
	}
	if jobspec.IsLocal(job) && !s.cfg.DevMode {
		return failedPrecondition("DEV_MODE", "job.connection.local",
			"local file connections are only accepted when Intake runs in development mode; use an http connection")
	}
	// The stored connection is checked again as the job is saved, with its
	// row locked (checkJobConnection); checking it here as well refuses the
	// job before anything else (such as new attributes) is created for it.
	if name := job.GetConnectionName(); name != "" {
		var conn *intakev1.Connection
		if id, err := jobspec.ParseConnectionName(name); err == nil {
			c, err := s.store.GetConnection(ctx, id)
			switch {
			case err == nil:
				conn = c
			case !errors.Is(err, store.ErrNotFound):
				return s.storeError(ctx, "read", "connection "+name, err)
			}
		}
		if err := s.checkJobConnection(job, conn); err != nil {
			return err
		}
	}
	return nil
}

// nextRunTimes is how many fire times a job shows in next_run_times.
const nextRunTimes = 5

// withNextRun sets the output-only next_run_time and next_run_times of job:
// when its schedule fires next after now, and the next five times, for an
// enabled job with a valid schedule; unset otherwise. The scheduler fires at
// the same times (pkg/schedule).
func withNextRun(job *intakev1.Job, now time.Time) *intakev1.Job {
	job.NextRunTime, job.NextRunTimes = nil, nil
	if !job.GetEnabled() || job.GetSchedule().GetCadence() == nil {
		return job
	}
	c, err := schedule.Parse(job.GetSchedule())
	if err != nil {
		return job
	}
	for _, t := range c.NextN(now, nextRunTimes) {
		job.NextRunTimes = append(job.NextRunTimes, timestamppb.New(t))
	}
	if len(job.NextRunTimes) > 0 {
		job.NextRunTime = job.NextRunTimes[0]
	}
	return job
}

func newJobID() string { return strings.ReplaceAll(uuid.NewString(), "-", "")[:12] }

func (j *jobService) CreateJob(ctx context.Context, req *intakev1.CreateJobRequest) (*intakev1.Job, error) {
	s := j.s
	if req.GetJob() == nil {
		return nil, badField("job", "required")
	}
	var vs jobspec.Violations
	id := req.GetJobId()
	if id != "" {
		if err := jobspec.CheckJobID(id); err != nil {
			vs = append(vs, jobspec.Violation{Field: "job_id", Description: err.Error()})
		}
	}
	if err := s.checkJob(ctx, vs, req.GetJob()); err != nil {
		return nil, err
	}
	val, err := s.createValidation(ctx, req.GetValidationToken(), id, req.GetJob())
	if err != nil {
		return nil, err
	}
	if err := s.ensureNewAttributes(ctx, req.GetJob()); err != nil {
		return nil, err
	}
	var job *intakev1.Job
	for attempt := 0; ; attempt++ {
		newID := id
		if newID == "" {
			newID = newJobID()
		}
		job, err = s.store.CreateJob(ctx, newID, req.GetJob(), val)
		if err == nil {
			id = newID
			break
		}
		if id != "" || !(errors.Is(err, store.ErrAlreadyExists) || errors.Is(err, store.ErrIDUsed)) || attempt >= 3 {
			return nil, s.storeError(ctx, "create", "job "+store.JobName(newID), err)
		}
	}
	s.log.InfoContext(ctx, "job created", "job", id, "object", job.GetObject().String(), "enabled", job.GetEnabled())
	if job.GetRunOnSave() {
		return s.runOnSave(ctx, id, job)
	}
	return withNextRun(job, time.Now()), nil
}

// runOnSave starts a run of a job just saved. The save stands even when the
// run cannot be queued: the run then shows FAILED with the reason.
func (s *Server) runOnSave(ctx context.Context, id string, job *intakev1.Job) (*intakev1.Job, error) {
	if _, err := s.startRun(ctx, id, job, intakev1.Trigger_TRIGGER_RUN_NOW, false); err != nil {
		s.log.WarnContext(ctx, "run on save not queued", "job", id, "error", err)
	}
	latest, err := s.store.GetJob(ctx, id)
	if err != nil {
		return nil, s.storeError(ctx, "read", "job "+store.JobName(id), err)
	}
	return withNextRun(latest, time.Now()), nil
}

// startRun creates a QUEUED run of job (a dry run when dryRun) and
// publishes its run request. When the publish fails the run is marked
// FAILED and the error is Unavailable.
func (s *Server) startRun(ctx context.Context, jobID string, job *intakev1.Job, trigger intakev1.Trigger, dryRun bool) (*intakev1.Run, error) {
	return s.startRunWith(ctx, jobID, job, trigger, store.RunOptions{DryRun: dryRun})
}

// startRunWith is startRun with options (force, replay_of: issue 4).
func (s *Server) startRunWith(ctx context.Context, jobID string, job *intakev1.Job, trigger intakev1.Trigger, o store.RunOptions) (*intakev1.Run, error) {
	run, err := s.store.CreateRunWith(ctx, job, jobID, trigger, o)
	if err != nil {
		return nil, s.storeError(ctx, "create a run of", "job "+store.JobName(jobID), err)
	}
	if err := s.queueRun(ctx, jobID, job, run, o); err != nil {
		return nil, err
	}
	return run, nil
}

func (j *jobService) GetJob(ctx context.Context, req *intakev1.GetJobRequest) (*intakev1.Job, error) {
	id, err := parseJobName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	job, err := j.s.store.GetJob(ctx, id)
	if err != nil {
		return nil, j.s.storeError(ctx, "read", "job "+req.GetName(), err)
	}
	return withNextRun(job, time.Now()), nil
}

func (j *jobService) ListJobs(ctx context.Context, req *intakev1.ListJobsRequest) (*intakev1.ListJobsResponse, error) {
	n, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	after, err := decodePageToken("jobs", "", req.GetPageToken())
	if err != nil {
		return nil, err
	}
	mask, err := parseJobReadMask(req.GetReadMask())
	if err != nil {
		return nil, err
	}
	jobs, err := j.s.store.ListJobs(ctx, after, n+1, mask.wants("last_run"))
	if err != nil {
		return nil, j.s.storeError(ctx, "list", "jobs", err)
	}
	resp := &intakev1.ListJobsResponse{Jobs: jobs}
	if len(jobs) > n {
		resp.Jobs = jobs[:n]
		last := resp.Jobs[n-1]
		id, _ := strings.CutPrefix(last.GetName(), "jobs/")
		resp.NextPageToken = encodePageToken("jobs", "", store.Cursor{Time: last.GetCreateTime().AsTime(), ID: id})
	}
	now := time.Now()
	nextRuns := mask.wants("next_run_time") || mask.wants("next_run_times")
	for _, job := range resp.Jobs {
		if nextRuns {
			withNextRun(job, now)
		}
		mask.apply(job)
	}
	return resp, nil
}

// jobReadMask is the set of Job fields a read returns; nil is every field.
type jobReadMask map[protoreflect.Name]bool

// parseJobReadMask checks a read mask of Job's top-level fields.
func parseJobReadMask(m *fieldmaskpb.FieldMask) (jobReadMask, error) {
	if len(m.GetPaths()) == 0 {
		return nil, nil
	}
	fields := (&intakev1.Job{}).ProtoReflect().Descriptor().Fields()
	out := jobReadMask{}
	for i, p := range m.GetPaths() {
		if p == "*" {
			return nil, nil
		}
		if fields.ByName(protoreflect.Name(p)) == nil {
			return nil, badField(fmt.Sprintf("read_mask.paths[%d]", i),
				"%q is not a field of Job (top-level fields only, e.g. name, enabled, schedule)", p)
		}
		out[protoreflect.Name(p)] = true
	}
	return out, nil
}

// wants reports whether the mask keeps the field.
func (m jobReadMask) wants(field protoreflect.Name) bool { return m == nil || m[field] }

// apply clears the fields of job the mask does not keep.
func (m jobReadMask) apply(job *intakev1.Job) {
	if m == nil {
		return
	}
	r := job.ProtoReflect()
	var drop []protoreflect.FieldDescriptor
	r.Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		if !m[fd.Name()] {
			drop = append(drop, fd)
		}
		return true
	})
	for _, fd := range drop {
		r.Clear(fd)
	}
}

func (j *jobService) UpdateJob(ctx context.Context, req *intakev1.UpdateJobRequest) (*intakev1.Job, error) {
	s := j.s
	if req.GetJob() == nil {
		return nil, badField("job", "required")
	}
	id, err := parseJobName("job.name", req.GetJob().GetName())
	if err != nil {
		return nil, err
	}
	paths := req.GetUpdateMask().GetPaths()
	tok, err := s.validationToken(ctx, req.GetValidationToken())
	if err != nil {
		return nil, err
	}
	job, err := s.store.UpdateJob(ctx, id, func(cur *intakev1.Job, v *store.JobValidation) error {
		if etag := req.GetJob().GetEtag(); etag != "" && etag != cur.GetEtag() {
			return status.Errorf(codes.Aborted, "job %s was changed since etag %q (now %q): read it again and retry", cur.GetName(), etag, cur.GetEtag())
		}
		before := jobspec.MappingHash(cur)
		if vs := jobspec.ApplyMaskWithWebhook(cur, req.GetJob(), paths); len(vs) > 0 { // webhook.go: the secret is write only
			return invalid("invalid update_mask", vs)
		}
		if err := s.checkJob(ctx, nil, cur); err != nil {
			return err
		}
		if err := applyValidation(id, cur, v, before, tok); err != nil {
			return err
		}
		return s.ensureNewAttributes(ctx, cur)
	})
	if err != nil {
		return nil, s.storeError(ctx, "update", "job "+store.JobName(id), err)
	}
	s.log.InfoContext(ctx, "job updated", "job", id, "fields", paths)
	// "Save and run": an update that sets run_on_save runs the job.
	if job.GetRunOnSave() && (len(paths) == 0 || slices.Contains(paths, "run_on_save")) {
		return s.runOnSave(ctx, id, job)
	}
	return withNextRun(job, time.Now()), nil
}

func (j *jobService) DeleteJob(ctx context.Context, req *intakev1.DeleteJobRequest) (*emptypb.Empty, error) {
	id, err := parseJobName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	cancelled, err := j.s.store.DeleteJob(ctx, id)
	if err != nil {
		return nil, j.s.storeError(ctx, "delete", "job "+req.GetName(), err)
	}
	for _, run := range cancelled {
		j.s.hub.notify(run.GetName())
		j.s.metrics.runFinished(run)
		j.s.log.InfoContext(ctx, "run cancelled: its job was deleted", "job", id, "run", run.GetName())
	}
	j.s.log.InfoContext(ctx, "job deleted", "job", id, "runs_cancelled", len(cancelled))
	return &emptypb.Empty{}, nil
}

func (j *jobService) RunJob(ctx context.Context, req *intakev1.RunJobRequest) (*intakev1.Run, error) {
	id, err := parseJobName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	job, err := j.s.store.GetJob(ctx, id)
	if err != nil {
		return nil, j.s.storeError(ctx, "read", "job "+req.GetName(), err)
	}
	// issue 4 (files): force is kept with the run.
	return j.s.startRunWith(ctx, id, job, intakev1.Trigger_TRIGGER_RUN_NOW, store.RunOptions{DryRun: req.GetDryRun(), Force: req.GetForce()})
}

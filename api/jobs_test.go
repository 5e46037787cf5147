package api_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/intakehq/intake/pkg/schedule"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

func TestJobCRUD(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)

	in := b.accountsJob("CRM accounts")
	created, err := b.create(t, "crm-accounts", in)
	require.NoError(t, err)
	require.Equal(t, "jobs/crm-accounts", created.GetName())
	require.Equal(t, "CRM accounts", created.GetDisplayName())
	require.NotEmpty(t, created.GetEtag())
	require.NotNil(t, created.GetCreateTime())
	require.Equal(t, created.GetCreateTime().AsTime(), created.GetUpdateTime().AsTime())
	require.Empty(t, created.GetLastRun())
	require.True(t, proto.Equal(in.GetMapping(), created.GetMapping()))
	require.True(t, proto.Equal(in.GetSchedule(), created.GetSchedule()))

	got, err := b.jobs.GetJob(ctx, &intakev1.GetJobRequest{Name: "jobs/crm-accounts"})
	require.NoError(t, err)
	require.True(t, proto.Equal(created, got))

	_, err = b.create(t, "crm-accounts", in)
	requireCode(t, err, codes.AlreadyExists, "job jobs/crm-accounts already exists")

	// Without a job id, one is made up.
	gen, err := b.create(t, "", b.accountsJob("generated"))
	require.NoError(t, err)
	require.Regexp(t, `^jobs/[a-z0-9]{12}$`, gen.GetName())

	_, err = b.jobs.CreateJob(ctx, &intakev1.CreateJobRequest{JobId: "Bad_ID", Job: in})
	st := requireCode(t, err, codes.InvalidArgument, "job_id")
	require.Contains(t, fieldViolations(t, st), "job_id")

	// Update only the display name: the description in the request is ignored.
	upd := proto.Clone(created).(*intakev1.Job)
	upd.DisplayName = "CRM accounts (EU)"
	upd.Description = "not applied"
	updated, err := b.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{Job: upd, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name"}}})
	require.NoError(t, err)
	require.Equal(t, "CRM accounts (EU)", updated.GetDisplayName())
	require.Equal(t, in.GetDescription(), updated.GetDescription())
	require.NotEqual(t, created.GetEtag(), updated.GetEtag())
	require.True(t, updated.GetUpdateTime().AsTime().After(created.GetUpdateTime().AsTime()))
	require.Equal(t, created.GetCreateTime().AsTime(), updated.GetCreateTime().AsTime())

	// Disable scheduling and drop the schedule.
	updated, err = b.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{
		Job:        &intakev1.Job{Name: "jobs/crm-accounts"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"enabled", "schedule"}},
	})
	require.NoError(t, err)
	require.False(t, updated.GetEnabled())
	require.Nil(t, updated.GetSchedule())
	require.Equal(t, "CRM accounts (EU)", updated.GetDisplayName())

	// An empty mask replaces every updatable field.
	full := b.accountsJob("replaced")
	full.Name = "jobs/crm-accounts"
	full.Description = ""
	updated, err = b.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{Job: full})
	require.NoError(t, err)
	require.Equal(t, "replaced", updated.GetDisplayName())
	require.Empty(t, updated.GetDescription())
	require.True(t, updated.GetEnabled())

	// Bad masks, stale etags, and updates that would make the job invalid.
	_, err = b.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{Job: full, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"colour"}}})
	st = requireCode(t, err, codes.InvalidArgument, "update_mask.paths[0]", `unknown field "colour"`)
	require.Contains(t, fieldViolations(t, st), "update_mask.paths[0]")
	_, err = b.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{Job: full, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name", "object"}}})
	requireCode(t, err, codes.InvalidArgument, "update_mask.paths[1]", "cannot be changed")
	_, err = b.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{Job: &intakev1.Job{Name: "jobs/crm-accounts"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"schedule"}}})
	requireCode(t, err, codes.InvalidArgument, "job.schedule: required when the job is enabled")
	stale := proto.Clone(full).(*intakev1.Job)
	stale.Etag = created.GetEtag()
	_, err = b.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{Job: stale})
	requireCode(t, err, codes.Aborted, "jobs/crm-accounts", "etag")
	_, err = b.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{Job: &intakev1.Job{Name: "jobs/nope", DisplayName: "x"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name"}}})
	requireCode(t, err, codes.NotFound, "job jobs/nope not found")
	current, err := b.jobs.GetJob(ctx, &intakev1.GetJobRequest{Name: "jobs/crm-accounts"})
	require.NoError(t, err)
	require.Equal(t, "replaced", current.GetDisplayName(), "a failed update changes nothing")

	_, err = b.jobs.GetJob(ctx, &intakev1.GetJobRequest{Name: "crm-accounts"})
	requireCode(t, err, codes.InvalidArgument, "name", "jobs/{job}")

	_, err = b.jobs.DeleteJob(ctx, &intakev1.DeleteJobRequest{Name: "jobs/crm-accounts"})
	require.NoError(t, err)
	_, err = b.jobs.GetJob(ctx, &intakev1.GetJobRequest{Name: "jobs/crm-accounts"})
	requireCode(t, err, codes.NotFound, "job jobs/crm-accounts not found")
	_, err = b.jobs.DeleteJob(ctx, &intakev1.DeleteJobRequest{Name: "jobs/crm-accounts"})
	requireCode(t, err, codes.NotFound, "job jobs/crm-accounts not found")
}

func TestListJobsPages(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	want := map[string]bool{}
	for i := range 7 {
		want[b.createJob(t, fmt.Sprintf("job-%d", i)).GetName()] = true
	}
	seen := map[string]bool{}
	token, pages := "", 0
	for {
		resp, err := b.jobs.ListJobs(ctx, &intakev1.ListJobsRequest{PageSize: 3, PageToken: token})
		require.NoError(t, err)
		pages++
		require.LessOrEqual(t, len(resp.GetJobs()), 3)
		for _, j := range resp.GetJobs() {
			require.False(t, seen[j.GetName()], "%s listed twice", j.GetName())
			seen[j.GetName()] = true
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	require.Equal(t, want, seen)
	require.Equal(t, 3, pages)

	all, err := b.jobs.ListJobs(ctx, &intakev1.ListJobsRequest{})
	require.NoError(t, err)
	require.Len(t, all.GetJobs(), 7)
	require.Empty(t, all.GetNextPageToken())

	_, err = b.jobs.ListJobs(ctx, &intakev1.ListJobsRequest{PageToken: "garbage"})
	requireCode(t, err, codes.InvalidArgument, "page_token")
	_, err = b.jobs.ListJobs(ctx, &intakev1.ListJobsRequest{PageSize: -1})
	requireCode(t, err, codes.InvalidArgument, "page_size")
}

// ListJobs (the scheduler's poll) serves jobs it decoded before from the
// API's cache while their rows are unchanged: every change of a row shows,
// whichever statement made it, and a deleted job is gone.
func TestListJobsSeesEveryChangeOfARow(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	b.createJob(t, "watched")
	listed := func() *intakev1.Job {
		t.Helper()
		resp, err := b.jobs.ListJobs(ctx, &intakev1.ListJobsRequest{})
		require.NoError(t, err)
		require.Len(t, resp.GetJobs(), 1)
		got, err := b.jobs.GetJob(ctx, &intakev1.GetJobRequest{Name: "jobs/watched"})
		require.NoError(t, err)
		j := resp.GetJobs()[0]
		require.True(t, proto.Equal(got, j), "ListJobs %v, GetJob %v", j, got)
		return j
	}
	first := listed()
	require.Empty(t, first.GetLastRun())
	require.True(t, proto.Equal(first, listed()), "listed twice, unchanged")

	_, err := b.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{Job: &intakev1.Job{Name: "jobs/watched", Description: "edited"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"description"}}})
	require.NoError(t, err)
	require.Equal(t, "edited", listed().GetDescription())

	_, err = b.jobs.SetJobEnabled(ctx, &intakev1.SetJobEnabledRequest{Name: "jobs/watched", Enabled: false})
	require.NoError(t, err)
	require.False(t, listed().GetEnabled())

	// A change that leaves the etag and update time alone.
	_, err = pgPool(t, b.dsn).Exec(ctx, `UPDATE intake.jobs SET consecutive_failures = 3 WHERE id = 'watched'`)
	require.NoError(t, err)
	require.EqualValues(t, 3, listed().GetConsecutiveFailures())

	// A run: the job's last run shows, though its row is unchanged.
	run := b.runNow(t, "jobs/watched")
	require.Equal(t, run.GetName(), listed().GetLastRun())

	_, err = b.jobs.DeleteJob(ctx, &intakev1.DeleteJobRequest{Name: "jobs/watched"})
	require.NoError(t, err)
	resp, err := b.jobs.ListJobs(ctx, &intakev1.ListJobsRequest{})
	require.NoError(t, err)
	require.Empty(t, resp.GetJobs())
}

// A read mask returns only the named fields of each listed job (the
// scheduler's poll asks for what decides a schedule), pages as without it,
// and a field Job does not have is refused, named.
func TestListJobsReadMask(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	for i := range 3 {
		b.createJob(t, fmt.Sprintf("masked-%d", i))
	}
	mask := &fieldmaskpb.FieldMask{Paths: []string{"name", "enabled", "schedule", "update_time"}}
	var names []string
	token := ""
	for {
		resp, err := b.jobs.ListJobs(ctx, &intakev1.ListJobsRequest{PageSize: 2, PageToken: token, ReadMask: mask})
		require.NoError(t, err)
		for _, j := range resp.GetJobs() {
			full, err := b.jobs.GetJob(ctx, &intakev1.GetJobRequest{Name: j.GetName()})
			require.NoError(t, err)
			want := &intakev1.Job{Name: full.GetName(), Enabled: full.GetEnabled(), Schedule: full.GetSchedule(), UpdateTime: full.GetUpdateTime()}
			require.True(t, proto.Equal(want, j), "listed %v, want %v", j, want)
			require.NotNil(t, j.GetSchedule().GetCadence())
			names = append(names, j.GetName())
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	require.Equal(t, []string{"jobs/masked-0", "jobs/masked-1", "jobs/masked-2"}, names)

	all, err := b.jobs.ListJobs(ctx, &intakev1.ListJobsRequest{ReadMask: &fieldmaskpb.FieldMask{Paths: []string{"*"}}})
	require.NoError(t, err)
	require.NotEmpty(t, all.GetJobs()[0].GetMapping().GetEntries(), "* is every field")
	require.NotEmpty(t, all.GetJobs()[0].GetNextRunTimes())

	_, err = b.jobs.ListJobs(ctx, &intakev1.ListJobsRequest{ReadMask: &fieldmaskpb.FieldMask{Paths: []string{"name", "schedule.cadence"}}})
	requireCode(t, err, codes.InvalidArgument, "read_mask.paths[1]")
}

func TestCreateJobValidation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	usersJob := func() *intakev1.Job {
		j := b.accountsJob("users")
		j.Object = intakev1.ObjectType_OBJECT_TYPE_USERS
		j.Mapping.Entries = []*intakev1.MappingEntry{
			{Attribute: "account_id", Source: &intakev1.MappingEntry_Column{Column: "Account"}},
			{Attribute: "user_id", Source: &intakev1.MappingEntry_Column{Column: "User"}},
		}
		return j
	}
	for name, tc := range map[string]struct {
		change      func(j *intakev1.Job)
		field, want string
	}{
		"hour out of range": {func(j *intakev1.Job) { j.Schedule.GetDaily().Hour = 25 },
			"job.schedule.daily.hour", "25 is not an hour (0-23)"},
		"minute out of range": {func(j *intakev1.Job) { j.Schedule.GetDaily().Minute = 60 },
			"job.schedule.daily.minute", "60 is not a minute (0-59)"},
		"every zero minutes": {func(j *intakev1.Job) {
			j.Schedule.Cadence = &intakev1.Schedule_EveryMinutes{EveryMinutes: &intakev1.EveryMinutes{Minutes: 0}}
		}, "job.schedule.every_minutes.minutes", "0 is out of range (1-1440)"},
		"every too many minutes": {func(j *intakev1.Job) {
			j.Schedule.Cadence = &intakev1.Schedule_EveryMinutes{EveryMinutes: &intakev1.EveryMinutes{Minutes: 1441}}
		}, "job.schedule.every_minutes.minutes", "1441 is out of range"},
		"unknown time zone": {func(j *intakev1.Job) { j.Schedule.TimeZone = "Mars/Olympus" },
			"job.schedule.time_zone", `unknown time zone "Mars/Olympus"`},
		"no cadence": {func(j *intakev1.Job) { j.Schedule.Cadence = nil },
			"job.schedule", "a cadence is required"},
		"enabled without schedule": {func(j *intakev1.Job) { j.Schedule = nil },
			"job.schedule", "required when the job is enabled"},
		"missing key mapping": {func(j *intakev1.Job) {
			j.Object = intakev1.ObjectType_OBJECT_TYPE_USERS
			j.Mapping.Entries = usersJob().Mapping.Entries[:1]
		}, "job.mapping.entries", `key attribute user_id is not mapped`},
		"unknown attribute": {func(j *intakev1.Job) { j.Mapping.Entries[1].Attribute = "colour" },
			"job.mapping.entries[1].attribute", `entry 2: accounts has no attribute "colour"; its attributes are: account_id, name`},
		"duplicate attribute": {func(j *intakev1.Job) { j.Mapping.Entries[2].Attribute = "name" },
			"job.mapping.entries[2].attribute", `attribute name is mapped twice (entries 2 and 3)`},
		"entry without source": {func(j *intakev1.Job) { j.Mapping.Entries[1].Source = nil },
			"job.mapping.entries[1]", "entry 2 (attribute name) has neither a column, a constant nor a function"},
		"bad date format": {func(j *intakev1.Job) {
			j.Mapping.Entries = append(j.Mapping.Entries, &intakev1.MappingEntry{Attribute: "created_date",
				Source: &intakev1.MappingEntry_Column{Column: "Created"}, SourceFormat: "dd/qq/yyyy"})
		}, "job.mapping.entries[3].source_format", "entry 4 (attribute created_date): source format"},
		"negative error budget": {func(j *intakev1.Job) {
			j.ErrorBudget = &intakev1.ErrorBudget{Limit: &intakev1.ErrorBudget_MaxRejectedRows{MaxRejectedRows: -5}}
		}, "job.error_budget.max_rejected_rows", "-5 is negative"},
		"error budget over 100%": {func(j *intakev1.Job) {
			j.ErrorBudget = &intakev1.ErrorBudget{Limit: &intakev1.ErrorBudget_MaxRejectedPercent{MaxRejectedPercent: 120}}
		}, "job.error_budget.max_rejected_percent", "120 is not a percentage (0-100)"},
		"negative keep_runs": {func(j *intakev1.Job) { j.Retention = &intakev1.RetentionPolicy{KeepRuns: -1} },
			"job.retention.keep_runs", "-1 is negative"},
		"negative keep_days": {func(j *intakev1.Job) { j.Retention = &intakev1.RetentionPolicy{KeepRuns: 3, KeepDays: -7} },
			"job.retention.keep_days", "-7 is negative"},
		"no display name": {func(j *intakev1.Job) { j.DisplayName = " " },
			"job.display_name", "required"},
		"no object": {func(j *intakev1.Job) { j.Object = intakev1.ObjectType_OBJECT_TYPE_UNSPECIFIED },
			"job.object", "required"},
		"unknown object": {func(j *intakev1.Job) { j.Object = 42 },
			"job.object", "unknown object 42"},
		"no connection": {func(j *intakev1.Job) { j.Connection = nil },
			"job.connection", "required"},
		"ftp url": {func(j *intakev1.Job) { j.Connection.GetHttp().Url = "ftp://files.example.com/a.csv" },
			"job.connection.http.url", "the scheme must be http or https"},
		"url without host": {func(j *intakev1.Job) { j.Connection.GetHttp().Url = "https:///a.csv" },
			"job.connection.http.url", "has no host"},
		"long delimiter": {func(j *intakev1.Job) { j.Mapping.Dialect = &intakev1.CsvDialect{Delimiter: ";;"} },
			"job.mapping.dialect.delimiter", `the delimiter ";;" is not one character`},
	} {
		job := b.accountsJob("validation")
		tc.change(job)
		_, err := b.jobs.CreateJob(ctx, &intakev1.CreateJobRequest{Job: job})
		st := requireCode(t, err, codes.InvalidArgument, tc.field+": ", tc.want)
		fv := fieldViolations(t, st)
		require.Contains(t, fv, tc.field, name)
		require.Contains(t, fv[tc.field], tc.want, name)
	}

	// Several problems at once are all reported.
	job := b.accountsJob("many")
	job.Schedule.GetDaily().Hour = 24
	job.Mapping.Entries[0].Attribute = "account"
	_, err := b.jobs.CreateJob(ctx, &intakev1.CreateJobRequest{Job: job})
	st := requireCode(t, err, codes.InvalidArgument)
	fv := fieldViolations(t, st)
	require.Contains(t, fv, "job.schedule.daily.hour")
	require.Contains(t, fv, "job.mapping.entries[0].attribute")
	require.Contains(t, fv, "job.mapping.entries")

	// Local files are for development only.
	local := b.accountsJob("local")
	local.Connection = &intakev1.Connection{Kind: &intakev1.Connection_Local{Local: &intakev1.LocalConnection{Path: "/data/a.csv"}}}
	_, err = b.jobs.CreateJob(ctx, &intakev1.CreateJobRequest{Job: local})
	requireCode(t, err, codes.FailedPrecondition, "job.connection.local", "development mode")

	// Nothing invalid was stored.
	list, err := b.jobs.ListJobs(ctx, &intakev1.ListJobsRequest{})
	require.NoError(t, err)
	require.Empty(t, list.GetJobs())

	// A disabled job needs no schedule.
	ok := b.accountsJob("manual only")
	ok.Enabled, ok.Schedule = false, nil
	_, err = b.jobs.CreateJob(ctx, &intakev1.CreateJobRequest{Job: ok})
	require.NoError(t, err)
	ok = usersJob()
	ok.Connection.GetHttp().Url = b.files.setFile("/users.csv", "Account,User\nA-1,u-1\n")
	_, err = b.create(t, "", ok)
	require.NoError(t, err)
}

func TestLocalConnectionInDevMode(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{devMode: true})
	path := filepath.Join(t.TempDir(), "a.csv")
	require.NoError(t, os.WriteFile(path, []byte(accountsCSV), 0o600))
	local := b.accountsJob("local")
	local.Connection = &intakev1.Connection{Kind: &intakev1.Connection_Local{Local: &intakev1.LocalConnection{Path: path}}}
	job, err := b.create(t, "", local)
	require.NoError(t, err)
	require.Equal(t, path, job.GetConnection().GetLocal().GetPath())

	local.Connection.GetLocal().Path = "data/a.csv"
	_, err = b.jobs.CreateJob(testCtx(t), &intakev1.CreateJobRequest{Job: local})
	requireCode(t, err, codes.InvalidArgument, "job.connection.local.path", "not an absolute path")
}

// A job shows when its schedule fires next (the time the scheduler fires
// it: pkg/schedule), in every response that returns it; a disabled job
// shows none.
func TestJobNextRunTime(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	berlin, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)

	// next checks that job's next_run_time is the first fire time of its
	// schedule after some instant in [from, time.Now()].
	next := func(job *intakev1.Job, from time.Time) time.Time {
		t.Helper()
		require.NotNil(t, job.GetNextRunTime(), "next_run_time of %s", job.GetName())
		got := job.GetNextRunTime().AsTime()
		want, err := schedule.NextRuns(job.GetSchedule(), from, 1)
		require.NoError(t, err)
		if !got.Equal(want[0]) {
			// A fire time passed during the call.
			want, err = schedule.NextRuns(job.GetSchedule(), time.Now(), 1)
			require.NoError(t, err)
			require.True(t, got.Equal(want[0]), "next_run_time %s, want %s", got, want[0])
		}
		require.True(t, got.After(from), "next_run_time %s is not after %s", got, from)
		return got
	}

	// Daily at 06:30 in Berlin: within a day, at 06:30 Berlin time.
	start := time.Now()
	daily, err := b.create(t, "daily", b.accountsJob("daily"))
	require.NoError(t, err)
	at := next(daily, start).In(berlin)
	require.Equal(t, [2]int{6, 30}, [2]int{at.Hour(), at.Minute()})
	require.LessOrEqual(t, at.Sub(start), 25*time.Hour)

	got, err := b.jobs.GetJob(ctx, &intakev1.GetJobRequest{Name: "jobs/daily"})
	require.NoError(t, err)
	require.True(t, at.Equal(next(got, start)))

	// Every 15 minutes: on a quarter hour, within 15 minutes.
	every := b.accountsJob("every")
	every.Schedule = &intakev1.Schedule{TimeZone: "America/New_York", Cadence: &intakev1.Schedule_EveryMinutes{
		EveryMinutes: &intakev1.EveryMinutes{Minutes: 15},
	}}
	start = time.Now()
	created, err := b.create(t, "every", every)
	require.NoError(t, err)
	tick := next(created, start)
	require.Zero(t, tick.Unix()%(15*60), "%s is not on a quarter hour", tick)
	require.LessOrEqual(t, time.Until(tick), 15*time.Minute)

	// Disabled jobs do not fire, with or without a schedule.
	off := b.accountsJob("off")
	off.Enabled = false
	disabled, err := b.jobs.CreateJob(ctx, &intakev1.CreateJobRequest{JobId: "off", Job: off})
	require.NoError(t, err)
	require.Nil(t, disabled.GetNextRunTime())
	manual := b.accountsJob("manual")
	manual.Enabled, manual.Schedule = false, nil
	manualJob, err := b.jobs.CreateJob(ctx, &intakev1.CreateJobRequest{JobId: "manual", Job: manual})
	require.NoError(t, err)
	require.Nil(t, manualJob.GetNextRunTime())

	// A client cannot set it.
	forged := b.accountsJob("forged")
	forged.Enabled = false
	forged.NextRunTime = timestamppb.New(time.Now().Add(time.Hour))
	forgedJob, err := b.jobs.CreateJob(ctx, &intakev1.CreateJobRequest{JobId: "forged", Job: forged})
	require.NoError(t, err)
	require.Nil(t, forgedJob.GetNextRunTime())

	start = time.Now()
	list, err := b.jobs.ListJobs(ctx, &intakev1.ListJobsRequest{})
	require.NoError(t, err)
	byName := map[string]*intakev1.Job{}
	for _, j := range list.GetJobs() {
		byName[j.GetName()] = j
	}
	require.Len(t, byName, 5)
	next(byName["jobs/daily"], start)
	next(byName["jobs/every"], start)
	for _, name := range []string{"jobs/off", "jobs/manual", "jobs/forged"} {
		require.Nil(t, byName[name].GetNextRunTime(), name)
	}

	// Disabling clears it; enabling with a new schedule sets it again.
	updated, err := b.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{
		Job:        &intakev1.Job{Name: "jobs/daily", Enabled: false},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"enabled"}},
	})
	require.NoError(t, err)
	require.Nil(t, updated.GetNextRunTime())
	start = time.Now()
	updated, err = b.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{
		Job: &intakev1.Job{Name: "jobs/daily", Enabled: true, Schedule: &intakev1.Schedule{
			Cadence: &intakev1.Schedule_EveryMinutes{EveryMinutes: &intakev1.EveryMinutes{Minutes: 5}},
		}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"enabled", "schedule"}},
	})
	require.NoError(t, err)
	tick = next(updated, start)
	require.Zero(t, tick.Unix()%(5*60), "%s is not on a multiple of 5 minutes", tick)
}

// Output-only fields a client sends are ignored: a job is not created
// disabled by the failure policy, validated, or with made-up fire times,
// and none of them travels with its runs. Retention is a setting like any
// other: saved, updated by mask, and part of a full update.
func TestOutputOnlyFieldsAndRetention(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	past := timestamppb.New(time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC))
	in := b.accountsJob("sent with output fields")
	in.Enabled = false
	in.NextRunTime, in.NextRunTimes = past, []*timestamppb.Timestamp{past}
	in.DisabledReason, in.ConsecutiveFailures = "disabled by the client", 7
	in.MappingValidated, in.MappingValidateTime = true, past
	in.LastRun, in.CreateTime, in.UpdateTime = "jobs/other/runs/r1", past, past
	in.Retention = &intakev1.RetentionPolicy{KeepRuns: 5}
	created, err := b.jobs.CreateJob(ctx, &intakev1.CreateJobRequest{JobId: "out", Job: in})
	require.NoError(t, err)
	check := func(job *intakev1.Job) {
		t.Helper()
		require.Nil(t, job.GetNextRunTime())
		require.Empty(t, job.GetNextRunTimes())
		require.Empty(t, job.GetDisabledReason())
		require.Zero(t, job.GetConsecutiveFailures())
		require.False(t, job.GetMappingValidated())
		require.Nil(t, job.GetMappingValidateTime())
		require.NotEqual(t, past.AsTime(), job.GetCreateTime().AsTime())
		require.NotEqual(t, "jobs/other/runs/r1", job.GetLastRun())
	}
	check(created)
	got, err := b.jobs.GetJob(ctx, &intakev1.GetJobRequest{Name: "jobs/out"})
	require.NoError(t, err)
	check(got)
	require.EqualValues(t, 5, got.GetRetention().GetKeepRuns())

	// An update ignores them too (full update: empty mask), and sets retention.
	upd := proto.Clone(in).(*intakev1.Job)
	upd.Name, upd.Retention = "jobs/out", &intakev1.RetentionPolicy{KeepRuns: 2, KeepDays: 30}
	updated, err := b.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{Job: upd})
	require.NoError(t, err)
	check(updated)
	require.True(t, proto.Equal(&intakev1.RetentionPolicy{KeepRuns: 2, KeepDays: 30}, updated.GetRetention()))
	updated, err = b.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{Job: &intakev1.Job{Name: "jobs/out"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"retention"}}})
	require.NoError(t, err)
	require.Nil(t, updated.GetRetention(), "cleared: the server's default applies")
	_, err = b.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{Job: &intakev1.Job{Name: "jobs/out",
		Retention: &intakev1.RetentionPolicy{KeepDays: -1}}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"retention"}}})
	st := requireCode(t, err, codes.InvalidArgument, "job.retention.keep_days")
	require.Contains(t, fieldViolations(t, st), "job.retention.keep_days")

	// The job a run request carries has none of them.
	b.runNow(t, "jobs/out")
	reqs := b.runRequests(t)
	require.Len(t, reqs, 1)
	require.Empty(t, reqs[0].GetJob().GetNextRunTimes())
	require.Empty(t, reqs[0].GetJob().GetDisabledReason())
	require.Zero(t, reqs[0].GetJob().GetConsecutiveFailures())
}

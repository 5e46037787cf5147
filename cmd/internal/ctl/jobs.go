package ctl

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/intakehq/intake/cmd/internal/command"
	"github.com/intakehq/intake/cmd/internal/jobfile"
	"github.com/intakehq/intake/cmd/internal/runview"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// readJob reads -f and settles the job's id: --id, else the file's name.
func (c *cli) readJob() (*intakev1.Job, string, error) {
	if c.file == "" {
		return nil, "", command.Usagef("-f FILE is required (a YAML or JSON job; see examples/demo-accounts.yaml)")
	}
	job, err := jobfile.Read(c.file, c.sys.Stdin)
	if err != nil {
		return nil, "", err
	}
	id := c.id
	if id == "" && job.GetName() != "" {
		name, err := JobName(job.GetName())
		if err != nil {
			return nil, "", fmt.Errorf("%s: name: %w", c.file, err)
		}
		id = strings.TrimPrefix(name, "jobs/")
	}
	return job, id, nil
}

func (c *cli) jobCreate(ctx context.Context, _ []string) error {
	job, id, err := c.readJob()
	if err != nil {
		return err
	}
	job.Name = ""
	ctx, cancel := c.call(ctx)
	defer cancel()
	created, err := c.jobs.CreateJob(ctx, &intakev1.CreateJobRequest{Job: job, JobId: id})
	if err != nil {
		return c.apiError("create job", err)
	}
	if c.output == "json" {
		return c.printJSON(created)
	}
	fmt.Fprintln(c.sys.Stdout, created.GetName())
	return nil
}

func (c *cli) jobUpdate(ctx context.Context, _ []string) error {
	job, id, err := c.readJob()
	if err != nil {
		return err
	}
	if id == "" {
		return command.Usagef("which job? give --id ID or a name (jobs/ID) in %s", c.file)
	}
	job.Name = "jobs/" + id
	ctx, cancel := c.call(ctx)
	defer cancel()
	updated, err := c.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{Job: job})
	if err != nil {
		return c.apiError("update job", err)
	}
	if c.output == "json" {
		return c.printJSON(updated)
	}
	fmt.Fprintln(c.sys.Stdout, updated.GetName())
	return nil
}

func (c *cli) jobList(ctx context.Context, _ []string) error {
	ctx, cancel := c.call(ctx)
	defer cancel()
	all := &intakev1.ListJobsResponse{}
	for token := ""; ; {
		resp, err := c.jobs.ListJobs(ctx, &intakev1.ListJobsRequest{PageSize: 100, PageToken: token})
		if err != nil {
			return c.apiError("list jobs", err)
		}
		all.Jobs = append(all.Jobs, resp.GetJobs()...)
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	if c.output == "json" {
		return c.printJSON(all)
	}
	tw := tabwriter.NewWriter(c.sys.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tDISPLAY NAME\tOBJECT\tSCHEDULE\tENABLED\tNEXT RUN\tLAST RUN")
	for _, j := range all.GetJobs() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", j.GetName(), dash(j.GetDisplayName()), Object(j.GetObject()),
			Schedule(j.GetSchedule()), yesNo(j.GetEnabled()), timeOrDash(j.GetNextRunTime().AsTime(), j.GetNextRunTime() != nil), dash(j.GetLastRun()))
	}
	return tw.Flush()
}

func (c *cli) jobGet(ctx context.Context, args []string) error {
	name, err := JobName(args[0])
	if err != nil {
		return command.Usagef("%v", err)
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	j, err := c.jobs.GetJob(ctx, &intakev1.GetJobRequest{Name: name})
	if err != nil {
		return c.apiError("get job "+name, err)
	}
	if c.output == "json" {
		return c.printJSON(j)
	}
	w := c.sys.Stdout
	fmt.Fprintf(w, "Name:         %s\n", j.GetName())
	fmt.Fprintf(w, "Display name: %s\n", dash(j.GetDisplayName()))
	if j.GetDescription() != "" {
		fmt.Fprintf(w, "Description:  %s\n", j.GetDescription())
	}
	fmt.Fprintf(w, "Object:       %s\n", Object(j.GetObject()))
	fmt.Fprintf(w, "Source:       %s\n", Source(j.GetConnection()))
	fmt.Fprintf(w, "Schedule:     %s\n", Schedule(j.GetSchedule()))
	fmt.Fprintf(w, "Enabled:      %s\n", yesNo(j.GetEnabled()))
	fmt.Fprintf(w, "New records:  %s\n", map[bool]string{true: "created", false: "ignored"}[j.GetAllowNewRecords()])
	if t := j.GetNextRunTime(); t != nil {
		fmt.Fprintf(w, "Next run:     %s\n", runview.Time(t.AsTime()))
	}
	if j.GetLastRun() != "" {
		fmt.Fprintf(w, "Last run:     %s\n", j.GetLastRun())
	}
	if t := j.GetUpdateTime(); t != nil {
		fmt.Fprintf(w, "Updated:      %s\n", runview.Time(t.AsTime()))
	}
	fmt.Fprintln(w, "Mapping:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  ATTRIBUTE\tSOURCE\tFORMAT\tNOTE")
	for _, e := range j.GetMapping().GetEntries() {
		src := fmt.Sprintf("column %q", e.GetColumn())
		if _, ok := e.GetSource().(*intakev1.MappingEntry_Constant); ok {
			src = fmt.Sprintf("constant %q", e.GetConstant())
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", e.GetAttribute(), src, dash(e.GetSourceFormat()), e.GetNote())
	}
	return tw.Flush()
}

func (c *cli) jobDelete(ctx context.Context, args []string) error {
	name, err := JobName(args[0])
	if err != nil {
		return command.Usagef("%v", err)
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	if _, err := c.jobs.DeleteJob(ctx, &intakev1.DeleteJobRequest{Name: name}); err != nil {
		return c.apiError("delete job "+name, err)
	}
	if c.output == "table" {
		fmt.Fprintf(c.sys.Stdout, "deleted %s\n", name)
	}
	return nil
}

func (c *cli) jobRun(ctx context.Context, args []string) error {
	name, err := JobName(args[0])
	if err != nil {
		return command.Usagef("%v", err)
	}
	cctx, cancel := c.call(ctx)
	defer cancel()
	run, err := c.jobs.RunJob(cctx, &intakev1.RunJobRequest{Name: name})
	if err != nil {
		return c.apiError("run job "+name, err)
	}
	if c.watch {
		if c.output == "table" {
			fmt.Fprintf(c.sys.Stdout, "started %s\n", run.GetName())
		}
		return c.watchRun(ctx, run.GetName())
	}
	if c.output == "json" {
		return c.printJSON(run)
	}
	fmt.Fprintln(c.sys.Stdout, run.GetName())
	return nil
}

// Object is the lowercase name of an object: "accounts".
func Object(o intakev1.ObjectType) string {
	if o == intakev1.ObjectType_OBJECT_TYPE_UNSPECIFIED {
		return "-"
	}
	return strings.ToLower(strings.TrimPrefix(o.String(), "OBJECT_TYPE_"))
}

// Schedule is a cadence in words: "every 5 minutes (UTC)".
func Schedule(s *intakev1.Schedule) string {
	var c string
	switch {
	case s.GetEveryMinutes() != nil:
		n := s.GetEveryMinutes().GetMinutes()
		c = fmt.Sprintf("every %d minutes", n)
		if n == 1 {
			c = "every minute"
		}
	case s.GetDaily() != nil:
		c = fmt.Sprintf("daily at %02d:%02d", s.GetDaily().GetHour(), s.GetDaily().GetMinute())
	default:
		return "-"
	}
	tz := s.GetTimeZone()
	if tz == "" {
		tz = "UTC"
	}
	return c + " (" + tz + ")"
}

// Source is where a job reads its file.
func Source(c *intakev1.Connection) string {
	switch {
	case c.GetHttp() != nil:
		return c.GetHttp().GetUrl()
	case c.GetLocal() != nil:
		return "file://" + c.GetLocal().GetPath()
	}
	return "-"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func timeOrDash(t time.Time, ok bool) string {
	if !ok {
		return "-"
	}
	return runview.Time(t)
}

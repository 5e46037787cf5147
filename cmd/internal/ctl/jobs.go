package ctl

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/intakehq/intake/cmd/internal/command"
	"github.com/intakehq/intake/cmd/internal/jobfile"
	"github.com/intakehq/intake/cmd/internal/mappingview"
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
	if err := c.applyJobConnection(job); err != nil { // --connection, --path, --pattern (connections.go)
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
	token, err := c.validateForSave(ctx, "", job, "created")
	if err != nil {
		return err
	}
	created, err := c.jobs.CreateJob(ctx, &intakev1.CreateJobRequest{Job: job, JobId: id, ValidationToken: token})
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
	token, err := c.validateForSave(ctx, job.Name, job, "updated")
	if err != nil {
		return err
	}
	updated, err := c.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{Job: job, ValidationToken: token})
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
	fmt.Fprintf(w, "Source:       %s\n", jobSource(j)) // connections.go
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
	if b := ErrorBudget(j.GetErrorBudget()); b != "" {
		fmt.Fprintf(w, "Error budget: %s\n", b)
	}
	validated := "no"
	if j.GetMappingValidated() {
		validated = "yes"
		if t := j.GetMappingValidateTime(); t != nil {
			validated += ", " + runview.Time(t.AsTime())
		}
	}
	fmt.Fprintf(w, "Validated:    %s\n", validated)
	printJobOps(w, j) // jobops.go
	if d := Dialect(j.GetMapping().GetDialect()); d != "" {
		fmt.Fprintf(w, "Dialect:      %s\n", d)
	}
	fmt.Fprintln(w, "Mapping:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  ATTRIBUTE\tSOURCE\tFORMAT\tNOTE")
	for _, e := range j.GetMapping().GetEntries() {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", e.GetAttribute(), EntrySource(e), dash(e.GetSourceFormat()), oneLine(e.GetNote(), 80))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if nas := j.GetMapping().GetNewAttributes(); len(nas) > 0 {
		fmt.Fprintln(w, "New attributes (created with the job):")
		for _, a := range nas {
			fmt.Fprintf(w, "  %s\n", NewAttribute(a))
		}
	}
	return nil
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
	run, err := c.jobs.RunJob(cctx, &intakev1.RunJobRequest{Name: name, DryRun: c.dryRun, Force: c.force})
	if err != nil {
		return c.apiError("run job "+name, err)
	}
	if c.watch {
		if c.output == "table" {
			what := "started"
			if run.GetDryRun() || c.dryRun {
				what = "started a dry run (nothing will change)"
			}
			fmt.Fprintf(c.sys.Stdout, "%s %s\n", what, run.GetName())
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

// Schedule is a cadence in words: "every 5 minutes (UTC)", "weekly on Mon,
// Thu at 06:30 (Europe/Berlin)", "cron \"30 6 * * 1-5\" (UTC)".
func Schedule(s *intakev1.Schedule) string {
	var c string
	switch {
	case s.GetEveryMinutes() != nil:
		n := s.GetEveryMinutes().GetMinutes()
		c = fmt.Sprintf("every %d minutes", n)
		if n == 1 {
			c = "every minute"
		}
	case s.GetHourly() != nil:
		c = fmt.Sprintf("hourly at :%02d", s.GetHourly().GetMinute())
	case s.GetDaily() != nil:
		c = fmt.Sprintf("daily at %02d:%02d", s.GetDaily().GetHour(), s.GetDaily().GetMinute())
	case s.GetWorkdays() != nil:
		c = fmt.Sprintf("workdays (Mon-Fri) at %02d:%02d", s.GetWorkdays().GetHour(), s.GetWorkdays().GetMinute())
	case s.GetWeekly() != nil:
		w := s.GetWeekly()
		days := make([]string, len(w.GetDays()))
		for i, d := range w.GetDays() {
			days[i] = strings.TrimPrefix(d.String(), "WEEKDAY_")
			if len(days[i]) > 3 {
				days[i] = days[i][:1] + strings.ToLower(days[i][1:3])
			}
		}
		c = fmt.Sprintf("weekly on %s at %02d:%02d", strings.Join(days, ", "), w.GetHour(), w.GetMinute())
	case s.GetMonthly() != nil:
		m := s.GetMonthly()
		day := fmt.Sprintf("day %d", m.GetDay())
		if m.GetLastDay() {
			day = "the last day"
		}
		c = fmt.Sprintf("monthly on %s at %02d:%02d", day, m.GetHour(), m.GetMinute())
	case s.GetCron() != nil:
		c = fmt.Sprintf("cron %q", s.GetCron().GetExpression())
	default:
		return "-"
	}
	tz := s.GetTimeZone()
	if tz == "" {
		tz = "UTC"
	}
	return c + " (" + tz + ")"
}

// EntrySource is where a mapping entry takes its value: `column "Name"`,
// `constant "customer"`, `function col["First"] + " " + col["Last"]`.
func EntrySource(e *intakev1.MappingEntry) string {
	switch e.GetSource().(type) {
	case *intakev1.MappingEntry_Column:
		return fmt.Sprintf("column %q", e.GetColumn())
	case *intakev1.MappingEntry_Constant:
		return fmt.Sprintf("constant %q", e.GetConstant())
	case *intakev1.MappingEntry_Function:
		return "function " + oneLine(e.GetFunction(), 80)
	}
	return "-"
}

// NewAttribute is a declared new attribute in words: "segment (text)".
func NewAttribute(a *intakev1.NewAttribute) string {
	s := fmt.Sprintf("%s (%s", a.GetAttributeId(), AttributeType(a.GetType()))
	if a.GetReferences() != "" {
		s += " → " + a.GetReferences()
	}
	s += ")"
	if a.GetDisplayName() != "" {
		s += fmt.Sprintf(" %q", a.GetDisplayName())
	}
	return s
}

// ErrorBudget is a job's error budget in words; empty when it has none.
func ErrorBudget(b *intakev1.ErrorBudget) string {
	switch l := b.GetLimit().(type) {
	case *intakev1.ErrorBudget_MaxRejectedRows:
		return fmt.Sprintf("at most %d rejected rows per run", l.MaxRejectedRows)
	case *intakev1.ErrorBudget_MaxRejectedPercent:
		return fmt.Sprintf("at most %g%% of the rows rejected per run", l.MaxRejectedPercent)
	}
	return ""
}

// Dialect is the CSV options a job sets, in words; empty when it sets none.
func Dialect(d *intakev1.CsvDialect) string {
	var parts []string
	if d.GetDelimiter() != "" {
		parts = append(parts, "delimiter "+mappingview.Delimiter(d.GetDelimiter()))
	}
	if d.GetEncoding() != "" {
		parts = append(parts, "encoding "+d.GetEncoding())
	}
	if d.GetHeaderRow() > 1 {
		parts = append(parts, fmt.Sprintf("header on row %d", d.GetHeaderRow()))
	}
	if d.GetSkipRows() > 0 {
		parts = append(parts, fmt.Sprintf("%d rows skipped after the header", d.GetSkipRows()))
	}
	if d.GetQuote() != "" {
		parts = append(parts, fmt.Sprintf("quote %q", d.GetQuote()))
	}
	if d.GetEscape() != "" {
		parts = append(parts, fmt.Sprintf("escape %q", d.GetEscape()))
	}
	if len(d.GetNullValues()) > 0 {
		parts = append(parts, fmt.Sprintf("null values %q", d.GetNullValues()))
	}
	if d.GetTrimSpace() {
		parts = append(parts, "values trimmed")
	}
	if d.GetCompression() != intakev1.Compression_COMPRESSION_AUTO {
		parts = append(parts, strings.ToLower(strings.TrimPrefix(d.GetCompression().String(), "COMPRESSION_"))+" compression")
	}
	return strings.Join(parts, ", ")
}

// Source is where a job with an inline connection reads its file (for a
// stored connection, see jobSource).
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

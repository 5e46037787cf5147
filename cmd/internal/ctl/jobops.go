package ctl

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/intakehq/intake/cmd/internal/command"
	"github.com/intakehq/intake/cmd/internal/mappingview"
	"github.com/intakehq/intake/cmd/internal/runview"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// Job operations (duplicate, enable, disable), run cancel and the filters
// of run list.

func (c *cli) jobDuplicate(ctx context.Context, args []string) error {
	name, err := JobName(args[0])
	if err != nil {
		return command.Usagef("%v", err)
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	job, err := c.jobs.DuplicateJob(ctx, &intakev1.DuplicateJobRequest{Name: name, NewJobId: strings.TrimPrefix(c.id, "jobs/")})
	if err != nil {
		return c.apiError("duplicate job "+name, err)
	}
	if c.output == "json" {
		return c.printJSON(job)
	}
	fmt.Fprintln(c.sys.Stdout, job.GetName())
	fmt.Fprintf(c.sys.Stderr, "%q is saved disabled; enable it with: intakectl job enable %s\n",
		job.GetDisplayName(), strings.TrimPrefix(job.GetName(), "jobs/"))
	return nil
}

func (c *cli) jobEnable(ctx context.Context, args []string) error {
	return c.setEnabled(ctx, args[0], true)
}
func (c *cli) jobDisable(ctx context.Context, args []string) error {
	return c.setEnabled(ctx, args[0], false)
}

// setEnabled enables or disables a job's schedule. A job is enabled only
// with a validated mapping: when its mapping has not passed, it is
// validated first against the job's file, and the findings are printed
// when it does not pass (exit code 1, the job stays disabled).
func (c *cli) setEnabled(ctx context.Context, arg string, enabled bool) error {
	name, err := JobName(arg)
	if err != nil {
		return command.Usagef("%v", err)
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	req := &intakev1.SetJobEnabledRequest{Name: name, Enabled: enabled}
	if enabled {
		saved, err := c.jobs.GetJob(ctx, &intakev1.GetJobRequest{Name: name})
		if err != nil {
			return c.apiError("get job "+name, err)
		}
		if !saved.GetMappingValidated() {
			resp, err := c.jobs.ValidateMapping(ctx, &intakev1.ValidateMappingRequest{Name: name})
			if err != nil {
				return c.apiError("validate the mapping of "+name, err)
			}
			if !resp.GetValid() {
				if c.output == "json" {
					if err := c.printJSON(resp); err != nil {
						return err
					}
				} else if err := c.printValidation(c.sys.Stdout, resp); err != nil {
					return err
				}
				errs, _ := mappingview.Counts(resp.GetFindings())
				return &command.ExitError{Code: 1, Err: fmt.Errorf(
					"job %s was not enabled: its mapping does not validate (%d %s); fix it with intakectl job update",
					name, errs, plural(errs, "error", "errors"))}
			}
			req.ValidationToken = resp.GetValidationToken()
		}
	}
	job, err := c.jobs.SetJobEnabled(ctx, req)
	if err != nil {
		return c.apiError(map[bool]string{true: "enable", false: "disable"}[enabled]+" job "+name, err)
	}
	if c.output == "json" {
		return c.printJSON(job)
	}
	if !job.GetEnabled() {
		fmt.Fprintf(c.sys.Stdout, "disabled %s: its schedule does not fire\n", job.GetName())
		return nil
	}
	next := "no schedule"
	if t := job.GetNextRunTime(); t != nil {
		next = "next run " + runview.Time(t.AsTime())
	}
	fmt.Fprintf(c.sys.Stdout, "enabled %s (%s)\n", job.GetName(), next)
	return nil
}

func (c *cli) runCancel(ctx context.Context, args []string) error {
	name, err := RunName(args[0])
	if err != nil {
		return command.Usagef("%v", err)
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	run, err := c.runs.CancelRun(ctx, &intakev1.CancelRunRequest{Name: name})
	if err != nil {
		return c.apiError("cancel run "+name, err)
	}
	if c.output == "json" {
		return c.printJSON(run)
	}
	fmt.Fprintf(c.sys.Stdout, "cancelled %s: nothing of it lands\n", run.GetName())
	return nil
}

// Retention says what a job's own retention policy keeps ("keep the last
// 10 runs' files and files of the last 30 days"), "" when it has none (the
// server's default applies).
func Retention(p *intakev1.RetentionPolicy) string {
	var parts []string
	switch n := p.GetKeepRuns(); {
	case n == 1:
		parts = append(parts, "the last run's file")
	case n > 1:
		parts = append(parts, fmt.Sprintf("the last %d runs' files", n))
	}
	switch n := p.GetKeepDays(); {
	case n == 1:
		parts = append(parts, "files of the last day")
	case n > 1:
		parts = append(parts, fmt.Sprintf("files of the last %d days", n))
	}
	if len(parts) == 0 {
		return ""
	}
	return "keep " + strings.Join(parts, " and ")
}

// printJobOps prints a job's retention and what the failure policy says of
// it (job get).
func printJobOps(w io.Writer, j *intakev1.Job) {
	if r := Retention(j.GetRetention()); r != "" {
		fmt.Fprintf(w, "Retention:    %s\n", r)
	}
	if n := j.GetFailurePolicy().GetDisableAfterFailures(); n > 0 {
		fmt.Fprintf(w, "On failure:   disable after %d consecutive failed runs\n", n)
	}
	if n := j.GetConsecutiveFailures(); n > 0 {
		fmt.Fprintf(w, "Failed runs:  %d in a row\n", n)
	}
	if r := j.GetDisabledReason(); r != "" {
		fmt.Fprintf(w, "Disabled:     %s\n", r)
	}
}

// runListFilter holds the filter flags of run list.
type runListFilter struct {
	states   listFlag
	triggers listFlag
	since    string
	until    string
}

// listFlag is a flag given as a comma-separated list, or several times.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

func runListFlags(fs *flag.FlagSet, c *cli) {
	fs.StringVar(&c.job, "job", "", "only the runs of this job")
	fs.IntVar(&c.limit, "limit", 50, "at most this many runs (0: all)")
	fs.Var(&c.runFilter.states, "state", "only runs in these states, comma-separated or repeated: queued, fetching, mapping, loading, "+
		"running (those three), succeeded, partially-succeeded, failed, skipped, cancelled")
	fs.Var(&c.runFilter.triggers, "trigger", "only runs started so: schedule, run-now, trigger-api, replay")
	fs.StringVar(&c.runFilter.since, "since", "", `only runs created at or after: a time (2026-03-01T06:00:00Z), a date (2026-03-01, local) or a duration ago (36h, 7d)`)
	fs.StringVar(&c.runFilter.until, "until", "", "only runs created before: as --since")
}

// apply sets the filters of a ListRuns request; now is for "ago" times.
func (f *runListFilter) apply(req *intakev1.ListRunsRequest, now time.Time) error {
	for _, s := range f.states {
		states, err := parseStates(s)
		if err != nil {
			return command.Usagef("--state: %v", err)
		}
		req.States = append(req.States, states...)
	}
	for _, s := range f.triggers {
		t, ok := intakev1.Trigger_value["TRIGGER_"+enumName(s)]
		if !ok || t == 0 {
			return command.Usagef("--trigger: %q is not a trigger (schedule, run-now, trigger-api, replay)", s)
		}
		req.Triggers = append(req.Triggers, intakev1.Trigger(t))
	}
	for _, b := range []struct {
		flag, value string
		dst         **timestamppb.Timestamp
	}{{"--since", f.since, &req.CreateTimeFrom}, {"--until", f.until, &req.CreateTimeTo}} {
		if b.value == "" {
			continue
		}
		t, err := ParseTime(b.value, now)
		if err != nil {
			return command.Usagef("%s: %v", b.flag, err)
		}
		*b.dst = timestamppb.New(t)
	}
	return nil
}

// enumName is a word of the command line as an enum value name:
// "run-now" → "RUN_NOW".
func enumName(s string) string {
	return strings.ToUpper(strings.NewReplacer("-", "_", " ", "_").Replace(strings.TrimSpace(s)))
}

func parseStates(s string) ([]intakev1.RunState, error) {
	if strings.EqualFold(strings.TrimSpace(s), "running") {
		return []intakev1.RunState{intakev1.RunState_RUN_STATE_FETCHING, intakev1.RunState_RUN_STATE_MAPPING,
			intakev1.RunState_RUN_STATE_LOADING}, nil
	}
	v, ok := intakev1.RunState_value["RUN_STATE_"+enumName(s)]
	if !ok || v == 0 {
		return nil, fmt.Errorf("%q is not a run state (queued, fetching, mapping, loading, running, succeeded, partially-succeeded, failed, skipped, cancelled)", s)
	}
	return []intakev1.RunState{intakev1.RunState(v)}, nil
}

// ParseTime reads a point in time of the command line: RFC 3339
// ("2026-03-01T06:00:00Z"), a date ("2026-03-01", midnight local time), or
// a duration before now ("90m", "36h", "7d").
func ParseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, now.Location()); err == nil {
		return t, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 {
			return now.AddDate(0, 0, -n), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time: give 2026-03-01T06:00:00Z, 2026-03-01 or a duration ago such as 36h or 7d", s)
}

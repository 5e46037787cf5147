package ctl

import (
	"context"
	"fmt"
	"io"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/intakehq/intake/cmd/internal/command"
	"github.com/intakehq/intake/cmd/internal/mappingview"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// tty reports whether standard output is a terminal and the output is a
// table (colors are welcome).
func (c *cli) tty() bool {
	if c.output != "table" || c.sys.TerminalWidth == nil {
		return false
	}
	_, ok := c.sys.TerminalWidth()
	return ok
}

// validateForSave validates the mapping of a job about to be saved enabled
// and returns the token CreateJob / UpdateJob need. A disabled job needs
// none; neither does an update of a job whose saved mapping has passed and
// is not changed by the update. When the mapping does not pass, it prints
// the findings and returns exit code 1: the job is not saved. name is the
// saved job for an update, empty for a create; verb says what would have
// happened ("created").
func (c *cli) validateForSave(ctx context.Context, name string, job *intakev1.Job, verb string) (string, error) {
	if !job.GetEnabled() {
		return "", nil
	}
	req := &intakev1.ValidateMappingRequest{Job: job}
	if name != "" {
		saved, err := c.jobs.GetJob(ctx, &intakev1.GetJobRequest{Name: name})
		switch {
		case status.Code(err) == codes.NotFound:
			return "", nil // UpdateJob says so.
		case err != nil:
			return "", c.apiError("get job "+name, err)
		}
		sameFile := saved.GetObject() == job.GetObject() && proto.Equal(saved.GetConnection(), job.GetConnection()) &&
			saved.GetConnectionName() == job.GetConnectionName() && proto.Equal(saved.GetFile(), job.GetFile())
		if sameFile && saved.GetMappingValidated() && proto.Equal(saved.GetMapping(), job.GetMapping()) {
			return "", nil
		}
		if sameFile {
			// The saved job's own file: columns new since its last validation are marked.
			req.Name = name
		}
	}
	resp, err := c.jobs.ValidateMapping(ctx, req)
	if err != nil {
		return "", c.apiError("validate the mapping", err)
	}
	if !resp.GetValid() {
		if c.output == "json" {
			if err := c.printJSON(resp); err != nil {
				return "", err
			}
		} else if err := c.printValidation(c.sys.Stdout, resp); err != nil {
			return "", err
		}
		errs, _ := mappingview.Counts(resp.GetFindings())
		return "", &command.ExitError{Code: 1, Err: fmt.Errorf(
			"the job was not %s: its mapping does not validate (%d %s). Fix the mapping and check it with `intakectl job validate -f %s`, or save the job with enabled: false",
			verb, errs, plural(errs, "error", "errors"), c.file)}
	}
	if len(resp.GetFindings()) > 0 && c.output == "table" {
		fmt.Fprintln(c.sys.Stderr, "The mapping validates, with warnings:")
		if err := mappingview.Findings(c.sys.Stderr, resp.GetFindings()); err != nil {
			return "", err
		}
	}
	return resp.GetValidationToken(), nil
}

// printValidation prints a ValidateMapping response: what was detected of
// the file, the findings, the file's columns and the outcome.
func (c *cli) printValidation(w io.Writer, resp *intakev1.ValidateMappingResponse) error {
	if d := mappingview.Detected(resp.GetDetected()); d != "" {
		fmt.Fprintf(w, "Detected: %s\n", d)
	}
	if len(resp.GetFindings()) > 0 {
		fmt.Fprintln(w)
		if err := mappingview.Findings(w, resp.GetFindings()); err != nil {
			return err
		}
	}
	if len(resp.GetColumns()) > 0 {
		fmt.Fprintln(w)
		if err := mappingview.Columns(w, resp.GetColumns(), c.tty()); err != nil {
			return err
		}
	}
	fmt.Fprintln(w)
	errs, warnings := mappingview.Counts(resp.GetFindings())
	if resp.GetValid() {
		fmt.Fprintf(w, "Valid: checked against %d sample rows", resp.GetRowsSampled())
		if warnings > 0 {
			fmt.Fprintf(w, "; %d %s", warnings, plural(warnings, "warning", "warnings"))
		}
		fmt.Fprintln(w, ".")
		return nil
	}
	fmt.Fprintf(w, "Not valid: %d %s", errs, plural(errs, "error", "errors"))
	if warnings > 0 {
		fmt.Fprintf(w, ", %d %s", warnings, plural(warnings, "warning", "warnings"))
	}
	fmt.Fprintf(w, " (checked against %d sample rows).\n", resp.GetRowsSampled())
	return nil
}

// jobSource settles the job a validate or preview is about: NAME, -f FILE,
// or both (the saved job with the file's mapping).
func (c *cli) jobSource(args []string, verb string) (name string, job *intakev1.Job, err error) {
	if len(args) == 0 && c.file == "" {
		return "", nil, command.Usagef("what to %s? give a job NAME, -f FILE, or both (the saved job with the file's mapping)", verb)
	}
	if len(args) == 1 {
		if name, err = JobName(args[0]); err != nil {
			return "", nil, command.Usagef("%v", err)
		}
	}
	if c.file != "" {
		if job, _, err = c.readJob(); err != nil {
			return "", nil, err
		}
		job.Name = ""
	}
	return name, job, nil
}

func (c *cli) jobValidate(ctx context.Context, args []string) error {
	name, job, err := c.jobSource(args, "validate")
	if err != nil {
		return err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.jobs.ValidateMapping(ctx, &intakev1.ValidateMappingRequest{Name: name, Job: job, SampleRows: int32(c.rows)})
	if err != nil {
		return c.apiError("validate the mapping", err)
	}
	if c.output == "json" {
		err = c.printJSON(resp)
	} else {
		err = c.printValidation(c.sys.Stdout, resp)
	}
	if err != nil {
		return err
	}
	if !resp.GetValid() {
		return &command.ExitError{Code: 1}
	}
	return nil
}

func (c *cli) jobPreview(ctx context.Context, args []string) error {
	name, job, err := c.jobSource(args, "preview")
	if err != nil {
		return err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.jobs.PreviewJob(ctx, &intakev1.PreviewJobRequest{Name: name, Job: job, Rows: int32(c.rows)})
	if err != nil {
		return c.apiError("preview", err)
	}
	if c.output == "json" {
		return c.printJSON(resp)
	}
	// The mapping tells which column feeds which attribute, for the raw line.
	mapping := job.GetMapping()
	if job == nil {
		saved, err := c.jobs.GetJob(ctx, &intakev1.GetJobRequest{Name: name})
		if err != nil {
			return c.apiError("get job "+name, err)
		}
		mapping = saved.GetMapping()
	}
	w := c.sys.Stdout
	if d := mappingview.Detected(resp.GetDetected()); d != "" {
		fmt.Fprintf(w, "Detected: %s\n", d)
	}
	if len(resp.GetFindings()) > 0 {
		errs, warnings := mappingview.Counts(resp.GetFindings())
		fmt.Fprintf(w, "\nThe mapping has %d %s and %d %s:\n", errs, plural(errs, "error", "errors"), warnings, plural(warnings, "warning", "warnings"))
		if err := mappingview.Findings(w, resp.GetFindings()); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "\nThe first %d rows of the file, raw and as they would be stored:\n", len(resp.GetRows()))
	return mappingview.Preview(w, resp, mapping)
}

func (c *cli) jobSuggest(ctx context.Context, _ []string) error {
	job := &intakev1.Job{}
	if c.file != "" {
		var err error
		if job, _, err = c.readJob(); err != nil {
			return err
		}
		job.Name = ""
	}
	if c.object != "" {
		t, err := ParseObject(c.object)
		if err != nil {
			return command.Usagef("--object: %v", err)
		}
		job.Object = t
	}
	if c.url != "" {
		job.Connection = &intakev1.Connection{Kind: &intakev1.Connection_Http{Http: &intakev1.HttpConnection{Url: c.url}}}
		job.ConnectionName, job.File = "", nil
	}
	if c.file == "" { // with -f, readJob applied them
		if err := c.applyJobConnection(job); err != nil {
			return err
		}
	}
	if job.GetObject() == intakev1.ObjectType_OBJECT_TYPE_UNSPECIFIED || job.GetConnection() == nil && job.GetConnectionName() == "" {
		return command.Usagef("which object and which file? give -f FILE (a job file with object and connection), --object OBJECT --url URL, or --object OBJECT --connection NAME --path P|--pattern G")
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.jobs.SuggestMapping(ctx, &intakev1.SuggestMappingRequest{Job: job})
	if err != nil {
		return c.apiError("suggest a mapping", err)
	}
	if c.output == "json" {
		return c.printJSON(resp)
	}
	y, err := mappingview.SuggestionYAML(resp, job.GetMapping().GetDialect())
	if err != nil {
		return err
	}
	_, err = c.sys.Stdout.Write(y)
	return err
}

// ParseObject reads an object as people write it: "accounts",
// "objects/usage_aggregations", "usage-aggregations", "OBJECT_TYPE_USERS".
func ParseObject(s string) (intakev1.ObjectType, error) {
	n := strings.ToUpper(strings.TrimPrefix(strings.TrimSpace(s), "objects/"))
	n = strings.NewReplacer("-", "_", " ", "_").Replace(n)
	n = strings.TrimPrefix(n, "OBJECT_TYPE_")
	if v, ok := intakev1.ObjectType_value["OBJECT_TYPE_"+n]; ok && v != 0 {
		return intakev1.ObjectType(v), nil
	}
	var names []string
	for i := 1; i < len(intakev1.ObjectType_name); i++ {
		names = append(names, Object(intakev1.ObjectType(i)))
	}
	return 0, fmt.Errorf("%q is not an object: want one of %s", s, strings.Join(names, ", "))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

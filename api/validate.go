package api

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/intakehq/intake/api/internal/jobspec"
	"github.com/intakehq/intake/api/internal/store"
	"github.com/intakehq/intake/pkg/mapping"
	"github.com/intakehq/intake/pkg/objects"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// Sample sizes of ValidateMapping (rows checked) and PreviewJob (rows shown).
const (
	defaultValidateRows = 200
	maxValidateRows     = 10000
	defaultPreviewRows  = 20
	maxPreviewRows      = 1000
	// suggestRows are the rows SuggestMapping infers types from.
	suggestRows = 200
	// findingsPerEntry is how many sample rows ValidateMapping lists per
	// entry and problem; the message counts the rest.
	findingsPerEntry = 3
)

// Finding codes of the sample's rows as a whole (beside pkg/mapping's).
const (
	// codeMalformedRow: a record of the sample cannot be read as CSV
	// (e.g. a stray quote); the run would reject it.
	codeMalformedRow = "MALFORMED_ROW"
)

// modelFor is the data model of an object type: the object's system
// attributes and its custom ones (objectModel); nil (and no error) for an
// unknown type, which the callers report as a bad request.
func (s *Server) modelFor(ctx context.Context, t intakev1.ObjectType) (*intakev1.DataObject, error) {
	if _, err := objects.Lookup(t); err != nil {
		return nil, nil //nolint:nilerr // an unknown object is reported by the caller
	}
	m, err := s.objectModel(ctx, t)
	if err != nil {
		return nil, s.storeError(ctx, "read the data model of", t.String(), err)
	}
	return m, nil
}

// subject is what ValidateMapping, PreviewJob and SuggestMapping work on.
type subject struct {
	// id is the saved job's id; "" for a job not saved yet.
	id  string
	job *intakev1.Job
	// state is the saved job's validation state; nil for a job not saved.
	state *store.JobValidation
	model *intakev1.DataObject
}

// resolveSubject finds the job a ValidateMapping, PreviewJob or
// SuggestMapping request is about: the saved job `name` (with job's mapping
// when job has one), or job itself (object, connection and mapping).
func (s *Server) resolveSubject(ctx context.Context, name string, job *intakev1.Job, needMapping bool) (*subject, error) {
	sub := &subject{}
	if name != "" {
		id, err := parseJobName("name", name)
		if err != nil {
			return nil, err
		}
		saved, state, err := s.store.GetJobValidation(ctx, id)
		if err != nil {
			return nil, s.storeError(ctx, "read", "job "+name, err)
		}
		sub.id, sub.job, sub.state = id, saved, state
		if job.GetMapping() != nil {
			sub.job.Mapping = proto.Clone(job.GetMapping()).(*intakev1.MappingSpec)
		}
	} else {
		if job == nil {
			return nil, badField("job", "required when no name is given: the job (object, connection and mapping) to read the file of")
		}
		sub.job = job
	}
	model, err := s.modelFor(ctx, sub.job.GetObject())
	if err != nil {
		return nil, err
	}
	sub.model = model
	if vs := jobspec.ValidateSource("job", sub.job, model); len(vs) > 0 {
		return nil, invalid("invalid job", vs)
	}
	if jobspec.IsLocal(sub.job) && !s.cfg.DevMode {
		return nil, failedPrecondition("DEV_MODE", "job.connection.local",
			"local file connections are only accepted when Intake runs in development mode; use an http connection")
	}
	if needMapping && sub.job.GetMapping() == nil {
		return nil, badField("job.mapping", "required: the mapping to check")
	}
	return sub, nil
}

// rowCount resolves a requested number of rows.
func rowCount(field string, n int32, def, limit int) (int, error) {
	switch {
	case n < 0:
		return 0, badField(field, "%d is negative", n)
	case n == 0:
		return def, nil
	case int(n) > limit:
		return 0, badField(field, "%d is more than %d", n, limit)
	}
	return int(n), nil
}

// compile compiles the subject's mapping against the file's header and
// resolved dialect, as the mapper does with a chunk: timestamps without a
// zone are read in the job's time zone. A spec with problems
// gives them as findings and a nil plan.
func compile(sub *subject, smp *sample) (*mapping.Plan, []*intakev1.Finding, error) {
	spec := proto.Clone(sub.job.GetMapping()).(*intakev1.MappingSpec)
	spec.Dialect = smp.dialect
	plan, err := mapping.CompileWith(sub.model, spec, smp.header, mapping.CompileOptions{Location: mapping.JobLocation(sub.job)})
	if err == nil {
		return plan, nil, nil
	}
	if f := mapping.Findings(err); f != nil {
		return nil, f, nil
	}
	return nil, nil, err
}

func (j *jobService) ValidateMapping(ctx context.Context, req *intakev1.ValidateMappingRequest) (*intakev1.ValidateMappingResponse, error) {
	s := j.s
	n, err := rowCount("sample_rows", req.GetSampleRows(), defaultValidateRows, maxValidateRows)
	if err != nil {
		return nil, err
	}
	sub, err := s.resolveSubject(ctx, req.GetName(), req.GetJob(), true)
	if err != nil {
		return nil, err
	}
	smp, err := s.readSample(ctx, sub.job, n)
	if err != nil {
		return nil, err
	}
	plan, findings, err := compile(sub, smp)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "compile the mapping: %v", err)
	}
	findings = append(findings, sampleFindings(plan, smp)...)
	resp := &intakev1.ValidateMappingResponse{
		Findings:    findings,
		Columns:     sourceColumns(smp, sub),
		RowsSampled: int64(len(smp.rows)),
		Detected:    smp.detected,
		Valid: !slices.ContainsFunc(findings, func(f *intakev1.Finding) bool {
			return f.GetSeverity() == intakev1.FindingSeverity_FINDING_SEVERITY_ERROR
		}),
	}
	log := s.log.With("job", sub.id, "source", smp.source)
	if !resp.Valid {
		log.InfoContext(ctx, "mapping validation failed", "findings", len(findings))
		return resp, nil
	}
	v, err := s.store.CreateValidation(ctx, sub.id, jobspec.MappingHash(sub.job), smp.header)
	if err != nil {
		return nil, s.storeError(ctx, "store", "the validation", err)
	}
	resp.ValidationToken = v.Token
	if sub.id != "" {
		marked, err := s.store.MarkValidated(ctx, sub.id, v)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, s.storeError(ctx, "mark validated", "job "+store.JobName(sub.id), err)
		}
		if marked {
			log.InfoContext(ctx, "job mapping validated")
		}
	}
	log.InfoContext(ctx, "mapping validation passed", "rows_sampled", len(smp.rows), "warnings", len(findings))
	return resp, nil
}

// sourceColumns lists the file's columns: whether the mapping uses them,
// whether they are new since the job's last passing validation, and up to
// three sample values.
func sourceColumns(smp *sample, sub *subject) []*intakev1.SourceColumn {
	used := map[string]bool{}
	for _, c := range mapping.UsedColumns(sub.job.GetMapping()) {
		used[c] = true
	}
	var known map[string]bool
	if sub.state != nil && sub.state.Columns != nil {
		known = map[string]bool{}
		for _, c := range sub.state.Columns {
			known[c] = true
		}
	}
	out := make([]*intakev1.SourceColumn, len(smp.header))
	for i, h := range smp.header {
		c := &intakev1.SourceColumn{Name: h, Mapped: used[h], New: known != nil && !known[h]}
		for _, r := range smp.rows {
			if len(c.Samples) == 3 {
				break
			}
			if i < len(r.fields) && r.fields[i] != "" && !slices.Contains(c.Samples, r.fields[i]) {
				c.Samples = append(c.Samples, r.fields[i])
			}
		}
		out[i] = c
	}
	return out
}

// findingGroup collects the findings of one entry (or the whole row: -1)
// and code over the sample.
type findingGroup struct {
	entry int32
	code  string
	shown []*intakev1.Finding
	total int
}

// sampleFindings maps every sample row through plan and reports the values
// that do not convert (and rows that cannot be read), at most
// findingsPerEntry rows per entry and code, the first one's message
// counting them all.
//
// Severity: a value problem is an ERROR when the entry converts none of the
// sample's values (its type or source format is wrong); otherwise a WARNING
// — those rows would be rejected (see the job's error budget), the mapping
// is fine. Unreadable rows (field counts, bad quoting) and empty keys are
// WARNINGs.
func sampleFindings(plan *mapping.Plan, smp *sample) []*intakev1.Finding {
	groups := map[[2]string]*findingGroup{}
	var order []*findingGroup
	add := func(f *intakev1.Finding) {
		k := [2]string{fmt.Sprint(f.GetEntry()), f.GetCode()}
		g := groups[k]
		if g == nil {
			g = &findingGroup{entry: f.GetEntry(), code: f.GetCode()}
			groups[k] = g
			order = append(order, g)
		}
		g.total++
		if len(g.shown) < findingsPerEntry {
			g.shown = append(g.shown, f)
		}
	}
	var converted []int // per entry: sample values that converted
	if plan != nil {
		converted = make([]int, len(plan.Attributes()))
	}
	for _, r := range smp.rows {
		if r.err != "" {
			add(&intakev1.Finding{Code: codeMalformedRow, Entry: -1, Row: r.row, Value: r.raw,
				Message: mapping.RowError{Row: r.row, Reason: r.err}.Error()})
			continue
		}
		if plan == nil {
			continue
		}
		cells, rerr := plan.Preview(r.row, r.fields)
		if rerr != nil {
			add(&intakev1.Finding{Code: string(mapping.CodeFieldCount), Entry: -1, Row: r.row, Value: r.raw, Message: rerr.Error()})
			continue
		}
		bad := false
		for i, c := range cells {
			switch {
			case c.Err != "":
				bad = true
			case !c.Null:
				converted[i]++
			}
		}
		if bad {
			for _, f := range plan.Check(r.row, r.fields) {
				add(f)
			}
		}
	}
	sort.SliceStable(order, func(a, b int) bool { return order[a].entry < order[b].entry })
	var attrs []string
	if plan != nil {
		attrs = plan.Attributes()
	}
	var out []*intakev1.Finding
	for _, g := range order {
		sev := intakev1.FindingSeverity_FINDING_SEVERITY_WARNING
		first := g.shown[0]
		switch {
		case g.code == string(mapping.CodeValueDoesNotConvert) && g.entry >= 0 && converted[g.entry] == 0:
			sev = intakev1.FindingSeverity_FINDING_SEVERITY_ERROR
			first.Message += fmt.Sprintf(" — none of the %s of entry %d (%s) in the sample converts: check the attribute's type and the entry's source format",
				plural(g.total, "value"), g.entry+1, attrs[g.entry])
		case g.total > len(g.shown):
			what := "rows"
			if g.entry >= 0 {
				what = fmt.Sprintf("rows for entry %d (%s)", g.entry+1, attrs[g.entry])
			}
			first.Message += fmt.Sprintf(" — %d of the %d sample rows have this problem (%s); the first %d are listed",
				g.total, len(smp.rows), what, len(g.shown))
		}
		for _, f := range g.shown {
			f.Severity = sev
			out = append(out, f)
		}
	}
	return out
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

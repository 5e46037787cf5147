package api_test

import (
	"bytes"
	"compress/gzip"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

func col(attr, column string) *intakev1.MappingEntry {
	return &intakev1.MappingEntry{Attribute: attr, Source: &intakev1.MappingEntry_Column{Column: column}}
}

func colf(attr, column, format string) *intakev1.MappingEntry {
	e := col(attr, column)
	e.SourceFormat = format
	return e
}

func fn(attr, expr string) *intakev1.MappingEntry {
	return &intakev1.MappingEntry{Attribute: attr, Source: &intakev1.MappingEntry_Function{Function: expr}}
}

// crmCSV is a realistic accounts export: a date, a number with thousands
// separators, an amount with a currency symbol, and one bad row (row 4:
// "many" employees).
const crmCSV = "Acct,Name,Employees,Created,Revenue,Notes\n" +
	"A-1,Acme,\"1,200\",03/15/2024,\"$1,200.00\",first\n" +
	"A-2,Globex,85,04/01/2024,$99.50,\n" +
	"A-3,Initech,many,12/31/2023,$0.00,late\n" +
	"A-4,Umbrella,7,01/02/2024,\"($12.00)\",\n"

// crmJob maps crmCSV onto accounts, at url.
func crmJob(url string, entries ...*intakev1.MappingEntry) *intakev1.Job {
	job := accountsJobAt("CRM", url)
	if len(entries) == 0 {
		entries = []*intakev1.MappingEntry{
			col("account_id", "Acct"),
			col("name", "Name"),
			col("employees", "Employees"),
			colf("created_date", "Created", "MM/dd/yyyy"),
			col("annual_revenue", "Revenue"),
		}
	}
	job.Mapping = &intakev1.MappingSpec{Entries: entries}
	return job
}

// findingsByCode returns the findings of a validation, by code.
func findingsByCode(v *intakev1.ValidateMappingResponse) map[string][]*intakev1.Finding {
	out := map[string][]*intakev1.Finding{}
	for _, f := range v.GetFindings() {
		out[f.GetCode()] = append(out[f.GetCode()], f)
	}
	return out
}

// Every rule of the mapping, broken on a real file: each gives the finding
// a user needs to fix it (code, entry, attribute, column, and a message
// saying what and where), and no token.
func TestValidateMappingFindings(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	url := b.files.setFile("/crm.csv", crmCSV)

	validate := func(job *intakev1.Job) *intakev1.ValidateMappingResponse {
		t.Helper()
		v, err := b.jobs.ValidateMapping(ctx, &intakev1.ValidateMappingRequest{Job: job})
		require.NoError(t, err)
		return v
	}
	type want struct {
		code, attribute, column string
		entry                   int32
		message                 []string
	}
	for name, tc := range map[string]struct {
		entries []*intakev1.MappingEntry
		want    want
	}{
		"key not mapped": {
			entries: []*intakev1.MappingEntry{col("name", "Name")},
			want:    want{"KEY_NOT_MAPPED", "account_id", "", -1, []string{"key attribute account_id is not mapped"}},
		},
		"unknown attribute": {
			entries: []*intakev1.MappingEntry{col("account_id", "Acct"), col("colour", "Notes")},
			want:    want{"UNKNOWN_ATTRIBUTE", "colour", "Notes", 1, []string{`entry 2: accounts has no attribute "colour"`, "account_id, name"}},
		},
		"duplicate attribute": {
			entries: []*intakev1.MappingEntry{col("account_id", "Acct"), col("name", "Name"), col("name", "Notes")},
			want:    want{"DUPLICATE_ATTRIBUTE", "name", "Notes", 2, []string{"attribute name is mapped twice (entries 2 and 3)"}},
		},
		"column not in header": {
			entries: []*intakev1.MappingEntry{col("account_id", "Acct"), col("name", "Company")},
			want: want{"COLUMN_NOT_IN_HEADER", "name", "Company", 1, []string{`column "Company" (entry 2, attribute name) is not in the file's header`,
				`"Acct", "Name", "Employees", "Created", "Revenue", "Notes"`}},
		},
		"column in another case": {
			entries: []*intakev1.MappingEntry{col("account_id", "acct")},
			want:    want{"COLUMN_NOT_IN_HEADER", "account_id", "acct", 0, []string{`did you mean "Acct"?`}},
		},
		"bad format": {
			entries: []*intakev1.MappingEntry{col("account_id", "Acct"), colf("created_date", "Created", "MM/qq/yyyy")},
			want:    want{"INVALID_FORMAT", "created_date", "Created", 1, []string{"entry 2 (attribute created_date): source format"}},
		},
		"function does not compile": {
			entries: []*intakev1.MappingEntry{col("account_id", "Acct"), fn("name", `Name + `)},
			want:    want{"FUNCTION_DOES_NOT_COMPILE", "name", "", 1, []string{"entry 2 (attribute name): the function does not compile"}},
		},
		"function of a column not in the file": {
			entries: []*intakev1.MappingEntry{col("account_id", "Acct"), fn("name", `col["Company"] + "!"`)},
			want:    want{"COLUMN_NOT_IN_HEADER", "name", "Company", 1, []string{`"Company"`}},
		},
		"a format that reads none of the sample": {
			entries: []*intakev1.MappingEntry{col("account_id", "Acct"), colf("created_date", "Created", "dd.MM.yyyy")},
			want: want{"VALUE_DOES_NOT_CONVERT", "created_date", "Created", 1, []string{`row 2, column "Created": "03/15/2024" does not match date format dd.MM.yyyy`,
				"none of the 4 values of entry 2 (created_date) in the sample converts"}},
		},
	} {
		v := validate(crmJob(url, tc.entries...))
		require.False(t, v.GetValid(), name)
		require.Empty(t, v.GetValidationToken(), name)
		fs := findingsByCode(v)[tc.want.code]
		require.NotEmpty(t, fs, "%s: no %s in %v", name, tc.want.code, v.GetFindings())
		f := fs[0]
		require.Equal(t, intakev1.FindingSeverity_FINDING_SEVERITY_ERROR, f.GetSeverity(), name)
		require.Equal(t, tc.want.entry, f.GetEntry(), name)
		require.Equal(t, tc.want.attribute, f.GetAttribute(), name)
		require.Equal(t, tc.want.column, f.GetColumn(), name)
		for _, m := range tc.want.message {
			require.Contains(t, f.GetMessage(), m, name)
		}
	}

	// Several problems at once are all reported.
	v := validate(crmJob(url, col("colour", "Acct"), col("name", "Company"), colf("created_date", "Created", "qq")))
	byCode := findingsByCode(v)
	for _, c := range []string{"KEY_NOT_MAPPED", "UNKNOWN_ATTRIBUTE", "COLUMN_NOT_IN_HEADER", "INVALID_FORMAT"} {
		require.Contains(t, byCode, c)
	}

	// Values that do not convert in some rows: warnings with the row, the
	// column and the value; the mapping is valid (those rows would be
	// rejected by a run).
	v = validate(crmJob(url))
	require.True(t, v.GetValid(), "%v", v.GetFindings())
	require.NotEmpty(t, v.GetValidationToken())
	require.EqualValues(t, 4, v.GetRowsSampled())
	require.Len(t, v.GetFindings(), 1, "%v", v.GetFindings())
	f := v.GetFindings()[0]
	require.Equal(t, intakev1.FindingSeverity_FINDING_SEVERITY_WARNING, f.GetSeverity())
	require.Equal(t, "VALUE_DOES_NOT_CONVERT", f.GetCode())
	require.EqualValues(t, 2, f.GetEntry())
	require.Equal(t, "employees", f.GetAttribute())
	require.Equal(t, "Employees", f.GetColumn())
	require.EqualValues(t, 4, f.GetRow(), "row 4 of the file (the header is row 1)")
	require.Equal(t, "many", f.GetValue())
	require.Equal(t, `row 4, column "Employees": not a number: "many"`, f.GetMessage())
	require.Equal(t, ",", v.GetDetected().GetDelimiter())

	// Many bad rows: the first three per entry, and the count.
	var body strings.Builder
	body.WriteString("Acct,Name,Employees\n")
	for i := range 10 {
		emp := "12"
		if i%2 == 0 {
			emp = "n/a"
		}
		body.WriteString("A-" + string(rune('0'+i)) + ",Name," + emp + "\n")
	}
	url2 := b.files.setFile("/many.csv", body.String())
	v = validate(crmJob(url2, col("account_id", "Acct"), col("employees", "Employees")))
	require.True(t, v.GetValid())
	fs := findingsByCode(v)["VALUE_DOES_NOT_CONVERT"]
	require.Len(t, fs, 3)
	require.Equal(t, []int64{2, 4, 6}, []int64{fs[0].GetRow(), fs[1].GetRow(), fs[2].GetRow()})
	require.Contains(t, fs[0].GetMessage(), "5 of the 10 sample rows have this problem (rows for entry 2 (employees)); the first 3 are listed")

	// sample_rows bounds the rows read.
	v, err := b.jobs.ValidateMapping(ctx, &intakev1.ValidateMappingRequest{Job: crmJob(url2, col("account_id", "Acct")), SampleRows: 3})
	require.NoError(t, err)
	require.EqualValues(t, 3, v.GetRowsSampled())
	_, err = b.jobs.ValidateMapping(ctx, &intakev1.ValidateMappingRequest{Job: crmJob(url2), SampleRows: 10001})
	requireCode(t, err, codes.InvalidArgument, "sample_rows", "10001 is more than 10000")
}

// Rows that cannot be mapped at all are warnings with their row number.
func TestValidateMappingRowProblems(t *testing.T) {
	t.Parallel()
	b := setup(t)
	url := b.files.setFile("/rows.csv", "Acct,Name\n"+
		"A-1,Fine\n"+
		"A-2,Two,extra\n"+ // too many fields
		"A-3,\"Say \"hi\"\",x\n"+ // a stray quote inside quotes
		"A-4,Fine\n")
	v, err := b.jobs.ValidateMapping(testCtx(t), &intakev1.ValidateMappingRequest{Job: crmJob(url, col("account_id", "Acct"), col("name", "Name"))})
	require.NoError(t, err)
	require.True(t, v.GetValid(), "%v", v.GetFindings())
	byCode := findingsByCode(v)
	require.Len(t, byCode["FIELD_COUNT"], 1, "%v", v.GetFindings())
	require.EqualValues(t, 3, byCode["FIELD_COUNT"][0].GetRow())
	require.EqualValues(t, -1, byCode["FIELD_COUNT"][0].GetEntry())
	require.Contains(t, byCode["FIELD_COUNT"][0].GetMessage(), "row 3")
	require.Equal(t, intakev1.FindingSeverity_FINDING_SEVERITY_WARNING, byCode["FIELD_COUNT"][0].GetSeverity())
	require.Len(t, byCode["MALFORMED_ROW"], 1, "%v", v.GetFindings())
	require.EqualValues(t, 4, byCode["MALFORMED_ROW"][0].GetRow())
	require.Contains(t, byCode["MALFORMED_ROW"][0].GetMessage(), "quote")
}

// A file that cannot be read is the file's problem: FailedPrecondition
// naming the file and the cause — never a hang.
func TestValidateMappingUnreadableFile(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{sampleTimeout: time.Second})
	ctx := testCtx(t)
	check := func(url string, want ...string) {
		t.Helper()
		_, err := b.jobs.ValidateMapping(ctx, &intakev1.ValidateMappingRequest{Job: crmJob(url)})
		st := requireCode(t, err, codes.FailedPrecondition, want...)
		var pf *errdetails.PreconditionFailure
		for _, d := range st.Details() {
			if p, ok := d.(*errdetails.PreconditionFailure); ok {
				pf = p
			}
		}
		require.NotNil(t, pf, "a PreconditionFailure detail")
	}

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := "http://" + lis.Addr().String() + "/gone.csv"
	require.NoError(t, lis.Close())
	check(closed, "cannot read the file", "connection refused")
	check(b.files.srv.URL+"/missing.csv", "404")
	check(b.files.setFile("/empty.csv", ""), "the file is empty")

	// A server that sends nothing: the sample timeout ends the wait.
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(30 * time.Second):
		}
	}))
	t.Cleanup(hang.Close)
	start := time.Now()
	check(hang.URL+"/slow.csv", hang.Listener.Addr().String())
	require.Less(t, time.Since(start), 10*time.Second)

	// The request itself is checked first.
	_, err = b.jobs.ValidateMapping(ctx, &intakev1.ValidateMappingRequest{})
	requireCode(t, err, codes.InvalidArgument, "job")
	noConn := crmJob(closed)
	noConn.Connection = nil
	_, err = b.jobs.ValidateMapping(ctx, &intakev1.ValidateMappingRequest{Job: noConn})
	requireCode(t, err, codes.InvalidArgument, "job.connection")
	_, err = b.jobs.ValidateMapping(ctx, &intakev1.ValidateMappingRequest{Name: "jobs/nope"})
	requireCode(t, err, codes.NotFound, "job jobs/nope not found")
}

// An enabled job can only be saved with a mapping that passed validation.
func TestValidationTokenRule(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	url := b.files.setFile("/crm.csv", crmCSV)
	job := crmJob(url)

	// Refused without a token, with the reason and what to do.
	_, err := b.jobs.CreateJob(ctx, &intakev1.CreateJobRequest{JobId: "crm", Job: job})
	st := requireCode(t, err, codes.FailedPrecondition, "the mapping has not passed validation: call ValidateMapping and pass its validation_token")
	var pf *errdetails.PreconditionFailure
	for _, d := range st.Details() {
		if p, ok := d.(*errdetails.PreconditionFailure); ok {
			pf = p
		}
	}
	require.NotNil(t, pf)
	require.Equal(t, "MAPPING_NOT_VALIDATED", pf.GetViolations()[0].GetType())
	_, err = b.jobs.CreateJob(ctx, &intakev1.CreateJobRequest{JobId: "crm", Job: job, ValidationToken: "v1.forged"})
	requireCode(t, err, codes.InvalidArgument, "validation_token", "not a token of ValidateMapping")

	// A token of another mapping does not fit.
	other := crmJob(url, col("account_id", "Acct"))
	otherToken := b.validate(t, other)
	_, err = b.jobs.CreateJob(ctx, &intakev1.CreateJobRequest{JobId: "crm", Job: job, ValidationToken: otherToken})
	requireCode(t, err, codes.FailedPrecondition, "validation_token", "another object or mapping")

	// Accepted with its own token.
	before := time.Now()
	token := b.validate(t, job)
	created, err := b.jobs.CreateJob(ctx, &intakev1.CreateJobRequest{JobId: "crm", Job: job, ValidationToken: token})
	require.NoError(t, err)
	require.True(t, created.GetMappingValidated())
	require.WithinRange(t, created.GetMappingValidateTime().AsTime(), before.Add(-time.Second), time.Now())
	validatedAt := created.GetMappingValidateTime().AsTime()

	// Changes that leave the mapping alone need nothing.
	upd, err := b.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{Job: &intakev1.Job{Name: "jobs/crm", DisplayName: "renamed"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name"}}})
	require.NoError(t, err)
	require.True(t, upd.GetMappingValidated())
	require.Equal(t, validatedAt, upd.GetMappingValidateTime().AsTime())

	// Editing the mapping needs a new validation...
	edited := proto.Clone(upd).(*intakev1.Job)
	edited.Mapping.Entries = append(edited.Mapping.Entries, col("notes", "Notes"))
	_, err = b.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{Job: edited})
	requireCode(t, err, codes.FailedPrecondition, "the mapping has not passed validation")
	got, err := b.jobs.GetJob(ctx, &intakev1.GetJobRequest{Name: "jobs/crm"})
	require.NoError(t, err)
	require.Len(t, got.GetMapping().GetEntries(), 5, "the refused update changed nothing")
	require.True(t, got.GetMappingValidated())
	// ... as does a token of a validation of another job.
	_, err = b.create(t, "other", crmJob(url))
	require.NoError(t, err)
	vOther, err := b.jobs.ValidateMapping(ctx, &intakev1.ValidateMappingRequest{Name: "jobs/other", Job: edited})
	require.NoError(t, err)
	_, err = b.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{Job: edited, ValidationToken: vOther.GetValidationToken()})
	requireCode(t, err, codes.FailedPrecondition, "validation_token", "job jobs/other")
	// With the token of its validation it is saved, validated.
	upd, err = b.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{Job: edited, ValidationToken: b.validate(t, edited)})
	require.NoError(t, err)
	require.True(t, upd.GetMappingValidated())
	require.Len(t, upd.GetMapping().GetEntries(), 6)

	// A disabled job is saved unvalidated; a mapping change clears the
	// validation; enabling it again needs one.
	disabled := proto.Clone(upd).(*intakev1.Job)
	disabled.Enabled = false
	disabled.Mapping.Entries = disabled.Mapping.Entries[:2]
	upd, err = b.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{Job: disabled})
	require.NoError(t, err)
	require.False(t, upd.GetMappingValidated())
	require.Nil(t, upd.GetMappingValidateTime())
	_, err = b.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{Job: &intakev1.Job{Name: "jobs/crm", Enabled: true},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"enabled"}}})
	requireCode(t, err, codes.FailedPrecondition, "the mapping has not passed validation")

	// Validating a saved job by name marks it validated (its stored
	// mapping passed), so it can then be enabled without a token.
	v, err := b.jobs.ValidateMapping(ctx, &intakev1.ValidateMappingRequest{Name: "jobs/crm"})
	require.NoError(t, err)
	require.True(t, v.GetValid())
	got, err = b.jobs.GetJob(ctx, &intakev1.GetJobRequest{Name: "jobs/crm"})
	require.NoError(t, err)
	require.True(t, got.GetMappingValidated())
	require.Equal(t, upd.GetEtag(), got.GetEtag(), "validating changes no setting of the job")
	upd, err = b.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{Job: &intakev1.Job{Name: "jobs/crm", Enabled: true},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"enabled"}}})
	require.NoError(t, err)
	require.True(t, upd.GetEnabled())

	// Validating a saved job with another mapping does not mark it.
	_, err = b.jobs.ValidateMapping(ctx, &intakev1.ValidateMappingRequest{Name: "jobs/crm", Job: crmJob(url, col("account_id", "Acct"))})
	require.NoError(t, err)
	got, err = b.jobs.GetJob(ctx, &intakev1.GetJobRequest{Name: "jobs/crm"})
	require.NoError(t, err)
	require.Len(t, got.GetMapping().GetEntries(), 2)
	require.True(t, got.GetMappingValidated())

	// A job created disabled has no validation.
	off := crmJob(url)
	off.Enabled = false
	created, err = b.jobs.CreateJob(ctx, &intakev1.CreateJobRequest{Job: off})
	require.NoError(t, err)
	require.False(t, created.GetMappingValidated())
}

// Validation lists the file's columns: mapped or not, new since the job's
// last passing validation, with sample values.
func TestValidateMappingColumns(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	url := b.files.setFile("/crm.csv", crmCSV)
	job := crmJob(url)
	_, err := b.create(t, "crm", job)
	require.NoError(t, err)

	// The file gains two columns.
	b.files.setFile("/crm.csv", "Acct,Segment,Name,Employees,Created,Revenue,Notes,Owner\n"+
		"A-1,SMB,Acme,10,03/15/2024,$1.00,x,ann\n"+
		"A-2,ENT,Globex,20,03/16/2024,$2.00,,bob\n"+
		"A-3,SMB,Initech,30,03/17/2024,$3.00,z,ann\n"+
		"A-4,MID,Umbrella,40,03/18/2024,$4.00,,cy\n")
	v, err := b.jobs.ValidateMapping(ctx, &intakev1.ValidateMappingRequest{Name: "jobs/crm"})
	require.NoError(t, err)
	require.True(t, v.GetValid(), "%v", v.GetFindings())
	byName := map[string]*intakev1.SourceColumn{}
	var names []string
	for _, c := range v.GetColumns() {
		byName[c.GetName()] = c
		names = append(names, c.GetName())
	}
	require.Equal(t, []string{"Acct", "Segment", "Name", "Employees", "Created", "Revenue", "Notes", "Owner"}, names)
	require.True(t, byName["Acct"].GetMapped())
	require.False(t, byName["Acct"].GetNew())
	require.False(t, byName["Notes"].GetMapped())
	require.False(t, byName["Notes"].GetNew(), "unmapped but in the file before")
	require.True(t, byName["Segment"].GetNew())
	require.False(t, byName["Segment"].GetMapped())
	require.True(t, byName["Owner"].GetNew())
	require.Equal(t, []string{"SMB", "ENT", "MID"}, byName["Segment"].GetSamples())
	require.Equal(t, []string{"x", "z"}, byName["Notes"].GetSamples())

	// That validation passed, so its columns are now the known ones.
	v, err = b.jobs.ValidateMapping(ctx, &intakev1.ValidateMappingRequest{Name: "jobs/crm"})
	require.NoError(t, err)
	for _, c := range v.GetColumns() {
		require.False(t, c.GetNew(), c.GetName())
	}

	// A job never validated has no "new" columns; neither has a job not saved.
	off := crmJob(url)
	off.Enabled = false
	_, err = b.jobs.CreateJob(ctx, &intakev1.CreateJobRequest{JobId: "off", Job: off})
	require.NoError(t, err)
	for _, req := range []*intakev1.ValidateMappingRequest{{Name: "jobs/off"}, {Job: off}} {
		v, err = b.jobs.ValidateMapping(ctx, req)
		require.NoError(t, err)
		for _, c := range v.GetColumns() {
			require.False(t, c.GetNew(), c.GetName())
		}
	}
}

// PreviewJob shows the first rows raw and transformed, a cell error where
// a value does not convert, row errors, and what was detected.
func TestPreviewJob(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	url := b.files.setFile("/crm.csv", "Acct;Name;Employees;Created;Revenue;Notes\n"+
		"A-1;Acme;1,200;03/15/2024;$1,200.00;first\n"+
		"A-2;Globex;85;04/01/2024;$99.50;\n"+
		"A-3;Initech;many;12/31/2023;$0.00;late\n"+
		"A-4;Umbrella;7;01/02/2024;($12.00);\n"+
		"A-5;Short\n")
	job := crmJob(url)
	job.Mapping.Entries = append(job.Mapping.Entries, &intakev1.MappingEntry{Attribute: "status", Source: &intakev1.MappingEntry_Constant{Constant: "customer"}})

	p, err := b.jobs.PreviewJob(ctx, &intakev1.PreviewJobRequest{Job: job})
	require.NoError(t, err)
	require.Empty(t, p.GetFindings())
	require.Equal(t, ";", p.GetDetected().GetDelimiter())
	require.Greater(t, p.GetDetected().GetDelimiterConfidence(), 0.5)
	require.Equal(t, []string{"Acct", "Name", "Employees", "Created", "Revenue", "Notes"}, p.GetHeader())
	require.Equal(t, []string{"account_id", "name", "employees", "created_date", "annual_revenue", "status"}, p.GetAttributes())
	require.Len(t, p.GetRows(), 5)

	cells := func(r *intakev1.PreviewRow) []string {
		var out []string
		for _, c := range r.GetCells() {
			switch {
			case c.GetError() != "":
				out = append(out, "error: "+c.GetError())
			case c.GetNull():
				out = append(out, "null")
			default:
				out = append(out, c.GetValue())
			}
		}
		return out
	}
	r := p.GetRows()[0]
	require.EqualValues(t, 2, r.GetRow())
	require.Equal(t, []string{"A-1", "Acme", "1,200", "03/15/2024", "$1,200.00", "first"}, r.GetRaw())
	require.Equal(t, []string{"A-1", "Acme", "1200", "2024-03-15", "1200.00", "customer"}, cells(r))
	require.Equal(t, []string{"A-4", "Umbrella", "7", "2024-01-02", "-12.00", "customer"}, cells(p.GetRows()[3]))
	bad := p.GetRows()[2]
	require.EqualValues(t, 4, bad.GetRow())
	require.Equal(t, `error: not a number: "many"`, cells(bad)[2])
	require.Equal(t, "Initech", cells(bad)[1], "the other cells of the row convert")
	short := p.GetRows()[4]
	require.EqualValues(t, 6, short.GetRow())
	require.Contains(t, short.GetError(), "2 fields")
	require.Empty(t, short.GetCells())

	// rows bounds the rows shown.
	p, err = b.jobs.PreviewJob(ctx, &intakev1.PreviewJobRequest{Job: job, Rows: 2})
	require.NoError(t, err)
	require.Len(t, p.GetRows(), 2)

	// A mapping with problems: its findings, and the rows raw.
	broken := crmJob(url, col("account_id", "Acct"), col("name", "Company"))
	p, err = b.jobs.PreviewJob(ctx, &intakev1.PreviewJobRequest{Job: broken})
	require.NoError(t, err)
	require.Equal(t, "COLUMN_NOT_IN_HEADER", p.GetFindings()[0].GetCode())
	require.Len(t, p.GetRows(), 5)
	require.Equal(t, "A-1", p.GetRows()[0].GetRaw()[0])
	require.Empty(t, p.GetRows()[0].GetCells())

	// A saved job previews by name.
	job.Mapping.Dialect = &intakev1.CsvDialect{Delimiter: ";"}
	_, err = b.create(t, "semi", job)
	require.NoError(t, err)
	p, err = b.jobs.PreviewJob(ctx, &intakev1.PreviewJobRequest{Name: "jobs/semi", Rows: 1})
	require.NoError(t, err)
	require.Equal(t, []string{"A-1", "Acme", "1200", "2024-03-15", "1200.00", "customer"}, cells(p.GetRows()[0]))
	require.Equal(t, ";", p.GetDetected().GetDelimiter())
}

// SuggestMapping proposes a mapping for a realistic export: keys first,
// synonyms, formats from the sample, and new attributes for the rest.
func TestSuggestMapping(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	url := b.files.setFile("/export.csv", "Acct ID,Company Name,E-mail,Signup Date,ARR,Seats\n"+
		"1001,Acme,ops@acme.example,03/15/2024,\"$1,200.00\",12\n"+
		"1002,Globex,it@globex.example,04/28/2024,$950.50,3\n"+
		"1003,Initech,,12/31/2023,\"$12,000.00\",40\n")
	job := accountsJobAt("export", url)
	job.Mapping = nil
	s, err := b.jobs.SuggestMapping(ctx, &intakev1.SuggestMappingRequest{Job: job})
	require.NoError(t, err)
	require.Equal(t, []string{"Acct ID", "Company Name", "E-mail", "Signup Date", "ARR", "Seats"}, s.GetHeader())
	require.Equal(t, ",", s.GetDetected().GetDelimiter())

	type entry struct{ attribute, column, format string }
	var got []entry
	for _, e := range s.GetMapping().GetEntries() {
		got = append(got, entry{e.GetAttribute(), e.GetColumn(), e.GetSourceFormat()})
		require.NotEmpty(t, e.GetNote(), e.GetAttribute())
	}
	require.Equal(t, []entry{
		{"account_id", "Acct ID", ""},
		{"name", "Company Name", ""},
		{"employees", "Seats", ""},
		{"annual_revenue", "ARR", ""},
		{"created_date", "Signup Date", "MM/dd/yyyy"},
		{"e_mail", "E-mail", ""},
	}, got)
	first := s.GetSuggestions()[0]
	require.EqualValues(t, 0, first.GetEntry())
	require.Equal(t, "Acct ID", first.GetColumn())
	require.Contains(t, first.GetReason(), "key")
	require.Contains(t, first.GetReason(), "synonym of account_id")
	require.Greater(t, first.GetConfidence(), 0.5)
	last := s.GetSuggestions()[len(s.GetSuggestions())-1]
	require.Equal(t, "new attribute", last.GetReason())
	require.Len(t, s.GetMapping().GetNewAttributes(), 1)
	na := s.GetMapping().GetNewAttributes()[0]
	require.Equal(t, "e_mail", na.GetAttributeId())
	require.Equal(t, "E-mail", na.GetDisplayName())
	require.Equal(t, intakev1.AttributeType_ATTRIBUTE_TYPE_TEXT, na.GetType())
	require.Equal(t, ",", s.GetMapping().GetDialect().GetDelimiter())

	// The suggestion is ready to use: it validates and saves.
	job.Mapping = s.GetMapping()
	v, err := b.jobs.ValidateMapping(ctx, &intakev1.ValidateMappingRequest{Job: job})
	require.NoError(t, err)
	require.True(t, v.GetValid(), "%v", v.GetFindings())
	require.Empty(t, v.GetFindings())
	p, err := b.jobs.PreviewJob(ctx, &intakev1.PreviewJobRequest{Job: job, Rows: 1})
	require.NoError(t, err)
	var values []string
	for _, c := range p.GetRows()[0].GetCells() {
		values = append(values, c.GetValue())
	}
	require.Equal(t, []string{"1001", "Acme", "12", "1200.00", "2024-03-15", "ops@acme.example"}, values)

	// Unmatched columns of inferred types become new attributes of those types.
	url = b.files.setFile("/types.csv", "Account,Renewal,Score,Budget,Flag\n"+
		"A-1,2024-01-31,\"1,234.5\",€10,yes\nA-2,2024-02-29,7,€20,no\n")
	job = accountsJobAt("types", url)
	s, err = b.jobs.SuggestMapping(ctx, &intakev1.SuggestMappingRequest{Job: job})
	require.NoError(t, err)
	types := map[string]intakev1.AttributeType{}
	for _, na := range s.GetMapping().GetNewAttributes() {
		types[na.GetAttributeId()] = na.GetType()
	}
	require.Equal(t, map[string]intakev1.AttributeType{
		"score":  intakev1.AttributeType_ATTRIBUTE_TYPE_NUMBER,
		"budget": intakev1.AttributeType_ATTRIBUTE_TYPE_CURRENCY,
		"flag":   intakev1.AttributeType_ATTRIBUTE_TYPE_TEXT,
	}, types)
	require.Equal(t, "account_id", s.GetMapping().GetEntries()[0].GetAttribute())

	// A key no column is named like: the column whose values look like
	// identifiers, with a low confidence.
	url = b.files.setFile("/de.csv", "Firma;Kundennr;Region\nMüller GmbH;DE-2001;Süd\nSchön KG;DE-2002;Süd\n")
	s, err = b.jobs.SuggestMapping(ctx, &intakev1.SuggestMappingRequest{Job: accountsJobAt("de", url)})
	require.NoError(t, err)
	require.Equal(t, ";", s.GetMapping().GetDialect().GetDelimiter())
	key := s.GetMapping().GetEntries()[0]
	require.Equal(t, "account_id", key.GetAttribute())
	require.Equal(t, "Kundennr", key.GetColumn())
	require.Contains(t, s.GetSuggestions()[0].GetReason(), "values look like identifiers")
	require.Less(t, s.GetSuggestions()[0].GetConfidence(), 0.8)
}

// The mapping is checked against the object's model now: custom
// attributes, and the new attributes the mapping declares, with their types.
func TestValidateCustomAttributes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	url := b.files.setFile("/crm.csv", crmCSV)
	_, err := b.dataModel().CreateAttribute(ctx, &intakev1.CreateAttributeRequest{Parent: "objects/accounts",
		Attribute: &intakev1.Attribute{AttributeId: "crm_notes", Type: intakev1.AttributeType_ATTRIBUTE_TYPE_TEXT}})
	require.NoError(t, err)

	job := crmJob(url, col("account_id", "Acct"), col("crm_notes", "Notes"), col("headcount", "Employees"))
	v, err := b.jobs.ValidateMapping(ctx, &intakev1.ValidateMappingRequest{Job: job})
	require.NoError(t, err)
	require.False(t, v.GetValid())
	require.Len(t, v.GetFindings(), 1, "%v", v.GetFindings())
	require.Equal(t, "UNKNOWN_ATTRIBUTE", v.GetFindings()[0].GetCode())
	require.Equal(t, "headcount", v.GetFindings()[0].GetAttribute())
	require.Contains(t, v.GetFindings()[0].GetMessage(), "crm_notes", "the custom attribute is listed")

	// Declared as new, it is checked with its type: "many" is no number.
	job.Mapping.NewAttributes = []*intakev1.NewAttribute{{AttributeId: "headcount", Type: intakev1.AttributeType_ATTRIBUTE_TYPE_NUMBER}}
	v, err = b.jobs.ValidateMapping(ctx, &intakev1.ValidateMappingRequest{Job: job})
	require.NoError(t, err)
	require.True(t, v.GetValid(), "%v", v.GetFindings())
	require.Len(t, v.GetFindings(), 1)
	require.Equal(t, "headcount", v.GetFindings()[0].GetAttribute())
	require.EqualValues(t, 4, v.GetFindings()[0].GetRow())

	// Declared as a date, none of its values convert: an error.
	job.Mapping.NewAttributes[0].Type = intakev1.AttributeType_ATTRIBUTE_TYPE_DATE
	v, err = b.jobs.ValidateMapping(ctx, &intakev1.ValidateMappingRequest{Job: job})
	require.NoError(t, err)
	require.False(t, v.GetValid())
	require.Equal(t, intakev1.FindingSeverity_FINDING_SEVERITY_ERROR, v.GetFindings()[0].GetSeverity())
	require.Contains(t, v.GetFindings()[0].GetMessage(), "none of the 4 values of entry 3 (headcount)")
}

// The sample is read as the job's file is: gzip, encodings, the header row
// and the rows to skip, with the file's row numbers.
func TestSampleDialects(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, err := zw.Write([]byte("Accounts export\r\nmade on Monday\r\nAcct|Name|Employees\r\n-|-|people\r\nA-1|Caf\xe9|3\r\nA-2|\"Two\r\nlines\"|4\r\n"))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	url := b.files.setFile("/export.csv.gz", gz.String())
	job := crmJob(url, col("account_id", "Acct"), col("name", "Name"), col("employees", "Employees"))
	job.Mapping.Dialect = &intakev1.CsvDialect{HeaderRow: 3, SkipRows: 1}

	p, err := b.jobs.PreviewJob(ctx, &intakev1.PreviewJobRequest{Job: job})
	require.NoError(t, err)
	require.Empty(t, p.GetFindings())
	require.True(t, p.GetDetected().GetGzip())
	require.Equal(t, "windows-1252", p.GetDetected().GetEncoding())
	require.Equal(t, "|", p.GetDetected().GetDelimiter())
	require.Equal(t, []string{"Acct", "Name", "Employees"}, p.GetHeader())
	require.Len(t, p.GetRows(), 2)
	require.EqualValues(t, 5, p.GetRows()[0].GetRow(), "rows 1-2 are above the header, row 4 is skipped")
	require.Equal(t, "Café", p.GetRows()[0].GetCells()[1].GetValue())
	require.EqualValues(t, 6, p.GetRows()[1].GetRow())
	require.Equal(t, "Two\nlines", p.GetRows()[1].GetRaw()[1])

	v, err := b.jobs.ValidateMapping(ctx, &intakev1.ValidateMappingRequest{Job: job})
	require.NoError(t, err)
	require.True(t, v.GetValid(), "%v", v.GetFindings())
	require.EqualValues(t, 2, v.GetRowsSampled())

	// A header row past the end of the file.
	job.Mapping.Dialect.HeaderRow = 40
	_, err = b.jobs.PreviewJob(ctx, &intakev1.PreviewJobRequest{Job: job})
	requireCode(t, err, codes.FailedPrecondition, "the header is row 40 (mapping.dialect.header_row) but the file has only 6 rows")
	// A dialect that cannot be.
	job.Mapping.Dialect = &intakev1.CsvDialect{Encoding: "ebcdic"}
	_, err = b.jobs.PreviewJob(ctx, &intakev1.PreviewJobRequest{Job: job})
	requireCode(t, err, codes.InvalidArgument, "job.mapping.dialect", "ebcdic")
}

// Timestamps: SuggestMapping proposes a Timestamp attribute (with its
// pattern) for a column with times of day, and the pattern for Date and
// Timestamp targets; ValidateMapping and PreviewJob read values without a
// zone in the job's schedule time zone, as the mapper does.
func TestTimestamps(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := testCtx(t)
	url := b.files.setFile("/events.csv", "Account,User,Activity,Module,When,Seen\n"+
		"A-1,u1,login,web,03/15/2024 10:15,03/15/2024 08:00\n"+
		"A-1,u2,export,web,07/01/2024 23:30,07/01/2024 09:45\n")
	job := &intakev1.Job{
		DisplayName: "events",
		Object:      intakev1.ObjectType_OBJECT_TYPE_USAGE,
		Connection:  &intakev1.Connection{Kind: &intakev1.Connection_Http{Http: &intakev1.HttpConnection{Url: url}}},
		Schedule: &intakev1.Schedule{TimeZone: "Europe/Berlin", Cadence: &intakev1.Schedule_Daily{
			Daily: &intakev1.Daily{Hour: 6}}},
	}
	s, err := b.jobs.SuggestMapping(ctx, &intakev1.SuggestMappingRequest{Job: job})
	require.NoError(t, err)
	formats := map[string]string{}
	for _, e := range s.GetMapping().GetEntries() {
		formats[e.GetAttribute()] = e.GetSourceFormat()
	}
	require.Equal(t, "MM/dd/yyyy HH:mm", formats["timestamp"], "a Timestamp target gets the sample's pattern")
	require.Equal(t, "MM/dd/yyyy HH:mm", formats["seen"])
	require.Len(t, s.GetMapping().GetNewAttributes(), 1)
	require.Equal(t, "seen", s.GetMapping().GetNewAttributes()[0].GetAttributeId())
	require.Equal(t, intakev1.AttributeType_ATTRIBUTE_TYPE_TIMESTAMP, s.GetMapping().GetNewAttributes()[0].GetType())

	// The suggestion validates; the preview shows instants read in Berlin
	// time (CET in March, CEST in July).
	job.Mapping = s.GetMapping()
	v, err := b.jobs.ValidateMapping(ctx, &intakev1.ValidateMappingRequest{Job: job})
	require.NoError(t, err)
	require.True(t, v.GetValid(), "%v", v.GetFindings())
	p, err := b.jobs.PreviewJob(ctx, &intakev1.PreviewJobRequest{Job: job})
	require.NoError(t, err)
	require.Empty(t, p.GetFindings())
	values := func(r *intakev1.PreviewRow) map[string]string {
		out := map[string]string{}
		for i, c := range r.GetCells() {
			out[p.GetAttributes()[i]] = c.GetValue()
		}
		return out
	}
	require.Equal(t, "2024-03-15T09:15:00Z", values(p.GetRows()[0])["timestamp"])
	require.Equal(t, "2024-07-01T21:30:00Z", values(p.GetRows()[1])["timestamp"])
	require.Equal(t, "2024-07-01T07:45:00Z", values(p.GetRows()[1])["seen"])

	// Without a schedule time zone they are UTC.
	job.Schedule.TimeZone = ""
	p, err = b.jobs.PreviewJob(ctx, &intakev1.PreviewJobRequest{Job: job, Rows: 1})
	require.NoError(t, err)
	require.Equal(t, "2024-03-15T10:15:00Z", values(p.GetRows()[0])["timestamp"])

	// A Date target gets the pattern of the column's timestamps too.
	url = b.files.setFile("/accounts.csv", "Account ID,Name,Created\nA-1,Acme,03/15/2024 10:15\nA-2,Globex,04/01/2024 08:00\n")
	s, err = b.jobs.SuggestMapping(ctx, &intakev1.SuggestMappingRequest{Job: accountsJobAt("accounts", url)})
	require.NoError(t, err)
	var created *intakev1.MappingEntry
	for _, e := range s.GetMapping().GetEntries() {
		if e.GetAttribute() == "created_date" {
			created = e
		}
	}
	require.NotNil(t, created)
	require.Equal(t, "MM/dd/yyyy HH:mm", created.GetSourceFormat())
}

package e2e

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

func column(attr, col string) *intakev1.MappingEntry {
	return &intakev1.MappingEntry{Attribute: attr, Source: &intakev1.MappingEntry_Column{Column: col}}
}

func columnFormat(attr, col, format string) *intakev1.MappingEntry {
	e := column(attr, col)
	e.SourceFormat = format
	return e
}

func constant(attr, value string) *intakev1.MappingEntry {
	return &intakev1.MappingEntry{Attribute: attr, Source: &intakev1.MappingEntry_Constant{Constant: value}}
}

func function(attr, expr string) *intakev1.MappingEntry {
	return &intakev1.MappingEntry{Attribute: attr, Source: &intakev1.MappingEntry_Function{Function: expr}}
}

// newJob is an enabled daily job importing url into object.
func newJob(object intakev1.ObjectType, url string, entries ...*intakev1.MappingEntry) *intakev1.Job {
	return &intakev1.Job{
		DisplayName:     fmt.Sprintf("%s from %s", object, url),
		Object:          object,
		Connection:      &intakev1.Connection{Kind: &intakev1.Connection_Http{Http: &intakev1.HttpConnection{Url: url}}},
		AllowNewRecords: true,
		Enabled:         true,
		Schedule:        &intakev1.Schedule{Cadence: &intakev1.Schedule_Daily{Daily: &intakev1.Daily{Hour: 4}}},
		Mapping:         &intakev1.MappingSpec{Entries: entries},
	}
}

// csvLines is a CSV file of the given lines.
func csvLines(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

// prefixedAccounts writes n accounts "PFX-1" … with a header of
// Id,Name,Employees,Created,Notes; edit replaces a row (1-based) by another line.
func prefixedAccounts(prefix string, n int, edit map[int]string) string {
	lines := []string{"Id,Name,Employees,Created,Notes"}
	for i := 1; i <= n; i++ {
		line := fmt.Sprintf("%s-%d,%s company %d,%d,%02d/%02d/2020,note %d", prefix, i, prefix, i, i*10, i%12+1, i%28+1, i)
		if e, ok := edit[i]; ok {
			line = e
		}
		lines = append(lines, line)
	}
	return csvLines(lines...)
}

func prefixedAccountsJob(url string) *intakev1.Job {
	return newJob(intakev1.ObjectType_OBJECT_TYPE_ACCOUNTS, url,
		column("account_id", "Id"), column("name", "Name"), column("employees", "Employees"),
		columnFormat("created_date", "Created", "MM/dd/yyyy"), column("notes", "Notes"))
}

func (s *system) accountsLike(ctx context.Context, t *testing.T, prefix string) int64 {
	t.Helper()
	return count(ctx, t, s.db, `SELECT count(*) FROM objects.accounts WHERE account_id LIKE $1`, prefix+"-%")
}

// TestMappingFeatures: dry runs, the error budget and the rejects download,
// header drift, custom attributes and function entries, end to end.
func TestMappingFeatures(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	s := startSystem(t)
	files := newFileServer(t, "")

	t.Run("dry run", func(t *testing.T) {
		url := files.setFile("/dry.csv", prefixedAccounts("DRY", 20, nil))
		job := s.createJob(ctx, t, prefixedAccountsJob(url))

		// On an empty table: every row would be created; nothing is.
		run := s.runOnce(ctx, t, job.GetName(), true)
		require.Equal(t, intakev1.RunState_RUN_STATE_SUCCEEDED, run.GetState(), run.GetMessage())
		require.True(t, run.GetDryRun())
		require.EqualValues(t, 20, run.GetCounters().GetRowsRead())
		require.EqualValues(t, 20, run.GetCounters().GetRowsCreated())
		require.Zero(t, s.accountsLike(ctx, t, "DRY"), "a dry run changes nothing")

		run = s.runOnce(ctx, t, job.GetName(), false)
		require.Equal(t, intakev1.RunState_RUN_STATE_SUCCEEDED, run.GetState(), run.GetMessage())
		require.EqualValues(t, 20, s.accountsLike(ctx, t, "DRY"))

		// A changed file: two rows edited, three new.
		body := prefixedAccounts("DRY", 23, map[int]string{
			4: "DRY-4,Renamed four,40,05/05/2020,note 4",
			9: "DRY-9,DRY company 9,9999,10/10/2020,note 9",
		})
		files.setFile("/dry.csv", body)
		run = s.runOnce(ctx, t, job.GetName(), true)
		require.Equal(t, intakev1.RunState_RUN_STATE_SUCCEEDED, run.GetState(), run.GetMessage())
		c := run.GetCounters()
		require.EqualValues(t, 23, c.GetRowsRead())
		require.EqualValues(t, 3, c.GetRowsCreated())
		require.EqualValues(t, 2, c.GetRowsUpdated())
		require.EqualValues(t, 18, c.GetRowsUnchanged())
		require.EqualValues(t, 20, s.accountsLike(ctx, t, "DRY"), "the table is unchanged")
		require.Zero(t, count(ctx, t, s.db, `SELECT count(*) FROM objects.accounts WHERE name = 'Renamed four'`))

		// A dry run is not "the last successful run": the real run is not skipped.
		run = s.runOnce(ctx, t, job.GetName(), false)
		require.Equal(t, intakev1.RunState_RUN_STATE_SUCCEEDED, run.GetState(), run.GetMessage())
		require.False(t, run.GetDryRun())
		require.EqualValues(t, 3, run.GetCounters().GetRowsCreated())
		require.EqualValues(t, 2, run.GetCounters().GetRowsUpdated())
		require.EqualValues(t, 23, s.accountsLike(ctx, t, "DRY"))

		// Nor is a dry run of an unchanged file skipped.
		run = s.runOnce(ctx, t, job.GetName(), true)
		require.Equal(t, intakev1.RunState_RUN_STATE_SUCCEEDED, run.GetState(), run.GetMessage())
		require.EqualValues(t, 23, run.GetCounters().GetRowsUnchanged())
	})

	t.Run("error budget exceeded", func(t *testing.T) {
		url := files.setFile("/budget.csv", prefixedAccounts("EB", 10, nil))
		spec := prefixedAccountsJob(url)
		spec.ErrorBudget = &intakev1.ErrorBudget{Limit: &intakev1.ErrorBudget_MaxRejectedRows{MaxRejectedRows: 2}}
		job := s.createJob(ctx, t, spec)

		// Three bad rows, each with a cell a spreadsheet would run as a formula.
		files.setFile("/budget.csv", prefixedAccounts("EB", 10, map[int]string{
			3: `EB-3,EB company 3,"=HYPERLINK(""http://evil.example"")",03/04/2020,note 3`,
			5: `EB-5,EB company 5,@SUM(A1:A2),05/06/2020,note 5`,
			7: `EB-7,+EB company 7,70,-13/45/2020,note 7`,
		}))
		run := s.runOnce(ctx, t, job.GetName(), false)
		require.Equal(t, intakev1.RunState_RUN_STATE_FAILED, run.GetState(), run.GetMessage())
		require.Contains(t, run.GetMessage(), "3 rows rejected, more than the error budget of 2 rows")
		require.EqualValues(t, 3, run.GetCounters().GetRowsRejected())
		require.Zero(t, s.accountsLike(ctx, t, "EB"), "over the budget nothing lands, not even the good rows")

		// The rejects download as CSV, formula cells neutralised.
		data, first := s.downloadRejects(ctx, t, run.GetName())
		require.True(t, strings.HasSuffix(first.GetFilename(), ".csv"), first.GetFilename())
		require.Contains(t, first.GetContentType(), "text/csv")
		r := csv.NewReader(bytes.NewReader(data))
		r.FieldsPerRecord = -1
		records, err := r.ReadAll()
		require.NoError(t, err, "the download is CSV:\n%s", data)
		require.Len(t, records, 4, "a header and the three rejected rows:\n%s", data)
		rows := map[string][]string{}
		for _, rec := range records[1:] {
			rows[rec[0]] = rec
			for _, cell := range rec {
				if cell != "" {
					require.NotContains(t, "=+-@", cell[:1], "a cell a spreadsheet would execute: %q in\n%s", cell, data)
				}
			}
		}
		require.Contains(t, rows, "4", "row 4 is EB-3 (the header is row 1):\n%s", data)
		require.Contains(t, rows, "6")
		require.Contains(t, rows, "8")
		require.Equal(t, "Employees", rows["4"][1])
		require.Equal(t, "Created", rows["8"][1])
		require.Contains(t, strings.Join(rows["4"], ","), `=HYPERLINK`, "the raw record is there, neutralised")
		require.Contains(t, strings.Join(rows["6"], ","), `@SUM(A1:A2)`)

		// A budget of 50% accepts the three of ten: the good rows land.
		job.ErrorBudget = &intakev1.ErrorBudget{Limit: &intakev1.ErrorBudget_MaxRejectedPercent{MaxRejectedPercent: 50}}
		_, err = s.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{Job: job})
		require.NoError(t, err, "the mapping did not change: no new validation needed")
		run = s.runOnce(ctx, t, job.GetName(), false)
		require.Equal(t, intakev1.RunState_RUN_STATE_PARTIALLY_SUCCEEDED, run.GetState(), run.GetMessage())
		require.EqualValues(t, 7, s.accountsLike(ctx, t, "EB"))
	})

	t.Run("header drift", func(t *testing.T) {
		url := files.setFile("/drift.csv", prefixedAccounts("HD", 5, nil))
		job := s.createJob(ctx, t, prefixedAccountsJob(url))
		run := s.runOnce(ctx, t, job.GetName(), false)
		require.Equal(t, intakev1.RunState_RUN_STATE_SUCCEEDED, run.GetState(), run.GetMessage())

		// A mapped column is gone: the run fails before anything lands.
		files.setFile("/drift.csv", csvLines("Id,Name,Employees,Created",
			"HD-1,Changed,1,01/01/2021", "HD-9,New,9,01/01/2021"))
		run = s.runOnce(ctx, t, job.GetName(), false)
		require.Equal(t, intakev1.RunState_RUN_STATE_FAILED, run.GetState(), run.GetMessage())
		require.Contains(t, run.GetMessage(), `mapped columns missing from the file: "Notes"`)
		require.Equal(t, []string{"Notes"}, run.GetMissingColumns())
		require.EqualValues(t, 5, s.accountsLike(ctx, t, "HD"))
		require.Zero(t, count(ctx, t, s.db, `SELECT count(*) FROM objects.accounts WHERE name = 'Changed'`))

		// A column new in the file: imported as before, and listed as new.
		files.setFile("/drift.csv", csvLines("Id,Name,Segment,Employees,Created,Notes",
			"HD-1,HD company 1,SMB,10,02/02/2020,note 1", "HD-6,HD company 6,ENT,60,07/07/2020,note 6"))
		run = s.runOnce(ctx, t, job.GetName(), false)
		require.Equal(t, intakev1.RunState_RUN_STATE_SUCCEEDED, run.GetState(), run.GetMessage())
		require.Equal(t, []string{"Segment"}, run.GetNewColumns())
		require.Empty(t, run.GetMissingColumns())
		require.EqualValues(t, 6, s.accountsLike(ctx, t, "HD"))

		// Validation shows it too: a column of the file, not mapped, new.
		v, err := s.jobs.ValidateMapping(ctx, &intakev1.ValidateMappingRequest{Name: job.GetName()})
		require.NoError(t, err)
		require.True(t, v.GetValid(), "%v", v.GetFindings())
		var seg *intakev1.SourceColumn
		for _, c := range v.GetColumns() {
			if c.GetName() == "Segment" {
				seg = c
			}
			if c.GetName() == "Name" {
				require.True(t, c.GetMapped())
				require.False(t, c.GetNew())
			}
		}
		require.NotNil(t, seg, "columns: %v", v.GetColumns())
		require.False(t, seg.GetMapped())
		require.True(t, seg.GetNew())
	})

	t.Run("custom attributes and functions", func(t *testing.T) {
		segment, err := s.model.CreateAttribute(ctx, &intakev1.CreateAttributeRequest{Parent: "objects/accounts",
			Attribute: &intakev1.Attribute{AttributeId: "segment", DisplayName: "Segment", Type: intakev1.AttributeType_ATTRIBUTE_TYPE_TEXT}})
		require.NoError(t, err)
		require.Equal(t, "objects/accounts/attributes/segment", segment.GetName())
		_, err = s.model.CreateAttribute(ctx, &intakev1.CreateAttributeRequest{Parent: "objects/accounts",
			Attribute: &intakev1.Attribute{AttributeId: "health_score", Type: intakev1.AttributeType_ATTRIBUTE_TYPE_NUMBER}})
		require.NoError(t, err)
		attrs, err := s.model.ListAttributes(ctx, &intakev1.ListAttributesRequest{Parent: "objects/accounts"})
		require.NoError(t, err)
		custom := map[string]intakev1.AttributeType{}
		for _, a := range attrs.GetAttributes() {
			if !a.GetSystem() {
				custom[a.GetAttributeId()] = a.GetType()
			}
		}
		require.Equal(t, intakev1.AttributeType_ATTRIBUTE_TYPE_TEXT, custom["segment"])
		require.Equal(t, intakev1.AttributeType_ATTRIBUTE_TYPE_NUMBER, custom["health_score"])

		url := files.setFile("/custom.csv", csvLines(
			"Id,First,Last,Seg,Score,Region code,Tier",
			"CA-1,Ada,Lovelace,smb,7,de,1",
			"CA-2,Alan,Turing,ent,9,uk,2",
			`CA-3,Grace,"Hopper, Jr.",mid,,us,3`,
		))
		spec := newJob(intakev1.ObjectType_OBJECT_TYPE_ACCOUNTS, url,
			column("account_id", "Id"),
			function("name", `First + " " + col["Last"]`),
			function("segment", `Seg.upperAscii()`),
			function("health_score", `Score == "" ? "" : string(int(Score) * 10)`),
			function("region", `"EU-" + col["Region code"].upperAscii()`),
			column("tier", "Tier"),
		)
		spec.Mapping.NewAttributes = []*intakev1.NewAttribute{{AttributeId: "tier", DisplayName: "Tier", Type: intakev1.AttributeType_ATTRIBUTE_TYPE_NUMBER}}
		job := s.createJob(ctx, t, spec)
		run := s.runOnce(ctx, t, job.GetName(), false)
		require.Equal(t, intakev1.RunState_RUN_STATE_SUCCEEDED, run.GetState(), "%s %v", run.GetMessage(), run.GetRowErrors())
		require.EqualValues(t, 3, run.GetCounters().GetRowsCreated())

		type row struct {
			name, segment, region string
			score                 *float64
			tier                  float64
		}
		got := map[string]row{}
		rs, err := s.db.Query(ctx, `SELECT account_id, name, segment, region, health_score::float8, tier::float8
			FROM objects.accounts WHERE account_id LIKE 'CA-%'`)
		require.NoError(t, err)
		for rs.Next() {
			var id string
			var r row
			require.NoError(t, rs.Scan(&id, &r.name, &r.segment, &r.region, &r.score, &r.tier))
			got[id] = r
		}
		require.NoError(t, rs.Err())
		seventy, ninety := 70.0, 90.0
		require.Equal(t, map[string]row{
			"CA-1": {"Ada Lovelace", "SMB", "EU-DE", &seventy, 1},
			"CA-2": {"Alan Turing", "ENT", "EU-UK", &ninety, 2},
			"CA-3": {"Grace Hopper, Jr.", "MID", "EU-US", nil, 3},
		}, got)

		// The mapped attribute cannot be deleted while the job maps it.
		_, err = s.model.DeleteAttribute(ctx, &intakev1.DeleteAttributeRequest{Name: "objects/accounts/attributes/segment"})
		require.Equal(t, codes.FailedPrecondition, status.Code(err), "%v", err)
		require.Contains(t, status.Convert(err).Message(), job.GetName())
		// Once the job is gone, it can.
		_, err = s.jobs.DeleteJob(ctx, &intakev1.DeleteJobRequest{Name: job.GetName()})
		require.NoError(t, err)
		_, err = s.model.DeleteAttribute(ctx, &intakev1.DeleteAttributeRequest{Name: "objects/accounts/attributes/segment"})
		require.NoError(t, err)
		require.Zero(t, count(ctx, t, s.db, `SELECT count(*) FROM information_schema.columns
			WHERE table_schema = 'objects' AND table_name = 'accounts' AND column_name = 'segment'`))
	})

	t.Run("an enabled job needs a passing validation", func(t *testing.T) {
		url := files.setFile("/unvalidated.csv", prefixedAccounts("UV", 2, nil))
		_, err := s.jobs.CreateJob(ctx, &intakev1.CreateJobRequest{Job: prefixedAccountsJob(url)})
		requireRefusedForValidation(t, err)

		bad := prefixedAccountsJob(url)
		bad.Mapping.Entries = append(bad.Mapping.Entries, column("industry", "No such column"))
		v, err := s.jobs.ValidateMapping(ctx, &intakev1.ValidateMappingRequest{Job: bad})
		require.NoError(t, err)
		require.False(t, v.GetValid())
		require.Empty(t, v.GetValidationToken())
		var found *intakev1.Finding
		for _, f := range v.GetFindings() {
			if f.GetCode() == "COLUMN_NOT_IN_HEADER" {
				found = f
			}
		}
		require.NotNil(t, found, "findings: %v", v.GetFindings())
		require.Equal(t, "No such column", found.GetColumn())
		require.Equal(t, "industry", found.GetAttribute())
		require.EqualValues(t, 5, found.GetEntry())

		// Editing the mapping of an enabled job needs a new validation.
		job := s.createJob(ctx, t, prefixedAccountsJob(url))
		job.Mapping.Entries = append(job.Mapping.Entries, constant("status", "customer"))
		_, err = s.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{Job: job})
		requireRefusedForValidation(t, err)
		v, err = s.jobs.ValidateMapping(ctx, &intakev1.ValidateMappingRequest{Job: job})
		require.NoError(t, err)
		require.True(t, v.GetValid(), "%v", v.GetFindings())
		updated, err := s.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{Job: job, ValidationToken: v.GetValidationToken()})
		require.NoError(t, err)
		require.True(t, updated.GetMappingValidated())
	})
}

// requireRefusedForValidation: saving an enabled job without a passing
// validation is refused, and the error says so.
func requireRefusedForValidation(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	require.Contains(t, []codes.Code{codes.FailedPrecondition, codes.InvalidArgument}, status.Code(err), "%v", err)
	require.Contains(t, strings.ToLower(status.Convert(err).Message()), "validat")
}

// runOnce starts a run (a dry run when dryRun) and watches it to its end.
func (s *system) runOnce(ctx context.Context, t *testing.T, job string, dryRun bool) *intakev1.Run {
	t.Helper()
	run, err := s.jobs.RunJob(ctx, &intakev1.RunJobRequest{Name: job, DryRun: dryRun})
	require.NoError(t, err)
	require.Equal(t, dryRun, run.GetDryRun())
	return s.wait(ctx, t, run.GetName(), nil)
}

// downloadRejects reads a run's rejects download whole; first is its first chunk.
func (s *system) downloadRejects(ctx context.Context, t *testing.T, run string) ([]byte, *intakev1.FileChunk) {
	t.Helper()
	stream, err := s.runs.DownloadRejects(ctx, &intakev1.DownloadRejectsRequest{Name: run})
	require.NoError(t, err)
	var (
		data  []byte
		first *intakev1.FileChunk
	)
	for {
		c, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if first == nil {
			first = c
		}
		data = append(data, c.GetData()...)
	}
	require.NotNil(t, first, "an empty download")
	return data, first
}

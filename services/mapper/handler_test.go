package mapper

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/pkg/csv"
	"github.com/intakehq/intake/pkg/mapping"
	"github.com/intakehq/intake/pkg/objects"
	pipelinev1 "github.com/intakehq/intake/proto/gen/intake/pipeline/v1"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// accountsModel is the accounts object's system attributes.
func accountsModel(t testing.TB) *intakev1.DataObject {
	t.Helper()
	obj, err := objects.Lookup(intakev1.ObjectType_OBJECT_TYPE_ACCOUNTS)
	require.NoError(t, err)
	return mapping.ModelOf(obj)
}

// twoColumns maps header "id", "name" onto account_id and name.
func twoColumns(t testing.TB, header ...string) *mapping.Plan {
	t.Helper()
	if header == nil {
		header = []string{"id", "name"}
	}
	plan, err := mapping.Compile(accountsModel(t), &intakev1.MappingSpec{Entries: []*intakev1.MappingEntry{
		{Attribute: "account_id", Source: &intakev1.MappingEntry_Column{Column: header[0]}},
		{Attribute: "name", Source: &intakev1.MappingEntry_Column{Column: header[1]}},
	}}, header)
	require.NoError(t, err)
	return plan
}

// parsed is one row of a mapped chunk: its values as text, or its errors.
type parsed struct {
	Row    int64
	Values []string
	Errors []string // "reason | record"
}

// mapAll maps data (first row 2) with the dialect and returns every row,
// mapped or rejected, in order.
func mapAll(t *testing.T, plan *mapping.Plan, d csv.Dialect, data string) []parsed {
	t.Helper()
	m := plan.NewMapper(0)
	defer m.Release()
	rows, errs, read, err := mapChunk(m, d, &pipelinev1.Chunk{FirstRow: 2, Data: []byte(data)})
	require.NoError(t, err)
	byRow := map[int64]*parsed{}
	for _, r := range rows {
		p := &parsed{Row: r.GetRow()}
		for _, v := range r.GetValues() {
			p.Values = append(p.Values, v.GetText())
		}
		byRow[r.GetRow()] = p
	}
	for _, e := range errs {
		p := byRow[e.Row]
		if p == nil {
			p = &parsed{Row: e.Row}
			byRow[e.Row] = p
		}
		p.Errors = append(p.Errors, e.Reason+" | "+e.record)
	}
	require.Len(t, byRow, int(read), "every record read is a row or a rejected row")
	var out []parsed
	for row := int64(2); len(out) < len(byRow); row++ {
		if p, ok := byRow[row]; ok {
			out = append(out, *p)
		}
	}
	return out
}

func TestMalformedRecordsAreRejectedAndReadingGoesOn(t *testing.T) {
	t.Parallel()
	data := "a,\"x\"y\nz\",b\nc,d\ne,f\"g\n\nh,\"i\"\"j\"\n"
	got := mapAll(t, twoColumns(t), csv.Default, data)
	require.Equal(t, []parsed{
		// The stray quote keeps the field open across the line break, as
		// the fetcher's chunker cut the file; the record is rejected with
		// its raw text.
		{Row: 2, Errors: []string{`malformed CSV: extraneous quote in a quoted field at character 5 (a quote inside quotes is written "") | ` +
			"a,\"x\"y\nz\",b"}},
		{Row: 3, Values: []string{"c", "d"}},
		{Row: 4, Values: []string{"e", `f"g`}}, // a quote inside an unquoted field is literal
		{Row: 5, Values: []string{"h", `i"j`}}, // the blank line is not a record
	}, got)
}

func TestBackslashEscapes(t *testing.T) {
	t.Parallel()
	d := csv.Dialect{Comma: ',', Quote: '"', Escape: '\\'}
	data := "A1,\"say \\\"hi\\\"\"\nA2,\"c:\\\\dir\\\\\"\nA3,\"two\\\nlines\"\nA4,\"bad\"quote\"\n"
	got := mapAll(t, twoColumns(t), d, data)
	require.Equal(t, []parsed{
		{Row: 2, Values: []string{"A1", `say "hi"`}},
		{Row: 3, Values: []string{"A2", `c:\dir\`}},
		{Row: 4, Values: []string{"A3", "two\\\nlines"}},
		{Row: 5, Errors: []string{`malformed CSV: extraneous quote in a quoted field at character 8 (a quote inside quotes is written \") | A4,"bad"quote"`}},
	}, got)
}

func TestSemicolonsWithoutQuoting(t *testing.T) {
	t.Parallel()
	d := csv.Dialect{Comma: ';'}
	data := "A1;\"Acme\"\nA2;5\" disk\nA3;\"open\nA4;x;y\n"
	got := mapAll(t, twoColumns(t), d, data)
	require.Equal(t, []parsed{
		{Row: 2, Values: []string{"A1", `"Acme"`}},
		{Row: 3, Values: []string{"A2", `5" disk`}},
		{Row: 4, Values: []string{"A3", `"open`}},
		{Row: 5, Errors: []string{"3 fields, the header has 2 | A4;x;y"}},
	}, got)
}

func TestChunkDialect(t *testing.T) {
	t.Parallel()
	job := &intakev1.Job{Mapping: &intakev1.MappingSpec{Dialect: &intakev1.CsvDialect{Delimiter: ";", Escape: `\\`}}}
	d, err := chunkDialect(&pipelinev1.Chunk{Job: job, Dialect: &intakev1.CsvDialect{Delimiter: "|", Quote: "none", Escape: "none"}})
	require.NoError(t, err)
	require.Equal(t, csv.Dialect{Comma: '|'}, d, "the chunk's resolved dialect")
	d, err = chunkDialect(&pipelinev1.Chunk{Job: job})
	require.NoError(t, err)
	require.Equal(t, csv.Dialect{Comma: ';', Quote: '"', Escape: '\\'}, d, "a chunk queued before chunks carried a dialect: the job's")
	d, err = chunkDialect(&pipelinev1.Chunk{Job: &intakev1.Job{}})
	require.NoError(t, err)
	require.Equal(t, csv.Default, d)
	_, err = chunkDialect(&pipelinev1.Chunk{Job: &intakev1.Job{Mapping: &intakev1.MappingSpec{Dialect: &intakev1.CsvDialect{Delimiter: ";;"}}}})
	require.EqualError(t, err, `the job's CSV dialect: the delimiter ";;" is not one character`)
}

func TestRecordText(t *testing.T) {
	t.Parallel()
	require.Equal(t, "a,b", recordText([]byte("a,b")))
	require.Equal(t, "Caf\uFFFD,x", recordText([]byte("Caf\xe9,x")), "a protobuf string is valid UTF-8")
	long := strings.Repeat("é", maxRecordBytes) // 2 bytes each
	got := recordText([]byte(long))
	require.Len(t, got, maxRecordBytes)
	require.Equal(t, long[:maxRecordBytes], got, "cut at a character boundary")
	got = recordText([]byte("x" + long))
	require.Len(t, got, maxRecordBytes-1)

	// Every error of a rejected row carries the record; the report is cut
	// by size.
	errs := []rowError{
		{RowError: mapping.RowError{Row: 2, Column: "a", Reason: "bad"}, record: "r2"},
		{RowError: mapping.RowError{Row: 2, Column: "b", Reason: "bad"}, record: "r2"},
	}
	out := rowErrorsForReport(slog.New(slog.NewTextHandler(io.Discard, nil)), errs)
	require.Equal(t, []*intakev1.RowError{
		{Row: 2, Column: "a", Reason: "bad", Record: "r2"},
		{Row: 2, Column: "b", Reason: "bad", Record: "r2"},
	}, out)
	var many []rowError
	for i := range 100 {
		many = append(many, rowError{RowError: mapping.RowError{Row: int64(i + 2), Reason: "bad"}, record: long})
	}
	out = rowErrorsForReport(slog.New(slog.NewTextHandler(io.Discard, nil)), many)
	require.Less(t, len(out), 100)
	require.Greater(t, len(out), 20)
}

// BenchmarkMapChunk parses and maps 1,000-row chunks of a 12-column file:
// the mapper's work per chunk without NATS and the API.
func BenchmarkMapChunk(b *testing.B) {
	header := []string{"Account ID", "Name", "Status", "Industry", "Region", "Parent", "Employees", "Revenue", "MRR", "Active", "Created", "Renewal"}
	attrs := []string{"account_id", "name", "status", "industry", "region", "parent_account_id", "employees", "annual_revenue", "mrr", "is_active", "created_date", "renewal_date"}
	spec := &intakev1.MappingSpec{}
	for i, a := range attrs {
		e := &intakev1.MappingEntry{Attribute: a, Source: &intakev1.MappingEntry_Column{Column: header[i]}}
		if a == "renewal_date" {
			e.SourceFormat = "MM/dd/yyyy"
		}
		spec.Entries = append(spec.Entries, e)
	}
	plan, err := mapping.Compile(accountsModel(b), spec, header)
	require.NoError(b, err)
	var buf bytes.Buffer
	const rows = 1000
	for i := range rows {
		fmt.Fprintf(&buf, "ACC-%07d,\"Company %d, Inc.\",active,Software,EMEA,,\"%d,%03d\",\"$%d,%03d.%02d\",%d.50,%s,20%02d-%02d-%02d,%02d/%02d/2025\n",
			i, i, 1+i%50, i%1000, i%900+1, i%1000, i%100, i, []string{"true", "false", "yes", "no"}[i%4], i%25, i%12+1, i%28+1, i%12+1, i%28+1)
	}
	chunk := &pipelinev1.Chunk{FirstRow: 2, Rows: rows, Data: buf.Bytes(), Header: header}
	b.SetBytes(int64(buf.Len()))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		m := plan.NewMapper(rows)
		out, errs, _, err := mapChunk(m, csv.Default, chunk)
		if err != nil || len(errs) > 0 || len(out) != rows {
			b.Fatal(err, errs)
		}
		m.Release()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*rows)/b.Elapsed().Seconds(), "rows/s")
}

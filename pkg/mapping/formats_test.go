package mapping_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/pkg/mapping"
	pipelinev1 "github.com/intakehq/intake/proto/gen/intake/pipeline/v1"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// oneAttribute is a model of a key and one attribute "v" of type t.
func oneAttribute(t intakev1.AttributeType) *intakev1.DataObject {
	return &intakev1.DataObject{
		Name: "objects/things",
		Keys: []string{"id"},
		Attributes: []*intakev1.Attribute{
			{AttributeId: "id", Type: tText, Key: true},
			{AttributeId: "v", Type: t},
		},
	}
}

// preview maps the cell through an entry of type t and format, and returns
// its preview cell.
func preview(t *testing.T, typ intakev1.AttributeType, format, cell string, dialect *intakev1.CsvDialect) mapping.Cell {
	t.Helper()
	s := spec(col("id", "id"), colf("v", "v", format))
	s.Dialect = dialect
	plan, err := mapping.Compile(oneAttribute(typ), s, []string{"id", "v"})
	require.NoError(t, err)
	cells, rerr := plan.Preview(2, []string{"K", cell})
	require.Nil(t, rerr)
	require.Equal(t, mapping.Cell{Value: "K"}, cells[0])
	return cells[1]
}

// TestEveryTypeAndFormat converts cells of every attribute type and source
// format, as a user writes them, to the value that is stored (shown as the
// preview shows it).
func TestEveryTypeAndFormat(t *testing.T) {
	t.Parallel()
	type row struct {
		format, in string
		want       string // the stored value as text; "" with null or err
		null       bool
		err        string // the reason, when the cell does not convert
	}
	nulls := &intakev1.CsvDialect{NullValues: []string{"NULL", "n/a", "-"}}
	for _, tc := range []struct {
		typ     intakev1.AttributeType
		dialect *intakev1.CsvDialect
		rows    []row
	}{
		{typ: tDate, rows: []row{
			// ISO 8601 (the default) and explicit patterns.
			{format: "", in: "2024-03-01", want: "2024-03-01"},
			{format: "iso8601", in: "2024-03-01T23:59:59-08:00", want: "2024-03-01"},
			{format: "iso8601", in: "2024-03-01T10:00:00.123Z", want: "2024-03-01"},
			{format: "yyyy-MM-dd", in: "2024-3-1", want: "2024-03-01"},
			{format: "yyyy-MM-dd", in: "2024-02-30", err: `"2024-02-30" does not match date format yyyy-MM-dd: day 30 is not 1-29 in February 2024`},
			{format: "MM/dd/yyyy", in: "03/01/2024", want: "2024-03-01"},
			{format: "MM/dd/yyyy", in: "3/1/2024", want: "2024-03-01"},
			{format: "MM/dd/yyyy", in: "2024-03-01", err: `"2024-03-01" does not match date format MM/dd/yyyy`},
			{format: "yyyy-MM-dd HH:mm", in: "2024-03-01 17:45", want: "2024-03-01"},
			{format: "yyyy-MM-dd HH:mm", in: "2024-03-01 25:00", err: `"2024-03-01 25:00" does not match date format yyyy-MM-dd HH:mm: hour 25 is not 0-23`},
			{format: "yyyy-MM-dd HH:mm", in: "2024-03-01", err: `"2024-03-01" does not match date format yyyy-MM-dd HH:mm`},
			{format: "dd.MM.yyyy", in: "01.03.2024", want: "2024-03-01"},
			{format: "d MMMM yyyy", in: "1 March 2024", want: "2024-03-01"},
			{format: "dd-MMM-yy", in: "01-Mar-24", want: "2024-03-01"},
			// Ambiguous dates: the format decides.
			{format: "MM/dd/yyyy", in: "01/02/2024", want: "2024-01-02"},
			{format: "dd/MM/yyyy", in: "01/02/2024", want: "2024-02-01"},
			{format: "dd/MM/yyyy", in: "12/31/2024", err: `"12/31/2024" does not match date format dd/MM/yyyy: month 31 is not 1-12`},
			// Unix time.
			{format: "unix", in: "1709251200", want: "2024-03-01"},
			{format: "unix", in: "1709337599", want: "2024-03-01"},
			{format: "unix", in: "-86400", want: "1969-12-31"},
			{format: "unix_ms", in: "1709251200000", want: "2024-03-01"},
			{format: "unix_ms", in: "1709251200", want: "1970-01-20"},
			{format: "unix", in: "2024-03-01", err: `"2024-03-01" does not match date format unix`},
			// Empty and null.
			{format: "MM/dd/yyyy", in: "", null: true},
			{format: "MM/dd/yyyy", in: "   ", null: true},
		}},
		{typ: tTimestamp, rows: []row{
			// ISO 8601 / RFC 3339 (the default); shown as RFC 3339 in UTC.
			{format: "", in: "2024-03-01T10:15:00Z", want: "2024-03-01T10:15:00Z"},
			{format: "", in: "2024-03-01T10:15:00.250+01:00", want: "2024-03-01T09:15:00.25Z"},
			{format: "", in: "2024-03-01 10:15:00", want: "2024-03-01T10:15:00Z"},
			{format: "", in: "2024-03-01", want: "2024-03-01T00:00:00Z"},
			{format: "iso8601", in: "2024-03-01T10:15", want: "2024-03-01T10:15:00Z"},
			{format: "", in: "2024-03-01T25:00:00Z", err: `"2024-03-01T25:00:00Z" does not match timestamp format ISO 8601 (e.g. 2024-03-01T10:15:00Z): hour 25 is not 0-23`},
			{format: "", in: "2024-02-30 10:00", err: `"2024-02-30 10:00" does not match timestamp format ISO 8601 (e.g. 2024-03-01T10:15:00Z): day 30 is not 1-29 in February 2024`},
			{format: "", in: "03/01/2024 10:15", err: `"03/01/2024 10:15" does not match timestamp format ISO 8601 (e.g. 2024-03-01T10:15:00Z)`},
			{format: "", in: "2024-03-01T10:15:00+20:00", err: `"2024-03-01T10:15:00+20:00" does not match timestamp format ISO 8601 (e.g. 2024-03-01T10:15:00Z): offset +20:00 is not between -18:00 and +18:00`},
			// Patterns with time and zone tokens.
			{format: "MM/dd/yyyy HH:mm", in: "03/01/2024 10:15", want: "2024-03-01T10:15:00Z"},
			{format: "MM/dd/yyyy h:mm a", in: "3/1/2024 10:15 PM", want: "2024-03-01T22:15:00Z"},
			{format: "dd.MM.yyyy HH:mm:ss.SSS", in: "01.03.2024 10:15:00.123", want: "2024-03-01T10:15:00.123Z"},
			{format: "yyyy-MM-dd HH:mm:ssXXX", in: "2024-03-01 10:15:00-08:00", want: "2024-03-01T18:15:00Z"},
			{format: "yyyy-MM-dd HH:mm:ss Z", in: "2024-03-01 10:15:00 +0530", want: "2024-03-01T04:45:00Z"},
			{format: "MM/dd/yyyy HH:mm", in: "2024-03-01 10:15", err: `"2024-03-01 10:15" does not match timestamp format MM/dd/yyyy HH:mm`},
			// Unix time.
			{format: "unix", in: "1709288100", want: "2024-03-01T10:15:00Z"},
			{format: "unix", in: "1709288100.5", want: "2024-03-01T10:15:00.5Z"},
			{format: "unix_ms", in: "1709288100123", want: "2024-03-01T10:15:00.123Z"},
			{format: "unix", in: "99999999999999", err: `"99999999999999" does not match timestamp format unix: the timestamp is out of range (years 0000-9999)`},
			{format: "unix", in: "soon", err: `"soon" does not match timestamp format unix`},
			{format: "", in: "", null: true},
		}},
		{typ: tNumber, rows: []row{
			{format: "", in: "1234.5", want: "1234.5"},
			{format: "", in: "1,234.5", want: "1234.5"},
			{format: "", in: "-1,234,567.00", want: "-1234567.00"},
			{format: "", in: "1.5e3", want: "1500"},
			{format: "", in: "1,23", err: `not a number: "1,23"`},
			{format: "1,234.5", in: "12,345,678", want: "12345678"},
			{format: "1.234,5", in: "1.234,5", want: "1234.5"},
			{format: "1.234,5", in: "1234,5", want: "1234.5"},
			{format: "1.234,5", in: "1,5", want: "1.5"},
			{format: "1.234,5", in: "1.5", err: `not a number in the format 1.234,56: "1.5"`},
			{format: "1 234,5", in: "1 234 567,89", want: "1234567.89"},
			{format: "1 234,5", in: "1\u00a0234,5", want: "1234.5"},
			{format: "1234,5", in: "-0,25", want: "-0.25"},
			{format: "1'234.5", in: "1'234'567.5", want: "1234567.5"},
			{format: "", in: "12 apples", err: `not a number: "12 apples"`},
			{format: "", in: "$12", err: `not a number: "$12"`},
			{format: "", in: "", null: true},
		}},
		{typ: tCurrency, rows: []row{
			{format: "", in: "$1,234.56", want: "1234.56"},
			{format: "", in: "USD 1,234.56", want: "1234.56"},
			{format: "", in: "1,234.56 USD", want: "1234.56"},
			{format: "", in: "($1,234.56)", want: "-1234.56"},
			{format: "", in: "(1,234.56)", want: "-1234.56"},
			{format: "", in: "-$5", want: "-5"},
			{format: "", in: "£0.99", want: "0.99"},
			{format: "", in: "¥1,000", want: "1000"},
			{format: "", in: "12 apples", err: `not a currency amount: "12 apples"`},
			{format: "", in: "(-5)", err: `not a currency amount: "(-5)"`},
			{format: "1.234,56 €", in: "1.234,56 €", want: "1234.56"},
			{format: "1.234,56 €", in: "(1.234,56 €)", want: "-1234.56"},
			{format: "1.234,56 €", in: "EUR -12,5", want: "-12.5"},
			{format: "1.234,56 €", in: "CHF 1'000", err: `not a currency amount in the format 1.234,56: "CHF 1'000"`},
			{format: "$1,234.56", in: "$ 0.5", want: "0.5"},
			{format: "", in: "", null: true},
		}},
		{typ: tBoolean, rows: []row{
			{in: "true", want: "true"}, {in: "FALSE", want: "false"}, {in: "Yes", want: "true"}, {in: "no", want: "false"},
			{in: "y", want: "true"}, {in: "N", want: "false"}, {in: "1", want: "true"}, {in: "0", want: "false"},
			{in: "on", want: "true"}, {in: "off", want: "false"}, {in: " t ", want: "true"},
			{in: "2", err: `not a boolean: "2" (use true/false, yes/no, y/n or 1/0)`},
			{in: "", null: true},
		}},
		{typ: tText, rows: []row{
			{in: "Acme, Inc.", want: "Acme, Inc."},
			{in: "  spaced  ", want: "  spaced  "},
			{in: "line\nbreak", want: "line\nbreak"},
			{in: "ab\xffc", err: "invalid UTF-8 byte at position 3 (0xff)"},
			{in: "", null: true},
			{in: "  ", null: true},
		}},
		{typ: tFK, rows: []row{
			{in: "ACC-1", want: "ACC-1"},
			{in: " ACC-1", want: " ACC-1"},
			{in: "A\x00", err: "not a valid reference: NUL byte at position 2 (text cannot hold NUL)"},
			{in: "", null: true},
		}},
		// Null markers of the dialect (compared trimmed) are null for every type.
		{typ: tText, dialect: nulls, rows: []row{
			{in: "NULL", null: true}, {in: " n/a ", null: true}, {in: "-", null: true}, {in: "null", want: "null"}, {in: "N/A", want: "N/A"},
		}},
		{typ: tNumber, dialect: nulls, rows: []row{{in: "-", null: true}, {in: "NULL", null: true}, {in: "-1", want: "-1"}}},
		{typ: tDate, dialect: nulls, rows: []row{{in: "n/a", null: true}}},
		// trim_space trims text too.
		{typ: tText, dialect: &intakev1.CsvDialect{TrimSpace: true}, rows: []row{{in: "  spaced  ", want: "spaced"}, {in: "\ta\t", want: "a"}}},
		{typ: tFK, dialect: &intakev1.CsvDialect{TrimSpace: true}, rows: []row{{in: " ACC-1 ", want: "ACC-1"}}},
	} {
		for _, r := range tc.rows {
			name := tc.typ.String() + "/" + r.format + "/" + r.in
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				got := preview(t, tc.typ, r.format, r.in, tc.dialect)
				require.Equal(t, mapping.Cell{Value: r.want, Null: r.null, Err: r.err}, got)
			})
		}
	}
}

func TestConstantsConvertLikeCells(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		typ      intakev1.AttributeType
		format   string
		constant string
		want     mapping.Cell
	}{
		{tCurrency, "", "($12.50)", mapping.Cell{Value: "-12.50"}},
		{tDate, "dd/MM/yyyy", "01/02/2024", mapping.Cell{Value: "2024-02-01"}},
		{tTimestamp, "", "2024-03-01T10:15:00+01:00", mapping.Cell{Value: "2024-03-01T09:15:00Z"}},
		{tText, "", "  kept  ", mapping.Cell{Value: "  kept  "}},
		{tFK, "", "ACC-1", mapping.Cell{Value: "ACC-1"}},
		{tBoolean, "", "", mapping.Cell{Null: true}},
	} {
		plan, err := mapping.Compile(oneAttribute(tc.typ), spec(col("id", "id"), &intakev1.MappingEntry{
			Attribute: "v", Source: &intakev1.MappingEntry_Constant{Constant: tc.constant}, SourceFormat: tc.format,
		}), []string{"id"})
		require.NoError(t, err)
		cells, rerr := plan.Preview(2, []string{"K"})
		require.Nil(t, rerr)
		require.Equal(t, tc.want, cells[1], "%v %q", tc.typ, tc.constant)
	}
}

// Timestamps written without a zone are read in the plan's time zone (the
// job's schedule time zone); those with one, and unix times, are exact.
func TestTimestampsInTheJobsTimeZone(t *testing.T) {
	t.Parallel()
	berlin, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	s := spec(col("id", "id"), col("v", "v"))
	plan, err := mapping.CompileWith(oneAttribute(tTimestamp), s, []string{"id", "v"}, mapping.CompileOptions{Location: berlin})
	require.NoError(t, err)
	require.Equal(t, berlin, plan.Location())
	require.Equal(t, []intakev1.AttributeType{tText, tTimestamp}, plan.Types())
	for in, want := range map[string]string{
		"2024-03-01 10:15":          "2024-03-01T09:15:00Z", // CET, +01:00
		"2024-07-01T10:15:00":       "2024-07-01T08:15:00Z", // CEST, +02:00
		"2024-03-31 02:30":          "2024-03-31T01:30:00Z", // skipped: 03:30 CEST
		"2024-10-27 02:30":          "2024-10-27T00:30:00Z", // twice: the first, CEST
		"2024-03-01T10:15:00Z":      "2024-03-01T10:15:00Z",
		"2024-03-01T10:15:00-05:00": "2024-03-01T15:15:00Z",
	} {
		values, errs := plan.MapRecord(2, []string{"K", in})
		require.Empty(t, errs, in)
		require.Equal(t, want, mapping.Text(values[1]), in)
		want, _ := time.Parse(time.RFC3339, want)
		require.Equal(t, want.UnixMicro(), values[1].GetTimestamp(), in)
	}

	// Compile reads them as UTC; so does a nil location.
	for _, compile := range []func() (*mapping.Plan, error){
		func() (*mapping.Plan, error) {
			return mapping.Compile(oneAttribute(tTimestamp), s, []string{"id", "v"})
		},
		func() (*mapping.Plan, error) {
			return mapping.CompileWith(oneAttribute(tTimestamp), s, []string{"id", "v"}, mapping.CompileOptions{})
		},
	} {
		plan, err := compile()
		require.NoError(t, err)
		require.Equal(t, time.UTC, plan.Location())
		cells, rerr := plan.Preview(2, []string{"K", "2024-03-01 10:15"})
		require.Nil(t, rerr)
		require.Equal(t, mapping.Cell{Value: "2024-03-01T10:15:00Z"}, cells[1])
	}
}

func TestJobLocation(t *testing.T) {
	t.Parallel()
	job := func(tz string) *intakev1.Job { return &intakev1.Job{Schedule: &intakev1.Schedule{TimeZone: tz}} }
	require.Equal(t, "Europe/Berlin", mapping.JobLocation(job("Europe/Berlin")).String())
	require.Equal(t, time.UTC, mapping.JobLocation(job("")))
	require.Equal(t, time.UTC, mapping.JobLocation(job("Mars/Olympus_Mons")))
	require.Equal(t, time.UTC, mapping.JobLocation(job("Local")))
	require.Equal(t, time.UTC, mapping.JobLocation(&intakev1.Job{}))
	require.Equal(t, time.UTC, mapping.JobLocation(nil))
}

// A Mapper hands out timestamp values from its blocks: each row keeps its own.
func TestMapperKeepsEveryRowsTimestamp(t *testing.T) {
	t.Parallel()
	plan, err := mapping.Compile(oneAttribute(tTimestamp), spec(col("id", "id"), colf("v", "v", "unix")), []string{"id", "v"})
	require.NoError(t, err)
	m := plan.NewMapper(0)
	defer m.Release()
	var rows []*pipelinev1.Row
	for i := range 1000 {
		r, errs := m.MapRecord(int64(i+2), []string{"K", strconv.Itoa(1709251200 + i)}, nil)
		require.Empty(t, errs)
		rows = append(rows, r)
	}
	for i, r := range rows {
		require.Equal(t, int64(1709251200+i)*1_000_000, r.GetValues()[1].GetTimestamp(), "row %d", i+2)
	}
}

package mapping_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/pkg/mapping"
	pipelinev1 "github.com/intakehq/intake/proto/gen/intake/pipeline/v1"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

var fnHeader = []string{"Id", "First Name", "Last", "Region", "Amount", "When", "Flag", "row", "in", "Dup", "Dup"}

// mapOne compiles a spec of the key and one function entry and maps record.
func mapOne(t *testing.T, entry *intakev1.MappingEntry, record []string, dialect *intakev1.CsvDialect) ([]*pipelinev1.Value, []mapping.RowError) {
	t.Helper()
	s := spec(col("account_id", "Id"), entry)
	s.Dialect = dialect
	plan, err := mapping.Compile(accounts(t), s, fnHeader)
	require.NoError(t, err)
	values, errs := plan.MapRecord(5, record)
	if values != nil {
		values = values[1:]
	}
	return values, errs
}

func withFormat(e *intakev1.MappingEntry, format string) *intakev1.MappingEntry {
	e.SourceFormat = format
	return e
}

func TestFunctionResults(t *testing.T) {
	t.Parallel()
	record := []string{"A-1", "Ada", "Lovelace", "EMEA", "1.234,50", "12/31/2024", "yes", "r", "i", "d1", "d2"}
	for _, tc := range []struct {
		name  string
		entry *intakev1.MappingEntry
		want  *pipelinev1.Value
	}{
		{"concatenation", fn("notes", `col["First Name"] + " " + col["Last"]`), text("Ada Lovelace")},
		{"column variables", fn("notes", `Last + ", " + Region`), text("Lovelace, EMEA")},
		{"field selection", fn("notes", `col.Last + "!"`), text("Lovelace!")},
		{"one cell", fn("notes", `Region`), text("EMEA")},
		{"CEL functions", fn("notes", `col["First Name"].upperAscii() + " " + Last.substring(0, 4)`), text("ADA Love")},
		{"conditional", fn("region", `Region == "EMEA" ? "Europe" : Region`), text("Europe")},
		{"row number", fn("notes", `"row " + string(row)`), text("row 5")},
		{"reserved names only through col", fn("notes", `col["row"] + col["in"]`), text("ri")},
		{"has", fn("notes", `has(col.Region) ? "yes" : "no"`), text("yes")},
		{"string through the source format", withFormat(fn("employees", `Amount`), "1.234,5"), decimal("1234.50")},
		{"string to a date", withFormat(fn("created_date", `col["When"]`), "MM/dd/yyyy"), date(2024, 12, 31)},
		{"int to a number", fn("employees", `size(Last) * 1000`), decimal("8000")},
		{"double to currency", fn("mrr", `double(size(Last)) / 4.0`), decimal("2")},
		{"double with a fraction", fn("mrr", `1.0 / 8.0`), decimal("0.125")},
		{"int to text", fn("notes", `size(Last)`), text("8")},
		{"int to a unix date", withFormat(fn("renewal_date", `1706659200`), "unix"), date(2024, 1, 31)},
		{"bool to boolean", fn("is_active", `Flag == "yes"`), boolean(true)},
		{"bool to text", fn("notes", `Flag == "no"`), text("false")},
		{"string to boolean", fn("is_active", `Flag`), boolean(true)},
		{"int to boolean", fn("is_active", `0`), boolean(false)},
		{"empty string is null", fn("notes", `""`), null()},
		{"null", fn("notes", `Flag == "yes" ? dyn(null) : Flag`), null()},
		{"text keeps spaces", fn("notes", `"  a  "`), text("  a  ")},
		{"foreign key", fn("parent_account_id", `"ACC-" + col["Id"]`), text("ACC-A-1")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			values, errs := mapOne(t, tc.entry, record, nil)
			require.Empty(t, errs)
			requireValues(t, []*pipelinev1.Value{tc.want}, values)
		})
	}
}

func TestFunctionSeesNullsAsEmptyAndTrimmedWhenTheDialectTrims(t *testing.T) {
	t.Parallel()
	record := []string{"A-1", " Ada ", "NULL", "n/a", "", "", "", "", "", "", ""}
	values, errs := mapOne(t, fn("notes", `"[" + col["First Name"] + "|" + Last + "|" + Region + "]"`), record,
		&intakev1.CsvDialect{NullValues: []string{"NULL", "n/a"}})
	require.Empty(t, errs)
	requireValues(t, []*pipelinev1.Value{text("[ Ada ||]")}, values)

	values, errs = mapOne(t, fn("notes", `"[" + col["First Name"].lowerAscii() + "|" + Last + "]"`), record,
		&intakev1.CsvDialect{NullValues: []string{"NULL"}, TrimSpace: true})
	require.Empty(t, errs)
	requireValues(t, []*pipelinev1.Value{text("[ada|]")}, values)

	// A result that is a null marker is null, like a cell.
	values, errs = mapOne(t, fn("notes", `Last`), record, &intakev1.CsvDialect{NullValues: []string{"NULL"}})
	require.Empty(t, errs)
	requireValues(t, []*pipelinev1.Value{null()}, values)
}

func TestFunctionRejectsRows(t *testing.T) {
	t.Parallel()
	record := []string{"A-1", "Ada", "Lovelace", "EMEA", "abc", "31/12/2024", "maybe", "", "", "", ""}
	for _, tc := range []struct {
		name   string
		entry  *intakev1.MappingEntry
		reason string
	}{
		{"no such key", fn("notes", `col[col["Region"]]`), "function: no such key: EMEA"},
		{"division by zero", fn("employees", `1 / (size(Last) - 8)`), "function: division by zero"},
		{"conversion of a string", fn("employees", `Amount`), `function: not a number: "abc"`},
		{"date format", withFormat(fn("created_date", `col.When`), "MM/dd/yyyy"), `function: "31/12/2024" does not match date format MM/dd/yyyy: month 31 is not 1-12`},
		{"boolean", fn("is_active", `Flag`), `function: not a boolean: "maybe" (use true/false, yes/no, y/n or 1/0)`},
		{"bool at run time", fn("employees", `dyn(Flag == "maybe")`), "function: returned a bool; a number attribute cannot take it"},
		{"list at run time", fn("notes", `dyn([Last])`), "function: returned list; want string, number, bool or null"},
		{"not a number", fn("mrr", `0.0 / 0.0`), "function: returned NaN, not a number that can be stored"},
		{"int overflow", fn("employees", `9223372036854775807 + size(Last)`), "function: integer overflow"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			values, errs := mapOne(t, tc.entry, record, nil)
			require.Nil(t, values)
			require.Equal(t, []mapping.RowError{{Row: 5, Reason: tc.reason}}, errs)
		})
	}
}

func TestFunctionKeyMayNotBeEmpty(t *testing.T) {
	t.Parallel()
	plan, err := mapping.Compile(accounts(t), spec(fn("account_id", `col["Id"] + Region`)), fnHeader)
	require.NoError(t, err)
	values, errs := plan.MapRecord(3, []string{"", "", "", "", "", "", "", "", "", "", ""})
	require.Nil(t, values)
	require.Equal(t, []mapping.RowError{{Row: 3, Reason: "key account_id is empty"}}, errs)
	values, errs = plan.MapRecord(4, []string{"A", "", "", "1", "", "", "", "", "", "", ""})
	require.Empty(t, errs)
	requireValues(t, []*pipelinev1.Value{text("A1")}, values)
}

func TestFunctionCostIsBounded(t *testing.T) {
	t.Parallel()
	// Each replace doubles the text: 4 GiB if nothing stopped it.
	expr := "Last" + strings.Repeat(`.replace("a", "aa")`, 30)
	values, errs := mapOne(t, fn("notes", expr), []string{"A-1", "", "aaaa", "", "", "", "", "", "", "", ""}, nil)
	require.Nil(t, values)
	require.Len(t, errs, 1)
	require.Contains(t, errs[0].Reason, "function: ")
	require.Contains(t, errs[0].Reason, "cost limit exceeded")

	// A bounded function whose cost is tracked still works.
	values, errs = mapOne(t, fn("notes", `Last.split(",").join("-")`), []string{"A-1", "", "a,b,c", "", "", "", "", "", "", "", ""}, nil)
	require.Empty(t, errs)
	requireValues(t, []*pipelinev1.Value{text("a-b-c")}, values)
}

func TestFunctionProblems(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		entry *intakev1.MappingEntry
		want  mapping.Problem
		// contains is checked instead of the whole message when set.
		contains []string
	}{
		{
			name:     "syntax error",
			entry:    fn("notes", `col["Last"] +`),
			want:     mapping.Problem{Entry: 1, Attribute: "notes", Code: mapping.CodeFunctionDoesNotCompile},
			contains: []string{"entry 2 (attribute notes): the function does not compile: ", "function:1:14: Syntax error"},
		},
		{
			name:     "type error",
			entry:    fn("notes", `col["Last"] + 1`),
			want:     mapping.Problem{Entry: 1, Attribute: "notes", Code: mapping.CodeFunctionDoesNotCompile},
			contains: []string{"function:1:13: found no matching overload for '_+_' applied to '(string, int)'"},
		},
		{
			name:     "undeclared column variable",
			entry:    fn("notes", `Lats + "x"`),
			want:     mapping.Problem{Entry: 1, Attribute: "notes", Code: mapping.CodeFunctionDoesNotCompile},
			contains: []string{"undeclared reference to 'Lats'"},
		},
		{
			name:     "comprehensions are not available",
			entry:    fn("notes", `[Last, Region].exists(x, x == "EMEA") ? "y" : "n"`),
			want:     mapping.Problem{Entry: 1, Attribute: "notes", Code: mapping.CodeFunctionDoesNotCompile},
			contains: []string{"undeclared reference to 'exists'"},
		},
		{
			name:  "returns a list",
			entry: fn("notes", `[Last, Region]`),
			want: mapping.Problem{Entry: 1, Attribute: "notes", Code: mapping.CodeFunctionType,
				Message: "function of entry 2 returns list(string); want string, number, bool or null"},
		},
		{
			name:  "returns a map",
			entry: fn("notes", `col`),
			want: mapping.Problem{Entry: 1, Attribute: "notes", Code: mapping.CodeFunctionType,
				Message: "function of entry 2 returns map(string, string); want string, number, bool or null"},
		},
		{
			name:  "bool for a number",
			entry: fn("employees", `Last == "x"`),
			want: mapping.Problem{Entry: 1, Attribute: "employees", Code: mapping.CodeFunctionType,
				Message: "function of entry 2 returns bool; a number attribute takes a number or a string"},
		},
		{
			name:  "number for a date",
			entry: fn("created_date", `size(Last)`),
			want: mapping.Problem{Entry: 1, Attribute: "created_date", Code: mapping.CodeFunctionType,
				Message: "function of entry 2 returns int; a date attribute takes a string, or a number with the source format unix or unix_ms"},
		},
		{
			name:  "column not in the header",
			entry: fn("notes", `col["Lastname"] + col.Region`),
			want: mapping.Problem{Entry: 1, Attribute: "notes", Column: "Lastname", Code: mapping.CodeColumnNotInHeader,
				Message: `column "Lastname" (function of entry 2, attribute notes) is not in the file's header; the header has: "Id", "First Name", "Last", "Region", "Amount", "When", "Flag", "row", "in", "Dup", "Dup"`},
		},
		{
			name:  "ambiguous column",
			entry: fn("notes", `Dup`),
			want: mapping.Problem{Entry: 1, Attribute: "notes", Column: "Dup", Code: mapping.CodeAmbiguousColumn,
				Message: `column "Dup" (function of entry 2, attribute notes) appears 2 times in the file's header`},
		},
		{
			name:  "empty function",
			entry: fn("notes", "  "),
			want: mapping.Problem{Entry: 1, Attribute: "notes", Code: mapping.CodeNoSource,
				Message: "entry 2 (attribute notes) has an empty function"},
		},
		{
			name:     "too long",
			entry:    fn("notes", strings.Repeat(`Last + `, 1000)+`Last`),
			want:     mapping.Problem{Entry: 1, Attribute: "notes", Code: mapping.CodeFunctionDoesNotCompile},
			contains: []string{"expression code point size exceeds limit"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ps := problems(t, accounts(t), spec(col("account_id", "Id"), tc.entry), fnHeader)
			require.Len(t, ps, 1, "%v", ps)
			got := ps[0]
			if tc.contains != nil {
				for _, c := range tc.contains {
					require.Contains(t, got.Message, c)
				}
				got.Message = ""
			}
			require.Equal(t, tc.want, got)
		})
	}
}

func TestFunctionIsCompiledOnceAndSafeForConcurrentMappers(t *testing.T) {
	t.Parallel()
	plan, err := mapping.Compile(accounts(t), spec(col("account_id", "Id"), fn("notes", `Last.lowerAscii() + "/" + string(row)`)), fnHeader)
	require.NoError(t, err)
	done := make(chan error)
	for g := range 4 {
		go func() {
			m := plan.NewMapper(100)
			defer m.Release()
			for i := range 500 {
				rec := []string{"A", "", "X" + strings.Repeat("Y", g), "", "", "", "", "", "", "", ""}
				r, errs := m.MapRecord(int64(i+2), rec, nil)
				if r == nil {
					done <- errs[0]
					return
				}
				want := "x" + strings.Repeat("y", g) + "/" + strconv.Itoa(i+2)
				if got := r.GetValues()[1].GetText(); got != want {
					done <- &mapping.RowError{Row: int64(i + 2), Reason: "got " + got + ", want " + want}
					return
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		require.NoError(t, <-done)
	}
}

func TestFunctionAllocations(t *testing.T) {
	plan, err := mapping.Compile(accounts(t), spec(col("account_id", "Id"),
		fn("notes", `col["First Name"] + " / " + Region`)), fnHeader)
	require.NoError(t, err)
	m := plan.NewMapper(0)
	rec := []string{"A-1", "Ada", "Lovelace", "EMEA", "", "", "", "", "", "", ""}
	var errs []mapping.RowError
	allocs := testing.AllocsPerRun(10000, func() {
		var r *pipelinev1.Row
		r, errs = m.MapRecord(2, rec, errs[:0])
		if r == nil {
			t.Fatal(errs)
		}
	})
	require.Less(t, allocs, 0.1, "allocations per row of a concatenation")
}

func TestUsedColumns(t *testing.T) {
	t.Parallel()
	s := spec(
		col("account_id", "Id"),
		fn("notes", `col["First Name"] + " " + Last + col.Region + col[Region] + string(row)`),
		col("name", "Last"),
		fn("status", `has(col.Status) ? Flag.lowerAscii() : "x"`),
		fn("industry", `this does not parse (`),
		constant("region", "EMEA"),
	)
	require.Equal(t, []string{"Id", "First Name", "Last", "Region", "Status", "Flag"}, mapping.UsedColumns(s))
}

func TestColumnVariable(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{
		"Last": true, "first_name": true, "_x1": true, "A": true,
		"First Name": false, "1st": false, "e-mail": false, "": false, "in": false, "null": false,
		"col": false, "row": false, "int": false, "__x": false, "é": false,
	} {
		require.Equal(t, want, mapping.ColumnVariable(name), name)
	}
}

// TestConcatenationIsCELs checks that a concatenation, which the mapper
// evaluates natively, gives what CEL gives (the same function behind dyn(),
// which CEL evaluates).
func TestConcatenationIsCELs(t *testing.T) {
	t.Parallel()
	records := [][]string{
		{"A-1", "Ada", "Lovelace", "EMEA", "", "", "", "", "", "", ""},
		{"A-2", " Ada ", "NULL", "", "", "", "", "", "", "", ""},
		{"A-3", "café ☕", "  ", "n/a", "", "", "", "", "", "", ""},
		{"A-4", "", "", "", "", "", "", "", "", "", ""},
	}
	for _, expr := range []string{
		`col["First Name"] + " " + Last`,
		`"[" + col.Region + "|" + Last + "]"`,
		`Last`,
		`col["Id"]`,
		`"x" + "y"`,
	} {
		for _, dialect := range []*intakev1.CsvDialect{
			{NullValues: []string{"NULL", "n/a"}},
			{NullValues: []string{"NULL"}, TrimSpace: true},
		} {
			s := spec(col("account_id", "Id"), fn("notes", expr), fn("name", "dyn("+expr+")"))
			s.Dialect = dialect
			plan, err := mapping.Compile(accounts(t), s, fnHeader)
			require.NoError(t, err)
			for i, rec := range records {
				cells, rerr := plan.Preview(int64(i+2), rec)
				require.Nil(t, rerr)
				require.Equal(t, cells[2], cells[1], "%s on %q", expr, rec)
			}
		}
	}
}

// A function fills a timestamp like a cell: a string through the source
// format (in the job's time zone when it has no zone), a number as unix time.
func TestFunctionTimestamps(t *testing.T) {
	t.Parallel()
	header := []string{"Acct", "User", "Day", "Time", "Epoch"}
	record := []string{"A-1", "U-1", "12/31/2024", "10:15 PM", "1706659200"}
	keys := []*intakev1.MappingEntry{col("account_id", "Acct"), col("user_id", "User"), constant("activity", "login"), constant("module", "core")}
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	for _, tc := range []struct {
		name  string
		entry *intakev1.MappingEntry
		want  string
	}{
		{"string through the format", withFormat(fn("timestamp", `Day + " " + Time`), "MM/dd/yyyy h:mm a"), "2025-01-01T03:15:00Z"},
		{"int as unix time", withFormat(fn("timestamp", `int(Epoch) + 90`), "unix"), "2024-01-31T00:01:30Z"},
		{"double as unix time", withFormat(fn("timestamp", `double(Epoch) + 0.25`), "unix"), "2024-01-31T00:00:00.25Z"},
		{"ISO 8601 with a zone", fn("timestamp", `"2024-03-01T10:15:00Z"`), "2024-03-01T10:15:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			plan, err := mapping.CompileWith(object(t, intakev1.ObjectType_OBJECT_TYPE_USAGE), spec(append(slices.Clone(keys), tc.entry)...), header,
				mapping.CompileOptions{Location: ny})
			require.NoError(t, err)
			values, errs := plan.MapRecord(2, record)
			require.Empty(t, errs)
			require.Equal(t, tc.want, mapping.Text(values[4]))
		})
	}

	// What a timestamp cannot take is a problem of the spec.
	for expr, want := range map[string]string{
		`Day == ""`:  "function of entry 5 returns bool; a timestamp attribute takes a string",
		`int(Epoch)`: "function of entry 5 returns int; a timestamp attribute takes a string, or a number with the source format unix or unix_ms",
	} {
		_, err := mapping.Compile(object(t, intakev1.ObjectType_OBJECT_TYPE_USAGE), spec(append(slices.Clone(keys), fn("timestamp", expr))...), header)
		var se *mapping.SpecError
		require.ErrorAs(t, err, &se, expr)
		require.Len(t, se.Problems, 1, expr)
		require.Equal(t, want, se.Problems[0].Message, expr)
	}
}

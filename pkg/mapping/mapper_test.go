package mapping_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/pkg/mapping"
	pipelinev1 "github.com/intakehq/intake/proto/gen/intake/pipeline/v1"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

func text(s string) *pipelinev1.Value {
	return &pipelinev1.Value{Kind: &pipelinev1.Value_Text{Text: s}}
}

func decimal(s string) *pipelinev1.Value {
	return &pipelinev1.Value{Kind: &pipelinev1.Value_Decimal{Decimal: s}}
}

func date(y int, m time.Month, d int) *pipelinev1.Value {
	days := int32(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
	return &pipelinev1.Value{Kind: &pipelinev1.Value_Date{Date: days}}
}

func boolean(b bool) *pipelinev1.Value {
	return &pipelinev1.Value{Kind: &pipelinev1.Value_Boolean{Boolean: b}}
}

func null() *pipelinev1.Value { return &pipelinev1.Value{} }

// requireValues compares values by their text form (proto messages).
func requireValues(t *testing.T, want, got []*pipelinev1.Value) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		require.Equal(t, fmt.Sprint(want[i].GetKind()), fmt.Sprint(got[i].GetKind()), "value %d", i)
	}
}

var accountsHeader = []string{"Id", "Name", "Seats", "Revenue", "Active", "Since", "Renewal", "Notes"}

func accountsPlan(t testing.TB) *mapping.Plan {
	t.Helper()
	s := spec(
		col("account_id", "Id"),
		col("name", "Name"),
		colf("employees", "Seats", "1.234,5"),
		col("annual_revenue", "Revenue"),
		col("is_active", "Active"),
		colf("created_date", "Since", "MM/dd/yyyy"),
		col("renewal_date", "Renewal"),
		col("notes", "Notes"),
		constant("region", "EMEA"),
		constant("mrr", "$12.50"),
		constant("status", ""),
	)
	s.Dialect = &intakev1.CsvDialect{NullValues: []string{"NULL", "n/a"}}
	plan, err := mapping.Compile(accounts(t), s, accountsHeader)
	require.NoError(t, err)
	return plan
}

func TestMapRecord(t *testing.T) {
	t.Parallel()
	plan := accountsPlan(t)
	require.Equal(t, []string{"account_id", "name", "employees", "annual_revenue", "is_active", "created_date", "renewal_date", "notes", "region", "mrr", "status"}, plan.Attributes())
	for _, tc := range []struct {
		name   string
		record []string
		want   []*pipelinev1.Value
	}{
		{
			name:   "every type",
			record: []string{"A-1", "Acme, Inc.\nHQ", "1.234", "($1,234.50)", "Yes", "01/31/2024", "2025-02-28", "  spaced  "},
			want: []*pipelinev1.Value{text("A-1"), text("Acme, Inc.\nHQ"), decimal("1234"), decimal("-1234.50"), boolean(true),
				date(2024, 1, 31), date(2025, 2, 28), text("  spaced  "), text("EMEA"), decimal("12.50"), null()},
		},
		{
			name:   "nulls",
			record: []string{"A-2", "", " ", "NULL", " n/a ", "", "NULL", "n/a"},
			want: []*pipelinev1.Value{text("A-2"), null(), null(), null(), null(), null(), null(), null(),
				text("EMEA"), decimal("12.50"), null()},
		},
		{
			name:   "booleans and spaces",
			record: []string{"A-3", "x", " 12,5 ", " 7 ", " n ", " 1/5/2024 ", "2025-02-28T10:00:00Z", "café ☕"},
			want: []*pipelinev1.Value{text("A-3"), text("x"), decimal("12.5"), decimal("7"), boolean(false),
				date(2024, 1, 5), date(2025, 2, 28), text("café ☕"), text("EMEA"), decimal("12.50"), null()},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			values, errs := plan.MapRecord(9, tc.record)
			require.Empty(t, errs)
			requireValues(t, tc.want, values)
		})
	}
}

func TestMapRecordRejects(t *testing.T) {
	t.Parallel()
	plan := accountsPlan(t)
	for _, tc := range []struct {
		name   string
		record []string
		want   []mapping.RowError
	}{
		{
			name:   "every bad cell of the row",
			record: []string{"A-1", "ok", "abc", "12 apples", "maybe", "13/45/2020", "31.01.2024", "ok"},
			want: []mapping.RowError{
				{Row: 7, Column: "Seats", Reason: `not a number in the format 1.234,56: "abc"`},
				{Row: 7, Column: "Revenue", Reason: `not a currency amount: "12 apples"`},
				{Row: 7, Column: "Active", Reason: `not a boolean: "maybe" (use true/false, yes/no, y/n or 1/0)`},
				{Row: 7, Column: "Since", Reason: `"13/45/2020" does not match date format MM/dd/yyyy: month 13 is not 1-12`},
				{Row: 7, Column: "Renewal", Reason: `"31.01.2024" does not match date format yyyy-MM-dd (ISO 8601)`},
			},
		},
		{
			name:   "empty key",
			record: []string{"  ", "ok", "", "", "", "", "", ""},
			want:   []mapping.RowError{{Row: 7, Column: "Id", Reason: "key account_id is empty"}},
		},
		{
			name:   "null key",
			record: []string{"NULL", "ok", "", "", "", "", "", ""},
			want:   []mapping.RowError{{Row: 7, Column: "Id", Reason: "key account_id is empty"}},
		},
		{
			name:   "invalid UTF-8",
			record: []string{"A-1", "ab\xffc", "", "", "", "", "", "x\x00y"},
			want: []mapping.RowError{
				{Row: 7, Column: "Name", Reason: "invalid UTF-8 byte at position 3 (0xff)"},
				{Row: 7, Column: "Notes", Reason: "NUL byte at position 2 (text cannot hold NUL)"},
			},
		},
		{
			name:   "too few fields",
			record: []string{"A-1", "x"},
			want:   []mapping.RowError{{Row: 7, Reason: "2 fields, the header has 8"}},
		},
		{
			name:   "too many fields",
			record: []string{"A-1", "", "", "", "", "", "", "", ""},
			want:   []mapping.RowError{{Row: 7, Reason: "9 fields, the header has 8"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			values, errs := plan.MapRecord(7, tc.record)
			require.Nil(t, values)
			require.Equal(t, tc.want, errs)
		})
	}
}

func TestRowErrorText(t *testing.T) {
	t.Parallel()
	require.Equal(t, `row 7, column "Seats": not a number: "abc"`, mapping.RowError{Row: 7, Column: "Seats", Reason: `not a number: "abc"`}.Error())
	require.Equal(t, "row 7: 14 fields, the header has 12", mapping.RowError{Row: 7, Reason: "14 fields, the header has 12"}.Error())
	require.Equal(t, &intakev1.RowError{Row: 7, Column: "a", Reason: "b"}, mapping.RowError{Row: 7, Column: "a", Reason: "b"}.Proto())
}

func TestLongValueIsShortenedInReason(t *testing.T) {
	t.Parallel()
	plan, err := mapping.Compile(accounts(t), spec(col("account_id", "Id"), col("employees", "N")), []string{"Id", "N"})
	require.NoError(t, err)
	long := "é"
	for len(long) < 200 {
		long += "x"
	}
	_, errs := plan.MapRecord(2, []string{"a", long})
	require.Len(t, errs, 1)
	require.Less(t, len(errs[0].Reason), 100)
	require.Contains(t, errs[0].Reason, `not a number: "éxxx`)
	require.Contains(t, errs[0].Reason, `"…`)
}

// TestMapperRowsStayValid maps many rows, rejecting some in between, and
// checks that earlier rows are not overwritten by the Mapper's reuse of its
// blocks.
func TestMapperRowsStayValid(t *testing.T) {
	t.Parallel()
	plan := accountsPlan(t)
	for _, hint := range []int{0, 1, 10, 1000} {
		m := plan.NewMapper(hint)
		var rows []*pipelinev1.Row
		var errs []mapping.RowError
		for i := range 700 {
			rec := []string{fmt.Sprintf("A-%d", i), fmt.Sprintf("name %d", i), fmt.Sprint(i), fmt.Sprintf("$%d.00", i), "y", "01/02/2024", "", ""}
			if i%7 == 3 {
				rec[2] = "bad"
			}
			var r *pipelinev1.Row
			r, errs = m.MapRecord(int64(i+2), rec, errs)
			if r != nil {
				rows = append(rows, r)
			}
		}
		require.Len(t, errs, 100)
		require.Len(t, rows, 600)
		n := 0
		for i := range 700 {
			if i%7 == 3 {
				require.Equal(t, mapping.RowError{Row: int64(i + 2), Column: "Seats", Reason: `not a number in the format 1.234,56: "bad"`}, errs[i/7])
				continue
			}
			r := rows[n]
			n++
			require.Equal(t, int64(i+2), r.GetRow())
			requireValues(t, []*pipelinev1.Value{text(fmt.Sprintf("A-%d", i)), text(fmt.Sprintf("name %d", i)), decimal(fmt.Sprint(i)),
				decimal(fmt.Sprintf("%d.00", i)), boolean(true), date(2024, 1, 2), null(), null(), text("EMEA"), decimal("12.50"), null()}, r.GetValues())
		}
	}
}

func TestMapperAllocations(t *testing.T) {
	plan := accountsPlan(t)
	m := plan.NewMapper(0)
	rec := []string{"A-1", "Acme", "1234", "1234.50", "true", "01/31/2024", "2025-02-28", "note"}
	var errs []mapping.RowError
	allocs := testing.AllocsPerRun(10000, func() {
		var r *pipelinev1.Row
		r, errs = m.MapRecord(2, rec, errs[:0])
		if r == nil {
			t.Fatal("rejected")
		}
	})
	require.Less(t, allocs, 0.1, "allocations per row")
}

// TestMapperReleaseReusesMemory checks that a released Mapper's memory is
// reused and its new rows are right.
func TestMapperReleaseReusesMemory(t *testing.T) {
	t.Parallel()
	plan := accountsPlan(t)
	for round := range 3 {
		m := plan.NewMapper(10)
		var rows []*pipelinev1.Row
		for i := range 25 {
			rec := []string{fmt.Sprintf("R%d-%d", round, i), "", fmt.Sprint(i), "", "", "", "", ""}
			r, errs := m.MapRecord(int64(i+2), rec, nil)
			require.Empty(t, errs)
			rows = append(rows, r)
		}
		for i, r := range rows {
			require.Equal(t, int64(i+2), r.GetRow())
			require.Equal(t, fmt.Sprintf("R%d-%d", round, i), r.GetValues()[0].GetText())
			require.Equal(t, fmt.Sprint(i), r.GetValues()[2].GetDecimal())
		}
		m.Release()
	}
}

package mapping_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/intakehq/intake/pkg/mapping"
	pipelinev1 "github.com/intakehq/intake/proto/gen/intake/pipeline/v1"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

func previewPlan(t *testing.T) *mapping.Plan {
	t.Helper()
	s := spec(
		col("account_id", "Id"),
		colf("employees", "Seats", "1.234,5"),
		col("mrr", "MRR"),
		colf("created_date", "Since", "dd/MM/yyyy"),
		col("is_active", "Active"),
		fn("notes", `Name + " (" + string(row) + ")"`),
		fn("annual_revenue", `double(MRR.replace("$", "").replace(",", "")) * 12.0`),
		constant("region", "EMEA"),
		constant("status", ""),
	)
	s.Dialect = &intakev1.CsvDialect{NullValues: []string{"NULL"}}
	plan, err := mapping.Compile(accounts(t), s, []string{"Id", "Name", "Seats", "MRR", "Since", "Active"})
	require.NoError(t, err)
	return plan
}

func TestPreview(t *testing.T) {
	t.Parallel()
	plan := previewPlan(t)
	require.Equal(t, []string{"account_id", "employees", "mrr", "created_date", "is_active", "notes", "annual_revenue", "region", "status"}, plan.Attributes())

	cells, rerr := plan.Preview(2, []string{"A-1", "Acme", "1.234", "$1,000.50", "01/02/2024", "yes"})
	require.Nil(t, rerr)
	require.Equal(t, []mapping.Cell{
		{Value: "A-1"}, {Value: "1234"}, {Value: "1000.50"}, {Value: "2024-02-01"}, {Value: "true"},
		{Value: "Acme (2)"}, {Value: "12006"}, {Value: "EMEA"}, {Null: true},
	}, cells)
	require.True(t, proto.Equal(&intakev1.PreviewCell{Value: "2024-02-01"}, cells[3].Proto()))

	// Every cell of a row that would be rejected gets its own error.
	cells, rerr = plan.Preview(3, []string{"NULL", "", "many", "12 apples", "31/31/2024", "NULL"})
	require.Nil(t, rerr)
	require.Equal(t, []mapping.Cell{
		{Err: "key account_id is empty"},
		{Err: `not a number in the format 1.234,56: "many"`},
		{Err: `not a currency amount: "12 apples"`},
		{Err: `"31/31/2024" does not match date format dd/MM/yyyy: month 31 is not 1-12`},
		{Null: true},
		{Value: " (3)"},
		{Err: "function: type conversion error from 'string' to 'double'"},
		{Value: "EMEA"}, {Null: true},
	}, cells)

	cells, rerr = plan.Preview(4, []string{"A-1", "x"})
	require.Nil(t, cells)
	require.Equal(t, &mapping.RowError{Row: 4, Reason: "2 fields, the header has 6"}, rerr)
}

func TestCheck(t *testing.T) {
	t.Parallel()
	plan := previewPlan(t)
	require.Empty(t, plan.Check(2, []string{"A-1", "Acme", "1.234", "$1,000.50", "01/02/2024", "yes"}))
	findings := plan.Check(7, []string{"", "Acme", "many", "$5", "01/02/2024", "maybe"})
	want := []*intakev1.Finding{
		{Severity: intakev1.FindingSeverity_FINDING_SEVERITY_ERROR, Code: "KEY_EMPTY", Entry: 0, Attribute: "account_id", Column: "Id",
			Row: 7, Value: "", Message: `row 7, column "Id": key account_id is empty`},
		{Severity: intakev1.FindingSeverity_FINDING_SEVERITY_ERROR, Code: "VALUE_DOES_NOT_CONVERT", Entry: 1, Attribute: "employees", Column: "Seats",
			Row: 7, Value: "many", Message: `row 7, column "Seats": not a number in the format 1.234,56: "many"`},
		{Severity: intakev1.FindingSeverity_FINDING_SEVERITY_ERROR, Code: "VALUE_DOES_NOT_CONVERT", Entry: 4, Attribute: "is_active", Column: "Active",
			Row: 7, Value: "maybe", Message: `row 7, column "Active": not a boolean: "maybe" (use true/false, yes/no, y/n or 1/0)`},
	}
	require.Len(t, findings, len(want))
	for i := range want {
		require.True(t, proto.Equal(want[i], findings[i]), "finding %d: %v", i, findings[i])
	}
	findings = plan.Check(8, []string{"A-1"})
	require.Len(t, findings, 1)
	require.Equal(t, "FIELD_COUNT", findings[0].GetCode())
	require.Equal(t, "row 8: 1 fields, the header has 6", findings[0].GetMessage())
}

func TestValueText(t *testing.T) {
	t.Parallel()
	require.Equal(t, "1970-01-01", mapping.DateText(0))
	require.Equal(t, "1969-12-31", mapping.DateText(-1))
	require.Equal(t, "2024-02-29", mapping.DateText(19782))
	require.Equal(t, "0001-01-01", mapping.DateText(-719162))
	require.Equal(t, "9999-12-31", mapping.DateText(2932896))
	require.Equal(t, "x", mapping.Text(text("x")))
	require.Equal(t, "-1.50", mapping.Text(decimal("-1.50")))
	require.Equal(t, "2024-01-31", mapping.Text(date(2024, 1, 31)))
	require.Equal(t, "false", mapping.Text(boolean(false)))
	require.Equal(t, "", mapping.Text(null()))
	require.Equal(t, "", mapping.Text((*pipelinev1.Value)(nil)))
}

package mapping_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/pkg/mapping"
	"github.com/intakehq/intake/pkg/objects"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// object is the data model of a pkg/objects object.
func object(t testing.TB, typ intakev1.ObjectType) *intakev1.DataObject {
	t.Helper()
	obj, err := objects.Lookup(typ)
	require.NoError(t, err)
	return mapping.ModelOf(obj)
}

func accounts(t testing.TB) *intakev1.DataObject {
	return object(t, intakev1.ObjectType_OBJECT_TYPE_ACCOUNTS)
}

func col(attr, column string) *intakev1.MappingEntry {
	return &intakev1.MappingEntry{Attribute: attr, Source: &intakev1.MappingEntry_Column{Column: column}}
}

func colf(attr, column, format string) *intakev1.MappingEntry {
	e := col(attr, column)
	e.SourceFormat = format
	return e
}

func constant(attr, value string) *intakev1.MappingEntry {
	return &intakev1.MappingEntry{Attribute: attr, Source: &intakev1.MappingEntry_Constant{Constant: value}}
}

func spec(entries ...*intakev1.MappingEntry) *intakev1.MappingSpec {
	return &intakev1.MappingSpec{Entries: entries}
}

// problems compiles and returns the spec's problems.
func problems(t *testing.T, obj *intakev1.DataObject, s *intakev1.MappingSpec, header []string) []mapping.Problem {
	t.Helper()
	plan, err := mapping.Compile(obj, s, header)
	require.Error(t, err)
	require.Nil(t, plan)
	var se *mapping.SpecError
	require.True(t, errors.As(err, &se), "error %T is not a *SpecError", err)
	require.NotEmpty(t, se.Problems)
	return se.Problems
}

func TestCompile(t *testing.T) {
	t.Parallel()
	header := []string{"Acct", "Name", "Since", "Seats"}
	s := spec(
		col("account_id", "Acct"),
		col("name", "Name"),
		colf("created_date", "Since", "MM/dd/yyyy"),
		col("employees", "Seats"),
		constant("region", "EMEA"),
	)
	s.Dialect = &intakev1.CsvDialect{Delimiter: ";", NullValues: []string{"NULL", " n/a "}}
	plan, err := mapping.Compile(accounts(t), s, header)
	require.NoError(t, err)
	require.Equal(t, []string{"account_id", "name", "created_date", "employees", "region"}, plan.Attributes())
	require.Equal(t, []string{"Acct", "Name", "Since", "Seats", ""}, plan.Columns())
	require.Equal(t, ';', plan.Comma())
	require.Equal(t, header, plan.Header())
	require.Equal(t, "objects/accounts", plan.Model().GetName())
	require.Equal(t, []intakev1.AttributeType{
		intakev1.AttributeType_ATTRIBUTE_TYPE_TEXT, intakev1.AttributeType_ATTRIBUTE_TYPE_TEXT, intakev1.AttributeType_ATTRIBUTE_TYPE_DATE,
		intakev1.AttributeType_ATTRIBUTE_TYPE_NUMBER, intakev1.AttributeType_ATTRIBUTE_TYPE_TEXT,
	}, plan.Types())
}

func TestCompileUsersNeedsBothKeys(t *testing.T) {
	t.Parallel()
	users := object(t, intakev1.ObjectType_OBJECT_TYPE_USERS)
	ps := problems(t, users, spec(col("account_id", "a")), []string{"a"})
	require.Equal(t, []mapping.Problem{{Entry: -1, Attribute: "user_id", Code: mapping.CodeKeyNotMapped,
		Message: "key attribute user_id is not mapped"}}, ps)

	_, err := mapping.Compile(users, spec(col("account_id", "a"), col("user_id", "u")), []string{"u", "a"})
	require.NoError(t, err)
}

func TestCompileProblems(t *testing.T) {
	t.Parallel()
	header := []string{"Account ID", "Name", "Revenue", "Name2", "Name2"}
	for _, tc := range []struct {
		name    string
		spec    *intakev1.MappingSpec
		want    mapping.Problem
		message string // the whole error, when checked
	}{
		{
			name: "key not mapped",
			spec: spec(col("name", "Name")),
			want: mapping.Problem{Entry: -1, Attribute: "account_id", Code: mapping.CodeKeyNotMapped,
				Message: "key attribute account_id is not mapped"},
			message: "invalid mapping: key attribute account_id is not mapped",
		},
		{
			name: "unknown attribute",
			spec: spec(col("account_id", "Account ID"), col("colour", "Name")),
			want: mapping.Problem{Entry: 1, Attribute: "colour", Column: "Name", Code: mapping.CodeUnknownAttribute,
				Message: `entry 2: accounts has no attribute "colour"; its attributes are: account_id, name, status, industry, region, parent_account_id, employees, annual_revenue, mrr, is_active, created_date, renewal_date, notes`},
		},
		{
			name: "mapped twice",
			spec: spec(col("account_id", "Account ID"), col("name", "Name"), constant("name", "x")),
			want: mapping.Problem{Entry: 2, Attribute: "name", Code: mapping.CodeDuplicateAttribute,
				Message: "attribute name is mapped twice (entries 2 and 3)"},
		},
		{
			name: "missing attribute",
			spec: spec(col("account_id", "Account ID"), col("", "Name")),
			want: mapping.Problem{Entry: 1, Column: "Name", Code: mapping.CodeMissingAttribute, Message: "entry 2 has no attribute"},
		},
		{
			name: "no source",
			spec: spec(col("account_id", "Account ID"), &intakev1.MappingEntry{Attribute: "name"}),
			want: mapping.Problem{Entry: 1, Attribute: "name", Code: mapping.CodeNoSource,
				Message: "entry 2 (attribute name) has neither a column, a constant nor a function"},
		},
		{
			name: "empty column",
			spec: spec(col("account_id", "Account ID"), col("name", "")),
			want: mapping.Problem{Entry: 1, Attribute: "name", Code: mapping.CodeNoSource,
				Message: "entry 2 (attribute name) has neither a column, a constant nor a function"},
		},
		{
			name: "column not in header",
			spec: spec(col("name", "Name"), col("account_id", "Acct")),
			want: mapping.Problem{Entry: 1, Attribute: "account_id", Column: "Acct", Code: mapping.CodeColumnNotInHeader,
				Message: `column "Acct" (entry 2, attribute account_id) is not in the file's header; the header has: "Account ID", "Name", "Revenue", "Name2", "Name2"`},
			message: `invalid mapping: column "Acct" (entry 2, attribute account_id) is not in the file's header; the header has: "Account ID", "Name", "Revenue", "Name2", "Name2"`,
		},
		{
			name: "column differs in case",
			spec: spec(col("account_id", "account id")),
			want: mapping.Problem{Entry: 0, Attribute: "account_id", Column: "account id", Code: mapping.CodeColumnNotInHeader,
				Message: `column "account id" (entry 1, attribute account_id) is not in the file's header; did you mean "Account ID"? the header has: "Account ID", "Name", "Revenue", "Name2", "Name2"`},
		},
		{
			name: "ambiguous column",
			spec: spec(col("account_id", "Account ID"), col("name", "Name2")),
			want: mapping.Problem{Entry: 1, Attribute: "name", Column: "Name2", Code: mapping.CodeAmbiguousColumn,
				Message: `column "Name2" (entry 2, attribute name) appears 2 times in the file's header`},
		},
		{
			name: "date format on a number",
			spec: spec(col("account_id", "Account ID"), colf("employees", "Revenue", "MM/dd/yyyy")),
			want: mapping.Problem{Entry: 1, Attribute: "employees", Column: "Revenue", Code: mapping.CodeInvalidFormat,
				Message: `entry 2 (attribute employees): source format "MM/dd/yyyy" is not a number format: write an example number such as "1,234.56", "1.234,56" or "1 234,56"`},
		},
		{
			name: "bad date format",
			spec: spec(col("account_id", "Account ID"), colf("created_date", "Revenue", "YYYY-MM-DD")),
			want: mapping.Problem{Entry: 1, Attribute: "created_date", Column: "Revenue", Code: mapping.CodeInvalidFormat,
				Message: `entry 2 (attribute created_date): source format "YYYY-MM-DD" is not a date format: "YYYY" at position 1 is not a pattern (use yyyy, yy, MMMM, MMM, MM, M, dd, d, HH, H, hh, h, mm, ss, SSS, a and XXX (a zone offset), quote other letters with '...', or use iso8601, unix or unix_ms)`},
		},
		{
			name: "format on text",
			spec: spec(colf("account_id", "Account ID", "yyyy")),
			want: mapping.Problem{Entry: 0, Attribute: "account_id", Column: "Account ID", Code: mapping.CodeInvalidFormat,
				Message: `entry 1 (attribute account_id): source format "yyyy" does not apply to a text attribute (only dates, timestamps, numbers and currency have a source format)`},
		},
		{
			name: "bad constant",
			spec: spec(col("account_id", "Account ID"), constant("employees", "many")),
			want: mapping.Problem{Entry: 1, Attribute: "employees", Code: mapping.CodeInvalidConstant,
				Message: `entry 2 (attribute employees): invalid constant: not a number: "many"`},
		},
		{
			name: "empty key constant",
			spec: spec(constant("account_id", " ")),
			want: mapping.Problem{Entry: 0, Attribute: "account_id", Code: mapping.CodeInvalidConstant,
				Message: "entry 1: key account_id is mapped to an empty constant"},
		},
		{
			name: "bad delimiter",
			spec: &intakev1.MappingSpec{Dialect: &intakev1.CsvDialect{Delimiter: ";;"}, Entries: spec(col("account_id", "Account ID")).Entries},
			want: mapping.Problem{Entry: -1, Code: mapping.CodeInvalidDialect, Message: `the delimiter ";;" is not one character`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			plan, err := mapping.Compile(accounts(t), tc.spec, header)
			require.Nil(t, plan)
			var se *mapping.SpecError
			require.ErrorAs(t, err, &se)
			require.Equal(t, []mapping.Problem{tc.want}, se.Problems)
			if tc.message != "" {
				require.EqualError(t, err, tc.message)
			}
		})
	}
}

func TestCompileReportsEveryProblem(t *testing.T) {
	t.Parallel()
	ps := problems(t, accounts(t), spec(
		col("name", "Nom"),
		colf("renewal_date", "Name", "dd/mm/yyyy"),
		col("name", "Name"),
		colf("mrr", "Name", "1.234,56 €"),
	), []string{"Name"})
	var codes []mapping.Code
	for _, p := range ps {
		codes = append(codes, p.Code)
	}
	require.Equal(t, []mapping.Code{mapping.CodeKeyNotMapped, mapping.CodeColumnNotInHeader, mapping.CodeInvalidFormat, mapping.CodeDuplicateAttribute}, codes)
	require.Equal(t, []int{-1, 0, 1, 2}, []int{ps[0].Entry, ps[1].Entry, ps[2].Entry, ps[3].Entry})
	_, err := mapping.Compile(accounts(t), spec(col("name", "Nom")), []string{"Name"})
	require.ErrorContains(t, err, "invalid mapping (2 problems): key attribute account_id is not mapped; column \"Nom\"")
}

func TestCompileNoObject(t *testing.T) {
	t.Parallel()
	_, err := mapping.Compile(nil, spec(), nil)
	require.EqualError(t, err, "mapping: compile: no data model")
	_, err = mapping.CompileObject(nil, spec(), nil)
	require.EqualError(t, err, "mapping: compile: no object")
}

func TestDelimiter(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]rune{"": ',', ",": ',', ";": ';', "|": '|', "\t": '\t', `\t`: '\t', "tab": '\t', "§": '§'} {
		got, err := mapping.Delimiter(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{`"`, "\n", "\r", ",,", "\xff"} {
		_, err := mapping.Delimiter(in)
		require.Error(t, err, in)
	}
}

func fn(attr, expr string) *intakev1.MappingEntry {
	return &intakev1.MappingEntry{Attribute: attr, Source: &intakev1.MappingEntry_Function{Function: expr}}
}

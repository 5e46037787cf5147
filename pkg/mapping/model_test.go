package mapping_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/pkg/mapping"
	pipelinev1 "github.com/intakehq/intake/proto/gen/intake/pipeline/v1"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

const (
	tText      = intakev1.AttributeType_ATTRIBUTE_TYPE_TEXT
	tNumber    = intakev1.AttributeType_ATTRIBUTE_TYPE_NUMBER
	tDate      = intakev1.AttributeType_ATTRIBUTE_TYPE_DATE
	tCurrency  = intakev1.AttributeType_ATTRIBUTE_TYPE_CURRENCY
	tBoolean   = intakev1.AttributeType_ATTRIBUTE_TYPE_BOOLEAN
	tFK        = intakev1.AttributeType_ATTRIBUTE_TYPE_FOREIGN_KEY
	tTimestamp = intakev1.AttributeType_ATTRIBUTE_TYPE_TIMESTAMP
)

// touchpoints is a model as the API sends it: keys, required_any, system
// and custom attributes.
func touchpoints() *intakev1.DataObject {
	attr := func(id string, t intakev1.AttributeType, system bool) *intakev1.Attribute {
		return &intakev1.Attribute{Name: "objects/touchpoints/attributes/" + id, AttributeId: id, Type: t, System: system}
	}
	return &intakev1.DataObject{
		Name:        "objects/touchpoints",
		Type:        intakev1.ObjectType_OBJECT_TYPE_TOUCHPOINTS,
		Keys:        []string{"account_id", "touchpoint_id"},
		RequiredAny: []string{"subject", "content"},
		Attributes: []*intakev1.Attribute{
			attr("account_id", tFK, true), attr("touchpoint_id", tText, true),
			attr("subject", tText, true), attr("content", tText, true), attr("date", tDate, true),
			attr("duration", tNumber, false), attr("cost", tCurrency, false), attr("owner_id", tFK, false),
		},
	}
}

func TestCompileAgainstAModel(t *testing.T) {
	t.Parallel()
	header := []string{"Acct", "Id", "Subject", "When", "Minutes", "Owner"}
	s := spec(
		col("account_id", "Acct"),
		col("touchpoint_id", "Id"),
		col("subject", "Subject"),
		colf("date", "When", "dd.MM.yyyy"),
		colf("duration", "Minutes", "1.234,5"),
		col("owner_id", "Owner"),
		fn("channel", `"email"`),
	)
	s.NewAttributes = []*intakev1.NewAttribute{{AttributeId: "channel", Type: tText}}
	plan, err := mapping.Compile(touchpoints(), s, header)
	require.NoError(t, err)
	require.Equal(t, []string{"account_id", "touchpoint_id", "subject", "date", "duration", "owner_id", "channel"}, plan.Attributes())
	require.Equal(t, []intakev1.AttributeType{tFK, tText, tText, tDate, tNumber, tFK, tText}, plan.Types())
	require.Equal(t, []string{"Acct", "Id", "Subject", "When", "Minutes", "Owner", ""}, plan.Columns())

	values, errs := plan.MapRecord(2, []string{" ACC-1 ", "T-1", "Hello", "31.01.2024", "1.234,5", "U-7"})
	require.Empty(t, errs)
	requireValues(t, []*pipelinev1.Value{text(" ACC-1 "), text("T-1"), text("Hello"), date(2024, 1, 31), decimal("1234.5"), text("U-7"), text("email")}, values)

	// A foreign key must be valid text; empty is null (but not for a key).
	values, errs = plan.MapRecord(3, []string{"ACC-1", "T-2", "Hi", "", "", "  "})
	require.Empty(t, errs)
	require.Nil(t, values[5].GetKind())
	_, errs = plan.MapRecord(4, []string{"AC\xffC", "T-3", "Hi", "", "", "U\x00"})
	require.Equal(t, []mapping.RowError{
		{Row: 4, Column: "Acct", Reason: "not a valid reference: invalid UTF-8 byte at position 3 (0xff)"},
		{Row: 4, Column: "Owner", Reason: "not a valid reference: NUL byte at position 2 (text cannot hold NUL)"},
	}, errs)
	_, errs = plan.MapRecord(5, []string{"", "T-3", "Hi", "", "", ""})
	require.Equal(t, []mapping.RowError{{Row: 5, Column: "Acct", Reason: "key account_id is empty"}}, errs)
}

func TestCompileModelProblems(t *testing.T) {
	t.Parallel()
	header := []string{"Acct", "Id", "Subject", "Body"}
	keys := []*intakev1.MappingEntry{col("account_id", "Acct"), col("touchpoint_id", "Id")}
	for _, tc := range []struct {
		name    string
		entries []*intakev1.MappingEntry
		newAttr []*intakev1.NewAttribute
		want    []mapping.Problem
	}{
		{
			name:    "neither subject nor content",
			entries: keys,
			want: []mapping.Problem{{Entry: -1, Attribute: "subject,content", Code: mapping.CodeRequiredAnyNotMapped,
				Message: "touchpoints needs at least one of subject, content mapped"}},
		},
		{
			name:    "keys not mapped",
			entries: []*intakev1.MappingEntry{col("content", "Body")},
			want: []mapping.Problem{
				{Entry: -1, Attribute: "account_id", Code: mapping.CodeKeyNotMapped, Message: "key attribute account_id is not mapped"},
				{Entry: -1, Attribute: "touchpoint_id", Code: mapping.CodeKeyNotMapped, Message: "key attribute touchpoint_id is not mapped"},
			},
		},
		{
			name:    "unknown attribute lists the model's and the new ones",
			entries: append(keys[:2:2], col("subject", "Subject"), col("topic", "Body")),
			newAttr: []*intakev1.NewAttribute{{AttributeId: "mood", Type: tText}},
			want: []mapping.Problem{{Entry: 3, Attribute: "topic", Column: "Body", Code: mapping.CodeUnknownAttribute,
				Message: `entry 4: touchpoints has no attribute "topic"; its attributes are: account_id, touchpoint_id, subject, content, date, duration, cost, owner_id, mood`}},
		},
		{
			name:    "bad new attributes",
			entries: append(keys[:2:2], col("subject", "Subject")),
			newAttr: []*intakev1.NewAttribute{
				{AttributeId: "Mood", Type: tText},
				{AttributeId: "score"},
				{AttributeId: "duration", Type: tText},
				{AttributeId: "cost", Type: tCurrency},
			},
			want: []mapping.Problem{
				{Entry: -1, Attribute: "Mood", Code: mapping.CodeInvalidNewAttribute, Message: `new attribute "Mood": the id must start with a lowercase letter`},
				{Entry: -1, Attribute: "score", Code: mapping.CodeInvalidNewAttribute, Message: "new attribute score has no type (use text, number, currency, date, timestamp, boolean or foreign_key)"},
				{Entry: -1, Attribute: "duration", Code: mapping.CodeInvalidNewAttribute, Message: "new attribute duration is declared as text, but touchpoints already has it as number"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := spec(tc.entries...)
			s.NewAttributes = tc.newAttr
			require.Equal(t, tc.want, problems(t, touchpoints(), s, header))
		})
	}
}

func TestProblemFindings(t *testing.T) {
	t.Parallel()
	_, err := mapping.Compile(accounts(t), spec(col("name", "NAME ")), []string{"Name"})
	findings := mapping.Findings(err)
	require.Len(t, findings, 2)
	require.Equal(t, intakev1.FindingSeverity_FINDING_SEVERITY_ERROR, findings[0].GetSeverity())
	require.Equal(t, "KEY_NOT_MAPPED", findings[0].GetCode())
	require.Equal(t, int32(-1), findings[0].GetEntry())
	require.Equal(t, "account_id", findings[0].GetAttribute())
	require.Equal(t, "COLUMN_NOT_IN_HEADER", findings[1].GetCode())
	require.Equal(t, int32(0), findings[1].GetEntry())
	require.Equal(t, "name", findings[1].GetAttribute())
	require.Equal(t, "NAME ", findings[1].GetColumn())
	require.Equal(t, `column "NAME " (entry 1, attribute name) is not in the file's header; did you mean "Name"? the header has: "Name"`, findings[1].GetMessage())
	require.Nil(t, mapping.Findings(nil))
}

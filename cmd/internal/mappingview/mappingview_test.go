package mappingview_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/intakehq/intake/cmd/internal/jobfile"
	"github.com/intakehq/intake/cmd/internal/mappingview"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

func TestFindingsTable(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	require.NoError(t, mappingview.Findings(&b, []*intakev1.Finding{
		{Severity: intakev1.FindingSeverity_FINDING_SEVERITY_ERROR, Code: "KEY_NOT_MAPPED", Entry: -1, Attribute: "account_id",
			Message: "the key account_id is not mapped"},
		{Severity: intakev1.FindingSeverity_FINDING_SEVERITY_ERROR, Code: "VALUE_DOES_NOT_CONVERT", Entry: 3, Attribute: "created_date",
			Column: "Created", Row: 7, Value: "13/45/2007", Message: "not a date in the format MM/dd/yyyy"},
		{Severity: intakev1.FindingSeverity_FINDING_SEVERITY_WARNING, Code: "EMPTY_COLUMN", Entry: 0, Column: "Notes", Message: "every\nsample is empty"},
	}))
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	require.Len(t, lines, 4)
	require.Regexp(t, `^SEVERITY\s+CODE\s+ENTRY\s+ATTRIBUTE\s+COLUMN\s+ROW\s+MESSAGE$`, lines[0])
	require.Regexp(t, `^error\s+KEY_NOT_MAPPED\s+-\s+account_id\s+-\s+-\s+the key account_id is not mapped$`, lines[1])
	require.Regexp(t, `^error\s+VALUE_DOES_NOT_CONVERT\s+4\s+created_date\s+"Created"\s+7\s+not a date in the format MM/dd/yyyy \(value "13/45/2007"\)$`, lines[2])
	require.Regexp(t, `^warning\s+EMPTY_COLUMN\s+1\s+-\s+"Notes"\s+-\s+every sample is empty$`, lines[3])

	errs, warnings := mappingview.Counts([]*intakev1.Finding{{}, {Severity: intakev1.FindingSeverity_FINDING_SEVERITY_WARNING}})
	require.Equal(t, 1, errs)
	require.Equal(t, 1, warnings)
}

func TestColumnsMarkNewOnesGreenOnATerminal(t *testing.T) {
	t.Parallel()
	cols := []*intakev1.SourceColumn{
		{Name: "Account ID", Mapped: true, Samples: []string{"A-1", "A-2"}},
		{Name: "Segment", New: true, Samples: []string{"SMB"}},
		{Name: "Fax"},
	}
	var plain strings.Builder
	require.NoError(t, mappingview.Columns(&plain, cols, false))
	require.NotContains(t, plain.String(), "\x1b[")
	require.Contains(t, plain.String(), "Columns of the file: 3, 1 mapped, 2 not mapped, 1 new since the mapping was last validated")
	require.Regexp(t, `\+ new\s+Segment\s+no\s+"SMB"`, plain.String())
	require.Regexp(t, `\n\s+Account ID\s+yes\s+"A-1", "A-2"`, plain.String())

	var tty strings.Builder
	require.NoError(t, mappingview.Columns(&tty, cols, true))
	var green string
	for _, l := range strings.Split(tty.String(), "\n") {
		if strings.Contains(l, "Segment") {
			green = l
		}
	}
	require.True(t, strings.HasPrefix(green, "\x1b[42m"), "the new column's line has a green background: %q", green)
	require.True(t, strings.HasSuffix(green, "\x1b[0m"))
	// Colored and plain lines stay aligned: the names start in the same place.
	lines := strings.Split(tty.String(), "\n")
	require.Equal(t, strings.Index(lines[2], "Account ID"), strings.Index(lines[3], "Segment"))
}

func TestDetected(t *testing.T) {
	t.Parallel()
	require.Equal(t, `delimiter ";" (97% sure), encoding iso-8859-1 (80% sure)`, mappingview.Detected(&intakev1.DialectDetection{
		Delimiter: ";", DelimiterConfidence: 0.97, Encoding: "iso-8859-1", EncodingConfidence: 0.8}))
	require.Equal(t, `delimiter tab (100% sure), encoding utf-8 with BOM (100% sure), gzip-compressed`, mappingview.Detected(&intakev1.DialectDetection{
		Delimiter: "\t", DelimiterConfidence: 1, Encoding: "utf-8", EncodingConfidence: 1, Bom: true, Gzip: true}))
	require.Empty(t, mappingview.Detected(nil))
}

func TestPreviewShowsRawAndValuesAndListsErrors(t *testing.T) {
	t.Parallel()
	col := func(attr, c string) *intakev1.MappingEntry {
		return &intakev1.MappingEntry{Attribute: attr, Source: &intakev1.MappingEntry_Column{Column: c}}
	}
	mapping := &intakev1.MappingSpec{Entries: []*intakev1.MappingEntry{
		col("account_id", "Account ID"), col("created_date", "Created"),
		{Attribute: "status", Source: &intakev1.MappingEntry_Constant{Constant: "customer"}},
		{Attribute: "name", Source: &intakev1.MappingEntry_Function{Function: `col["First"] + " " + col["Last"]`}},
	}}
	resp := &intakev1.PreviewJobResponse{
		Header:     []string{"Account ID", "Created", "First", "Last"},
		Attributes: []string{"account_id", "created_date", "status", "name"},
		Rows: []*intakev1.PreviewRow{
			{Row: 2, Raw: []string{"A-1", "03/15/2021", "Ada", "Lovelace"}, Cells: []*intakev1.PreviewCell{
				{Value: "A-1"}, {Value: "2021-03-15"}, {Value: "customer"}, {Value: "Ada Lovelace"}}},
			{Row: 3, Raw: []string{"A-2", "13/45/2021", "Alan", ""}, Cells: []*intakev1.PreviewCell{
				{Value: "A-2"}, {Error: `"13/45/2021" is not a date in the format MM/dd/yyyy`}, {Value: "customer"}, {Null: true}}},
			{Row: 4, Raw: []string{"A-3"}, Error: "1 field, the header has 4"},
		},
	}
	var b strings.Builder
	require.NoError(t, mappingview.Preview(&b, resp, mapping))
	out := b.String()
	require.Regexp(t, `ROW\s+account_id\s+created_date\s+status\s+name`, out)
	require.Regexp(t, `2\s+raw\s+A-1\s+03/15/2021\s+\(constant\)\s+\(function\)`, out)
	require.Regexp(t, `\n\s+value\s+A-1\s+2021-03-15\s+customer\s+Ada Lovelace`, out)
	require.Regexp(t, `\n\s+value\s+A-2\s+✗ \[1\]\s+customer\s+null`, out)
	require.Regexp(t, `\n\s+value\s+✗ \[2\] the whole row`, out)
	require.Contains(t, out, "Values that do not convert (2):")
	require.Contains(t, out, `[1] row 3, created_date (column "Created"): "13/45/2021" is not a date in the format MM/dd/yyyy`)
	require.Contains(t, out, `[2] row 4: 1 field, the header has 4`)
}

// The suggested YAML, pasted into a job file, reads back as the suggested
// mapping, with the reasons as notes.
func TestSuggestionYAMLIsReadyToPaste(t *testing.T) {
	t.Parallel()
	resp := &intakev1.SuggestMappingResponse{
		Header: []string{"Acct #", "Company", "Since", "Fav Colour"},
		Mapping: &intakev1.MappingSpec{
			Entries: []*intakev1.MappingEntry{
				{Attribute: "account_id", Source: &intakev1.MappingEntry_Column{Column: "Acct #"}},
				{Attribute: "name", Source: &intakev1.MappingEntry_Column{Column: "Company"}, Note: "synonym of name"},
				{Attribute: "created_date", Source: &intakev1.MappingEntry_Column{Column: "Since"}, SourceFormat: "dd.MM.yyyy"},
				{Attribute: "fav_colour", Source: &intakev1.MappingEntry_Column{Column: "Fav Colour"}},
				{Attribute: "is_active", Source: &intakev1.MappingEntry_Constant{Constant: "true"}},
			},
			NewAttributes: []*intakev1.NewAttribute{{AttributeId: "fav_colour", DisplayName: "Fav Colour", Type: intakev1.AttributeType_ATTRIBUTE_TYPE_TEXT}},
		},
		Suggestions: []*intakev1.Suggestion{
			{Entry: 0, Column: "Acct #", Reason: "key: synonym of account_id", Confidence: 0.9},
			{Entry: 1, Column: "Company", Reason: "synonym", Confidence: 0.8},
			{Entry: 3, Column: "Fav Colour", Reason: "new attribute (text)", Confidence: 0.5},
		},
		Detected: &intakev1.DialectDetection{Delimiter: ";", DelimiterConfidence: 1, Encoding: "utf-8", EncodingConfidence: 1},
	}
	dialect := &intakev1.CsvDialect{Delimiter: ";", Encoding: "iso-8859-1"}
	y, err := mappingview.SuggestionYAML(resp, dialect)
	require.NoError(t, err)
	out := string(y)
	require.True(t, strings.HasPrefix(out, "# Suggested from the file's header (4 columns)"), out)
	require.Contains(t, out, `Detected: delimiter ";" (100% sure)`)
	require.Contains(t, out, "attribute: account_id # 90% sure")
	require.Contains(t, out, `constant: "true"`, "a string that YAML would read as a bool stays quoted")

	job, err := jobfile.Parse([]byte("object: OBJECT_TYPE_ACCOUNTS\n" + out))
	require.NoError(t, err, out)
	want := proto.Clone(resp.GetMapping()).(*intakev1.MappingSpec)
	want.Dialect = dialect
	want.Entries[0].Note = "key: synonym of account_id"
	want.Entries[3].Note = "new attribute (text)"
	require.True(t, proto.Equal(want, job.GetMapping()), "got %v\nfrom\n%s", job.GetMapping(), out)
}

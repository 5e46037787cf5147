package jobfile_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/intakehq/intake/cmd/internal/jobfile"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

const examples = "../../../examples"

func TestExamplesParse(t *testing.T) {
	t.Parallel()
	accounts, err := jobfile.Read(filepath.Join(examples, "demo-accounts.yaml"), nil)
	require.NoError(t, err)
	require.Equal(t, "jobs/demo-accounts", accounts.GetName())
	require.Equal(t, "Demo accounts", accounts.GetDisplayName())
	require.Equal(t, intakev1.ObjectType_OBJECT_TYPE_ACCOUNTS, accounts.GetObject())
	require.Equal(t, "http://127.0.0.1:8000/accounts.csv", accounts.GetConnection().GetHttp().GetUrl())
	require.Equal(t, ",", accounts.GetMapping().GetDialect().GetDelimiter())
	require.Equal(t, []string{"n/a", "NULL"}, accounts.GetMapping().GetDialect().GetNullValues())
	require.EqualValues(t, 1, accounts.GetSchedule().GetEveryMinutes().GetMinutes())
	require.True(t, accounts.GetEnabled())
	require.True(t, accounts.GetRunOnSave())
	require.True(t, accounts.GetAllowNewRecords())
	var created *intakev1.MappingEntry
	for _, e := range accounts.GetMapping().GetEntries() {
		if e.GetAttribute() == "created_date" {
			created = e
		}
	}
	require.NotNil(t, created)
	require.Equal(t, "created_date", created.GetColumn())
	require.Equal(t, "MM/dd/yyyy", created.GetSourceFormat())

	users, err := jobfile.Read(filepath.Join(examples, "demo-users.yaml"), nil)
	require.NoError(t, err)
	require.Equal(t, intakev1.ObjectType_OBJECT_TYPE_USERS, users.GetObject())
	require.Equal(t, "Europe/Berlin", users.GetSchedule().GetTimeZone())
	require.EqualValues(t, 6, users.GetSchedule().GetDaily().GetHour())
	require.Equal(t, "Account ID", users.GetMapping().GetEntries()[0].GetColumn())
}

// Every column a mapping names must exist in the sample file it reads.
func TestExampleMappingsMatchSampleHeaders(t *testing.T) {
	t.Parallel()
	for file, csv := range map[string]string{"demo-accounts.yaml": "accounts.csv", "demo-users.yaml": "users.csv", "accounts-de.yaml": "accounts-de.csv"} {
		job, err := jobfile.Read(filepath.Join(examples, file), nil)
		require.NoError(t, err)
		data, err := os.ReadFile(filepath.Join(examples, "data", csv))
		require.NoError(t, err)
		if job.GetMapping().GetDialect().GetEncoding() == "iso-8859-1" {
			data = latin1ToUTF8(data)
		}
		delim := job.GetMapping().GetDialect().GetDelimiter()
		if delim == "" {
			delim = ","
		}
		header := strings.Split(strings.TrimRight(strings.SplitN(string(data), "\n", 2)[0], "\r"), delim)
		for _, e := range job.GetMapping().GetEntries() {
			if _, ok := e.GetSource().(*intakev1.MappingEntry_Column); ok {
				require.Contains(t, header, e.GetColumn(), "%s: column of %s", file, e.GetAttribute())
			}
		}
	}
}

func latin1ToUTF8(b []byte) []byte {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return []byte(string(r))
}

// The fields of issue 3 read from YAML: functions, new attributes, the
// dialect and the error budget.
func TestMappingFieldsOfTheExamples(t *testing.T) {
	t.Parallel()
	de, err := jobfile.Read(filepath.Join(examples, "accounts-de.yaml"), nil)
	require.NoError(t, err)
	d := de.GetMapping().GetDialect()
	require.Equal(t, ";", d.GetDelimiter())
	require.Equal(t, "iso-8859-1", d.GetEncoding())
	require.InDelta(t, 5, de.GetErrorBudget().GetMaxRejectedPercent(), 1e-9)
	var fns []string
	for _, e := range de.GetMapping().GetEntries() {
		if f, ok := e.GetSource().(*intakev1.MappingEntry_Function); ok {
			fns = append(fns, e.GetAttribute()+" = "+f.Function)
		}
	}
	require.Equal(t, []string{`is_active = Aktiv == "ja"`, `status = Aktiv == "ja" ? "customer" : "churned"`}, fns)

	job, err := jobfile.Parse([]byte(`
object: OBJECT_TYPE_ACCOUNTS
errorBudget: {maxRejectedRows: 10}
mapping:
  dialect: {delimiter: "\t", encoding: utf-16le, skipRows: 1, trimSpace: true, compression: COMPRESSION_GZIP, quote: "'", escape: "\\"}
  entries:
    - {attribute: account_id, column: Id}
    - {attribute: segment, function: 'col["Seg ment"].upperAscii()', note: why}
  newAttributes:
    - {attributeId: segment, displayName: Segment, type: ATTRIBUTE_TYPE_TEXT}
    - {attributeId: parent, type: ATTRIBUTE_TYPE_FOREIGN_KEY, references: objects/accounts}
`))
	require.NoError(t, err)
	require.EqualValues(t, 10, job.GetErrorBudget().GetMaxRejectedRows())
	require.Equal(t, "\t", job.GetMapping().GetDialect().GetDelimiter())
	require.Equal(t, `\`, job.GetMapping().GetDialect().GetEscape())
	require.Equal(t, intakev1.Compression_COMPRESSION_GZIP, job.GetMapping().GetDialect().GetCompression())
	require.Equal(t, `col["Seg ment"].upperAscii()`, job.GetMapping().GetEntries()[1].GetFunction())
	require.Len(t, job.GetMapping().GetNewAttributes(), 2)
	require.Equal(t, "objects/accounts", job.GetMapping().GetNewAttributes()[1].GetReferences())
}

func TestJSONAndProtoNamesAreAccepted(t *testing.T) {
	t.Parallel()
	fromYAML, err := jobfile.Parse([]byte(`
display_name: Nightly
object: OBJECT_TYPE_USERS
connection: {local: {path: /data/users.csv}}
mapping:
  entries:
    - {attribute: account_id, constant: "42"}
schedule: {daily: {hour: 2, minute: 30}}
allow_new_records: true
`))
	require.NoError(t, err)
	fromJSON, err := jobfile.Parse([]byte(`{"displayName": "Nightly", "object": "OBJECT_TYPE_USERS",
		"connection": {"local": {"path": "/data/users.csv"}},
		"mapping": {"entries": [{"attribute": "account_id", "constant": "42"}]},
		"schedule": {"daily": {"hour": 2, "minute": 30}}, "allowNewRecords": true}`))
	require.NoError(t, err)
	require.True(t, proto.Equal(fromYAML, fromJSON), "yaml %v\njson %v", fromYAML, fromJSON)
	require.Equal(t, "42", fromYAML.GetMapping().GetEntries()[0].GetConstant())

	// What `intakectl job get -o json` prints reads back to the same job.
	out, err := protojson.Marshal(fromYAML)
	require.NoError(t, err)
	again, err := jobfile.Parse(out)
	require.NoError(t, err)
	require.True(t, proto.Equal(fromYAML, again))
}

func TestHeaderValuesWithNumericKeys(t *testing.T) {
	t.Parallel()
	job, err := jobfile.Parse([]byte("connection:\n  http:\n    url: https://x.example/a.csv\n    headers:\n      Authorization: Bearer t\n      1: one\n"))
	require.NoError(t, err)
	require.Equal(t, map[string]string{"Authorization": "Bearer t", "1": "one"}, job.GetConnection().GetHttp().GetHeaders())
}

func TestBadFilesSayWhatIsWrong(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ doc, want string }{
		{"", "the job file is empty"},
		{"displayName: [unclosed", "not valid YAML or JSON"},
		{"- a\n- b\n", "must be a mapping of fields"},
		{"displayNme: x\n", `not a valid job: unknown field "displayNme"`},
		{"object: ACCOUNTS\n", `not a valid job: invalid value for enum field object: "ACCOUNTS"`},
		{"schedule: {everyMinutes: {minutes: soon}}\n", "not a valid job: invalid value for int32 field minutes"},
	} {
		_, err := jobfile.Parse([]byte(tc.doc))
		require.Error(t, err, tc.doc)
		msg := strings.ReplaceAll(err.Error(), "\u00a0", " ")
		require.Contains(t, msg, tc.want, tc.doc)
		if strings.Contains(tc.want, "not a valid job") {
			require.NotContains(t, msg, "(line ", "positions of the intermediate JSON are dropped")
		}
	}
}

func TestReadNamesTheFile(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "job.yaml")
	require.NoError(t, os.WriteFile(p, []byte("nope: 1\n"), 0o600))
	_, err := jobfile.Read(p, nil)
	require.ErrorContains(t, err, p+": not a valid job")
	_, err = jobfile.Read(filepath.Join(t.TempDir(), "missing.yaml"), nil)
	require.ErrorContains(t, err, "missing.yaml")
	job, err := jobfile.Read("-", strings.NewReader(`{"displayName": "stdin"}`))
	require.NoError(t, err)
	require.Equal(t, "stdin", job.GetDisplayName())
}

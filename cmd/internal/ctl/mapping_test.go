package ctl_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/cmd/internal/command"
	"github.com/intakehq/intake/cmd/internal/ctl"
	"github.com/intakehq/intake/cmd/internal/jobfile"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// serveExamples serves examples/data and returns its URL.
func serveExamples(t *testing.T) string {
	t.Helper()
	files := httptest.NewServer(http.FileServer(http.Dir("../../../examples/data")))
	t.Cleanup(files.Close)
	return files.URL
}

// exampleJob writes examples/NAME with its URL pointed at base; edit
// changes the text further.
func exampleJob(t *testing.T, name, base string, edit func(string) string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../../../examples", name))
	require.NoError(t, err)
	s := strings.ReplaceAll(string(b), "http://127.0.0.1:8000", base)
	if edit != nil {
		s = edit(s)
	}
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(s), 0o600))
	return p
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

// The validate → create → preview → dry run → run flow of the README, on
// the Latin-1, semicolon, decimal-comma example.
func TestValidateCreatePreviewAndDryRunThroughTheCLI(t *testing.T) {
	t.Parallel()
	addr, logs := startIntake(t)
	base := serveExamples(t)
	de := exampleJob(t, "accounts-de.yaml", base, nil)

	out, err := intakectl(t, addr, "job", "validate", "-f", de)
	require.NoError(t, err, out)
	require.Contains(t, out, `Detected: delimiter ";"`)
	require.Regexp(t, `Kundennr\s+yes\s+"DE-2001", "DE-2002", "DE-2003"`, out)
	require.Regexp(t, `Firma\s+yes\s+"Müller Maschinenbau GmbH"`, out, "decoded from ISO-8859-1")
	require.Contains(t, out, "Valid: checked against 8 sample rows")

	// A mapping with mistakes: validate lists them and exits 1; create refuses.
	broken := exampleJob(t, "accounts-de.yaml", base, func(s string) string {
		s = strings.Replace(s, "column: Firma", "column: Firmenname", 1)
		s = strings.Replace(s, "attribute: region", "attribute: bundesland", 1)
		return strings.Replace(s, `function: Aktiv == "ja"`, `function: Aktiv == `, 1)
	})
	out, err = intakectl(t, addr, "job", "validate", "-f", broken)
	require.Equal(t, 1, exitCode(err), "%v\n%s", err, out)
	require.Regexp(t, `SEVERITY\s+CODE\s+ENTRY\s+ATTRIBUTE\s+COLUMN\s+ROW\s+MESSAGE`, out)
	require.Regexp(t, `error\s+COLUMN_NOT_IN_HEADER\s+2\s+name\s+"Firmenname"`, out)
	require.Regexp(t, `error\s+UNKNOWN_ATTRIBUTE\s+4\s+bundesland`, out)
	require.Regexp(t, `error\s+FUNCTION_DOES_NOT_COMPILE\s+8\s+is_active`, out)
	require.Contains(t, out, "Not valid: 3 errors")

	out, err = intakectl(t, addr, "job", "create", "-f", broken)
	require.Equal(t, 1, exitCode(err), out)
	require.ErrorContains(t, err, "the job was not created: its mapping does not validate (3 errors)")
	require.Contains(t, out, "COLUMN_NOT_IN_HEADER")
	_, err = intakectl(t, addr, "job", "get", "accounts-de")
	require.ErrorContains(t, err, "not found")

	out, err = intakectl(t, addr, "job", "create", "-f", de)
	require.NoError(t, err, out)
	require.Equal(t, "jobs/accounts-de\n", out)
	out, err = intakectl(t, addr, "job", "get", "accounts-de")
	require.NoError(t, err, out)
	require.Contains(t, out, "Error budget: at most 5% of the rows rejected per run")
	require.Regexp(t, `Validated:\s+yes`, out)
	require.Contains(t, out, `Dialect:      delimiter ";", encoding iso-8859-1`)
	require.Regexp(t, `status\s+function Aktiv == "ja" \? "customer" : "churned"`, out)

	// Preview: raw values and what would be stored.
	out, err = intakectl(t, addr, "job", "preview", "accounts-de", "--rows", "3")
	require.NoError(t, err, out)
	require.Contains(t, out, `Detected: delimiter ";"`)
	require.Regexp(t, `ROW\s+account_id\s+name\s+industry\s+region\s+employees\s+annual_revenue\s+created_date\s+is_active\s+status\s+notes`, out)
	require.Regexp(t, `2\s+raw\s+DE-2001\s+Müller Maschinenbau GmbH\s+Maschinenbau\s+Süd\s+1\.250\s+12\.500\.000,00 EUR\s+15\.03\.1987\s+\(function\)`, out)
	require.Regexp(t, `value\s+DE-2001\s+Müller Maschinenbau GmbH\s+Maschinenbau\s+Süd\s+1250\s+12500000\.00\s+1987-03-15\s+true\s+customer`, out)
	require.Regexp(t, `\n4\s+raw\s+DE-2003`, out)
	require.NotRegexp(t, `\n5\s+raw`, out, "three rows")

	// A preview of a changed mapping marks the cells that do not convert.
	wrongFormat := exampleJob(t, "accounts-de.yaml", base, func(s string) string {
		return strings.Replace(s, "sourceFormat: dd.MM.yyyy", "sourceFormat: MM/dd/yyyy", 1)
	})
	out, err = intakectl(t, addr, "job", "preview", "-f", wrongFormat, "--rows", "2")
	require.NoError(t, err, out)
	require.Regexp(t, `value\s+DE-2001\s+.*✗ \[1\]`, out)
	require.Contains(t, out, "Values that do not convert (2):")
	require.Regexp(t, `\[1\] row 2, created_date \(column "Gegründet"\): .*15\.03\.1987`, out)

	// A dry run says what would happen; then the real run does it.
	out, err = intakectl(t, addr, "job", "run", "accounts-de", "--dry-run", "--watch")
	require.NoError(t, err, "%s\nlogs:\n%s", out, logs)
	require.Contains(t, out, "started a dry run (nothing will change) jobs/accounts-de/runs/")
	require.Contains(t, out, "Dry run:  yes, nothing was changed")
	require.Contains(t, out, "Rows:     8 read, 0 rejected, 8 created")
	out, err = intakectl(t, addr, "job", "run", "accounts-de", "--watch")
	require.NoError(t, err, "%s\nlogs:\n%s", out, logs)
	require.NotContains(t, out, "Dry run")
	require.Contains(t, out, "Rows:     8 read, 0 rejected, 8 created", "the dry run created nothing")

	// Updating the mapping validates it again.
	out, err = intakectl(t, addr, "job", "update", "-f", broken)
	require.Equal(t, 1, exitCode(err), out)
	require.ErrorContains(t, err, "the job was not updated")
	out, err = intakectl(t, addr, "job", "update", "-f", wrongFormat)
	require.Equal(t, 1, exitCode(err), "every sample date is wrong: %s", out)
}

func TestSuggestThroughTheCLI(t *testing.T) {
	t.Parallel()
	addr, _ := startIntake(t)
	base := serveExamples(t)

	out, err := intakectl(t, addr, "job", "suggest", "--object", "accounts", "--url", base+"/accounts.csv")
	require.NoError(t, err, out)
	require.True(t, strings.HasPrefix(out, "# Suggested from the file's header (10 columns)"), out)
	job, err := jobfile.Parse([]byte("object: OBJECT_TYPE_ACCOUNTS\n" + out))
	require.NoError(t, err, "the suggestion pastes into a job file:\n%s", out)
	entries := job.GetMapping().GetEntries()
	require.NotEmpty(t, entries)
	require.Equal(t, "account_id", entries[0].GetAttribute(), "keys first")
	require.Equal(t, "account_id", entries[0].GetColumn())
	require.NotEmpty(t, entries[0].GetNote(), "why")

	// A partial job file: object, connection and dialect.
	partial := writeFile(t, "partial.yaml", `
object: OBJECT_TYPE_ACCOUNTS
connection: {http: {url: "`+base+`/accounts-de.csv"}}
mapping: {dialect: {delimiter: ";", encoding: iso-8859-1}}
`)
	out, err = intakectl(t, addr, "job", "suggest", "-f", partial)
	require.NoError(t, err, out)
	job, err = jobfile.Parse([]byte("object: OBJECT_TYPE_ACCOUNTS\n" + out))
	require.NoError(t, err, out)
	require.Equal(t, ";", job.GetMapping().GetDialect().GetDelimiter())
	require.Equal(t, "account_id", job.GetMapping().GetEntries()[0].GetAttribute())
	require.Equal(t, "Kundennr", job.GetMapping().GetEntries()[0].GetColumn(), "the only column that can be the key:\n%s", out)
	require.NotEmpty(t, job.GetMapping().GetNewAttributes(), "unmatched columns as new attributes:\n%s", out)

	_, err = intakectl(t, addr, "job", "suggest", "--object", "planets", "--url", base+"/accounts.csv")
	require.Equal(t, 2, exitCode(err))
	require.ErrorContains(t, err, `"planets" is not an object: want one of accounts, users, usage,`)
	_, err = intakectl(t, addr, "job", "suggest", "--object", "accounts")
	require.Equal(t, 2, exitCode(err))
}

func TestDataModelAndRejectsThroughTheCLI(t *testing.T) {
	t.Parallel()
	addr, logs := startIntake(t)

	out, err := intakectl(t, addr, "object", "list")
	require.NoError(t, err, out)
	require.Regexp(t, `OBJECT\s+DISPLAY NAME\s+KEYS\s+ATTRIBUTES\s+TABLE`, out)
	require.Regexp(t, `objects/accounts\s+.*account_id\s+`, out)
	require.Regexp(t, `objects/users\s+.*account_id, user_id\s+`, out)
	require.Regexp(t, `objects/usage\s+.*append-only`, out)
	require.Len(t, strings.Split(strings.TrimSpace(out), "\n"), 11, "a header and ten objects:\n%s", out)

	out, err = intakectl(t, addr, "attribute", "create", "accounts", "--id", "segment", "--type", "text", "--display-name", "Segment")
	require.NoError(t, err, out)
	require.Equal(t, "created objects/accounts/attributes/segment (text)\n", out)
	out, err = intakectl(t, addr, "attribute", "create", "objects/accounts", "--id", "owner_account", "--type", "foreign-key", "--references", "accounts")
	require.NoError(t, err, out)
	out, err = intakectl(t, addr, "attribute", "list", "accounts")
	require.NoError(t, err, out)
	require.Regexp(t, `account_id\s+text\s+yes\s+system`, out)
	require.Regexp(t, `segment\s+text\s+no\s+custom\s+-\s+Segment`, out)
	require.Regexp(t, `owner_account\s+foreign-key\s+no\s+custom\s+objects/accounts`, out)
	_, err = intakectl(t, addr, "attribute", "create", "accounts", "--id", "x", "--type", "colour")
	require.Equal(t, 2, exitCode(err))
	require.ErrorContains(t, err, `"colour" is not an attribute type: want text, number, currency, date, timestamp, boolean or foreign-key`)
	out, err = intakectl(t, addr, "attribute", "create", "accounts", "--id", "last_seen", "--type", "timestamp")
	require.NoError(t, err, out)
	require.Equal(t, "created objects/accounts/attributes/last_seen (timestamp)\n", out)

	// A job mapping the new attribute; two of its rows are bad.
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("Id,Name,Segment,Employees\nR-1,One,smb,1\nR-2,Two,ent,=2+2\nR-3,Three,mid,3\nR-4,-Four,smb,@4\n"))
	}))
	defer files.Close()
	jobFile := writeFile(t, "seg.yaml", `
name: jobs/segments
displayName: Segments
object: OBJECT_TYPE_ACCOUNTS
connection: {http: {url: "`+files.URL+`/a.csv"}}
mapping:
  entries:
    - {attribute: account_id, column: Id}
    - {attribute: name, column: Name}
    - {attribute: segment, column: Segment}
    - {attribute: employees, column: Employees}
allowNewRecords: true
schedule: {daily: {hour: 1, minute: 0}}
enabled: false
`)
	out, err = intakectl(t, addr, "job", "create", "-f", jobFile)
	require.NoError(t, err, out)
	out, err = intakectl(t, addr, "job", "run", "segments", "--watch")
	require.NoError(t, err, "%s\nlogs:\n%s", out, logs)
	require.Contains(t, out, "State:    partially succeeded")
	require.Contains(t, out, "Every rejected row as CSV: intakectl run rejects jobs/segments/runs/")
	runName := strings.TrimSpace(strings.TrimPrefix(strings.SplitN(out, "\n", 2)[0], "started "))

	out, err = intakectl(t, addr, "run", "rejects", runName)
	require.NoError(t, err, out)
	records, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	require.NoError(t, err, out)
	require.Len(t, records, 3, "a header and two rows:\n%s", out)
	for _, rec := range records {
		for _, cell := range rec {
			if cell != "" {
				require.NotContains(t, "=+-@", cell[:1], "%q in\n%s", cell, out)
			}
		}
	}
	csvFile := filepath.Join(t.TempDir(), "rejects.csv")
	out, err = intakectl(t, addr, "run", "rejects", runName, "-o", csvFile)
	require.NoError(t, err, out)
	require.Contains(t, out, "wrote the rejected rows of "+runName+" to "+csvFile)
	fromFile, err := csv.NewReader(strings.NewReader(mustRead(t, csvFile))).ReadAll()
	require.NoError(t, err)
	require.Equal(t, records, fromFile)
	_, err = intakectl(t, addr, "run", "rejects", "jobs/segments/runs/00000000-0000-0000-0000-000000000000", "-o", filepath.Join(t.TempDir(), "x.csv"))
	require.ErrorContains(t, err, "not found")

	_, err = intakectl(t, addr, "attribute", "delete", "objects/accounts/attributes/owner_account")
	require.NoError(t, err)
	_, err = intakectl(t, addr, "attribute", "delete", "accounts/segment")
	require.Equal(t, 2, exitCode(err))
	require.ErrorContains(t, err, "want objects/OBJECT/attributes/ID")
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

// A recurring job that maps a custom attribute keeps it from being deleted;
// the CLI prints the API's reason, naming the job.
func TestAttributeDeleteNamesTheJobs(t *testing.T) {
	t.Parallel()
	addr, _ := startIntake(t)
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("Id,Tier\nT-1,1\nT-2,2\n"))
	}))
	defer files.Close()
	jobFile := writeFile(t, "tier.yaml", `
name: jobs/tiers
displayName: Tiers
object: OBJECT_TYPE_ACCOUNTS
connection: {http: {url: "`+files.URL+`/t.csv"}}
mapping:
  entries:
    - {attribute: account_id, column: Id}
    - {attribute: tier, column: Tier}
  newAttributes:
    - {attributeId: tier, displayName: Tier, type: ATTRIBUTE_TYPE_NUMBER}
allowNewRecords: true
schedule: {everyMinutes: {minutes: 60}}
enabled: true
`)
	out, err := intakectl(t, addr, "job", "create", "-f", jobFile)
	require.NoError(t, err, out)
	out, err = intakectl(t, addr, "attribute", "list", "accounts")
	require.NoError(t, err, out)
	require.Regexp(t, `tier\s+number\s+no\s+custom`, out, "created with the job")

	_, err = intakectl(t, addr, "attribute", "delete", "objects/accounts/attributes/tier")
	require.Error(t, err)
	require.Contains(t, err.Error(), "jobs/tiers")
	require.Contains(t, err.Error(), "failed precondition")

	_, err = intakectl(t, addr, "job", "delete", "tiers")
	require.NoError(t, err)
	out, err = intakectl(t, addr, "attribute", "delete", "objects/accounts/attributes/tier")
	require.NoError(t, err)
	require.Equal(t, "deleted objects/accounts/attributes/tier\n", out)
}

func TestValidateNeedsAJob(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	err := ctl.Run(context.Background(), []string{"job", "validate"}, command.System{Stdout: &out, Stderr: &out,
		LookupEnv: func(string) (string, bool) { return "", false }})
	require.Equal(t, 2, exitCode(err))
	require.ErrorContains(t, err, "give a job NAME, -f FILE, or both")
	_, err = ctl.ParseObject("usage-aggregations")
	require.NoError(t, err)
	o, err := ctl.ParseObject("objects/account_foreign_keys")
	require.NoError(t, err)
	require.Equal(t, intakev1.ObjectType_OBJECT_TYPE_ACCOUNT_FOREIGN_KEYS, o)
}

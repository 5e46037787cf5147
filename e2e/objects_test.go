package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// rowsOf runs a query and returns its rows as text, NULL as "NULL".
func rowsOf(ctx context.Context, t *testing.T, db *pgxpool.Pool, sql string) [][]string {
	t.Helper()
	rs, err := db.Query(ctx, sql)
	require.NoError(t, err, sql)
	defer rs.Close()
	var out [][]string
	for rs.Next() {
		vals, err := rs.Values()
		require.NoError(t, err)
		row := make([]string, len(vals))
		for i, v := range vals {
			if v == nil {
				row[i] = "NULL"
			} else {
				row[i] = fmt.Sprint(v)
			}
		}
		out = append(out, row)
	}
	require.NoError(t, rs.Err(), sql)
	return out
}

func gzipped(s string) string {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, _ = w.Write([]byte(s))
	_ = w.Close()
	return b.String()
}

// utf16LE encodes s as UTF-16 little endian with a byte order mark.
func utf16LE(s string) string {
	var b bytes.Buffer
	b.Write([]byte{0xff, 0xfe})
	for _, u := range utf16.Encode([]rune(s)) {
		_ = binary.Write(&b, binary.LittleEndian, u)
	}
	return b.String()
}

// TestEveryObject imports a file into each of the ten objects through the
// gRPC API, mapping every key, and checks the rows in the object tables.
// The files vary the dialect (semicolons, tabs, gzip, UTF-16) and the
// mappings use formats, constants and functions.
func TestEveryObject(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	s := startSystem(t)
	files := newFileServer(t, "")

	type object = intakev1.ObjectType
	cases := []struct {
		object  object
		file    string
		dialect *intakev1.CsvDialect
		entries []*intakev1.MappingEntry
		query   string
		want    [][]string
	}{
		{
			object: intakev1.ObjectType_OBJECT_TYPE_ACCOUNTS,
			file: csvLines("Account,Name,Revenue,Renewal,Active,Parent",
				`A-1,Acme,"$1,200.50",2025-01-31,yes,`,
				`A-2,Globex,(€300.00),2025-02-28,no,A-1`),
			entries: []*intakev1.MappingEntry{column("account_id", "Account"), column("name", "Name"),
				column("annual_revenue", "Revenue"), column("renewal_date", "Renewal"), column("is_active", "Active"),
				column("parent_account_id", "Parent")},
			query: `SELECT account_id, name, annual_revenue::text, renewal_date::text, is_active::text, parent_account_id FROM objects.accounts ORDER BY 1`,
			want:  [][]string{{"A-1", "Acme", "1200.50", "2025-01-31", "true", "NULL"}, {"A-2", "Globex", "-300.00", "2025-02-28", "false", "A-1"}},
		},
		{
			object: intakev1.ObjectType_OBJECT_TYPE_USERS,
			file: csvLines("acct;uid;mail;logins;last seen",
				"A-1;U-1;ADA@Example.COM;1.234;31.01.2025",
				"A-1;U-2; bo@example.com ;7;"),
			entries: []*intakev1.MappingEntry{column("account_id", "acct"), column("user_id", "uid"),
				function("email", "mail.trim().lowerAscii()"), columnFormat("logins", "logins", "1.234,5"),
				columnFormat("last_login_date", "last seen", "dd.MM.yyyy")},
			query: `SELECT account_id, user_id, email, logins::text, last_login_date::text FROM objects.users ORDER BY 1, 2`,
			want:  [][]string{{"A-1", "U-1", "ada@example.com", "1234", "2025-01-31"}, {"A-1", "U-2", "bo@example.com", "7", "NULL"}},
		},
		{
			object: intakev1.ObjectType_OBJECT_TYPE_USAGE,
			file: csvLines("account,user,activity,module,ts",
				"A-1,U-1,login,core,2025-03-01T10:00:00Z",
				"A-1,U-1,login,core,2025-03-01T11:00:00Z",
				"A-1,U-2,export,reports,2025-03-01T10:00:00Z"),
			entries: []*intakev1.MappingEntry{column("account_id", "account"), column("user_id", "user"),
				column("activity", "activity"), column("module", "module"), column("timestamp", "ts")},
			query: `SELECT account_id, user_id, activity, module, to_char("timestamp" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') FROM objects.usage ORDER BY 1, 2, 5`,
			want: [][]string{{"A-1", "U-1", "login", "core", "2025-03-01T10:00:00Z"}, {"A-1", "U-1", "login", "core", "2025-03-01T11:00:00Z"},
				{"A-1", "U-2", "export", "reports", "2025-03-01T10:00:00Z"}},
		},
		{
			// Tab-separated and gzip-compressed: both detected.
			object:  intakev1.ObjectType_OBJECT_TYPE_COLLECTIONS,
			file:    gzipped(csvLines("Account ID\tCollection ID\tName\tCreated", "A-1\tC-1\tQ1 deck\t1700000000", "A-2\tC-1\tOnboarding\t1700086400")),
			entries: []*intakev1.MappingEntry{column("account_id", "Account ID"), column("collection_id", "Collection ID"), column("name", "Name"), columnFormat("created_date", "Created", "unix"), constant("type", "playbook")},
			query:   `SELECT account_id, collection_id, name, created_date::text, type FROM objects.collections ORDER BY 1`,
			want:    [][]string{{"A-1", "C-1", "Q1 deck", "2023-11-14", "playbook"}, {"A-2", "C-1", "Onboarding", "2023-11-15", "playbook"}},
		},
		{
			object: intakev1.ObjectType_OBJECT_TYPE_USAGE_AGGREGATIONS,
			file: csvLines("acct,user,module,activity,day,count",
				`A-1,U-1,reports,export,03/01/2025,"1,234"`,
				`A-1,U-1,reports,view,03/01/2025,12`),
			entries: []*intakev1.MappingEntry{column("account_id", "acct"), column("user_id", "user"),
				function("aggregation", `module + "##" + activity`), columnFormat("date", "day", "MM/dd/yyyy"), column("value", "count")},
			query: `SELECT account_id, user_id, aggregation, date::text, value::text FROM objects.usage_aggregations ORDER BY 3`,
			want:  [][]string{{"A-1", "U-1", "reports##export", "2025-03-01", "1234"}, {"A-1", "U-1", "reports##view", "2025-03-01", "12"}},
		},
		{
			// UTF-16 LE with a byte order mark.
			object: intakev1.ObjectType_OBJECT_TYPE_TEAM_USERS,
			file: utf16LE(csvLines("E-mail,First,Last,License,Teams,Active",
				`ana@example.com,Ana,Lima,full,"Sales, EMEA",Y`,
				`zoë@example.com,Zoë,Ångström,viewer,Support,n`)),
			entries: []*intakev1.MappingEntry{column("email", "E-mail"), column("first_name", "First"), column("last_name", "Last"),
				column("license", "License"), column("teams", "Teams"), column("active", "Active")},
			query: `SELECT email, first_name, last_name, license, teams, active::text FROM objects.team_users ORDER BY 1`,
			want:  [][]string{{"ana@example.com", "Ana", "Lima", "full", "Sales, EMEA", "true"}, {"zoë@example.com", "Zoë", "Ångström", "viewer", "Support", "false"}},
		},
		{
			object:  intakev1.ObjectType_OBJECT_TYPE_ACCOUNT_ASSIGNMENTS,
			file:    csvLines("account|role|owner", "A-1|csm|ana@example.com", "A-1|ae|bo@example.com"),
			entries: []*intakev1.MappingEntry{column("account_id", "account"), column("role_id", "role"), column("team_user_email", "owner")},
			query:   `SELECT account_id, role_id, team_user_email FROM objects.account_assignments ORDER BY 2`,
			want:    [][]string{{"A-1", "ae", "bo@example.com"}, {"A-1", "csm", "ana@example.com"}},
		},
		{
			object:  intakev1.ObjectType_OBJECT_TYPE_TASKS,
			file:    csvLines("acct,id,subject,due,assignee,prio", "A-1,T-1,Call Ana,2025-04-01,ana@example.com,high", "A-2,T-1,Send deck,,bo@example.com,low"),
			entries: []*intakev1.MappingEntry{column("account_id", "acct"), column("task_id", "id"), column("subject", "subject"), column("due_date", "due"), column("assignee_email", "assignee"), column("priority", "prio")},
			query:   `SELECT account_id, task_id, subject, due_date::text, assignee_email, priority FROM objects.tasks ORDER BY 1`,
			want:    [][]string{{"A-1", "T-1", "Call Ana", "2025-04-01", "ana@example.com", "high"}, {"A-2", "T-1", "Send deck", "NULL", "bo@example.com", "low"}},
		},
		{
			object:  intakev1.ObjectType_OBJECT_TYPE_TOUCHPOINTS,
			file:    csvLines("acct,id,subject,body,when,owner", "A-1,TP-1,QBR,,2025-01-15,ana@example.com", `A-1,TP-2,,"Notes only, no subject",2025-01-16,ana@example.com`),
			entries: []*intakev1.MappingEntry{column("account_id", "acct"), column("touchpoint_id", "id"), column("subject", "subject"), column("content", "body"), column("date", "when"), column("owner_email", "owner")},
			query:   `SELECT account_id, touchpoint_id, subject, content, date::text, owner_email FROM objects.touchpoints ORDER BY 2`,
			want:    [][]string{{"A-1", "TP-1", "QBR", "NULL", "2025-01-15", "ana@example.com"}, {"A-1", "TP-2", "NULL", "Notes only, no subject", "2025-01-16", "ana@example.com"}},
		},
		{
			object:  intakev1.ObjectType_OBJECT_TYPE_ACCOUNT_FOREIGN_KEYS,
			file:    csvLines("acct,sfid", "A-1,0015g00000XyZ01", "A-2,0015g00000XyZ02"),
			entries: []*intakev1.MappingEntry{column("account_id", "acct"), column("foreign_key_id", "sfid"), constant("system", "salesforce")},
			query:   `SELECT account_id, foreign_key_id, system FROM objects.account_foreign_keys ORDER BY 1`,
			want:    [][]string{{"A-1", "0015g00000XyZ01", "salesforce"}, {"A-2", "0015g00000XyZ02", "salesforce"}},
		},
	}
	require.Len(t, cases, len(intakev1.ObjectType_name)-1, "every object")

	objs, err := s.model.ListObjects(ctx, &intakev1.ListObjectsRequest{})
	require.NoError(t, err)
	require.Len(t, objs.GetObjects(), len(cases))

	// Every job first, then every run at once.
	names := make([]string, len(cases))
	runs := make([]string, len(cases))
	for i, tc := range cases {
		path := "/" + strings.ToLower(strings.TrimPrefix(tc.object.String(), "OBJECT_TYPE_")) + ".csv"
		job := newJob(tc.object, files.setFile(path, tc.file), tc.entries...)
		job.Mapping.Dialect = tc.dialect
		names[i] = s.createJob(ctx, t, job).GetName()
		run, err := s.jobs.RunJob(ctx, &intakev1.RunJobRequest{Name: names[i]})
		require.NoError(t, err)
		runs[i] = run.GetName()
	}
	for i, tc := range cases {
		t.Run(strings.TrimPrefix(tc.object.String(), "OBJECT_TYPE_"), func(t *testing.T) {
			run := s.wait(ctx, t, runs[i], nil)
			require.Equal(t, intakev1.RunState_RUN_STATE_SUCCEEDED, run.GetState(), "%s %v", run.GetMessage(), run.GetRowErrors())
			require.EqualValues(t, len(tc.want), run.GetCounters().GetRowsCreated())
			require.Equal(t, tc.want, rowsOf(ctx, t, s.db, tc.query))
		})
	}

	// Usage is append-only: the same events again, and one new, add one row.
	t.Run("usage twice", func(t *testing.T) {
		files.setFile("/usage.csv", csvLines("account,user,activity,module,ts",
			"A-1,U-1,login,core,2025-03-01T10:00:00Z",
			"A-1,U-1,login,core,2025-03-01T11:00:00Z",
			"A-1,U-2,export,reports,2025-03-01T10:00:00Z",
			"A-1,U-1,login,core,2025-03-02T09:30:00Z"))
		run := s.runOnce(ctx, t, names[2], false)
		require.Equal(t, intakev1.RunState_RUN_STATE_SUCCEEDED, run.GetState(), run.GetMessage())
		require.EqualValues(t, 1, run.GetCounters().GetRowsCreated())
		require.Zero(t, run.GetCounters().GetRowsUpdated())
		require.Equal(t, int64(4), count(ctx, t, s.db, `SELECT count(*) FROM objects.usage`))
		require.Equal(t, int64(1), count(ctx, t, s.db, `SELECT count(*) FROM objects.usage WHERE "timestamp" = '2025-03-01T10:00:00Z' AND user_id = 'U-1'`))
	})
}

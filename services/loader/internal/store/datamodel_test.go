package store_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	pipelinev1 "github.com/intakehq/intake/proto/gen/intake/pipeline/v1"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
	"github.com/intakehq/intake/services/loader/internal/store"
)

const (
	tText      = intakev1.AttributeType_ATTRIBUTE_TYPE_TEXT
	tNumber    = intakev1.AttributeType_ATTRIBUTE_TYPE_NUMBER
	tDate      = intakev1.AttributeType_ATTRIBUTE_TYPE_DATE
	tFK        = intakev1.AttributeType_ATTRIBUTE_TYPE_FOREIGN_KEY
	tTimestamp = intakev1.AttributeType_ATTRIBUTE_TYPE_TIMESTAMP
)

func exec(t testing.TB, pool *pgxpool.Pool, sql string) {
	t.Helper()
	_, err := pool.Exec(context.Background(), sql)
	require.NoError(t, err)
}

// text returns the rows of a query whose columns are all text, one string
// per row, columns joined by "|".
func text(t testing.TB, pool *pgxpool.Pool, sql string) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), sql)
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		require.NoError(t, err)
		s := ""
		for i, v := range vals {
			if i > 0 {
				s += "|"
			}
			if v == nil {
				s += "NULL"
			} else {
				s += v.(string)
			}
		}
		out = append(out, s)
	}
	require.NoError(t, rows.Err())
	return out
}

func TestAppendOnlyUsageNeverDuplicatesNorUpdates(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	// A custom attribute, so there is something an update could change.
	exec(t, pool, `ALTER TABLE objects.usage ADD COLUMN duration numeric`)
	usage := spec{
		object: intakev1.ObjectType_OBJECT_TYPE_USAGE, allowNew: true,
		attrs: []string{"account_id", "user_id", "activity", "module", "timestamp", "duration"},
		types: []intakev1.AttributeType{tText, tText, tText, tText, tTimestamp, tNumber},
	}
	event := func(n int64, activity, at, duration string) *pipelinev1.Row {
		return row(n, txt("a1"), txt("u1"), txt(activity), txt("reports"), ts(at), dec(duration))
	}
	first := newRun()
	c := load(t, st, usage, first, []*pipelinev1.Row{
		event(2, "login", "2024-03-01T10:00:00Z", "5"),
		event(3, "export", "2024-03-01T10:05:00Z", "7"),
		event(4, "login", "2024-03-01T10:00:00Z", "5"), // the same event twice in the file
	})
	require.Equal(t, store.Counts{Created: 2}, c)

	// The same file again, plus one new event, and a changed duration of a
	// known event: only the new event lands.
	c = load(t, st, usage, newRun(), []*pipelinev1.Row{
		event(2, "login", "2024-03-01T10:00:00Z", "500"),
		event(3, "export", "2024-03-01T10:05:00Z", "7"),
		event(4, "login", "2024-03-01T11:00:00Z", "1"),
	})
	require.Equal(t, store.Counts{Created: 1, Unchanged: 2}, c, "existing events count as unchanged")
	require.Equal(t, []string{
		"export|2024-03-01T10:05:00Z|7|" + runID(first),
		"login|2024-03-01T10:00:00Z|5|" + runID(first),
		"login|2024-03-01T11:00:00Z|1|x",
	}, replaceLast(text(t, pool, `SELECT activity, `+utc(`"timestamp"`)+`, duration::text, _run FROM objects.usage ORDER BY 1, 2`), runID(first)))

	// A dry run of the same counts the same.
	dry := usage
	dry.dryRun = true
	c = load(t, st, dry, newRun(), []*pipelinev1.Row{event(2, "login", "2024-03-01T10:00:00Z", "9"), event(3, "view", "2024-03-02T08:00:00Z", "1")})
	require.Equal(t, store.Counts{Created: 1, Unchanged: 1}, c)
	require.Equal(t, int64(3), count(t, pool, `SELECT count(*) FROM objects.usage`))
}

// Usage events are told apart by their instant: two events of one day are
// two rows (they would be one if the timestamp were a date), importing them
// again adds nothing, and one instant written with another offset is the
// same event.
func TestUsageEventsOfOneDayAreTwoRows(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	usage := spec{
		object: intakev1.ObjectType_OBJECT_TYPE_USAGE, allowNew: true,
		attrs: []string{"account_id", "user_id", "activity", "module", "timestamp"},
		types: []intakev1.AttributeType{tText, tText, tText, tText, tTimestamp},
	}
	login := func(n int64, at string) *pipelinev1.Row {
		return row(n, txt("a1"), txt("u1"), txt("login"), txt("core"), ts(at))
	}
	file := []*pipelinev1.Row{login(2, "2024-03-01T09:15:00Z"), login(3, "2024-03-01T17:40:30.125Z")}
	c := load(t, st, usage, newRun(), file)
	require.Equal(t, store.Counts{Created: 2}, c)
	want := []string{"2024-03-01T09:15:00Z", "2024-03-01T17:40:30.125Z"}
	require.Equal(t, want, text(t, pool, `SELECT `+utc(`"timestamp"`)+` FROM objects.usage ORDER BY "timestamp"`))

	// Re-imported: nothing new.
	c = load(t, st, usage, newRun(), file)
	require.Equal(t, store.Counts{Unchanged: 2}, c)
	// The same instants written with an offset, twice in one file: still nothing new.
	c = load(t, st, usage, newRun(), []*pipelinev1.Row{login(2, "2024-03-01T10:15:00+01:00"), login(3, "2024-03-01T09:15:00Z")})
	require.Equal(t, store.Counts{Unchanged: 1}, c)
	require.Equal(t, want, text(t, pool, `SELECT `+utc(`"timestamp"`)+` FROM objects.usage ORDER BY "timestamp"`))
}

// utc is SQL that shows a timestamptz column as RFC 3339 in UTC, with the
// fraction of a second when there is one.
func utc(column string) string {
	return `regexp_replace(to_char(` + column + ` AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), '\.?0+$', '') || 'Z'`
}

// replaceLast replaces, in the last column of each row, anything but keep
// with "x" (run ids of later runs).
func replaceLast(rows []string, keep string) []string {
	for i, r := range rows {
		j := len(r) - 1
		for j >= 0 && r[j] != '|' {
			j--
		}
		if r[j+1:] != keep {
			rows[i] = r[:j+1] + "x"
		}
	}
	return rows
}

func TestCustomAttributesAreStagedAndMergedTyped(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	ctx := context.Background()
	exec(t, pool, `ALTER TABLE objects.accounts ADD COLUMN health_score numeric, ADD COLUMN crm_id text, ADD COLUMN churn_date date`)
	s := spec{object: accounts, allowNew: true,
		attrs: []string{"account_id", "name", "health_score", "crm_id", "churn_date"},
		types: []intakev1.AttributeType{tText, tText, tNumber, tFK, tDate},
	}
	run := newRun()
	// The seal comes first: it knows the attributes, not the custom ones' types.
	_, err := st.Seal(ctx, s.seal(run, 1))
	require.NoError(t, err)
	res, err := stage(st, s.batch(run, 0,
		row(2, txt("a1"), txt("Acme"), dec("87.5"), txt("0015g00000XyZ"), day(2025, 1, 31)),
		row(3, txt("a2"), txt("Beta"), null(), null(), null())))
	require.NoError(t, err)
	require.True(t, res.Staged)
	cres, committed, err := st.TryCommit(ctx, run)
	require.NoError(t, err)
	require.True(t, committed)
	require.Equal(t, store.Counts{Created: 2}, cres.Counts)
	require.Equal(t, []string{"a1|87.5|0015g00000XyZ|2025-01-31", "a2|NULL|NULL|NULL"},
		text(t, pool, `SELECT account_id, health_score::text, crm_id, churn_date::text FROM objects.accounts ORDER BY 1`))

	// A later run that changes a custom attribute updates it.
	c := load(t, st, spec{object: accounts, allowNew: true, attrs: []string{"account_id", "health_score"},
		types: []intakev1.AttributeType{tText, tNumber}}, newRun(),
		[]*pipelinev1.Row{row(2, txt("a1"), dec("90")), row(3, txt("a2"), null())})
	require.Equal(t, store.Counts{Updated: 1, Unchanged: 1}, c)
	require.Equal(t, []string{"a1|90", "a2|NULL"}, text(t, pool, `SELECT account_id, health_score::text FROM objects.accounts ORDER BY 1`))
}

func TestForeignKeysAreStoredAsText(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	tasks := spec{object: intakev1.ObjectType_OBJECT_TYPE_TASKS, allowNew: true,
		attrs: []string{"account_id", "task_id", "subject", "due_date", "assignee_email"},
		types: []intakev1.AttributeType{tText, tText, tText, tDate, tFK},
	}
	c := load(t, st, tasks, newRun(), []*pipelinev1.Row{row(2, txt("a1"), txt("t1"), txt("Call"), day(2024, 6, 1), txt("kim@example.com"))})
	require.Equal(t, store.Counts{Created: 1}, c)
	require.Equal(t, []string{"t1|Call|2024-06-01|kim@example.com"},
		text(t, pool, `SELECT task_id, subject, due_date::text, assignee_email FROM objects.tasks`))
}

func TestADryRunCountsWhatARunWouldDoAndChangesNothing(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	ctx := context.Background()
	load(t, st, nameOnly, newRun(), []*pipelinev1.Row{row(2, txt("a1"), txt("Acme")), row(3, txt("a2"), txt("Beta"))})
	before := text(t, pool, `SELECT account_id, name, _run, _updated_at::text FROM objects.accounts ORDER BY 1`)

	rows := []*pipelinev1.Row{
		row(2, txt("a1"), txt("Acme Corp")), // updated
		row(3, txt("a2"), txt("Beta")),      // unchanged
		row(4, txt("a3"), txt("Gamma")),     // created (or ignored)
		row(5, txt("a3"), txt("Gamma Inc")), // the same key again
	}
	for _, allowNew := range []bool{true, false} {
		dry := nameOnly
		dry.allowNew, dry.dryRun = allowNew, true
		run := newRun()
		_, err := st.Seal(ctx, dry.seal(run, 1))
		require.NoError(t, err)
		_, err = stage(st, dry.batch(run, 0, rows...))
		require.NoError(t, err)
		rd, err := st.CheckCommit(ctx, run)
		require.NoError(t, err)
		require.Equal(t, store.Readiness{State: store.Open, Ready: true, RowsStaged: 4, DryRun: true}, rd)
		res, committed, err := st.TryCommit(ctx, run)
		require.NoError(t, err)
		require.True(t, committed)
		require.True(t, res.DryRun)
		require.True(t, res.Merged)
		want := store.Counts{Created: 1, Updated: 1, Unchanged: 1}
		if !allowNew {
			want = store.Counts{Ignored: 1, Updated: 1, Unchanged: 1}
		}
		require.Equal(t, want, res.Counts, "allow new %t", allowNew)
		require.Equal(t, before, text(t, pool, `SELECT account_id, name, _run, _updated_at::text FROM objects.accounts ORDER BY 1`))
		require.False(t, tableExists(t, pool, run), "the staging is dropped")

		// A redelivered message re-reads the counts.
		rd, err = st.CheckCommit(ctx, run)
		require.NoError(t, err)
		require.Equal(t, store.Readiness{State: store.Committed, DryRun: true, Counts: want}, rd)

		// The real run counts exactly what the dry run said.
		real := nameOnly
		real.allowNew = allowNew
		require.Equal(t, want, load(t, st, real, newRun(), rows))
		// Back to the start for the next round.
		exec(t, pool, `DELETE FROM objects.accounts WHERE account_id = 'a3'`)
		exec(t, pool, `UPDATE objects.accounts SET name = 'Acme' WHERE account_id = 'a1'`)
		before = text(t, pool, `SELECT account_id, name, _run, _updated_at::text FROM objects.accounts ORDER BY 1`)
	}
}

func TestCheckCommitFollowsTheRun(t *testing.T) {
	t.Parallel()
	st, _ := newStore(t)
	ctx := context.Background()
	run := newRun()
	rd, err := st.CheckCommit(ctx, run)
	require.NoError(t, err)
	require.Equal(t, store.Readiness{}, rd, "unknown run: open, not ready")
	_, err = stage(st, nameOnly.batch(run, 0, row(2, txt("a1"), txt("Acme")), row(3, txt("a2"), txt("Beta"))))
	require.NoError(t, err)
	rd, err = st.CheckCommit(ctx, run)
	require.NoError(t, err)
	require.Equal(t, store.Readiness{State: store.Open, RowsStaged: 2}, rd, "not sealed")
	_, err = st.Seal(ctx, nameOnly.seal(run, 2))
	require.NoError(t, err)
	_, err = stage(st, nameOnly.batch(run, 1, row(4, txt("a3"), txt("Gamma"))))
	require.NoError(t, err)
	rd, err = st.CheckCommit(ctx, run)
	require.NoError(t, err)
	require.Equal(t, store.Readiness{State: store.Open, Ready: true, RowsStaged: 3}, rd)

	require.NoError(t, st.Abandon(ctx, run))
	rd, err = st.CheckCommit(ctx, run)
	require.NoError(t, err)
	require.Equal(t, store.Readiness{State: store.Abandoned}, rd)
}

func TestTypesOfABatchMustFitTheModel(t *testing.T) {
	t.Parallel()
	st, _ := newStore(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		s    spec
		want string
	}{
		{"system type", spec{object: accounts, attrs: []string{"account_id", "name"}, types: []intakev1.AttributeType{tText, tNumber}},
			`attribute 2 "name" of accounts is text, not number`},
		{"no types", spec{object: accounts, attrs: []string{"account_id", "health_score"}},
			`attribute 2 "health_score" is not an attribute of accounts (and the batch gives no type for it)`},
		{"count", spec{object: accounts, attrs: []string{"account_id", "name"}, types: []intakev1.AttributeType{tText}},
			"1 types for 2 attributes"},
		{"unspecified", spec{object: accounts, attrs: []string{"account_id", "score"}, types: []intakev1.AttributeType{tText, 0}},
			`attribute 2 "score" has no valid type`},
		{"bad id", spec{object: accounts, attrs: []string{"account_id", "Score; drop"}, types: []intakev1.AttributeType{tText, tText}},
			`attribute 2 "Score; drop" is not an attribute of accounts: "Score; drop" is not an attribute id`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := st.StageBatch(ctx, tc.s.batch(newRun(), 0, row(2, txt("a1"), txt("x"))))
			require.True(t, store.IsInvalid(err), "%v", err)
			require.ErrorContains(t, err, tc.want)
		})
	}

	// The batches of a run agree on types and on being a dry run.
	run := newRun()
	s := spec{object: accounts, attrs: []string{"account_id", "score"}, types: []intakev1.AttributeType{tText, tNumber}}
	_, err := st.StageBatch(ctx, s.batch(run, 0, row(2, txt("a1"), dec("1"))))
	require.NoError(t, err)
	other := s
	other.types = []intakev1.AttributeType{tText, tText}
	_, err = st.StageBatch(ctx, other.batch(run, 1, row(3, txt("a2"), txt("1"))))
	require.True(t, store.IsInvalid(err), "%v", err)
	require.ErrorContains(t, err, `attribute "score" is text, but the run's is number`)
	dry := s
	dry.dryRun = true
	_, err = st.StageBatch(ctx, dry.batch(run, 1, row(3, txt("a2"), dec("1"))))
	require.True(t, store.IsInvalid(err), "%v", err)
	require.ErrorContains(t, err, "dry_run true differs from the run's false")
}

func TestACustomAttributeDeletedBeforeTheCommitFailsTheRun(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	ctx := context.Background()
	exec(t, pool, `ALTER TABLE objects.accounts ADD COLUMN score numeric`)
	s := spec{object: accounts, allowNew: true, attrs: []string{"account_id", "score"}, types: []intakev1.AttributeType{tText, tNumber}}
	run := newRun()
	_, err := stage(st, s.batch(run, 0, row(2, txt("a1"), dec("1"))))
	require.NoError(t, err)
	exec(t, pool, `ALTER TABLE objects.accounts DROP COLUMN score`)
	_, err = st.Seal(ctx, s.seal(run, 1))
	require.NoError(t, err)
	_, committed, err := st.TryCommit(ctx, run)
	require.False(t, committed)
	require.True(t, store.IsInvalid(err), "%v", err)
	require.ErrorContains(t, err, `mapped attributes ["score"] are not columns of objects.accounts: deleted from the data model since the run started?`)
	require.Zero(t, count(t, pool, `SELECT count(*) FROM objects.accounts`))
}

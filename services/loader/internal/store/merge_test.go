package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	pipelinev1 "github.com/intakehq/intake/proto/gen/intake/pipeline/v1"
	"github.com/intakehq/intake/services/loader/internal/store"
)

var nameOnly = spec{object: accounts, allowNew: true, attrs: []string{"account_id", "name"}}

func TestLastRowOfTheFileWinsPerKey(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	ctx := context.Background()
	run := newRun()
	// Chunk 1 is staged before chunk 0: the row number decides, not the order of arrival.
	_, err := stage(st, nameOnly.batch(run, 1,
		row(5, txt("a1"), txt("a1 from row 5")),
		row(6, txt("a3"), txt("a3 from row 6"))))
	require.NoError(t, err)
	_, err = stage(st, nameOnly.batch(run, 0,
		row(2, txt("a1"), txt("a1 from row 2")),
		row(3, txt("a2"), txt("a2 from row 3")),
		row(4, txt("a2"), txt("a2 from row 4"))))
	require.NoError(t, err)
	_, err = st.Seal(ctx, nameOnly.seal(run, 2))
	require.NoError(t, err)
	res, committed, err := st.TryCommit(ctx, run)
	require.NoError(t, err)
	require.True(t, committed)
	require.Equal(t, store.Counts{Created: 3}, res.Counts, "counted per key")

	for id, want := range map[string]string{"a1": "a1 from row 5", "a2": "a2 from row 4", "a3": "a3 from row 6"} {
		a, ok := getAccount(t, pool, id)
		require.True(t, ok, id)
		require.Equal(t, want, *a.Name, id)
		require.Equal(t, runID(run), *a.Run)
	}
	require.False(t, tableExists(t, pool, run), "the staging table is dropped at commit")
	require.Zero(t, count(t, pool, "SELECT count(*) FROM intake.load_chunks"))
}

func TestNewKeysAreInsertedOnlyWhenAllowed(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	load(t, st, nameOnly, newRun(), []*pipelinev1.Row{row(2, txt("a1"), txt("Acme"))})

	noNew := nameOnly
	noNew.allowNew = false
	c := load(t, st, noNew, newRun(), []*pipelinev1.Row{
		row(2, txt("a1"), txt("Acme Corp")),
		row(3, txt("a2"), txt("Beta")),
		row(4, txt("a3"), txt("Gamma")),
		row(5, txt("a3"), txt("Gamma again")),
	})
	require.Equal(t, store.Counts{Updated: 1, Ignored: 2}, c)
	a, _ := getAccount(t, pool, "a1")
	require.Equal(t, "Acme Corp", *a.Name)
	_, ok := getAccount(t, pool, "a2")
	require.False(t, ok, "a new key must not be inserted when the job does not allow new records")
	require.Equal(t, int64(1), count(t, pool, "SELECT count(*) FROM objects.accounts"))

	c = load(t, st, nameOnly, newRun(), []*pipelinev1.Row{row(2, txt("a2"), txt("Beta"))})
	require.Equal(t, store.Counts{Created: 1}, c)
}

func TestOnlyMappedAttributesAreUpdated(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	ctx := context.Background()
	_, err := pool.Exec(ctx, `INSERT INTO objects.accounts (account_id, name, status, notes, mrr, _run, _updated_at)
		VALUES ('a1', 'Acme', 'active', 'keep me', 10.5, 'old-run', now() - interval '1 day')`)
	require.NoError(t, err)

	run := newRun()
	c := load(t, st, nameOnly, run, []*pipelinev1.Row{row(2, txt("a1"), txt("Acme Corp"))})
	require.Equal(t, store.Counts{Updated: 1}, c)
	a, _ := getAccount(t, pool, "a1")
	require.Equal(t, account{
		Name: ptr("Acme Corp"), Status: ptr("active"), Notes: ptr("keep me"), MRR: ptr("10.5"), Run: ptr(runID(run)),
	}, a, "unmapped attributes keep their values")
	require.Equal(t, int64(1), count(t, pool,
		"SELECT count(*) FROM objects.accounts WHERE _updated_at > now() - interval '1 minute'"))
}

func TestUpdatedAndUnchangedAreCountedApart(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	ctx := context.Background()
	_, err := pool.Exec(ctx, `INSERT INTO objects.accounts (account_id, name, mrr, is_active, _run, _updated_at) VALUES
		('a1', 'Acme', 10.50, true, 'old-run', '2020-01-01'),
		('a2', 'Beta', 20, false, 'old-run', '2020-01-01')`)
	require.NoError(t, err)
	s := spec{object: accounts, allowNew: true, attrs: []string{"name", "account_id", "mrr", "is_active"}}
	run := newRun()
	c := load(t, st, s, run, []*pipelinev1.Row{
		row(2, txt("Acme"), txt("a1"), dec("10.5"), boolean(true)), // 10.5 = 10.50: unchanged
		row(3, txt("Beta"), txt("a2"), dec("20"), boolean(true)),   // is_active changes
		row(4, txt("Gamma"), txt("a3"), dec("0.01"), null()),
	})
	require.Equal(t, store.Counts{Created: 1, Updated: 1, Unchanged: 1}, c)

	a1, _ := getAccount(t, pool, "a1")
	require.Equal(t, "old-run", *a1.Run, "an unchanged row is not touched")
	require.Equal(t, int64(1), count(t, pool, "SELECT count(*) FROM objects.accounts WHERE _updated_at = '2020-01-01'"))
	a2, _ := getAccount(t, pool, "a2")
	require.True(t, *a2.Active)
	require.Equal(t, runID(run), *a2.Run)

	// The same file again changes nothing.
	c = load(t, st, s, newRun(), []*pipelinev1.Row{
		row(2, txt("Acme"), txt("a1"), dec("10.5"), boolean(true)),
		row(3, txt("Beta"), txt("a2"), dec("20"), boolean(true)),
		row(4, txt("Gamma"), txt("a3"), dec("0.01"), null()),
	})
	require.Equal(t, store.Counts{Unchanged: 3}, c)
}

func TestUsersHaveACompositeKey(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	ctx := context.Background()
	_, err := pool.Exec(ctx, `INSERT INTO objects.users (account_id, user_id, name, title) VALUES ('acc2', 'u1', 'Old', 'CTO')`)
	require.NoError(t, err)
	s := spec{object: users, allowNew: true, attrs: []string{"user_id", "account_id", "name", "logins", "last_login_date"}}
	c := load(t, st, s, newRun(),
		[]*pipelinev1.Row{
			row(2, txt("u1"), txt("acc1"), txt("Ann"), dec("3"), day(2024, 2, 29)),
			row(3, txt("u2"), txt("acc1"), txt("Bob"), dec("1"), null()),
			row(4, txt("u1"), txt("acc2"), txt("Cid"), dec("7"), day(1969, 12, 31)),
		},
		[]*pipelinev1.Row{
			row(5, txt("u1"), txt("acc1"), txt("Ann B."), dec("4"), day(2024, 3, 1)),
		})
	require.Equal(t, store.Counts{Created: 2, Updated: 1}, c)

	got := map[string][4]any{}
	rows, err := pool.Query(ctx, `SELECT account_id || '/' || user_id, name, title, logins::text, last_login_date::text FROM objects.users`)
	require.NoError(t, err)
	for rows.Next() {
		var k string
		var name, title, logins, last *string
		require.NoError(t, rows.Scan(&k, &name, &title, &logins, &last))
		got[k] = [4]any{name, title, logins, last}
	}
	require.NoError(t, rows.Err())
	require.Equal(t, map[string][4]any{
		"acc1/u1": {ptr("Ann B."), (*string)(nil), ptr("4"), ptr("2024-03-01")},
		"acc1/u2": {ptr("Bob"), (*string)(nil), ptr("1"), (*string)(nil)},
		"acc2/u1": {ptr("Cid"), ptr("CTO"), ptr("7"), ptr("1969-12-31")},
	}, got)
}

func TestNullsAreValues(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	_, err := pool.Exec(context.Background(), `INSERT INTO objects.accounts (account_id, name, status) VALUES ('a1', 'Acme', 'active')`)
	require.NoError(t, err)
	s := spec{object: accounts, allowNew: true, attrs: []string{"account_id", "name", "status"}}
	rows := []*pipelinev1.Row{
		row(2, txt("a1"), null(), txt("active")), // a value that becomes NULL is a change
		row(3, txt("a2"), null(), null()),
	}
	require.Equal(t, store.Counts{Created: 1, Updated: 1}, load(t, st, s, newRun(), rows))
	a1, _ := getAccount(t, pool, "a1")
	require.Nil(t, a1.Name)
	require.Equal(t, "active", *a1.Status)
	a2, ok := getAccount(t, pool, "a2")
	require.True(t, ok)
	require.Nil(t, a2.Name)
	require.Nil(t, a2.Status)

	// NULL against NULL is no change.
	require.Equal(t, store.Counts{Unchanged: 2}, load(t, st, s, newRun(), rows))
}

func TestValuesLandTyped(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	s := spec{object: accounts, allowNew: true, attrs: []string{
		"account_id", "employees", "annual_revenue", "mrr", "is_active", "created_date", "renewal_date", "notes"}}
	load(t, st, s, newRun(), []*pipelinev1.Row{
		row(2, txt("a1"), dec("1200"), dec("12345678901234567890.123456789"), dec("-0.5"), boolean(false),
			day(2024, 2, 29), day(1900, 1, 1), txt("line one\nline \"two\", ünïcode")),
	})
	var employees, revenue, mrr, created, renewal, notes string
	var active bool
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT employees::text, annual_revenue::text, mrr::text,
		is_active, created_date::text, renewal_date::text, notes FROM objects.accounts WHERE account_id = 'a1'`).
		Scan(&employees, &revenue, &mrr, &active, &created, &renewal, &notes))
	require.Equal(t, []any{"1200", "12345678901234567890.123456789", "-0.5", false, "2024-02-29", "1900-01-01", "line one\nline \"two\", ünïcode"},
		[]any{employees, revenue, mrr, active, created, renewal, notes})
}

func TestOnlyKeysMapped(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	_, err := pool.Exec(context.Background(), `INSERT INTO objects.accounts (account_id, name) VALUES ('a1', 'Acme')`)
	require.NoError(t, err)
	s := spec{object: accounts, allowNew: true, attrs: []string{"account_id"}}
	c := load(t, st, s, newRun(), []*pipelinev1.Row{row(2, txt("a1")), row(3, txt("a2"))})
	require.Equal(t, store.Counts{Created: 1, Unchanged: 1}, c)
	s.allowNew = false
	c = load(t, st, s, newRun(), []*pipelinev1.Row{row(2, txt("a1")), row(3, txt("a3"))})
	require.Equal(t, store.Counts{Unchanged: 1, Ignored: 1}, c)
	a1, _ := getAccount(t, pool, "a1")
	require.Equal(t, "Acme", *a1.Name)
}

func TestCommitsIntoTheSameTableTakeTurns(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	ctx := context.Background()
	// Many runs over the same keys commit at once; every one must land whole
	// and none may deadlock.
	const runs = 6
	names := make([]string, runs)
	for i := range names {
		names[i] = newRun()
		var rows []*pipelinev1.Row
		for k := range 50 {
			rows = append(rows, row(int64(k+2), txt(string(rune('a'+k%26))+"-key"), txt(names[i])))
		}
		_, err := stage(st, nameOnly.batch(names[i], 0, rows...))
		require.NoError(t, err)
		_, err = st.Seal(ctx, nameOnly.seal(names[i], 1))
		require.NoError(t, err)
	}
	errs := make(chan error, runs)
	for _, run := range names {
		go func() {
			_, committed, err := st.TryCommit(ctx, run)
			if err == nil && !committed {
				err = context.DeadlineExceeded
			}
			errs <- err
		}()
	}
	for range runs {
		select {
		case err := <-errs:
			require.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Fatal("commits did not finish")
		}
	}
	// Every key holds the value of one run, the same for all keys.
	require.Equal(t, int64(26), count(t, pool, "SELECT count(*) FROM objects.accounts"))
	require.Equal(t, int64(1), count(t, pool, "SELECT count(DISTINCT name) FROM objects.accounts"))
}

package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	pipelinev1 "github.com/intakehq/intake/proto/gen/intake/pipeline/v1"
	"github.com/intakehq/intake/services/loader/internal/store"
)

// idleFor makes the run's last activity d ago.
func idleFor(t *testing.T, pool *pgxpool.Pool, run string, d time.Duration) {
	t.Helper()
	tag, err := pool.Exec(context.Background(), `UPDATE intake.load_runs SET update_time = now() - $2 * interval '1 microsecond'
		WHERE run_id = $1`, runID(run), d.Microseconds())
	require.NoError(t, err)
	require.Equal(t, int64(1), tag.RowsAffected())
}

func staleNames(t *testing.T, st *store.Store, idle time.Duration) []string {
	t.Helper()
	runs, err := st.StaleRuns(context.Background(), idle, 100)
	require.NoError(t, err)
	var out []string
	for _, r := range runs {
		require.WithinDuration(t, time.Now(), r.LastActivity, 24*time.Hour)
		out = append(out, r.Run)
	}
	return out
}

func TestStaleRunsAreOpenRunsWithoutActivity(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	ctx := context.Background()

	staged, sealed, fresh, committed, abandoned := newRun(), newRun(), newRun(), newRun(), newRun()
	for _, r := range []string{staged, sealed, fresh} {
		_, err := stage(st, nameOnly.batch(r, 0, row(2, txt("a1"), txt("Acme"))))
		require.NoError(t, err)
	}
	load(t, st, nameOnly, committed, []*pipelinev1.Row{row(2, txt("a1"), txt("Acme"))})
	require.NoError(t, st.Abandon(ctx, abandoned))
	for _, r := range []string{staged, sealed, committed, abandoned} {
		idleFor(t, pool, r, 10*time.Minute)
	}
	idleFor(t, pool, staged, 11*time.Minute)
	require.Equal(t, []string{staged, sealed}, staleNames(t, st, 2*time.Minute), "the longest idle first; committed and abandoned runs are no business of the janitor")

	// Staging a batch and sealing are activity.
	_, err := stage(st, nameOnly.batch(staged, 1, row(3, txt("a2"), txt("Beta"))))
	require.NoError(t, err)
	_, err = st.Seal(ctx, nameOnly.seal(sealed, 3))
	require.NoError(t, err)
	require.Empty(t, staleNames(t, st, 2*time.Minute))
	require.ElementsMatch(t, []string{staged, sealed, fresh}, staleNames(t, st, 0))
}

func TestResolveStaleAsksOnceAndDropsOnlyWhenTold(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	ctx := context.Background()
	run := newRun()
	_, err := stage(st, nameOnly.batch(run, 0, row(2, txt("a1"), txt("Acme"))))
	require.NoError(t, err)

	// Not idle long enough: nobody is asked.
	asked := 0
	ask := func(abandon bool) func(context.Context) (bool, error) {
		return func(context.Context) (bool, error) { asked++; return abandon, nil }
	}
	out, err := st.ResolveStale(ctx, run, time.Minute, ask(true))
	require.NoError(t, err)
	require.Equal(t, store.Skipped, out)
	require.Zero(t, asked)

	idleFor(t, pool, run, 5*time.Minute)
	out, err = st.ResolveStale(ctx, run, time.Minute, ask(false))
	require.NoError(t, err)
	require.Equal(t, store.Kept, out)
	require.Equal(t, 1, asked)
	require.True(t, tableExists(t, pool, run), "a run still in progress is left as it is")
	require.Equal(t, int64(1), count(t, pool, "SELECT count(*) FROM intake.load_chunks"))

	boom := errors.New("control API down")
	out, err = st.ResolveStale(ctx, run, time.Minute, func(context.Context) (bool, error) { return true, boom })
	require.ErrorIs(t, err, boom)
	require.Equal(t, store.Skipped, out)
	require.True(t, tableExists(t, pool, run))

	// While one janitor asks about the run, another skips it.
	inAsk, release := make(chan struct{}), make(chan struct{})
	first := make(chan store.Outcome, 1)
	go func() {
		out, err := st.ResolveStale(ctx, run, time.Minute, func(context.Context) (bool, error) {
			close(inAsk)
			<-release
			return true, nil
		})
		a(t, err)
		first <- out
	}()
	<-inAsk
	out, err = st.ResolveStale(ctx, run, time.Minute, ask(true))
	require.NoError(t, err)
	require.Equal(t, store.Skipped, out)
	require.Equal(t, 1, asked, "the second janitor did not ask")
	close(release)
	require.Equal(t, store.Dropped, <-first)

	require.False(t, tableExists(t, pool, run))
	require.Zero(t, count(t, pool, "SELECT count(*) FROM intake.load_chunks"))
	res, err := stage(st, nameOnly.batch(run, 1, row(3, txt("a2"), txt("Beta"))))
	require.NoError(t, err)
	require.Equal(t, store.Abandoned, res.State, "the abandoned marker stays")
	require.Empty(t, staleNames(t, st, 0))
}

func TestResolveStaleLeavesARunCommittedMeanwhile(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	ctx := context.Background()
	run := newRun()
	_, err := stage(st, nameOnly.batch(run, 0, row(2, txt("a1"), txt("Acme"))))
	require.NoError(t, err)
	idleFor(t, pool, run, 5*time.Minute)
	out, err := st.ResolveStale(ctx, run, time.Minute, func(context.Context) (bool, error) {
		// The run's seal comes and the run commits while the janitor asks;
		// the control API, asked after the commit, says the run is over.
		_, err := st.Seal(ctx, nameOnly.seal(run, 1))
		require.NoError(t, err)
		_, committed, err := st.TryCommit(ctx, run)
		require.NoError(t, err)
		require.True(t, committed)
		return true, nil
	})
	require.NoError(t, err)
	require.Equal(t, store.Skipped, out)
	acct, found := getAccount(t, pool, "a1")
	require.True(t, found)
	require.Equal(t, "Acme", *acct.Name)
	cres, committed, err := st.TryCommit(ctx, run)
	require.NoError(t, err)
	require.True(t, committed, "a committed run stays committed")
	require.Equal(t, store.Counts{Created: 1}, cres.Counts)
}

func TestOldAbandonedMarkersAreDeleted(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	ctx := context.Background()
	old, recent, committed, open := newRun(), newRun(), newRun(), newRun()
	require.NoError(t, st.Abandon(ctx, old))
	require.NoError(t, st.Abandon(ctx, recent))
	load(t, st, nameOnly, committed, []*pipelinev1.Row{row(2, txt("a1"), txt("Acme"))})
	_, err := stage(st, nameOnly.batch(open, 0, row(2, txt("a2"), txt("Beta"))))
	require.NoError(t, err)
	idleFor(t, pool, old, 25*time.Hour)
	idleFor(t, pool, recent, 23*time.Hour)
	idleFor(t, pool, committed, 48*time.Hour)
	idleFor(t, pool, open, 48*time.Hour)

	n, err := st.DeleteAbandoned(ctx, 24*time.Hour, 100)
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	var left []string
	rows, err := pool.Query(ctx, `SELECT run FROM intake.load_runs ORDER BY run`)
	require.NoError(t, err)
	for rows.Next() {
		var r string
		require.NoError(t, rows.Scan(&r))
		left = append(left, r)
	}
	require.NoError(t, rows.Err())
	require.ElementsMatch(t, []string{recent, committed, open}, left)
}

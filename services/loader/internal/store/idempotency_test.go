package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	pipelinev1 "github.com/intakehq/intake/proto/gen/intake/pipeline/v1"
	"github.com/intakehq/intake/services/loader/internal/store"
)

func TestAStagedBatchIsStagedOnce(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	ctx := context.Background()
	run := newRun()
	b := nameOnly.batch(run, 0, row(2, txt("a1"), txt("Acme")), row(3, txt("a2"), txt("Beta")))
	res, err := stage(st, b)
	require.NoError(t, err)
	require.Equal(t, store.StageResult{State: store.Open, Staged: true, Rows: 2}, res)
	res, err = stage(st, b)
	require.NoError(t, err)
	require.Equal(t, store.StageResult{State: store.Open, Staged: false, Rows: 2}, res, "a redelivered batch changes nothing")
	require.Equal(t, int64(2), count(t, pool, "SELECT count(*) FROM "+store.StagingTable(runID(run)).Sanitize()))

	_, err = st.Seal(ctx, nameOnly.seal(run, 1))
	require.NoError(t, err)
	c, committed, err := st.TryCommit(ctx, run)
	require.NoError(t, err)
	require.True(t, committed)
	require.Equal(t, store.Counts{Created: 2}, c.Counts)
}

func TestTheSameBatchStagedConcurrentlyIsStagedOnce(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	run := newRun()
	const chunks = 8
	// Every batch is delivered to three loaders at once: the first batches
	// also race to create the staging table.
	var wg sync.WaitGroup
	staged := make(chan bool, chunks*3)
	for c := range int64(chunks) {
		b := nameOnly.batch(run, c, row(c*2+2, txt(fmt.Sprint("k", c)), txt("x")), row(c*2+3, txt(fmt.Sprint("k", c, "b")), txt("y")))
		for range 3 {
			wg.Go(func() {
				res, err := stage(st, b)
				if !a(t, err) {
					return
				}
				staged <- res.Staged
			})
		}
	}
	wg.Wait()
	close(staged)
	n := 0
	for s := range staged {
		if s {
			n++
		}
	}
	require.Equal(t, chunks, n, "one staging per chunk")
	require.Equal(t, int64(chunks*2), count(t, pool, "SELECT count(*) FROM "+store.StagingTable(runID(run)).Sanitize()))
}

// a reports err on t from any goroutine.
func a(t *testing.T, err error) bool {
	t.Helper()
	if err != nil {
		t.Error(err)
		return false
	}
	return true
}

func TestTheSealMayComeFirstOrLast(t *testing.T) {
	t.Parallel()
	st, _ := newStore(t)
	ctx := context.Background()
	chunks := [][]*pipelinev1.Row{
		{row(2, txt("a1"), txt("Acme"))},
		{row(3, txt("a2"), txt("Beta"))},
	}
	for _, sealFirst := range []bool{true, false} {
		t.Run(fmt.Sprint("seal first ", sealFirst), func(t *testing.T) {
			run := newRun()
			seal := func() {
				res, err := st.Seal(ctx, nameOnly.seal(run, 2))
				require.NoError(t, err)
				require.Equal(t, store.Open, res.State)
			}
			notYet := func(why string) {
				_, committed, err := st.TryCommit(ctx, run)
				require.NoError(t, err)
				require.False(t, committed, why)
			}
			notYet("nothing known of the run")
			if sealFirst {
				seal()
				notYet("no chunk staged")
			}
			_, err := stage(st, nameOnly.batch(run, 1, chunks[1]...))
			require.NoError(t, err)
			notYet("chunk 0 is missing")
			_, err = stage(st, nameOnly.batch(run, 0, chunks[0]...))
			require.NoError(t, err)
			if !sealFirst {
				notYet("not sealed")
				seal()
				seal() // a redelivered seal
			}
			res, committed, err := st.TryCommit(ctx, run)
			require.NoError(t, err)
			require.True(t, committed)
			require.True(t, res.Merged)
		})
	}
}

func TestARunCommitsOnlyOnceEveryChunkIsReported(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	ctx := context.Background()
	run := newRun()
	_, err := st.Seal(ctx, nameOnly.seal(run, 2))
	require.NoError(t, err)
	_, err = stage(st, nameOnly.batch(run, 0, row(2, txt("a1"), txt("Acme"))))
	require.NoError(t, err)
	_, err = st.StageBatch(ctx, nameOnly.batch(run, 1, row(3, txt("a2"), txt("Beta"))))
	require.NoError(t, err)
	_, committed, err := st.TryCommit(ctx, run)
	require.NoError(t, err)
	require.False(t, committed, "chunk 1 is staged but its report did not reach the API yet")
	require.Zero(t, count(t, pool, "SELECT count(*) FROM objects.accounts"))

	require.NoError(t, st.ChunkReported(ctx, run, 1))
	require.NoError(t, st.ChunkReported(ctx, run, 1), "idempotent")
	res, committed, err := st.TryCommit(ctx, run)
	require.NoError(t, err)
	require.True(t, committed)
	require.Equal(t, store.Counts{Created: 2}, res.Counts)
	require.NoError(t, st.ChunkReported(ctx, run, 1), "a late report after the commit is harmless")
}

func TestASealWithoutTheShapeFirst(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	ctx := context.Background()
	run := newRun()
	// A seal that does not say what the run loads: the batch does.
	_, err := st.Seal(ctx, &pipelinev1.Seal{Run: run, Chunks: 1})
	require.NoError(t, err)
	require.Equal(t, store.Counts{Created: 1}, load(t, st, nameOnly, run, []*pipelinev1.Row{row(2, txt("a1"), txt("Acme"))}))
	a1, ok := getAccount(t, pool, "a1")
	require.True(t, ok)
	require.Equal(t, "Acme", *a1.Name)
}

func TestConcurrentCommitsCommitOnce(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	ctx := context.Background()
	run := newRun()
	_, err := stage(st, nameOnly.batch(run, 0, row(2, txt("a1"), txt("Acme")), row(3, txt("a2"), txt("Beta"))))
	require.NoError(t, err)
	_, err = st.Seal(ctx, nameOnly.seal(run, 1))
	require.NoError(t, err)

	const n = 4
	results := make([]store.CommitResult, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			res, committed, err := st.TryCommit(ctx, run)
			if a(t, err) && !committed {
				t.Error("not committed")
			}
			results[i] = res
		})
	}
	wg.Wait()
	merged := 0
	for _, r := range results {
		require.Equal(t, store.Counts{Created: 2}, r.Counts, "every caller gets the run's counts")
		if r.Merged {
			merged++
		}
	}
	require.Equal(t, 1, merged, "exactly one call merges")
	require.Equal(t, int64(2), count(t, pool, "SELECT count(*) FROM objects.accounts"))
}

func TestRedeliveryAfterTheCommitChangesNothing(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	ctx := context.Background()
	run := newRun()
	rows := []*pipelinev1.Row{row(2, txt("a1"), txt("Acme")), row(3, txt("a2"), txt("Beta"))}
	want := load(t, st, nameOnly, run, rows)
	require.Equal(t, store.Counts{Created: 2}, want)
	// Someone edits a row after the run landed: a redelivery must not undo it.
	_, err := pool.Exec(ctx, `UPDATE objects.accounts SET name = 'edited' WHERE account_id = 'a1'`)
	require.NoError(t, err)

	res, err := stage(st, nameOnly.batch(run, 0, rows...))
	require.NoError(t, err)
	require.Equal(t, store.StageResult{State: store.Committed, Counts: want}, res)
	require.False(t, tableExists(t, pool, run), "no staging table is made again")

	sres, err := st.Seal(ctx, nameOnly.seal(run, 1))
	require.NoError(t, err)
	require.Equal(t, store.SealResult{State: store.Committed, Counts: want}, sres)

	cres, committed, err := st.TryCommit(ctx, run)
	require.NoError(t, err)
	require.True(t, committed)
	require.Equal(t, store.CommitResult{Counts: want, Merged: false}, cres)

	a1, _ := getAccount(t, pool, "a1")
	require.Equal(t, "edited", *a1.Name)
	require.Zero(t, count(t, pool, "SELECT count(*) FROM intake.load_chunks"))
}

func TestAbandonDropsTheRun(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	ctx := context.Background()
	run := newRun()
	b := nameOnly.batch(run, 0, row(2, txt("a1"), txt("Acme")))
	_, err := stage(st, b)
	require.NoError(t, err)
	require.True(t, tableExists(t, pool, run))

	require.NoError(t, st.Abandon(ctx, run))
	require.NoError(t, st.Abandon(ctx, run), "abandon is idempotent")
	require.False(t, tableExists(t, pool, run))
	require.Zero(t, count(t, pool, "SELECT count(*) FROM intake.load_chunks"))

	// Late messages of the run change nothing.
	res, err := stage(st, b)
	require.NoError(t, err)
	require.Equal(t, store.Abandoned, res.State)
	require.False(t, res.Staged)
	require.False(t, tableExists(t, pool, run))
	sres, err := st.Seal(ctx, nameOnly.seal(run, 1))
	require.NoError(t, err)
	require.Equal(t, store.Abandoned, sres.State)
	_, committed, err := st.TryCommit(ctx, run)
	require.NoError(t, err)
	require.False(t, committed)
	require.Zero(t, count(t, pool, "SELECT count(*) FROM objects.accounts"))
}

func TestAbandonBeforeAnythingAndAfterTheCommit(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	ctx := context.Background()

	early := newRun()
	require.NoError(t, st.Abandon(ctx, early))
	res, err := stage(st, nameOnly.batch(early, 0, row(2, txt("a1"), txt("Acme"))))
	require.NoError(t, err)
	require.Equal(t, store.Abandoned, res.State)
	require.False(t, tableExists(t, pool, early))

	done := newRun()
	want := load(t, st, nameOnly, done, []*pipelinev1.Row{row(2, txt("a2"), txt("Beta"))})
	require.NoError(t, st.Abandon(ctx, done))
	cres, committed, err := st.TryCommit(ctx, done)
	require.NoError(t, err)
	require.True(t, committed, "a committed run stays committed")
	require.Equal(t, want, cres.Counts)
}

func TestRunsWithoutRows(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	ctx := context.Background()

	// Every row of the only chunk was rejected by the mapper.
	empty := newRun()
	require.Equal(t, store.Counts{}, load(t, st, nameOnly, empty, []*pipelinev1.Row{}))
	require.False(t, tableExists(t, pool, empty))

	// A run of zero chunks.
	zero := newRun()
	_, err := st.Seal(ctx, nameOnly.seal(zero, 0))
	require.NoError(t, err)
	res, committed, err := st.TryCommit(ctx, zero)
	require.NoError(t, err)
	require.True(t, committed)
	require.Equal(t, store.Counts{}, res.Counts)
	require.False(t, tableExists(t, pool, zero))
}

func TestALostStagingTableFailsTheRun(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	ctx := context.Background()
	run := newRun()
	_, err := stage(st, nameOnly.batch(run, 0, row(2, txt("a1"), txt("Acme"))))
	require.NoError(t, err)
	// What crash recovery does to an unlogged table.
	_, err = pool.Exec(ctx, "TRUNCATE "+store.StagingTable(runID(run)).Sanitize())
	require.NoError(t, err)
	_, err = st.Seal(ctx, nameOnly.seal(run, 1))
	require.NoError(t, err)
	_, committed, err := st.TryCommit(ctx, run)
	require.False(t, committed)
	require.True(t, store.IsInvalid(err), "%v", err)
	require.ErrorContains(t, err, "the staging table holds 0 rows but 1 were staged")
}

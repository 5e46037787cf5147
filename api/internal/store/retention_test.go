package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/api/internal/store"
	"github.com/intakehq/intake/pkg/pgtest"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

type testRun struct {
	id, job, sha string
	state        intakev1.RunState
	age          time.Duration
}

func insertRuns(t *testing.T, pool *pgxpool.Pool, runs ...testRun) {
	t.Helper()
	for _, r := range runs {
		_, err := pool.Exec(context.Background(), `INSERT INTO intake.runs (id, job_id, state, trigger, job, create_time, sha256)
			VALUES ($1, $2, $3, 2, '{}', now() - $4::interval, $5)`, r.id, r.job, int16(r.state), r.age.String(), r.sha)
		require.NoError(t, err)
	}
}

type sweptState struct{ swept, expired bool }

func sweptStates(t *testing.T, pool *pgxpool.Pool) map[string]sweptState {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT id, source_swept, source_expired FROM intake.runs`)
	require.NoError(t, err)
	defer rows.Close()
	out := map[string]sweptState{}
	for rows.Next() {
		var (
			id string
			s  sweptState
		)
		require.NoError(t, rows.Scan(&id, &s.swept, &s.expired))
		out[id] = s
	}
	require.NoError(t, rows.Err())
	return out
}

// SweepFiles applies each job's policy (or the default), leaves runs in
// progress alone, marks a run expired only when it had a file, and lets one
// caller sweep at a time.
func TestSweepFiles(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.NewPool(t)
	ctx := context.Background()
	_, err := pool.Exec(ctx, `INSERT INTO intake.jobs (id, spec, etag) VALUES
		('own', '{"retention": {"keepRuns": 1}}', 'e'), ('dflt', '{"retention": {}}', 'e')`)
	require.NoError(t, err)
	ok, fail := intakev1.RunState_RUN_STATE_SUCCEEDED, intakev1.RunState_RUN_STATE_FAILED
	insertRuns(t, pool,
		// Job "own" keeps its last run's file.
		testRun{"own-1", "own", "s1", ok, 3 * time.Hour},
		testRun{"own-2", "own", "", fail, 2 * time.Hour}, // never fetched
		testRun{"own-3", "own", "s3", ok, time.Hour},
		// Job "dflt" (an empty policy) and the deleted job "gone" follow
		// the default: 2 days.
		testRun{"dflt-old", "dflt", "s", ok, 72 * time.Hour},
		testRun{"dflt-new", "dflt", "s", ok, time.Hour},
		testRun{"gone-old", "gone", "s", ok, 72 * time.Hour},
		testRun{"gone-busy", "gone", "s", intakev1.RunState_RUN_STATE_LOADING, 80 * time.Hour},
	)
	s := store.New(pool)
	def := &intakev1.RetentionPolicy{KeepDays: 2}

	var (
		mu      sync.Mutex
		deleted []string
	)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	del := func(_ context.Context, f store.ExpiredFile) (bool, error) {
		once.Do(func() { close(entered); <-release })
		mu.Lock()
		defer mu.Unlock()
		deleted = append(deleted, f.RunID)
		return f.Fetched, nil
	}
	type result struct {
		n   int
		ran bool
		err error
	}
	first := make(chan result, 1)
	go func() {
		n, ran, err := s.SweepFiles(ctx, def, 2, del)
		first <- result{n, ran, err}
	}()
	<-entered
	n, ran, err := s.SweepFiles(ctx, def, 2, del)
	require.NoError(t, err)
	require.False(t, ran, "another sweep holds the lock")
	require.Zero(t, n)
	close(release)
	r := <-first
	require.NoError(t, r.err)
	require.True(t, r.ran)
	require.Equal(t, 4, r.n)
	require.ElementsMatch(t, []string{"own-1", "own-2", "dflt-old", "gone-old"}, deleted)

	require.Equal(t, map[string]sweptState{
		"own-1": {true, true}, "own-2": {true, false}, "own-3": {},
		"dflt-old": {true, true}, "dflt-new": {},
		"gone-old": {true, true}, "gone-busy": {},
	}, sweptStates(t, pool))

	// Nothing is left to sweep; the lock was released.
	n, ran, err = s.SweepFiles(ctx, def, 2, del)
	require.NoError(t, err)
	require.True(t, ran)
	require.Zero(t, n)
}

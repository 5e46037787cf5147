package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/pkg/pgtest"
	pipelinev1 "github.com/intakehq/intake/proto/gen/intake/pipeline/v1"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
	"github.com/intakehq/intake/services/loader/internal/store"
)

const (
	accounts = intakev1.ObjectType_OBJECT_TYPE_ACCOUNTS
	users    = intakev1.ObjectType_OBJECT_TYPE_USERS
)

func newStore(t testing.TB) (*store.Store, *pgxpool.Pool) {
	t.Helper()
	pool, _ := pgtest.NewPool(t)
	return store.New(pool), pool
}

func newRun() string { return "jobs/job-1/runs/" + uuid.NewString() }

func runID(run string) string {
	_, id, err := store.ParseRun(run)
	if err != nil {
		panic(err)
	}
	return id
}

func txt(s string) *pipelinev1.Value {
	return &pipelinev1.Value{Kind: &pipelinev1.Value_Text{Text: s}}
}

func dec(s string) *pipelinev1.Value {
	return &pipelinev1.Value{Kind: &pipelinev1.Value_Decimal{Decimal: s}}
}

func day(y int, m time.Month, d int) *pipelinev1.Value {
	days := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
	return &pipelinev1.Value{Kind: &pipelinev1.Value_Date{Date: int32(days)}}
}

// ts is a timestamp value of an RFC 3339 time.
func ts(s string) *pipelinev1.Value {
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return &pipelinev1.Value{Kind: &pipelinev1.Value_Timestamp{Timestamp: at.UnixMicro()}}
}

func boolean(b bool) *pipelinev1.Value {
	return &pipelinev1.Value{Kind: &pipelinev1.Value_Boolean{Boolean: b}}
}

func null() *pipelinev1.Value { return &pipelinev1.Value{} }

func row(n int64, values ...*pipelinev1.Value) *pipelinev1.Row {
	return &pipelinev1.Row{Row: n, Values: values}
}

// spec is what a run loads.
type spec struct {
	object   intakev1.ObjectType
	allowNew bool
	attrs    []string
	// types are Batch.types (a seal has none); nil leaves them out.
	types  []intakev1.AttributeType
	dryRun bool
}

func (s spec) batch(run string, chunk int64, rows ...*pipelinev1.Row) *pipelinev1.Batch {
	return &pipelinev1.Batch{Run: run, Object: s.object, AllowNewRecords: s.allowNew, Attributes: slices.Clone(s.attrs),
		Types: slices.Clone(s.types), Chunk: chunk, Rows: rows, DryRun: s.dryRun}
}

func (s spec) seal(run string, chunks int64) *pipelinev1.Seal {
	return &pipelinev1.Seal{Run: run, Chunks: chunks, Object: s.object, AllowNewRecords: s.allowNew, Attributes: slices.Clone(s.attrs), DryRun: s.dryRun}
}

// load stages one batch per chunk (in the order given), seals the run and
// commits it.
func load(t testing.TB, st *store.Store, s spec, run string, chunks ...[]*pipelinev1.Row) store.Counts {
	t.Helper()
	ctx := context.Background()
	for i, rows := range chunks {
		res, err := stage(st, s.batch(run, int64(i), rows...))
		require.NoError(t, err)
		require.True(t, res.Staged)
		require.Equal(t, int64(len(rows)), res.Rows)
	}
	_, err := st.Seal(ctx, s.seal(run, int64(len(chunks))))
	require.NoError(t, err)
	res, committed, err := st.TryCommit(ctx, run)
	require.NoError(t, err)
	require.True(t, committed)
	require.True(t, res.Merged)
	return res.Counts
}

func tableExists(t testing.TB, pool *pgxpool.Pool, run string) bool {
	t.Helper()
	var exists bool
	require.NoError(t, pool.QueryRow(context.Background(),
		"SELECT to_regclass($1) IS NOT NULL", store.StagingTable(runID(run)).Sanitize()).Scan(&exists))
	return exists
}

// account is a row of objects.accounts, as text.
type account struct {
	Name, Status, Notes, MRR, Created *string
	Active                            *bool
	Run                               *string
}

func getAccount(t testing.TB, pool *pgxpool.Pool, id string) (account, bool) {
	t.Helper()
	var a account
	rows, err := pool.Query(context.Background(), `SELECT name, status, notes, mrr::text, created_date::text, is_active, _run
		FROM objects.accounts WHERE account_id = $1`, id)
	require.NoError(t, err)
	defer rows.Close()
	if !rows.Next() {
		require.NoError(t, rows.Err())
		return a, false
	}
	require.NoError(t, rows.Scan(&a.Name, &a.Status, &a.Notes, &a.MRR, &a.Created, &a.Active, &a.Run))
	return a, true
}

func ptr[T any](v T) *T { return &v }

func count(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	require.NoError(t, pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

// stage stages a batch and, as the loader does once the control API took
// the chunk's report, marks the chunk reported.
func stage(st *store.Store, b *pipelinev1.Batch) (store.StageResult, error) {
	ctx := context.Background()
	res, err := st.StageBatch(ctx, b)
	if err == nil && res.State == store.Open {
		err = st.ChunkReported(ctx, b.Run, b.Chunk)
	}
	return res, err
}

package schema_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/pkg/pgtest"
	"github.com/intakehq/intake/pkg/schema"
)

// timestampVersion is the migration that makes usage.timestamp a timestamptz.
const timestampVersion = 8

// Usage rows imported while "timestamp" was text survive the change to
// timestamptz: ISO 8601 text is read (without a zone: UTC), one instant
// written twice keeps the row imported first, and a value that is not a
// time fails the migration with the value named, changing nothing.
func TestUsageTimestampMigration(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.NewPool(t)
	ctx := context.Background()
	db := stdlib.OpenDBFromPool(pool)
	t.Cleanup(func() { _ = db.Close() })
	p, err := goose.NewProvider(goose.DialectPostgres, db, schema.FS())
	require.NoError(t, err)

	columnType := func() string {
		var ty string
		require.NoError(t, pool.QueryRow(ctx, `SELECT data_type FROM information_schema.columns
			WHERE table_schema = 'objects' AND table_name = 'usage' AND column_name = 'timestamp'`).Scan(&ty))
		return ty
	}
	require.Equal(t, "timestamp with time zone", columnType())

	// Back to text, as before the migration.
	_, err = p.ApplyVersion(ctx, timestampVersion, false)
	require.NoError(t, err)
	require.Equal(t, "text", columnType())
	_, err = pool.Exec(ctx, `INSERT INTO objects.usage (account_id, user_id, activity, module, "timestamp", _run, _updated_at) VALUES
		('a1', 'u1', 'login',  'core', '2024-03-01T10:00:00Z',      'first',  '2024-03-02'),
		('a1', 'u1', 'login',  'core', '2024-03-01 11:00:00+01',    'second', '2024-03-03'),
		('a1', 'u1', 'login',  'core', '2024-03-01T10:05:00.25Z',   'first',  '2024-03-02'),
		('a1', 'u1', 'export', 'core', '2024-03-01T14:30:00',       'first',  '2024-03-02'),
		('a1', 'u1', 'view',   'core', '2024-03-01',                'first',  '2024-03-02'),
		('a1', 'u2', 'login',  'core', 'last tuesday',              'first',  '2024-03-02')`)
	require.NoError(t, err)

	_, err = p.ApplyVersion(ctx, timestampVersion, true)
	require.ErrorContains(t, err, `objects.usage: a "timestamp" is not a date and time PostgreSQL can read`)
	require.ErrorContains(t, err, `"last tuesday"`)
	require.Equal(t, "text", columnType(), "a failed migration changes nothing")
	require.Equal(t, int64(6), countRows(t, pool, `SELECT count(*) FROM objects.usage`))

	_, err = pool.Exec(ctx, `DELETE FROM objects.usage WHERE "timestamp" = 'last tuesday'`)
	require.NoError(t, err)
	_, err = p.ApplyVersion(ctx, timestampVersion, true)
	require.NoError(t, err)
	require.Equal(t, "timestamp with time zone", columnType())

	type event struct {
		activity string
		at       time.Time
		run      string
	}
	rows, err := pool.Query(ctx, `SELECT activity, "timestamp", _run FROM objects.usage ORDER BY "timestamp", activity`)
	require.NoError(t, err)
	var got []event
	for rows.Next() {
		var e event
		require.NoError(t, rows.Scan(&e.activity, &e.at, &e.run))
		e.at = e.at.UTC()
		got = append(got, e)
	}
	require.NoError(t, rows.Err())
	at := func(s string) time.Time {
		ts, err := time.Parse(time.RFC3339Nano, s)
		require.NoError(t, err)
		return ts
	}
	require.Equal(t, []event{
		{"view", at("2024-03-01T00:00:00Z"), "first"},
		{"login", at("2024-03-01T10:00:00Z"), "first"}, // 11:00+01 is the same event, imported later
		{"login", at("2024-03-01T10:05:00.25Z"), "first"},
		{"export", at("2024-03-01T14:30:00Z"), "first"},
	}, got)

	// The primary key still holds: the same instant again is refused.
	_, err = pool.Exec(ctx, `INSERT INTO objects.usage (account_id, user_id, activity, module, "timestamp")
		VALUES ('a1', 'u1', 'login', 'core', '2024-03-01T12:00:00+02:00')`)
	require.ErrorContains(t, err, "usage_pkey")

	// Down writes RFC 3339 text in UTC.
	_, err = p.ApplyVersion(ctx, timestampVersion, false)
	require.NoError(t, err)
	texts := map[string]bool{}
	trows, err := pool.Query(ctx, `SELECT "timestamp" FROM objects.usage`)
	require.NoError(t, err)
	for trows.Next() {
		var s string
		require.NoError(t, trows.Scan(&s))
		texts[s] = true
	}
	require.NoError(t, trows.Err())
	require.Equal(t, map[string]bool{"2024-03-01T00:00:00Z": true, "2024-03-01T10:00:00Z": true, "2024-03-01T10:05:00.25Z": true, "2024-03-01T14:30:00Z": true}, texts)
	_, err = p.ApplyVersion(ctx, timestampVersion, true)
	require.NoError(t, err)
}

func countRows(t *testing.T, pool interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, sql string) int64 {
	t.Helper()
	var n int64
	require.NoError(t, pool.QueryRow(context.Background(), sql).Scan(&n))
	return n
}

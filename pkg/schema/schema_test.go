package schema_test

import (
	"context"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/pkg/objects"
	"github.com/intakehq/intake/pkg/pgtest"
)

// The object tables the migrations create must match the data model, column
// for column and type for type, with the object's keys as primary key.
func TestObjectTablesMatchDataModel(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.NewPool(t)
	ctx := context.Background()
	require.Len(t, objects.All(), 10)
	for _, o := range objects.All() {
		rows, err := pool.Query(ctx, `SELECT column_name, data_type FROM information_schema.columns
			WHERE table_schema = $1 AND table_name = $2 AND column_name NOT LIKE '\_%' ORDER BY ordinal_position`, objects.Schema, o.Name)
		require.NoError(t, err)
		got := map[string]string{}
		for rows.Next() {
			var n, ty string
			require.NoError(t, rows.Scan(&n, &ty))
			got[n] = ty
		}
		require.NoError(t, rows.Err())
		require.Len(t, got, len(o.Attributes), "columns of %s", o.Name)
		for _, a := range o.Attributes {
			// The type's name as information_schema spells it
			// (timestamptz: "timestamp with time zone").
			var want string
			require.NoError(t, pool.QueryRow(ctx, `SELECT $1::regtype::text`, objects.PostgresType(a.Type)).Scan(&want))
			require.Equal(t, want, got[a.Name], "%s.%s", o.Name, a.Name)
		}

		// The primary key is the object's keys, in order.
		var pk []string
		require.NoError(t, pool.QueryRow(ctx, `SELECT array_agg(a.attname::text ORDER BY k.ord)
			FROM pg_index i
			CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
			JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
			WHERE i.indrelid = $1::regclass AND i.indisprimary`, o.TableName()).Scan(&pk))
		require.Equal(t, o.Keys, pk, "primary key of %s", o.Name)

		// Every table has the loader's bookkeeping columns.
		var bookkeeping []string
		require.NoError(t, pool.QueryRow(ctx, `SELECT array_agg(column_name::text ORDER BY column_name) FROM information_schema.columns
			WHERE table_schema = $1 AND table_name = $2 AND column_name LIKE '\_%'`, objects.Schema, o.Name).Scan(&bookkeeping))
		require.Equal(t, []string{"_run", "_updated_at"}, bookkeeping, "bookkeeping columns of %s", o.Name)
	}

	// No table in the objects schema is left out of the data model.
	rows, err := pool.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = $1`, objects.Schema)
	require.NoError(t, err)
	for rows.Next() {
		var n string
		require.NoError(t, rows.Scan(&n))
		require.True(t, slices.ContainsFunc(objects.All(), func(o *objects.Object) bool { return o.Name == n }), "table objects.%s has no object", n)
	}
	require.NoError(t, rows.Err())
}

package schema_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/pkg/objects"
	"github.com/intakehq/intake/pkg/pgtest"
)

// The object tables the migrations create must match the data model, column
// for column and type for type.
func TestObjectTablesMatchDataModel(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.NewPool(t)
	ctx := context.Background()
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
			require.Equal(t, objects.PostgresType(a.Type), got[a.Name], "%s.%s", o.Name, a.Name)
		}
	}
}

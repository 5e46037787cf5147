package store_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/pkg/objects"
	pipelinev1 "github.com/intakehq/intake/proto/gen/intake/pipeline/v1"
	"github.com/intakehq/intake/services/loader/internal/store"
)

// A run of a tenant lands in its tenant's schema, and nowhere else; a run
// whose messages name no tenant (of a version before tenants) takes its
// tenant from the control API's run, else the default tenant's.
func TestRunsLandInTheirTenantsTables(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	ctx := context.Background()
	o, err := objects.LookupName("accounts")
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO intake.tenants (id, object_schema) VALUES ('acme', 'objects_acme');
		CREATE SCHEMA objects_acme;
		CREATE TABLE `+o.TableIn("objects_acme")+` (LIKE `+o.Table()+` INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)`)
	require.NoError(t, err)

	tenantOf := func(b *pipelinev1.Batch, tenant string) *pipelinev1.Batch { b.Tenant = tenant; return b }
	run := newRun()
	_, err = stage(st, tenantOf(nameOnly.batch(run, 0, row(2, txt("a1"), txt("Acme's own"))), "acme"))
	require.NoError(t, err)
	seal := nameOnly.seal(run, 1)
	seal.Tenant = "acme"
	_, err = st.Seal(ctx, seal)
	require.NoError(t, err)
	res, committed, err := st.TryCommit(ctx, run)
	require.NoError(t, err)
	require.True(t, committed)
	require.Equal(t, store.Counts{Created: 1}, res.Counts)
	require.Equal(t, int64(1), count(t, pool, `SELECT count(*) FROM objects_acme.accounts WHERE account_id = 'a1' AND name = 'Acme''s own'`))
	require.Zero(t, count(t, pool, `SELECT count(*) FROM objects.accounts`), "the default tenant's table is untouched")

	// No tenant in the messages: the control API's run says acme.
	run2 := newRun()
	_, err = pool.Exec(ctx, `INSERT INTO intake.jobs (id, spec, etag, tenant_id) VALUES ('job-1', '{}', 'e', 'acme')`)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO intake.runs (id, job_id, state, trigger, job) VALUES ($1, 'job-1', 1, 1, '{}')`, runID(run2))
	require.NoError(t, err)
	load(t, st, nameOnly, run2, []*pipelinev1.Row{row(2, txt("a2"), txt("Acme again"))})
	require.Equal(t, int64(2), count(t, pool, `SELECT count(*) FROM objects_acme.accounts`))
	require.Zero(t, count(t, pool, `SELECT count(*) FROM objects.accounts`))

	// Neither: the default tenant.
	load(t, st, nameOnly, newRun(), []*pipelinev1.Row{row(2, txt("d1"), txt("Default's"))})
	require.Equal(t, int64(1), count(t, pool, `SELECT count(*) FROM objects.accounts WHERE account_id = 'd1'`))
	require.Equal(t, int64(2), count(t, pool, `SELECT count(*) FROM objects_acme.accounts`))

	// A tenant without object tables can never load: the run is invalid.
	run3 := newRun()
	_, err = stage(st, tenantOf(nameOnly.batch(run3, 0, row(2, txt("x1"), txt("nowhere"))), "ghost"))
	require.NoError(t, err)
	_, err = st.Seal(ctx, nameOnly.seal(run3, 1))
	require.NoError(t, err)
	_, _, err = st.TryCommit(ctx, run3)
	require.Error(t, err)
	require.True(t, store.IsInvalid(err), "%v", err)
	require.Contains(t, err.Error(), `tenant "ghost"`)
}

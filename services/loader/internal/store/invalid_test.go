package store_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	pipelinev1 "github.com/intakehq/intake/proto/gen/intake/pipeline/v1"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
	"github.com/intakehq/intake/services/loader/internal/store"
)

func TestBadBatchesAreRejectedWithAClearError(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t)
	ctx := context.Background()
	good := func() *pipelinev1.Batch {
		return nameOnly.batch(newRun(), 3, row(7, txt("a1"), txt("Acme")))
	}
	for _, tc := range []struct {
		name string
		edit func(b *pipelinev1.Batch)
		want string
	}{
		{"run name", func(b *pipelinev1.Batch) { b.Run = "runs/x" }, `run "runs/x" is not a run name (jobs/{job}/runs/{run})`},
		{"run id", func(b *pipelinev1.Batch) { b.Run = "jobs/j/runs/x; DROP TABLE y" }, `run id "x; DROP TABLE y" is not a UUID`},
		{"object", func(b *pipelinev1.Batch) { b.Object = intakev1.ObjectType_OBJECT_TYPE_UNSPECIFIED }, "is not a known object"},
		{"attribute", func(b *pipelinev1.Batch) { b.Attributes[1] = "nmae" }, `batch of chunk 3: attribute 2 "nmae" is not an attribute of accounts`},
		{"twice", func(b *pipelinev1.Batch) { b.Attributes[1] = "account_id" }, `attribute "account_id" is mapped twice`},
		{"key", func(b *pipelinev1.Batch) { b.Attributes[0] = "status" }, `key attribute "account_id" of accounts is not mapped`},
		{"width", func(b *pipelinev1.Batch) { b.Rows[0].Values = b.Rows[0].Values[:1] }, "chunk 3, row 7: 1 values for 2 attributes"},
		{"kind", func(b *pipelinev1.Batch) { b.Rows[0].Values[1] = dec("1") }, "chunk 3, row 7, attribute name: a decimal value cannot go into a text column"},
		{"null key", func(b *pipelinev1.Batch) { b.Rows[0].Values[0] = null() }, "chunk 3, row 7: key attribute account_id is empty"},
		{"negative chunk", func(b *pipelinev1.Batch) { b.Chunk = -1 }, "the chunk index is negative"},
		{"timestamp kind", func(b *pipelinev1.Batch) { b.Rows[0].Values[1] = ts("2024-03-01T10:00:00Z") }, "chunk 3, row 7, attribute name: a timestamp value cannot go into a text column"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := good()
			tc.edit(b)
			_, err := st.StageBatch(ctx, b)
			require.True(t, store.IsInvalid(err), "%v", err)
			require.ErrorContains(t, err, tc.want)
		})
	}

	s := spec{object: accounts, allowNew: true, attrs: []string{"account_id", "mrr", "created_date", "is_active"}}
	for _, tc := range []struct {
		name  string
		value *pipelinev1.Value
		attr  int
		want  string
	}{
		{"decimal", dec("12,5"), 1, `attribute mrr: "12,5" is not a decimal number`},
		{"empty decimal", dec(""), 1, `attribute mrr: "" is not a decimal number`},
		{"date", txt("2024-01-01"), 2, "attribute created_date: a text value cannot go into a date column"},
		{"boolean", txt("yes"), 3, "attribute is_active: a text value cannot go into a boolean column"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			values := []*pipelinev1.Value{txt("a1"), dec("1"), day(2024, 1, 1), boolean(true)}
			values[tc.attr] = tc.value
			_, err := st.StageBatch(ctx, s.batch(newRun(), 0, row(2, values...)))
			require.True(t, store.IsInvalid(err), "%v", err)
			require.ErrorContains(t, err, tc.want)
		})
	}
	// A usage batch of a mapper from before timestamps were a type: its
	// timestamp is text.
	usage := spec{object: intakev1.ObjectType_OBJECT_TYPE_USAGE, allowNew: true,
		attrs: []string{"account_id", "user_id", "activity", "module", "timestamp"}, types: []intakev1.AttributeType{tText, tText, tText, tText, tText}}
	_, err := st.StageBatch(ctx, usage.batch(newRun(), 0, row(2, txt("a1"), txt("u1"), txt("login"), txt("core"), txt("2024-03-01T10:00:00Z"))))
	require.True(t, store.IsInvalid(err), "%v", err)
	require.ErrorContains(t, err, `attribute 5 "timestamp" of usage is timestamp, not text`)
	usage.types[4] = tTimestamp
	_, err = st.StageBatch(ctx, usage.batch(newRun(), 0, row(2, txt("a1"), txt("u1"), txt("login"), txt("core"), txt("2024-03-01T10:00:00Z"))))
	require.True(t, store.IsInvalid(err), "%v", err)
	require.ErrorContains(t, err, "chunk 0, row 2, attribute timestamp: a text value cannot go into a timestamptz column")

	require.Zero(t, count(t, pool, "SELECT count(*) FROM intake.load_chunks"), "nothing of a bad batch is staged")
}

func TestBatchesOfARunMustAgree(t *testing.T) {
	t.Parallel()
	st, _ := newStore(t)
	ctx := context.Background()
	run := newRun()
	_, err := st.StageBatch(ctx, nameOnly.batch(run, 0, row(2, txt("a1"), txt("Acme"))))
	require.NoError(t, err)

	// The same attributes in another order are fine.
	swapped := spec{object: accounts, allowNew: true, attrs: []string{"name", "account_id"}}
	res, err := st.StageBatch(ctx, swapped.batch(run, 1, row(3, txt("Beta"), txt("a2"))))
	require.NoError(t, err)
	require.True(t, res.Staged)

	other := spec{object: accounts, allowNew: true, attrs: []string{"account_id", "status"}}
	_, err = st.StageBatch(ctx, other.batch(run, 2, row(4, txt("a3"), txt("x"))))
	require.True(t, store.IsInvalid(err), "%v", err)
	require.ErrorContains(t, err, "attributes [account_id status] differ from the run's [account_id name]")

	_, err = st.Seal(ctx, &pipelinev1.Seal{Run: run, Chunks: 2})
	require.NoError(t, err)
	_, err = st.StageBatch(ctx, nameOnly.batch(run, 2, row(4, txt("a3"), txt("x"))))
	require.True(t, store.IsInvalid(err), "%v", err)
	require.ErrorContains(t, err, "the run's seal says it has 2 chunks")

	_, err = st.Seal(ctx, &pipelinev1.Seal{Run: run, Chunks: 3})
	require.True(t, store.IsInvalid(err), "%v", err)
	require.ErrorContains(t, err, "3 chunks, but an earlier seal said 2")
}

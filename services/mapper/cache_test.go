package mapper

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPlanCacheEvictsLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	c := newPlanCache(2)
	a, b, d := compiled{err: errors.New("a")}, compiled{err: errors.New("b")}, compiled{err: errors.New("d")}
	c.put("a", a)
	c.put("b", b)
	got, ok := c.get("a") // a is now the most recent
	require.True(t, ok)
	require.Equal(t, a, got)
	c.put("d", d) // evicts b
	_, ok = c.get("b")
	require.False(t, ok)
	for run, want := range map[string]compiled{"a": a, "d": d} {
		got, ok := c.get(run)
		require.True(t, ok)
		require.Equal(t, want, got)
	}
}

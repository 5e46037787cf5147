package store

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// More jobs than fit: the cache stays within its bound, drops some entries
// (not all of them), and never returns an entry of another version.
func TestJobCacheStaysWithinItsBound(t *testing.T) {
	entry := func(version int64) *cachedJob {
		return &cachedJob{version: version, wire: make([]byte, 872), snapshot: strings.Repeat("x", 1000)} // 2,000 bytes with the overhead
	}
	c := &JobCache{maxBytes: 100 * 2000}
	for i := range 1000 {
		c.put(fmt.Sprintf("job-%d", i), entry(1))
		require.LessOrEqual(t, c.bytes, c.maxBytes)
	}
	held := 0
	for i := range 1000 {
		if c.get(jobVersion{fmt.Sprintf("job-%d", i), 1}) != nil {
			held++
		}
	}
	require.Equal(t, len(c.m), held)
	require.GreaterOrEqual(t, held, 75, "a quarter of the room is freed, not all of it")
	require.LessOrEqual(t, held, 100)
	require.Equal(t, held*2000, c.bytes)

	// A newer version replaces an entry; an older one does not.
	c.put("job-999", entry(5))
	require.NotNil(t, c.get(jobVersion{"job-999", 5}))
	c.put("job-999", entry(4))
	require.Nil(t, c.get(jobVersion{"job-999", 4}))
	require.NotNil(t, c.get(jobVersion{"job-999", 5}))
	require.Equal(t, len(c.m)*2000, c.bytes)
}

package mapper

import (
	"container/list"
	"sync"

	"github.com/intakehq/intake/pkg/csv"
	"github.com/intakehq/intake/pkg/mapping"
)

// compiled is a run's compiled plan and the dialect of its chunks, or why
// its mapping does not compile.
type compiled struct {
	plan    *mapping.Plan
	dialect csv.Dialect
	err     error
}

// planCache is a small LRU of compiled plans keyed by run name, so each run's
// plan is compiled once per process while its chunks flow by.
type planCache struct {
	mu    sync.Mutex
	max   int
	order *list.List // of *cacheEntry, most recent first
	byRun map[string]*list.Element
}

type cacheEntry struct {
	run string
	c   compiled
}

func newPlanCache(max int) *planCache {
	return &planCache{max: max, order: list.New(), byRun: make(map[string]*list.Element)}
}

func (c *planCache) get(run string) (compiled, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byRun[run]
	if !ok {
		return compiled{}, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*cacheEntry).c, true
}

func (c *planCache) put(run string, v compiled) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byRun[run]; ok {
		e.Value.(*cacheEntry).c = v
		c.order.MoveToFront(e)
		return
	}
	c.byRun[run] = c.order.PushFront(&cacheEntry{run: run, c: v})
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.byRun, last.Value.(*cacheEntry).run)
	}
}

package api

import "sync"

// hub wakes the watchers of a run in this process as soon as a report
// changes it; watchers also poll the database, for changes made through
// other replicas.
type hub struct {
	mu     sync.Mutex
	topics map[string]*topic
}

type topic struct {
	ch   chan struct{}
	refs int
}

func newHub() *hub { return &hub{topics: map[string]*topic{}} }

// join registers a watcher of run; call leave when done.
func (h *hub) join(run string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.topics[run]
	if t == nil {
		t = &topic{ch: make(chan struct{})}
		h.topics[run] = t
	}
	t.refs++
}

func (h *hub) leave(run string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t := h.topics[run]; t != nil {
		if t.refs--; t.refs <= 0 {
			delete(h.topics, run)
		}
	}
}

// changed returns a channel closed at the next notify of run. The caller
// must have joined run.
func (h *hub) changed(run string) <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t := h.topics[run]; t != nil {
		return t.ch
	}
	return nil
}

// notify wakes every watcher of run.
func (h *hub) notify(run string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t := h.topics[run]; t != nil {
		close(t.ch)
		t.ch = make(chan struct{})
	}
}

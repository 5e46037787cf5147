// Package testutil holds small helpers the tests of several modules share:
// a goroutine-safe buffer for the logs of a process or a service, a free
// loopback address, and a JSON POST to the API's HTTP port.
package testutil

import (
	"net"
	"strings"
	"sync"
	"testing"
)

// SyncBuffer collects writes from several goroutines (a process's stdout
// and stderr, a service's logs). The zero value is ready to use.
type SyncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

// Write implements io.Writer.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// FreeAddr returns a loopback address ("127.0.0.1:port") whose port was
// free a moment ago, for a server the test starts in another process.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

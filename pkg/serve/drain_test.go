package serve_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/pkg/serve"
)

// A drain turns /readyz to 503 at once and for good, whatever the service
// says, while /healthz keeps answering: the process is stopping, not dead.
func TestDrainTurnsReadinessOffButNotLiveness(t *testing.T) {
	t.Parallel()
	var drain serve.Drain
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	base := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve.Listener(ctx, ln, nil, drain.Ready(func() bool { return true }), slog.New(slog.DiscardHandler))
	}()
	defer func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("server did not stop after cancel")
		}
	}()

	code, _ := get(t, base+"/readyz")
	require.Equal(t, http.StatusOK, code, "ready before the drain")
	require.False(t, drain.Draining())

	require.True(t, drain.Begin(), "the first Begin begins the drain")
	require.False(t, drain.Begin(), "a second Begin does not")
	require.True(t, drain.Draining())
	code, body := get(t, base+"/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code, "ready while draining")
	require.Equal(t, "not ready\n", body)
	code, _ = get(t, base+"/healthz")
	require.Equal(t, http.StatusOK, code, "not alive while draining")
}

func TestDrainReadyOfNilIsReadyUntilTheDrain(t *testing.T) {
	t.Parallel()
	var drain serve.Drain
	ready := drain.Ready(nil)
	require.True(t, ready())
	drain.Begin()
	require.False(t, ready())
}

package command

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestFirstSignalCancelsSecondExits(t *testing.T) {
	t.Parallel()
	sigs := make(chan os.Signal, 2)
	exited := make(chan int, 1)
	var out lockedBuffer
	ctx, stop := notifyContext(sigs, func(code int) { exited <- code }, &out)
	defer stop()

	sigs <- syscall.SIGTERM
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("first signal did not cancel")
	}
	require.Contains(t, out.String(), "stopping gracefully")
	select {
	case <-exited:
		t.Fatal("exited on the first signal")
	case <-time.After(50 * time.Millisecond):
	}

	sigs <- os.Interrupt
	select {
	case code := <-exited:
		require.Equal(t, 130, code)
	case <-time.After(5 * time.Second):
		t.Fatal("second signal did not exit")
	}
}

func TestStopWithoutSignalIsQuiet(t *testing.T) {
	t.Parallel()
	sigs := make(chan os.Signal, 1)
	var out lockedBuffer
	ctx, stop := notifyContext(sigs, func(int) { t.Error("exit called") }, &out)
	stop()
	stop() // harmless
	<-ctx.Done()
	time.Sleep(20 * time.Millisecond)
	require.Empty(t, out.String())
}

func TestReportExitCodes(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	require.Equal(t, 0, Report("x", nil, &out))
	require.Equal(t, 0, Report("x", flag.ErrHelp, &out))
	require.Equal(t, 1, Report("x", &ExitError{Code: 1}, &out))
	require.Empty(t, out.String(), "an ExitError without error prints nothing")
	require.Equal(t, 2, Report("x", Usagef("bad %s", "flag"), &out))
	require.Equal(t, 1, Report("x", errors.New("boom"), &out))
	require.Equal(t, "x: bad flag\nx: boom\n", out.String())
}

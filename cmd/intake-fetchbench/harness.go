package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
)

// harness lets the benchmark start the test servers of pkg/sftptest and
// pkg/s3test, which take a testing.TB, outside a test. It implements every
// method those packages call: Fatalf and the other ways to fail panic with
// a *harnessFailure that run turns back into an error; Cleanup functions
// run, last first, at close.
//
// testing.TB has an unexported method, so no type outside package testing
// can implement it on its own; the embedded interface, always nil, only
// supplies that method to the method set. Calling a method of testing.TB
// that harness does not define panics, and run reports that as an error
// too.
type harness struct {
	testing.TB

	dir  string    // TempDir makes directories under it
	logw io.Writer // Log and Logf write here

	mu       sync.Mutex
	cleanups []func()
	failed   bool
	temps    int
}

// harnessFailure is a test helper's Fatal, carried by a panic to run.
type harnessFailure struct{ msg string }

func newHarness(dir string, logw io.Writer) *harness {
	return &harness{dir: dir, logw: logw}
}

// run calls fn, returning the failure a helper reported through h (or any
// panic) as an error.
func (h *harness) run(fn func()) (err error) {
	defer func() {
		switch r := recover().(type) {
		case nil:
		case *harnessFailure:
			err = errors.New(r.msg)
		default:
			err = fmt.Errorf("unexpected panic: %v", r)
		}
	}()
	fn()
	return nil
}

// close runs the cleanup functions, last registered first.
func (h *harness) close() {
	h.mu.Lock()
	fns := h.cleanups
	h.cleanups = nil
	h.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}

func (h *harness) fail(msg string) {
	h.mu.Lock()
	h.failed = true
	h.mu.Unlock()
	panic(&harnessFailure{msg: msg})
}

// Helper implements testing.TB.
func (h *harness) Helper() {}

// Name implements testing.TB.
func (h *harness) Name() string { return "intake-fetchbench" }

// Context implements testing.TB.
func (h *harness) Context() context.Context { return context.Background() }

// Cleanup implements testing.TB.
func (h *harness) Cleanup(fn func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cleanups = append(h.cleanups, fn)
}

// TempDir implements testing.TB: a new directory under h.dir, removed at
// close.
func (h *harness) TempDir() string {
	h.mu.Lock()
	h.temps++
	n := h.temps
	h.mu.Unlock()
	dir, err := os.MkdirTemp(h.dir, fmt.Sprintf("tmp%03d-", n))
	if err != nil {
		h.fail(fmt.Sprintf("create a temporary directory in %s: %v", h.dir, err))
	}
	h.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// Failed implements testing.TB.
func (h *harness) Failed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.failed
}

// Log implements testing.TB.
func (h *harness) Log(args ...any) { fmt.Fprintln(h.logw, args...) }

// Logf implements testing.TB.
func (h *harness) Logf(format string, args ...any) { fmt.Fprintf(h.logw, format+"\n", args...) }

// Error implements testing.TB: it fails at once (a server that cannot
// start cannot be measured).
func (h *harness) Error(args ...any) { h.fail(fmt.Sprint(args...)) }

// Errorf implements testing.TB, as Error.
func (h *harness) Errorf(format string, args ...any) { h.fail(fmt.Sprintf(format, args...)) }

// Fatal implements testing.TB.
func (h *harness) Fatal(args ...any) { h.fail(fmt.Sprint(args...)) }

// Fatalf implements testing.TB.
func (h *harness) Fatalf(format string, args ...any) { h.fail(fmt.Sprintf(format, args...)) }

// Fail implements testing.TB.
func (h *harness) Fail() { h.fail("failed") }

// FailNow implements testing.TB.
func (h *harness) FailNow() { h.fail("failed") }

// Skip implements testing.TB: a skipped server is a failure here.
func (h *harness) Skip(args ...any) { h.fail("skipped: " + fmt.Sprint(args...)) }

// Skipf implements testing.TB, as Skip.
func (h *harness) Skipf(format string, args ...any) {
	h.fail("skipped: " + fmt.Sprintf(format, args...))
}

// SkipNow implements testing.TB, as Skip.
func (h *harness) SkipNow() { h.fail("skipped") }

// Skipped implements testing.TB.
func (h *harness) Skipped() bool { return false }

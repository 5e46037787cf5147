// Package command holds what the mains of Intake's binaries share: the
// process environment as a value (so commands run in tests), the signal
// handling of a graceful stop, and exit codes.
package command

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/term"
)

// System is what a command may touch of its process.
type System struct {
	Stdin     io.Reader
	Stdout    io.Writer
	Stderr    io.Writer
	LookupEnv func(string) (string, bool)
	// TerminalWidth returns the width of the terminal Stdout writes to, and
	// false when Stdout is not a terminal (a pipe, a file).
	TerminalWidth func() (int, bool)
}

// OS is the System of the running process.
func OS() System {
	return System{
		Stdin:     os.Stdin,
		Stdout:    os.Stdout,
		Stderr:    os.Stderr,
		LookupEnv: os.LookupEnv,
		TerminalWidth: func() (int, bool) {
			fd := int(os.Stdout.Fd())
			if !term.IsTerminal(fd) {
				return 0, false
			}
			w, _, err := term.GetSize(fd)
			if err != nil || w <= 0 {
				w = 80
			}
			return w, true
		},
	}
}

// ExitError ends the process with Code, printing Err when it is not nil.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// Usagef is an error in how the command was called: exit code 2.
func Usagef(format string, args ...any) error {
	return &ExitError{Code: 2, Err: fmt.Errorf(format, args...)}
}

// Exit ends the process after a command returned err: 0 for nil or a
// request for help, the ExitError's code, or 1; the error goes to stderr
// prefixed with the program's name.
func Exit(name string, err error) {
	os.Exit(Report(name, err, os.Stderr))
}

// Report prints err for the user and returns the exit code (see Exit).
func Report(name string, err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	code := 1
	var ee *ExitError
	if errors.As(err, &ee) {
		code = ee.Code
		if ee.Err == nil {
			return code
		}
	}
	fmt.Fprintf(stderr, "%s: %v\n", name, err)
	return code
}

// SignalContext returns a context cancelled by the first SIGINT or SIGTERM,
// so the command can stop gracefully: services finish their in-flight work.
// A second signal ends the process at once with exit code 130. stop
// releases the signal handling.
func SignalContext(stderr io.Writer) (ctx context.Context, stop func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	ctx, release := notifyContext(sigs, os.Exit, stderr)
	return ctx, func() {
		signal.Stop(sigs)
		release()
	}
}

// notifyContext is SignalContext with the signals and the exit as values.
func notifyContext(sigs <-chan os.Signal, exit func(int), stderr io.Writer) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	quit := make(chan struct{})
	go func() {
		select {
		case sig := <-sigs:
			fmt.Fprintf(stderr, "%s: stopping gracefully; send the signal again to exit at once\n", sig)
			cancel()
		case <-quit:
			return
		}
		select {
		case sig := <-sigs:
			fmt.Fprintf(stderr, "%s again: exiting now\n", sig)
			exit(130)
		case <-quit:
		}
	}()
	var once sync.Once
	return ctx, func() { once.Do(func() { close(quit); cancel() }) }
}

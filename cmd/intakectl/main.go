// Command intakectl is the command line of Intake's control API: create and
// list jobs, start runs, follow them live. Run `intakectl help`.
package main

import (
	"context"
	"os"

	"github.com/intakehq/intake/cmd/internal/command"
	"github.com/intakehq/intake/cmd/internal/ctl"
)

func main() {
	ctx, stop := command.SignalContext(os.Stderr)
	err := realMain(ctx)
	stop()
	command.Exit("intakectl", err)
}

func realMain(ctx context.Context) error {
	return ctl.Run(ctx, os.Args[1:], command.OS())
}

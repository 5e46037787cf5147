// Command intake-scheduler runs Intake's scheduler alone; the same as `intake scheduler`.
// Run `intake-scheduler -h` for its flags.
package main

import (
	"context"
	"os"

	"github.com/intakehq/intake/cmd/internal/cli"
	"github.com/intakehq/intake/cmd/internal/command"
)

func main() {
	ctx, stop := command.SignalContext(os.Stderr)
	err := realMain(ctx)
	stop()
	command.Exit("intake-scheduler", err)
}

func realMain(ctx context.Context) error {
	return cli.RunCommand(ctx, "intake-scheduler", "scheduler", os.Args[1:], command.OS())
}

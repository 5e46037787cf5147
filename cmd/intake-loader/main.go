// Command intake-loader runs Intake's loader alone; the same as `intake loader`.
// Run `intake-loader -h` for its flags.
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
	command.Exit("intake-loader", err)
}

func realMain(ctx context.Context) error {
	return cli.RunCommand(ctx, "intake-loader", "loader", os.Args[1:], command.OS())
}

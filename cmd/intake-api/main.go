// Command intake-api runs Intake's api alone; the same as `intake api`.
// Run `intake-api -h` for its flags.
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
	command.Exit("intake-api", err)
}

func realMain(ctx context.Context) error {
	return cli.RunCommand(ctx, "intake-api", "api", os.Args[1:], command.OS())
}

// Command intake-fetcher runs Intake's fetcher alone; the same as `intake fetcher`.
// Run `intake-fetcher -h` for its flags.
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
	command.Exit("intake-fetcher", err)
}

func realMain(ctx context.Context) error {
	return cli.RunCommand(ctx, "intake-fetcher", "fetcher", os.Args[1:], command.OS())
}

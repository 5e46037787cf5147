// Command intake-mapper runs Intake's mapper alone; the same as `intake mapper`.
// Run `intake-mapper -h` for its flags.
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
	command.Exit("intake-mapper", err)
}

func realMain(ctx context.Context) error {
	return cli.RunCommand(ctx, "intake-mapper", "mapper", os.Args[1:], command.OS())
}

// Command intake runs Intake's services: one of them per process (`intake
// api`, `intake fetcher`, …) or all of them in one process with an embedded
// NATS server (`intake all`, and `intake dev` with demo jobs). Run `intake
// help`.
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
	command.Exit("intake", err)
}

func realMain(ctx context.Context) error {
	return cli.Run(ctx, os.Args[1:], command.OS())
}

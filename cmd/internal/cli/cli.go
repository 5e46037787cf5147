// Package cli is the command line of the intake binary and of the
// one-service binaries (intake-api, intake-fetcher, …): flag and
// environment parsing, logging, the metrics and health server, and the
// composition of every service in one process (`intake all`, `intake dev`).
//
// Every flag can also be set by an environment variable: --nats-url by
// INTAKE_NATS_URL. A flag on the command line wins over the environment.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"

	"github.com/intakehq/intake/cmd/internal/command"
	"github.com/intakehq/intake/cmd/internal/flagenv"
	"github.com/intakehq/intake/pkg/tracing"
)

// subcommand is one of intake's subcommands.
type subcommand struct {
	summary string
	// flags registers the subcommand's flags.
	flags func(fs *flag.FlagSet, o *options)
	// devLogs makes text the default log format.
	devLogs bool
	run     func(ctx context.Context, o *options, log *slog.Logger, sys command.System) error
}

var subcommands = map[string]subcommand{
	"api":       apiCommand,
	"fetcher":   fetcherCommand,
	"mapper":    mapperCommand,
	"loader":    loaderCommand,
	"scheduler": schedulerCommand,
	"all":       allCommand,
	"migrate":   migrateCommand,
	"dev":       devCommand,
}

// Usage is the help of the intake binary.
func Usage() string {
	var b strings.Builder
	b.WriteString("intake runs Intake's services: recurring CSV imports into PostgreSQL.\n\nUsage:\n  intake COMMAND [flags]\n\nCommands:\n")
	names := make([]string, 0, len(subcommands))
	for n := range subcommands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "  %-10s %s\n", n, subcommands[n].summary)
	}
	b.WriteString("\nRun `intake COMMAND -h` for a command's flags. Every flag can also be set by an\nenvironment variable: --nats-url by INTAKE_NATS_URL; a flag given on the\ncommand line wins. The first SIGINT or SIGTERM stops gracefully: /readyz\nanswers 503 at once, work stops being taken after --shutdown-delay, work in\nflight gets --shutdown-grace to finish or is handed back; a second signal\nexits at once.\n")
	return b.String()
}

// Run runs the intake binary: args[0] names the subcommand.
func Run(ctx context.Context, args []string, sys command.System) error {
	if len(args) == 0 {
		fmt.Fprint(sys.Stderr, Usage())
		return &command.ExitError{Code: 2}
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(sys.Stdout, Usage())
		return nil
	}
	if _, ok := subcommands[args[0]]; !ok {
		return command.Usagef("unknown command %q (see intake help)", args[0])
	}
	return RunCommand(ctx, "intake "+args[0], args[0], args[1:], sys)
}

// RunCommand runs one subcommand; prog is the name shown in its help
// ("intake fetcher", or "intake-fetcher" for a one-service binary).
func RunCommand(ctx context.Context, prog, name string, args []string, sys command.System) error {
	cmd, ok := subcommands[name]
	if !ok {
		return fmt.Errorf("unknown command %q", name)
	}
	o, err := parseOptions(prog, cmd, args, sys)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return &command.ExitError{Code: 2, Err: err}
	}
	log, err := o.logger(sys.Stderr, cmd.devLogs || o.dev)
	if err != nil {
		return &command.ExitError{Code: 2, Err: err}
	}
	log = slog.New(tracing.LogHandler(log.Handler())) // tracing.go: trace ids in log lines
	stopTracing, err := startTracing(ctx, o, name, log, sys)
	if err != nil {
		return &command.ExitError{Code: 2, Err: err}
	}
	defer stopTracing()
	return cmd.run(ctx, o, log, sys)
}

// parseOptions reads a subcommand's flags from args and the environment and
// checks them.
func parseOptions(prog string, cmd subcommand, args []string, sys command.System) (*options, error) {
	o, fs := newFlagSet(prog, cmd, sys.Stderr)
	pos, err := flagenv.Parse(fs, args, sys.LookupEnv)
	if err != nil {
		return nil, err
	}
	if len(pos) > 0 {
		return nil, fmt.Errorf("%s takes no arguments, got %q", prog, pos)
	}
	if err := o.validate(fs); err != nil {
		return nil, err
	}
	return o, nil
}

func newFlagSet(prog string, cmd subcommand, stderr io.Writer) (*options, *flag.FlagSet) {
	o := &options{}
	fs := flag.NewFlagSet(prog, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cmd.flags(fs, o)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "%s: %s\n\nUsage:\n  %s [flags]\n\nFlags (each also from the environment variable shown):\n", prog, cmd.summary, prog)
		fs.VisitAll(func(f *flag.Flag) {
			def := ""
			if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "0s" && f.DefValue != "false" {
				def = fmt.Sprintf(" (default %q)", f.DefValue)
			}
			fmt.Fprintf(stderr, "  --%s  [%s]\n      %s%s\n", f.Name, flagenv.EnvName(f.Name), f.Usage, def)
		})
	}
	return o, fs
}

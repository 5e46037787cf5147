package cli

import (
	"context"
	"flag"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/intakehq/intake/cmd/internal/command"
	"github.com/intakehq/intake/pkg/schema"
)

var migrateCommand = subcommand{
	summary: "apply the database migrations and exit",
	flags: func(fs *flag.FlagSet, o *options) {
		o.databaseFlag(fs)
		fs.StringVar(&o.logFormat, "log-format", "", "log format: json or text (default json)")
		fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	},
	run: func(ctx context.Context, o *options, log *slog.Logger, _ command.System) error {
		pool, err := pgxpool.New(ctx, o.databaseURL)
		if err != nil {
			return fmt.Errorf("migrate: --database-url: %w", err)
		}
		defer pool.Close()
		if err := pool.Ping(ctx); err != nil {
			return fmt.Errorf("migrate: connect to PostgreSQL: %w", err)
		}
		if err := schema.Migrate(ctx, pool); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		log.Info("migrations applied")
		return nil
	},
}

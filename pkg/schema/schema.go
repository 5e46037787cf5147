// Package schema holds Intake's versioned SQL migrations and applies them
// with goose. The control API applies them on start; `intake migrate` applies
// them on demand; tests apply them to a template database.
package schema

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
)

//go:embed migrations/*.sql
var migrations embed.FS

// FS returns the migration files.
func FS() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embedded path is fixed at build time
	}
	return sub
}

// Migrate applies every pending migration. Concurrent callers (several API
// replicas starting at once) take turns through goose's PostgreSQL session lock.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	locker, err := lockerOption()
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, FS(), locker)
	if err != nil {
		return fmt.Errorf("schema: prepare migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("schema: apply migrations: %w", err)
	}
	return nil
}

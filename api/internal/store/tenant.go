package store

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/intakehq/intake/pkg/objects"
)

// Tenants (pkg/schema/migrations/00013_tenants.sql): every job,
// connection, custom attribute, run and validation row has a tenant_id,
// and each tenant's object rows live in a PostgreSQL schema of its own
// (intake.tenants.object_schema).
//
// A call made for a tenant carries it in its context (WithTenant, set by
// the API for every caller of a tenant): every read and write of the store
// made with that context is limited to the tenant's rows, and a row of
// another tenant is ErrNotFound, exactly like a missing one. A context
// without a tenant (the workers' StageService calls and the API's own
// sweepers) reaches every tenant. Keeping the tenant in the context rather
// than in each method's parameters means that the helpers shared with the
// worker paths keep their signatures, and a method cannot be called for a
// tenant with the scope left out by one of its callers.

// DefaultTenantID is the tenant of rows made without one: "default".
const DefaultTenantID = "default"

// ErrIDTaken: the id is another tenant's. It wraps ErrAlreadyExists, so
// that a caller that generates ids tries another.
var ErrIDTaken = fmt.Errorf("%w: id taken", ErrAlreadyExists)

type tenantKey struct{}

// WithTenant returns ctx scoped to the tenant with id ("default", not
// "tenants/default"): the store's calls made with it see and change only
// that tenant's rows.
func WithTenant(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, tenantKey{}, id)
}

// TenantOf returns the tenant ctx is scoped to; "" when it is not (every
// tenant).
func TenantOf(ctx context.Context) string {
	t, _ := ctx.Value(tenantKey{}).(string)
	return t
}

// tenantOrDefault is the tenant a new row of ctx belongs to.
func tenantOrDefault(ctx context.Context) string {
	if t := TenantOf(ctx); t != "" {
		return t
	}
	return DefaultTenantID
}

// unsafeSchemaChar is what a tenant id may hold that a schema name of
// ObjectSchemaOf does not.
var unsafeSchemaChar = regexp.MustCompile(`[^a-z0-9_]`)

// ObjectSchemaOf is the schema of a tenant's object tables: "objects" for
// the default tenant, "objects_<tenant>" for another (lowercase letters,
// digits and '_'; a '-' of the id becomes '_').
func ObjectSchemaOf(tenantID string) string {
	if tenantID == DefaultTenantID || tenantID == "" {
		return objects.Schema
	}
	id := strings.ReplaceAll(strings.ToLower(tenantID), "-", "_")
	return objects.Schema + "_" + unsafeSchemaChar.ReplaceAllString(id, "_")
}

// tenantSchemas caches the object schema of each tenant (a tenant's schema
// never changes once made).
type tenantSchemas struct {
	mu sync.Mutex
	m  map[string]string
}

// ObjectSchema returns the schema of the object tables of ctx's tenant
// (the default tenant's when ctx has none); ErrNotFound for a tenant that
// was never made.
func (s *Store) ObjectSchema(ctx context.Context) (string, error) {
	return s.objectSchema(ctx, tenantOrDefault(ctx))
}

func (s *Store) objectSchema(ctx context.Context, tenantID string) (string, error) {
	s.schemas.mu.Lock()
	sc, ok := s.schemas.m[tenantID]
	s.schemas.mu.Unlock()
	if ok {
		return sc, nil
	}
	err := s.pool.QueryRow(ctx, `SELECT object_schema FROM intake.tenants WHERE id = $1`, tenantID).Scan(&sc)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("read the object schema of tenant %s: %w", TenantName(tenantID), err)
	}
	s.schemas.mu.Lock()
	if s.schemas.m == nil {
		s.schemas.m = map[string]string{}
	}
	s.schemas.m[tenantID] = sc
	s.schemas.mu.Unlock()
	return sc, nil
}

// EnsureTenant makes the tenant with id unless it exists: its row of
// intake.tenants and its schema with every object table, each made LIKE
// the default tenant's table (columns, defaults, constraints, indexes)
// without the default tenant's custom attribute columns. One transaction:
// a tenant is made whole or not at all. It reports whether it made it.
func (s *Store) EnsureTenant(ctx context.Context, id string) (bool, error) {
	if _, err := s.objectSchema(ctx, id); err == nil {
		return false, nil
	} else if !errors.Is(err, ErrNotFound) {
		return false, err
	}
	schema := ObjectSchemaOf(id)
	made := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Tenants are made one at a time, so two calls for one tenant
		// do not both make its schema.
		if _, err := tx.Exec(ctx, `LOCK TABLE intake.tenants IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return err
		}
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM intake.tenants WHERE id = $1)`, id).Scan(&exists); err != nil {
			return err
		}
		if exists {
			return nil
		}
		if _, err := tx.Exec(ctx, `INSERT INTO intake.tenants (id, object_schema, create_time) VALUES ($1, $2, $3)`, id, schema, s.now()); err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "23505" {
				return fmt.Errorf("its schema %s is another tenant's", schema)
			}
			return err
		}
		sc := pgx.Identifier{schema}.Sanitize()
		if _, err := tx.Exec(ctx, `CREATE SCHEMA `+sc); err != nil {
			return fmt.Errorf("create schema %s: %w", schema, err)
		}
		rows, err := tx.Query(ctx, `SELECT object, attribute_id FROM intake.attributes WHERE tenant_id = $1`, DefaultTenantID)
		if err != nil {
			return err
		}
		custom := map[string][]string{}
		for rows.Next() {
			var o, a string
			if err := rows.Scan(&o, &a); err != nil {
				rows.Close()
				return err
			}
			custom[o] = append(custom[o], a)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, o := range objects.All() {
			t := o.TableIn(schema)
			if _, err := tx.Exec(ctx, `CREATE TABLE `+t+` (LIKE `+o.Table()+` INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)`); err != nil {
				return fmt.Errorf("create table %s.%s: %w", schema, o.Name, err)
			}
			for _, a := range custom[o.Name] {
				if _, err := tx.Exec(ctx, `ALTER TABLE `+t+` DROP COLUMN IF EXISTS `+pgx.Identifier{a}.Sanitize()); err != nil {
					return fmt.Errorf("drop the default tenant's attribute %s from %s.%s: %w", a, schema, o.Name, err)
				}
			}
		}
		made = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("create tenant %s: %w", TenantName(id), err)
	}
	return made, nil
}

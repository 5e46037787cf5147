package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/intakehq/intake/api/internal/jobspec"
	"github.com/intakehq/intake/pkg/secretbox"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// Stored connections (see pkg/schema/migrations/00011_connections.sql). A
// connection's settings are in spec, its secrets in secrets, each sealed
// with the key ring (pkg/secretbox) and bound to "connections/<id>/<field>",
// so a sealed value copied into another row or field does not open. Reads
// return a connection without secrets, with its *_set flags; only
// OpenConnection returns them in clear text.

// ErrConnectionInUse: a connection is used by jobs (ConnectionInUseError
// names them).
var ErrConnectionInUse = errors.New("connection is in use")

// ConnectionInUseError is a refused delete of a connection that jobs use.
type ConnectionInUseError struct {
	// Jobs are the names of the jobs ("jobs/{job}") that use it.
	Jobs []string
}

func (e *ConnectionInUseError) Error() string {
	return "connection is used by " + strings.Join(e.Jobs, ", ")
}

func (e *ConnectionInUseError) Is(target error) bool { return target == ErrConnectionInUse }

// SecretError is a secret of a stored row that cannot be opened (no key
// ring, a key missing from it, or a changed value). Its message names the
// row, the field and the key id; never the secret.
type SecretError struct {
	// Resource is the row: "connections/x" or "jobs/y".
	Resource string
	// Field is the secret's field path, e.g. "sftp.password".
	Field string
	Err   error
}

func (e *SecretError) Error() string {
	if errors.Is(e.Err, secretbox.ErrNoKey) {
		return fmt.Sprintf("the %s of %s is encrypted, and no encryption key is configured (INTAKE_ENCRYPTION_KEYS)", e.Field, e.Resource)
	}
	return fmt.Sprintf("the %s of %s cannot be decrypted: %v", e.Field, e.Resource, e.Err)
}

func (e *SecretError) Unwrap() error { return e.Err }

// ConnectionName is the resource name of a connection id.
func ConnectionName(id string) string { return jobspec.ConnectionPrefix + id }

// connectionAD is the additional data a connection's secret is sealed with.
func connectionAD(id, field string) string { return ConnectionName(id) + "/" + field }

// connectionSpec is a connection as stored: no name, output-only fields or
// secrets.
func connectionSpec(c *intakev1.Connection) ([]byte, error) {
	c = proto.Clone(c).(*intakev1.Connection)
	jobspec.ClearConnectionOutput(c)
	jobspec.ClearSecrets(c)
	b, err := jsonOpts.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode connection: %w", err)
	}
	return b, nil
}

// sealSecrets seals each clear-text secret of connection id. Without a key
// ring (and with a secret to seal) the error is secretbox.ErrNoKey.
func (s *Store) sealSecrets(id string, secrets map[string]string, into map[string]string) error {
	for field, v := range secrets {
		sealed, err := s.ring.SealString(v, connectionAD(id, field))
		if err != nil {
			if errors.Is(err, secretbox.ErrNoKey) {
				return err
			}
			return fmt.Errorf("encrypt the %s of %s: %w", field, ConnectionName(id), err)
		}
		into[field] = sealed
	}
	return nil
}

const connectionColumns = `c.id, c.spec, c.secrets, c.etag, c.create_time, c.update_time,
	ARRAY(SELECT j.id FROM intake.jobs j WHERE j.spec->>'connectionName' = 'connections/' || c.id ORDER BY j.id)`

// connRow is a row of intake.connections.
type connRow struct {
	id     string
	conn   *intakev1.Connection // without secrets, *_set flags set
	sealed map[string]string    // field path → sealed value
}

func scanConnection(row pgx.Row) (*connRow, error) {
	var (
		r                connRow
		spec, secrets    []byte
		etag             string
		created, updated time.Time
		users            []string
	)
	if err := row.Scan(&r.id, &spec, &secrets, &etag, &created, &updated, &users); err != nil {
		return nil, err
	}
	r.conn = &intakev1.Connection{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(spec, r.conn); err != nil {
		return nil, fmt.Errorf("decode connection %s: %w", ConnectionName(r.id), err)
	}
	if err := json.Unmarshal(secrets, &r.sealed); err != nil {
		return nil, fmt.Errorf("decode the secrets of connection %s: %w", ConnectionName(r.id), err)
	}
	if r.sealed == nil {
		r.sealed = map[string]string{}
	}
	c := r.conn
	c.Name, c.Etag = ConnectionName(r.id), etag
	c.CreateTime, c.UpdateTime = timestamppb.New(created), timestamppb.New(updated)
	for _, id := range users {
		c.UsedBy = append(c.UsedBy, JobName(id))
	}
	set := map[string]bool{}
	for field := range r.sealed {
		set[field] = true
	}
	jobspec.MarkSecrets(c, set)
	return &r, nil
}

func readConnection(ctx context.Context, q querier, id, lock string) (*connRow, error) {
	r, err := scanConnection(q.QueryRow(ctx, `SELECT `+connectionColumns+` FROM intake.connections c
		WHERE c.id = $1 AND ($2::text = '' OR c.tenant_id = $2) `+lock, id, TenantOf(ctx)))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read connection %s: %w", ConnectionName(id), err)
	}
	return r, nil
}

// CreateConnection stores c under id, sealing its clear-text secrets.
// ErrAlreadyExists when the id is taken; secretbox.ErrNoKey when c has a
// secret and no key ring is configured.
func (s *Store) CreateConnection(ctx context.Context, id string, c *intakev1.Connection) (*intakev1.Connection, error) {
	sealed := map[string]string{}
	if err := s.sealSecrets(id, jobspec.Secrets(c), sealed); err != nil {
		return nil, err
	}
	spec, err := connectionSpec(c)
	if err != nil {
		return nil, err
	}
	secrets, err := json.Marshal(sealed)
	if err != nil {
		return nil, fmt.Errorf("encode the secrets of connection %s: %w", ConnectionName(id), err)
	}
	now := s.now()
	tenant := tenantOrDefault(ctx)
	_, err = s.pool.Exec(ctx, `INSERT INTO intake.connections (id, spec, secrets, etag, create_time, update_time, tenant_id)
		VALUES ($1, $2::jsonb, $3::jsonb, $4, $5, $5, $6)`, id, string(spec), string(secrets), newEtag(), now, tenant)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		var owner string
		if err := s.pool.QueryRow(ctx, `SELECT tenant_id FROM intake.connections WHERE id = $1`, id).Scan(&owner); err == nil && owner != tenant {
			return nil, ErrIDTaken
		}
		return nil, ErrAlreadyExists
	}
	if err != nil {
		return nil, fmt.Errorf("insert connection %s: %w", ConnectionName(id), err)
	}
	return s.GetConnection(ctx, id)
}

// GetConnection returns a connection without its secrets (their *_set
// flags say which are stored) and the jobs that use it.
func (s *Store) GetConnection(ctx context.Context, id string) (*intakev1.Connection, error) {
	r, err := readConnection(ctx, s.pool, id, "")
	if err != nil {
		return nil, err
	}
	return r.conn, nil
}

// OpenConnection returns a connection with its secrets in clear text, for
// reaching its server. A secret that does not open is a *SecretError.
func (s *Store) OpenConnection(ctx context.Context, id string) (*intakev1.Connection, error) {
	r, err := readConnection(ctx, s.pool, id, "")
	if err != nil {
		return nil, err
	}
	fields := make([]string, 0, len(r.sealed))
	for f := range r.sealed {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	for _, f := range fields {
		v, err := s.ring.OpenString(r.sealed[f], connectionAD(id, f))
		if err != nil {
			return nil, &SecretError{Resource: ConnectionName(id), Field: f, Err: err}
		}
		jobspec.SetSecret(r.conn, f, v)
	}
	return r.conn, nil
}

// ConnectionSecretKeys returns the key id of each sealed secret of a
// connection, by field path (for tests and operators checking a rotation).
func (s *Store) ConnectionSecretKeys(ctx context.Context, id string) (map[string]string, error) {
	r, err := readConnection(ctx, s.pool, id, "")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for f, v := range r.sealed {
		k, err := secretbox.KeyID(v)
		if err != nil {
			return nil, &SecretError{Resource: ConnectionName(id), Field: f, Err: err}
		}
		out[f] = k
	}
	return out, nil
}

// ListConnections returns up to limit connections after the cursor, oldest
// first, without secrets.
func (s *Store) ListConnections(ctx context.Context, after *Cursor, limit int) ([]*intakev1.Connection, error) {
	var (
		rows pgx.Rows
		err  error
	)
	if after == nil {
		rows, err = s.pool.Query(ctx, `SELECT `+connectionColumns+` FROM intake.connections c
			WHERE ($2::text = '' OR c.tenant_id = $2)
			ORDER BY c.create_time, c.id LIMIT $1`, limit, TenantOf(ctx))
	} else {
		rows, err = s.pool.Query(ctx, `SELECT `+connectionColumns+` FROM intake.connections c
			WHERE (c.create_time, c.id) > ($1, $2) AND ($4::text = '' OR c.tenant_id = $4)
			ORDER BY c.create_time, c.id LIMIT $3`, after.Time, after.ID, limit, TenantOf(ctx))
	}
	if err != nil {
		return nil, fmt.Errorf("list connections: %w", err)
	}
	defer rows.Close()
	var out []*intakev1.Connection
	for rows.Next() {
		r, err := scanConnection(rows)
		if err != nil {
			return nil, fmt.Errorf("list connections: %w", err)
		}
		out = append(out, r.conn)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list connections: %w", err)
	}
	return out, nil
}

// UpdateConnection locks the connection and lets update change it: cur is
// the stored connection (no secrets; *_set flags set) and is changed in
// place, a non-empty secret in it being a new one to seal; update returns
// the fields of the stored secrets to keep (others are dropped). An error
// from update aborts. The result gets a new etag and update time.
func (s *Store) UpdateConnection(ctx context.Context, id string, update func(cur *intakev1.Connection, stored map[string]bool) (keep map[string]bool, err error)) (*intakev1.Connection, error) {
	name := ConnectionName(id)
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("update connection %s: %w", name, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit it is a no-op
	r, err := readConnection(ctx, tx, id, "FOR UPDATE OF c")
	if err != nil {
		return nil, err
	}
	stored := map[string]bool{}
	for f := range r.sealed {
		stored[f] = true
	}
	keep, err := update(r.conn, stored)
	if err != nil {
		return nil, err
	}
	sealed := map[string]string{}
	for f := range keep {
		if v, ok := r.sealed[f]; ok {
			sealed[f] = v
		}
	}
	if err := s.sealSecrets(id, jobspec.Secrets(r.conn), sealed); err != nil {
		return nil, err
	}
	spec, err := connectionSpec(r.conn)
	if err != nil {
		return nil, err
	}
	secrets, err := json.Marshal(sealed)
	if err != nil {
		return nil, fmt.Errorf("encode the secrets of connection %s: %w", name, err)
	}
	if _, err := tx.Exec(ctx, `UPDATE intake.connections SET spec = $2::jsonb, secrets = $3::jsonb, etag = $4, update_time = $5
		WHERE id = $1`, id, string(spec), string(secrets), newEtag(), s.now()); err != nil {
		return nil, fmt.Errorf("update connection %s: %w", name, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("update connection %s: %w", name, err)
	}
	return s.GetConnection(ctx, id)
}

// DeleteConnection deletes a connection no job uses; a
// *ConnectionInUseError (ErrConnectionInUse) names the jobs that do. The
// row lock it takes makes a job saved at the same time with this
// connection (which takes a share lock, see lockJobConnection) either come
// first, and refuse the delete, or find the connection gone.
func (s *Store) DeleteConnection(ctx context.Context, id string) error {
	name := ConnectionName(id)
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("delete connection %s: %w", name, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit it is a no-op
	r, err := readConnection(ctx, tx, id, "FOR UPDATE OF c")
	if err != nil {
		return err
	}
	// Read the users again after the lock: a job saved meanwhile committed.
	var users []string
	if err := tx.QueryRow(ctx, `SELECT ARRAY(SELECT id FROM intake.jobs WHERE spec->>'connectionName' = $1 ORDER BY id)`,
		name).Scan(&users); err != nil {
		return fmt.Errorf("delete connection %s: find the jobs that use it: %w", name, err)
	}
	if len(users) > 0 {
		e := &ConnectionInUseError{}
		for _, u := range users {
			e.Jobs = append(e.Jobs, JobName(u))
		}
		return e
	}
	if _, err := tx.Exec(ctx, `DELETE FROM intake.connections WHERE id = $1`, r.id); err != nil {
		return fmt.Errorf("delete connection %s: %w", name, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("delete connection %s: %w", name, err)
	}
	return nil
}

// JobConnectionCheck checks, as a job is saved, the stored connection it
// names: conn is that connection (no secrets), nil when it does not exist.
// Its error aborts the save and is returned as is.
type JobConnectionCheck func(job *intakev1.Job, conn *intakev1.Connection) error

// OnSaveJob sets the check CreateJob and UpdateJob run on a job that names
// a stored connection, in their transaction, with the connection's row
// share-locked (so it cannot be deleted before the job is saved). Without
// one, a missing connection is ErrNotFound.
func (s *Store) OnSaveJob(check JobConnectionCheck) { s.onSaveJob = check }

// lockJobConnection runs the save check of a job that names a stored
// connection.
func (s *Store) lockJobConnection(ctx context.Context, q querier, job *intakev1.Job) error {
	name := job.GetConnectionName()
	if name == "" {
		return nil
	}
	var conn *intakev1.Connection
	if id, err := jobspec.ParseConnectionName(name); err == nil {
		r, err := readConnection(ctx, q, id, "FOR SHARE OF c")
		switch {
		case err == nil:
			conn = r.conn
		case !errors.Is(err, ErrNotFound):
			return err
		}
	}
	if s.onSaveJob != nil {
		return s.onSaveJob(job, conn)
	}
	if conn == nil {
		return fmt.Errorf("connection %s of job %s: %w", name, job.GetName(), ErrNotFound)
	}
	return nil
}

package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/timestamppb"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// Access control: the API tokens of intake.access_tokens
// (pkg/schema/migrations/00012_access.sql). Only the SHA-256 of each token
// is stored; the token is shown once, by the API, when it is made.

// AccessTokenName is the resource name of an API token: "tokens/{id}".
func AccessTokenName(id string) string { return "tokens/" + id }

// TenantName is the resource name of a tenant: "tenants/{id}".
func TenantName(id string) string { return "tenants/" + id }

// roleNames are the roles as the role column spells them.
var roleNames = map[intakev1.Role]string{
	intakev1.Role_ROLE_ADMIN:   "admin",
	intakev1.Role_ROLE_EDITOR:  "editor",
	intakev1.Role_ROLE_VIEWER:  "viewer",
	intakev1.Role_ROLE_TRIGGER: "trigger",
	intakev1.Role_ROLE_WORKER:  "worker",
}

func roleFromName(s string) intakev1.Role {
	for r, n := range roleNames {
		if n == s {
			return r
		}
	}
	return intakev1.Role_ROLE_UNSPECIFIED
}

// NewAccessToken is what CreateAccessToken stores.
type NewAccessToken struct {
	ID          string
	TenantID    string
	Role        intakev1.Role
	JobIDs      []string
	DisplayName string
	// Hash is the SHA-256 of the token.
	Hash       []byte
	CreatedBy  string
	ExpireTime *time.Time
}

// AccessTokenRecord is a stored token with its hash, for authentication.
type AccessTokenRecord struct {
	ID           string
	TenantID     string
	Role         intakev1.Role
	JobIDs       []string
	DisplayName  string
	Hash         []byte
	CreateTime   time.Time
	ExpireTime   *time.Time
	RevokeTime   *time.Time
	LastUsedTime *time.Time
}

// Proto is the token as the API shows it: never its hash or secret.
func (r *AccessTokenRecord) Proto() *intakev1.AccessToken {
	jobs := make([]string, len(r.JobIDs))
	for i, j := range r.JobIDs {
		jobs[i] = JobName(j)
	}
	return &intakev1.AccessToken{
		Name:         AccessTokenName(r.ID),
		DisplayName:  r.DisplayName,
		Role:         r.Role,
		Tenant:       TenantName(r.TenantID),
		Jobs:         jobs,
		CreateTime:   timestamppb.New(r.CreateTime),
		ExpireTime:   ts(r.ExpireTime),
		RevokeTime:   ts(r.RevokeTime),
		LastUsedTime: ts(r.LastUsedTime),
	}
}

const accessTokenColumns = `id, tenant_id, role, jobs, display_name, hash, create_time, expire_time, revoke_time, last_used_time`

func scanAccessToken(row pgx.Row) (*AccessTokenRecord, error) {
	var (
		r    AccessTokenRecord
		role string
	)
	if err := row.Scan(&r.ID, &r.TenantID, &role, &r.JobIDs, &r.DisplayName, &r.Hash, &r.CreateTime,
		&r.ExpireTime, &r.RevokeTime, &r.LastUsedTime); err != nil {
		return nil, err
	}
	r.Role = roleFromName(role)
	return &r, nil
}

// CreateAccessToken stores a new API token by the SHA-256 of its secret
// and returns it as the API shows it (without the secret).
func (s *Store) CreateAccessToken(ctx context.Context, t NewAccessToken) (*intakev1.AccessToken, error) {
	role, ok := roleNames[t.Role]
	if !ok {
		return nil, fmt.Errorf("create token %s: unknown role %v", AccessTokenName(t.ID), t.Role)
	}
	jobs := t.JobIDs
	if jobs == nil {
		jobs = []string{}
	}
	rec, err := scanAccessToken(s.pool.QueryRow(ctx, `INSERT INTO intake.access_tokens
		(id, tenant_id, role, jobs, display_name, hash, created_by, create_time, expire_time)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING `+accessTokenColumns,
		t.ID, t.TenantID, role, jobs, t.DisplayName, t.Hash, t.CreatedBy, s.now(), t.ExpireTime))
	if err != nil {
		return nil, fmt.Errorf("create token %s: %w", AccessTokenName(t.ID), err)
	}
	return rec.Proto(), nil
}

// AccessToken returns the stored token with id, hash included;
// ErrNotFound when there is none.
func (s *Store) AccessToken(ctx context.Context, id string) (*AccessTokenRecord, error) {
	rec, err := scanAccessToken(s.pool.QueryRow(ctx, `SELECT `+accessTokenColumns+` FROM intake.access_tokens WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read token %s: %w", AccessTokenName(id), err)
	}
	return rec, nil
}

// ListAccessTokens returns up to limit tokens of a tenant after the
// cursor, oldest first. Without inactive, revoked tokens and those expired
// at now are left out.
func (s *Store) ListAccessTokens(ctx context.Context, tenantID string, after *Cursor, limit int, inactive bool, now time.Time) ([]*intakev1.AccessToken, error) {
	q := `SELECT ` + accessTokenColumns + ` FROM intake.access_tokens WHERE tenant_id = $1`
	args := []any{tenantID}
	if !inactive {
		args = append(args, now)
		q += fmt.Sprintf(` AND revoke_time IS NULL AND (expire_time IS NULL OR expire_time > $%d)`, len(args))
	}
	if after != nil {
		args = append(args, after.Time, after.ID)
		q += fmt.Sprintf(` AND (create_time, id) > ($%d, $%d)`, len(args)-1, len(args))
	}
	args = append(args, limit)
	q += fmt.Sprintf(` ORDER BY create_time, id LIMIT $%d`, len(args))
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list the tokens of %s: %w", TenantName(tenantID), err)
	}
	defer rows.Close()
	var out []*intakev1.AccessToken
	for rows.Next() {
		rec, err := scanAccessToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list the tokens of %s: %w", TenantName(tenantID), err)
		}
		out = append(out, rec.Proto())
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list the tokens of %s: %w", TenantName(tenantID), err)
	}
	return out, nil
}

// RevokeAccessToken revokes a token of a tenant (of any tenant when
// tenantID is empty) and returns it; revoking a revoked token changes
// nothing. ErrNotFound when there is no such token.
func (s *Store) RevokeAccessToken(ctx context.Context, id, tenantID string) (*intakev1.AccessToken, error) {
	rec, err := scanAccessToken(s.pool.QueryRow(ctx, `UPDATE intake.access_tokens SET revoke_time = coalesce(revoke_time, $3)
		WHERE id = $1 AND ($2 = '' OR tenant_id = $2) RETURNING `+accessTokenColumns, id, tenantID, s.now()))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("revoke token %s: %w", AccessTokenName(id), err)
	}
	return rec.Proto(), nil
}

// AccessTokenUsed records that a token authenticated a call at t, unless
// its last use is already less than every ago (so that a busy token does
// not write on every call).
func (s *Store) AccessTokenUsed(ctx context.Context, id string, t time.Time, every time.Duration) error {
	if _, err := s.pool.Exec(ctx, `UPDATE intake.access_tokens SET last_used_time = $2
		WHERE id = $1 AND (last_used_time IS NULL OR last_used_time < $3)`, id, t, t.Add(-every)); err != nil {
		return fmt.Errorf("record the use of token %s: %w", AccessTokenName(id), err)
	}
	return nil
}

// MissingJobs returns the ids among ids that name no job, in their order.
func (s *Store) MissingJobs(ctx context.Context, ids []string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM intake.jobs WHERE id = ANY($1) AND ($2::text = '' OR tenant_id = $2)`, ids, TenantOf(ctx))
	if err != nil {
		return nil, fmt.Errorf("look up jobs %s: %w", strings.Join(ids, ", "), err)
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("look up jobs %s: %w", strings.Join(ids, ", "), err)
	}
	have := make(map[string]bool, len(found))
	for _, id := range found {
		have[id] = true
	}
	var missing []string
	for _, id := range ids {
		if !have[id] {
			missing = append(missing, id)
		}
	}
	return missing, nil
}

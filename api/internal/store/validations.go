package store

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/intakehq/intake/api/internal/jobspec"
)

// ValidationTTL is how long a validation token can be used; older ones are
// refused and deleted.
const ValidationTTL = 24 * time.Hour

// Validation is a passing ValidateMapping.
type Validation struct {
	Token string
	// JobID is the job validated; empty for a job not saved yet.
	JobID string
	// Hash is the jobspec.MappingHash of what was validated.
	Hash string
	// Columns is the file's header.
	Columns    []string
	CreateTime time.Time
}

// newToken returns a fresh validation token: 24 random bytes, URL-safe base64.
func newToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make a validation token: %w", err)
	}
	return "v1." + base64.RawURLEncoding.EncodeToString(b), nil
}

// CreateValidation stores a passing validation of a mapping (its hash) with
// the file's columns and returns it with its new token. jobID is empty for
// a job not saved yet. Expired validations are deleted on the way.
func (s *Store) CreateValidation(ctx context.Context, jobID, hash string, columns []string) (*Validation, error) {
	token, err := newToken()
	if err != nil {
		return nil, err
	}
	if columns == nil {
		columns = []string{}
	}
	cols, err := json.Marshal(columns)
	if err != nil {
		return nil, fmt.Errorf("encode columns: %w", err)
	}
	now := s.now()
	var job *string
	if jobID != "" {
		job = &jobID
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO intake.validations (token, job_id, mapping_hash, columns, create_time, tenant_id)
		VALUES ($1, $2, $3, $4::jsonb, $5, $6)`, token, job, hash, string(cols), now, tenantOrDefault(ctx)); err != nil {
		return nil, fmt.Errorf("store the validation: %w", err)
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM intake.validations WHERE create_time < $1`, now.Add(-ValidationTTL)); err != nil {
		return nil, fmt.Errorf("delete expired validations: %w", err)
	}
	return &Validation{Token: token, JobID: jobID, Hash: hash, Columns: columns, CreateTime: now}, nil
}

// GetValidation returns the validation of a token; ErrNotFound for an
// unknown token, ErrExpired for one older than ValidationTTL.
func (s *Store) GetValidation(ctx context.Context, token string) (*Validation, error) {
	v := &Validation{Token: token}
	var (
		job  *string
		cols []byte
	)
	err := s.pool.QueryRow(ctx, `SELECT job_id, mapping_hash, columns, create_time FROM intake.validations
		WHERE token = $1 AND ($2::text = '' OR tenant_id = $2)`, token, TenantOf(ctx)).Scan(&job, &v.Hash, &cols, &v.CreateTime)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read validation: %w", err)
	}
	if job != nil {
		v.JobID = *job
	}
	if err := json.Unmarshal(cols, &v.Columns); err != nil {
		return nil, fmt.Errorf("decode the columns of a validation: %w", err)
	}
	if s.now().Sub(v.CreateTime) > ValidationTTL {
		return v, ErrExpired
	}
	return v, nil
}

// MarkValidated records that job id's mapping passed validation v, when
// the job's stored object and mapping are still the ones validated (same
// hash). It reports whether it marked the job; ErrNotFound when the job is
// gone. The job's etag does not change: only output-only fields do.
func (s *Store) MarkValidated(ctx context.Context, id string, v *Validation) (bool, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("mark job %s validated: %w", id, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit it is a no-op
	job, _, err := getJobState(ctx, tx, id, "FOR UPDATE OF j")
	if err != nil {
		return false, err
	}
	if jobspec.MappingHash(job) != v.Hash {
		return false, nil
	}
	cols, err := encodeColumns(v.Columns)
	if err != nil {
		return false, err
	}
	if _, err := tx.Exec(ctx, `UPDATE intake.jobs SET validated_hash = $2, validate_time = $3, validated_columns = $4::jsonb
		WHERE id = $1`, id, v.Hash, v.CreateTime, cols); err != nil {
		return false, fmt.Errorf("mark job %s validated: %w", id, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("mark job %s validated: %w", id, err)
	}
	return true, nil
}

package api

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/intakehq/intake/api/internal/jobspec"
	"github.com/intakehq/intake/api/internal/store"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// The save rule: a job saved enabled needs a mapping that passed
// ValidateMapping — a validation_token of its exact object and mapping, or
// an unchanged mapping that passed before. Changing the mapping (or the
// object) without a token clears the job's validation. Disabled jobs may be
// saved unvalidated.

// errNotValidated refuses to save an enabled job whose mapping has not passed.
func errNotValidated() error {
	return failedPrecondition("MAPPING_NOT_VALIDATED", "job.mapping",
		"the mapping has not passed validation: call ValidateMapping and pass its validation_token")
}

// validationToken reads the validation a save passes; nil when token is empty.
func (s *Server) validationToken(ctx context.Context, token string) (*store.Validation, error) {
	if token == "" {
		return nil, nil
	}
	v, err := s.store.GetValidation(ctx, token)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, badField("validation_token", "not a token of ValidateMapping (tokens last %v): call ValidateMapping and pass its validation_token", store.ValidationTTL)
	case errors.Is(err, store.ErrExpired):
		return nil, failedPrecondition("VALIDATION_EXPIRED", "validation_token",
			fmt.Sprintf("the validation of %s is older than %v: call ValidateMapping again", v.CreateTime.Format(time.RFC3339), store.ValidationTTL))
	case err != nil:
		return nil, s.storeError(ctx, "read", "validation_token", err)
	}
	return v, nil
}

// tokenFits checks that a validation token was issued for this job's
// object and mapping (hash), and for this job (jobID) or a job not saved yet.
func tokenFits(tok *store.Validation, jobID, hash string) error {
	if tok.JobID != "" && tok.JobID != jobID {
		return failedPrecondition("VALIDATION_MISMATCH", "validation_token",
			fmt.Sprintf("the token is of a validation of job %s, not of this job: call ValidateMapping for this job", store.JobName(tok.JobID)))
	}
	if tok.Hash != hash {
		return failedPrecondition("VALIDATION_MISMATCH", "validation_token",
			"the token is of a validation of another object or mapping than the one saved: call ValidateMapping with this mapping and pass its validation_token")
	}
	return nil
}

// createValidation is the validation state a new job (id; "" when the id
// is generated) is stored with, following the save rule.
func (s *Server) createValidation(ctx context.Context, token, id string, job *intakev1.Job) (*store.JobValidation, error) {
	tok, err := s.validationToken(ctx, token)
	if err != nil {
		return nil, err
	}
	if tok == nil {
		if job.GetEnabled() {
			return nil, errNotValidated()
		}
		return nil, nil
	}
	if err := tokenFits(tok, id, jobspec.MappingHash(job)); err != nil {
		return nil, err
	}
	return &store.JobValidation{Hash: tok.Hash, Time: tok.CreateTime, Columns: tok.Columns}, nil
}

// applyValidation updates the validation state v of job id after an update
// changed job, whose mapping hashed to before, following the save rule;
// tok is the validation the update passes, if any.
func applyValidation(id string, job *intakev1.Job, v *store.JobValidation, before string, tok *store.Validation) error {
	after := jobspec.MappingHash(job)
	switch {
	case tok != nil:
		if err := tokenFits(tok, id, after); err != nil {
			return err
		}
		v.Hash, v.Time, v.Columns = tok.Hash, tok.CreateTime, tok.Columns
	case after != before:
		// The columns of the last passing validation stay, for telling
		// the columns new in the file.
		v.Hash, v.Time = "", time.Time{}
	}
	if job.GetEnabled() && !v.Valid(after) {
		return errNotValidated()
	}
	return nil
}

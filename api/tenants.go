package api

import (
	"context"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/intakehq/intake/api/internal/store"
)

// Tenants. Every job, connection, custom attribute, run and object row
// belongs to a tenant, the tenant of the token that made it
// (pkg/schema/migrations/00013_tenants.sql). The interceptor (auth.go)
// scopes each call of a caller of a tenant to it (store.WithTenant), so
// the store reads and changes only that tenant's rows: to a token of
// tenant B, a job, run, connection, attribute or token of tenant A does
// not exist (NotFound, with the message of a missing one, never
// PermissionDenied), and lists hold nothing of A. Each tenant's object
// rows are in a PostgreSQL schema of its own ("objects" for the default
// tenant, "objects_<tenant>" for another), made with every object table
// when the tenant is first named (CreateToken of the bootstrap admin).
//
// The workers' credential (ROLE_WORKER) serves every tenant: its calls are
// not scoped (StageService, and ListJobs for the scheduler). A trigger
// token acts in its job's tenant (trigger.go). Without authentication
// (Config.Auth nil, tests) calls are not scoped and new rows belong to the
// default tenant.
//
// Job and connection ids are unique across tenants, so the workers' names
// ("jobs/{job}/runs/{run}") need no tenant. Creating a job or connection
// with an id that another tenant uses fails with AlreadyExists ("… id x is
// taken"): the one sign of another tenant's resource, which generated ids
// never meet (README, "Tenants").

// scopeToTenant returns ctx scoped to the tenant of an authenticated
// caller, making the tenant first if it does not exist yet (a tenant named
// by a token made before tenants had tables of their own). The workers'
// calls stay unscoped.
func (s *Server) scopeToTenant(ctx context.Context, c Caller) (context.Context, error) {
	if c.Role == roleWorker || c.Tenant == "" {
		return ctx, nil
	}
	id, ok := strings.CutPrefix(c.Tenant, "tenants/")
	if !ok || id == "" {
		return ctx, status.Errorf(codes.Internal, "token %s names no tenant", c.TokenName())
	}
	if _, err := s.store.EnsureTenant(ctx, id); err != nil {
		return ctx, s.storeError(ctx, "prepare", "tenant "+c.Tenant, err)
	}
	return store.WithTenant(ctx, id), nil
}

// runTenant is the tenant of a run for its run request: the call's, or
// the one stored with the run; "" (the loader then looks it up) when it
// cannot be read.
func (s *Server) runTenant(ctx context.Context, run string) string {
	if t := store.TenantOf(ctx); t != "" {
		return t
	}
	jobID, runID, err := parseRunName("run", run)
	if err != nil {
		return ""
	}
	t, err := s.store.RunTenant(ctx, jobID, runID)
	if err != nil {
		s.log.WarnContext(ctx, "could not read the tenant of a run", "run", run, "error", err)
		return ""
	}
	return t
}

// idTaken is the AlreadyExists of an id another tenant uses; what is
// "job jobs/x" or "connection connections/x".
func idTaken(what string) error {
	kind, name, _ := strings.Cut(what, " ")
	if _, id, ok := strings.Cut(name, "/"); ok {
		name = id
	}
	return status.Errorf(codes.AlreadyExists, "%s id %s is taken; choose another id or leave it empty for a generated one", kind, name)
}

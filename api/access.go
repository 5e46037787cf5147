package api

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/intakehq/intake/api/internal/store"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// AccessService: the API tokens (see auth.go for how calls use them).
// Admins make, list and revoke the tokens of their tenant; any caller may
// ask who it is.

// accessService implements intakev1.AccessServiceServer.
type accessService struct {
	intakev1.UnimplementedAccessServiceServer
	s *Server
}

// maxTokenDisplayName bounds AccessToken.display_name, in characters.
const maxTokenDisplayName = 200

// tenantIDPattern is a tenant's id: lowercase letters, digits and hyphens,
// starting with a letter.
var tenantIDPattern = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

// tokenIDPattern is the id of a token made by CreateToken (newTokenID).
var tokenIDPattern = regexp.MustCompile(`^[0-9a-f]{12}$`)

// parseTenant returns the id of "tenants/{tenant}".
func parseTenant(field, name string) (string, error) {
	id, ok := strings.CutPrefix(name, "tenants/")
	if !ok || !tenantIDPattern.MatchString(id) {
		return "", badField(field, "%q is not a tenant (tenants/{tenant}: lowercase letters, digits and -, starting with a letter, at most 63)", name)
	}
	return id, nil
}

// parseAccessTokenName returns the id of "tokens/{token}".
func parseAccessTokenName(field, name string) (string, error) {
	id, ok := strings.CutPrefix(name, "tokens/")
	if !ok || !tokenIDPattern.MatchString(id) {
		return "", badField(field, "%q is not a token name (tokens/{token}, as ListTokens shows)", name)
	}
	return id, nil
}

// newAccessToken returns a new token for id and the SHA-256 that is stored.
func newAccessToken(id string) (token string, hash []byte) {
	b := make([]byte, triggerTokenBytes)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	token = TriggerTokenPrefix + id + "_" + base64.RawURLEncoding.EncodeToString(b)
	return token, hashToken(token)
}

// callerOrDefault is the caller of a call; without authentication, an
// admin of the default tenant that is not the bootstrap token.
func callerOrDefault(ctx context.Context) Caller {
	if c, ok := CallerFrom(ctx); ok {
		return c
	}
	return Caller{Tenant: DefaultTenant, Role: roleAdmin}
}

// CreateToken makes a token in the caller's tenant (the bootstrap admin
// may name another); its secret is in the response only.
func (a *accessService) CreateToken(ctx context.Context, req *intakev1.CreateTokenRequest) (*intakev1.AccessToken, error) {
	s := a.s
	caller := callerOrDefault(ctx)
	t := req.GetToken()
	if t == nil {
		return nil, badField("token", "is required: the token to make (role, and jobs for a trigger token)")
	}
	tenant := caller.Tenant
	if t.GetTenant() != "" && t.GetTenant() != caller.Tenant {
		if _, err := parseTenant("token.tenant", t.GetTenant()); err != nil {
			return nil, err
		}
		if !caller.Bootstrap {
			return nil, status.Errorf(codes.PermissionDenied,
				"only the bootstrap admin token may make tokens of another tenant than %s", caller.Tenant)
		}
		tenant = t.GetTenant()
	}
	tenantID, err := parseTenant("token.tenant", tenant)
	if err != nil {
		return nil, err
	}
	// A tenant named for the first time is made now: its row and its
	// schema with every object table (tenants.go).
	made, err := s.store.EnsureTenant(ctx, tenantID)
	if err != nil {
		return nil, s.storeError(ctx, "create", "tenant "+tenant, err)
	}
	if made {
		s.log.InfoContext(ctx, "tenant created", "tenant", tenant, "schema", store.ObjectSchemaOf(tenantID), "by", caller.TokenName())
	}
	switch t.GetRole() {
	case roleAdmin, roleEditor, roleViewer, roleTrigger:
	case roleWorker:
		return nil, badField("token.role", "ROLE_WORKER tokens come from the server's configuration (--worker-token-file or INTAKE_WORKER_TOKEN), not from CreateToken")
	case intakev1.Role_ROLE_UNSPECIFIED:
		return nil, badField("token.role", "is required: ROLE_ADMIN, ROLE_EDITOR, ROLE_VIEWER or ROLE_TRIGGER")
	default:
		return nil, badField("token.role", "%d is not a role", t.GetRole())
	}
	var jobIDs []string
	if t.GetRole() == roleTrigger {
		if len(t.GetJobs()) == 0 {
			return nil, badField("token.jobs", "a ROLE_TRIGGER token needs the jobs it may trigger (jobs/{job})")
		}
		seen := map[string]bool{}
		for i, j := range t.GetJobs() {
			id, err := parseJobName(fmt.Sprintf("token.jobs[%d]", i), j)
			if err != nil {
				return nil, err
			}
			if !seen[id] {
				seen[id] = true
				jobIDs = append(jobIDs, id)
			}
		}
		missing, err := s.store.MissingJobs(store.WithTenant(ctx, tenantID), jobIDs) // the token's tenant's jobs
		if err != nil {
			return nil, s.storeError(ctx, "look up", "the jobs of the token", err)
		}
		if len(missing) > 0 {
			names := make([]string, len(missing))
			for i, m := range missing {
				names[i] = store.JobName(m)
			}
			return nil, status.Errorf(codes.NotFound, "token.jobs: no such job: %s", strings.Join(names, ", "))
		}
	} else if len(t.GetJobs()) > 0 {
		return nil, badField("token.jobs", "only a ROLE_TRIGGER token names jobs; a %s token may call what its role allows", t.GetRole())
	}
	dn := t.GetDisplayName()
	if utf8.RuneCountInString(dn) > maxTokenDisplayName || !utf8.ValidString(dn) ||
		strings.ContainsFunc(dn, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return nil, badField("token.display_name", "must be printable text of at most %d characters", maxTokenDisplayName)
	}
	var expire *time.Time
	if t.GetExpireTime() != nil {
		if err := t.GetExpireTime().CheckValid(); err != nil {
			return nil, badField("token.expire_time", "%v", err)
		}
		e := t.GetExpireTime().AsTime().UTC().Truncate(time.Microsecond)
		if !e.After(time.Now()) {
			return nil, badField("token.expire_time", "%s is not in the future", e.Format(time.RFC3339))
		}
		expire = &e
	}
	id := newTokenID()
	secret, hash := newAccessToken(id)
	out, err := s.store.CreateAccessToken(ctx, store.NewAccessToken{
		ID: id, TenantID: tenantID, Role: t.GetRole(), JobIDs: jobIDs, DisplayName: dn,
		Hash: hash, CreatedBy: caller.TokenID, ExpireTime: expire,
	})
	if err != nil {
		return nil, s.storeError(ctx, "create", "a token", err)
	}
	out.Token = secret
	s.log.InfoContext(ctx, "token created", "token", out.GetName(), "tenant", out.GetTenant(), "role", roleName(out.GetRole()),
		"jobs", out.GetJobs(), "expire_time", expire, "by", caller.TokenName())
	return out, nil
}

// ListTokens lists the tokens of the caller's tenant, without secrets.
func (a *accessService) ListTokens(ctx context.Context, req *intakev1.ListTokensRequest) (*intakev1.ListTokensResponse, error) {
	s := a.s
	caller := callerOrDefault(ctx)
	tenantID, err := parseTenant("tenant", caller.Tenant)
	if err != nil {
		return nil, err
	}
	n, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	scope := fmt.Sprintf("%s:%t", caller.Tenant, req.GetShowInactive()) // no "|": it separates the page token's parts
	after, err := decodePageToken("tokens", scope, req.GetPageToken())
	if err != nil {
		return nil, err
	}
	toks, err := s.store.ListAccessTokens(ctx, tenantID, after, n+1, req.GetShowInactive(), time.Now())
	if err != nil {
		return nil, s.storeError(ctx, "list", "the tokens of "+caller.Tenant, err)
	}
	resp := &intakev1.ListTokensResponse{Tokens: toks}
	if len(toks) > n {
		resp.Tokens = toks[:n]
		last := toks[n-1]
		resp.NextPageToken = encodePageToken("tokens", scope, store.Cursor{
			Time: last.GetCreateTime().AsTime(), ID: strings.TrimPrefix(last.GetName(), "tokens/")})
	}
	return resp, nil
}

// RevokeToken revokes a token of the caller's tenant (the bootstrap admin:
// of any tenant); calls with it fail from now on. Revoking a revoked token
// succeeds and changes nothing.
func (a *accessService) RevokeToken(ctx context.Context, req *intakev1.RevokeTokenRequest) (*intakev1.AccessToken, error) {
	s := a.s
	caller := callerOrDefault(ctx)
	id, err := parseAccessTokenName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	tenantID := ""
	if !caller.Bootstrap {
		if tenantID, err = parseTenant("tenant", caller.Tenant); err != nil {
			return nil, err
		}
	}
	out, err := s.store.RevokeAccessToken(ctx, id, tenantID)
	if err != nil {
		return nil, s.storeError(ctx, "revoke", "token "+req.GetName(), err)
	}
	s.log.InfoContext(ctx, "token revoked", "token", out.GetName(), "tenant", out.GetTenant(), "by", caller.TokenName())
	return out, nil
}

// WhoAmI describes the calling token.
func (a *accessService) WhoAmI(ctx context.Context, _ *intakev1.WhoAmIRequest) (*intakev1.AccessToken, error) {
	c, ok := CallerFrom(ctx)
	if !ok {
		return nil, status.Error(codes.FailedPrecondition, "authentication is off on this server: calls carry no identity")
	}
	if c.Bootstrap || c.TokenID == workerTokenID {
		return &intakev1.AccessToken{
			Name: c.TokenName(), Role: c.Role, Tenant: c.Tenant, Bootstrap: c.Bootstrap,
			DisplayName: map[bool]string{true: "bootstrap admin token of the server's configuration", false: "worker token of the server's configuration"}[c.Bootstrap],
		}, nil
	}
	rec, err := a.s.store.AccessToken(ctx, c.TokenID)
	if err != nil {
		return nil, a.s.storeError(ctx, "read", "token "+c.TokenName(), err)
	}
	return rec.Proto(), nil
}

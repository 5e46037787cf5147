package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/grpc/status"

	"github.com/intakehq/intake/api/internal/store"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// Authentication and authorisation of every call (Config.Auth).
//
// A caller sends "authorization: Bearer <token>": gRPC metadata, or the
// HTTP header Authorization of the HTTP API (http.go), which vanguard
// passes on as the same metadata. The token is one of
//   - the bootstrap admin token of the server's configuration
//     (AuthConfig.BootstrapToken): ROLE_ADMIN of tenants/default, and the
//     only caller that may make tokens of other tenants;
//   - a worker token of the configuration (AuthConfig.WorkerTokens):
//     ROLE_WORKER, what the pipeline's workers send;
//   - an API token made by CreateToken (access.go), "itk_<id>_<secret>":
//     found by id, its SHA-256 compared in constant time, refused when
//     revoked or expired.
//
// A call without a valid token ends Unauthenticated, saying why (no token,
// unknown, revoked, expired), never echoing the token. The role then
// decides, per method (methodRules): a method a role may not call ends
// PermissionDenied, naming the role and the method. TriggerJob also takes
// the per-job trigger tokens of trigger.go, as before: a token that is not
// an API token (nor the configuration's) goes to TriggerJob's own check.
//
// Health checks stay open (Kubernetes probes them without credentials);
// server reflection needs a token of any role: it is for people with
// grpcurl, who can send one (-H "authorization: Bearer $TOKEN"), and it
// need not describe the API to whoever reaches the port.

// MinConfiguredTokenLength is the shortest bootstrap or worker token the
// configuration may hold: such a token is a password, so it must not be
// guessable.
const MinConfiguredTokenLength = 32

// AuthConfig is the authentication of the API (Config.Auth).
type AuthConfig struct {
	// BootstrapToken is an admin token of the tenant "tenants/default"
	// that the server takes from its configuration, to make the first
	// tokens with (and tokens of other tenants: only it may). Required, at
	// least MinConfiguredTokenLength characters; any string will do, e.g.
	// `openssl rand -base64 32`.
	BootstrapToken string
	// WorkerTokens are accepted as ROLE_WORKER: the credential the
	// pipeline's workers (scheduler, fetcher, mapper, loader) send. Several
	// allow a rotation: add the new one, move the workers, drop the old
	// one. Each at least MinConfiguredTokenLength characters. None: no
	// worker can report to this API.
	WorkerTokens []string
}

// validate returns the first problem of an AuthConfig; a nil one (no
// authentication) has none.
func (a *AuthConfig) validate() error {
	if a == nil {
		return nil
	}
	if a.BootstrapToken == "" {
		return errors.New("api: Auth.BootstrapToken is required when authentication is on (an admin token to make the first tokens with)")
	}
	if len(a.BootstrapToken) < MinConfiguredTokenLength {
		return fmt.Errorf("api: Auth.BootstrapToken is %d characters: at least %d are required (e.g. openssl rand -base64 32)",
			len(a.BootstrapToken), MinConfiguredTokenLength)
	}
	for i, w := range a.WorkerTokens {
		if len(w) < MinConfiguredTokenLength {
			return fmt.Errorf("api: Auth.WorkerTokens[%d] is %d characters: at least %d are required (e.g. openssl rand -base64 32)",
				i, len(w), MinConfiguredTokenLength)
		}
		if w == a.BootstrapToken {
			return fmt.Errorf("api: Auth.WorkerTokens[%d] is the bootstrap token: give the workers a token of their own", i)
		}
	}
	return nil
}

// DefaultTenant is the tenant of the bootstrap admin token, and of the
// tokens it makes unless told otherwise.
const DefaultTenant = "tenants/default"

// Resource names of the configured credentials (WhoAmI, logs).
const (
	bootstrapTokenID = "bootstrap"
	workerTokenID    = "worker"
)

// Caller is who makes a call, as its token says. The handlers find it in
// their context with CallerFrom.
type Caller struct {
	// TokenID is the token's id ("tokens/{TokenID}"): "bootstrap" and
	// "worker" for the credentials of the configuration.
	TokenID string
	// Tenant is the tenant the caller acts in, "tenants/{tenant}"; empty
	// for the configured worker credential, which serves every tenant.
	Tenant string
	Role   intakev1.Role
	// Jobs are the jobs ("jobs/{job}") a ROLE_TRIGGER token may trigger.
	Jobs []string
	// Bootstrap: the bootstrap admin token of the configuration.
	Bootstrap bool
}

// TokenName is the resource name of the caller's token.
func (c Caller) TokenName() string { return store.AccessTokenName(c.TokenID) }

type callerKey struct{}

// CallerFrom returns the authenticated caller of a call; false when the
// server runs without authentication (Config.Auth nil) or for the calls
// that need none (health checks).
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

func withCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// roleName is how errors and logs name a role: "viewer".
func roleName(r intakev1.Role) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "ROLE_"))
}

// methodRule is who may call a method.
type methodRule struct {
	// open: no token needed (health checks).
	open bool
	// roles may call it; empty with open false: any authenticated caller.
	roles []intakev1.Role
}

func (r methodRule) allows(role intakev1.Role) bool {
	return r.open || len(r.roles) == 0 || slices.Contains(r.roles, role)
}

// The roles of the rules. Admins may call everything but StageService,
// which is the workers' alone: it hands out connections with their
// secrets decrypted, which no person should read through the API.
const (
	roleAdmin   = intakev1.Role_ROLE_ADMIN
	roleEditor  = intakev1.Role_ROLE_EDITOR
	roleViewer  = intakev1.Role_ROLE_VIEWER
	roleTrigger = intakev1.Role_ROLE_TRIGGER
	roleWorker  = intakev1.Role_ROLE_WORKER
)

var (
	openRule  = methodRule{open: true}
	anyRole   = methodRule{}
	adminOnly = methodRule{roles: []intakev1.Role{roleAdmin}}
	// readRule: reads, changing nothing.
	readRule = methodRule{roles: []intakev1.Role{roleAdmin, roleEditor, roleViewer}}
	// writeRule: changes jobs, connections, attributes or runs.
	writeRule   = methodRule{roles: []intakev1.Role{roleAdmin, roleEditor}}
	workerRule  = methodRule{roles: []intakev1.Role{roleWorker}}
	triggerRule = methodRule{roles: []intakev1.Role{roleAdmin, roleEditor, roleTrigger}}
)

// methodRules says who may call each method of every service the server
// registers (a test checks that none is missing; a method without a rule
// is refused to everyone). A viewer's methods change nothing; previews,
// suggestions, connection tests and file lists read the files they name,
// and ValidateMapping is the editors' because a passing validation
// records the job's validation state and header.
var methodRules = map[string]methodRule{
	intakev1.JobService_CreateJob_FullMethodName:          writeRule,
	intakev1.JobService_GetJob_FullMethodName:             readRule,
	intakev1.JobService_ListJobs_FullMethodName:           {roles: []intakev1.Role{roleAdmin, roleEditor, roleViewer, roleWorker}}, // the scheduler reads the job list
	intakev1.JobService_UpdateJob_FullMethodName:          writeRule,
	intakev1.JobService_DeleteJob_FullMethodName:          writeRule,
	intakev1.JobService_RunJob_FullMethodName:             writeRule,
	intakev1.JobService_ValidateMapping_FullMethodName:    writeRule,
	intakev1.JobService_PreviewJob_FullMethodName:         readRule,
	intakev1.JobService_SuggestMapping_FullMethodName:     readRule,
	intakev1.JobService_DuplicateJob_FullMethodName:       writeRule,
	intakev1.JobService_SetJobEnabled_FullMethodName:      writeRule,
	intakev1.JobService_TriggerJob_FullMethodName:         triggerRule,
	intakev1.JobService_CreateTriggerToken_FullMethodName: writeRule,
	intakev1.JobService_RotateTriggerToken_FullMethodName: writeRule,
	intakev1.JobService_RevokeTriggerToken_FullMethodName: writeRule,
	intakev1.JobService_ListTriggerTokens_FullMethodName:  readRule,

	intakev1.RunService_GetRun_FullMethodName:          readRule,
	intakev1.RunService_ListRuns_FullMethodName:        readRule,
	intakev1.RunService_WatchRun_FullMethodName:        readRule,
	intakev1.RunService_DownloadRejects_FullMethodName: readRule,
	intakev1.RunService_CancelRun_FullMethodName:       writeRule,
	intakev1.RunService_DownloadSource_FullMethodName:  readRule,
	intakev1.RunService_ReplayRun_FullMethodName:       writeRule,

	intakev1.DataModelService_ListObjects_FullMethodName:     readRule,
	intakev1.DataModelService_ListAttributes_FullMethodName:  readRule,
	intakev1.DataModelService_CreateAttribute_FullMethodName: writeRule,
	intakev1.DataModelService_DeleteAttribute_FullMethodName: writeRule,

	intakev1.ConnectionService_CreateConnection_FullMethodName: writeRule,
	intakev1.ConnectionService_GetConnection_FullMethodName:    readRule,
	intakev1.ConnectionService_ListConnections_FullMethodName:  readRule,
	intakev1.ConnectionService_UpdateConnection_FullMethodName: writeRule,
	intakev1.ConnectionService_DeleteConnection_FullMethodName: writeRule,
	intakev1.ConnectionService_TestConnection_FullMethodName:   readRule,
	intakev1.ConnectionService_ListFiles_FullMethodName:        readRule,

	intakev1.AccessService_CreateToken_FullMethodName: adminOnly,
	intakev1.AccessService_ListTokens_FullMethodName:  adminOnly,
	intakev1.AccessService_RevokeToken_FullMethodName: adminOnly,
	intakev1.AccessService_WhoAmI_FullMethodName:      anyRole,

	intakev1.StageService_ReportRunEvent_FullMethodName:      workerRule,
	intakev1.StageService_CreateScheduledRun_FullMethodName:  workerRule,
	intakev1.StageService_CreateScheduledRuns_FullMethodName: workerRule,
	intakev1.StageService_ResolveConnection_FullMethodName:   workerRule,

	healthpb.Health_Check_FullMethodName:                                   openRule,
	healthpb.Health_List_FullMethodName:                                    openRule,
	healthpb.Health_Watch_FullMethodName:                                   openRule,
	reflectionv1.ServerReflection_ServerReflectionInfo_FullMethodName:      anyRole,
	reflectionv1alpha.ServerReflection_ServerReflectionInfo_FullMethodName: anyRole,
}

// Tokens made by CreateToken: "itk_" + 12 hex digits of id + "_" + 43
// characters of base64url (32 random bytes). A trigger token (trigger.go)
// is "itk_" + 43 characters, so the two never look alike.
var (
	accessTokenPattern  = regexp.MustCompile(`^` + TriggerTokenPrefix + `([0-9a-f]{12})_[A-Za-z0-9_-]{43}$`)
	triggerTokenPattern = regexp.MustCompile(`^` + TriggerTokenPrefix + `[A-Za-z0-9_-]{43}$`)
)

// lastUsedEvery is how stale a token's last use may get before a call
// records it again: one write a minute at most per token.
const lastUsedEvery = time.Minute

// errNoToken is the answer to a call without a token.
var errNoToken = status.Error(codes.Unauthenticated,
	`no token: send "authorization: Bearer <token>" (gRPC metadata, or the HTTP header Authorization)`)

// sameToken compares a token with a configured one in constant time.
func sameToken(token, configured string) bool {
	a, b := sha256.Sum256([]byte(token)), sha256.Sum256([]byte(configured))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// configured returns the caller of a token of the configuration.
func (a *AuthConfig) configured(token string) (Caller, bool) {
	if sameToken(token, a.BootstrapToken) {
		return Caller{TokenID: bootstrapTokenID, Tenant: DefaultTenant, Role: roleAdmin, Bootstrap: true}, true
	}
	ok := false
	for _, w := range a.WorkerTokens {
		if sameToken(token, w) {
			ok = true // no early return: every worker token is compared
		}
	}
	return Caller{TokenID: workerTokenID, Role: roleWorker}, ok
}

// authenticates reports whether token is one the API authenticates (the
// configuration's or the shape of an API token), as opposed to a trigger
// token or none, which TriggerJob checks itself.
func (a *AuthConfig) authenticates(token string) bool {
	if token == "" {
		return false
	}
	_, ok := a.configured(token)
	return ok || accessTokenPattern.MatchString(token)
}

// authenticate returns the caller a token stands for, or the
// Unauthenticated status that says why there is none.
func (s *Server) authenticate(ctx context.Context, token string) (Caller, error) {
	if token == "" {
		return Caller{}, errNoToken
	}
	if c, ok := s.cfg.Auth.configured(token); ok {
		return c, nil
	}
	m := accessTokenPattern.FindStringSubmatch(token)
	if m == nil {
		if triggerTokenPattern.MatchString(token) {
			return Caller{}, status.Error(codes.Unauthenticated,
				"this is a trigger token: it authorises only TriggerJob of its job; other calls need an API token (intakectl token create)")
		}
		return Caller{}, status.Error(codes.Unauthenticated, "unknown token: not one this server issued")
	}
	rec, err := s.store.AccessToken(ctx, m[1])
	if errors.Is(err, store.ErrNotFound) {
		return Caller{}, status.Error(codes.Unauthenticated, "unknown token: not one this server issued")
	}
	if err != nil {
		return Caller{}, s.storeError(ctx, "check", "the token of the call", err)
	}
	if subtle.ConstantTimeCompare(hashToken(token), rec.Hash) != 1 {
		return Caller{}, status.Error(codes.Unauthenticated, "unknown token: not one this server issued")
	}
	name := store.AccessTokenName(rec.ID)
	now := time.Now()
	if rec.RevokeTime != nil {
		return Caller{}, status.Errorf(codes.Unauthenticated, "token %s was revoked at %s", name, rec.RevokeTime.UTC().Format(time.RFC3339))
	}
	if rec.ExpireTime != nil && !now.Before(*rec.ExpireTime) {
		return Caller{}, status.Errorf(codes.Unauthenticated, "token %s expired at %s", name, rec.ExpireTime.UTC().Format(time.RFC3339))
	}
	if rec.LastUsedTime == nil || now.Sub(*rec.LastUsedTime) >= lastUsedEvery {
		if err := s.store.AccessTokenUsed(ctx, rec.ID, now.UTC().Truncate(time.Microsecond), lastUsedEvery); err != nil {
			s.log.WarnContext(ctx, "could not record the use of a token", "token", name, "error", err)
		}
	}
	jobs := make([]string, len(rec.JobIDs))
	for i, j := range rec.JobIDs {
		jobs[i] = store.JobName(j)
	}
	return Caller{TokenID: rec.ID, Tenant: store.TenantName(rec.TenantID), Role: rec.Role, Jobs: jobs}, nil
}

// authorize checks the rule of a method for a caller (PermissionDenied
// naming the role and the method) and returns the context with the caller.
func (s *Server) authorize(ctx context.Context, method string) (context.Context, error) {
	rule, ok := methodRules[method]
	if !ok {
		s.log.ErrorContext(ctx, "call refused: the method has no access rule (add it to methodRules in api/auth.go)", "method", method)
		return ctx, status.Errorf(codes.PermissionDenied, "%s has no access rule: nobody may call it", method)
	}
	if rule.open {
		return ctx, nil
	}
	c, err := s.authenticate(ctx, bearerToken(ctx))
	if err != nil {
		if status.Code(err) == codes.Unauthenticated {
			s.log.InfoContext(ctx, "call refused: not authenticated", "method", method, "reason", status.Convert(err).Message())
		}
		return ctx, err
	}
	if !rule.allows(c.Role) {
		s.log.WarnContext(ctx, "call refused: the role may not call the method", "method", method, "role", roleName(c.Role), "token", c.TokenName())
		allowed := make([]string, len(rule.roles))
		for i, r := range rule.roles {
			allowed[i] = roleName(r)
		}
		return ctx, status.Errorf(codes.PermissionDenied, "a token of role %s may not call %s (it takes: %s)",
			roleName(c.Role), strings.TrimPrefix(method, "/"), strings.Join(allowed, ", "))
	}
	ctx, err = s.scopeToTenant(ctx, c)
	if err != nil {
		return ctx, err
	}
	return withCaller(ctx, c), nil
}

// authUnary authenticates and authorises a unary call (see above).
func (s *Server) authUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if s.cfg.Auth == nil {
		return handler(ctx, req)
	}
	if info.FullMethod == intakev1.JobService_TriggerJob_FullMethodName {
		if !s.cfg.Auth.authenticates(bearerToken(ctx)) {
			return handler(ctx, req) // a trigger token, or none: TriggerJob's own check
		}
		ctx, err := s.authorize(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		c, _ := CallerFrom(ctx)
		return s.triggerAs(ctx, c, req.(*intakev1.TriggerJobRequest))
	}
	ctx, err := s.authorize(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

// authStream authenticates and authorises a streaming call.
func (s *Server) authStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if s.cfg.Auth == nil {
		return handler(srv, ss)
	}
	ctx, err := s.authorize(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	return handler(srv, &callerStream{ServerStream: ss, ctx: ctx})
}

// callerStream is a stream whose context carries the caller.
type callerStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (c *callerStream) Context() context.Context { return c.ctx }

// logAuth logs once whether authentication is on.
func (s *Server) logAuth() {
	if s.cfg.Auth == nil {
		s.log.Warn("authentication is OFF: every caller may call every method (Config.Auth is nil; only for tests)")
	} else {
		s.log.Info("authentication is on: every call needs a bearer token (health checks excepted)",
			"worker_tokens", len(s.cfg.Auth.WorkerTokens))
	}
}

// triggerAs is TriggerJob for a caller authenticated by an API token (or
// the bootstrap token) rather than by one of the job's trigger tokens:
// an admin or an roleEditor, or a ROLE_TRIGGER token for its jobs. To a
// trigger token another job does not exist (NotFound), as a job of
// another tenant will not.
func (s *Server) triggerAs(ctx context.Context, c Caller, req *intakev1.TriggerJobRequest) (*intakev1.TriggerJobResponse, error) {
	id, err := parseJobName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	name := store.JobName(id)
	if c.Role == roleTrigger && !slices.Contains(c.Jobs, name) {
		s.metrics.triggers.WithLabelValues(triggerDenied).Inc()
		s.log.WarnContext(ctx, "trigger refused: the token may not trigger the job", "job", id, "token", c.TokenName())
		return nil, status.Errorf(codes.NotFound, "job %s not found", name)
	}
	key := req.GetIdempotencyKey()
	if err := checkIdempotencyKey(key); err != nil {
		return nil, err
	}
	log := s.log.With("job", id, "token", c.TokenName(), "idempotency_key", key)
	job, err := s.store.GetJob(ctx, id) // of the caller's tenant only (tenants.go)
	if err != nil {
		return nil, s.storeError(ctx, "read", "job "+name, err)
	}
	return s.startTriggeredRun(ctx, log, id, job, key, req.GetForce())
}

// checkIdempotencyKey is TriggerJob's rule for idempotency_key.
func checkIdempotencyKey(key string) error {
	if len(key) > MaxIdempotencyKey {
		return badField("idempotency_key", "%d bytes: at most %d", len(key), MaxIdempotencyKey)
	}
	if !utf8.ValidString(key) || strings.ContainsFunc(key, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return badField("idempotency_key", "must be printable text (control characters are not allowed)")
	}
	return nil
}

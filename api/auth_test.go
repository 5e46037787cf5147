package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/intakehq/intake/api"
	"github.com/intakehq/intake/pkg/natstest"
	"github.com/intakehq/intake/pkg/pgtest"
	"github.com/intakehq/intake/pkg/testutil"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// The credentials of the configuration in these tests.
const (
	testBootstrapToken = "test-bootstrap-admin-token-0123456789abcdef"
	testWorkerToken    = "test-worker-token-0123456789abcdefghijklmn"
)

// authBundle is a control API with authentication on, serving gRPC and
// the HTTP API.
type authBundle struct {
	srv   *api.Server
	conn  *grpc.ClientConn
	db    *pgxpool.Pool
	rest  string // "http://127.0.0.1:port"
	files *fileServer
}

func setupAuth(t *testing.T) *authBundle {
	t.Helper()
	db, dsn := pgtest.NewPool(t)
	ns := natstest.Start(t)
	srv, err := api.New(api.Config{
		DatabaseURL: dsn,
		NATSURL:     ns.URL,
		GRPCAddr:    "127.0.0.1:0",
		HTTPAddr:    "127.0.0.1:0",
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		Auth:        &api.AuthConfig{BootstrapToken: testBootstrapToken, WorkerTokens: []string{testWorkerToken}},
	})
	require.NoError(t, err)
	startServer(t, srv)
	conn, err := grpc.NewClient(srv.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return &authBundle{srv: srv, conn: conn, db: db, rest: "http://" + srv.HTTPAddr().String(), files: newFileServer(t)}
}

// as is ctx with the bearer token of a call.
func as(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// token makes a token with the bootstrap admin token and returns its secret.
func (b *authBundle) token(t *testing.T, tok *intakev1.AccessToken) (string, *intakev1.AccessToken) {
	t.Helper()
	made, err := intakev1.NewAccessServiceClient(b.conn).CreateToken(as(testCtx(t), testBootstrapToken), &intakev1.CreateTokenRequest{Token: tok})
	require.NoError(t, err)
	require.Regexp(t, `^itk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$`, made.GetToken())
	return made.GetToken(), made
}

// job creates a disabled accounts job with the bootstrap admin token.
func (b *authBundle) job(t *testing.T, id string) *intakev1.Job {
	t.Helper()
	job := accountsJobAt("Accounts "+id, b.files.srv.URL+"/accounts.csv")
	job.Enabled = false
	made, err := intakev1.NewJobServiceClient(b.conn).CreateJob(as(testCtx(t), testBootstrapToken), &intakev1.CreateJobRequest{JobId: id, Job: job})
	require.NoError(t, err)
	return made
}

// post calls a method over the HTTP API with a JSON body and the bearer
// token when not empty, and returns the HTTP status and the decoded error
// body ({"code", "message"}) or the raw answer.
func (b *authBundle) post(t *testing.T, method, token, body string) (int, string, string) {
	t.Helper()
	code, out := testutil.PostJSON(testCtx(t), t, nil, b.rest+"/"+method, token, body)
	var e struct{ Code, Message string }
	if code != http.StatusOK {
		require.NoError(t, json.Unmarshal(out, &e), "%s", out)
		return code, e.Code, e.Message
	}
	return code, "", string(out)
}

// Calls without a valid token are refused, over gRPC and over HTTP, with
// a message that says why and never holds the token; health checks need
// none, server reflection does.
func TestAuthRefusesCallsWithoutAValidToken(t *testing.T) {
	t.Parallel()
	b := setupAuth(t)
	ctx := testCtx(t)
	access := intakev1.NewAccessServiceClient(b.conn)
	jobs := intakev1.NewJobServiceClient(b.conn)

	expiring, _ := b.token(t, &intakev1.AccessToken{Role: intakev1.Role_ROLE_VIEWER,
		ExpireTime: timestamppb.New(time.Now().Add(1500 * time.Millisecond))})
	revoked, made := b.token(t, &intakev1.AccessToken{Role: intakev1.Role_ROLE_EDITOR})
	_, err := access.RevokeToken(as(ctx, testBootstrapToken), &intakev1.RevokeTokenRequest{Name: made.GetName()})
	require.NoError(t, err)
	valid, _ := b.token(t, &intakev1.AccessToken{Role: intakev1.Role_ROLE_VIEWER})
	// A token of the right shape whose secret is wrong: unknown, like one
	// whose id is unknown.
	forged := valid[:len(valid)-5] + "AAAAA"
	if forged == valid {
		forged = valid[:len(valid)-5] + "BBBBB"
	}

	require.Eventually(t, func() bool {
		_, err := jobs.ListJobs(as(ctx, expiring), &intakev1.ListJobsRequest{})
		return status.Code(err) == codes.Unauthenticated
	}, 10*time.Second, 100*time.Millisecond, "the token never expired")

	cases := []struct {
		name, token, message string
	}{
		{"no token", "", `no token: send "authorization: Bearer <token>"`},
		{"garbage", "not-a-token-at-all", "unknown token: not one this server issued"},
		{"unknown id", "itk_0123456789ab_" + strings.Repeat("x", 43), "unknown token: not one this server issued"},
		{"wrong secret", forged, "unknown token: not one this server issued"},
		{"trigger token", "itk_" + strings.Repeat("y", 43), "this is a trigger token: it authorises only TriggerJob of its job"},
		{"expired", expiring, " expired at "},
		{"revoked", revoked, made.GetName() + " was revoked at "},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cctx := ctx
			if c.token != "" {
				cctx = as(ctx, c.token)
			}
			_, err := jobs.ListJobs(cctx, &intakev1.ListJobsRequest{})
			st := requireCode(t, err, codes.Unauthenticated, c.message)
			if c.token != "" {
				require.NotContains(t, st.Message(), c.token)
			}
			// A stream is refused the same way.
			w, err := intakev1.NewRunServiceClient(b.conn).WatchRun(cctx, &intakev1.WatchRunRequest{Name: "jobs/a/runs/b"})
			require.NoError(t, err)
			_, err = w.Recv()
			requireCode(t, err, codes.Unauthenticated, c.message)

			code, ecode, msg := b.post(t, "intake.v1.JobService/ListJobs", c.token, `{}`)
			require.Equal(t, http.StatusUnauthorized, code, msg)
			require.Equal(t, "unauthenticated", ecode)
			require.Contains(t, msg, c.message)
			if c.token != "" {
				require.NotContains(t, msg, c.token)
			}
		})
	}

	// The valid token passes, over gRPC and over HTTP.
	_, err = jobs.ListJobs(as(ctx, valid), &intakev1.ListJobsRequest{})
	require.NoError(t, err)
	code, _, msg := b.post(t, "intake.v1.JobService/ListJobs", valid, `{}`)
	require.Equal(t, http.StatusOK, code, msg)

	// Health checks are open (Kubernetes probes them without a token).
	h, err := healthpb.NewHealthClient(b.conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "intake.v1.AccessService"})
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, h.GetStatus())
	// Server reflection needs a token, of any role.
	refl := func(ctx context.Context) error {
		s, err := reflectionpb.NewServerReflectionClient(b.conn).ServerReflectionInfo(ctx)
		require.NoError(t, err)
		// A stream the server already refused gives io.EOF on Send; Recv
		// then returns the status (as grpc.ClientStream documents).
		if err := s.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); !errors.Is(err, io.EOF) {
			require.NoError(t, err)
		}
		_, err = s.Recv()
		return err
	}
	requireCode(t, refl(ctx), codes.Unauthenticated, "no token")
	require.NoError(t, refl(as(ctx, valid)))
}

// call is a representative call of one method.
type call struct {
	method string
	do     func(ctx context.Context, conn *grpc.ClientConn) error
}

// Each role against representative calls of every service: allowed calls
// pass authorisation (they succeed, or fail for what they ask), the others
// are PermissionDenied naming the role and the method.
func TestAuthRolesPerService(t *testing.T) {
	t.Parallel()
	b := setupAuth(t)
	job := b.job(t, "roles")
	tokens := map[intakev1.Role]string{intakev1.Role_ROLE_WORKER: testWorkerToken}
	for _, r := range []intakev1.Role{intakev1.Role_ROLE_ADMIN, intakev1.Role_ROLE_EDITOR, intakev1.Role_ROLE_VIEWER} {
		tokens[r], _ = b.token(t, &intakev1.AccessToken{Role: r})
	}
	tokens[intakev1.Role_ROLE_TRIGGER], _ = b.token(t, &intakev1.AccessToken{Role: intakev1.Role_ROLE_TRIGGER, Jobs: []string{job.GetName()}})

	calls := []call{
		{"intake.v1.JobService/GetJob", func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := intakev1.NewJobServiceClient(c).GetJob(ctx, &intakev1.GetJobRequest{Name: job.GetName()})
			return err
		}},
		{"intake.v1.JobService/ListJobs", func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := intakev1.NewJobServiceClient(c).ListJobs(ctx, &intakev1.ListJobsRequest{})
			return err
		}},
		{"intake.v1.JobService/CreateJob", func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := intakev1.NewJobServiceClient(c).CreateJob(ctx, &intakev1.CreateJobRequest{JobId: "Not Valid", Job: &intakev1.Job{}})
			return err
		}},
		{"intake.v1.JobService/ValidateMapping", func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := intakev1.NewJobServiceClient(c).ValidateMapping(ctx, &intakev1.ValidateMappingRequest{Name: "jobs/nope"})
			return err
		}},
		{"intake.v1.RunService/ListRuns", func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := intakev1.NewRunServiceClient(c).ListRuns(ctx, &intakev1.ListRunsRequest{Parent: "jobs/-"})
			return err
		}},
		{"intake.v1.RunService/CancelRun", func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := intakev1.NewRunServiceClient(c).CancelRun(ctx, &intakev1.CancelRunRequest{Name: job.GetName() + "/runs/nope"})
			return err
		}},
		{"intake.v1.DataModelService/ListObjects", func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := intakev1.NewDataModelServiceClient(c).ListObjects(ctx, &intakev1.ListObjectsRequest{})
			return err
		}},
		{"intake.v1.DataModelService/CreateAttribute", func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := intakev1.NewDataModelServiceClient(c).CreateAttribute(ctx, &intakev1.CreateAttributeRequest{Parent: "objects/nope"})
			return err
		}},
		{"intake.v1.ConnectionService/ListConnections", func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := intakev1.NewConnectionServiceClient(c).ListConnections(ctx, &intakev1.ListConnectionsRequest{})
			return err
		}},
		{"intake.v1.ConnectionService/CreateConnection", func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := intakev1.NewConnectionServiceClient(c).CreateConnection(ctx, &intakev1.CreateConnectionRequest{Connection: &intakev1.Connection{}})
			return err
		}},
		{"intake.v1.AccessService/ListTokens", func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := intakev1.NewAccessServiceClient(c).ListTokens(ctx, &intakev1.ListTokensRequest{})
			return err
		}},
		{"intake.v1.AccessService/WhoAmI", func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := intakev1.NewAccessServiceClient(c).WhoAmI(ctx, &intakev1.WhoAmIRequest{})
			return err
		}},
		{"intake.v1.StageService/ReportRunEvent", func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := intakev1.NewStageServiceClient(c).ReportRunEvent(ctx, &intakev1.ReportRunEventRequest{Run: job.GetName() + "/runs/nope"})
			return err
		}},
		{"intake.v1.StageService/ResolveConnection", func(ctx context.Context, c *grpc.ClientConn) error {
			_, err := intakev1.NewStageServiceClient(c).ResolveConnection(ctx, &intakev1.ResolveConnectionRequest{Run: job.GetName() + "/runs/nope"})
			return err
		}},
	}
	const (
		A = intakev1.Role_ROLE_ADMIN
		E = intakev1.Role_ROLE_EDITOR
		V = intakev1.Role_ROLE_VIEWER
		T = intakev1.Role_ROLE_TRIGGER
		W = intakev1.Role_ROLE_WORKER
	)
	allowed := map[string][]intakev1.Role{
		"intake.v1.JobService/GetJob":                  {A, E, V},
		"intake.v1.JobService/ListJobs":                {A, E, V, W}, // the scheduler reads the job list
		"intake.v1.JobService/CreateJob":               {A, E},
		"intake.v1.JobService/ValidateMapping":         {A, E},
		"intake.v1.RunService/ListRuns":                {A, E, V},
		"intake.v1.RunService/CancelRun":               {A, E},
		"intake.v1.DataModelService/ListObjects":       {A, E, V},
		"intake.v1.DataModelService/CreateAttribute":   {A, E},
		"intake.v1.ConnectionService/ListConnections":  {A, E, V},
		"intake.v1.ConnectionService/CreateConnection": {A, E},
		"intake.v1.AccessService/ListTokens":           {A},
		"intake.v1.AccessService/WhoAmI":               {A, E, V, T, W},
		"intake.v1.StageService/ReportRunEvent":        {W},
		"intake.v1.StageService/ResolveConnection":     {W},
	}
	names := map[intakev1.Role]string{A: "admin", E: "editor", V: "viewer", T: "trigger", W: "worker"}
	for _, c := range calls {
		for role, tok := range tokens {
			ctx := as(testCtx(t), tok)
			err := c.do(ctx, b.conn)
			ok := false
			for _, r := range allowed[c.method] {
				ok = ok || r == role
			}
			if ok {
				require.NotContains(t, []codes.Code{codes.Unauthenticated, codes.PermissionDenied}, status.Code(err),
					"%s as %s: %v", c.method, names[role], err)
				continue
			}
			requireCode(t, err, codes.PermissionDenied, "role "+names[role], c.method)
		}
	}
}

// A trigger token triggers its jobs, over gRPC and HTTP; to it another job
// does not exist. The per-job trigger tokens still work with
// authentication on.
func TestAuthTriggerTokens(t *testing.T) {
	t.Parallel()
	b := setupAuth(t)
	ctx := testCtx(t)
	mine, other := b.job(t, "mine"), b.job(t, "other")
	jobs := intakev1.NewJobServiceClient(b.conn)
	tok, _ := b.token(t, &intakev1.AccessToken{Role: intakev1.Role_ROLE_TRIGGER, Jobs: []string{mine.GetName()}, DisplayName: "ERP export"})

	resp, err := jobs.TriggerJob(as(ctx, tok), &intakev1.TriggerJobRequest{Name: mine.GetName(), IdempotencyKey: "k1"})
	require.NoError(t, err)
	require.True(t, resp.GetCreated())
	require.Equal(t, intakev1.Trigger_TRIGGER_TRIGGER_API, resp.GetRun().GetTrigger())
	again, err := jobs.TriggerJob(as(ctx, tok), &intakev1.TriggerJobRequest{Name: mine.GetName(), IdempotencyKey: "k1"})
	require.NoError(t, err)
	require.False(t, again.GetCreated())
	require.Equal(t, resp.GetRun().GetName(), again.GetRun().GetName())

	// Another job answers as a job that does not exist.
	_, err = jobs.TriggerJob(as(ctx, tok), &intakev1.TriggerJobRequest{Name: other.GetName()})
	otherSt := requireCode(t, err, codes.NotFound, "job "+other.GetName()+" not found")
	admin := as(ctx, testBootstrapToken)
	_, err = jobs.TriggerJob(admin, &intakev1.TriggerJobRequest{Name: "jobs/nope"})
	noneSt := requireCode(t, err, codes.NotFound, "job jobs/nope not found")
	require.Equal(t, noneSt.Message(), strings.Replace(otherSt.Message(), other.GetName(), "jobs/nope", 1),
		"a job the token may not trigger reads as one that does not exist")
	// Nothing else: not even reading its job.
	_, err = jobs.GetJob(as(ctx, tok), &intakev1.GetJobRequest{Name: mine.GetName()})
	requireCode(t, err, codes.PermissionDenied, "role trigger", "intake.v1.JobService/GetJob")

	// Over HTTP, as a data process would.
	code, _, body := b.post(t, "intake.v1.JobService/TriggerJob", tok, fmt.Sprintf(`{"name":%q}`, mine.GetName()))
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"created":true`)
	code, ecode, msg := b.post(t, "intake.v1.JobService/TriggerJob", tok, fmt.Sprintf(`{"name":%q}`, other.GetName()))
	require.Equal(t, http.StatusNotFound, code, msg)
	require.Equal(t, "not_found", ecode)

	// Editors trigger any job; viewers none.
	editor, _ := b.token(t, &intakev1.AccessToken{Role: intakev1.Role_ROLE_EDITOR})
	_, err = jobs.TriggerJob(as(ctx, editor), &intakev1.TriggerJobRequest{Name: other.GetName()})
	require.NoError(t, err)
	viewer, _ := b.token(t, &intakev1.AccessToken{Role: intakev1.Role_ROLE_VIEWER})
	_, err = jobs.TriggerJob(as(ctx, viewer), &intakev1.TriggerJobRequest{Name: other.GetName()})
	requireCode(t, err, codes.PermissionDenied, "role viewer", "TriggerJob")

	// A job's own trigger token, as before.
	tt, err := jobs.CreateTriggerToken(admin, &intakev1.CreateTriggerTokenRequest{Parent: other.GetName()})
	require.NoError(t, err)
	_, err = jobs.TriggerJob(as(ctx, tt.GetToken()), &intakev1.TriggerJobRequest{Name: other.GetName()})
	require.NoError(t, err)
	_, err = jobs.TriggerJob(as(ctx, tt.GetToken()), &intakev1.TriggerJobRequest{Name: mine.GetName()})
	requireCode(t, err, codes.PermissionDenied, "this trigger token is not valid for "+mine.GetName())
	_, err = jobs.TriggerJob(ctx, &intakev1.TriggerJobRequest{Name: mine.GetName()})
	requireCode(t, err, codes.Unauthenticated, "trigger token required")

	// The worker credential reports to StageService, and calls nothing of
	// people's.
	_, err = jobs.TriggerJob(as(ctx, testWorkerToken), &intakev1.TriggerJobRequest{Name: mine.GetName()})
	requireCode(t, err, codes.PermissionDenied, "role worker", "TriggerJob")
	_, err = jobs.DeleteJob(as(ctx, testWorkerToken), &intakev1.DeleteJobRequest{Name: mine.GetName()})
	requireCode(t, err, codes.PermissionDenied, "role worker", "DeleteJob")
	_, err = intakev1.NewStageServiceClient(b.conn).ReportRunEvent(as(ctx, testWorkerToken), &intakev1.ReportRunEventRequest{
		Run: resp.GetRun().GetName(), Stage: intakev1.Stage_STAGE_FETCH, Kind: intakev1.RunEventKind_RUN_EVENT_KIND_STARTED})
	require.NoError(t, err)
	run, err := intakev1.NewRunServiceClient(b.conn).GetRun(admin, &intakev1.GetRunRequest{Name: resp.GetRun().GetName()})
	require.NoError(t, err)
	require.Equal(t, intakev1.RunState_RUN_STATE_FETCHING, run.GetState())
}

// Every method of every service the server registers has an access rule:
// a new RPC cannot be forgotten (it would be refused to everyone).
func TestAuthEveryMethodHasARule(t *testing.T) {
	t.Parallel()
	b := setupAuth(t)
	s, err := reflectionpb.NewServerReflectionClient(b.conn).ServerReflectionInfo(as(testCtx(t), testBootstrapToken))
	require.NoError(t, err)
	require.NoError(t, s.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}))
	resp, err := s.Recv()
	require.NoError(t, err)
	services := resp.GetListServicesResponse().GetService()
	require.GreaterOrEqual(t, len(services), 8, "intake's six services, health, reflection")
	methods := 0
	for _, svc := range services {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(svc.GetName()))
		require.NoError(t, err, svc.GetName())
		sd := d.(protoreflect.ServiceDescriptor)
		for i := range sd.Methods().Len() {
			m := "/" + svc.GetName() + "/" + string(sd.Methods().Get(i).Name())
			require.True(t, api.HasAccessRule(m), "%s has no access rule in api/auth.go", m)
			methods++
		}
	}
	require.Greater(t, methods, 40)
}

// The configuration of authentication is checked, without showing tokens.
func TestAuthConfig(t *testing.T) {
	t.Parallel()
	base := api.Config{DatabaseURL: "postgres://x@localhost/db", NATSURL: "nats://localhost:4222", GRPCAddr: ":0"}
	for _, c := range []struct {
		auth *api.AuthConfig
		want string
	}{
		{&api.AuthConfig{}, "Auth.BootstrapToken is required"},
		{&api.AuthConfig{BootstrapToken: "short-secret"}, "Auth.BootstrapToken is 12 characters: at least 32 are required"},
		{&api.AuthConfig{BootstrapToken: testBootstrapToken, WorkerTokens: []string{"tiny"}}, "Auth.WorkerTokens[0] is 4 characters"},
		{&api.AuthConfig{BootstrapToken: testBootstrapToken, WorkerTokens: []string{testBootstrapToken}}, "is the bootstrap token"},
	} {
		cfg := base
		cfg.Auth = c.auth
		_, err := api.New(cfg)
		require.ErrorContains(t, err, c.want)
		require.NotContains(t, err.Error(), "short-secret")
		require.NotContains(t, err.Error(), testBootstrapToken)
	}
	cfg := base
	cfg.Auth = &api.AuthConfig{BootstrapToken: testBootstrapToken, WorkerTokens: []string{testWorkerToken}}
	_, err := api.New(cfg)
	require.NoError(t, err)
}

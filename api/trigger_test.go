package api_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/intakehq/intake/api"
	"github.com/intakehq/intake/pkg/natstest"
	"github.com/intakehq/intake/pkg/pgtest"
	"github.com/intakehq/intake/pkg/testutil"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// httpBundle is a control API serving HTTP too (Config.HTTPAddr), called
// the way a company's data process would: plain HTTP POSTs with JSON.
type httpBundle struct {
	*testBundle
	base string // "http://127.0.0.1:port"
}

func setupHTTP(t *testing.T) *httpBundle {
	t.Helper()
	nats := natstest.Start(t)
	_, js := nats.Connect(t)
	reg := prometheus.NewRegistry()
	srv, err := api.New(api.Config{
		DatabaseURL: pgtest.NewDatabase(t),
		NATSURL:     nats.URL,
		GRPCAddr:    "127.0.0.1:0",
		HTTPAddr:    "127.0.0.1:0",
		Registerer:  reg,
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	startServer(t, srv)
	require.NotNil(t, srv.HTTPAddr())
	return &httpBundle{
		testBundle: &testBundle{srv: srv, reg: reg, js: js, nats: nats, files: newFileServer(t)},
		base:       "http://" + srv.HTTPAddr().String(),
	}
}

// post calls method ("intake.v1.JobService/TriggerJob") with req as JSON
// and the bearer token when not empty; it returns the HTTP status and body.
func (b *httpBundle) post(t *testing.T, method, token string, req proto.Message) (int, []byte) {
	t.Helper()
	body, err := protojson.Marshal(req)
	require.NoError(t, err)
	return testutil.PostJSON(testCtx(t), t, nil, b.base+"/"+method, token, string(body))
}

// call is post that requires 200 and decodes the answer into resp.
func (b *httpBundle) call(t *testing.T, method string, req, resp proto.Message) {
	t.Helper()
	code, body := b.post(t, method, "", req)
	require.Equal(t, http.StatusOK, code, "%s: %s", method, body)
	require.NoError(t, protojson.Unmarshal(body, resp), "%s", body)
}

// trigger calls TriggerJob and requires 200.
func (b *httpBundle) trigger(t *testing.T, job, token, key string) *intakev1.TriggerJobResponse {
	t.Helper()
	code, body := b.post(t, "intake.v1.JobService/TriggerJob", token, &intakev1.TriggerJobRequest{Name: job, IdempotencyKey: key})
	require.Equal(t, http.StatusOK, code, "TriggerJob: %s", body)
	resp := &intakev1.TriggerJobResponse{}
	require.NoError(t, protojson.Unmarshal(body, resp), "%s", body)
	return resp
}

// requireHTTPError checks a Connect error: the HTTP status and the JSON
// body's code and message.
func requireHTTPError(t *testing.T, code int, body []byte, wantStatus int, wantCode, wantMessage string) {
	t.Helper()
	require.Equal(t, wantStatus, code, "%s", body)
	var e struct{ Code, Message string }
	require.NoError(t, json.Unmarshal(body, &e), "%s", body)
	require.Equal(t, wantCode, e.Code)
	require.Equal(t, wantMessage, e.Message)
}

func (b *httpBundle) newToken(t *testing.T, method, job string) *intakev1.TriggerToken {
	t.Helper()
	tok := &intakev1.TriggerToken{}
	b.call(t, "intake.v1.JobService/"+method, &intakev1.CreateTriggerTokenRequest{Parent: job}, tok)
	require.Regexp(t, `^`+job+`/triggerTokens/[0-9a-f]{12}$`, tok.GetName())
	require.Regexp(t, `^itk_[A-Za-z0-9_-]{43}$`, tok.GetToken())
	return tok
}

// A data process triggers its job over plain HTTP with the job's token:
// the run is queued, a repeat of its idempotency key returns that run, and
// every token that is not one of the job's live tokens is refused.
func TestTriggerJobOverHTTP(t *testing.T) {
	t.Parallel()
	b := setupHTTP(t)
	for _, id := range []string{"accounts", "users"} {
		job := b.accountsJob("Accounts " + id)
		job.Enabled = false // saved without validation; a trigger runs it all the same
		b.call(t, "intake.v1.JobService/CreateJob", &intakev1.CreateJobRequest{JobId: id, Job: job}, &intakev1.Job{})
	}
	tok := b.newToken(t, "CreateTriggerToken", "jobs/accounts")
	other := b.newToken(t, "CreateTriggerToken", "jobs/users")

	// A good token starts a run; the same key returns the same run.
	first := b.trigger(t, "jobs/accounts", tok.GetToken(), "export-2026-11-26")
	require.True(t, first.GetCreated())
	run := first.GetRun()
	require.Regexp(t, `^jobs/accounts/runs/[0-9a-f-]{36}$`, run.GetName())
	require.Equal(t, intakev1.Trigger_TRIGGER_TRIGGER_API, run.GetTrigger())
	require.Equal(t, intakev1.RunState_RUN_STATE_QUEUED, run.GetState())
	require.Equal(t, "export-2026-11-26", run.GetIdempotencyKey())
	again := b.trigger(t, "jobs/accounts", tok.GetToken(), "export-2026-11-26")
	require.False(t, again.GetCreated())
	require.Equal(t, run.GetName(), again.GetRun().GetName())
	// A new key is a new run, and so is every call without a key.
	next := b.trigger(t, "jobs/accounts", tok.GetToken(), "export-2026-11-27")
	require.True(t, next.GetCreated())
	require.NotEqual(t, run.GetName(), next.GetRun().GetName())
	require.NotEqual(t, b.trigger(t, "jobs/accounts", tok.GetToken(), "").GetRun().GetName(),
		b.trigger(t, "jobs/accounts", tok.GetToken(), "").GetRun().GetName())

	// GetRun over HTTP shows the run; its request went to the fetchers with
	// the trigger.
	got := &intakev1.Run{}
	b.call(t, "intake.v1.RunService/GetRun", &intakev1.GetRunRequest{Name: run.GetName()}, got)
	require.Equal(t, intakev1.Trigger_TRIGGER_TRIGGER_API, got.GetTrigger())
	reqs := publishedRunRequests(t, b.testBundle)
	require.Len(t, reqs, 4) // two keys and two calls without a key
	require.Equal(t, run.GetName(), reqs[0].GetRun())
	require.Equal(t, intakev1.Trigger_TRIGGER_TRIGGER_API, reqs[0].GetTrigger())

	// Refusals: no token 401; a made-up token, another job's token 403,
	// saying the same thing.
	const denied = "this trigger token is not valid for jobs/accounts"
	trig := &intakev1.TriggerJobRequest{Name: "jobs/accounts", IdempotencyKey: "x"}
	code, body := b.post(t, "intake.v1.JobService/TriggerJob", "", trig)
	requireHTTPError(t, code, body, http.StatusUnauthorized, "unauthenticated", "trigger token required: send Authorization: Bearer <token>")
	code, body = b.post(t, "intake.v1.JobService/TriggerJob", "itk_"+strings.Repeat("A", 43), trig)
	requireHTTPError(t, code, body, http.StatusForbidden, "permission_denied", denied)
	code, body = b.post(t, "intake.v1.JobService/TriggerJob", other.GetToken(), trig)
	requireHTTPError(t, code, body, http.StatusForbidden, "permission_denied", denied)
	code, body = b.post(t, "intake.v1.JobService/TriggerJob", tok.GetToken(), &intakev1.TriggerJobRequest{Name: "jobs/nope"})
	requireHTTPError(t, code, body, http.StatusForbidden, "permission_denied", "this trigger token is not valid for jobs/nope")

	// A revoked token is refused; the job's other tokens still work.
	second := b.newToken(t, "CreateTriggerToken", "jobs/accounts")
	b.call(t, "intake.v1.JobService/RevokeTriggerToken", &intakev1.RevokeTriggerTokenRequest{Name: tok.GetName()}, &emptypb.Empty{})
	code, body = b.post(t, "intake.v1.JobService/TriggerJob", tok.GetToken(), trig)
	requireHTTPError(t, code, body, http.StatusForbidden, "permission_denied", denied)
	b.trigger(t, "jobs/accounts", second.GetToken(), "")

	// The list has the live tokens, without secrets, and when each was used.
	list := &intakev1.ListTriggerTokensResponse{}
	b.call(t, "intake.v1.JobService/ListTriggerTokens", &intakev1.ListTriggerTokensRequest{Parent: "jobs/accounts"}, list)
	require.Len(t, list.GetTokens(), 1)
	require.Equal(t, second.GetName(), list.GetTokens()[0].GetName())
	require.Empty(t, list.GetTokens()[0].GetToken())
	require.NotNil(t, list.GetTokens()[0].GetLastUsedTime())

	// Rotation: the new token works, every older one is refused.
	third := b.newToken(t, "CreateTriggerToken", "jobs/accounts")
	rotated := b.newToken(t, "RotateTriggerToken", "jobs/accounts")
	for _, old := range []*intakev1.TriggerToken{second, third} {
		code, body = b.post(t, "intake.v1.JobService/TriggerJob", old.GetToken(), trig)
		requireHTTPError(t, code, body, http.StatusForbidden, "permission_denied", denied)
	}
	require.True(t, b.trigger(t, "jobs/accounts", rotated.GetToken(), "after-rotation").GetCreated())

	// A deleted job's tokens stop working.
	b.call(t, "intake.v1.JobService/DeleteJob", &intakev1.DeleteJobRequest{Name: "jobs/accounts"}, &emptypb.Empty{})
	code, body = b.post(t, "intake.v1.JobService/TriggerJob", rotated.GetToken(), trig)
	requireHTTPError(t, code, body, http.StatusForbidden, "permission_denied", denied)
	code, body = b.post(t, "intake.v1.JobService/CreateTriggerToken", "", &intakev1.CreateTriggerTokenRequest{Parent: "jobs/accounts"})
	requireHTTPError(t, code, body, http.StatusNotFound, "not_found", "job jobs/accounts not found")

	for outcome, want := range map[string]float64{"started": 6, "duplicate": 1, "unauthenticated": 1, "denied": 7} {
		require.Equal(t, want, metricValue(t, b.reg, "intake_api_triggers_total", map[string]string{"outcome": outcome}), outcome)
	}
}

// Callers racing with one idempotency key get one run between them.
func TestTriggerJobIdempotentUnderRace(t *testing.T) {
	t.Parallel()
	b := setupHTTP(t)
	job := b.accountsJob("Accounts")
	job.Enabled = false
	b.call(t, "intake.v1.JobService/CreateJob", &intakev1.CreateJobRequest{JobId: "accounts", Job: job}, &intakev1.Job{})
	tok := b.newToken(t, "CreateTriggerToken", "jobs/accounts")

	const callers = 8
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		names   = map[string]bool{}
		created int
	)
	for range callers {
		wg.Go(func() {
			resp := b.trigger(t, "jobs/accounts", tok.GetToken(), "nightly-42")
			mu.Lock()
			defer mu.Unlock()
			names[resp.GetRun().GetName()] = true
			if resp.GetCreated() {
				created++
			}
		})
	}
	wg.Wait()
	require.Len(t, names, 1, "runs: %v", names)
	require.Equal(t, 1, created)
	require.Len(t, publishedRunRequests(t, b.testBundle), 1)
}

// Bad requests say what is wrong; the idempotency key is bounded.
func TestTriggerJobBadRequests(t *testing.T) {
	t.Parallel()
	b := setupHTTP(t)
	code, body := b.post(t, "intake.v1.JobService/TriggerJob", "itk_x", &intakev1.TriggerJobRequest{Name: "accounts"})
	require.Equal(t, http.StatusBadRequest, code, "%s", body)
	require.Contains(t, string(body), `\"accounts\" is not a job name (jobs/{job})`)
	code, body = b.post(t, "intake.v1.JobService/TriggerJob", "itk_x",
		&intakev1.TriggerJobRequest{Name: "jobs/accounts", IdempotencyKey: strings.Repeat("k", api.MaxIdempotencyKey+1)})
	require.Equal(t, http.StatusBadRequest, code, "%s", body)
	require.Contains(t, string(body), "idempotency_key: 257 bytes: at most 256")
	code, body = b.post(t, "intake.v1.JobService/RevokeTriggerToken", "", &intakev1.RevokeTriggerTokenRequest{Name: "jobs/accounts/tokens/x"})
	require.Equal(t, http.StatusBadRequest, code, "%s", body)
	require.Contains(t, string(body), "is not a trigger token name (jobs/{job}/triggerTokens/{token}")
	code, body = b.post(t, "intake.v1.JobService/RevokeTriggerToken", "", &intakev1.RevokeTriggerTokenRequest{Name: "jobs/accounts/triggerTokens/x"})
	requireHTTPError(t, code, body, http.StatusNotFound, "not_found", "trigger token jobs/accounts/triggerTokens/x not found")
}

// The HTTP port speaks gRPC too (HTTP/2 without TLS).
func TestHTTPAddrServesGRPC(t *testing.T) {
	t.Parallel()
	b := setupHTTP(t)
	conn, err := grpc.NewClient(b.srv.HTTPAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	r, err := healthpb.NewHealthClient(conn).Check(testCtx(t), &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, r.GetStatus())
	_, err = intakev1.NewJobServiceClient(conn).TriggerJob(testCtx(t), &intakev1.TriggerJobRequest{Name: "jobs/x"})
	requireCode(t, err, codes.Unauthenticated, "trigger token required")
}

func TestConfigHTTPAddr(t *testing.T) {
	t.Parallel()
	cfg := api.Config{DatabaseURL: "postgres://x@localhost/db", NATSURL: "nats://localhost:4222", GRPCAddr: ":7070"}
	require.NoError(t, cfg.Validate()) // empty: off
	cfg.HTTPAddr = ":8080"
	require.NoError(t, cfg.Validate())
	cfg.HTTPAddr = "8080"
	require.ErrorContains(t, cfg.Validate(), `api: HTTPAddr "8080" (empty: no HTTP API): address 8080: missing port in address`)
}

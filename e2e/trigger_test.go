package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/intakehq/intake/pkg/testutil"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// restClient calls the control API's REST/JSON mapping the way a company's
// data process does: plain HTTP POSTs with JSON, as curl would.
type restClient struct {
	base string // "http://127.0.0.1:port"
}

// post sends body as JSON to /method with the bearer token when not empty
// and returns the HTTP status and the answer.
func (c restClient) post(ctx context.Context, t *testing.T, method, token, body string) (int, []byte) {
	t.Helper()
	return testutil.PostJSON(ctx, t, nil, c.base+"/"+method, token, body)
}

// startRESTAPI starts another control API replica that serves the REST/JSON
// mapping too (--rest-addr), next to startSystem's, and returns its client.
func (s *system) startRESTAPI(ctx context.Context, t *testing.T) restClient {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s.procs["api-rest"] = start(t, "api-rest", "intake", "api", "--database-url", s.dbURL, "--nats-url", s.natsURL,
		"--grpc-addr", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--http-addr", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"--rest-addr", addr)
	waitTCP(ctx, t, addr)
	return restClient{base: "http://" + addr}
}

// TestTriggerThroughREST: a data process starts an import over plain HTTP
// with the job's trigger token; the run succeeds, a repeat of its
// idempotency key returns it, and wrong, revoked, other jobs' and missing
// tokens are refused.
func TestTriggerThroughREST(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s := startSystem(t)
	rest := s.startRESTAPI(ctx, t)
	files := newFileServer(t, accountsCSV(0, 200, nil))
	job := s.createJob(ctx, t, accountsJob(files.url()))
	other := accountsJob(files.url())
	other.DisplayName = "Another job"
	otherJob := s.createJob(ctx, t, other)

	token, err := s.jobs.CreateTriggerToken(ctx, &intakev1.CreateTriggerTokenRequest{Parent: job.GetName()})
	require.NoError(t, err)
	otherToken, err := s.jobs.CreateTriggerToken(ctx, &intakev1.CreateTriggerTokenRequest{Parent: otherJob.GetName()})
	require.NoError(t, err)
	revoked, err := s.jobs.CreateTriggerToken(ctx, &intakev1.CreateTriggerTokenRequest{Parent: job.GetName()})
	require.NoError(t, err)
	_, err = s.jobs.RevokeTriggerToken(ctx, &intakev1.RevokeTriggerTokenRequest{Name: revoked.GetName()})
	require.NoError(t, err)

	body := fmt.Sprintf(`{"name":%q,"idempotencyKey":"export-2026-11-26"}`, job.GetName())
	code, out := rest.post(ctx, t, "intake.v1.JobService/TriggerJob", token.GetToken(), body)
	require.Equal(t, http.StatusOK, code, "%s", out)
	first := &intakev1.TriggerJobResponse{}
	require.NoError(t, protojson.Unmarshal(out, first))
	require.True(t, first.GetCreated())
	require.Equal(t, intakev1.Trigger_TRIGGER_TRIGGER_API, first.GetRun().GetTrigger())

	run := s.wait(ctx, t, first.GetRun().GetName(), nil)
	require.Equal(t, intakev1.RunState_RUN_STATE_SUCCEEDED, run.GetState(), run.GetMessage())
	require.EqualValues(t, 200, run.GetCounters().GetRowsCreated())
	require.EqualValues(t, 200, count(ctx, t, s.db, `SELECT count(*) FROM objects.accounts`))

	// GetRun over REST shows the finished run to an API token; without
	// one, or with the job's trigger token, it is refused.
	code, out = rest.post(ctx, t, "intake.v1.RunService/GetRun", e2eAdminToken, fmt.Sprintf(`{"name":%q}`, run.GetName()))
	require.Equal(t, http.StatusOK, code, "%s", out)
	for _, tok := range []string{"", token.GetToken()} {
		code, out := rest.post(ctx, t, "intake.v1.RunService/GetRun", tok, fmt.Sprintf(`{"name":%q}`, run.GetName()))
		require.Equal(t, http.StatusUnauthorized, code, "%s", out)
	}
	got := &intakev1.Run{}
	require.NoError(t, protojson.Unmarshal(out, got))
	require.Equal(t, intakev1.RunState_RUN_STATE_SUCCEEDED, got.GetState())

	// The same key again: the same run, no new one.
	code, out = rest.post(ctx, t, "intake.v1.JobService/TriggerJob", token.GetToken(), body)
	require.Equal(t, http.StatusOK, code, "%s", out)
	again := &intakev1.TriggerJobResponse{}
	require.NoError(t, protojson.Unmarshal(out, again))
	require.False(t, again.GetCreated())
	require.Equal(t, run.GetName(), again.GetRun().GetName())
	runs, err := s.runs.ListRuns(ctx, &intakev1.ListRunsRequest{Parent: job.GetName()})
	require.NoError(t, err)
	require.Len(t, runs.GetRuns(), 1)

	// Refused: a wrong token, a revoked one, another job's, none.
	denied := fmt.Sprintf(`{"code":"permission_denied","message":"this trigger token is not valid for %s"}`, job.GetName())
	for _, tok := range []string{"itk_not-a-token", revoked.GetToken(), otherToken.GetToken()} {
		code, out = rest.post(ctx, t, "intake.v1.JobService/TriggerJob", tok, body)
		require.Equal(t, http.StatusForbidden, code, "%s", out)
		require.JSONEq(t, denied, string(out))
	}
	code, out = rest.post(ctx, t, "intake.v1.JobService/TriggerJob", "", body)
	require.Equal(t, http.StatusUnauthorized, code, "%s", out)
	var e struct{ Code, Message string }
	require.NoError(t, json.Unmarshal(out, &e))
	require.Equal(t, "unauthenticated", e.Code)
	require.Equal(t, "trigger token required: send Authorization: Bearer <token>", e.Message)
}

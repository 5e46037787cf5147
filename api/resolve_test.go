package api_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// storedJob creates a disabled accounts job reading path of a stored
// connection.
func storedJob(t *testing.T, b *testBundle, id, conn, path string) *intakev1.Job {
	t.Helper()
	job := b.accountsJob(id)
	job.Connection, job.Enabled = nil, false
	job.ConnectionName = conn
	job.File = &intakev1.FileSelector{Selector: &intakev1.FileSelector_Path{Path: path}}
	created, err := b.jobs.CreateJob(testCtx(t), &intakev1.CreateJobRequest{JobId: id, Job: job})
	require.NoError(t, err)
	return created
}

// The fetcher gets the run's connection with its secrets, and the
// validators of the job's last successful run; a 304 ends the run skipped,
// its file being that run's.
func TestResolveConnectionAndNotModified(t *testing.T) {
	t.Parallel()
	b, conns := setupConnections(t, testKey(t, "k1"), false)
	ctx := testCtx(t)
	const token = "tok-resolve-8d2f"
	files := newBearerServer(t, token)
	_, err := conns.CreateConnection(ctx, &intakev1.CreateConnectionRequest{ConnectionId: "exports", Connection: files.httpConn(token)})
	require.NoError(t, err)
	storedJob(t, b, "acc", "connections/exports", "accounts.csv")

	first := b.runNow(t, "jobs/acc")
	res, err := b.stage.ResolveConnection(ctx, &intakev1.ResolveConnectionRequest{Run: first.GetName()})
	require.NoError(t, err)
	require.Equal(t, "connections/exports", res.GetConnection().GetName())
	require.Equal(t, token, res.GetConnection().GetHttp().GetBearer().GetToken(), "the secret in clear text")
	require.Equal(t, files.srv.URL+"/exports/", res.GetConnection().GetHttp().GetUrl())
	require.Empty(t, res.GetEtag(), "no successful run yet")
	require.Empty(t, res.GetLastSource())

	// The first run fetches the file, with its validators, size and time.
	body := []byte(accountsCSV)
	const src = "connections/exports: accounts.csv"
	modified := time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)
	id := first.GetName()[strings.LastIndex(first.GetName(), "/")+1:]
	info, err := b.archiveOf(t).Put(ctx, id, strings.NewReader(accountsCSV))
	require.NoError(t, err)
	b.report(t, &event{Run: first.GetName(), Stage: fetch, Kind: started})
	r := b.report(t, &event{Run: first.GetName(), Stage: fetch, Kind: fetched, Sha256: info.SHA256, Source: src,
		Counters: &intakev1.RunCounters{Bytes: info.Size}, Etag: `"v1"`, LastModified: modified.Format(time.RFC1123),
		SourceSize: int64(len(body)), SourceModifyTime: timestamppb.New(modified)})
	require.Equal(t, cont, r.GetDirective())
	b.finishRun(t, first.GetName(), 2)
	got, err := b.runs.GetRun(ctx, &intakev1.GetRunRequest{Name: first.GetName()})
	require.NoError(t, err)
	require.Equal(t, int64(len(body)), got.GetSourceSize())
	require.Equal(t, modified, got.GetSourceModifyTime().AsTime())
	require.Equal(t, src, got.GetSource())

	// The next run gets its validators.
	second := b.runNow(t, "jobs/acc")
	res, err = b.stage.ResolveConnection(ctx, &intakev1.ResolveConnectionRequest{Run: second.GetName()})
	require.NoError(t, err)
	require.Equal(t, `"v1"`, res.GetEtag())
	require.Equal(t, modified.Format(time.RFC1123), res.GetLastModified())
	require.Equal(t, src, res.GetLastSource())

	// The server answers 304: the run ends skipped, with the first run's
	// file, which its download gives.
	b.report(t, &event{Run: second.GetName(), Stage: fetch, Kind: started})
	r = b.report(t, &event{Run: second.GetName(), Stage: fetch, Kind: fetched, NotModified: true, Source: src, Etag: `"v1"`})
	require.Equal(t, skip, r.GetDirective())
	skipped := r.GetRun()
	require.Equal(t, intakev1.RunState_RUN_STATE_SKIPPED, skipped.GetState())
	require.Equal(t, "file unchanged since run "+first.GetName()+" (the server answered 304 Not Modified)", skipped.GetMessage())
	require.Equal(t, info.SHA256, skipped.GetSha256())
	require.Equal(t, src, skipped.GetSource())
	require.Equal(t, int64(len(body)), skipped.GetSourceSize())
	data, _, err := b.downloadSource(t, second.GetName())
	require.NoError(t, err)
	require.Equal(t, accountsCSV, string(data))
	// A report after that is told to drop the run.
	r = b.report(t, &event{Run: second.GetName(), Stage: fetch, Kind: finished})
	require.Equal(t, abandon, r.GetDirective())

	// A forced run gets no validators (it must read the file), and fails
	// if it gets a 304 anyway.
	forced, err := b.jobs.RunJob(ctx, &intakev1.RunJobRequest{Name: "jobs/acc", Force: true})
	require.NoError(t, err)
	res, err = b.stage.ResolveConnection(ctx, &intakev1.ResolveConnectionRequest{Run: forced.GetName()})
	require.NoError(t, err)
	require.Empty(t, res.GetEtag())
	require.Empty(t, res.GetLastModified())
	r = b.report(t, &event{Run: forced.GetName(), Stage: fetch, Kind: fetched, NotModified: true})
	require.Equal(t, abandon, r.GetDirective())
	require.Equal(t, intakev1.RunState_RUN_STATE_FAILED, r.GetRun().GetState())
	require.Contains(t, r.GetRun().GetMessage(), "a forced run needs the file")

	// A job with an inline connection gets it as is.
	inline := b.accountsJob("inline")
	inline.Enabled = false
	_, err = b.jobs.CreateJob(ctx, &intakev1.CreateJobRequest{JobId: "inline", Job: inline})
	require.NoError(t, err)
	run := b.runNow(t, "jobs/inline")
	res, err = b.stage.ResolveConnection(ctx, &intakev1.ResolveConnectionRequest{Run: run.GetName()})
	require.NoError(t, err)
	require.Equal(t, b.files.srv.URL+"/accounts.csv", res.GetConnection().GetHttp().GetUrl())
	require.Empty(t, res.GetConnection().GetName())

	_, err = b.stage.ResolveConnection(ctx, &intakev1.ResolveConnectionRequest{Run: "jobs/acc/runs/nope"})
	requireCode(t, err, codes.NotFound, "jobs/acc/runs/nope")
	_, err = b.stage.ResolveConnection(ctx, &intakev1.ResolveConnectionRequest{Run: "acc"})
	requireCode(t, err, codes.InvalidArgument, "not a run name")
}

// Key rotation: secrets sealed with an old key still open once a new key
// is first in the ring; new secrets use the new key; a ring without the
// old key says which key is missing.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	k1, k2 := testKey(t, "k1"), testKey(t, "k2")
	a, connsA := setupConnections(t, k1, false)
	ctx := testCtx(t)
	const token, newToken = "tok-rotation-k1", "tok-rotation-k2"
	files := newBearerServer(t, token)
	for _, id := range []string{"exports", "old"} {
		_, err := connsA.CreateConnection(ctx, &intakev1.CreateConnectionRequest{ConnectionId: id, Connection: files.httpConn(token)})
		require.NoError(t, err)
	}
	storedJob(t, a, "acc", "connections/exports", "accounts.csv")
	pool := pgPool(t, a.dsn)
	secretsOf := func(id string) string {
		t.Helper()
		var s string
		require.NoError(t, pool.QueryRow(ctx, `SELECT secrets::text FROM intake.connections WHERE id = $1`, id).Scan(&s))
		return s
	}
	require.Contains(t, secretsOf("exports"), `"v1:k1:`)

	// A replica with the rotated ring opens the old secrets.
	b, connsB := setupConnections(t, k2+","+k1, false, a)
	run := b.runNow(t, "jobs/acc")
	res, err := b.stage.ResolveConnection(ctx, &intakev1.ResolveConnectionRequest{Run: run.GetName()})
	require.NoError(t, err)
	require.Equal(t, token, res.GetConnection().GetHttp().GetBearer().GetToken())
	ok := testResult(t, connsB, &intakev1.TestConnectionRequest{Name: "connections/exports"})
	require.True(t, ok.GetOk(), ok.GetMessage())

	// A secret written now is sealed with the new key.
	files.setToken(newToken)
	_, err = connsB.UpdateConnection(ctx, &intakev1.UpdateConnectionRequest{Connection: &intakev1.Connection{Name: "connections/exports",
		Kind: &intakev1.Connection_Http{Http: &intakev1.HttpConnection{Auth: &intakev1.HttpConnection_Bearer{Bearer: &intakev1.BearerAuth{Token: newToken}}}}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"http.bearer"}}})
	require.NoError(t, err)
	require.Contains(t, secretsOf("exports"), `"v1:k2:`)
	require.NotContains(t, secretsOf("exports"), newToken)
	ok = testResult(t, connsB, &intakev1.TestConnectionRequest{Name: "connections/exports",
		File: &intakev1.FileSelector{Selector: &intakev1.FileSelector_Path{Path: "accounts.csv"}}})
	require.True(t, ok.GetOk(), ok.GetMessage())

	// A replica with only the new key opens the new secret, and says which
	// key the old one needs.
	_, connsC := setupConnections(t, k2, false, a)
	ok = testResult(t, connsC, &intakev1.TestConnectionRequest{Name: "connections/exports"})
	require.True(t, ok.GetOk(), ok.GetMessage())
	_, err = connsC.TestConnection(ctx, &intakev1.TestConnectionRequest{Name: "connections/old"})
	st := requireCode(t, err, codes.FailedPrecondition, "connections/old", `key "k1"`)
	require.NotContains(t, st.Message(), token)
	require.NotContains(t, st.Message(), strings.SplitN(k1, ":", 2)[1])

	// Another row's sealed value does not open here.
	_, err = pool.Exec(ctx, `UPDATE intake.connections SET secrets = (SELECT secrets FROM intake.connections WHERE id = 'exports') WHERE id = 'old'`)
	require.NoError(t, err)
	_, err = connsC.TestConnection(ctx, &intakev1.TestConnectionRequest{Name: "connections/old"})
	requireCode(t, err, codes.FailedPrecondition, "connections/old", "does not open")
}

// Webhook secrets are sealed: written sealed with a key ring, and moved
// from the plain column when an API with a key ring starts; deliveries are
// signed with them.
func TestWebhookSecretSealed(t *testing.T) {
	t.Parallel()
	k1 := testKey(t, "k1")
	a, _ := setupConnections(t, k1, false)
	ctx := testCtx(t)
	rcv := newReceiver(t, 204)
	const secret, legacy = "hook-secret-sealed-1", "hook-secret-legacy-2"
	_, err := a.jobs.CreateJob(ctx, &intakev1.CreateJobRequest{JobId: "w", Job: hookJob(a, "W", rcv.srv.URL, secret)})
	require.NoError(t, err)
	pool := pgPool(t, a.dsn)
	var plain, sealed *string
	require.NoError(t, pool.QueryRow(ctx, `SELECT webhook_secret, webhook_secret_sealed FROM intake.jobs WHERE id = 'w'`).Scan(&plain, &sealed))
	require.Nil(t, plain)
	require.NotNil(t, sealed)
	require.True(t, strings.HasPrefix(*sealed, "v1:k1:"))
	require.NotContains(t, *sealed, secret)

	// A secret in the plain column (an older API wrote it) is sealed when
	// an API with a key ring starts.
	_, err = a.jobs.CreateJob(ctx, &intakev1.CreateJobRequest{JobId: "legacy", Job: hookJob(a, "L", rcv.srv.URL, "placeholder")})
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `UPDATE intake.jobs SET webhook_secret = $1, webhook_secret_sealed = NULL WHERE id = 'legacy'`, legacy)
	require.NoError(t, err)
	setupConnections(t, k1, false, a)
	require.NoError(t, pool.QueryRow(ctx, `SELECT webhook_secret, webhook_secret_sealed FROM intake.jobs WHERE id = 'legacy'`).Scan(&plain, &sealed))
	require.Nil(t, plain)
	require.NotNil(t, sealed)
	job, err := a.jobs.GetJob(ctx, &intakev1.GetJobRequest{Name: "jobs/legacy"})
	require.NoError(t, err)
	require.True(t, job.GetWebhook().GetSecretSet())
	require.Empty(t, job.GetWebhook().GetSecret())

	// Deliveries are signed with the secrets.
	for _, tc := range []struct{ job, secret string }{{"jobs/w", secret}, {"jobs/legacy", legacy}} {
		run := a.runNow(t, tc.job)
		b := a.report(t, &event{Run: run.GetName(), Stage: fetch, Kind: failed, Message: "boom"})
		require.Equal(t, intakev1.RunState_RUN_STATE_FAILED, b.GetRun().GetState())
		waitDeliveries(t, a, run.GetName(), 1)
	}
	reqs := rcv.requests()
	require.Len(t, reqs, 2)
	for _, req := range reqs {
		signedBy := ""
		for _, s := range []string{secret, legacy} {
			if verify(s, req) {
				signedBy = s
			}
		}
		require.NotEmpty(t, signedBy, "delivery %s not signed with its job's secret", req.header.Get("X-Intake-Delivery"))
		want := secret
		if strings.HasPrefix(req.header.Get("X-Intake-Delivery"), "jobs/legacy/") {
			want = legacy
		}
		require.Equal(t, want, signedBy)
	}
}

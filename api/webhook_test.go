package api_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/intakehq/intake/api"
	"github.com/intakehq/intake/pkg/natstest"
	"github.com/intakehq/intake/pkg/pgtest"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// setupWebhooks is setup with retries after milliseconds and a fast poll,
// then change applied to the Config. With a shared bundle, the server is
// another replica on its database and NATS.
func setupWebhooks(t *testing.T, change func(*api.Config), shared ...*testBundle) *testBundle {
	t.Helper()
	var ns *natstest.Server
	dsn := ""
	if len(shared) > 0 {
		ns, dsn = shared[0].nats, shared[0].dsn
	} else {
		ns, dsn = natstest.Start(t), pgtest.NewDatabase(t)
	}
	_, js := ns.Connect(t)
	reg := prometheus.NewRegistry()
	cfg := api.Config{
		DatabaseURL: dsn, NATSURL: ns.URL, GRPCAddr: "127.0.0.1:0", Registerer: reg,
		Logger:              slog.New(slog.NewTextHandler(io.Discard, nil)),
		WebhookBackoff:      []time.Duration{20 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond},
		WebhookPollInterval: 20 * time.Millisecond,
	}
	if change != nil {
		change(&cfg)
	}
	srv, err := api.New(cfg)
	require.NoError(t, err)
	startServer(t, srv)
	conn, err := grpc.NewClient(srv.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return &testBundle{
		srv: srv, reg: reg, conn: conn, js: js, dsn: cfg.DatabaseURL, nats: ns, files: newFileServer(t),
		jobs:  intakev1.NewJobServiceClient(conn),
		runs:  intakev1.NewRunServiceClient(conn),
		stage: intakev1.NewStageServiceClient(conn),
	}
}

// hookRequest is a webhook POST as the receiver got it.
type hookRequest struct {
	header http.Header
	body   []byte
}

// receiver is a webhook receiver answering each POST with the next status
// of its script (the last one repeats); a status of 0 hangs until the
// request is cut off.
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	script []int
	got    []hookRequest
}

func newReceiver(t *testing.T, script ...int) *receiver {
	r := &receiver{script: script}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		status := r.script[min(len(r.got), len(r.script)-1)]
		r.got = append(r.got, hookRequest{header: req.Header.Clone(), body: body})
		r.mu.Unlock()
		if status == 0 {
			<-req.Context().Done()
			return
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "receiver says\nno")
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) requests() []hookRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hookRequest(nil), r.got...)
}

// verify checks a request's signature as a receiver would: the HMAC-SHA256
// of the exact body with the secret.
func verify(secret string, req hookRequest) bool {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(req.body)
	want := "sha256=" + hex.EncodeToString(m.Sum(nil))
	return hmac.Equal([]byte(want), []byte(req.header.Get("X-Intake-Signature")))
}

// hookJob is a disabled accounts job (runs start with RunJob) with a
// webhook to url.
func hookJob(b *testBundle, name, url, secret string) *intakev1.Job {
	job := b.accountsJob(name)
	job.Enabled = false
	job.Webhook = &intakev1.Webhook{Url: url, Secret: secret}
	return job
}

// waitDeliveries waits until run has n webhook attempts recorded and returns it.
func waitDeliveries(t *testing.T, b *testBundle, run string, n int) *intakev1.Run {
	t.Helper()
	var got *intakev1.Run
	require.Eventually(t, func() bool {
		r, err := b.runs.GetRun(testCtx(t), &intakev1.GetRunRequest{Name: run})
		require.NoError(t, err)
		got = r
		return len(r.GetWebhookDeliveries()) >= n
	}, 20*time.Second, 20*time.Millisecond, "run %s: %d webhook attempts recorded, want %d", run, len(got.GetWebhookDeliveries()), n)
	return got
}

// A receiver that fails twice, then answers 200: three attempts, recorded
// on the run, the last one delivered; every POST is the same signed body.
func TestWebhookRetriesUntilDelivered(t *testing.T) {
	t.Parallel()
	b := setupWebhooks(t, nil)
	ctx := testCtx(t)
	rcv := newReceiver(t, 500, 503, 200)
	const secret = "whsec-3f1d7a"
	_, err := b.jobs.CreateJob(ctx, &intakev1.CreateJobRequest{JobId: "hooked", Job: hookJob(b, "Hooked", rcv.srv.URL+"/hooks/intake?token=t0k", secret)})
	require.NoError(t, err)

	run := b.runNow(t, "jobs/hooked").GetName()
	b.completeRun(t, run, shaA, []int64{2}, []int64{0})
	got := waitDeliveries(t, b, run, 3)
	ds := got.GetWebhookDeliveries()
	require.Len(t, ds, 3)
	for i, d := range ds[:2] {
		require.EqualValues(t, i+1, d.GetAttempt())
		require.False(t, d.GetDelivered())
		require.EqualValues(t, []int{500, 503}[i], d.GetStatusCode())
		require.Contains(t, d.GetError(), "HTTP "+[]string{"500", "503"}[i])
		require.Contains(t, d.GetError(), "receiver says no", "the response's start, on one line")
		require.NotContains(t, d.GetError(), "t0k", "the URL (its token) is not in the error")
	}
	require.EqualValues(t, 3, ds[2].GetAttempt())
	require.True(t, ds[2].GetDelivered())
	require.EqualValues(t, 200, ds[2].GetStatusCode())
	require.Empty(t, ds[2].GetError())
	require.True(t, ds[0].GetTime().AsTime().Before(ds[2].GetTime().AsTime()))

	reqs := rcv.requests()
	require.Len(t, reqs, 3)
	for i, r := range reqs {
		require.Equal(t, "application/json", r.header.Get("Content-Type"))
		require.True(t, verify(secret, r), "attempt %d: signature %q does not verify", i+1, r.header.Get("X-Intake-Signature"))
		require.False(t, verify("another secret", r))
		require.Equal(t, run+"/"+strconv.Itoa(i+1), r.header.Get("X-Intake-Delivery"))
		require.Equal(t, string(reqs[0].body), string(r.body), "every attempt sends the same body")
	}
	var p map[string]any
	require.NoError(t, json.Unmarshal(reqs[0].body, &p))
	require.Equal(t, run, p["run"])
	require.Equal(t, "jobs/hooked", p["job"])
	require.Equal(t, got.GetState().String(), p["state"])
	require.Equal(t, "RUN_STATE_SUCCEEDED", p["state"])
	require.Equal(t, "TRIGGER_RUN_NOW", p["trigger"])
	require.Equal(t, false, p["dry_run"])
	require.Equal(t, "", p["message"])
	require.Equal(t, got.GetEndTime().AsTime().Format(time.RFC3339Nano), p["end_time"])
	require.Equal(t, got.GetCreateTime().AsTime().Format(time.RFC3339Nano), p["create_time"])
	counters := p["counters"].(map[string]any)
	require.EqualValues(t, 2, counters["rows_read"])
	require.EqualValues(t, 2, counters["rows_created"])
	require.EqualValues(t, 0, counters["rows_rejected"], "zeros are sent too")
	require.NotContains(t, string(reqs[0].body), secret)

	require.Equal(t, 1.0, metricValue(t, b.reg, "intake_api_webhook_deliveries_total", map[string]string{"outcome": "delivered"}))
	require.Equal(t, 2.0, metricValue(t, b.reg, "intake_api_webhook_deliveries_total", map[string]string{"outcome": "failed"}))
	require.Equal(t, 0.0, metricValue(t, b.reg, "intake_api_webhook_deliveries_total", map[string]string{"outcome": "gave_up"}))

	// Delivered: no more attempts.
	time.Sleep(200 * time.Millisecond)
	require.Len(t, rcv.requests(), 3)
}

// A receiver that never answers 2xx gets the maximum number of attempts
// (one that hangs past the timeout counts as failed), then the delivery is
// given up. A cancelled run gets its webhook too.
func TestWebhookGivesUp(t *testing.T) {
	t.Parallel()
	b := setupWebhooks(t, func(c *api.Config) {
		c.WebhookBackoff = []time.Duration{10 * time.Millisecond, 10 * time.Millisecond}
		c.WebhookTimeout = 300 * time.Millisecond
	})
	ctx := testCtx(t)
	rcv := newReceiver(t, 0, 500)
	_, err := b.jobs.CreateJob(ctx, &intakev1.CreateJobRequest{JobId: "doomed", Job: hookJob(b, "Doomed", rcv.srv.URL, "s")})
	require.NoError(t, err)
	run := b.runNow(t, "jobs/doomed").GetName()
	_, err = b.runs.CancelRun(ctx, &intakev1.CancelRunRequest{Name: run})
	require.NoError(t, err)

	require.Eventually(t, func() bool {
		return metricValue(t, b.reg, "intake_api_webhook_deliveries_total", map[string]string{"outcome": "gave_up"}) == 1
	}, 20*time.Second, 20*time.Millisecond)
	got := waitDeliveries(t, b, run, 3)
	ds := got.GetWebhookDeliveries()
	require.Len(t, ds, 3)
	require.EqualValues(t, 0, ds[0].GetStatusCode(), "no response")
	require.Equal(t, "no response within 300ms", ds[0].GetError())
	for _, d := range ds {
		require.False(t, d.GetDelivered())
		require.NotEmpty(t, d.GetError())
	}
	require.EqualValues(t, 500, ds[2].GetStatusCode())
	require.Equal(t, 2.0, metricValue(t, b.reg, "intake_api_webhook_deliveries_total", map[string]string{"outcome": "failed"}))
	require.Equal(t, 0.0, metricValue(t, b.reg, "intake_api_webhook_deliveries_total", map[string]string{"outcome": "delivered"}))

	var p map[string]any
	require.NoError(t, json.Unmarshal(rcv.requests()[0].body, &p))
	require.Equal(t, "RUN_STATE_CANCELLED", p["state"])

	// Given up: no more attempts.
	time.Sleep(200 * time.Millisecond)
	require.Len(t, rcv.requests(), 3)
	got, err = b.runs.GetRun(ctx, &intakev1.GetRunRequest{Name: run})
	require.NoError(t, err)
	require.Len(t, got.GetWebhookDeliveries(), 3)
}

// The webhook secret is write only: no read of the job returns it, it is
// not stored in the job's spec nor sent to the workers, an update that does
// not name it keeps it, and the deliveries are signed with the current one.
func TestWebhookSecretIsWriteOnly(t *testing.T) {
	t.Parallel()
	b := setupWebhooks(t, nil)
	ctx := testCtx(t)
	rcv := newReceiver(t, 204)
	const secret = "first-secret-9c2e"
	created, err := b.jobs.CreateJob(ctx, &intakev1.CreateJobRequest{JobId: "w", Job: hookJob(b, "W", rcv.srv.URL, secret)})
	require.NoError(t, err)
	shown := func(job *intakev1.Job) {
		t.Helper()
		require.Equal(t, rcv.srv.URL, job.GetWebhook().GetUrl())
		require.Empty(t, job.GetWebhook().GetSecret())
		require.True(t, job.GetWebhook().GetSecretSet())
	}
	shown(created)
	job, err := b.jobs.GetJob(ctx, &intakev1.GetJobRequest{Name: "jobs/w"})
	require.NoError(t, err)
	shown(job)
	list, err := b.jobs.ListJobs(ctx, &intakev1.ListJobsRequest{})
	require.NoError(t, err)
	require.Len(t, list.GetJobs(), 1)
	shown(list.GetJobs()[0])

	// An update naming other fields keeps it; so does an update with an
	// empty mask that sends the job as read (secret empty).
	job.DisplayName = "W renamed"
	updated, err := b.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{Job: job, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name"}}})
	require.NoError(t, err)
	shown(updated)
	updated.Description = "full update"
	updated, err = b.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{Job: updated})
	require.NoError(t, err)
	shown(updated)

	// Deliveries are signed with it.
	run := b.runNow(t, "jobs/w").GetName()
	_, err = b.runs.CancelRun(ctx, &intakev1.CancelRunRequest{Name: run})
	require.NoError(t, err)
	require.True(t, waitDeliveries(t, b, run, 1).GetWebhookDeliveries()[0].GetDelivered())
	require.True(t, verify(secret, rcv.requests()[0]), "signed with the secret the job was created with")

	// It is in none of the places a job is stored or sent.
	pool := pgPool(t, b.dsn)
	var spec, snapshot string
	require.NoError(t, pool.QueryRow(ctx, `SELECT spec::text FROM intake.jobs WHERE id = 'w'`).Scan(&spec))
	require.NotContains(t, spec, secret)
	require.Contains(t, spec, rcv.srv.URL)
	require.NoError(t, pool.QueryRow(ctx, `SELECT string_agg(job::text, '') FROM intake.runs WHERE job_id = 'w'`).Scan(&snapshot))
	require.NotContains(t, snapshot, secret)
	for _, req := range publishedRunRequests(t, b) {
		require.Empty(t, req.GetJob().GetWebhook().GetSecret(), "the run request carries no secret")
	}

	// A new secret, named in the mask, signs the next deliveries.
	const second = "second-secret-41aa"
	updated, err = b.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{
		Job:        &intakev1.Job{Name: "jobs/w", Webhook: &intakev1.Webhook{Secret: second}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"webhook.secret"}},
	})
	require.NoError(t, err)
	shown(updated)
	run = b.runNow(t, "jobs/w").GetName()
	_, err = b.runs.CancelRun(ctx, &intakev1.CancelRunRequest{Name: run})
	require.NoError(t, err)
	waitDeliveries(t, b, run, 1)
	require.True(t, verify(second, rcv.requests()[1]))
	require.False(t, verify(secret, rcv.requests()[1]))

	// A bad URL is refused, naming the field.
	_, err = b.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{
		Job:        &intakev1.Job{Name: "jobs/w", Webhook: &intakev1.Webhook{Url: "ftp://files.example.com/in"}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"webhook.url"}},
	})
	st := requireCode(t, err, codes.InvalidArgument)
	require.Contains(t, fieldViolations(t, st)["job.webhook.url"], "not an http or https URL")
	_, err = b.jobs.CreateJob(ctx, &intakev1.CreateJobRequest{JobId: "bad", Job: hookJob(b, "Bad", "https:///nohost", "x")})
	st = requireCode(t, err, codes.InvalidArgument)
	require.Contains(t, fieldViolations(t, st)["job.webhook.url"], "has no host")

	// Removing the webhook drops its secret; the job's runs send nothing.
	updated, err = b.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{
		Job: &intakev1.Job{Name: "jobs/w"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"webhook"}},
	})
	require.NoError(t, err)
	require.Nil(t, updated.GetWebhook())
	var secretSet bool
	require.NoError(t, pool.QueryRow(ctx, `SELECT webhook_secret IS NOT NULL FROM intake.jobs WHERE id = 'w'`).Scan(&secretSet))
	require.False(t, secretSet)
	run = b.runNow(t, "jobs/w").GetName()
	_, err = b.runs.CancelRun(ctx, &intakev1.CancelRunRequest{Name: run})
	require.NoError(t, err)
	time.Sleep(200 * time.Millisecond)
	got, err := b.runs.GetRun(ctx, &intakev1.GetRunRequest{Name: run})
	require.NoError(t, err)
	require.Empty(t, got.GetWebhookDeliveries())
	require.Len(t, rcv.requests(), 2)
	require.False(t, strings.Contains(string(rcv.requests()[1].body), second))
}

// With two API replicas polling, each run's webhook is delivered once.
func TestWebhookOncePerRunAcrossReplicas(t *testing.T) {
	t.Parallel()
	a := setupWebhooks(t, nil)
	b := setupWebhooks(t, nil, a)
	ctx := testCtx(t)
	rcv := newReceiver(t, 200)
	_, err := a.jobs.CreateJob(ctx, &intakev1.CreateJobRequest{JobId: "twice", Job: hookJob(a, "Twice", rcv.srv.URL, "s")})
	require.NoError(t, err)
	var runs []string
	for i := range 6 {
		bundle := []*testBundle{a, b}[i%2]
		run := bundle.runNow(t, "jobs/twice").GetName()
		_, err = bundle.runs.CancelRun(ctx, &intakev1.CancelRunRequest{Name: run})
		require.NoError(t, err)
		runs = append(runs, run)
	}
	for _, run := range runs {
		ds := waitDeliveries(t, a, run, 1).GetWebhookDeliveries()
		require.True(t, ds[0].GetDelivered())
	}
	time.Sleep(200 * time.Millisecond)
	seen := map[string]int{}
	for _, r := range rcv.requests() {
		seen[r.header.Get("X-Intake-Delivery")]++
	}
	require.Len(t, seen, len(runs))
	for _, run := range runs {
		require.Equal(t, 1, seen[run+"/1"], run)
	}
	total := 0.0
	for _, x := range []*testBundle{a, b} {
		total += metricValue(t, x.reg, "intake_api_webhook_deliveries_total", map[string]string{"outcome": "delivered"})
	}
	require.Equal(t, float64(len(runs)), total)
}

func TestWebhookConfig(t *testing.T) {
	t.Parallel()
	ok := api.Config{DatabaseURL: "postgres://x@localhost/db", NATSURL: "nats://localhost:4222", GRPCAddr: ":7070"}
	for _, tc := range []struct {
		change func(*api.Config)
		want   string
	}{
		{func(c *api.Config) { c.WebhookBackoff = []time.Duration{time.Second, 0} }, "WebhookBackoff[1] 0s: every wait must be positive"},
		{func(c *api.Config) { c.WebhookTimeout = -time.Second }, "WebhookTimeout -1s is negative"},
		{func(c *api.Config) { c.WebhookPollInterval = time.Millisecond }, "WebhookPollInterval 1ms: must be at least 10ms"},
	} {
		c := ok
		tc.change(&c)
		err := c.Validate()
		require.Error(t, err, tc.want)
		require.Contains(t, err.Error(), tc.want)
	}
	require.Len(t, api.DefaultWebhookBackoff(), 5, "six attempts by default")
}

package api_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	pipelinev1 "github.com/intakehq/intake/proto/gen/intake/pipeline/v1"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// storedRun is a run written straight into the database, as a process that
// died before publishing its run request (or a NATS outage) leaves it.
type storedRun struct {
	state    intakev1.RunState
	trigger  intakev1.Trigger
	age      time.Duration // create_time is this long ago
	snapshot string        // the job snapshot; the job's protojson when empty
}

// insertRun writes run of job into the database and returns its name and
// create time.
func insertRun(t *testing.T, pool *pgxpool.Pool, job *intakev1.Job, run storedRun) (string, time.Time) {
	t.Helper()
	id := uuid.NewString()
	jobID := job.GetName()[len("jobs/"):]
	created := time.Now().Add(-run.age).UTC().Truncate(time.Microsecond)
	snapshot := run.snapshot
	if snapshot == "" {
		b, err := protojson.Marshal(job)
		require.NoError(t, err)
		snapshot = string(b)
	}
	var scheduled *time.Time
	if run.trigger == intakev1.Trigger_TRIGGER_SCHEDULE {
		scheduled = &created
	}
	_, err := pool.Exec(testCtx(t), `INSERT INTO intake.runs (id, job_id, state, trigger, job, scheduled_time, create_time, update_time)
		VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $7)`,
		id, jobID, int16(run.state), int16(run.trigger), snapshot, scheduled, created)
	require.NoError(t, err)
	return fmt.Sprintf("jobs/%s/runs/%s", jobID, id), created
}

// runRequests reads every message of INTAKE_RUNS (through a consumer that
// acks them, so they are gone afterwards).
func runRequests(t *testing.T, js jetstream.JetStream, wait time.Duration) []jetstream.Msg {
	t.Helper()
	ctx := testCtx(t)
	cons, err := js.CreateOrUpdateConsumer(ctx, "INTAKE_RUNS", jetstream.ConsumerConfig{Durable: "test", AckPolicy: jetstream.AckExplicitPolicy})
	require.NoError(t, err)
	batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(wait))
	require.NoError(t, err)
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		require.NoError(t, m.Ack())
		msgs = append(msgs, m)
	}
	require.NoError(t, batch.Error())
	return msgs
}

// streamMsgs is the number of messages waiting in INTAKE_RUNS.
func streamMsgs(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	st, err := js.Stream(testCtx(t), "INTAKE_RUNS")
	require.NoError(t, err)
	info, err := st.Info(testCtx(t))
	require.NoError(t, err)
	return info.State.Msgs
}

func requeued(t *testing.T, bs ...*testBundle) float64 {
	t.Helper()
	var n float64
	for _, b := range bs {
		n += metricValue(t, b.reg, "intake_api_runs_requeued_total", nil)
	}
	return n
}

// A run left QUEUED without its run request is queued again by the
// sweeper — by one of the API replicas, once — with the job snapshot it was
// created with; runs a stage reported on, and finished runs, are not.
func TestSweeperRequeuesStuckRun(t *testing.T) {
	t.Parallel()
	const requeueAfter = 3 * time.Second
	a := setup(t, setupOpts{requeueAfter: requeueAfter})
	b := setup(t, setupOpts{dsn: a.dsn, nats: a.nats, requeueAfter: requeueAfter})
	pool := pgPool(t, a.dsn)
	job := a.createJob(t, "accounts")

	// The scheduler created this run ten minutes ago and died before
	// publishing it.
	stuck, created := insertRun(t, pool, job, storedRun{state: intakev1.RunState_RUN_STATE_QUEUED, trigger: intakev1.Trigger_TRIGGER_SCHEDULE, age: 10 * time.Minute})
	// The fetcher got this one.
	fetching, _ := insertRun(t, pool, job, storedRun{state: intakev1.RunState_RUN_STATE_QUEUED, trigger: intakev1.Trigger_TRIGGER_RUN_NOW, age: 10 * time.Minute})
	a.report(t, &event{Run: fetching, Stage: fetch, Kind: started})
	insertRun(t, pool, job, storedRun{state: intakev1.RunState_RUN_STATE_FAILED, trigger: intakev1.Trigger_TRIGGER_RUN_NOW, age: 10 * time.Minute})
	insertRun(t, pool, job, storedRun{state: intakev1.RunState_RUN_STATE_SUCCEEDED, trigger: intakev1.Trigger_TRIGGER_SCHEDULE, age: time.Hour})

	require.Eventually(t, func() bool { return requeued(t, a, b) >= 1 }, 20*time.Second, 50*time.Millisecond)
	msgs := runRequests(t, a.js, 300*time.Millisecond)
	require.Len(t, msgs, 1, "exactly one run request")
	require.Equal(t, 1.0, requeued(t, a, b), "one replica requeued it")
	m := msgs[0]
	require.Equal(t, "intake.run.request", m.Subject())
	require.Equal(t, stuck, m.Headers().Get(jetstream.MsgIDHeader))
	var req pipelinev1.RunRequest
	require.NoError(t, proto.Unmarshal(m.Data(), &req))
	require.Equal(t, stuck, req.GetRun())
	require.Equal(t, intakev1.Trigger_TRIGGER_SCHEDULE, req.GetTrigger())
	require.True(t, proto.Equal(job, req.GetJob()), "the job snapshot of the run: %v", req.GetJob())
	require.True(t, created.Equal(req.GetCreateTime().AsTime()), "create time %s, want %s", req.GetCreateTime().AsTime(), created)

	// Requeueing changes nothing a client sees.
	run, err := a.runs.GetRun(testCtx(t), &intakev1.GetRunRequest{Name: stuck})
	require.NoError(t, err)
	require.Equal(t, intakev1.RunState_RUN_STATE_QUEUED, run.GetState())

	// Once the fetcher reports on it, it is never requeued again.
	b.report(t, &event{Run: stuck, Stage: fetch, Kind: started})
	n := requeued(t, a, b)
	time.Sleep(requeueAfter + requeueAfter/2 + 500*time.Millisecond)
	require.Equal(t, n, requeued(t, a, b))
	require.Empty(t, runRequests(t, a.js, 200*time.Millisecond))
}

// Replicas sweeping at the same instant split the stuck runs between them:
// each is published by exactly one. A run is not claimed again before
// RequeueAfter has passed.
func TestRequeueOnceAcrossReplicas(t *testing.T) {
	t.Parallel()
	// Long enough that the background sweeps never run during the test.
	const requeueAfter = time.Hour
	a := setup(t, setupOpts{requeueAfter: requeueAfter})
	b := setup(t, setupOpts{dsn: a.dsn, nats: a.nats, requeueAfter: requeueAfter})
	pool := pgPool(t, a.dsn)
	job := a.createJob(t, "accounts")

	want := map[string]bool{}
	for i := range 250 { // more than one claim batch
		trigger := intakev1.Trigger_TRIGGER_RUN_NOW
		if i%2 == 0 {
			trigger = intakev1.Trigger_TRIGGER_SCHEDULE
		}
		name, _ := insertRun(t, pool, job, storedRun{state: intakev1.RunState_RUN_STATE_QUEUED, trigger: trigger, age: 2*time.Hour + time.Duration(i)*time.Second})
		want[name] = true
	}
	// Too young to be stuck.
	young, _ := insertRun(t, pool, job, storedRun{state: intakev1.RunState_RUN_STATE_QUEUED, trigger: intakev1.Trigger_TRIGGER_RUN_NOW, age: 30 * time.Minute})
	cancelled, _ := insertRun(t, pool, job, storedRun{state: intakev1.RunState_RUN_STATE_CANCELLED, trigger: intakev1.Trigger_TRIGGER_RUN_NOW, age: 2 * time.Hour})
	// A snapshot that cannot be read fails its run, with the reason.
	broken, _ := insertRun(t, pool, job, storedRun{state: intakev1.RunState_RUN_STATE_QUEUED, trigger: intakev1.Trigger_TRIGGER_RUN_NOW, age: 2 * time.Hour,
		snapshot: `{"displayName": 42}`})

	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total int
		errs  []error
	)
	for i := range 8 {
		srv := a.srv
		if i%2 == 1 {
			srv = b.srv
		}
		wg.Go(func() {
			n, err := srv.RequeueStuckRuns(context.Background())
			mu.Lock()
			defer mu.Unlock()
			total += n
			if err != nil {
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	require.Empty(t, errs)
	require.Equal(t, len(want), total)
	require.Equal(t, float64(len(want)), requeued(t, a, b))

	got := map[string]bool{}
	for _, m := range runRequests(t, a.js, time.Second) {
		id := m.Headers().Get(jetstream.MsgIDHeader)
		require.False(t, got[id], "%s published twice", id)
		got[id] = true
	}
	require.Equal(t, want, got)
	require.NotContains(t, got, young)
	require.NotContains(t, got, cancelled)

	run, err := a.runs.GetRun(testCtx(t), &intakev1.GetRunRequest{Name: broken})
	require.NoError(t, err)
	require.Equal(t, intakev1.RunState_RUN_STATE_FAILED, run.GetState())
	require.Contains(t, run.GetMessage(), "could not queue the run again: decode the job snapshot")
	require.Equal(t, 1.0, metricValue(t, a.reg, "intake_api_runs_finished_total", map[string]string{"state": "failed", "trigger": "run_now"})+
		metricValue(t, b.reg, "intake_api_runs_finished_total", map[string]string{"state": "failed", "trigger": "run_now"}))

	// Just claimed: the next sweeps leave them alone.
	for _, srv := range []interface {
		RequeueStuckRuns(context.Context) (int, error)
	}{a.srv, b.srv} {
		n, err := srv.RequeueStuckRuns(context.Background())
		require.NoError(t, err)
		require.Zero(t, n)
	}
	require.Zero(t, streamMsgs(t, a.js))
}

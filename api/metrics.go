package api

import (
	"context"
	"fmt"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/intakehq/intake/api/internal/store"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// The control API's metrics; docs/metrics.md is their catalog (names,
// labels, the dashboard panels and alerts that use them). No metric has a
// run or job label: both are unbounded over time, and the run history
// (ListRuns) answers per-job questions.

// Final run states and triggers: the label values of the run counters,
// created at zero so that rate() and ratios see the first run.
var (
	finalRunStates = []intakev1.RunState{
		intakev1.RunState_RUN_STATE_SUCCEEDED,
		intakev1.RunState_RUN_STATE_PARTIALLY_SUCCEEDED,
		intakev1.RunState_RUN_STATE_FAILED,
		intakev1.RunState_RUN_STATE_SKIPPED,
		intakev1.RunState_RUN_STATE_CANCELLED,
	}
	activeRunStates = []intakev1.RunState{
		intakev1.RunState_RUN_STATE_QUEUED,
		intakev1.RunState_RUN_STATE_FETCHING,
		intakev1.RunState_RUN_STATE_MAPPING,
		intakev1.RunState_RUN_STATE_LOADING,
	}
	runTriggers = []intakev1.Trigger{
		intakev1.Trigger_TRIGGER_SCHEDULE,
		intakev1.Trigger_TRIGGER_RUN_NOW,
		intakev1.Trigger_TRIGGER_TRIGGER_API,
		intakev1.Trigger_TRIGGER_REPLAY,
	}
	// rowOutcomes are the stage and outcome labels of intake_api_rows_total.
	rowOutcomes = [][2]string{
		{"map", "read"}, {"map", "rejected"},
		{"load", "staged"}, {"load", "created"}, {"load", "updated"}, {"load", "unchanged"}, {"load", "ignored"},
	}
)

type metrics struct {
	runsFinished *prometheus.CounterVec
	rows         *prometheus.CounterVec
	runDuration  *prometheus.HistogramVec
	grpc         *grpcprom.ServerMetrics
	// runs exports the runs in progress once Run has connected (watchRuns).
	runs         *runsInProgress
	runsRequeued prometheus.Counter
	jobsDisabled prometheus.Counter     // jobops.go
	filesExpired prometheus.Counter     // issue 4 (files)
	triggers     *prometheus.CounterVec // trigger.go
	// jobCache exports the store's job cache once Run made the store.
	jobCache *jobCacheCollector
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &metrics{
		runsFinished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "intake_api_runs_finished_total",
			Help: "Runs that reached a final state, by state and trigger.",
		}, []string{"state", "trigger"}),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "intake_api_rows_total",
			Help: "Rows of finished runs, by stage and outcome (map: read, rejected; load: staged, created, updated, unchanged, ignored).",
		}, []string{"stage", "outcome"}),
		runDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "intake_api_run_duration_seconds",
			Help:    "Time from a run's creation to its final state, by final state.",
			Buckets: []float64{0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200},
		}, []string{"state"}),
		grpc:     newGRPCMetrics(),
		runs:     newRunsInProgress(),
		jobCache: newJobCacheCollector(),
		runsRequeued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "intake_api_runs_requeued_total",
			Help: "Runs found still QUEUED with no stage report after RequeueAfter whose run request was published again.",
		}),
		filesExpired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "intake_api_source_files_expired_total",
			Help: "Archived source files of runs deleted by the retention policy.",
		}),
	}
	for _, st := range finalRunStates {
		state := enumLabel(st.String(), "RUN_STATE_")
		m.runDuration.WithLabelValues(state)
		for _, tr := range runTriggers {
			m.runsFinished.WithLabelValues(state, enumLabel(tr.String(), "TRIGGER_"))
		}
	}
	for _, o := range rowOutcomes {
		m.rows.WithLabelValues(o[0], o[1])
	}
	for _, c := range []prometheus.Collector{m.runsFinished, m.rows, m.runDuration, m.runsRequeued, m.filesExpired, m.runs, m.jobCache} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("api: register metrics: %w", err)
		}
	}
	if err := reg.Register(m.grpc); err != nil {
		return nil, fmt.Errorf("api: register gRPC metrics: %w", err)
	}
	if err := m.registerJobOps(reg); err != nil { // jobops.go
		return nil, err
	}
	if err := m.registerTrigger(reg); err != nil { // trigger.go
		return nil, err
	}
	return m, nil
}

func enumLabel(s, prefix string) string { return strings.ToLower(strings.TrimPrefix(s, prefix)) }

// runFinished counts a run that has just reached its final state.
func (m *metrics) runFinished(run *intakev1.Run) {
	state := enumLabel(run.GetState().String(), "RUN_STATE_")
	m.runsFinished.WithLabelValues(state, enumLabel(run.GetTrigger().String(), "TRIGGER_")).Inc()
	if run.GetCreateTime() != nil && run.GetEndTime() != nil {
		d := run.GetEndTime().AsTime().Sub(run.GetCreateTime().AsTime())
		m.runDuration.WithLabelValues(state).Observe(max(d.Seconds(), 0))
	}
	c := run.GetCounters()
	for _, x := range []struct {
		stage, outcome string
		n              int64
	}{
		{"map", "read", c.GetRowsRead()},
		{"map", "rejected", c.GetRowsRejected()},
		{"load", "staged", c.GetRowsStaged()},
		{"load", "created", c.GetRowsCreated()},
		{"load", "updated", c.GetRowsUpdated()},
		{"load", "unchanged", c.GetRowsUnchanged()},
		{"load", "ignored", c.GetRowsIgnored()},
	} {
		if x.n > 0 {
			m.rows.WithLabelValues(x.stage, x.outcome).Add(float64(x.n))
		}
	}
}

// watchRuns starts exporting the runs in progress, read from db (the API's
// pool) at each scrape; the returned func stops it. Run calls it once
// connected:
//
//	defer s.metrics.watchRuns(pool)()
func (m *metrics) watchRuns(db runQuerier) (stop func()) {
	m.runs.db.Store(&db)
	return func() { m.runs.db.Store(nil) }
}

// runStatsTimeout bounds the query of the runs in progress of one scrape,
// well within Prometheus' default scrape timeout (10s).
const runStatsTimeout = 3 * time.Second

// runQuerier is what the runs-in-progress collector needs of PostgreSQL
// (a *pgxpool.Pool).
type runQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// runsInProgress is a collector that counts the runs in each non-final
// state and the age and idle time of the oldest, with one query per scrape
// (at most runStatsTimeout) on the runs table. Every API replica exports
// the same numbers (aggregate them with max, not sum): they are what the
// IntakeRunStuck alert watches.
type runsInProgress struct {
	db      atomic.Pointer[runQuerier]
	timeout time.Duration
	errors  atomic.Uint64

	count, age, idle, errorsDesc *prometheus.Desc
}

func newRunsInProgress() *runsInProgress {
	return &runsInProgress{
		timeout: runStatsTimeout,
		count: prometheus.NewDesc("intake_api_runs_in_progress",
			"Runs in a non-final state (queued, fetching, mapping, loading), by state.", []string{"state"}, nil),
		age: prometheus.NewDesc("intake_api_runs_in_progress_max_age_seconds",
			"Time since the creation of the oldest run in this state; 0 when there is none.", []string{"state"}, nil),
		idle: prometheus.NewDesc("intake_api_runs_in_progress_max_idle_seconds",
			"Longest time a run in this state has gone without any change (stage report, requeue); 0 when there is none.", []string{"state"}, nil),
		errorsDesc: prometheus.NewDesc("intake_api_runs_in_progress_errors_total",
			"Scrapes whose query of the runs in progress failed or timed out (the runs-in-progress gauges are missing from them).", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (r *runsInProgress) Describe(ch chan<- *prometheus.Desc) {
	ch <- r.count
	ch <- r.age
	ch <- r.idle
	ch <- r.errorsDesc
}

// runStat is one row of the runs-in-progress query.
type runStat struct {
	count     int64
	age, idle float64
}

// Collect implements prometheus.Collector: nothing but the error count
// before watchRuns. Ages are measured on the database's clock, so every
// replica reports the same.
func (r *runsInProgress) Collect(ch chan<- prometheus.Metric) {
	if db := r.db.Load(); db != nil {
		if stats, err := r.query(*db); err != nil {
			r.errors.Add(1)
		} else {
			for _, st := range activeRunStates {
				s := stats[st]
				state := enumLabel(st.String(), "RUN_STATE_")
				ch <- prometheus.MustNewConstMetric(r.count, prometheus.GaugeValue, float64(s.count), state)
				ch <- prometheus.MustNewConstMetric(r.age, prometheus.GaugeValue, s.age, state)
				ch <- prometheus.MustNewConstMetric(r.idle, prometheus.GaugeValue, s.idle, state)
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(r.errorsDesc, prometheus.CounterValue, float64(r.errors.Load()))
}

func (r *runsInProgress) query(db runQuerier) (map[intakev1.RunState]runStat, error) {
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	states := make([]int16, len(activeRunStates))
	for i, st := range activeRunStates {
		states[i] = int16(st)
	}
	rows, err := db.Query(ctx, `SELECT state, count(*),
			EXTRACT(EPOCH FROM now() - min(create_time))::float8,
			EXTRACT(EPOCH FROM now() - min(update_time))::float8
		FROM intake.runs WHERE state = ANY($1::smallint[]) GROUP BY state`, states)
	if err != nil {
		return nil, fmt.Errorf("api: query the runs in progress: %w", err)
	}
	defer rows.Close()
	out := map[intakev1.RunState]runStat{}
	for rows.Next() {
		var (
			state int16
			s     runStat
		)
		if err := rows.Scan(&state, &s.count, &s.age, &s.idle); err != nil {
			return nil, fmt.Errorf("api: query the runs in progress: %w", err)
		}
		s.age, s.idle = max(s.age, 0), max(s.idle, 0)
		out[intakev1.RunState(state)] = s
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("api: query the runs in progress: %w", err)
	}
	return out, nil
}

// newGRPCMetrics returns go-grpc-middleware's gRPC server metrics
// (grpc_server_started_total, grpc_server_handled_total{grpc_code},
// grpc_server_msg_received_total, grpc_server_msg_sent_total and the
// grpc_server_handling_seconds histogram, labelled grpc_type, grpc_service,
// grpc_method), the names dashboards and alerts written for gRPC expect.
func newGRPCMetrics() *grpcprom.ServerMetrics {
	return grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
		grpcprom.WithHistogramBuckets(prometheus.DefBuckets)))
}

// recoverPanic turns a panic in a gRPC handler into Internal, logged with
// its stack.
func (s *Server) recoverPanic(ctx context.Context, p any) error {
	method, _ := grpc.Method(ctx)
	s.log.ErrorContext(ctx, "panic in gRPC handler", "method", method, "panic", p, "stack", string(debug.Stack()))
	return status.Errorf(codes.Internal, "internal error in %s", method)
}

// jobCacheCollector exports the size and lookups of the store's job cache
// (store.JobCache): the jobs the scheduled-run batches and ListJobs read
// without decoding them. Zero until Run made the store.
type jobCacheCollector struct {
	stats                   atomic.Pointer[func() store.JobCacheStats]
	entries, bytes, lookups *prometheus.Desc
}

func newJobCacheCollector() *jobCacheCollector {
	return &jobCacheCollector{
		entries: prometheus.NewDesc("intake_api_job_cache_entries",
			"Jobs the API holds decoded, by version of their row.", nil, nil),
		bytes: prometheus.NewDesc("intake_api_job_cache_bytes",
			"Bytes of the jobs the API holds decoded (at most 256 MiB).", nil, nil),
		lookups: prometheus.NewDesc("intake_api_job_cache_lookups_total",
			"Jobs looked up in the job cache, by result: hit (held at the row's version) or miss (read and decoded).", []string{"result"}, nil),
	}
}

// watch starts exporting stats.
func (c *jobCacheCollector) watch(stats func() store.JobCacheStats) { c.stats.Store(&stats) }

func (c *jobCacheCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.entries
	ch <- c.bytes
	ch <- c.lookups
}

func (c *jobCacheCollector) Collect(ch chan<- prometheus.Metric) {
	var st store.JobCacheStats
	if f := c.stats.Load(); f != nil {
		st = (*f)()
	}
	ch <- prometheus.MustNewConstMetric(c.entries, prometheus.GaugeValue, float64(st.Entries))
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(st.Bytes))
	ch <- prometheus.MustNewConstMetric(c.lookups, prometheus.CounterValue, float64(st.Hits), "hit")
	ch <- prometheus.MustNewConstMetric(c.lookups, prometheus.CounterValue, float64(st.Misses), "miss")
}

package scheduler

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Tick outcomes, the values of the outcome label of
// intake_scheduler_ticks_total.
const (
	outcomeCreated   = "created"   // the tick created its run and published the request
	outcomeDuplicate = "duplicate" // the run already existed (another replica, a retry); request published again
	outcomeSkipped   = "skipped"   // the job was disabled or deleted since the last poll
	outcomeFailed    = "failed"    // the run could not be created or its request not published
)

type metrics struct {
	jobs     prometheus.Gauge
	ticks    *prometheus.CounterVec
	lateness prometheus.Histogram
	locks    *prometheus.CounterVec
	catchUps prometheus.Counter
}

// newMetrics registers the scheduler's metrics; active reports whether
// this replica fires ticks (intake_scheduler_active).
func newMetrics(reg prometheus.Registerer, active func() bool) (*metrics, error) {
	m := &metrics{
		jobs: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "intake_scheduler_jobs",
			Help: "Jobs with a schedule that this scheduler fires.",
		}),
		ticks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "intake_scheduler_ticks_total",
			Help: "Schedule ticks handled, by outcome (created, duplicate, skipped, failed).",
		}, []string{"outcome"}),
		lateness: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "intake_scheduler_tick_lateness_seconds",
			Help:    "Time from a tick's scheduled time to when the scheduler asked the control API for its run.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10, 20, 30, 60, 300},
		}),
		locks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "intake_scheduler_tick_locks_total",
			Help: "Per-tick locks asked for, by outcome: acquired (this replica fired the tick), held_elsewhere (another replica did), error (the lock bucket was unreachable; the tick fired anyway).",
		}, []string{"outcome"}),
		catchUps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "intake_scheduler_catch_up_ticks_total",
			Help: "Missed ticks (no replica fired them) fired late, once per job, when a scheduler picked the job up.",
		}),
	}
	for _, o := range []string{lockAcquired, lockHeldElsewhere, lockError} {
		m.locks.WithLabelValues(o)
	}
	for _, o := range []string{outcomeCreated, outcomeDuplicate, outcomeSkipped, outcomeFailed} {
		m.ticks.WithLabelValues(o)
	}
	activeGauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "intake_scheduler_active",
		Help: "1 while this replica fires ticks (it has read the job list and is connected to NATS: what /readyz reports), 0 otherwise.",
	}, func() float64 {
		if active() {
			return 1
		}
		return 0
	})
	for _, c := range []prometheus.Collector{m.jobs, m.ticks, m.lateness, m.locks, m.catchUps, activeGauge} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("scheduler: register metrics: %w", err)
		}
	}
	return m, nil
}

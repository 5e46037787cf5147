package main

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// latencies are exact lateness values (seconds), sorted, with the ticks
// that produced no run counted as infinitely late.
type latencies struct {
	sorted  []float64
	missing int
}

func newLatencies(values []float64, expected int) latencies {
	s := slices.Clone(values)
	slices.Sort(s)
	missing := max(expected-len(s), 0)
	return latencies{sorted: s, missing: missing}
}

// n is the number of ticks: measured plus missing.
func (l latencies) n() int { return len(l.sorted) + l.missing }

// quantile is the nearest-rank q-quantile; +Inf when it falls among the
// missing ticks, NaN when there is no tick at all.
func (l latencies) quantile(q float64) float64 {
	n := l.n()
	if n == 0 {
		return math.NaN()
	}
	i := max(int(math.Ceil(q*float64(n)))-1, 0)
	if i >= len(l.sorted) {
		return math.Inf(1)
	}
	return l.sorted[i]
}

// max is the latest tick; +Inf when one is missing.
func (l latencies) max() float64 { return l.quantile(1) }

// secs formats seconds for the report: "0.12 s", "missing" for +Inf, "n/a"
// for NaN.
func secs(v float64) string {
	switch {
	case math.IsNaN(v):
		return "n/a"
	case math.IsInf(v, 1):
		return "missing"
	case v < 0.01:
		return fmt.Sprintf("%.4f s", v)
	case v < 10:
		return fmt.Sprintf("%.2f s", v)
	}
	return fmt.Sprintf("%.1f s", v)
}

// mib formats bytes as MiB.
func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// rate formats n per d.
func rate(n int, d time.Duration) string {
	if d <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f", float64(n)/d.Seconds())
}

package main

import (
	"bytes"
	"context"
	stdcsv "encoding/csv"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/pkg/schedule"
)

const scrapeText = `# HELP intake_scheduler_tick_lateness_seconds Time from a tick's scheduled time to when it fired.
# TYPE intake_scheduler_tick_lateness_seconds histogram
intake_scheduler_tick_lateness_seconds_bucket{le="0.5"} 50
intake_scheduler_tick_lateness_seconds_bucket{le="1"} 90
intake_scheduler_tick_lateness_seconds_bucket{le="2.5"} 100
intake_scheduler_tick_lateness_seconds_bucket{le="+Inf"} 100
intake_scheduler_tick_lateness_seconds_sum 61.5
intake_scheduler_tick_lateness_seconds_count 100
intake_scheduler_ticks_total{outcome="created"} 97
intake_scheduler_ticks_total{outcome="failed"} 3
intake_api_grpc_request_duration_seconds_bucket{method="/a.B/C",le="+Inf"} 7 1700000000000
weird{msg="a \"quoted\", {braced} \\ value",other="x"} 1.5e+06
`

func TestParseMetricsReadsSamplesLabelsAndHistograms(t *testing.T) {
	t.Parallel()
	m, err := parseMetrics(strings.NewReader(scrapeText))
	require.NoError(t, err)

	v, ok := m.value("intake_scheduler_ticks_total", nil)
	require.True(t, ok)
	require.Equal(t, 100.0, v, "without labels: the sum of every series")
	v, _ = m.value("intake_scheduler_ticks_total", map[string]string{"outcome": "failed"})
	require.Equal(t, 3.0, v)
	_, ok = m.value("nothing", nil)
	require.False(t, ok)
	v, _ = m.value("weird", map[string]string{"msg": `a "quoted", {braced} \ value`, "other": "x"})
	require.Equal(t, 1.5e6, v, "escaped quotes, commas and braces inside a label value")
	v, _ = m.value("intake_api_grpc_request_duration_seconds_bucket", map[string]string{"method": "/a.B/C"})
	require.Equal(t, 7.0, v, "a timestamp after the value is ignored")

	h, err := m.histogram("intake_scheduler_tick_lateness_seconds", nil)
	require.NoError(t, err)
	require.Equal(t, 100.0, h.Count())
	require.Equal(t, 61.5, h.Sum)
	require.Equal(t, "0.5 1 2.5", h.bounds())
	_, err = m.histogram("intake_scheduler_jobs", nil)
	require.ErrorContains(t, err, "no histogram intake_scheduler_jobs")
}

func TestParseMetricsRejectsAMalformedLine(t *testing.T) {
	t.Parallel()
	for _, line := range []string{"novalue", `x{a="1} 2`, `x{a=1} 2`, "x one", "x 1 2 3"} {
		_, err := parseMetrics(strings.NewReader(line + "\n"))
		require.Error(t, err, line)
		require.ErrorContains(t, err, "line 1")
	}
}

func TestHistogramQuantileInterpolatesAsPrometheus(t *testing.T) {
	t.Parallel()
	h := histogram{Buckets: []bucket{{0.5, 50}, {1, 90}, {2.5, 100}, {math.Inf(1), 100}}}
	require.InDelta(t, 0.5, h.quantile(0.5), 1e-9, "rank 50 is the top of the first bucket")
	require.InDelta(t, 0.25, h.quantile(0.25), 1e-9, "the first bucket starts at 0")
	require.InDelta(t, 0.75, h.quantile(0.7), 1e-9, "rank 70: half-way through (0.5, 1]")
	require.InDelta(t, 1.0+1.5*0.9, h.quantile(0.99), 1e-9, "rank 99: 9/10 of (1, 2.5]")
	f, ok := h.fractionAtMost(1)
	require.True(t, ok)
	require.Equal(t, 0.9, f, "exact at a bucket bound")
	_, ok = h.fractionAtMost(0.75)
	require.False(t, ok, "not a bucket bound")

	inInf := histogram{Buckets: []bucket{{1, 1}, {math.Inf(1), 10}}}
	require.Equal(t, 1.0, inInf.quantile(0.99), "in the +Inf bucket: the largest finite bound")
	require.True(t, math.IsNaN(histogram{Buckets: []bucket{{1, 0}, {math.Inf(1), 0}}}.quantile(0.5)), "empty")
}

func TestHistogramSubKeepsTheObservationsBetweenScrapes(t *testing.T) {
	t.Parallel()
	before := histogram{Sum: 1, Buckets: []bucket{{1, 5}, {math.Inf(1), 6}}}
	after := histogram{Sum: 4, Buckets: []bucket{{1, 9}, {math.Inf(1), 12}}}
	d, err := after.sub(before)
	require.NoError(t, err)
	require.Equal(t, histogram{Sum: 3, Buckets: []bucket{{1, 4}, {math.Inf(1), 6}}}, d)

	_, err = after.sub(histogram{Buckets: []bucket{{2, 5}, {math.Inf(1), 6}}})
	require.ErrorContains(t, err, "buckets changed")
}

func TestLatenciesCountMissingTicksAsInfinitelyLate(t *testing.T) {
	t.Parallel()
	values := make([]float64, 0, 100)
	for i := 100; i >= 1; i-- {
		values = append(values, float64(i)/100)
	}
	l := newLatencies(values, 100)
	require.Equal(t, 0.5, l.quantile(0.5), "nearest rank")
	require.Equal(t, 0.99, l.quantile(0.99))
	require.Equal(t, 1.0, l.max())

	l = newLatencies(values[:98], 100) // the two latest ticks have no run
	require.Equal(t, 100, l.n())
	require.True(t, math.IsInf(l.quantile(0.99), 1))
	require.Equal(t, "missing", secs(l.quantile(0.99)))
	require.Equal(t, "n/a", secs(newLatencies(nil, 0).quantile(0.5)))
	require.Equal(t, "0.45 s", secs(0.45))
	require.Equal(t, "142 MiB", mib(142<<20))
}

func TestParseMemStatus(t *testing.T) {
	t.Parallel()
	m, err := parseMemStatus(strings.NewReader("Name:\tintake\nVmPeak:\t  900 kB\nVmHWM:\t  145408 kB\nVmRSS:\t  120000 kB\nThreads:\t9\n"))
	require.NoError(t, err)
	require.Equal(t, memStatus{RSS: 120000 << 10, Peak: 145408 << 10}, m)
	_, err = parseMemStatus(strings.NewReader("Name:\tintake\n"))
	require.ErrorContains(t, err, "no VmRSS and VmHWM")
	_, err = parseMemStatus(strings.NewReader("VmRSS:\t12 MB\nVmHWM:\t1 kB\n"))
	require.ErrorContains(t, err, "VmRSS")
}

func TestParseStatCountsFromTheLastParenthesis(t *testing.T) {
	t.Parallel()
	self, children, err := parseStat("42 (a (weird) name) S 1 42 42 0 -1 4194304 10 20 0 0 250 150 1000 500 20 0 1 0 5")
	require.NoError(t, err)
	require.Equal(t, 4.0, self, "utime + stime = 400 ticks")
	require.Equal(t, 15.0, children, "cutime + cstime = 1500 ticks")
	_, _, err = parseStat("42 (x) S 1")
	require.ErrorContains(t, err, "fields")
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	good := Config{
		Intake: "bin/intake", NATSServer: "bin/nats-server", DatabaseURL: "postgres://x", Dir: "d",
		Jobs: 10, Ticks: 3, Mappings: 4, Concurrency: 8, TargetLateness: time.Second, TargetRSS: 200 << 20,
	}
	require.NoError(t, good.Validate())
	for _, tc := range []struct {
		change func(*Config)
		want   string
	}{
		{func(c *Config) { c.Intake = "" }, "-intake"},
		{func(c *Config) { c.NATSServer = "" }, "-nats-server"},
		{func(c *Config) { c.DatabaseURL = "" }, "-database-url"},
		{func(c *Config) { c.Dir = "" }, "-dir"},
		{func(c *Config) { c.Jobs = 0 }, "jobs must be at least 1, got 0"},
		{func(c *Config) { c.Ticks = 0 }, "ticks must be at least 1"},
		{func(c *Config) { c.Warmup = -1 }, "warmup must not be negative, got -1"},
		{func(c *Config) { c.Mappings = 5 }, "mappings must be 1 to 4, got 5"},
		{func(c *Config) { c.Concurrency = 0 }, "concurrency"},
		{func(c *Config) { c.PollInterval = -time.Second }, "poll interval"},
		{func(c *Config) { c.TargetLateness = 0 }, "target lateness"},
		{func(c *Config) { c.TargetRSS = 0 }, "target RSS"},
	} {
		c := good
		tc.change(&c)
		require.ErrorContains(t, c.Validate(), tc.want)
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"-jobs", "0", "-database-url", "postgres://x"}, &out, &errOut)
	require.ErrorContains(t, err, "jobs must be at least 1")
	err = run(context.Background(), []string{"-database-url", "postgres://x", "extra"}, &out, &errOut)
	require.ErrorContains(t, err, `unexpected argument "extra"`)
	require.Empty(t, out.String())
}

func TestEveryJobFiresEveryMinuteAtTheSameSecond(t *testing.T) {
	t.Parallel()
	from := time.Date(2026, 3, 29, 0, 59, 30, 0, time.UTC) // Berlin moves its clocks forward at 01:00 UTC
	zonesSeen := map[string]bool{}
	for i := range 20 {
		j := job(i, 4, "http://127.0.0.1:1/accounts.csv")
		require.True(t, j.GetEnabled())
		require.False(t, j.GetRunOnSave())
		zonesSeen[j.GetSchedule().GetTimeZone()] = true
		c, err := schedule.Parse(j.GetSchedule())
		require.NoError(t, err, "job %d", i)
		at := from
		for range 3 {
			next := c.Next(at)
			require.Equal(t, at.Truncate(time.Minute).Add(time.Minute), next.UTC(), "job %d (%s) fires at every whole minute", i, j.GetSchedule())
			at = next.UTC()
		}
	}
	require.Len(t, zonesSeen, len(zones))
}

func TestTheFileHoldsEveryColumnOfEveryMapping(t *testing.T) {
	t.Parallel()
	records, err := stdcsv.NewReader(bytes.NewReader(csvFile())).ReadAll()
	require.NoError(t, err)
	require.Len(t, records, 21, "a header and 20 rows")
	hashes := map[string]bool{}
	for v := range len(columns) - minEntries + 1 {
		m := mapping(v)
		require.Equal(t, "account_id", m.GetEntries()[0].GetAttribute(), "every mapping maps the key")
		for _, e := range m.GetEntries() {
			require.True(t, slices.Contains(records[0], e.GetColumn()), "column %q of mapping %d", e.GetColumn(), v)
		}
		hashes[m.String()] = true
	}
	require.Len(t, hashes, len(columns)-minEntries+1, "the mappings differ (one validation token each)")
}

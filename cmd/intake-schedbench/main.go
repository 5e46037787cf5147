// Command intake-schedbench measures the scheduler holding many jobs: tick
// lateness and resident memory of the real `intake scheduler` process.
//
// It starts a nats-server (JetStream, store in a temporary directory), the
// control API (`intake api`) on an empty database and the scheduler
// (`intake scheduler`), each as its own process, and serves one small CSV
// file over HTTP. It validates a few mappings of that file once each
// (ValidateMapping), then creates -jobs enabled jobs through the gRPC API,
// reusing the validation tokens, every one firing every minute (every 1
// minute or the cron "* * * * *", in five time zones), so that every minute
// all jobs tick at the same second: the worst case of a scheduler's load.
// No fetcher runs: the run requests pile up in the INTAKE_RUNS stream.
//
// Once the scheduler holds every job (its gauge intake_scheduler_jobs), it
// measures -ticks consecutive minutes of ticks:
//
//   - lateness from the runs the API created: create_time − scheduled_time
//     of every scheduled run of those minutes, from the database (exact
//     p50, p99 and max; a tick without a run counts as infinitely late);
//   - lateness of the run requests: when each was stored in INTAKE_RUNS
//     (read back with one GetMsg per message) − scheduled_time, exact;
//   - lateness from the scheduler's own histogram
//     intake_scheduler_tick_lateness_seconds (the time from a tick's
//     scheduled time to its firing, before the run is created), the
//     difference of two scrapes around those minutes, p50 and p99
//     interpolated inside buckets;
//   - the scheduler's peak RSS (VmHWM of /proc/{pid}/status, over its whole
//     life: picking up the jobs and the ticks) and steady RSS (the median of
//     VmRSS sampled during the measured minutes), and the CPU time over
//     those minutes of the scheduler, the API, nats-server and PostgreSQL
//     (its postmaster and backends, when it runs on this machine).
//
// The scheduler's VmRSS and Go runtime metrics (goroutines, heap, stacks,
// CPU) are written every second to scheduler-samples.tsv in -dir, beside
// the processes' logs.
//
// It prints
//
//	scheduler: N jobs, M ticks, lateness p50 … p99 … max … (from runs), peak RSS … MiB
//	scheduler p99 lateness: X s (target < 1 s): met|NOT met
//	scheduler peak RSS: Y MiB (target < 200 MiB): met|NOT met
//
// The p99 judged is the one from the runs: a tick is on time when its run
// exists, not merely when the scheduler's timer fired. Targets are
// reported, not enforced: it fails only when it cannot measure.
//
// Usage (`make bench` runs it; see docs/benchmark.md):
//
//	intake-schedbench -intake bin/intake -nats-server bin/nats-server \
//	  -database-url 'postgres://postgres@127.0.0.1:5441/sched_bench?sslmode=disable' -dir .bench/sched
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/intakehq/intake/cmd/internal/ctl"
	"github.com/intakehq/intake/pkg/pipeline"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// Config says what to run and measure.
type Config struct {
	// Intake and NATSServer are the binaries: bin/intake and a nats-server.
	Intake     string
	NATSServer string
	// DatabaseURL is an empty PostgreSQL database; the API migrates it.
	DatabaseURL string
	// Dir receives the processes' logs and the scheduler's samples.
	Dir string
	// Jobs is how many enabled jobs to create.
	Jobs int
	// Ticks is how many consecutive minutes of ticks are measured.
	Ticks int
	// Warmup is how many minutes of ticks pass before the measured ones
	// (0, the default: the first tick of every job is measured). The
	// first warm-up minute's lateness is reported on its own line.
	Warmup int
	// Mappings is how many distinct mappings the jobs use (one
	// ValidateMapping each).
	Mappings int
	// Concurrency is how many CreateJob calls run at once.
	Concurrency int
	// PollInterval is the scheduler's --poll-interval; 0: its default.
	PollInterval time.Duration
	// LogLevel is the --log-level of the API and the scheduler.
	LogLevel string
	// TargetLateness and TargetRSS are the targets reported against.
	TargetLateness time.Duration
	TargetRSS      int64
}

// Validate checks the config.
func (c Config) Validate() error {
	switch {
	case c.Intake == "":
		return errors.New("the intake binary is required (-intake)")
	case c.NATSServer == "":
		return errors.New("the nats-server binary is required (-nats-server)")
	case c.DatabaseURL == "":
		return errors.New("the database URL is required (-database-url)")
	case c.Dir == "":
		return errors.New("the work directory is required (-dir)")
	case c.Jobs < 1:
		return fmt.Errorf("jobs must be at least 1, got %d", c.Jobs)
	case c.Ticks < 1:
		return fmt.Errorf("ticks must be at least 1, got %d", c.Ticks)
	case c.Warmup < 0:
		return fmt.Errorf("warmup must not be negative, got %d", c.Warmup)
	case c.Mappings < 1 || c.Mappings > len(columns)-minEntries+1:
		return fmt.Errorf("mappings must be 1 to %d, got %d", len(columns)-minEntries+1, c.Mappings)
	case c.Concurrency < 1:
		return fmt.Errorf("concurrency must be at least 1, got %d", c.Concurrency)
	case c.PollInterval < 0:
		return fmt.Errorf("poll interval must not be negative, got %v", c.PollInterval)
	case c.TargetLateness <= 0:
		return fmt.Errorf("target lateness must be positive, got %v", c.TargetLateness)
	case c.TargetRSS <= 0:
		return fmt.Errorf("target RSS must be positive, got %d", c.TargetRSS)
	}
	return nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "intake-schedbench:", err)
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("intake-schedbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg Config
	var targetMiB int64
	fs.StringVar(&cfg.Intake, "intake", "bin/intake", "the intake binary")
	fs.StringVar(&cfg.NATSServer, "nats-server", "bin/nats-server", "the nats-server binary")
	fs.StringVar(&cfg.DatabaseURL, "database-url", "", "an empty PostgreSQL database (the API migrates it)")
	fs.StringVar(&cfg.Dir, "dir", ".bench/sched", "directory of the processes' logs and samples (overwritten)")
	fs.IntVar(&cfg.Jobs, "jobs", 10000, "enabled jobs to create")
	fs.IntVar(&cfg.Ticks, "ticks", 3, "consecutive minutes of ticks to measure")
	fs.IntVar(&cfg.Warmup, "warmup", 0, "minutes of ticks before the measured ones (the first is reported on its own)")
	fs.IntVar(&cfg.Mappings, "mappings", 4, "distinct mappings of the jobs (one ValidateMapping each)")
	fs.IntVar(&cfg.Concurrency, "concurrency", 8, "CreateJob calls at once")
	fs.DurationVar(&cfg.PollInterval, "poll-interval", 0, "the scheduler's --poll-interval (0: its default)")
	fs.StringVar(&cfg.LogLevel, "log-level", "info", "--log-level of the API and the scheduler")
	fs.DurationVar(&cfg.TargetLateness, "target-lateness", time.Second, "p99 tick lateness to report against")
	fs.Int64Var(&targetMiB, "target-rss-mib", 200, "peak RSS of the scheduler to report against, MiB")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg.TargetRSS = targetMiB << 20
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid config: %w", err)
	}
	b := &bench{cfg: cfg, stderr: stderr}
	defer b.stopAll()
	res, err := b.run(ctx)
	if err != nil {
		return err
	}
	res.print(stdout, cfg)
	return b.stopAll()
}

// bench is one run of the benchmark.
type bench struct {
	cfg    Config
	stderr io.Writer // progress

	nats, api, sched *proc
	grpcAddr         string
	natsURL          string
	natsStore        string // nats-server's JetStream store, a temporary directory
	postmaster       int    // the PostgreSQL server's pid; 0 when unknown
	apiMetrics       string // URL of the API's /metrics
	schedMetrics     string // URL of the scheduler's /metrics
	stopOnce         sync.Once
	stopErr          error
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.stderr, "schedbench: "+format+"\n", args...)
}

// result is what the benchmark measured.
type result struct {
	jobs        int
	createTime  time.Duration
	pickup      time.Duration // from the last CreateJob to the scheduler holding every job
	windowStart time.Time     // the first measured tick
	windowEnd   time.Time     // the last measured tick
	firstTick   time.Time     // the first whole minute after the scheduler held every job
	first       latencies     // lateness from the runs of firstTick, when it is a warm-up minute
	elapsed     time.Duration // from just before the first measured tick to the end of the measurement

	runs      latencies // run created: create_time − scheduled_time, from the database
	published latencies // run request stored in INTAKE_RUNS − scheduled_time
	hist      histogram // the scheduler's, over the measured ticks: scheduled time to asking the API for the run
	outcomes  map[string]float64

	peak        int64 // scheduler VmHWM
	steady      int64 // median VmRSS over the measured ticks
	maxInWindow int64
	apiPeak     int64

	cpu           map[string]float64 // CPU seconds over the measurement, by process
	createRunHist histogram          // the API's latency of CreateScheduledRuns (or CreateScheduledRun)
	createMethod  string             // which of the two the scheduler called
}

// snapshot is what is read just before the first measured tick and after
// the last tick's runs exist: the /metrics of the scheduler and the API and
// the CPU seconds of every process.
type snapshot struct {
	at    time.Time
	sched metricSet
	api   metricSet
	cpu   map[string]float64
}

// cpuNames are the processes whose CPU time is reported, in order.
var cpuNames = []string{"scheduler", "api", "nats-server", "postgres"}

func (b *bench) snapshot(ctx context.Context) (*snapshot, error) {
	s := &snapshot{at: time.Now(), cpu: map[string]float64{}}
	var err error
	if s.sched, err = scrape(ctx, b.schedMetrics); err != nil {
		return nil, err
	}
	if s.api, err = scrape(ctx, b.apiMetrics); err != nil {
		return nil, err
	}
	for name, p := range map[string]*proc{"scheduler": b.sched, "api": b.api, "nats-server": b.nats} {
		if s.cpu[name], err = processCPU(p.pid()); err != nil {
			return nil, err
		}
	}
	if b.postmaster > 0 {
		if c, err := treeCPU(b.postmaster); err == nil {
			s.cpu["postgres"] = c
		}
	}
	return s, nil
}

func (b *bench) run(ctx context.Context) (*result, error) {
	cfg := b.cfg
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", cfg.Dir, err)
	}
	files, fileURL, err := serveFile()
	if err != nil {
		return nil, err
	}
	defer files.Close()

	if err := b.startProcs(ctx); err != nil {
		return nil, err
	}
	sampler, err := startSampler(b.sched.pid(), b.schedMetrics, filepath.Join(cfg.Dir, "scheduler-samples.tsv"))
	if err != nil {
		return nil, err
	}
	defer sampler.stop()

	conn, err := grpc.NewClient(b.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(ctl.BearerCredentials(benchAdminToken)))
	if err != nil {
		return nil, fmt.Errorf("API client: %w", err)
	}
	defer conn.Close()
	jobsAPI := intakev1.NewJobServiceClient(conn)

	tokens, err := validate(ctx, jobsAPI, fileURL, cfg.Mappings)
	if err != nil {
		return nil, err
	}
	b.logf("creating %d enabled jobs (every minute, %d mappings, %d CreateJob calls at once)", cfg.Jobs, cfg.Mappings, cfg.Concurrency)
	t0 := time.Now()
	if err := createJobs(ctx, jobsAPI, fileURL, tokens, cfg.Jobs, cfg.Concurrency, b.logf); err != nil {
		return nil, err
	}
	res := &result{jobs: cfg.Jobs, createTime: time.Since(t0)}
	b.logf("created %d jobs in %.1f s (%s jobs/s)", cfg.Jobs, res.createTime.Seconds(), rate(cfg.Jobs, res.createTime))

	created := time.Now()
	if err := waitFor(ctx, b.sched, 3*time.Minute, "holding every job", func(ctx context.Context) error {
		m, err := scrape(ctx, b.schedMetrics)
		if err != nil {
			return err
		}
		n, _ := m.value("intake_scheduler_jobs", nil)
		if int(n) != cfg.Jobs {
			return fmt.Errorf("intake_scheduler_jobs is %v, want %d", n, cfg.Jobs)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	res.pickup = time.Since(created)
	b.logf("the scheduler holds all %d jobs, %.1f s after the last was created", cfg.Jobs, res.pickup.Seconds())

	// A pool, so that the URL may carry the API's pool_* parameters.
	db, err := pgxpool.New(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("connect to the database: %w", err)
	}
	defer db.Close()
	b.postmaster = postmasterPID(ctx, db)

	// The measured minutes: from the first whole minute at least 3 s away,
	// after cfg.Warmup minutes.
	res.firstTick = time.Now().Add(3 * time.Second).Truncate(time.Minute).Add(time.Minute)
	res.windowStart = res.firstTick.Add(time.Duration(cfg.Warmup) * time.Minute)
	res.windowEnd = res.windowStart.Add(time.Duration(cfg.Ticks-1) * time.Minute)
	if cfg.Warmup > 0 {
		b.logf("warming up with the ticks of %s UTC", res.firstTick.UTC().Format("15:04:05"))
	}
	b.logf("measuring the ticks of %s to %s UTC (%d per job)", res.windowStart.UTC().Format("15:04:05"), res.windowEnd.UTC().Format("15:04:05"), cfg.Ticks)
	if err := sleepUntil(ctx, res.windowStart.Add(-time.Second)); err != nil {
		return nil, err
	}
	before, err := b.snapshot(ctx)
	if err != nil {
		return nil, err
	}

	// Wait until every measured tick has its run and the scheduler has
	// finished every one of them (created the run and had its request
	// published), but not past the next tick.
	expected := cfg.Jobs * cfg.Ticks
	deadline := res.windowEnd.Add(50 * time.Second)
	if err := sleepUntil(ctx, res.windowEnd.Add(2*time.Second)); err != nil {
		return nil, err
	}
	for {
		n, err := countRuns(ctx, db, res.windowStart, res.windowEnd)
		if err != nil {
			return nil, err
		}
		m, err := scrape(ctx, b.schedMetrics)
		if err != nil {
			return nil, err
		}
		handled := ticksHandled(m) - ticksHandled(before.sched)
		if n >= expected && int(handled) >= expected {
			break
		}
		if time.Now().After(deadline) {
			b.logf("at %s, %d of the %d runs of the measured ticks exist and the scheduler has handled %.0f ticks; the rest count as missing",
				deadline.UTC().Format("15:04:05"), n, expected, handled)
			break
		}
		for _, p := range []*proc{b.nats, b.api, b.sched} {
			if err := p.exited(); err != nil {
				return nil, err
			}
		}
		if err := sleepUntil(ctx, time.Now().Add(time.Second)); err != nil {
			return nil, err
		}
	}
	after, err := b.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	sampler.stop()
	res.elapsed = after.at.Sub(before.at)

	runs, err := readRuns(ctx, db, res.windowStart, res.windowEnd)
	if err != nil {
		return nil, err
	}
	createLate := make([]float64, 0, len(runs))
	for _, r := range runs {
		createLate = append(createLate, r.created.Sub(r.scheduled).Seconds())
	}
	res.runs = newLatencies(createLate, expected)
	if cfg.Warmup > 0 {
		first, err := readRuns(ctx, db, res.firstTick, res.firstTick)
		if err != nil {
			return nil, err
		}
		late := make([]float64, 0, len(first))
		for _, r := range first {
			late = append(late, r.created.Sub(r.scheduled).Seconds())
		}
		res.first = newLatencies(late, cfg.Jobs)
	}
	stored, err := publishTimes(ctx, b.natsURL, res.windowStart.Add(-time.Second))
	if err != nil {
		return nil, err
	}
	var published []float64
	for _, r := range runs {
		if t, ok := stored[r.name]; ok {
			published = append(published, t.Sub(r.scheduled).Seconds())
		}
	}
	res.published = newLatencies(published, expected)
	if err := res.fromSnapshots(before, after); err != nil {
		return nil, err
	}
	mem, err := readMem(b.sched.pid())
	if err != nil {
		return nil, err
	}
	res.peak = mem.Peak
	res.steady, res.maxInWindow = sampler.steady(res.windowStart, after.at)
	if mem, err := readMem(b.api.pid()); err == nil {
		res.apiPeak = mem.Peak
	}
	return res, nil
}

// ticksHandled is the number of ticks the scheduler has finished, whatever
// their outcome.
func ticksHandled(m metricSet) float64 {
	n, _ := m.value("intake_scheduler_ticks_total", nil)
	return n
}

// fromSnapshots fills what the metrics and CPU times say.
func (r *result) fromSnapshots(before, after *snapshot) error {
	const latName = "intake_scheduler_tick_lateness_seconds"
	h0, err := before.sched.histogram(latName, nil)
	if err != nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	h1, err := after.sched.histogram(latName, nil)
	if err != nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	if r.hist, err = h1.sub(h0); err != nil {
		return fmt.Errorf("scheduler: %s: %w", latName, err)
	}
	r.outcomes = map[string]float64{}
	for _, o := range []string{"created", "duplicate", "skipped", "failed"} {
		want := map[string]string{"outcome": o}
		a, _ := after.sched.value("intake_scheduler_ticks_total", want)
		b, _ := before.sched.value("intake_scheduler_ticks_total", want)
		r.outcomes[o] = a - b
	}
	r.cpu = map[string]float64{}
	for name, c := range after.cpu {
		if c0, ok := before.cpu[name]; ok {
			r.cpu[name] = c - c0
		}
	}
	// The batch call when the scheduler made it, else the one per tick; in
	// the API's gRPC histogram (grpc_server_handling_seconds, or the older
	// intake_api_grpc_request_duration_seconds).
	for _, method := range []string{"CreateScheduledRuns", "CreateScheduledRun"} {
		name, want := "grpc_server_handling_seconds", map[string]string{"grpc_service": "intake.v1.StageService", "grpc_method": method}
		a, err := after.api.histogram(name, want)
		if err != nil {
			name, want = "intake_api_grpc_request_duration_seconds", map[string]string{"method": "/intake.v1.StageService/" + method}
			if a, err = after.api.histogram(name, want); err != nil {
				continue
			}
		}
		b, _ := before.api.histogram(name, want)
		h, err := a.sub(b)
		if err != nil {
			return fmt.Errorf("api: %w", err)
		}
		if h.Count() > 0 {
			r.createRunHist, r.createMethod = h, method
			break
		}
	}
	return nil
}

// print writes the report.
func (r *result) print(w io.Writer, cfg Config) {
	target := strconv.FormatFloat(cfg.TargetLateness.Seconds(), 'g', -1, 64) + " s"
	fmt.Fprintf(w, "schedbench: %d enabled jobs created through the API in %.1f s (%s jobs/s); the scheduler held them all %.1f s after the last\n",
		r.jobs, r.createTime.Seconds(), rate(r.jobs, r.createTime), r.pickup.Seconds())
	fmt.Fprintf(w, "schedbench: every job fires every minute (every 1 minute or cron \"* * * * *\", %d time zones), all at the same second; measured the ticks of %s to %s UTC\n",
		len(zones), r.windowStart.UTC().Format("15:04"), r.windowEnd.UTC().Format("15:04"))
	missing := ""
	if r.runs.missing > 0 {
		missing = fmt.Sprintf(", %d ticks without a run", r.runs.missing)
	}
	fmt.Fprintf(w, "scheduler: %d jobs, %d ticks, lateness p50 %s p99 %s max %s (from runs%s), peak RSS %s\n",
		r.jobs, r.runs.n(), secs(r.runs.quantile(0.5)), secs(r.runs.quantile(0.99)), secs(r.runs.max()), missing, mib(r.peak))
	if cfg.Warmup > 0 {
		fmt.Fprintf(w, "scheduler: warm-up minute (%s UTC, not measured): lateness p50 %s p99 %s max %s (from runs)\n",
			r.firstTick.UTC().Format("15:04"), secs(r.first.quantile(0.5)), secs(r.first.quantile(0.99)), secs(r.first.max()))
	}
	missing = ""
	if r.published.missing > 0 {
		missing = fmt.Sprintf(", %d without one", r.published.missing)
	}
	fmt.Fprintf(w, "scheduler: run request stored in %s: lateness p50 %s p99 %s max %s%s\n", pipeline.StreamRuns,
		secs(r.published.quantile(0.5)), secs(r.published.quantile(0.99)), secs(r.published.max()), missing)
	within := ""
	if f, ok := r.hist.fractionAtMost(cfg.TargetLateness.Seconds()); ok {
		within = fmt.Sprintf(", %.2f%% ≤ %s", 100*f, target)
	}
	fmt.Fprintf(w, "scheduler: its histogram intake_scheduler_tick_lateness_seconds (until it asks for the run): %.0f ticks, p50 %s p99 %s (interpolated in buckets %s)%s\n",
		r.hist.Count(), secs(r.hist.quantile(0.5)), secs(r.hist.quantile(0.99)), r.hist.bounds(), within)
	fmt.Fprintf(w, "scheduler: steady RSS %s (median over the measured ticks, max %s); ticks created %.0f, duplicate %.0f, skipped %.0f, failed %.0f\n",
		mib(r.steady), mib(r.maxInWindow), r.outcomes["created"], r.outcomes["duplicate"], r.outcomes["skipped"], r.outcomes["failed"])
	var parts []string
	for _, name := range cpuNames {
		if c, ok := r.cpu[name]; ok {
			parts = append(parts, fmt.Sprintf("%s %.1f s (%.2f ms/tick)", name, c, 1000*c/float64(max(r.runs.n(), 1))))
		}
	}
	calls := "no CreateScheduledRun(s) calls"
	if r.createMethod != "" {
		calls = fmt.Sprintf("%s: %.0f calls, p50 %s p99 %s", r.createMethod, r.createRunHist.Count(),
			secs(r.createRunHist.quantile(0.5)), secs(r.createRunHist.quantile(0.99)))
	}
	fmt.Fprintf(w, "scheduler: CPU over the %.0f s measured: %s; API peak RSS %s, %s\n",
		r.elapsed.Seconds(), strings.Join(parts, ", "), mib(r.apiPeak), calls)
	p99 := r.runs.quantile(0.99)
	fmt.Fprintf(w, "scheduler p99 lateness: %s (target < %s): %s\n", secs(p99), target, metOrNot(p99 < cfg.TargetLateness.Seconds()))
	fmt.Fprintf(w, "scheduler peak RSS: %s (target < %s): %s\n", mib(r.peak), mib(cfg.TargetRSS), metOrNot(r.peak < cfg.TargetRSS))
}

func metOrNot(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

// startProcs starts nats-server, the API and the scheduler, each ready.
func (b *bench) startProcs(ctx context.Context) error {
	cfg := b.cfg
	ports := make([]int, 4)
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return err
		}
		ports[i] = p
	}
	addr := func(p int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)) }
	natsAddr, apiHTTP, schedHTTP := addr(ports[0]), addr(ports[2]), addr(ports[3])
	b.grpcAddr = addr(ports[1])
	b.apiMetrics, b.schedMetrics = "http://"+apiHTTP+"/metrics", "http://"+schedHTTP+"/metrics"
	natsURL := "nats://" + natsAddr
	b.natsURL = natsURL
	logPath := func(name string) string { return filepath.Join(cfg.Dir, name+".log") }

	var err error
	// The JetStream store holds every run request (nothing consumes them):
	// a temporary directory, removed after nats-server stops.
	if b.natsStore, err = os.MkdirTemp("", "intake-schedbench-nats-"); err != nil {
		return fmt.Errorf("nats-server: create its store: %w", err)
	}
	b.logf("starting nats-server on %s (JetStream store %s)", natsAddr, b.natsStore)
	b.nats, err = startProc("nats-server", logPath("nats"), cfg.NATSServer,
		"-js", "-a", "127.0.0.1", "-p", strconv.Itoa(ports[0]), "-sd", b.natsStore)
	if err != nil {
		return err
	}
	if err := waitFor(ctx, b.nats, 30*time.Second, "listening", dialOK(natsAddr)); err != nil {
		return err
	}
	// --requeue-after 1h: no fetcher takes the runs, and the API must not
	// spend the benchmark publishing their requests again.
	b.logf("starting the API (intake api) on %s, metrics on %s", b.grpcAddr, apiHTTP)
	b.api, err = startProc("api", logPath("api"), cfg.Intake, "api",
		"--database-url", cfg.DatabaseURL, "--nats-url", natsURL,
		"--grpc-addr", b.grpcAddr, "--http-addr", apiHTTP,
		"--requeue-after", "1h", "--log-level", cfg.LogLevel, "--log-format", "json")
	if err != nil {
		return err
	}
	if err := waitFor(ctx, b.api, time.Minute, "ready", httpOK("http://"+apiHTTP+"/readyz")); err != nil {
		return err
	}
	args := []string{"scheduler", "--nats-url", natsURL, "--api-addr", b.grpcAddr, "--http-addr", schedHTTP,
		"--log-level", cfg.LogLevel, "--log-format", "json"}
	if cfg.PollInterval > 0 {
		args = append(args, "--poll-interval", cfg.PollInterval.String())
	}
	b.logf("starting the scheduler (intake scheduler), metrics on %s", schedHTTP)
	if b.sched, err = startProc("scheduler", logPath("scheduler"), cfg.Intake, args...); err != nil {
		return err
	}
	return waitFor(ctx, b.sched, time.Minute, "ready", httpOK("http://"+schedHTTP+"/readyz"))
}

// stopAll stops the scheduler, then the API, then nats-server, once.
func (b *bench) stopAll() error {
	b.stopOnce.Do(func() {
		var errs []error
		for _, p := range []*proc{b.sched, b.api, b.nats} {
			if p == nil {
				continue
			}
			if err := p.stop(45 * time.Second); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", p.name, err))
			}
		}
		if b.natsStore != "" {
			if err := os.RemoveAll(b.natsStore); err != nil {
				errs = append(errs, fmt.Errorf("remove the JetStream store: %w", err))
			}
		}
		b.stopErr = errors.Join(errs...)
	})
	return b.stopErr
}

// sleepUntil waits until t or ctx's end.
func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// scheduledRun is a run of a measured tick.
type scheduledRun struct {
	name               string // "jobs/{job}/runs/{run}"
	scheduled, created time.Time
}

const runsInWindow = `FROM intake.runs WHERE trigger = $1 AND scheduled_time BETWEEN $2 AND $3`

// countRuns counts the scheduled runs of the ticks from start to end.
func countRuns(ctx context.Context, db *pgxpool.Pool, start, end time.Time) (int, error) {
	var n int
	err := db.QueryRow(ctx, `SELECT count(*) `+runsInWindow, int16(intakev1.Trigger_TRIGGER_SCHEDULE), start, end).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count the runs: %w", err)
	}
	return n, nil
}

// readRuns reads the scheduled runs of the ticks from start to end.
func readRuns(ctx context.Context, db *pgxpool.Pool, start, end time.Time) ([]scheduledRun, error) {
	rows, err := db.Query(ctx, `SELECT 'jobs/' || job_id || '/runs/' || id, scheduled_time, create_time `+runsInWindow,
		int16(intakev1.Trigger_TRIGGER_SCHEDULE), start, end)
	if err != nil {
		return nil, fmt.Errorf("read the runs: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (scheduledRun, error) {
		var r scheduledRun
		err := row.Scan(&r.name, &r.scheduled, &r.created)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("read the runs: %w", err)
	}
	return out, nil
}

// postmasterPID is the process id of the PostgreSQL server when it runs on
// this machine and the connection may read its data directory; 0 otherwise
// (its CPU time is then not reported).
func postmasterPID(ctx context.Context, db *pgxpool.Pool) int {
	var dir string
	if err := db.QueryRow(ctx, `SHOW data_directory`).Scan(&dir); err != nil {
		return 0
	}
	b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		return 0
	}
	return pid
}

// publishTimes reads the run requests stored in INTAKE_RUNS at or after
// since (one GetMsg per message: the stream is a work queue, which takes no
// second consumer) and returns when each was stored, by run name (its
// Nats-Msg-Id); the first copy counts.
func publishTimes(ctx context.Context, natsURL string, since time.Time) (map[string]time.Time, error) {
	nc, err := nats.Connect(natsURL, nats.Name("intake-schedbench"))
	if err != nil {
		return nil, fmt.Errorf("connect to NATS: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("JetStream: %w", err)
	}
	stream, err := js.Stream(ctx, pipeline.StreamRuns)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", pipeline.StreamRuns, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", pipeline.StreamRuns, err)
	}
	first, last := info.State.FirstSeq, info.State.LastSeq
	if info.State.Msgs == 0 {
		return map[string]time.Time{}, nil
	}
	type stored struct {
		id string
		at time.Time
	}
	found := make([]stored, last-first+1)
	var next atomic.Uint64
	next.Store(first)
	g, gctx := errgroup.WithContext(ctx)
	for range 8 {
		g.Go(func() error {
			for {
				seq := next.Add(1) - 1
				if seq > last {
					return nil
				}
				m, err := stream.GetMsg(gctx, seq)
				if errors.Is(err, jetstream.ErrMsgNotFound) {
					continue
				}
				if err != nil {
					return fmt.Errorf("read %s message %d: %w", pipeline.StreamRuns, seq, err)
				}
				if !m.Time.Before(since) {
					found[seq-first] = stored{id: m.Header.Get(jetstream.MsgIDHeader), at: m.Time}
				}
			}
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := map[string]time.Time{}
	for _, f := range found {
		if _, seen := out[f.id]; f.id != "" && !seen {
			out[f.id] = f.at
		}
	}
	return out, nil
}

// sampler reads the scheduler's VmRSS every 500 ms, and once a second also
// its Go runtime metrics, into a tab-separated file (for finding where the
// memory and the time go).
type sampler struct {
	pid     int
	metrics string // the scheduler's /metrics URL
	out     *os.File
	mu      sync.Mutex
	samples []rssSample
	stopped atomic.Bool
	quit    chan struct{}
	done    chan struct{}
}

type rssSample struct {
	at  time.Time
	rss int64
}

// samplerColumns are the metrics written after time and VmRSS.
var samplerColumns = []string{
	"intake_scheduler_jobs", "go_goroutines", "go_memstats_heap_alloc_bytes", "go_memstats_heap_inuse_bytes",
	"go_memstats_stack_inuse_bytes", "go_memstats_sys_bytes", "process_cpu_seconds_total",
}

func startSampler(pid int, metricsURL, path string) (*sampler, error) {
	out, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	s := &sampler{pid: pid, metrics: metricsURL, out: out, quit: make(chan struct{}), done: make(chan struct{})}
	fmt.Fprintf(out, "unix_seconds\tvm_rss_bytes\t%s\n", strings.Join(samplerColumns, "\t"))
	go func() {
		defer close(s.done)
		defer out.Close()
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for n := 0; ; n++ {
			now := time.Now()
			if m, err := readMem(pid); err == nil {
				s.mu.Lock()
				s.samples = append(s.samples, rssSample{at: now, rss: m.RSS})
				s.mu.Unlock()
				if n%2 == 0 {
					s.write(now, m.RSS)
				}
			}
			select {
			case <-s.quit:
				return
			case <-t.C:
			}
		}
	}()
	return s, nil
}

// write appends a line of the file: now, rss and the scraped metrics.
func (s *sampler) write(now time.Time, rss int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	line := fmt.Sprintf("%.3f\t%d", float64(now.UnixMilli())/1000, rss)
	m, err := scrape(ctx, s.metrics)
	for _, c := range samplerColumns {
		v, ok := m.value(c, nil)
		if err != nil || !ok {
			line += "\t"
			continue
		}
		line += "\t" + strconv.FormatFloat(v, 'f', -1, 64)
	}
	fmt.Fprintln(s.out, line)
}

func (s *sampler) stop() {
	if s.stopped.CompareAndSwap(false, true) {
		close(s.quit)
	}
	<-s.done
}

// steady is the median and the maximum of the samples from from to to.
func (s *sampler) steady(from, to time.Time) (median, most int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var v []int64
	for _, x := range s.samples {
		if !x.at.Before(from) && !x.at.After(to) {
			v = append(v, x.rss)
		}
	}
	if len(v) == 0 {
		return 0, 0
	}
	slices.Sort(v)
	return v[len(v)/2], v[len(v)-1]
}

// ---- the jobs ------------------------------------------------------------------

// columns of the served file, with the attribute and source format each maps to.
var columns = []struct{ name, attr, format string }{
	{"Account ID", "account_id", ""},
	{"Account Name", "name", ""},
	{"Status", "status", ""},
	{"Region", "region", ""},
	{"Employees", "employees", ""},
	{"MRR", "mrr", ""},
	{"Active", "is_active", ""},
	{"Created", "created_date", "yyyy-MM-dd"},
}

// minEntries is the number of entries of the smallest mapping.
const minEntries = 5

// zones are the time zones of the jobs' schedules.
var zones = []string{"UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata", "Australia/Adelaide"}

// csvFile is the file every job reads.
func csvFile() []byte {
	var b []byte
	for i, c := range columns {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, c.name...)
	}
	b = append(b, '\n')
	for i := 1; i <= 20; i++ {
		b = fmt.Appendf(b, "ACC-%04d,\"Account %d, Inc.\",active,EMEA,%d,%d.50,true,2024-01-%02d\n", i, i, 10*i, 100*i, i)
	}
	return b
}

// serveFile serves csvFile on 127.0.0.1 and returns its URL.
func serveFile() (io.Closer, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", fmt.Errorf("serve the CSV file: %w", err)
	}
	body := csvFile()
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/csv")
			_, _ = w.Write(body)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = srv.Serve(ln) }()
	return srv, "http://" + ln.Addr().String() + "/accounts.csv", nil
}

// mapping is mapping variant v: the first minEntries+v columns.
func mapping(v int) *intakev1.MappingSpec {
	m := &intakev1.MappingSpec{Dialect: &intakev1.CsvDialect{Delimiter: ","}}
	for _, c := range columns[:minEntries+v] {
		m.Entries = append(m.Entries, &intakev1.MappingEntry{
			Attribute: c.attr, Source: &intakev1.MappingEntry_Column{Column: c.name}, SourceFormat: c.format,
		})
	}
	return m
}

// job is the i-th job of the benchmark, without its id.
func job(i, mappings int, url string) *intakev1.Job {
	sched := &intakev1.Schedule{TimeZone: zones[i%len(zones)]}
	if i%2 == 0 {
		sched.Cadence = &intakev1.Schedule_EveryMinutes{EveryMinutes: &intakev1.EveryMinutes{Minutes: 1}}
	} else {
		sched.Cadence = &intakev1.Schedule_Cron{Cron: &intakev1.Cron{Expression: "* * * * *"}}
	}
	return &intakev1.Job{
		DisplayName:     fmt.Sprintf("Scheduler benchmark %05d", i),
		Description:     "intake-schedbench: fires every minute",
		Object:          intakev1.ObjectType_OBJECT_TYPE_ACCOUNTS,
		Connection:      &intakev1.Connection{Kind: &intakev1.Connection_Http{Http: &intakev1.HttpConnection{Url: url}}},
		Mapping:         mapping(i % mappings),
		AllowNewRecords: true,
		Schedule:        sched,
		Enabled:         true,
		RunOnSave:       false,
	}
}

// validate validates each mapping variant once and returns their tokens.
func validate(ctx context.Context, api intakev1.JobServiceClient, url string, mappings int) ([]string, error) {
	tokens := make([]string, mappings)
	for v := range mappings {
		j := job(v, mappings, url)
		resp, err := api.ValidateMapping(ctx, &intakev1.ValidateMappingRequest{Job: j})
		if err != nil {
			return nil, fmt.Errorf("ValidateMapping of mapping %d: %w", v, err)
		}
		if !resp.GetValid() || resp.GetValidationToken() == "" {
			return nil, fmt.Errorf("ValidateMapping of mapping %d: not valid: %v", v, resp.GetFindings())
		}
		tokens[v] = resp.GetValidationToken()
	}
	return tokens, nil
}

// createJobs creates n enabled jobs, concurrency at a time.
func createJobs(ctx context.Context, api intakev1.JobServiceClient, url string, tokens []string, n, concurrency int, logf func(string, ...any)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var done atomic.Int64
	errc := make(chan error, concurrency)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				_, err := api.CreateJob(ctx, &intakev1.CreateJobRequest{
					Job: job(i, len(tokens), url), JobId: fmt.Sprintf("sched-%05d", i), ValidationToken: tokens[i%len(tokens)],
				})
				if err != nil {
					errc <- fmt.Errorf("CreateJob sched-%05d: %w", i, err)
					cancel()
					return
				}
				if d := done.Add(1); d%2000 == 0 {
					logf("  %d jobs created", d)
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	return <-errc
}

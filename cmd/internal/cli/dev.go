package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/intakehq/intake/cmd/internal/command"
	"github.com/intakehq/intake/cmd/internal/ctl"
	"github.com/intakehq/intake/cmd/internal/jobfile"
	"github.com/intakehq/intake/cmd/internal/mappingview"
	"github.com/intakehq/intake/cmd/internal/runview"
	"github.com/intakehq/intake/pkg/objects"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

var devCommand = subcommand{
	summary: "run everything on this machine with demo jobs, in the foreground",
	devLogs: true,
	flags: func(fs *flag.FlagSet, o *options) {
		o.databaseFlag(fs)
		fs.StringVar(&o.examples, "examples", "examples", "directory of the demo jobs (demo-*.yaml) and their files (data/)")
		fs.StringVar(&o.filesAddr, "files-addr", defaultFilesAddr, "address the demo files are served on over HTTP (the examples' URLs point there; port 0: a free port, also taken when the default is busy)")
		o.natsFlag(fs, "", "URL of an external NATS server (default: run an embedded one)")
		o.embeddedNATSFlags(fs, ".dev/nats", 0)
		fs.StringVar(&o.grpcAddr, "grpc-addr", defaultAPIAddr, "address the gRPC API listens on (intakectl's default)")
		o.pollFlag(fs)
		o.apiFlags(fs)
		fs.StringVar(&o.httpAddr, "http-addr", "127.0.0.1:9090", "address of the metrics and health endpoints (/metrics, /healthz, /readyz)")
		fs.StringVar(&o.logFormat, "log-format", "text", "log format: json or text")
		fs.StringVar(&o.logLevel, "log-level", "warn", "log level of the services: debug, info, warn or error")
	},
	run: runDev,
}

// defaultFilesAddr is where intake dev serves examples/data/: the URLs of
// the example jobs point there, so `intakectl job create -f
// examples/accounts-de.yaml` works while intake dev runs.
const defaultFilesAddr = "127.0.0.1:8000"

// demoJob is a job of the examples directory.
type demoJob struct {
	id   string
	file string
	job  *intakev1.Job
}

// runDev is `intake dev`: the whole system in this process in development
// mode, a web server for the sample files, the demo jobs created (or
// updated) and the outcome of every run printed as it ends.
func runDev(ctx context.Context, o *options, log *slog.Logger, sys command.System) error {
	o.dev = true
	jobs, err := readDemoJobs(o.examples)
	if err != nil {
		return err
	}
	dataDir := filepath.Join(o.examples, "data")
	ln, err := net.Listen("tcp", o.filesAddr)
	if err != nil && o.filesAddr == defaultFilesAddr {
		// Another process has the port: any port will do for the demo jobs,
		// which intake dev points at wherever it serves the files.
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		return fmt.Errorf("serve the demo files: listen on %s: %w", o.filesAddr, err)
	}
	filesURL := "http://" + ln.Addr().String()
	st := newStack(o, log)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return st.run(gctx) })
	g.Go(func() error { return serveFiles(gctx, ln, dataDir, log) })
	g.Go(func() error {
		select {
		case <-st.Started():
		case <-gctx.Done():
			return nil
		}
		d := &demo{out: sys.Stdout, o: o, apiAddr: st.APIAddr(), filesURL: filesURL, dataDir: dataDir, jobs: jobs,
			token: st.AdminToken(), tokenNote: installDevToken(sys.LookupEnv, st.AdminToken(), st.o.auth.bootstrapDevFile)} // auth.go
		err := d.run(gctx)
		if gctx.Err() != nil {
			return nil
		}
		return err
	})
	err = g.Wait()
	fmt.Fprintln(sys.Stdout, "stopped.")
	return err
}

func readDemoJobs(dir string) ([]demoJob, error) {
	files, err := filepath.Glob(filepath.Join(dir, "demo-*.yaml"))
	if err != nil {
		return nil, fmt.Errorf("find the demo jobs: %w", err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no demo jobs (demo-*.yaml) in %q: run from the repository's root or set --examples", dir)
	}
	slices.Sort(files)
	var jobs []demoJob
	for _, f := range files {
		job, err := jobfile.Read(f, nil)
		if err != nil {
			return nil, err
		}
		id := strings.TrimPrefix(job.GetName(), "jobs/")
		if id == "" {
			id = strings.TrimSuffix(filepath.Base(f), ".yaml")
		}
		jobs = append(jobs, demoJob{id: id, file: f, job: job})
	}
	return jobs, nil
}

// serveFiles serves dir over HTTP, read from disk on every request so that
// edits show in the next run.
func serveFiles(ctx context.Context, ln net.Listener, dir string, log *slog.Logger) error {
	srv := &http.Server{
		Handler:           http.FileServer(http.Dir(dir)),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve the demo files: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve the demo files: %w", err)
	}
	return nil
}

// demo creates the demo jobs and reports their runs.
type demo struct {
	out      io.Writer
	o        *options
	apiAddr  string
	filesURL string
	dataDir  string
	jobs     []demoJob
	// token is the admin token the demo calls the API with; tokenNote
	// says where intakectl finds it (auth.go).
	token, tokenNote string

	jobsAPI intakev1.JobServiceClient
	runsAPI intakev1.RunServiceClient
	// reported holds the runs whose outcome is known or printed.
	reported      map[string]bool
	hintedRows    bool
	hintedSkipped bool
}

func (d *demo) printf(format string, args ...any) {
	fmt.Fprintf(d.out, format, args...)
}

func (d *demo) run(ctx context.Context) error {
	conn, err := grpc.NewClient(d.apiAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(ctl.BearerCredentials(d.token)))
	if err != nil {
		return fmt.Errorf("dial the control API at %s: %w", d.apiAddr, err)
	}
	defer conn.Close()
	d.jobsAPI = intakev1.NewJobServiceClient(conn)
	d.runsAPI = intakev1.NewRunServiceClient(conn)
	d.reported = map[string]bool{}

	// Runs of earlier sessions are not news.
	runs, err := d.recentRuns(ctx)
	if err != nil {
		return err
	}
	for _, r := range runs {
		d.reported[r.GetName()] = runview.Final(r.GetState())
	}

	d.printf("\nIntake is running in development mode.\n")
	d.printf("  control API   %s (intakectl's default address)\n", d.apiAddr)
	d.printf("  admin token   %s\n", d.tokenNote)
	d.printf("  metrics       http://%s/metrics  (health: /healthz, /readyz)\n", dialable(d.o.httpAddr))
	d.printf("  demo files    %s/ serves %s\n", d.filesURL, d.dataDir)
	for _, j := range d.jobs {
		saved, verb, err := d.save(ctx, j)
		if err != nil {
			return err
		}
		d.printf("  job %-9s %s: %s, %s, from %s\n", verb, saved.GetName(), ctl.Object(saved.GetObject()), ctl.Schedule(saved.GetSchedule()), j.file)
	}
	d.printf("Runs are printed as they end. Ctrl-C stops everything.\n\n")

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if err := d.poll(ctx); err != nil && ctx.Err() == nil {
			d.printf("%s could not read the runs: %v\n", time.Now().Format("15:04:05"), err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// save creates the demo job or, when it exists, updates it; either way the
// job runs on save.
func (d *demo) save(ctx context.Context, j demoJob) (*intakev1.Job, string, error) {
	job := j.job
	if h := job.GetConnection().GetHttp(); h != nil {
		u, err := url.Parse(h.GetUrl())
		if err != nil {
			return nil, "", fmt.Errorf("%s: connection.http.url: %w", j.file, err)
		}
		h.Url = d.filesURL + u.EscapedPath()
	}
	job.Name = ""
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	token, err := d.validate(cctx, j)
	if err != nil {
		return nil, "", err
	}
	saved, err := d.jobsAPI.CreateJob(cctx, &intakev1.CreateJobRequest{Job: job, JobId: j.id, ValidationToken: token})
	if status.Code(err) == codes.AlreadyExists {
		job.Name = "jobs/" + j.id
		saved, err = d.jobsAPI.UpdateJob(cctx, &intakev1.UpdateJobRequest{Job: job, ValidationToken: token})
		if err != nil {
			return nil, "", fmt.Errorf("update the demo job %s from %s: %s", job.GetName(), j.file, describeStatus(err))
		}
		return saved, "updated", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("create the demo job %s from %s: %s", j.id, j.file, describeStatus(err))
	}
	return saved, "created", nil
}

// validate checks the mapping of an enabled demo job against its file and
// returns the token that lets the job be saved enabled.
func (d *demo) validate(ctx context.Context, j demoJob) (string, error) {
	if !j.job.GetEnabled() {
		return "", nil
	}
	resp, err := d.jobsAPI.ValidateMapping(ctx, &intakev1.ValidateMappingRequest{Job: j.job})
	if err != nil {
		return "", fmt.Errorf("validate the mapping of the demo job %s from %s: %s", j.id, j.file, describeStatus(err))
	}
	if !resp.GetValid() {
		var b strings.Builder
		_ = mappingview.Findings(&b, resp.GetFindings())
		return "", fmt.Errorf("the mapping of the demo job %s in %s does not validate:\n%s", j.id, j.file, b.String())
	}
	return resp.GetValidationToken(), nil
}

func (d *demo) recentRuns(ctx context.Context) ([]*intakev1.Run, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := d.runsAPI.ListRuns(cctx, &intakev1.ListRunsRequest{Parent: "jobs/-", PageSize: 50})
	if err != nil {
		return nil, fmt.Errorf("list runs: %s", describeStatus(err))
	}
	return resp.GetRuns(), nil
}

// poll prints the runs that ended since the last poll, oldest first.
func (d *demo) poll(ctx context.Context) error {
	runs, err := d.recentRuns(ctx)
	if err != nil {
		return err
	}
	slices.Reverse(runs)
	now := time.Now()
	for _, r := range runs {
		if d.reported[r.GetName()] || !runview.Final(r.GetState()) {
			continue
		}
		d.reported[r.GetName()] = true
		d.printf("%s %s\n", now.Format("15:04:05"), runview.Outcome(r, now))
		for i, e := range r.GetRowErrors() {
			if i == 3 {
				d.printf("         … %d rejected rows in all: intakectl run get %s\n", r.GetCounters().GetRowsRejected(), r.GetName())
				break
			}
			d.printf("         %s\n", runview.RowError(e))
		}
		d.hint(r)
	}
	return nil
}

// hint tells once how to look at the rows, and once why runs are skipped.
func (d *demo) hint(r *intakev1.Run) {
	switch {
	case runview.Succeeded(r.GetState()) && !d.hintedRows:
		d.hintedRows = true
		table := "objects.accounts"
		for _, j := range d.jobs {
			if strings.HasPrefix(r.GetName(), "jobs/"+j.id+"/") {
				if o, err := objects.Lookup(j.job.GetObject()); err == nil {
					table = objects.Schema + "." + o.Name
				}
			}
		}
		ctlPath := "intakectl"
		if _, err := os.Stat(filepath.Join("bin", "intakectl")); err == nil {
			ctlPath = filepath.Join("bin", "intakectl")
		}
		d.printf("\n  Look at the imported rows:\n")
		d.printf("    psql '%s' -c 'SELECT * FROM %s LIMIT 5'\n", d.o.databaseURL, table)
		d.printf("  and at the runs:\n")
		d.printf("    %s run list\n", ctlPath)
		d.printf("    %s run get %s\n\n", ctlPath, r.GetName())
	case r.GetState() == intakev1.RunState_RUN_STATE_SKIPPED && !d.hintedSkipped:
		d.hintedSkipped = true
		d.printf("\n  The file has not changed since the last successful run, so the run was\n")
		d.printf("  skipped (shown as a failure). Edit %s to see the next run\n", filepath.Join(d.dataDir, "accounts.csv"))
		d.printf("  (every minute) import the change.\n\n")
	}
}

func describeStatus(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return err.Error()
	}
	return fmt.Sprintf("%s (%s)", st.Message(), st.Code())
}

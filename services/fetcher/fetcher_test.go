package fetcher_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	stdcsv "encoding/csv"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/intakehq/intake/pkg/testutil"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/intakehq/intake/pkg/archive"
	"github.com/intakehq/intake/pkg/csv"
	"github.com/intakehq/intake/pkg/dialect"
	"github.com/intakehq/intake/pkg/natstest"
	"github.com/intakehq/intake/pkg/pipeline"
	pipelinev1 "github.com/intakehq/intake/proto/gen/intake/pipeline/v1"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"

	"github.com/intakehq/intake/services/fetcher"
)

// fakeAPI is a test double of the control API's StageService: it records
// the reports and answers with the directive of answer (CONTINUE if nil).
type fakeAPI struct {
	intakev1.UnimplementedStageServiceServer
	addr string

	mu      sync.Mutex
	reports []*intakev1.ReportRunEventRequest
	answer  func(*intakev1.ReportRunEventRequest) (intakev1.Directive, error)
	// respond, when set, completes each report's response (e.g. its Run)
	// after answer accepted the report.
	respond func(*intakev1.ReportRunEventRequest, *intakev1.ReportRunEventResponse)
	// resolve answers ResolveConnection (connection_test.go); nil:
	// Unimplemented.
	resolve func(*intakev1.ResolveConnectionRequest) (*intakev1.ResolveConnectionResponse, error)
}

func (f *fakeAPI) ReportRunEvent(_ context.Context, req *intakev1.ReportRunEventRequest) (*intakev1.ReportRunEventResponse, error) {
	f.mu.Lock()
	f.reports = append(f.reports, proto.Clone(req).(*intakev1.ReportRunEventRequest))
	answer, respond := f.answer, f.respond
	f.mu.Unlock()
	d := intakev1.Directive_DIRECTIVE_CONTINUE
	if answer != nil {
		var err error
		if d, err = answer(req); err != nil {
			return nil, err
		}
	}
	resp := &intakev1.ReportRunEventResponse{Directive: d}
	if respond != nil {
		respond(req, resp)
	}
	return resp, nil
}

func startAPI(t *testing.T, answer func(*intakev1.ReportRunEventRequest) (intakev1.Directive, error)) *fakeAPI {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f := &fakeAPI{addr: ln.Addr().String(), answer: answer}
	srv := grpc.NewServer()
	intakev1.RegisterStageServiceServer(srv, f)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return f
}

// runReports returns the reports of a run, in order.
func (f *fakeAPI) runReports(run string) []*intakev1.ReportRunEventRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*intakev1.ReportRunEventRequest
	for _, r := range f.reports {
		if r.GetRun() == run {
			out = append(out, r)
		}
	}
	return out
}

func (f *fakeAPI) kinds(run string) []intakev1.RunEventKind {
	var out []intakev1.RunEventKind
	for _, r := range f.runReports(run) {
		out = append(out, r.GetKind())
	}
	return out
}

const (
	started  = intakev1.RunEventKind_RUN_EVENT_KIND_STARTED
	fetchedK = intakev1.RunEventKind_RUN_EVENT_KIND_FETCHED
	finished = intakev1.RunEventKind_RUN_EVENT_KIND_FINISHED
	failed   = intakev1.RunEventKind_RUN_EVENT_KIND_FAILED
)

// files is an HTTP server of CSV files that counts requests.
type files struct {
	*httptest.Server
	mu    sync.Mutex
	body  map[string]string
	hits  map[string]int
	auth  string
	check func(*http.Request)
}

func serveFiles(t *testing.T, body map[string]string) *files {
	t.Helper()
	f := &files{body: body, hits: map[string]int{}}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.hits[r.URL.Path]++
		f.auth = r.Header.Get("Authorization")
		b, ok := f.body[r.URL.Path]
		check := f.check
		f.mu.Unlock()
		if check != nil {
			check(r)
		}
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, b)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *files) set(path, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.body[path] = body
}

func (f *files) hitCount(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits[path]
}

type env struct {
	js   jetstream.JetStream
	api  *fakeAPI
	reg  *prometheus.Registry
	logs *testutil.SyncBuffer
}

// start runs a fetcher on an embedded JetStream server, reporting to a fake
// API, until the end of the test.
func start(t *testing.T, cfg fetcher.Config, answer func(*intakev1.ReportRunEventRequest) (intakev1.Directive, error)) *env {
	t.Helper()
	srv := natstest.Start(t)
	_, js := srv.Connect(t)
	e := &env{js: js, api: startAPI(t, answer), reg: prometheus.NewRegistry(), logs: &testutil.SyncBuffer{}}
	cfg.NATSURL, cfg.APIAddr, cfg.Registerer = srv.URL, e.api.addr, e.reg
	cfg.Logger = slog.New(slog.NewTextHandler(e.logs, nil))
	if cfg.MaxChunkRows == 0 {
		cfg.MaxChunkRows = 3
	}
	svc, err := fetcher.New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done, "Run returns nil after a graceful stop")
		if t.Failed() {
			t.Logf("fetcher logs:\n%s", e.logs.String())
		}
	})
	require.Eventually(t, svc.Ready, 10*time.Second, 10*time.Millisecond)
	return e
}

func newJob(conn *intakev1.Connection, dialect *intakev1.CsvDialect) *intakev1.Job {
	return &intakev1.Job{
		Name: "jobs/j-accounts", DisplayName: "Accounts", Object: intakev1.ObjectType_OBJECT_TYPE_ACCOUNTS,
		Connection: conn, AllowNewRecords: true,
		Mapping: &intakev1.MappingSpec{Dialect: dialect, Entries: []*intakev1.MappingEntry{
			{Attribute: "account_id", Source: &intakev1.MappingEntry_Column{Column: "id"}},
			{Attribute: "name", Source: &intakev1.MappingEntry_Column{Column: "name"}},
		}},
	}
}

func httpConn(url string) *intakev1.Connection {
	return &intakev1.Connection{Kind: &intakev1.Connection_Http{Http: &intakev1.HttpConnection{
		Url: url, Headers: map[string]string{"Authorization": "Bearer t0ken"},
	}}}
}

func localConn(path string) *intakev1.Connection {
	return &intakev1.Connection{Kind: &intakev1.Connection_Local{Local: &intakev1.LocalConnection{Path: path}}}
}

// submit publishes a run request of job as the API does and returns the
// run name.
func (e *env) submit(t *testing.T, job *intakev1.Job) string {
	t.Helper()
	var b [16]byte
	_, _ = rand.Read(b[:])
	run := job.GetName() + "/runs/" + hex.EncodeToString(b[:])
	require.NoError(t, pipeline.Publish(t.Context(), e.js, pipeline.SubjectRunRequest, run, &pipelinev1.RunRequest{
		Run: run, Job: job, Trigger: intakev1.Trigger_TRIGGER_RUN_NOW, CreateTime: timestamppb.Now(),
	}))
	return run
}

// waitDone waits until every run request has been acked (the work queue is
// empty) and the run reported one of the final kinds.
func (e *env) waitDone(t *testing.T, run string, last intakev1.RunEventKind) []*intakev1.ReportRunEventRequest {
	t.Helper()
	require.Eventually(t, func() bool {
		reports := e.api.runReports(run)
		if len(reports) == 0 || reports[len(reports)-1].GetKind() != last {
			return false
		}
		st, err := e.js.Stream(t.Context(), pipeline.StreamRuns)
		require.NoError(t, err)
		info, err := st.Info(t.Context())
		require.NoError(t, err)
		return info.State.Msgs == 0
	}, 20*time.Second, 20*time.Millisecond, "run %s: reports so far %v", run, e.api.kinds(run))
	return e.api.runReports(run)
}

// chunks returns the chunk messages of run on the chunk stream.
func (e *env) chunks(t *testing.T, run string) []*pipelinev1.Chunk {
	t.Helper()
	var out []*pipelinev1.Chunk
	for _, m := range e.messages(t, pipeline.StreamChunks) {
		var c pipelinev1.Chunk
		require.NoError(t, proto.Unmarshal(m.Data, &c))
		if c.GetRun() == run {
			out = append(out, &c)
		}
	}
	return out
}

// seals returns the seals of run.
func (e *env) seals(t *testing.T, run string) []*pipelinev1.Seal {
	t.Helper()
	var out []*pipelinev1.Seal
	for _, m := range e.messages(t, pipeline.StreamLoad) {
		if m.Subject != pipeline.SubjectSeal {
			continue
		}
		var s pipelinev1.Seal
		require.NoError(t, proto.Unmarshal(m.Data, &s))
		if s.GetRun() == run {
			out = append(out, &s)
		}
	}
	return out
}

func (e *env) messages(t *testing.T, stream string) []*jetstream.RawStreamMsg {
	t.Helper()
	st, err := e.js.Stream(t.Context(), stream)
	require.NoError(t, err)
	info, err := st.Info(t.Context())
	require.NoError(t, err)
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(t.Context(), seq)
		require.NoError(t, err)
		out = append(out, m)
	}
	return out
}

// metric returns the value of a counter (or a histogram's count).
func (e *env) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			if h := m.GetHistogram(); h != nil {
				return float64(h.GetSampleCount())
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s %v not found", name, labels)
	return 0
}

// records parses data as the mapper does.
func records(t *testing.T, data []byte, comma rune) [][]string {
	t.Helper()
	r := stdcsv.NewReader(bytes.NewReader(data))
	r.Comma, r.LazyQuotes, r.FieldsPerRecord = comma, true, -1
	recs, err := r.ReadAll()
	require.NoError(t, err)
	return recs
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// accountsCSV has 10 data rows, one with a quoted line break.
func accountsCSV() string {
	var b strings.Builder
	b.WriteString("id,name,note\r\n")
	for i := 1; i <= 10; i++ {
		switch i {
		case 4:
			fmt.Fprintf(&b, "%d,\"Bolt, Inc.\",\"two\r\nlines\"\r\n", i)
		default:
			fmt.Fprintf(&b, "%d,Company %d,\r\n", i, i)
		}
	}
	return b.String()
}

func TestFetchPublishesChunksAndSeal(t *testing.T) {
	t.Parallel()
	e := start(t, fetcher.Config{}, nil)
	body := accountsCSV()
	srv := serveFiles(t, map[string]string{"/accounts.csv": body})
	job := newJob(httpConn(srv.URL+"/accounts.csv"), nil)

	run := e.submit(t, job)
	reports := e.waitDone(t, run, finished)

	require.Equal(t, []intakev1.RunEventKind{started, fetchedK, finished}, e.api.kinds(run))
	require.Equal(t, sha(body), reports[1].GetSha256())
	require.Equal(t, srv.URL+"/accounts.csv", reports[1].GetSource())
	require.Equal(t, int64(len(body)), reports[1].GetCounters().GetBytes())
	require.Equal(t, int64(len(body)), reports[2].GetCounters().GetBytes())
	require.Equal(t, int64(4), reports[2].GetCounters().GetChunks())
	srv.mu.Lock()
	require.Equal(t, "Bearer t0ken", srv.auth, "the connection's headers are sent")
	srv.mu.Unlock()
	for _, r := range reports {
		require.Equal(t, intakev1.Stage_STAGE_FETCH, r.GetStage())
		require.NotNil(t, r.GetEventTime())
	}

	// Chunks: 3 rows each, numbered as a spreadsheet shows them.
	chunks := e.chunks(t, run)
	require.Len(t, chunks, 4)
	want := records(t, []byte(body), ',')[1:]
	var got [][]string
	for i, c := range chunks {
		require.Equal(t, int64(i), c.GetIndex())
		require.Equal(t, int64(2+3*i), c.GetFirstRow())
		require.Equal(t, []string{"id", "name", "note"}, c.GetHeader())
		require.True(t, proto.Equal(job, c.GetJob()), "chunk carries the job snapshot")
		recs := records(t, c.GetData(), ',')
		require.Len(t, recs, int(c.GetRows()))
		got = append(got, recs...)
	}
	require.Equal(t, []int64{3, 3, 3, 1}, []int64{chunks[0].GetRows(), chunks[1].GetRows(), chunks[2].GetRows(), chunks[3].GetRows()})
	require.Equal(t, want, got)
	require.Equal(t, []string{"4", "Bolt, Inc.", "two\nlines"}, got[3])

	seals := e.seals(t, run)
	require.Len(t, seals, 1)
	require.Equal(t, int64(4), seals[0].GetChunks())
	require.Equal(t, intakev1.ObjectType_OBJECT_TYPE_ACCOUNTS, seals[0].GetObject())
	require.True(t, seals[0].GetAllowNewRecords())
	require.Equal(t, []string{"account_id", "name"}, seals[0].GetAttributes())

	// The source file is in the run archive under the run id.
	arch, err := archive.NewJetStream(t.Context(), e.js, pipeline.ArchiveBucket, 1)
	require.NoError(t, err)
	rc, err := arch.Open(t.Context(), run[strings.LastIndex(run, "/")+1:])
	require.NoError(t, err)
	archived, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	require.Equal(t, body, string(archived))

	require.Equal(t, 1.0, e.metric(t, "intake_fetcher_runs_total", "outcome", "fetched"))
	require.Equal(t, 0.0, e.metric(t, "intake_fetcher_runs_total", "outcome", "failed"))
	require.Equal(t, 4.0, e.metric(t, "intake_fetcher_chunks_total"))
	require.Equal(t, float64(len(body)), e.metric(t, "intake_fetcher_fetched_bytes_total"))
	require.Equal(t, 1.0, e.metric(t, "intake_fetcher_fetch_duration_seconds"))

	logs := e.logs.String()
	require.Contains(t, logs, "file fetched and archived")
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "file fetched and archived") {
			require.Contains(t, line, "run="+run)
			require.Contains(t, line, "job=jobs/j-accounts")
		}
	}
}

func TestSkipStopsAfterFetched(t *testing.T) {
	t.Parallel()
	e := start(t, fetcher.Config{}, func(r *intakev1.ReportRunEventRequest) (intakev1.Directive, error) {
		if r.GetKind() == fetchedK {
			return intakev1.Directive_DIRECTIVE_SKIP, nil
		}
		return intakev1.Directive_DIRECTIVE_CONTINUE, nil
	})
	srv := serveFiles(t, map[string]string{"/a.csv": accountsCSV()})
	run := e.submit(t, newJob(httpConn(srv.URL+"/a.csv"), nil))
	e.waitDone(t, run, fetchedK)

	require.Equal(t, []intakev1.RunEventKind{started, fetchedK}, e.api.kinds(run))
	require.Empty(t, e.chunks(t, run), "a skipped run publishes no chunk")
	require.Empty(t, e.seals(t, run))
	require.Equal(t, 1.0, e.metric(t, "intake_fetcher_runs_total", "outcome", "skipped"))
	require.Equal(t, 0.0, e.metric(t, "intake_fetcher_runs_total", "outcome", "fetched"))
}

func TestAbandonOnStartFetchesNothing(t *testing.T) {
	t.Parallel()
	e := start(t, fetcher.Config{}, func(*intakev1.ReportRunEventRequest) (intakev1.Directive, error) {
		return intakev1.Directive_DIRECTIVE_ABANDON, nil
	})
	srv := serveFiles(t, map[string]string{"/a.csv": accountsCSV()})
	run := e.submit(t, newJob(httpConn(srv.URL+"/a.csv"), nil))
	e.waitDone(t, run, started)
	require.Equal(t, []intakev1.RunEventKind{started}, e.api.kinds(run))
	require.Zero(t, srv.hitCount("/a.csv"))
}

func TestNotFoundFails(t *testing.T) {
	t.Parallel()
	e := start(t, fetcher.Config{}, nil)
	srv := serveFiles(t, map[string]string{})
	run := e.submit(t, newJob(httpConn(srv.URL+"/missing.csv"), nil))
	reports := e.waitDone(t, run, failed)

	require.Equal(t, []intakev1.RunEventKind{started, failed}, e.api.kinds(run))
	require.Equal(t, "GET "+srv.URL+"/missing.csv: 404 Not Found", reports[1].GetMessage())
	require.Empty(t, e.chunks(t, run))
	require.Equal(t, 1.0, e.metric(t, "intake_fetcher_runs_total", "outcome", "failed"))
}

func TestMalformedFilesFail(t *testing.T) {
	t.Parallel()
	e := start(t, fetcher.Config{}, nil)
	srv := serveFiles(t, map[string]string{
		"/open-quote.csv":  "id,name\n1,a\n2,\"b\n3,c\n",
		"/empty.csv":       "",
		"/header-only.csv": "id,name\r\n",
		"/no-header.csv":   "title\n",
	})
	for path, msg := range map[string]string{
		"/open-quote.csv":  "row 3: the quoted field opened on line 3 is not closed before the end of the file",
		"/empty.csv":       "file is empty",
		"/header-only.csv": "file has a header but no data rows",
		"/no-header.csv":   "file ends before the header row: the header is record 2 but the file has only 1 records",
	} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			var dialect *intakev1.CsvDialect
			if path == "/no-header.csv" {
				dialect = &intakev1.CsvDialect{HeaderRow: 2}
			}
			run := e.submit(t, newJob(httpConn(srv.URL+path), dialect))
			reports := e.waitDone(t, run, failed)
			require.Equal(t, []intakev1.RunEventKind{started, failed}, e.api.kinds(run), "a bad file is never reported fetched")
			require.Equal(t, srv.URL+path+": "+msg, reports[1].GetMessage())
			require.Empty(t, e.chunks(t, run))
			require.Empty(t, e.seals(t, run))
		})
	}
}

func TestLocalFileInDevMode(t *testing.T) {
	t.Parallel()
	e := start(t, fetcher.Config{DevMode: true}, nil)
	path := filepath.Join(t.TempDir(), "accounts.csv")
	body := "exported 2024-05-01;\nid;name\n1;\"a;b\"\n2;c\n"
	require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
	run := e.submit(t, newJob(localConn(path), &intakev1.CsvDialect{Delimiter: ";", HeaderRow: 2}))
	reports := e.waitDone(t, run, finished)

	require.Equal(t, path, reports[1].GetSource())
	require.Equal(t, sha(body), reports[1].GetSha256())
	chunks := e.chunks(t, run)
	require.Len(t, chunks, 1)
	require.Equal(t, []string{"id", "name"}, chunks[0].GetHeader())
	require.Equal(t, int64(3), chunks[0].GetFirstRow(), "the header is row 2")
	require.Equal(t, [][]string{{"1", "a;b"}, {"2", "c"}}, records(t, chunks[0].GetData(), ';'))
}

func TestLocalFileRefusedOutsideDevMode(t *testing.T) {
	t.Parallel()
	e := start(t, fetcher.Config{}, nil)
	path := filepath.Join(t.TempDir(), "accounts.csv")
	require.NoError(t, os.WriteFile(path, []byte("id\n1\n"), 0o600))
	run := e.submit(t, newJob(localConn(path), nil))
	reports := e.waitDone(t, run, failed)
	require.Equal(t, "local files are only available in development mode (scheduled imports need a data file connection)", reports[1].GetMessage())
	require.Empty(t, e.chunks(t, run))
}

func TestBadDialectFails(t *testing.T) {
	t.Parallel()
	e := start(t, fetcher.Config{}, nil)
	srv := serveFiles(t, map[string]string{"/a.csv": accountsCSV()})
	run := e.submit(t, newJob(httpConn(srv.URL+"/a.csv"), &intakev1.CsvDialect{Delimiter: ";;"}))
	reports := e.waitDone(t, run, failed)
	require.Equal(t, `the job's CSV dialect: the delimiter ";;" is not one character`, reports[1].GetMessage())
	require.Zero(t, srv.hitCount("/a.csv"))
}

// A run request redelivered after the fetcher failed half-way (here: the
// FINISHED report was refused once) chunks the archived copy again, not a
// new download, and the chunks are stored once.
func TestRedeliveredRunReusesArchivedFile(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	refused := false
	e := start(t, fetcher.Config{}, func(r *intakev1.ReportRunEventRequest) (intakev1.Directive, error) {
		mu.Lock()
		defer mu.Unlock()
		if r.GetKind() == finished && !refused {
			refused = true
			return 0, status.Error(codes.Internal, "database is restarting")
		}
		return intakev1.Directive_DIRECTIVE_CONTINUE, nil
	})
	body := accountsCSV()
	srv := serveFiles(t, map[string]string{"/a.csv": body})
	srv.check = func(*http.Request) { srv.set("/a.csv", "id,name\nchanged,since\n") }
	run := e.submit(t, newJob(httpConn(srv.URL+"/a.csv"), nil))

	require.Eventually(t, func() bool { return len(e.api.runReports(run)) == 6 }, 20*time.Second, 20*time.Millisecond)
	reports := e.waitDone(t, run, finished)
	require.Equal(t, []intakev1.RunEventKind{started, fetchedK, finished, started, fetchedK, finished}, e.api.kinds(run))
	require.Equal(t, 1, srv.hitCount("/a.csv"), "the file is downloaded once")
	require.Equal(t, sha(body), reports[4].GetSha256())
	require.Equal(t, reports[1].GetSource(), reports[4].GetSource())
	require.Equal(t, int64(4), reports[5].GetCounters().GetChunks())

	chunks := e.chunks(t, run)
	require.Len(t, chunks, 4, "republished chunks are deduplicated")
	require.Len(t, e.seals(t, run), 1)
	require.Equal(t, 1.0, e.metric(t, "intake_fetcher_runs_total", "outcome", "fetched"))
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	ok := fetcher.Config{NATSURL: "nats://127.0.0.1:4222", APIAddr: "127.0.0.1:7070"}
	require.NoError(t, ok.Validate())
	for _, tc := range []struct {
		edit func(*fetcher.Config)
		err  string
	}{
		{func(c *fetcher.Config) { c.NATSURL = "" }, "fetcher: NATSURL is required"},
		{func(c *fetcher.Config) { c.APIAddr = "" }, "fetcher: APIAddr (the control API's gRPC address) is required"},
		{func(c *fetcher.Config) { c.Concurrency = -1 }, "fetcher: Concurrency -1: must be 1 or more (0 means 2)"},
		{func(c *fetcher.Config) { c.MaxChunkBytes = 9 << 20 }, "fetcher: MaxChunkBytes 9437184: must be between 1 and 8388608 (0 means 1048576)"},
		{func(c *fetcher.Config) { c.MaxChunkBytes = 10 }, "fetcher: MaxChunkBytes 10: must be at least 1024"},
		{func(c *fetcher.Config) { c.MaxChunkRows = -1 }, "fetcher: MaxChunkRows -1: must be 1 or more (0 means 5000)"},
		{func(c *fetcher.Config) { c.AckWait = time.Millisecond }, "fetcher: AckWait 1ms: must be at least 1s (0 means 30s)"},
		{func(c *fetcher.Config) { c.ShutdownGrace = -time.Second }, "fetcher: ShutdownGrace -1s: must not be negative"},
		{func(c *fetcher.Config) { c.FetchTimeout = -time.Second }, "fetcher: FetchTimeout -1s: must not be negative (0 means 30s)"},
		{func(c *fetcher.Config) { c.Replicas = 7 }, "fetcher: Replicas 7: must be between 1 and 5 (0 means 1)"},
	} {
		c := ok
		tc.edit(&c)
		require.EqualError(t, c.Validate(), tc.err)
		_, err := fetcher.New(c)
		require.EqualError(t, err, tc.err)
	}
}

func TestMetricsRegisterOnce(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	cfg := fetcher.Config{NATSURL: "nats://127.0.0.1:4222", APIAddr: "127.0.0.1:7070", Registerer: reg}
	_, err := fetcher.New(cfg)
	require.NoError(t, err)
	_, err = fetcher.New(cfg)
	require.ErrorContains(t, err, "fetcher: register metrics")
	_, err = fetcher.New(fetcher.Config{NATSURL: cfg.NATSURL, APIAddr: cfg.APIAddr})
	require.NoError(t, err, "no registerer: a private registry")
}

func TestRunFailsWithoutNATS(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	svc, err := fetcher.New(fetcher.Config{NATSURL: "nats://" + addr, APIAddr: "127.0.0.1:1"})
	require.NoError(t, err)
	err = svc.Run(t.Context())
	require.ErrorContains(t, err, "fetcher: connect to NATS at nats://"+addr)
	require.False(t, svc.Ready())
}

func TestLargeFileIsCutWithinLimits(t *testing.T) {
	t.Parallel()
	e := start(t, fetcher.Config{MaxChunkRows: 100000, MaxChunkBytes: 1 << 20}, nil)
	var b strings.Builder
	b.WriteString("id,name,note\n")
	rows := 0
	for b.Len() < 8<<20 {
		rows++
		fmt.Fprintf(&b, "%d,\"Company %d, Inc.\",\"line one\nline two of row %d\"\n", rows, rows, rows)
	}
	body := b.String()
	srv := serveFiles(t, map[string]string{"/big.csv": body})
	run := e.submit(t, newJob(httpConn(srv.URL+"/big.csv"), nil))
	reports := e.waitDone(t, run, finished)
	require.Equal(t, sha(body), reports[1].GetSha256())

	chunks := e.chunks(t, run)
	require.Len(t, chunks, int(reports[2].GetCounters().GetChunks()))
	require.GreaterOrEqual(t, len(chunks), 8)
	next, total := int64(2), 0
	for _, c := range chunks {
		require.LessOrEqual(t, len(c.GetData()), 1<<20)
		require.Equal(t, next, c.GetFirstRow())
		recs := records(t, c.GetData(), ',')
		require.Len(t, recs, int(c.GetRows()))
		require.Equal(t, fmt.Sprint(next-1), recs[0][0], "row n holds id n-1")
		next += c.GetRows()
		total += len(recs)
	}
	require.Equal(t, rows, total)
}

func utf16LE(s string) []byte {
	b := []byte{0xFF, 0xFE}
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u), byte(u>>8))
	}
	return b
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, err := w.Write(b)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return buf.Bytes()
}

// readChunk reads a chunk's data with pkg/csv and the chunk's dialect, as
// the mapper does.
func readChunk(t *testing.T, c *pipelinev1.Chunk) [][]string {
	t.Helper()
	d, err := dialect.CSV(c.GetDialect())
	require.NoError(t, err)
	r := csv.NewReader(bytes.NewReader(c.GetData()), d)
	r.KeepBOM = true
	recs, err := r.ReadAll()
	require.NoError(t, err)
	return recs
}

// A gzip'd UTF-16LE file with semicolons and no dialect set arrives as UTF-8
// chunks that carry the resolved dialect, the model and the dry-run flag.
func TestDecodesGzipUTF16Semicolons(t *testing.T) {
	t.Parallel()
	e := start(t, fetcher.Config{MaxChunkRows: 2}, nil)
	text := "id;name;note\r\n1;Zoë;\"a;b\r\nc\"\r\n2;Åsa;x\r\n3;\"Bolt; Inc.\";€\r\n"
	body := gzipped(t, utf16LE(text))
	srv := serveFiles(t, map[string]string{"/a.csv.gz": string(body)})
	job := newJob(httpConn(srv.URL+"/a.csv.gz"), &intakev1.CsvDialect{NullValues: []string{"NULL"}, TrimSpace: true})
	model := &intakev1.DataObject{Name: "objects/accounts", Type: intakev1.ObjectType_OBJECT_TYPE_ACCOUNTS, Keys: []string{"account_id"},
		Attributes: []*intakev1.Attribute{{AttributeId: "account_id", Type: intakev1.AttributeType_ATTRIBUTE_TYPE_TEXT, Key: true}}}
	run := e.submitRequest(t, &pipelinev1.RunRequest{Job: job, Model: model, DryRun: true})
	reports := e.waitDone(t, run, finished)

	require.Equal(t, []string{"id", "name", "note"}, reports[1].GetHeader(), "FETCHED carries the decoded header")
	require.Equal(t, sha(string(body)), reports[1].GetSha256(), "the hash is of the file's bytes")
	require.Equal(t, int64(len(body)), reports[1].GetCounters().GetBytes())

	chunks := e.chunks(t, run)
	require.Len(t, chunks, 2)
	want := &intakev1.CsvDialect{Delimiter: ";", Quote: `"`, Escape: `"`, Encoding: "utf-8",
		Compression: intakev1.Compression_COMPRESSION_NONE, NullValues: []string{"NULL"}, TrimSpace: true}
	var got [][]string
	for i, c := range chunks {
		require.True(t, proto.Equal(want, c.GetDialect()), "chunk %d dialect %v", i, c.GetDialect())
		require.True(t, proto.Equal(model, c.GetModel()), "chunk %d carries the model", i)
		require.True(t, c.GetDryRun())
		require.Equal(t, []string{"id", "name", "note"}, c.GetHeader())
		require.True(t, utf8.Valid(c.GetData()))
		got = append(got, readChunk(t, c)...)
	}
	require.Equal(t, int64(2), chunks[0].GetFirstRow())
	require.Equal(t, int64(4), chunks[1].GetFirstRow())
	require.Equal(t, [][]string{{"1", "Zoë", "a;b\nc"}, {"2", "Åsa", "x"}, {"3", "Bolt; Inc.", "€"}}, got)
	require.Equal(t, "1;Zoë;\"a;b\r\nc\"\r\n2;Åsa;x\r\n", string(chunks[0].GetData()))

	seals := e.seals(t, run)
	require.Len(t, seals, 1)
	require.True(t, seals[0].GetDryRun())
}

func TestLatin1IsDecodedAndRowsSkipped(t *testing.T) {
	t.Parallel()
	e := start(t, fetcher.Config{}, nil)
	srv := serveFiles(t, map[string]string{"/l.csv": "id\tname\n-\tunits\n1\tCaf\xe9\n2\tGar\xe7on\n"})
	run := e.submit(t, newJob(httpConn(srv.URL+"/l.csv"), &intakev1.CsvDialect{SkipRows: 1}))
	e.waitDone(t, run, finished)
	chunks := e.chunks(t, run)
	require.Len(t, chunks, 1)
	require.Equal(t, int64(3), chunks[0].GetFirstRow(), "the skipped row 2 still counts")
	require.Equal(t, "\t", chunks[0].GetDialect().GetDelimiter())
	require.Equal(t, [][]string{{"1", "Café"}, {"2", "Garçon"}}, readChunk(t, chunks[0]))
}

func TestUndecodableFilesFail(t *testing.T) {
	t.Parallel()
	e := start(t, fetcher.Config{}, nil)
	var big strings.Builder
	big.WriteString("id,name\n")
	for i := range 50000 {
		fmt.Fprintf(&big, "%d,name %x\n", i, i*7919)
	}
	corrupt := gzipped(t, []byte(big.String()))
	corrupt[len(corrupt)-8] ^= 0xFF // the CRC-32
	srv := serveFiles(t, map[string]string{
		"/corrupt.csv.gz":   string(corrupt),
		"/truncated.csv.gz": string(gzipped(t, []byte(big.String()))[:3000]),
		"/plain.csv":        "id,name\n1,a\n",
		"/utf8.csv":         "id,Caf\xe9\n1,a\n",
	})
	for _, tc := range []struct {
		path    string
		dialect *intakev1.CsvDialect
		msg     string
		fetched bool // the file was downloaded
	}{
		{"/corrupt.csv.gz", nil, "the file is not valid gzip data: corrupt or cut short (gzip: invalid checksum)", true},
		{"/truncated.csv.gz", nil, "the file is not valid gzip data: corrupt or cut short (unexpected EOF)", true},
		{"/plain.csv", &intakev1.CsvDialect{Compression: intakev1.Compression_COMPRESSION_GZIP},
			"the file is not valid gzip data: it does not start with the gzip magic bytes 1f 8b, yet the dialect says it is gzip-compressed", true},
		{"/utf8.csv", &intakev1.CsvDialect{Encoding: "utf-8"},
			`column 2 of the header row is not valid UTF-8 ("Caf\xe9"): set the job's encoding (one of "utf-8", "utf-16le", "utf-16be", "iso-8859-1", "windows-1252")`, true},
		{"/plain.csv", &intakev1.CsvDialect{Encoding: "ebcdic"},
			`the job's CSV dialect: unknown encoding "ebcdic": supported are utf-8, utf-16le, utf-16be, iso-8859-1, windows-1252`, false},
		{"/plain.csv", &intakev1.CsvDialect{Quote: "«"}, `the job's CSV dialect: the quote "«" must be an ASCII character`, false},
	} {
		t.Run(tc.path+" "+tc.dialect.String(), func(t *testing.T) {
			t.Parallel()
			run := e.submit(t, newJob(httpConn(srv.URL+tc.path), tc.dialect))
			reports := e.waitDone(t, run, failed)
			require.Equal(t, []intakev1.RunEventKind{started, failed}, e.api.kinds(run))
			msg := tc.msg
			if tc.fetched {
				msg = srv.URL + tc.path + ": " + msg
			}
			require.Equal(t, msg, reports[1].GetMessage())
			require.Empty(t, e.chunks(t, run))
		})
	}
}

// submitRequest publishes req (its run named here) as the API does.
func (e *env) submitRequest(t *testing.T, req *pipelinev1.RunRequest) string {
	t.Helper()
	var b [16]byte
	_, _ = rand.Read(b[:])
	req.Run = req.GetJob().GetName() + "/runs/" + hex.EncodeToString(b[:])
	req.Trigger, req.CreateTime = intakev1.Trigger_TRIGGER_RUN_NOW, timestamppb.Now()
	require.NoError(t, pipeline.Publish(t.Context(), e.js, pipeline.SubjectRunRequest, req.Run, req))
	return req.Run
}

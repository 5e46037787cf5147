package fetcher_test

import (
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/intakehq/intake/pkg/archive"
	"github.com/intakehq/intake/pkg/pipeline"
	"github.com/intakehq/intake/pkg/s3test"
	"github.com/intakehq/intake/pkg/sftptest"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"

	"github.com/intakehq/intake/services/fetcher"
)

// connStore makes a fake API behave as the control API does for stored
// connections: ResolveConnection gives the connection of a job (with its
// secrets) and the validators of the job's last run the fetcher finished,
// and every report's response carries the run as the API keeps it (its
// scheduled time; the hash, source and file of the FETCHED report it
// accepted).
type connStore struct {
	mu sync.Mutex
	// conns is the connection each job's connection_name resolves to, by
	// job name; a job without one gets FailedPrecondition, as for a
	// deleted connection.
	conns map[string]*intakev1.Connection
	// scheduled is the scheduled time of each job's runs, by job name.
	scheduled map[string]time.Time
	// last is what ResolveConnection answers besides the connection, by
	// job name: the validators of the last run that finished.
	last     map[string]*intakev1.ResolveConnectionResponse
	runs     map[string]*intakev1.Run
	fetched  map[string]*intakev1.ReportRunEventRequest
	resolved map[string]int // ResolveConnection calls by run
}

func withConnStore(e *env) *connStore {
	st := &connStore{
		conns:     map[string]*intakev1.Connection{},
		scheduled: map[string]time.Time{},
		last:      map[string]*intakev1.ResolveConnectionResponse{},
		runs:      map[string]*intakev1.Run{},
		fetched:   map[string]*intakev1.ReportRunEventRequest{},
		resolved:  map[string]int{},
	}
	e.api.mu.Lock()
	defer e.api.mu.Unlock()
	e.api.respond = st.respond
	e.api.resolve = st.resolve
	return st
}

func jobOf(run string) string { return run[:strings.Index(run, "/runs/")] }

func (st *connStore) respond(req *intakev1.ReportRunEventRequest, resp *intakev1.ReportRunEventResponse) {
	st.mu.Lock()
	defer st.mu.Unlock()
	job := jobOf(req.GetRun())
	run := st.runs[req.GetRun()]
	if run == nil {
		run = &intakev1.Run{Name: req.GetRun(), CreateTime: timestamppb.Now()}
		if t, ok := st.scheduled[job]; ok {
			run.ScheduledTime = timestamppb.New(t)
		}
		st.runs[req.GetRun()] = run
	}
	switch req.GetKind() {
	case fetchedK:
		st.fetched[req.GetRun()] = proto.Clone(req).(*intakev1.ReportRunEventRequest)
		if !req.GetNotModified() {
			run.Sha256, run.Source = req.GetSha256(), req.GetSource()
			run.SourceSize, run.SourceModifyTime = req.GetSourceSize(), req.GetSourceModifyTime()
		}
	case finished:
		f := st.fetched[req.GetRun()]
		st.last[job] = &intakev1.ResolveConnectionResponse{Etag: f.GetEtag(), LastModified: f.GetLastModified(), LastSource: f.GetSource()}
	}
	resp.Run = proto.Clone(run).(*intakev1.Run)
}

func (st *connStore) resolve(req *intakev1.ResolveConnectionRequest) (*intakev1.ResolveConnectionResponse, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.resolved[req.GetRun()]++
	job := jobOf(req.GetRun())
	conn := st.conns[job]
	if conn == nil {
		desc := "the connection of the run's job no longer exists"
		s, _ := status.New(codes.FailedPrecondition, req.GetRun()+": "+desc).WithDetails(&errdetails.PreconditionFailure{
			Violations: []*errdetails.PreconditionFailure_Violation{{Type: "CONNECTION_GONE", Subject: req.GetRun(), Description: desc}}})
		return nil, s.Err()
	}
	resp := &intakev1.ResolveConnectionResponse{Connection: proto.Clone(conn).(*intakev1.Connection)}
	if v := st.last[job]; v != nil {
		resp.Etag, resp.LastModified, resp.LastSource = v.GetEtag(), v.GetLastModified(), v.GetLastSource()
	}
	return resp, nil
}

func (st *connStore) setConn(job string, conn *intakev1.Connection) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.conns[job] = conn
}

func (st *connStore) resolveCalls(run string) int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.resolved[run]
}

// ResolveConnection implements the StageService method with f.resolve.
func (f *fakeAPI) ResolveConnection(_ context.Context, req *intakev1.ResolveConnectionRequest) (*intakev1.ResolveConnectionResponse, error) {
	f.mu.Lock()
	resolve := f.resolve
	f.mu.Unlock()
	if resolve == nil {
		return nil, status.Error(codes.Unimplemented, "ResolveConnection")
	}
	return resolve(req)
}

// storedJob is an accounts job named name that reads the file sel of the
// stored connection conn.
func storedJob(name, conn string, sel *intakev1.FileSelector) *intakev1.Job {
	job := newJob(nil, nil)
	job.Name, job.ConnectionName, job.File = name, conn, sel
	return job
}

func filePath(p string) *intakev1.FileSelector {
	return &intakev1.FileSelector{Selector: &intakev1.FileSelector_Path{Path: p}}
}

func filePattern(p string) *intakev1.FileSelector {
	return &intakev1.FileSelector{Selector: &intakev1.FileSelector_Pattern{Pattern: p}}
}

// archived returns the run archive's copy of run's file.
func (e *env) archived(t *testing.T, run string) ([]byte, error) {
	t.Helper()
	arch, err := archive.NewJetStream(t.Context(), e.js, pipeline.ArchiveBucket, 1)
	require.NoError(t, err)
	rc, err := arch.Open(t.Context(), run[strings.LastIndex(run, "/")+1:])
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	return b, nil
}

// requireArchived checks the archive holds exactly want for run.
func (e *env) requireArchived(t *testing.T, run string, want []byte) {
	t.Helper()
	got, err := e.archived(t, run)
	require.NoError(t, err)
	require.True(t, string(want) == string(got), "the archived file (%d bytes) is not byte for byte the source file (%d bytes)", len(got), len(want))
}

// chunkRecords returns the records of every chunk of run, in order.
func (e *env) chunkRecords(t *testing.T, run string) [][]string {
	t.Helper()
	var out [][]string
	for _, c := range e.chunks(t, run) {
		out = append(out, readChunk(t, c)...)
	}
	return out
}

// A job reading a gzip'd file from a stored S3 connection: the run records
// the connection and key, the size and time S3 reports, and archives the
// object's bytes as they are; the chunks carry its decoded rows. The
// connection's secret never reaches the logs.
func TestStoredS3Connection(t *testing.T) {
	t.Parallel()
	e := start(t, fetcher.Config{}, nil)
	st := withConnStore(e)
	s3 := s3test.New(t)
	s3.CreateBucket("exports")
	text := accountsCSV()
	body := gzipped(t, []byte(text))
	mod := time.Date(2026, 11, 25, 6, 0, 0, 0, time.UTC)
	s3.PutObject("exports", "daily/accounts.csv.gz", body, mod)

	job := storedJob("jobs/s3-accounts", "connections/acme-s3", filePath("daily/accounts.csv.gz"))
	st.setConn(job.Name, &intakev1.Connection{Name: "connections/acme-s3", Kind: &intakev1.Connection_S3{S3: s3.S3Connection("exports")}})
	run := e.submit(t, job)
	reports := e.waitDone(t, run, finished)

	require.Equal(t, []intakev1.RunEventKind{started, fetchedK, finished}, e.api.kinds(run))
	f := reports[1]
	require.Equal(t, "connections/acme-s3: daily/accounts.csv.gz", f.GetSource())
	require.Equal(t, sha(string(body)), f.GetSha256(), "the hash is of the object's bytes")
	require.Equal(t, int64(len(body)), f.GetSourceSize())
	require.True(t, mod.Equal(f.GetSourceModifyTime().AsTime()), "source_modify_time %v, want %v", f.GetSourceModifyTime().AsTime(), mod)
	require.False(t, f.GetNotModified())
	require.Equal(t, 1, st.resolveCalls(run))

	e.requireArchived(t, run, body)
	require.Equal(t, records(t, []byte(text), ',')[1:], e.chunkRecords(t, run))
	require.Len(t, e.seals(t, run), 1)

	logs := e.logs.String()
	require.NotContains(t, logs, s3.SecretAccessKey, "the resolved connection is never logged")
	require.Contains(t, logs, "source=\"connections/acme-s3: daily/accounts.csv.gz\"")
}

// SFTP: a path with a date placeholder resolves at the run's scheduled time
// in the job's time zone; a pattern takes the newest matching file; a wrong
// password fails the run once, without retrying; a pattern that matches
// nothing fails the run saying so.
func TestStoredSFTPConnection(t *testing.T) {
	t.Parallel()
	e := start(t, fetcher.Config{}, nil)
	st := withConnStore(e)
	srv := sftptest.New(t)
	conn := &intakev1.Connection{Name: "connections/acme-sftp", Kind: &intakev1.Connection_Sftp{Sftp: srv.Connection()}}

	t.Run("dated path", func(t *testing.T) {
		day25 := "id,name\r\n1,from the 25th\r\n"
		day26 := "id,name\r\n1,from the 26th\r\n"
		srv.PutFile("exports/accounts_2026-11-25.csv", []byte(day25), time.Time{})
		srv.PutFile("exports/accounts_2026-11-26.csv", []byte(day26), time.Time{})
		job := storedJob("jobs/sftp-dated", conn.GetName(), filePath("exports/accounts_{yyyy-MM-dd}.csv"))
		job.Schedule = &intakev1.Schedule{TimeZone: "America/New_York"}
		st.setConn(job.Name, conn)
		// 03:00 UTC on the 26th is still the 25th in New York.
		st.mu.Lock()
		st.scheduled[job.Name] = time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
		st.mu.Unlock()
		run := e.submit(t, job)
		reports := e.waitDone(t, run, finished)
		require.Equal(t, "connections/acme-sftp: exports/accounts_2026-11-25.csv", reports[1].GetSource())
		require.Equal(t, sha(day25), reports[1].GetSha256())
		e.requireArchived(t, run, []byte(day25))
		require.Equal(t, [][]string{{"1", "from the 25th"}}, e.chunkRecords(t, run))
	})

	now := time.Now().Truncate(time.Second)
	srv.PutFile("drops/accounts_a.csv", []byte("id,name\n1,a\n"), now.Add(-3*time.Hour))
	newest := "id,name\n1,b\n2,\"b, too\"\n"
	srv.PutFile("drops/accounts_b.csv", []byte(newest), now.Add(-time.Hour))
	srv.PutFile("drops/accounts_c.csv", []byte("id,name\n1,c\n"), now.Add(-2*time.Hour))
	srv.PutFile("drops/notes.csv", []byte("id,name\n1,notes\n"), now)

	t.Run("newest matching file", func(t *testing.T) {
		job := storedJob("jobs/sftp-pattern", conn.GetName(), filePattern("drops/accounts_*.csv"))
		st.setConn(job.Name, conn)
		run := e.submit(t, job)
		reports := e.waitDone(t, run, finished)
		require.Equal(t, "connections/acme-sftp: drops/accounts_b.csv", reports[1].GetSource())
		require.Equal(t, int64(len(newest)), reports[1].GetSourceSize())
		require.True(t, now.Add(-time.Hour).Equal(reports[1].GetSourceModifyTime().AsTime()))
		e.requireArchived(t, run, []byte(newest))
	})

	t.Run("no file matches", func(t *testing.T) {
		job := storedJob("jobs/sftp-nomatch", conn.GetName(), filePattern("drops/orders_*.csv"))
		st.setConn(job.Name, conn)
		run := e.submit(t, job)
		reports := e.waitDone(t, run, failed)
		require.Equal(t, []intakev1.RunEventKind{started, failed}, e.api.kinds(run))
		require.Equal(t, "connections/acme-sftp: no file in drops/ matches orders_*.csv (4 files there)", reports[1].GetMessage())
		_, err := e.archived(t, run)
		require.ErrorIs(t, err, archive.ErrNotFound, "a failed fetch archives nothing")
	})

	t.Run("wrong password", func(t *testing.T) {
		failedLogins := func() int { return strings.Count(srv.Log(), "Failed password for "+srv.User) }
		before := failedLogins()
		bad := proto.Clone(conn).(*intakev1.Connection)
		bad.Name = "connections/acme-sftp-old"
		bad.GetSftp().Password = "not-the-password-" + srv.Password
		job := storedJob("jobs/sftp-badpass", bad.GetName(), filePath("exports/accounts_2026-11-25.csv"))
		st.setConn(job.Name, bad)
		run := e.submit(t, job)
		reports := e.waitDone(t, run, failed)
		require.Equal(t, []intakev1.RunEventKind{started, failed}, e.api.kinds(run))
		msg := reports[1].GetMessage()
		require.Equal(t, fmt.Sprintf("connections/acme-sftp-old: sftp %s: authentication failed for user %q (tried password)", srv.Addr(), srv.User), msg)
		require.NotContains(t, msg, bad.GetSftp().GetPassword())
		require.NotContains(t, e.logs.String(), bad.GetSftp().GetPassword())
		// One login attempt: a wrong password is not retried, and the
		// failed run is not redelivered.
		require.Eventually(t, func() bool { return failedLogins() > before }, 5*time.Second, 20*time.Millisecond, "sshd log:\n%s", srv.Log())
		time.Sleep(300 * time.Millisecond)
		require.Equal(t, before+1, failedLogins(), "sshd log:\n%s", srv.Log())
		require.Equal(t, 1, st.resolveCalls(run))
	})
}

// tlsFiles is an HTTPS server with a self-signed certificate that serves
// files with an ETag and Last-Modified, answers conditional requests, wants
// a bearer token, and counts requests and full downloads per path.
type tlsFiles struct {
	*httptest.Server
	caPEM string
	mu    sync.Mutex
	body  map[string]string
	gets  map[string]int
	full  map[string]int
}

const bearerToken = "s3cr3t-bearer-token"

func serveTLSFiles(t *testing.T, body map[string]string) *tlsFiles {
	t.Helper()
	f := &tlsFiles{body: body, gets: map[string]int{}, full: map[string]int{}}
	mod := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	f.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+bearerToken {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		f.mu.Lock()
		b, ok := f.body[r.URL.Path]
		f.gets[r.URL.Path]++
		f.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		// The ETag is of the content, so two paths with the same content
		// share it.
		etag := `"` + sha(b)[:16] + `"`
		w.Header().Set("ETag", etag)
		w.Header().Set("Last-Modified", mod.Format(http.TimeFormat))
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		f.mu.Lock()
		f.full[r.URL.Path]++
		f.mu.Unlock()
		_, _ = io.WriteString(w, b)
	}))
	t.Cleanup(f.Close)
	f.caPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.Certificate().Raw}))
	return f
}

func (f *tlsFiles) counts(path string) (gets, full int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gets[path], f.full[path]
}

// HTTPS with a private CA: the first run downloads the file and reports its
// validators; the next run sends them, the server answers 304, and the run
// is reported not modified (the API skips it) without a download. Validators
// of another file are not trusted: a 304 for them is read again in full.
func TestStoredHTTPSConnection(t *testing.T) {
	t.Parallel()
	e := start(t, fetcher.Config{}, func(r *intakev1.ReportRunEventRequest) (intakev1.Directive, error) {
		if r.GetNotModified() {
			return intakev1.Directive_DIRECTIVE_SKIP, nil
		}
		return intakev1.Directive_DIRECTIVE_CONTINUE, nil
	})
	st := withConnStore(e)
	body := accountsCSV()
	srv := serveTLSFiles(t, map[string]string{"/exports/accounts.csv": body, "/exports/copy.csv": body})
	conn := &intakev1.Connection{Name: "connections/acme-https", Kind: &intakev1.Connection_Http{Http: &intakev1.HttpConnection{
		Url:   srv.URL + "/exports/",
		Auth:  &intakev1.HttpConnection_Bearer{Bearer: &intakev1.BearerAuth{Token: bearerToken}},
		CaPem: srv.caPEM,
	}}}
	job := storedJob("jobs/https-accounts", conn.GetName(), filePath("accounts.csv"))
	st.setConn(job.Name, conn)

	first := e.submit(t, job)
	reports := e.waitDone(t, first, finished)
	f := reports[1]
	require.Equal(t, "connections/acme-https: accounts.csv", f.GetSource())
	require.Equal(t, `"`+sha(body)[:16]+`"`, f.GetEtag())
	require.Equal(t, "Fri, 20 Nov 2026 08:00:00 GMT", f.GetLastModified())
	require.Equal(t, sha(body), f.GetSha256())
	e.requireArchived(t, first, []byte(body))
	gets, full := srv.counts("/exports/accounts.csv")
	require.Equal(t, 1, gets)
	require.Equal(t, 1, full)

	second := e.submit(t, job)
	reports = e.waitDone(t, second, fetchedK)
	require.Equal(t, []intakev1.RunEventKind{started, fetchedK}, e.api.kinds(second))
	nm := reports[1]
	require.True(t, nm.GetNotModified())
	require.Empty(t, nm.GetSha256(), "no file, no hash")
	require.Equal(t, "connections/acme-https: accounts.csv", nm.GetSource())
	require.Equal(t, f.GetEtag(), nm.GetEtag())
	gets, full = srv.counts("/exports/accounts.csv")
	require.Equal(t, 2, gets, "the second run asks the server")
	require.Equal(t, 1, full, "and downloads nothing")
	require.Empty(t, e.chunks(t, second))
	_, err := e.archived(t, second)
	require.ErrorIs(t, err, archive.ErrNotFound, "a not-modified run archives nothing")
	require.Equal(t, 1.0, e.metric(t, "intake_fetcher_runs_total", "outcome", "skipped"))

	// The job now reads copy.csv, whose content (and so ETag) is the same:
	// the server answers 304 to the last run's validators, but they are of
	// another file, so the run reads it in full.
	job.File = filePath("copy.csv")
	third := e.submit(t, job)
	reports = e.waitDone(t, third, finished)
	require.False(t, reports[1].GetNotModified())
	require.Equal(t, "connections/acme-https: copy.csv", reports[1].GetSource())
	require.Equal(t, sha(body), reports[1].GetSha256())
	gets, full = srv.counts("/exports/copy.csv")
	require.Equal(t, 2, gets)
	require.Equal(t, 1, full)
	e.requireArchived(t, third, []byte(body))

	require.NotContains(t, e.logs.String(), bearerToken)
}

// Failures of a stored connection fail the run with the connection's
// message, and archive nothing.
func TestStoredConnectionFailures(t *testing.T) {
	t.Parallel()
	e := start(t, fetcher.Config{}, nil)
	st := withConnStore(e)
	s3 := s3test.New(t)
	s3.CreateBucket("exports")
	conn := &intakev1.Connection{Name: "connections/acme-s3", Kind: &intakev1.Connection_S3{S3: s3.S3Connection("exports")}}

	for _, tc := range []struct {
		name string
		job  *intakev1.Job
		conn *intakev1.Connection
		msg  string
	}{{
		name: "missing key",
		job:  storedJob("jobs/s3-missing", conn.GetName(), filePath("daily/missing.csv")),
		conn: conn,
		msg:  "connections/acme-s3: s3://exports/daily/missing.csv does not exist at " + s3.URL,
	}, {
		name: "connection deleted",
		job:  storedJob("jobs/s3-gone", "connections/gone", filePath("daily/accounts.csv")),
		msg:  "the connection of the run's job no longer exists",
	}, {
		name: "bad time zone",
		job: func() *intakev1.Job {
			j := storedJob("jobs/s3-zone", conn.GetName(), filePath("daily/accounts.csv"))
			j.Schedule = &intakev1.Schedule{TimeZone: "Mars/Olympus_Mons"}
			return j
		}(),
		conn: conn,
		msg:  `the job's time zone "Mars/Olympus_Mons": unknown time zone Mars/Olympus_Mons`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.conn != nil {
				st.setConn(tc.job.GetName(), tc.conn)
			}
			run := e.submit(t, tc.job)
			reports := e.waitDone(t, run, failed)
			require.Equal(t, []intakev1.RunEventKind{started, failed}, e.api.kinds(run))
			require.Equal(t, tc.msg, reports[1].GetMessage())
			_, err := e.archived(t, run)
			require.ErrorIs(t, err, archive.ErrNotFound)
		})
	}
	require.NotContains(t, e.logs.String(), s3.SecretAccessKey)
}

// A run request redelivered after the fetcher stopped between archiving the
// file and the API recording it fetched (here: the FETCHED report refused
// once) downloads the file again and records where it came from; one
// redelivered after the API recorded it (the FINISHED report refused once)
// chunks the archived copy and reports the source the API recorded.
func TestStoredConnectionRedelivery(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	refuse := map[string]intakev1.RunEventKind{} // job name: the report kind to refuse once
	e := start(t, fetcher.Config{}, func(r *intakev1.ReportRunEventRequest) (intakev1.Directive, error) {
		mu.Lock()
		defer mu.Unlock()
		if k, ok := refuse[jobOf(r.GetRun())]; ok && k == r.GetKind() {
			delete(refuse, jobOf(r.GetRun()))
			return 0, status.Error(codes.Internal, "database is restarting")
		}
		return intakev1.Directive_DIRECTIVE_CONTINUE, nil
	})
	st := withConnStore(e)
	s3 := s3test.New(t)
	s3.CreateBucket("exports")
	body := accountsCSV()
	s3.PutObject("exports", "accounts.csv", []byte(body), time.Time{})
	conn := &intakev1.Connection{Name: "connections/acme-s3", Kind: &intakev1.Connection_S3{S3: s3.S3Connection("exports")}}
	const src = "connections/acme-s3: accounts.csv"

	// How many S3 requests one fetch makes.
	plain := storedJob("jobs/plain", conn.GetName(), filePath("accounts.csv"))
	st.setConn(plain.Name, conn)
	n0 := s3.Requests()
	e.waitDone(t, e.submit(t, plain), finished)
	perFetch := s3.Requests() - n0
	require.Positive(t, perFetch)

	t.Run("fetched not recorded", func(t *testing.T) {
		job := storedJob("jobs/refetch", conn.GetName(), filePath("accounts.csv"))
		st.setConn(job.Name, conn)
		mu.Lock()
		refuse[job.Name] = fetchedK
		mu.Unlock()
		n0 := s3.Requests()
		run := e.submit(t, job)
		require.Eventually(t, func() bool { return len(e.api.runReports(run)) == 5 }, 20*time.Second, 20*time.Millisecond)
		reports := e.waitDone(t, run, finished)
		require.Equal(t, []intakev1.RunEventKind{started, fetchedK, started, fetchedK, finished}, e.api.kinds(run))
		require.Equal(t, 2*perFetch, s3.Requests()-n0, "the file is fetched again")
		require.Equal(t, src, reports[3].GetSource())
		require.Equal(t, sha(body), reports[3].GetSha256())
		require.Equal(t, int64(len(body)), reports[3].GetSourceSize())
		e.requireArchived(t, run, []byte(body))
		require.Len(t, e.chunks(t, run), 4)
	})

	t.Run("fetched recorded", func(t *testing.T) {
		job := storedJob("jobs/reuse", conn.GetName(), filePath("accounts.csv"))
		st.setConn(job.Name, conn)
		mu.Lock()
		refuse[job.Name] = finished
		mu.Unlock()
		n0 := s3.Requests()
		run := e.submit(t, job)
		require.Eventually(t, func() bool { return len(e.api.runReports(run)) == 6 }, 20*time.Second, 20*time.Millisecond)
		reports := e.waitDone(t, run, finished)
		require.Equal(t, []intakev1.RunEventKind{started, fetchedK, finished, started, fetchedK, finished}, e.api.kinds(run))
		require.Equal(t, perFetch, s3.Requests()-n0, "the archived copy is used")
		require.Equal(t, src, reports[4].GetSource())
		require.Equal(t, sha(body), reports[4].GetSha256())
		require.Equal(t, int64(len(body)), reports[4].GetSourceSize())
		require.Len(t, e.chunks(t, run), 4, "republished chunks are deduplicated")
	})
}

// A download that breaks off half-way (a transient failure) is fetched
// again; one that keeps breaking fails the run after three attempts.
func TestBrokenDownloadIsFetchedAgain(t *testing.T) {
	t.Parallel()
	e := start(t, fetcher.Config{}, nil)
	body := accountsCSV()
	var mu sync.Mutex
	gets := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		gets[r.URL.Path]++
		n := gets[r.URL.Path]
		mu.Unlock()
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		if r.URL.Path == "/always-broken.csv" || n == 1 {
			// Half the file, then the connection drops.
			_, _ = io.WriteString(w, body[:len(body)/2])
			w.(http.Flusher).Flush()
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				_ = conn.Close()
			}
			return
		}
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	hits := func(path string) int {
		mu.Lock()
		defer mu.Unlock()
		return gets[path]
	}

	run := e.submit(t, newJob(httpConn(srv.URL+"/once-broken.csv"), nil))
	reports := e.waitDone(t, run, finished)
	require.Equal(t, []intakev1.RunEventKind{started, fetchedK, finished}, e.api.kinds(run))
	require.Equal(t, 2, hits("/once-broken.csv"))
	require.Equal(t, sha(body), reports[1].GetSha256())
	e.requireArchived(t, run, []byte(body))
	require.Len(t, e.chunks(t, run), 4)
	require.Contains(t, e.logs.String(), "the download broke off; fetching the file again")

	run = e.submit(t, newJob(httpConn(srv.URL+"/always-broken.csv"), nil))
	reports = e.waitDone(t, run, failed)
	require.Equal(t, []intakev1.RunEventKind{started, failed}, e.api.kinds(run))
	require.Equal(t, 3, hits("/always-broken.csv"))
	require.Contains(t, reports[1].GetMessage(), srv.URL+"/always-broken.csv")
	_, err := e.archived(t, run)
	require.ErrorIs(t, err, archive.ErrNotFound, "nothing of a broken download stays in the archive")
}

// A stored local directory connection is read in development mode only.
func TestStoredLocalConnection(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	body := "id,name\n1,local\n"
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "in"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "in", "accounts_1.csv"), []byte(body), 0o600))
	conn := &intakev1.Connection{Name: "connections/dev-dir", Kind: &intakev1.Connection_Local{Local: &intakev1.LocalConnection{Path: dir}}}
	for _, devMode := range []bool{true, false} {
		t.Run(fmt.Sprint("dev mode ", devMode), func(t *testing.T) {
			t.Parallel()
			e := start(t, fetcher.Config{DevMode: devMode}, nil)
			st := withConnStore(e)
			job := storedJob("jobs/local", conn.GetName(), filePattern("in/accounts_*.csv"))
			st.setConn(job.Name, conn)
			run := e.submit(t, job)
			if !devMode {
				reports := e.waitDone(t, run, failed)
				require.Equal(t, "connections/dev-dir: local files are only available in development mode (scheduled imports need a data file connection)",
					reports[1].GetMessage())
				return
			}
			reports := e.waitDone(t, run, finished)
			require.Equal(t, "connections/dev-dir: in/accounts_1.csv", reports[1].GetSource())
			e.requireArchived(t, run, []byte(body))
		})
	}
}

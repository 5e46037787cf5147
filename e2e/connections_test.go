package e2e

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/intakehq/intake/pkg/s3test"
	"github.com/intakehq/intake/pkg/sftptest"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// httpsFiles is an HTTPS server with its own self-signed certificate (the
// test gives it to the connection as ca_pem) that wants a bearer token,
// serves files with an ETag and Last-Modified, answers If-None-Match with
// 304, and counts full downloads and 304s per path.
type httpsFiles struct {
	srv   *httptest.Server
	caPEM string
	token string

	mu          sync.Mutex
	files       map[string]string
	full        map[string]int
	notModified map[string]int
}

func newHTTPSFiles(t *testing.T, token string) *httpsFiles {
	t.Helper()
	f := &httpsFiles{token: token, files: map[string]string{}, full: map[string]int{}, notModified: map[string]int{}}
	mod := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	f.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+f.token {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		b, ok := f.files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		sum := sha256.Sum256([]byte(b))
		etag := `"` + hex.EncodeToString(sum[:8]) + `"`
		w.Header().Set("ETag", etag)
		w.Header().Set("Last-Modified", mod.Format(http.TimeFormat))
		w.Header().Set("Content-Type", "text/csv")
		if r.Header.Get("If-None-Match") == etag {
			f.notModified[r.URL.Path]++
			w.WriteHeader(http.StatusNotModified)
			return
		}
		if r.Method == http.MethodGet {
			f.full[r.URL.Path]++
		}
		_, _ = io.WriteString(w, b)
	}))
	t.Cleanup(f.srv.Close)
	f.caPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw}))
	return f
}

func (f *httpsFiles) put(path, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.files[path] = body
}

func (f *httpsFiles) counts(path string) (full, notModified int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.full[path], f.notModified[path]
}

// storedAccountsJob is an enabled accounts job (the columns of
// prefixedAccounts) that reads sel from the stored connection conn, with
// its schedule in zone.
func storedAccountsJob(conn string, sel *intakev1.FileSelector, zone string) *intakev1.Job {
	job := prefixedAccountsJob("")
	job.DisplayName = "Accounts from " + conn
	job.Connection, job.ConnectionName, job.File = nil, conn, sel
	job.Schedule.TimeZone = zone
	return job
}

func selPath(p string) *intakev1.FileSelector {
	return &intakev1.FileSelector{Selector: &intakev1.FileSelector_Path{Path: p}}
}

func selPattern(p string) *intakev1.FileSelector {
	return &intakev1.FileSelector{Selector: &intakev1.FileSelector_Pattern{Pattern: p}}
}

// requireImported checks a run of a stored connection imported the n rows
// of body with the given prefix, recorded the file it took, and kept body
// byte for byte for download.
func (s *system) requireImported(ctx context.Context, t *testing.T, run *intakev1.Run, prefix string, n int, body, source string) {
	t.Helper()
	require.Equal(t, intakev1.RunState_RUN_STATE_SUCCEEDED, run.GetState(), run.GetMessage())
	require.EqualValues(t, n, run.GetCounters().GetRowsCreated())
	require.EqualValues(t, n, s.accountsLike(ctx, t, prefix))
	require.Equal(t, source, run.GetSource())
	require.EqualValues(t, len(body), run.GetSourceSize())
	data, _ := s.downloadSource(ctx, t, run.GetName())
	require.True(t, string(data) == body, "the downloaded source (%d bytes) is not byte for byte the file (%d bytes)", len(data), len(body))
}

// TestConnections: S3, SFTP and HTTPS connections through the API as a
// client uses them — create (secrets encrypted with the API's key ring and
// never returned), test, browse, and import a file of each into accounts
// with the stored file downloadable byte for byte; an unchanged HTTPS file
// is not downloaded again and the run ends skipped.
func TestConnections(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var key [32]byte
	_, _ = rand.Read(key[:])
	t.Setenv("INTAKE_ENCRYPTION_KEYS", "e2e:"+base64.StdEncoding.EncodeToString(key[:]))
	s := startSystem(t)
	gc, err := grpc.NewClient(s.apiAddr, grpc.WithTransportCredentials(insecure.NewCredentials()), adminCredentials())
	require.NoError(t, err)
	t.Cleanup(func() { gc.Close() })
	conns := intakev1.NewConnectionServiceClient(gc)

	// The servers, in the test process.
	s3 := s3test.New(t)
	s3.CreateBucket("crm-exports")
	sftp := sftptest.New(t)
	const token = "e2e-bearer-token-0123456789"
	web := newHTTPSFiles(t, token)
	secrets := []string{s3.SecretAccessKey, sftp.Password, token}

	create := func(id string, c *intakev1.Connection) *intakev1.Connection {
		t.Helper()
		got, err := conns.CreateConnection(ctx, &intakev1.CreateConnectionRequest{ConnectionId: id, Connection: c})
		require.NoError(t, err, "create connection %s", id)
		require.Equal(t, "connections/"+id, got.GetName())
		return got
	}
	s3Conn := create("acme-s3", &intakev1.Connection{DisplayName: "CRM exports bucket",
		Kind: &intakev1.Connection_S3{S3: s3.S3Connection("crm-exports")}})
	require.Empty(t, s3Conn.GetS3().GetSecretAccessKey(), "secrets are write-only")
	require.True(t, s3Conn.GetS3().GetSecretAccessKeySet())
	sftpConn := create("acme-sftp", &intakev1.Connection{DisplayName: "Partner SFTP",
		Kind: &intakev1.Connection_Sftp{Sftp: sftp.Connection()}})
	require.Empty(t, sftpConn.GetSftp().GetPassword())
	require.True(t, sftpConn.GetSftp().GetPasswordSet())
	httpsConn := create("acme-https", &intakev1.Connection{DisplayName: "Exports portal",
		Kind: &intakev1.Connection_Http{Http: &intakev1.HttpConnection{
			Url:   web.srv.URL + "/exports/",
			Auth:  &intakev1.HttpConnection_Bearer{Bearer: &intakev1.BearerAuth{Token: token}},
			CaPem: web.caPEM,
		}}})
	require.Empty(t, httpsConn.GetHttp().GetBearer().GetToken())
	require.True(t, httpsConn.GetHttp().GetBearer().GetTokenSet())

	// The files. S3: a dated key, in the job's zone (Auckland is a day
	// ahead of UTC for half of it). SFTP: several exports, the newest
	// matching one taken. HTTPS: one file.
	zone, err := time.LoadLocation("Pacific/Auckland")
	require.NoError(t, err)
	s3Body := prefixedAccounts("CS3", 40, nil)
	dated := func(t time.Time) string { return "exports/accounts_" + t.In(zone).Format("2006-01-02") + ".csv" }
	now := time.Now()
	s3.PutObject("crm-exports", dated(now), []byte(s3Body), time.Time{})
	s3.PutObject("crm-exports", dated(now.Add(5*time.Minute)), []byte(s3Body), time.Time{}) // past midnight meanwhile
	s3.PutObject("crm-exports", "exports/readme.txt", []byte("daily exports\n"), time.Time{})

	sftpBody := prefixedAccounts("CSF", 30, nil)
	sftpMod := now.Add(-time.Hour).Truncate(time.Second)
	sftp.PutFile("outbox/accounts_1.csv", []byte(prefixedAccounts("OLD", 5, nil)), sftpMod.Add(-24*time.Hour))
	sftp.PutFile("outbox/accounts_2.csv", []byte(sftpBody), sftpMod)
	sftp.PutFile("outbox/contacts.csv", []byte("id\n1\n"), now)

	httpsBody := prefixedAccounts("CHT", 25, nil)
	web.put("/exports/accounts.csv", httpsBody)

	// TestConnection: each connection is reachable and authenticates, and
	// a file can be looked up; a bad one says what is wrong.
	for _, name := range []string{s3Conn.GetName(), sftpConn.GetName(), httpsConn.GetName()} {
		res, err := conns.TestConnection(ctx, &intakev1.TestConnectionRequest{Name: name})
		require.NoError(t, err)
		require.True(t, res.GetOk(), "%s: %s: %s", name, res.GetErrorKind(), res.GetMessage())
	}
	res, err := conns.TestConnection(ctx, &intakev1.TestConnectionRequest{Name: sftpConn.GetName(), File: selPattern("outbox/accounts_*.csv")})
	require.NoError(t, err)
	require.True(t, res.GetOk(), res.GetMessage())
	require.Equal(t, "outbox/accounts_2.csv", strings.TrimPrefix(res.GetFile().GetPath(), "/"))
	badSFTP := sftp.Connection()
	badSFTP.Password = "not-" + sftp.Password
	res, err = conns.TestConnection(ctx, &intakev1.TestConnectionRequest{Connection: &intakev1.Connection{Kind: &intakev1.Connection_Sftp{Sftp: badSFTP}}})
	require.NoError(t, err)
	require.False(t, res.GetOk())
	require.Equal(t, intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_AUTHENTICATION_FAILED, res.GetErrorKind(), res.GetMessage())
	require.Contains(t, res.GetMessage(), sftp.User)
	require.NotContains(t, res.GetMessage(), badSFTP.Password)
	res, err = conns.TestConnection(ctx, &intakev1.TestConnectionRequest{Name: s3Conn.GetName(), File: selPath("exports/missing.csv")})
	require.NoError(t, err)
	require.False(t, res.GetOk())
	require.Equal(t, intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_FILE_NOT_FOUND, res.GetErrorKind(), res.GetMessage())
	require.Contains(t, res.GetMessage(), "exports/missing.csv")

	// ListFiles browses the bucket's prefix and the server's directory.
	paths := func(name, prefix string) map[string]*intakev1.FileInfo {
		t.Helper()
		l, err := conns.ListFiles(ctx, &intakev1.ListFilesRequest{Name: name, Prefix: prefix})
		require.NoError(t, err)
		out := map[string]*intakev1.FileInfo{}
		for _, f := range l.GetFiles() {
			out[strings.TrimPrefix(f.GetPath(), "/")] = f
		}
		return out
	}
	listed := paths(s3Conn.GetName(), "exports/")
	require.Contains(t, listed, dated(now))
	require.Contains(t, listed, "exports/readme.txt")
	require.EqualValues(t, len(s3Body), listed[dated(now)].GetSize())
	listed = paths(sftpConn.GetName(), "outbox")
	require.Len(t, listed, 3)
	require.EqualValues(t, len(sftpBody), listed["outbox/accounts_2.csv"].GetSize())
	require.True(t, sftpMod.Equal(listed["outbox/accounts_2.csv"].GetModifyTime().AsTime()))

	// S3: a dated path resolved in the job's zone at the run's time.
	job := s.createJob(ctx, t, storedAccountsJob(s3Conn.GetName(), selPath("exports/accounts_{yyyy-MM-dd}.csv"), zone.String()))
	run := s.runAndWait(ctx, t, job.GetName())
	s.requireImported(ctx, t, run, "CS3", 40, s3Body, "connections/acme-s3: "+dated(run.GetCreateTime().AsTime()))

	// SFTP: the newest file matching the pattern.
	job = s.createJob(ctx, t, storedAccountsJob(sftpConn.GetName(), selPattern("outbox/accounts_*.csv"), "Europe/Berlin"))
	run = s.runAndWait(ctx, t, job.GetName())
	s.requireImported(ctx, t, run, "CSF", 30, sftpBody, "connections/acme-sftp: outbox/accounts_2.csv")
	require.True(t, sftpMod.Equal(run.GetSourceModifyTime().AsTime()), "source_modify_time %v, want %v", run.GetSourceModifyTime().AsTime(), sftpMod)
	require.Zero(t, s.accountsLike(ctx, t, "OLD"), "only the newest file is imported")

	// HTTPS: the file under the connection's base URL; the next run sends
	// the validators, the server answers 304 and nothing is downloaded.
	job = s.createJob(ctx, t, storedAccountsJob(httpsConn.GetName(), selPath("accounts.csv"), ""))
	first := s.runAndWait(ctx, t, job.GetName())
	s.requireImported(ctx, t, first, "CHT", 25, httpsBody, "connections/acme-https: accounts.csv")
	full, _ := web.counts("/exports/accounts.csv")
	second := s.runAndWait(ctx, t, job.GetName())
	require.Equal(t, intakev1.RunState_RUN_STATE_SKIPPED, second.GetState(), second.GetMessage())
	require.Equal(t, "file unchanged since run "+first.GetName()+" (the server answered 304 Not Modified)", second.GetMessage())
	require.Equal(t, "connections/acme-https: accounts.csv", second.GetSource())
	full2, notModified := web.counts("/exports/accounts.csv")
	require.Equal(t, full, full2, "the unchanged file is not downloaded again")
	require.Equal(t, 1, notModified)
	data, _ := s.downloadSource(ctx, t, second.GetName())
	require.True(t, string(data) == httpsBody, "the skipped run's source is the file of the run it is unchanged since")
	require.EqualValues(t, 25, s.accountsLike(ctx, t, "CHT"))

	// No secret in any process's output.
	for name, p := range s.procs {
		out := p.out.String()
		for _, secret := range secrets {
			require.NotContains(t, out, secret, "the output of %s holds a secret", name)
		}
	}
}

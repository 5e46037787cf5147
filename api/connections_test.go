package api_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/intakehq/intake/api"
	"github.com/intakehq/intake/pkg/s3test"
	"github.com/intakehq/intake/pkg/secretbox"
	"github.com/intakehq/intake/pkg/sftptest"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// testKey is a key ring entry "id:base64" made for a test.
func testKey(t *testing.T, id string) string {
	t.Helper()
	k, err := secretbox.NewKeyWithID(id)
	require.NoError(t, err)
	return k
}

// setupConnections starts an API with the key ring keys ("" for none),
// on a bundle's database and NATS when shared is given.
func setupConnections(t *testing.T, keys string, devMode bool, shared ...*testBundle) (*testBundle, intakev1.ConnectionServiceClient) {
	t.Helper()
	b := setupWebhooks(t, func(c *api.Config) {
		c.EncryptionKeys, c.DevMode = keys, devMode
		c.SampleTimeout = 10 * time.Second
	}, shared...)
	return b, intakev1.NewConnectionServiceClient(b.conn)
}

// bearerServer serves CSV files over HTTP to requests with the bearer
// token, with an ETag and Last-Modified, answering a matching conditional
// GET with 304.
type bearerServer struct {
	srv   *httptest.Server
	token string
	mu    sync.Mutex
	files map[string]string
}

func newBearerServer(t *testing.T, token string) *bearerServer {
	b := &bearerServer{token: token, files: map[string]string{"/exports/accounts.csv": accountsCSV}}
	mod := time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		token := b.token
		b.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.Header().Set("WWW-Authenticate", `Bearer realm="exports"`)
			http.Error(w, "token required", http.StatusUnauthorized)
			return
		}
		b.mu.Lock()
		body, ok := b.files[r.URL.Path]
		b.mu.Unlock()
		switch {
		case r.URL.Path == "/exports/" || r.URL.Path == "/exports":
			_, _ = fmt.Fprintln(w, "exports")
			return
		case !ok:
			http.NotFound(w, r)
			return
		}
		etag := fmt.Sprintf(`"%x"`, len(body)*7919+int(body[len(body)-2]))
		w.Header().Set("ETag", etag)
		http.ServeContent(w, r, r.URL.Path, mod, strings.NewReader(body))
	}))
	t.Cleanup(b.srv.Close)
	return b
}

// setToken changes the token the server accepts.
func (b *bearerServer) setToken(token string) {
	b.mu.Lock()
	b.token = token
	b.mu.Unlock()
}

// httpConn is a stored HTTP connection to the server's /exports/ with its
// bearer token.
func (b *bearerServer) httpConn(token string) *intakev1.Connection {
	return &intakev1.Connection{DisplayName: "Exports", Kind: &intakev1.Connection_Http{Http: &intakev1.HttpConnection{
		Url:  b.srv.URL + "/exports/",
		Auth: &intakev1.HttpConnection_Bearer{Bearer: &intakev1.BearerAuth{Token: token}},
	}}}
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	return port
}

// Secrets are write only: Get and List show that they are set, never what
// they are, and the database holds them only sealed.
func TestConnectionCRUDWithSecrets(t *testing.T) {
	t.Parallel()
	b, conns := setupConnections(t, testKey(t, "k1"), false)
	ctx := testCtx(t)
	const secretKey, sessionToken = "s3-secret-4f1d-plaintext", "session-token-77ab"
	s3 := &intakev1.Connection{DisplayName: "ERP bucket", Description: "nightly exports", Kind: &intakev1.Connection_S3{S3: &intakev1.S3Connection{
		Endpoint: "https://minio.internal:9000", Bucket: "erp-exports", PathStyle: true,
		AccessKeyId: "AKIAEXAMPLE", SecretAccessKey: secretKey, SessionToken: sessionToken,
	}}}
	created, err := conns.CreateConnection(ctx, &intakev1.CreateConnectionRequest{ConnectionId: "erp", Connection: s3})
	require.NoError(t, err)
	shown := func(c *intakev1.Connection) {
		t.Helper()
		require.Equal(t, "connections/erp", c.GetName())
		require.Equal(t, "ERP bucket", c.GetDisplayName())
		require.Equal(t, "erp-exports", c.GetS3().GetBucket())
		require.Equal(t, "AKIAEXAMPLE", c.GetS3().GetAccessKeyId())
		require.Empty(t, c.GetS3().GetSecretAccessKey())
		require.Empty(t, c.GetS3().GetSessionToken())
		require.True(t, c.GetS3().GetSecretAccessKeySet())
		require.True(t, c.GetS3().GetSessionTokenSet())
		require.NotEmpty(t, c.GetEtag())
		require.NotNil(t, c.GetCreateTime())
	}
	shown(created)
	got, err := conns.GetConnection(ctx, &intakev1.GetConnectionRequest{Name: "connections/erp"})
	require.NoError(t, err)
	shown(got)
	require.True(t, proto.Equal(created, got))

	// The database holds the secrets sealed, not in the spec, bound to
	// their row and field.
	pool := pgPool(t, b.dsn)
	var spec, secrets string
	require.NoError(t, pool.QueryRow(ctx, `SELECT spec::text, secrets::text FROM intake.connections WHERE id = 'erp'`).Scan(&spec, &secrets))
	for _, col := range []string{spec, secrets} {
		require.NotContains(t, col, secretKey)
		require.NotContains(t, col, sessionToken)
	}
	require.NotContains(t, spec, "secretAccessKey")
	require.Contains(t, secrets, `"s3.secret_access_key": "v1:k1:`)
	require.Contains(t, secrets, `"s3.session_token": "v1:k1:`)

	// Pages of the list.
	for _, id := range []string{"b-conn", "c-conn"} {
		_, err := conns.CreateConnection(ctx, &intakev1.CreateConnectionRequest{ConnectionId: id, Connection: &intakev1.Connection{
			Kind: &intakev1.Connection_Http{Http: &intakev1.HttpConnection{Url: "https://exports.example.com/" + id + "/"}},
		}})
		require.NoError(t, err)
	}
	var names []string
	token := ""
	for range 3 {
		page, err := conns.ListConnections(ctx, &intakev1.ListConnectionsRequest{PageSize: 2, PageToken: token})
		require.NoError(t, err)
		for _, c := range page.GetConnections() {
			names = append(names, c.GetName())
			if c.GetName() == "connections/erp" {
				shown(c)
			}
		}
		if token = page.GetNextPageToken(); token == "" {
			break
		}
	}
	require.Equal(t, []string{"connections/erp", "connections/b-conn", "connections/c-conn"}, names)
	_, err = conns.ListConnections(ctx, &intakev1.ListConnectionsRequest{PageToken: "bogus"})
	requireCode(t, err, codes.InvalidArgument, "page_token")

	// A generated id.
	gen, err := conns.CreateConnection(ctx, &intakev1.CreateConnectionRequest{Connection: &intakev1.Connection{
		Kind: &intakev1.Connection_Http{Http: &intakev1.HttpConnection{Url: "https://exports.example.com/"}},
	}})
	require.NoError(t, err)
	require.Regexp(t, `^connections/[0-9a-f]{12}$`, gen.GetName())
	_, err = conns.CreateConnection(ctx, &intakev1.CreateConnectionRequest{ConnectionId: "erp", Connection: s3})
	requireCode(t, err, codes.AlreadyExists, "connection connections/erp already exists")

	// Update: a mask naming other fields keeps the secrets; so does an
	// empty mask with the connection as read (secrets empty).
	got.DisplayName = "ERP exports"
	upd, err := conns.UpdateConnection(ctx, &intakev1.UpdateConnectionRequest{Connection: got,
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name"}}})
	require.NoError(t, err)
	require.Equal(t, "ERP exports", upd.GetDisplayName())
	require.True(t, upd.GetS3().GetSecretAccessKeySet())
	require.NotEqual(t, got.GetEtag(), upd.GetEtag())
	upd.GetS3().Bucket = "erp-exports-2"
	upd2, err := conns.UpdateConnection(ctx, &intakev1.UpdateConnectionRequest{Connection: upd})
	require.NoError(t, err)
	require.Equal(t, "erp-exports-2", upd2.GetS3().GetBucket())
	require.True(t, upd2.GetS3().GetSecretAccessKeySet())
	require.True(t, upd2.GetS3().GetSessionTokenSet())
	var secrets2 string
	require.NoError(t, pool.QueryRow(ctx, `SELECT secrets::text FROM intake.connections WHERE id = 'erp'`).Scan(&secrets2))
	require.Equal(t, secrets, secrets2, "kept secrets are not sealed again")

	// A stale etag is refused.
	_, err = conns.UpdateConnection(ctx, &intakev1.UpdateConnectionRequest{Connection: upd,
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"description"}}})
	requireCode(t, err, codes.Aborted, "was changed since etag")

	// Naming a secret's field with an empty value removes it; sending a
	// new one replaces it.
	upd3, err := conns.UpdateConnection(ctx, &intakev1.UpdateConnectionRequest{
		Connection: &intakev1.Connection{Name: "connections/erp", Kind: &intakev1.Connection_S3{S3: &intakev1.S3Connection{SecretAccessKey: "a-new-secret-9911"}}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"s3.session_token", "s3.secret_access_key"}},
	})
	require.NoError(t, err)
	require.False(t, upd3.GetS3().GetSessionTokenSet())
	require.True(t, upd3.GetS3().GetSecretAccessKeySet())
	require.Equal(t, "erp-exports-2", upd3.GetS3().GetBucket())
	var secrets3 string
	require.NoError(t, pool.QueryRow(ctx, `SELECT secrets::text FROM intake.connections WHERE id = 'erp'`).Scan(&secrets3))
	require.NotContains(t, secrets3, "s3.session_token")
	require.NotContains(t, secrets3, "a-new-secret-9911")
	require.NotEqual(t, secrets2, secrets3)

	// Removing the secret key while an access key id stays is refused,
	// naming the field.
	_, err = conns.UpdateConnection(ctx, &intakev1.UpdateConnectionRequest{
		Connection: &intakev1.Connection{Name: "connections/erp"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"s3.secret_access_key"}},
	})
	st := requireCode(t, err, codes.InvalidArgument)
	require.Contains(t, fieldViolations(t, st)["connection.s3.secret_access_key"], "required with access_key_id")
	_, err = conns.UpdateConnection(ctx, &intakev1.UpdateConnectionRequest{
		Connection: &intakev1.Connection{Name: "connections/erp"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"s3.secret_access_key_set", "etag"}},
	})
	st = requireCode(t, err, codes.InvalidArgument)
	require.Contains(t, fieldViolations(t, st)["update_mask.paths[0]"], "output only")
	require.Contains(t, fieldViolations(t, st)["update_mask.paths[1]"], "output only")

	// Delete.
	_, err = conns.DeleteConnection(ctx, &intakev1.DeleteConnectionRequest{Name: "connections/b-conn"})
	require.NoError(t, err)
	_, err = conns.GetConnection(ctx, &intakev1.GetConnectionRequest{Name: "connections/b-conn"})
	requireCode(t, err, codes.NotFound, "connection connections/b-conn not found")
	_, err = conns.DeleteConnection(ctx, &intakev1.DeleteConnectionRequest{Name: "connections/b-conn"})
	requireCode(t, err, codes.NotFound)
	_, err = conns.GetConnection(ctx, &intakev1.GetConnectionRequest{Name: "erp"})
	requireCode(t, err, codes.InvalidArgument, `"erp" is not a connection name (connections/{connection})`)
}

// Each kind's settings are checked, with the field of each problem.
func TestConnectionValidation(t *testing.T) {
	t.Parallel()
	_, conns := setupConnections(t, testKey(t, "k1"), false)
	ctx := testCtx(t)
	for name, tc := range map[string]struct {
		conn *intakev1.Connection
		want map[string]string
	}{
		"no kind": {&intakev1.Connection{DisplayName: "x"}, map[string]string{"connection": "set one of s3, sftp, http or local"}},
		"s3": {&intakev1.Connection{Kind: &intakev1.Connection_S3{S3: &intakev1.S3Connection{Endpoint: "minio:9000", SessionToken: "t"}}},
			map[string]string{"connection.s3.bucket": "required", "connection.s3.endpoint": "the scheme must be http or https",
				"connection.s3.session_token": "only with static credentials"}},
		"s3 key id without secret": {&intakev1.Connection{Kind: &intakev1.Connection_S3{S3: &intakev1.S3Connection{Bucket: "b", AccessKeyId: "AK"}}},
			map[string]string{"connection.s3.secret_access_key": "required with access_key_id"}},
		"sftp": {&intakev1.Connection{Kind: &intakev1.Connection_Sftp{Sftp: &intakev1.SftpConnection{Port: 70000}}},
			map[string]string{"connection.sftp.host": "required", "connection.sftp.user": "required", "connection.sftp.host_key": "required",
				"connection.sftp": "set a password or a private_key", "connection.sftp.port": "70000 is not a port"}},
		"http": {&intakev1.Connection{Kind: &intakev1.Connection_Http{Http: &intakev1.HttpConnection{Url: "exports/accounts.csv",
			CaPem: "not a certificate", Auth: &intakev1.HttpConnection_Basic{Basic: &intakev1.BasicAuth{}}}}},
			map[string]string{"connection.http.url": "the scheme must be http or https", "connection.http.ca_pem": "no PEM certificate",
				"connection.http.basic.username": "required", "connection.http.basic.password": "required"}},
		"local relative": {&intakev1.Connection{Kind: &intakev1.Connection_Local{Local: &intakev1.LocalConnection{Path: "data"}}},
			map[string]string{"connection.local.path": "not an absolute path"}},
	} {
		_, err := conns.CreateConnection(ctx, &intakev1.CreateConnectionRequest{Connection: tc.conn})
		st := requireCode(t, err, codes.InvalidArgument)
		vs := fieldViolations(t, st)
		for field, want := range tc.want {
			require.Contains(t, vs[field], want, "%s: %s in %v", name, field, vs)
		}
	}
	_, err := conns.CreateConnection(ctx, &intakev1.CreateConnectionRequest{ConnectionId: "Bad_ID", Connection: &intakev1.Connection{
		Kind: &intakev1.Connection_Http{Http: &intakev1.HttpConnection{Url: "https://x.example.com/"}}}})
	st := requireCode(t, err, codes.InvalidArgument)
	require.Contains(t, fieldViolations(t, st)["connection_id"], "not a connection id")
	// Local directories only in development mode.
	_, err = conns.CreateConnection(ctx, &intakev1.CreateConnectionRequest{Connection: &intakev1.Connection{
		Kind: &intakev1.Connection_Local{Local: &intakev1.LocalConnection{Path: t.TempDir()}}}})
	requireCode(t, err, codes.FailedPrecondition, "only accepted when Intake runs in development mode")
}

// Without a key ring, a connection with a secret is refused; one without
// is stored.
func TestConnectionWithoutKeyRing(t *testing.T) {
	t.Parallel()
	b, conns := setupConnections(t, "", false)
	ctx := testCtx(t)
	const token = "bearer-token-without-key"
	_, err := conns.CreateConnection(ctx, &intakev1.CreateConnectionRequest{ConnectionId: "h", Connection: &intakev1.Connection{
		Kind: &intakev1.Connection_Http{Http: &intakev1.HttpConnection{Url: "https://x.example.com/",
			Auth: &intakev1.HttpConnection_Bearer{Bearer: &intakev1.BearerAuth{Token: token}}}}}})
	st := requireCode(t, err, codes.FailedPrecondition)
	require.Equal(t, api.NoKeyMessage, st.Message())
	require.NotContains(t, st.String(), token)
	_, err = conns.CreateConnection(ctx, &intakev1.CreateConnectionRequest{ConnectionId: "h", Connection: &intakev1.Connection{
		Kind: &intakev1.Connection_Http{Http: &intakev1.HttpConnection{Url: "https://x.example.com/"}}}})
	require.NoError(t, err)
	// Adding a secret later is refused the same way.
	_, err = conns.UpdateConnection(ctx, &intakev1.UpdateConnectionRequest{Connection: &intakev1.Connection{Name: "connections/h",
		Kind: &intakev1.Connection_Http{Http: &intakev1.HttpConnection{Url: "https://x.example.com/",
			Auth: &intakev1.HttpConnection_Bearer{Bearer: &intakev1.BearerAuth{Token: token}}}}}})
	st = requireCode(t, err, codes.FailedPrecondition)
	require.Equal(t, api.NoKeyMessage, st.Message())
	var n int
	require.NoError(t, pgPool(t, b.dsn).QueryRow(ctx, `SELECT count(*) FROM intake.connections WHERE secrets::text LIKE '%v1:%'`).Scan(&n))
	require.Zero(t, n)
}

// A job names a stored connection and a file; the connection must exist,
// the file suit its kind, and it cannot be deleted while the job uses it.
func TestJobWithStoredConnection(t *testing.T) {
	t.Parallel()
	b, conns := setupConnections(t, testKey(t, "k1"), false)
	ctx := testCtx(t)
	const token = "tok-5a1b9e"
	files := newBearerServer(t, token)
	_, err := conns.CreateConnection(ctx, &intakev1.CreateConnectionRequest{ConnectionId: "exports", Connection: files.httpConn(token)})
	require.NoError(t, err)

	job := b.accountsJob("Accounts from exports")
	job.Connection = nil
	job.ConnectionName = "connections/exports"
	job.File = &intakev1.FileSelector{Selector: &intakev1.FileSelector_Path{Path: "accounts.csv"}}
	// Validation reads the file through the stored connection (its token).
	created, err := b.create(t, "acc", job)
	require.NoError(t, err)
	require.Equal(t, "connections/exports", created.GetConnectionName())
	require.Equal(t, "accounts.csv", created.GetFile().GetPath())
	require.True(t, created.GetMappingValidated())
	prev, err := b.jobs.PreviewJob(ctx, &intakev1.PreviewJobRequest{Name: "jobs/acc", Rows: 1})
	require.NoError(t, err)
	require.Equal(t, []string{"Account ID", "Name", "Region"}, prev.GetHeader())

	got, err := conns.GetConnection(ctx, &intakev1.GetConnectionRequest{Name: "connections/exports"})
	require.NoError(t, err)
	require.Equal(t, []string{"jobs/acc"}, got.GetUsedBy())
	_, err = conns.DeleteConnection(ctx, &intakev1.DeleteConnectionRequest{Name: "connections/exports"})
	requireCode(t, err, codes.FailedPrecondition, "connections/exports", "used by jobs/acc")

	// A missing file says where.
	missing := proto.Clone(job).(*intakev1.Job)
	missing.File = &intakev1.FileSelector{Selector: &intakev1.FileSelector_Path{Path: "nope-{yyyy}.csv"}}
	_, err = b.jobs.ValidateMapping(ctx, &intakev1.ValidateMappingRequest{Job: missing})
	requireCode(t, err, codes.FailedPrecondition, "connections/exports", "nope-2")

	// Unknown connections, bad selectors and inline secrets are refused.
	unknown := proto.Clone(job).(*intakev1.Job)
	unknown.Enabled = false
	unknown.ConnectionName = "connections/nope"
	_, err = b.jobs.CreateJob(ctx, &intakev1.CreateJobRequest{JobId: "unknown", Job: unknown})
	st := requireCode(t, err, codes.InvalidArgument)
	require.Contains(t, fieldViolations(t, st)["job.connection_name"], "connection connections/nope does not exist")
	pattern := proto.Clone(unknown).(*intakev1.Job)
	pattern.ConnectionName = "connections/exports"
	pattern.File = &intakev1.FileSelector{Selector: &intakev1.FileSelector_Pattern{Pattern: "accounts_*.csv"}}
	_, err = b.jobs.CreateJob(ctx, &intakev1.CreateJobRequest{JobId: "pattern", Job: pattern})
	st = requireCode(t, err, codes.InvalidArgument)
	require.Contains(t, fieldViolations(t, st)["job.file"], "accounts_*.csv")
	noFile := proto.Clone(pattern).(*intakev1.Job)
	noFile.File = nil
	_, err = b.jobs.CreateJob(ctx, &intakev1.CreateJobRequest{JobId: "nofile", Job: noFile})
	st = requireCode(t, err, codes.InvalidArgument)
	require.Contains(t, fieldViolations(t, st)["job.file"], "required with connection_name")
	both := b.accountsJob("both")
	both.Enabled = false
	both.ConnectionName = "connections/exports"
	_, err = b.jobs.CreateJob(ctx, &intakev1.CreateJobRequest{JobId: "both", Job: both})
	st = requireCode(t, err, codes.InvalidArgument)
	require.Contains(t, fieldViolations(t, st)["job.connection_name"], "not both")
	inline := b.accountsJob("inline")
	inline.Enabled = false
	inline.GetConnection().GetHttp().Auth = &intakev1.HttpConnection_Bearer{Bearer: &intakev1.BearerAuth{Token: token}}
	_, err = b.jobs.CreateJob(ctx, &intakev1.CreateJobRequest{JobId: "inline", Job: inline})
	st = requireCode(t, err, codes.InvalidArgument)
	require.Contains(t, fieldViolations(t, st)["job.connection.http.bearer"], "an inline connection may not hold secrets")
	require.NotContains(t, st.String(), token)
	inline.Connection = &intakev1.Connection{Kind: &intakev1.Connection_S3{S3: &intakev1.S3Connection{Bucket: "b"}}}
	_, err = b.jobs.CreateJob(ctx, &intakev1.CreateJobRequest{JobId: "inline", Job: inline})
	st = requireCode(t, err, codes.InvalidArgument)
	require.Contains(t, fieldViolations(t, st)["job.connection.s3"], "cannot be inline")

	// Once the job uses another connection, the connection can go.
	_, err = b.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{Job: &intakev1.Job{Name: "jobs/acc", Connection: b.accountsJob("x").GetConnection()},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"connection", "connection_name", "file"}}})
	require.NoError(t, err)
	_, err = conns.DeleteConnection(ctx, &intakev1.DeleteConnectionRequest{Name: "connections/exports"})
	require.NoError(t, err)
}

// testResult runs TestConnection and returns its result.
func testResult(t *testing.T, conns intakev1.ConnectionServiceClient, req *intakev1.TestConnectionRequest) *intakev1.TestConnectionResponse {
	t.Helper()
	resp, err := conns.TestConnection(testCtx(t), req)
	require.NoError(t, err)
	return resp
}

// requireFailure checks a failed connection test: its kind, and that its
// message says each of want and none of the secrets.
func requireFailure(t *testing.T, resp *intakev1.TestConnectionResponse, kind intakev1.ConnectionErrorKind, want []string, secrets ...string) {
	t.Helper()
	require.False(t, resp.GetOk(), "test passed: %s", resp.GetMessage())
	require.Equal(t, kind.String(), resp.GetErrorKind().String(), resp.GetMessage())
	for _, w := range want {
		require.Contains(t, resp.GetMessage(), w)
	}
	for _, s := range secrets {
		require.NotContains(t, resp.GetMessage(), s)
	}
}

func TestTestConnectionHTTP(t *testing.T) {
	t.Parallel()
	_, conns := setupConnections(t, testKey(t, "k1"), false)
	ctx := testCtx(t)
	const token = "tok-http-31c7"
	files := newBearerServer(t, token)
	_, err := conns.CreateConnection(ctx, &intakev1.CreateConnectionRequest{ConnectionId: "exports", Connection: files.httpConn(token)})
	require.NoError(t, err)

	ok := testResult(t, conns, &intakev1.TestConnectionRequest{Name: "connections/exports",
		File: &intakev1.FileSelector{Selector: &intakev1.FileSelector_Path{Path: "accounts.csv"}}})
	require.True(t, ok.GetOk(), ok.GetMessage())
	require.Equal(t, intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_UNSPECIFIED, ok.GetErrorKind())
	require.Equal(t, "accounts.csv", ok.GetFile().GetPath())
	require.Equal(t, int64(len(accountsCSV)), ok.GetFile().GetSize())
	require.Contains(t, ok.GetMessage(), "connected to connections/exports")
	require.GreaterOrEqual(t, ok.GetLatencyMs(), int64(0))

	// A missing file.
	requireFailure(t, testResult(t, conns, &intakev1.TestConnectionRequest{Name: "connections/exports",
		File: &intakev1.FileSelector{Selector: &intakev1.FileSelector_Path{Path: "missing.csv"}}}),
		intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_FILE_NOT_FOUND, []string{"missing.csv"}, token)
	// A wrong token, unsaved.
	requireFailure(t, testResult(t, conns, &intakev1.TestConnectionRequest{Connection: files.httpConn("wrong-token-0000")}),
		intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_AUTHENTICATION_FAILED, nil, "wrong-token-0000")
	// Nothing listening.
	port := closedPort(t)
	requireFailure(t, testResult(t, conns, &intakev1.TestConnectionRequest{Connection: &intakev1.Connection{
		Kind: &intakev1.Connection_Http{Http: &intakev1.HttpConnection{Url: fmt.Sprintf("http://127.0.0.1:%d/", port)}}}}),
		intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_CONNECTION_REFUSED, []string{fmt.Sprint(port)})

	// Bad requests are errors, not results.
	_, err = conns.TestConnection(ctx, &intakev1.TestConnectionRequest{})
	requireCode(t, err, codes.InvalidArgument, "name")
	_, err = conns.TestConnection(ctx, &intakev1.TestConnectionRequest{Name: "connections/exports", TimeZone: "Mars/Olympus"})
	requireCode(t, err, codes.InvalidArgument, "Mars/Olympus")
	_, err = conns.TestConnection(ctx, &intakev1.TestConnectionRequest{Name: "connections/nope"})
	requireCode(t, err, codes.NotFound, "connections/nope")
	_, err = conns.ListFiles(ctx, &intakev1.ListFilesRequest{Name: "connections/exports"})
	st := requireCode(t, err, codes.FailedPrecondition, "connections/exports")
	var reason string
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			reason = ei.GetReason()
		}
	}
	require.Equal(t, "INVALID_CONFIG", reason)
}

func TestTestConnectionAndListFilesS3(t *testing.T) {
	t.Parallel()
	b, conns := setupConnections(t, testKey(t, "k1"), false)
	ctx := testCtx(t)
	srv := s3test.New(t)
	srv.CreateBucket("exports")
	day := time.Date(2026, 11, 26, 5, 0, 0, 0, time.UTC)
	srv.PutObject("exports", "daily/accounts_2026-11-25.csv", []byte(accountsCSV), day.Add(-24*time.Hour))
	srv.PutObject("exports", "daily/accounts_2026-11-26.csv", []byte(accountsCSV+"A-3,Initech,EU\n"), day)
	for i := range 5 {
		srv.PutObject("exports", fmt.Sprintf("many/f%d.csv", i), []byte("x\n"), day)
	}
	srv.PutObject("exports", "top.csv", []byte(accountsCSV), day)
	conn := &intakev1.Connection{Kind: &intakev1.Connection_S3{S3: srv.S3Connection("exports")}}
	_, err := conns.CreateConnection(ctx, &intakev1.CreateConnectionRequest{ConnectionId: "s3", Connection: conn})
	require.NoError(t, err)

	// The newest file of a pattern, with the time zone's date.
	ok := testResult(t, conns, &intakev1.TestConnectionRequest{Name: "connections/s3", TimeZone: "Europe/Berlin",
		File: &intakev1.FileSelector{Selector: &intakev1.FileSelector_Pattern{Pattern: "daily/accounts_*.csv"}}})
	require.True(t, ok.GetOk(), ok.GetMessage())
	require.Equal(t, "daily/accounts_2026-11-26.csv", ok.GetFile().GetPath())
	require.Equal(t, day, ok.GetFile().GetModifyTime().AsTime())
	requireFailure(t, testResult(t, conns, &intakev1.TestConnectionRequest{Name: "connections/s3",
		File: &intakev1.FileSelector{Selector: &intakev1.FileSelector_Pattern{Pattern: "daily/users_*.csv"}}}),
		intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_NO_MATCH, []string{"users_*.csv"})

	// Wrong credentials and a missing bucket.
	wrong := proto.Clone(conn).(*intakev1.Connection)
	wrong.GetS3().SecretAccessKey = "wrong-secret-key-1234"
	requireFailure(t, testResult(t, conns, &intakev1.TestConnectionRequest{Connection: wrong}),
		intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_AUTHENTICATION_FAILED, nil, "wrong-secret-key-1234", srv.SecretAccessKey)
	noBucket := proto.Clone(conn).(*intakev1.Connection)
	noBucket.GetS3().Bucket = "no-such-bucket"
	requireFailure(t, testResult(t, conns, &intakev1.TestConnectionRequest{Connection: noBucket}),
		intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_BUCKET_NOT_FOUND, []string{"no-such-bucket"}, srv.SecretAccessKey)

	// ListFiles: the root level, then a prefix page by page.
	root, err := conns.ListFiles(ctx, &intakev1.ListFilesRequest{Name: "connections/s3"})
	require.NoError(t, err)
	var paths []string
	for _, f := range root.GetFiles() {
		paths = append(paths, f.GetPath())
	}
	require.Equal(t, []string{"daily", "many", "top.csv"}, paths)
	require.True(t, root.GetFiles()[0].GetDirectory())
	require.Equal(t, int64(len(accountsCSV)), root.GetFiles()[2].GetSize())
	paths = nil
	token, pages := "", 0
	for {
		page, err := conns.ListFiles(ctx, &intakev1.ListFilesRequest{Name: "connections/s3", Prefix: "many/", PageSize: 2, PageToken: token})
		require.NoError(t, err)
		pages++
		require.LessOrEqual(t, len(page.GetFiles()), 2)
		for _, f := range page.GetFiles() {
			paths = append(paths, f.GetPath())
		}
		if token = page.GetNextPageToken(); token == "" {
			break
		}
	}
	require.Equal(t, []string{"many/f0.csv", "many/f1.csv", "many/f2.csv", "many/f3.csv", "many/f4.csv"}, paths)
	require.Equal(t, 3, pages)
	_, err = conns.ListFiles(ctx, &intakev1.ListFilesRequest{Name: "connections/s3", PageSize: -1})
	requireCode(t, err, codes.InvalidArgument, "page_size")

	// A job reads the newest file of a pattern; the connection cannot
	// become one that cannot be listed while the job uses it.
	job := accountsJobAt("daily", "")
	job.Connection, job.Enabled = nil, false
	job.ConnectionName = "connections/s3"
	job.File = &intakev1.FileSelector{Selector: &intakev1.FileSelector_Pattern{Pattern: "daily/accounts_*.csv"}}
	_, err = b.jobs.CreateJob(ctx, &intakev1.CreateJobRequest{JobId: "daily", Job: job})
	require.NoError(t, err)
	_, err = conns.UpdateConnection(ctx, &intakev1.UpdateConnectionRequest{Connection: &intakev1.Connection{Name: "connections/s3",
		Kind: &intakev1.Connection_Http{Http: &intakev1.HttpConnection{Url: "https://exports.example.com/"}}}})
	st := requireCode(t, err, codes.InvalidArgument)
	require.Contains(t, fieldViolations(t, st)["connection"], "job jobs/daily uses this connection")
}

func TestTestConnectionSFTP(t *testing.T) {
	t.Parallel()
	_, conns := setupConnections(t, testKey(t, "k1"), false)
	ctx := testCtx(t)
	srv := sftptest.New(t)
	srv.PutFile("in/accounts.csv", []byte(accountsCSV), time.Date(2026, 11, 26, 5, 0, 0, 0, time.UTC))
	conn := &intakev1.Connection{Kind: &intakev1.Connection_Sftp{Sftp: srv.Connection()}}
	_, err := conns.CreateConnection(ctx, &intakev1.CreateConnectionRequest{ConnectionId: "sftp", Connection: conn})
	require.NoError(t, err)
	ok := testResult(t, conns, &intakev1.TestConnectionRequest{Name: "connections/sftp",
		File: &intakev1.FileSelector{Selector: &intakev1.FileSelector_Path{Path: "in/accounts.csv"}}})
	require.True(t, ok.GetOk(), ok.GetMessage())
	require.Equal(t, int64(len(accountsCSV)), ok.GetFile().GetSize())
	files, err := conns.ListFiles(ctx, &intakev1.ListFilesRequest{Name: "connections/sftp", Prefix: "in"})
	require.NoError(t, err)
	require.Len(t, files.GetFiles(), 1)
	require.Contains(t, files.GetFiles()[0].GetPath(), "accounts.csv")

	wrong := proto.Clone(conn).(*intakev1.Connection)
	wrong.GetSftp().Password = "wrong-password-42"
	requireFailure(t, testResult(t, conns, &intakev1.TestConnectionRequest{Connection: wrong}),
		intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_AUTHENTICATION_FAILED, nil, "wrong-password-42", srv.Password)
	otherKey := proto.Clone(conn).(*intakev1.Connection)
	otherKey.GetSftp().HostKey = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	requireFailure(t, testResult(t, conns, &intakev1.TestConnectionRequest{Connection: otherKey}),
		intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_HOST_KEY_MISMATCH, nil, srv.Password)
	requireFailure(t, testResult(t, conns, &intakev1.TestConnectionRequest{Name: "connections/sftp",
		File: &intakev1.FileSelector{Selector: &intakev1.FileSelector_Path{Path: "in/missing.csv"}}}),
		intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_FILE_NOT_FOUND, []string{"in/missing.csv"}, srv.Password)
	refused := proto.Clone(conn).(*intakev1.Connection)
	refused.GetSftp().Port = int32(closedPort(t))
	requireFailure(t, testResult(t, conns, &intakev1.TestConnectionRequest{Connection: refused}),
		intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_CONNECTION_REFUSED, nil, srv.Password)
}

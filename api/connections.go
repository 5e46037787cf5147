package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/intakehq/intake/api/internal/jobspec"
	"github.com/intakehq/intake/api/internal/store"
	"github.com/intakehq/intake/pkg/secretbox"
	"github.com/intakehq/intake/pkg/source"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// ConnectionService: stored connections, with their secrets sealed by the
// key ring (Config.EncryptionKeys) and never returned; TestConnection and
// ListFiles reach their servers through pkg/source.

// Page sizes of ListFiles.
const (
	defaultFilesPageSize = 100
	maxFilesPageSize     = 1000
)

// NoKeyMessage is the error of a secret to store when no key ring is
// configured.
const NoKeyMessage = "no encryption key configured: set INTAKE_ENCRYPTION_KEYS (see README)"

type connectionService struct {
	intakev1.UnimplementedConnectionServiceServer
	s *Server
}

// noKeyError is the FailedPrecondition of a secret that cannot be sealed.
func noKeyError(subject string) error {
	st := status.New(codes.FailedPrecondition, NoKeyMessage)
	if d, err := st.WithDetails(&errdetails.PreconditionFailure{Violations: []*errdetails.PreconditionFailure_Violation{
		{Type: "ENCRYPTION_KEY", Subject: subject, Description: NoKeyMessage},
	}}); err == nil {
		st = d
	}
	return st.Err()
}

// connectionError turns a store error about a connection into a status:
// secrets that cannot be sealed or opened are FailedPrecondition (their
// messages name the key id, never a secret).
func (s *Server) connectionError(ctx context.Context, op, what string, err error) error {
	var se *store.SecretError
	var inUse *store.ConnectionInUseError
	switch {
	case errors.Is(err, secretbox.ErrNoKey) && !errors.As(err, &se):
		return noKeyError(what)
	case errors.As(err, &se):
		s.log.WarnContext(ctx, "secret does not open", "resource", se.Resource, "field", se.Field, "error", se.Err)
		return failedPrecondition("ENCRYPTION_KEY", se.Resource, se.Error()+"; see README, Secrets at rest")
	case errors.As(err, &inUse):
		return failedPrecondition("CONNECTION_IN_USE", what,
			fmt.Sprintf("used by %s: point those jobs at another connection (or delete them) first", strings.Join(inUse.Jobs, ", ")))
	}
	return s.storeError(ctx, op, what, err)
}

// parseConnectionName returns the id of "connections/{connection}"; field
// names the request field.
func parseConnectionName(field, name string) (string, error) {
	id, err := jobspec.ParseConnectionName(name)
	if err != nil {
		return "", badField(field, "%v", err)
	}
	return id, nil
}

// localNotAllowed is the refusal of a local connection outside development
// mode.
func localNotAllowed(field string) error {
	return failedPrecondition("DEV_MODE", field,
		"local directory connections are only accepted when Intake runs in development mode; use an s3, sftp or http connection")
}

// hasSecret says whether c carries a secret at path.
func hasSecret(c *intakev1.Connection) func(string) bool {
	sent := jobspec.Secrets(c)
	return func(p string) bool { return sent[p] != "" }
}

func (c *connectionService) CreateConnection(ctx context.Context, req *intakev1.CreateConnectionRequest) (*intakev1.Connection, error) {
	s := c.s
	conn := req.GetConnection()
	if conn == nil {
		return nil, badField("connection", "required")
	}
	var vs jobspec.Violations
	id := req.GetConnectionId()
	if id == "" && conn.GetName() != "" {
		if nid, err := jobspec.ParseConnectionName(conn.GetName()); err != nil {
			vs = append(vs, jobspec.Violation{Field: "connection.name", Description: err.Error()})
		} else {
			id = nid
		}
	}
	if id != "" {
		if err := jobspec.CheckConnectionID(id); err != nil {
			vs = append(vs, jobspec.Violation{Field: "connection_id", Description: err.Error()})
		}
	}
	vs = append(vs, jobspec.ValidateConnection("connection", conn, hasSecret(conn))...)
	if len(vs) > 0 {
		return nil, invalid("invalid connection", vs)
	}
	if conn.GetLocal() != nil && !s.cfg.DevMode {
		return nil, localNotAllowed("connection.local")
	}
	if len(jobspec.Secrets(conn)) > 0 && s.ring == nil {
		return nil, noKeyError("connection")
	}
	var out *intakev1.Connection
	var err error
	for attempt := 0; ; attempt++ {
		newID := id
		if newID == "" {
			newID = newJobID()
		}
		out, err = s.store.CreateConnection(ctx, newID, conn)
		if err == nil {
			id = newID
			break
		}
		if id != "" || !errors.Is(err, store.ErrAlreadyExists) || attempt >= 3 {
			return nil, s.connectionError(ctx, "create", "connection "+store.ConnectionName(newID), err)
		}
	}
	s.log.InfoContext(ctx, "connection created", "connection", id, "kind", jobspec.ConnectionKind(out),
		"secrets", len(jobspec.Secrets(conn)), "key", s.ring.CurrentID())
	return out, nil
}

func (c *connectionService) GetConnection(ctx context.Context, req *intakev1.GetConnectionRequest) (*intakev1.Connection, error) {
	id, err := parseConnectionName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	conn, err := c.s.store.GetConnection(ctx, id)
	if err != nil {
		return nil, c.s.connectionError(ctx, "read", "connection "+req.GetName(), err)
	}
	return conn, nil
}

func (c *connectionService) ListConnections(ctx context.Context, req *intakev1.ListConnectionsRequest) (*intakev1.ListConnectionsResponse, error) {
	n, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	after, err := decodePageToken("connections", "", req.GetPageToken())
	if err != nil {
		return nil, err
	}
	conns, err := c.s.store.ListConnections(ctx, after, n+1)
	if err != nil {
		return nil, c.s.connectionError(ctx, "list", "connections", err)
	}
	resp := &intakev1.ListConnectionsResponse{Connections: conns}
	if len(conns) > n {
		resp.Connections = conns[:n]
		last := resp.Connections[n-1]
		id := strings.TrimPrefix(last.GetName(), jobspec.ConnectionPrefix)
		resp.NextPageToken = encodePageToken("connections", "", store.Cursor{Time: last.GetCreateTime().AsTime(), ID: id})
	}
	return resp, nil
}

func (c *connectionService) UpdateConnection(ctx context.Context, req *intakev1.UpdateConnectionRequest) (*intakev1.Connection, error) {
	s := c.s
	src := req.GetConnection()
	if src == nil {
		return nil, badField("connection", "required")
	}
	id, err := parseConnectionName("connection.name", src.GetName())
	if err != nil {
		return nil, err
	}
	paths := req.GetUpdateMask().GetPaths()
	var newSecrets int
	out, err := s.store.UpdateConnection(ctx, id, func(cur *intakev1.Connection, stored map[string]bool) (map[string]bool, error) {
		if etag := src.GetEtag(); etag != "" && etag != cur.GetEtag() {
			return nil, status.Errorf(codes.Aborted, "connection %s was changed since etag %q (now %q): read it again and retry", cur.GetName(), etag, cur.GetEtag())
		}
		wasLocal := cur.GetLocal() != nil
		jobspec.ClearSecrets(cur)
		if vs := jobspec.ApplyConnectionMask(cur, src, paths); len(vs) > 0 {
			return nil, invalid("invalid update_mask", vs)
		}
		keep := jobspec.SecretsToKeep(cur, stored, paths)
		sent := jobspec.Secrets(cur)
		newSecrets = len(sent)
		has := func(p string) bool { return keep[p] || sent[p] != "" }
		if vs := jobspec.ValidateConnection("connection", cur, has); len(vs) > 0 {
			return nil, invalid("invalid connection", vs)
		}
		if cur.GetLocal() != nil && !wasLocal && !s.cfg.DevMode {
			return nil, localNotAllowed("connection.local")
		}
		if len(sent) > 0 && s.ring == nil {
			return nil, noKeyError("connection")
		}
		if err := s.checkUsersFit(ctx, cur); err != nil {
			return nil, err
		}
		return keep, nil
	})
	if err != nil {
		return nil, s.connectionError(ctx, "update", "connection "+store.ConnectionName(id), err)
	}
	s.log.InfoContext(ctx, "connection updated", "connection", id, "fields", paths, "new_secrets", newSecrets)
	return out, nil
}

// checkUsersFit refuses a change of a connection that would make the file
// selector of a job using it invalid (e.g. a pattern on a connection turned
// into an HTTP one).
func (s *Server) checkUsersFit(ctx context.Context, conn *intakev1.Connection) error {
	var vs jobspec.Violations
	for _, name := range conn.GetUsedBy() {
		jobID, err := parseJobName("used_by", name)
		if err != nil {
			continue
		}
		job, err := s.store.GetJob(ctx, jobID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return s.storeError(ctx, "read", "job "+name, err)
		}
		if err := source.ValidateSelector(job.GetFile(), conn); err != nil {
			vs = append(vs, jobspec.Violation{Field: "connection", Description: fmt.Sprintf("job %s uses this connection, and its file would not fit: %v", name, err)})
		}
	}
	if len(vs) > 0 {
		return invalid("invalid connection", vs)
	}
	return nil
}

func (c *connectionService) DeleteConnection(ctx context.Context, req *intakev1.DeleteConnectionRequest) (*emptypb.Empty, error) {
	id, err := parseConnectionName("name", req.GetName())
	if err != nil {
		return nil, err
	}
	if err := c.s.store.DeleteConnection(ctx, id); err != nil {
		return nil, c.s.connectionError(ctx, "delete", "connection "+req.GetName(), err)
	}
	c.s.log.InfoContext(ctx, "connection deleted", "connection", id)
	return &emptypb.Empty{}, nil
}

// openConnection reads a stored connection with its secrets in clear text.
// field names the request field that named it.
func (s *Server) openConnection(ctx context.Context, field, name string) (*intakev1.Connection, error) {
	id, err := parseConnectionName(field, name)
	if err != nil {
		return nil, err
	}
	conn, err := s.store.OpenConnection(ctx, id)
	if err != nil {
		return nil, s.connectionError(ctx, "read", "connection "+name, err)
	}
	return conn, nil
}

// sourceOptions are the options the API reaches connections with.
func (s *Server) sourceOptions() source.Options {
	return source.Options{DevMode: s.cfg.DevMode, HTTPClient: s.httpClient, Timeout: s.cfg.SampleTimeout}
}

// TestConnection reaches a connection's server and authenticates (Dial and
// Check), then optionally resolves a file selector at the current time in
// the given zone and looks the file up. A failure is the result, with its
// kind and message, not an RPC error; a bad request is.
func (c *connectionService) TestConnection(ctx context.Context, req *intakev1.TestConnectionRequest) (*intakev1.TestConnectionResponse, error) {
	s := c.s
	var (
		conn  *intakev1.Connection
		label string
		err   error
	)
	switch {
	case req.GetName() != "" && req.GetConnection() != nil:
		return nil, badField("name", "give name (a stored connection) or connection (an unsaved one), not both")
	case req.GetName() != "":
		if conn, err = s.openConnection(ctx, "name", req.GetName()); err != nil {
			return nil, err
		}
		label = req.GetName()
	case req.GetConnection() != nil:
		conn = proto.Clone(req.GetConnection()).(*intakev1.Connection)
		conn.Name = ""
		if vs := jobspec.ValidateConnection("connection", conn, hasSecret(conn)); len(vs) > 0 {
			return nil, invalid("invalid connection", vs)
		}
		label = describeConnection(conn)
	default:
		return nil, badField("name", "required: a stored connection (connections/{connection}), or an unsaved connection in connection")
	}
	if conn.GetLocal() != nil && !s.cfg.DevMode {
		return nil, localNotAllowed("connection.local")
	}
	loc, err := loadZone(req.GetTimeZone())
	if err != nil {
		return nil, badField("time_zone", "%v", err)
	}
	file := req.GetFile()
	if file.GetSelector() != nil {
		if err := source.ValidateSelector(file, conn); err != nil {
			return nil, badField("file", "%v", err)
		}
	}

	ctx, cancel := context.WithTimeout(ctx, s.cfg.SampleTimeout)
	defer cancel()
	start := time.Now()
	resp := &intakev1.TestConnectionResponse{}
	fail := func(err error) (*intakev1.TestConnectionResponse, error) {
		if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		resp.Ok = false
		resp.ErrorKind = source.KindOf(err)
		resp.Message = connectionFailure(err, s.cfg.SampleTimeout)
		resp.LatencyMs = time.Since(start).Milliseconds()
		s.log.InfoContext(ctx, "connection test failed", "connection", label, "kind", resp.GetErrorKind().String(), "error", resp.GetMessage())
		return resp, nil
	}
	client, err := source.Dial(ctx, conn, s.sourceOptions())
	if err != nil {
		return fail(err)
	}
	defer client.Close()
	if err := client.Check(ctx); err != nil {
		return fail(err)
	}
	msg := "connected to " + label
	if file.GetSelector() != nil {
		fi, err := source.Resolve(ctx, client, file, time.Now(), loc)
		if err != nil {
			return fail(err)
		}
		if fi.Size < 0 { // HTTP: Resolve does not look the file up
			if fi, err = client.Stat(ctx, fi.Path); err != nil {
				return fail(err)
			}
		}
		resp.File = fileInfoProto(fi)
		msg += "; file " + describeFile(fi)
	}
	resp.Ok = true
	resp.Message = msg
	resp.LatencyMs = time.Since(start).Milliseconds()
	s.log.InfoContext(ctx, "connection tested", "connection", label, "latency_ms", resp.GetLatencyMs())
	return resp, nil
}

// connectionFailure is the message of a failed connection test.
func connectionFailure(err error, timeout time.Duration) string {
	if errors.Is(err, context.DeadlineExceeded) && source.KindOf(err) == intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_OTHER {
		return fmt.Sprintf("no answer within %v: %v", timeout, err)
	}
	return err.Error()
}

// loadZone loads an IANA time zone; "" is UTC.
func loadZone(name string) (*time.Location, error) {
	if name == "" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("%q is not an IANA time zone (e.g. Europe/Berlin)", name)
	}
	return loc, nil
}

// describeConnection names a connection for messages, without secrets.
func describeConnection(c *intakev1.Connection) string {
	if c.GetName() != "" {
		return c.GetName()
	}
	switch k := c.GetKind().(type) {
	case *intakev1.Connection_Http:
		if u, err := url.Parse(k.Http.GetUrl()); err == nil {
			return source.Redact(u)
		}
		return "the HTTP server"
	case *intakev1.Connection_Local:
		return "local directory " + k.Local.GetPath()
	case *intakev1.Connection_S3:
		where := "S3 bucket " + strconv.Quote(k.S3.GetBucket())
		if e := k.S3.GetEndpoint(); e != "" {
			if u, err := url.Parse(e); err == nil {
				where += " at " + source.Redact(u)
			}
		}
		return where
	case *intakev1.Connection_Sftp:
		port := int(k.Sftp.GetPort())
		if port == 0 {
			port = 22
		}
		return "sftp://" + k.Sftp.GetUser() + "@" + net.JoinHostPort(k.Sftp.GetHost(), strconv.Itoa(port))
	}
	return "the connection"
}

// describeFile is "path (N bytes, modified T)".
func describeFile(fi source.FileInfo) string {
	var parts []string
	if fi.Size >= 0 {
		parts = append(parts, strconv.FormatInt(fi.Size, 10)+" bytes")
	}
	if !fi.ModTime.IsZero() {
		parts = append(parts, "modified "+fi.ModTime.UTC().Format(time.RFC3339))
	}
	p := fi.Path
	if p == "" {
		p = "(the connection's URL)"
	}
	if len(parts) == 0 {
		return p
	}
	return p + " (" + strings.Join(parts, ", ") + ")"
}

func fileInfoProto(fi source.FileInfo) *intakev1.FileInfo {
	out := &intakev1.FileInfo{Path: fi.Path, Size: max(fi.Size, 0), Directory: fi.Dir}
	if !fi.ModTime.IsZero() {
		out.ModifyTime = timestamppb.New(fi.ModTime)
	}
	return out
}

// ListFiles lists one directory level of a stored connection (S3: a key
// prefix with "/" as delimiter), sorted by path, page by page.
func (c *connectionService) ListFiles(ctx context.Context, req *intakev1.ListFilesRequest) (*intakev1.ListFilesResponse, error) {
	s := c.s
	n := int(req.GetPageSize())
	switch {
	case n < 0:
		return nil, badField("page_size", "%d is negative", n)
	case n == 0:
		n = defaultFilesPageSize
	case n > maxFilesPageSize:
		n = maxFilesPageSize
	}
	conn, err := s.openConnection(ctx, "name", req.GetName())
	if err != nil {
		return nil, err
	}
	if conn.GetLocal() != nil && !s.cfg.DevMode {
		return nil, localNotAllowed("name")
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.SampleTimeout)
	defer cancel()
	client, err := source.Dial(ctx, conn, s.sourceOptions())
	if err != nil {
		return nil, sourceStatus(ctx, req.GetName(), err)
	}
	defer client.Close()
	files, next, err := client.List(ctx, req.GetPrefix(), req.GetPageToken(), n)
	if err != nil {
		return nil, sourceStatus(ctx, req.GetName(), err)
	}
	resp := &intakev1.ListFilesResponse{NextPageToken: next}
	for _, f := range files {
		resp.Files = append(resp.Files, fileInfoProto(f))
	}
	return resp, nil
}

// sourceStatus is the status of a failure to reach a connection's server
// (not a bad request): NotFound for a missing file or bucket, Unavailable
// for a server that does not answer, FailedPrecondition for everything the
// connection's settings must fix; an ErrorInfo detail carries the kind
// (e.g. reason "AUTHENTICATION_FAILED").
func sourceStatus(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil && errors.Is(ctx.Err(), context.Canceled) {
		return status.FromContextError(ctx.Err()).Err()
	}
	kind := source.KindOf(err)
	code := codes.FailedPrecondition
	switch kind {
	case intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_FILE_NOT_FOUND, intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_BUCKET_NOT_FOUND,
		intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_NO_MATCH:
		code = codes.NotFound
	case intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_UNKNOWN_HOST, intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_CONNECTION_REFUSED,
		intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_TIMEOUT:
		code = codes.Unavailable
	}
	if errors.Is(err, source.ErrLocalNotAllowed) {
		return localNotAllowed(what)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, what) {
		msg = what + ": " + msg
	}
	st := status.New(code, msg)
	if d, derr := st.WithDetails(&errdetails.ErrorInfo{
		Reason:   strings.TrimPrefix(kind.String(), "CONNECTION_ERROR_KIND_"),
		Domain:   "intake.v1",
		Metadata: map[string]string{"connection": what},
	}); derr == nil {
		st = d
	}
	return st.Err()
}

// checkJobConnection is the store's check of a job that names a stored
// connection (store.OnSaveJob), run as the job is saved with the
// connection's row locked: the connection must exist, and the job's file
// selector must suit its kind.
func (s *Server) checkJobConnection(job *intakev1.Job, conn *intakev1.Connection) error {
	name := job.GetConnectionName()
	if conn == nil {
		return invalid("invalid job", jobspec.Violations{{Field: "job.connection_name",
			Description: fmt.Sprintf("connection %s does not exist (ListConnections shows the stored connections)", name)}})
	}
	if err := source.ValidateSelector(job.GetFile(), conn); err != nil {
		return invalid("invalid job", jobspec.Violations{{Field: "job.file", Description: fmt.Sprintf("%v (connection %s)", err, name)}})
	}
	if conn.GetLocal() != nil && !s.cfg.DevMode {
		return localNotAllowed("job.connection_name")
	}
	return nil
}

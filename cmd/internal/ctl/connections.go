package ctl

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"golang.org/x/term"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/intakehq/intake/cmd/internal/command"
	"github.com/intakehq/intake/cmd/internal/jobfile"
	"github.com/intakehq/intake/cmd/internal/runview"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// Stored connections (intakectl connection create, get, list, update,
// delete, test, ls) and the --connection, --path and --pattern flags that
// point a job at one.
//
// Secrets never come from a plain flag (it would land in the shell's
// history): a *-file flag names a file ("-": standard input), some have an
// environment variable, and a terminal is asked. They are write-only in
// the API; what is shown is whether one is set.

// Connection kinds, as --kind takes them.
const (
	kindS3    = "s3"
	kindSFTP  = "sftp"
	kindHTTP  = "http"
	kindLocal = "local"
)

var connectionKinds = []string{kindS3, kindSFTP, kindHTTP, kindLocal}

// Environment variables that hold secrets of a connection being created.
const (
	envS3Secret     = "INTAKE_S3_SECRET_ACCESS_KEY"
	envSFTPPassword = "INTAKE_SFTP_PASSWORD"
)

// connOpts are the flags of the connection commands and the
// --connection/--path/--pattern flags of job files.
type connOpts struct {
	kind        string
	file        string
	displayName optString
	description optString

	// s3
	endpoint, region, bucket, accessKeyID optString
	pathStyle                             optBool
	secretAccessKeyFile, sessionTokenFile string
	// sftp
	host, user, hostKey                       optString
	port                                      optInt
	hostKeyFile, passwordFile, privateKeyFile string
	privateKeyPassphraseFile                  string
	// http
	url                                optString
	headers                            headerFlag
	basicUser                          optString
	basicPasswordFile, bearerTokenFile string
	// s3 and http
	caFile string
	// local: the directory; test and job files: the file
	path optString

	// test, job files
	pattern  optString
	timeZone string
	// job files
	connection string
	// ls
	all       bool
	pageToken string
	pageSize  int

	stdinTaken string // the flag that read standard input
}

// kindFlags are the flags of each kind's settings.
var kindFlags = map[string][]string{
	kindS3:    {"endpoint", "region", "bucket", "path-style", "access-key-id", "secret-access-key-file", "session-token-file"},
	kindSFTP:  {"host", "port", "user", "password-file", "private-key-file", "private-key-passphrase-file", "host-key", "host-key-file"},
	kindHTTP:  {"url", "header", "basic-user", "basic-password-file", "bearer-token-file"},
	kindLocal: {"path"},
}

// connectionFlags registers the flags of connection create and update.
func connectionFlags(fs *flag.FlagSet, c *cli) {
	o := &c.conn
	fs.StringVar(&o.kind, "kind", "", "the connection's kind: s3, sftp, http or local (local: development mode only)")
	fs.StringVar(&o.file, "f", "", `a connection as YAML or JSON (intake.v1.Connection, e.g. from connection get -o json; "-": standard input); flags override it`)
	fs.Var(&o.displayName, "display-name", "the `name` people see")
	fs.Var(&o.description, "description", "what the connection is for (`text`)")

	fs.Var(&o.endpoint, "endpoint", "s3: endpoint `URL`, e.g. https://minio.internal:9000 (empty: AWS S3)")
	fs.Var(&o.region, "region", `s3: `+"`region`"+`, e.g. eu-central-1 ("auto" for R2; empty: us-east-1)`)
	fs.Var(&o.bucket, "bucket", "s3: the `bucket`")
	fs.Var(&o.pathStyle, "path-style", "s3: address the bucket as ENDPOINT/BUCKET (MinIO, most self-hosted servers)")
	fs.Var(&o.accessKeyID, "access-key-id", "s3: access key `id` (none: the default credential chain, e.g. IRSA or an instance role)")
	fs.StringVar(&o.secretAccessKeyFile, "secret-access-key-file", "",
		`s3: file holding the secret access key ("-": standard input; else env `+envS3Secret+`, else asked on a terminal)`)
	fs.StringVar(&o.sessionTokenFile, "session-token-file", "", `s3: file holding a session token ("-": standard input)`)

	fs.Var(&o.host, "host", "sftp: the server's `host` name or address")
	fs.Var(&o.port, "port", "sftp: the server's `port` (default 22)")
	fs.Var(&o.user, "user", "sftp: the `user` to log in as")
	fs.StringVar(&o.passwordFile, "password-file", "",
		`sftp: file holding the password ("-": standard input; else env `+envSFTPPassword+`, else asked on a terminal unless --private-key-file)`)
	fs.StringVar(&o.privateKeyFile, "private-key-file", "", "sftp: the private key file (OpenSSH or PEM) to log in with")
	fs.StringVar(&o.privateKeyPassphraseFile, "private-key-passphrase-file", "", `sftp: file holding the private key's passphrase ("-": standard input)`)
	fs.Var(&o.hostKey, "host-key", `sftp: the server's host `+"`key`"+`, pinned: a known_hosts line, a key ("ssh-ed25519 AAAA...") or a fingerprint ("SHA256:...")`)
	fs.StringVar(&o.hostKeyFile, "host-key-file", "", "sftp: file of host keys to pin, e.g. the output of ssh-keyscan -p PORT HOST")

	fs.Var(&o.url, "url", "http: the `URL` (a stored connection: the base URL job paths are resolved against)")
	fs.Var(&o.headers, "header", "http: an extra request header `NAME=VALUE` (repeatable; not for credentials, which the API returns)")
	fs.Var(&o.basicUser, "basic-user", "http: `user` of basic authentication")
	fs.StringVar(&o.basicPasswordFile, "basic-password-file", "", `http: file holding the basic authentication password ("-": standard input; else asked on a terminal)`)
	fs.StringVar(&o.bearerTokenFile, "bearer-token-file", "", `http: file holding a bearer token ("-": standard input)`)

	fs.StringVar(&o.caFile, "ca-file", "", "s3, http: PEM file of extra certificate authorities to trust (a private CA)")
	fs.Var(&o.path, "path", "local: the `directory` (development mode only)")
}

// connectionTestFlags registers the flags of connection test.
func connectionTestFlags(fs *flag.FlagSet, c *cli) {
	fs.Var(&c.conn.path, "path", `also look up this `+"`file`"+`, e.g. "exports/accounts_{yyyy-MM-dd}.csv"`)
	fs.Var(&c.conn.pattern, "pattern", `also find the newest file matching this `+"`glob`"+`, e.g. "exports/accounts_*.csv"`)
	fs.StringVar(&c.conn.timeZone, "time-zone", "", "IANA time zone of the date placeholders, e.g. Europe/Berlin (default UTC)")
}

// connectionLsFlags registers the flags of connection ls.
func connectionLsFlags(fs *flag.FlagSet, c *cli) {
	fs.BoolVar(&c.conn.all, "all", false, "list every page")
	fs.StringVar(&c.conn.pageToken, "page-token", "", "continue a listing where the last page ended")
	fs.IntVar(&c.conn.pageSize, "page-size", 0, "entries per page (default: the API's, 100; at most 1000)")
}

// jobConnectionFlags registers the flags that point a job (from -f FILE, or
// job suggest) at a stored connection.
func jobConnectionFlags(fs *flag.FlagSet, c *cli) {
	fs.StringVar(&c.conn.connection, "connection", "", `read the file from this stored connection ("acme-s3" or "connections/acme-s3")`)
	fs.Var(&c.conn.path, "path", `with --connection: the file's `+"`path`"+`, with date placeholders such as {yyyy-MM-dd}`)
	fs.Var(&c.conn.pattern, "pattern", `with --connection: take the newest file matching this `+"`glob`"+`, e.g. "exports/accounts_*.csv"`)
}

// ConnectionName turns a connection id or resource name into the resource
// name.
func ConnectionName(s string) (string, error) {
	id := strings.TrimPrefix(s, "connections/")
	if id == "" || strings.Contains(id, "/") {
		return "", fmt.Errorf("%q is not a connection: want a connection id (acme-s3) or name (connections/acme-s3)", s)
	}
	return "connections/" + id, nil
}

// applyJobConnection points job at the stored connection of --connection
// and the file of --path or --pattern.
func (c *cli) applyJobConnection(job *intakev1.Job) error {
	o := &c.conn
	if o.path.set && o.pattern.set {
		return command.Usagef("give --path or --pattern, not both")
	}
	if o.connection != "" {
		name, err := ConnectionName(o.connection)
		if err != nil {
			return command.Usagef("--connection: %v", err)
		}
		job.ConnectionName = name
		job.Connection = nil
		job.File = nil
	}
	switch {
	case o.path.set:
		job.File = &intakev1.FileSelector{Selector: &intakev1.FileSelector_Path{Path: o.path.v}}
	case o.pattern.set:
		job.File = &intakev1.FileSelector{Selector: &intakev1.FileSelector_Pattern{Pattern: o.pattern.v}}
	default:
		return nil
	}
	if job.GetConnectionName() == "" {
		return command.Usagef("--path and --pattern choose a file of a stored connection: give --connection NAME too")
	}
	return nil
}

func (c *cli) connectionCreate(ctx context.Context, args []string) error {
	o := &c.conn
	conn := &intakev1.Connection{}
	if o.file != "" {
		var err error
		if conn, err = c.readConnectionFile(); err != nil {
			return err
		}
	}
	id := ""
	switch {
	case len(args) == 1:
		name, err := ConnectionName(args[0])
		if err != nil {
			return command.Usagef("%v", err)
		}
		id = strings.TrimPrefix(name, "connections/")
	case conn.GetName() != "":
		name, err := ConnectionName(conn.GetName())
		if err != nil {
			return fmt.Errorf("%s: name: %w", o.file, err)
		}
		id = strings.TrimPrefix(name, "connections/")
	}
	conn.Name = ""
	clearConnectionOutput(conn)
	kind := connectionKind(conn)
	if o.kind != "" {
		if !slices.Contains(connectionKinds, o.kind) {
			return command.Usagef("--kind %q: want one of %s", o.kind, strings.Join(connectionKinds, ", "))
		}
		if kind != "" && kind != o.kind {
			return command.Usagef("--kind %s, but %s holds a %s connection", o.kind, o.file, kind)
		}
		kind = o.kind
	}
	if kind == "" {
		return command.Usagef("which kind of connection? give --kind s3|sftp|http|local with its flags, or -f FILE (see intakectl connection create -h)")
	}
	if err := o.checkFlagsOf(kind, ""); err != nil {
		return err
	}
	if _, err := c.applyConnectionFlags(conn, nil, kind, true); err != nil {
		return err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	created, err := c.conns.CreateConnection(ctx, &intakev1.CreateConnectionRequest{Connection: conn, ConnectionId: id})
	if err != nil {
		return c.apiError("create connection", err)
	}
	if c.output == "json" {
		return c.printJSON(created)
	}
	fmt.Fprintf(c.sys.Stdout, "created %s\n", created.GetName())
	printConnection(c.sys.Stdout, created)
	fmt.Fprintf(c.sys.Stderr, "check it with: intakectl connection test %s\n", strings.TrimPrefix(created.GetName(), "connections/"))
	return nil
}

func (c *cli) connectionUpdate(ctx context.Context, args []string) error {
	o := &c.conn
	var fromFile *intakev1.Connection
	if o.file != "" {
		var err error
		if fromFile, err = c.readConnectionFile(); err != nil {
			return err
		}
	}
	var arg string
	switch {
	case len(args) == 1:
		arg = args[0]
	case fromFile.GetName() != "":
		arg = fromFile.GetName()
	case o.file != "":
		return command.Usagef("which connection? give its NAME, or a name in %s", o.file)
	default:
		return command.Usagef("which connection? give its NAME")
	}
	name, err := ConnectionName(arg)
	if err != nil {
		return command.Usagef("%v", err)
	}
	if o.kind != "" && !slices.Contains(connectionKinds, o.kind) {
		return command.Usagef("--kind %q: want one of %s", o.kind, strings.Join(connectionKinds, ", "))
	}
	if fromFile == nil && o.kind == "" && !o.displayName.set && !o.description.set && o.caFile == "" && !slices.Contains(slices.Collect(maps.Values(o.givenKindFlags())), true) {
		return command.Usagef("nothing to change: give the flags of the settings to change (see intakectl connection update -h), or -f FILE")
	}
	ctx, cancel := c.call(ctx)
	defer cancel()

	req := &intakev1.UpdateConnectionRequest{}
	if fromFile != nil {
		// The file replaces the settings (an empty mask): stored secrets
		// stay unless the file or a flag gives new ones.
		clearConnectionOutput(fromFile)
		kind := connectionKind(fromFile)
		if o.kind != "" {
			if kind != "" && kind != o.kind {
				return command.Usagef("--kind %s, but %s holds a %s connection", o.kind, o.file, kind)
			}
			kind = o.kind
		}
		if kind == "" {
			return command.Usagef("%s holds no connection kind (s3, sftp, http or local)", o.file)
		}
		if err := o.checkFlagsOf(kind, ""); err != nil {
			return err
		}
		if _, err := c.applyConnectionFlags(fromFile, nil, kind, false); err != nil {
			return err
		}
		fromFile.Name = name
		req.Connection = fromFile
	} else {
		cur, err := c.conns.GetConnection(ctx, &intakev1.GetConnectionRequest{Name: name})
		if err != nil {
			return c.apiError("get connection "+name, err)
		}
		curKind := connectionKind(cur)
		upd := &intakev1.Connection{Name: name}
		var paths []string
		if o.kind != "" && o.kind != curKind {
			// Another kind: its settings replace the old ones whole.
			if err := o.checkFlagsOf(o.kind, ""); err != nil {
				return err
			}
			ps, err := c.applyConnectionFlags(upd, nil, o.kind, true)
			if err != nil {
				return err
			}
			paths = append(paths, o.kind)
			for _, p := range ps {
				if !strings.Contains(p, ".") {
					paths = append(paths, p) // display_name, description
				}
			}
		} else {
			if err := o.checkFlagsOf(curKind, name); err != nil {
				return err
			}
			ps, err := c.applyConnectionFlags(upd, cur, curKind, false)
			if err != nil {
				return err
			}
			paths = append(paths, ps...)
		}
		if len(paths) == 0 {
			return command.Usagef("nothing to change: give the flags of the settings to change (see intakectl connection update -h), or -f FILE")
		}
		req.Connection = upd
		req.UpdateMask = &fieldmaskpb.FieldMask{Paths: paths}
	}
	updated, err := c.conns.UpdateConnection(ctx, req)
	if err != nil {
		return c.apiError("update connection "+name, err)
	}
	if c.output == "json" {
		return c.printJSON(updated)
	}
	fmt.Fprintf(c.sys.Stdout, "updated %s\n", updated.GetName())
	printConnection(c.sys.Stdout, updated)
	return nil
}

func (c *cli) connectionGet(ctx context.Context, args []string) error {
	name, err := ConnectionName(args[0])
	if err != nil {
		return command.Usagef("%v", err)
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	conn, err := c.conns.GetConnection(ctx, &intakev1.GetConnectionRequest{Name: name})
	if err != nil {
		return c.apiError("get connection "+name, err)
	}
	if c.output == "json" {
		return c.printJSON(conn)
	}
	printConnection(c.sys.Stdout, conn)
	return nil
}

func (c *cli) connectionList(ctx context.Context, _ []string) error {
	ctx, cancel := c.call(ctx)
	defer cancel()
	all := &intakev1.ListConnectionsResponse{}
	for token := ""; ; {
		resp, err := c.conns.ListConnections(ctx, &intakev1.ListConnectionsRequest{PageSize: 100, PageToken: token})
		if err != nil {
			return c.apiError("list connections", err)
		}
		all.Connections = append(all.Connections, resp.GetConnections()...)
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	if c.output == "json" {
		return c.printJSON(all)
	}
	if len(all.GetConnections()) == 0 {
		fmt.Fprintln(c.sys.Stdout, "no connections; create one with: intakectl connection create NAME --kind s3|sftp|http ...")
		return nil
	}
	tw := tabwriter.NewWriter(c.sys.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tWHERE\tUSED BY\tDISPLAY NAME")
	for _, conn := range all.GetConnections() {
		n := len(conn.GetUsedBy())
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d %s\t%s\n", conn.GetName(), dash(connectionKind(conn)), ConnectionWhere(conn),
			n, plural(n, "job", "jobs"), dash(conn.GetDisplayName()))
	}
	return tw.Flush()
}

func (c *cli) connectionDelete(ctx context.Context, args []string) error {
	name, err := ConnectionName(args[0])
	if err != nil {
		return command.Usagef("%v", err)
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	if _, err := c.conns.DeleteConnection(ctx, &intakev1.DeleteConnectionRequest{Name: name}); err != nil {
		if st := status.Convert(err); st.Code() == codes.FailedPrecondition {
			for _, d := range st.Details() {
				pf, ok := d.(*errdetails.PreconditionFailure)
				if !ok {
					continue
				}
				for _, v := range pf.GetViolations() {
					if v.GetType() == "CONNECTION_IN_USE" {
						return fmt.Errorf("connection %s was not deleted: it is %s", name, v.GetDescription())
					}
				}
			}
		}
		return c.apiError("delete connection "+name, err)
	}
	if c.output == "table" {
		fmt.Fprintf(c.sys.Stdout, "deleted %s\n", name)
	}
	return nil
}

func (c *cli) connectionTest(ctx context.Context, args []string) error {
	name, err := ConnectionName(args[0])
	if err != nil {
		return command.Usagef("%v", err)
	}
	o := &c.conn
	req := &intakev1.TestConnectionRequest{Name: name, TimeZone: o.timeZone}
	switch {
	case o.path.set && o.pattern.set:
		return command.Usagef("give --path or --pattern, not both")
	case o.path.set:
		req.File = &intakev1.FileSelector{Selector: &intakev1.FileSelector_Path{Path: o.path.v}}
	case o.pattern.set:
		req.File = &intakev1.FileSelector{Selector: &intakev1.FileSelector_Pattern{Pattern: o.pattern.v}}
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.conns.TestConnection(ctx, req)
	if err != nil {
		return c.apiError("test connection "+name, err)
	}
	if c.output == "json" {
		if err := c.printJSON(resp); err != nil {
			return err
		}
	} else {
		printTest(c.sys.Stdout, resp)
	}
	if !resp.GetOk() {
		return &command.ExitError{Code: 1}
	}
	return nil
}

// printTest prints the outcome of a connection test.
func printTest(w io.Writer, resp *intakev1.TestConnectionResponse) {
	if !resp.GetOk() {
		fmt.Fprintf(w, "FAILED: %s: %s\n", ConnectionErrorKind(resp.GetErrorKind()), resp.GetMessage())
		fmt.Fprintf(w, "Latency: %d ms\n", resp.GetLatencyMs())
		return
	}
	msg, f := resp.GetMessage(), resp.GetFile()
	if i := strings.Index(msg, "; file "); i >= 0 && f != nil {
		msg = msg[:i] // the File line says it, in local time
	}
	fmt.Fprintf(w, "OK: %s\n", msg)
	fmt.Fprintf(w, "Latency: %d ms\n", resp.GetLatencyMs())
	if f != nil {
		fmt.Fprintf(w, "File:    %s\n", fileLine(f))
	}
}

// fileLine is "path (1.2 KiB, modified 2026-11-26 05:00:00 UTC)".
func fileLine(f *intakev1.FileInfo) string {
	parts := []string{runview.Bytes(f.GetSize())}
	if t := f.GetModifyTime(); t != nil {
		parts = append(parts, "modified "+runview.Time(t.AsTime()))
	}
	return f.GetPath() + " (" + strings.Join(parts, ", ") + ")"
}

func (c *cli) connectionLs(ctx context.Context, args []string) error {
	name, err := ConnectionName(args[0])
	if err != nil {
		return command.Usagef("%v", err)
	}
	prefix := ""
	if len(args) == 2 {
		prefix = args[1]
	}
	o := &c.conn
	if o.pageSize < 0 {
		return command.Usagef("--page-size must not be negative")
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	all := &intakev1.ListFilesResponse{}
	for token := o.pageToken; ; {
		resp, err := c.conns.ListFiles(ctx, &intakev1.ListFilesRequest{Name: name, Prefix: prefix, PageSize: int32(o.pageSize), PageToken: token})
		if err != nil {
			what := "list the files of " + name
			if prefix != "" {
				what += " under " + strconv.Quote(prefix)
			}
			return c.apiError(what, err)
		}
		all.Files = append(all.Files, resp.GetFiles()...)
		token = resp.GetNextPageToken()
		if token == "" || !o.all {
			all.NextPageToken = token
			break
		}
	}
	if c.output == "json" {
		return c.printJSON(all)
	}
	if len(all.GetFiles()) == 0 {
		where := "at the root"
		if prefix != "" {
			where = "under " + strconv.Quote(prefix)
		}
		fmt.Fprintf(c.sys.Stdout, "no files %s of %s\n", where, name)
	} else {
		tw := tabwriter.NewWriter(c.sys.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PATH\tSIZE\tMODIFIED")
		for _, f := range all.GetFiles() {
			if f.GetDirectory() {
				fmt.Fprintf(tw, "%s\t-\t%s\n", strings.TrimSuffix(f.GetPath(), "/")+"/", timeOrDash(f.GetModifyTime().AsTime(), f.GetModifyTime() != nil))
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", f.GetPath(), runview.Bytes(f.GetSize()), timeOrDash(f.GetModifyTime().AsTime(), f.GetModifyTime() != nil))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if t := all.GetNextPageToken(); t != "" {
		cmd := "intakectl connection ls " + strings.TrimPrefix(name, "connections/")
		if prefix != "" {
			cmd += " " + shellQuote(prefix)
		}
		fmt.Fprintf(c.sys.Stderr, "more files: %s --page-token %s (or --all for every page)\n", cmd, shellQuote(t))
	}
	return nil
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=+@%,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// printConnection prints a connection's settings: secrets only as set or
// not set.
func printConnection(w io.Writer, conn *intakev1.Connection) {
	line := func(label, value string) {
		if label != "" {
			label += ":"
		}
		fmt.Fprintf(w, "%-16s%s\n", label, value)
	}
	secret := func(set bool) string { return map[bool]string{true: "set", false: "not set"}[set] }
	line("Name", conn.GetName())
	if conn.GetDisplayName() != "" {
		line("Display name", conn.GetDisplayName())
	}
	if conn.GetDescription() != "" {
		line("Description", conn.GetDescription())
	}
	line("Kind", dash(connectionKind(conn)))
	switch k := conn.GetKind().(type) {
	case *intakev1.Connection_S3:
		s := k.S3
		line("Bucket", s.GetBucket())
		line("Endpoint", orDefault(s.GetEndpoint(), "AWS S3"))
		line("Region", orDefault(s.GetRegion(), "us-east-1 (default)"))
		line("Path style", yesNo(s.GetPathStyle()))
		if s.GetAccessKeyId() == "" {
			line("Credentials", "the default credential chain (environment, shared config, web identity, instance or pod role)")
		} else {
			line("Access key id", s.GetAccessKeyId())
			line("Secret key", secret(s.GetSecretAccessKeySet()))
			if s.GetSessionTokenSet() {
				line("Session token", "set")
			}
		}
		if s.GetCaPem() != "" {
			line("Extra CA", certificates(s.GetCaPem()))
		}
	case *intakev1.Connection_Sftp:
		s := k.Sftp
		line("Host", s.GetHost())
		port := s.GetPort()
		if port == 0 {
			port = 22
		}
		line("Port", strconv.Itoa(int(port)))
		line("User", s.GetUser())
		line("Password", secret(s.GetPasswordSet()))
		line("Private key", secret(s.GetPrivateKeySet()))
		pins := hostKeyPins(s.GetHostKey())
		if len(pins) == 0 {
			line("Host key", "- (not pinned: the connection is refused)")
		}
		for i, p := range pins {
			label := "Host key"
			if i > 0 {
				label = ""
			}
			line(label, oneLine(p, 72))
		}
	case *intakev1.Connection_Http:
		h := k.Http
		line("URL", h.GetUrl())
		names := make([]string, 0, len(h.GetHeaders()))
		for n := range h.GetHeaders() {
			names = append(names, n)
		}
		slices.Sort(names)
		for i, n := range names {
			label := "Headers"
			if i > 0 {
				label = ""
			}
			line(label, n+": "+h.GetHeaders()[n])
		}
		switch {
		case h.GetBasic() != nil:
			line("Auth", fmt.Sprintf("basic, user %q", h.GetBasic().GetUsername()))
			line("Password", secret(h.GetBasic().GetPasswordSet()))
		case h.GetBearer() != nil:
			line("Auth", "bearer token")
			line("Token", secret(h.GetBearer().GetTokenSet()))
		default:
			line("Auth", "none")
		}
		if h.GetCaPem() != "" {
			line("Extra CA", certificates(h.GetCaPem()))
		}
	case *intakev1.Connection_Local:
		line("Directory", k.Local.GetPath())
	}
	used := "no jobs"
	if u := conn.GetUsedBy(); len(u) > 0 {
		used = strings.Join(u, ", ")
	}
	line("Used by", used)
	if t := conn.GetCreateTime(); t != nil {
		line("Created", runview.Time(t.AsTime()))
	}
	if t := conn.GetUpdateTime(); t != nil {
		line("Updated", runview.Time(t.AsTime()))
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// certificates counts the certificates of a PEM bundle, in words.
func certificates(pem string) string {
	n := strings.Count(pem, "-----BEGIN CERTIFICATE-----")
	return fmt.Sprintf("%d %s", n, plural(n, "certificate", "certificates"))
}

// hostKeyPins are the pins of an SFTP host key setting, one a line
// (comments and blank lines dropped).
func hostKeyPins(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// ConnectionWhere says where a connection points, without secrets:
// "s3://bucket (minio.internal:9000)", "sftp://user@host:22",
// "https://exports.example.com/", "/srv/exports".
func ConnectionWhere(conn *intakev1.Connection) string {
	switch k := conn.GetKind().(type) {
	case *intakev1.Connection_S3:
		w := "s3://" + k.S3.GetBucket()
		if e := k.S3.GetEndpoint(); e != "" {
			if u, err := url.Parse(e); err == nil && u.Host != "" {
				e = u.Host
			}
			w += " (" + e + ")"
		}
		return w
	case *intakev1.Connection_Sftp:
		port := k.Sftp.GetPort()
		if port == 0 {
			port = 22
		}
		return fmt.Sprintf("sftp://%s@%s:%d", k.Sftp.GetUser(), k.Sftp.GetHost(), port)
	case *intakev1.Connection_Http:
		return redactURL(k.Http.GetUrl())
	case *intakev1.Connection_Local:
		return k.Local.GetPath()
	}
	return "-"
}

// redactURL drops the user information of a URL.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	u.User = nil
	return u.String()
}

// connectionKind is the --kind of a connection; "" when it has none.
func connectionKind(conn *intakev1.Connection) string {
	switch conn.GetKind().(type) {
	case *intakev1.Connection_S3:
		return kindS3
	case *intakev1.Connection_Sftp:
		return kindSFTP
	case *intakev1.Connection_Http:
		return kindHTTP
	case *intakev1.Connection_Local:
		return kindLocal
	}
	return ""
}

// ConnectionErrorKind is why a connection failed, in words.
func ConnectionErrorKind(k intakev1.ConnectionErrorKind) string {
	switch k {
	case intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_UNKNOWN_HOST:
		return "unknown host"
	case intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_CONNECTION_REFUSED:
		return "connection refused"
	case intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_TIMEOUT:
		return "timed out"
	case intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_AUTHENTICATION_FAILED:
		return "authentication failed"
	case intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_HOST_KEY_MISMATCH:
		return "host key mismatch"
	case intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_TLS:
		return "TLS error"
	case intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_BUCKET_NOT_FOUND:
		return "bucket not found"
	case intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_FILE_NOT_FOUND:
		return "file not found"
	case intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_PERMISSION_DENIED:
		return "permission denied"
	case intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_NO_MATCH:
		return "no file matches"
	case intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_INVALID_CONFIG:
		return "invalid settings"
	}
	return "error"
}

// checkFlagsOf refuses the flags of kinds other than kind. name is the
// stored connection being updated ("" on create).
func (o *connOpts) checkFlagsOf(kind, name string) error {
	given := o.givenKindFlags()
	for _, k := range connectionKinds {
		if k == kind {
			continue
		}
		for _, f := range kindFlags[k] {
			if !given[f] {
				continue
			}
			if name != "" {
				return command.Usagef("--%s is a setting of %s connections, and %s is of kind %s; to change its kind, give --kind %s with all of that kind's settings",
					f, k, name, kind, k)
			}
			return command.Usagef("--%s is a setting of %s connections, not of %s connections", f, k, kind)
		}
	}
	if o.caFile != "" && kind != kindS3 && kind != kindHTTP {
		return command.Usagef("--ca-file is a setting of s3 and http connections, not of %s connections", kind)
	}
	return nil
}

// givenKindFlags are the kind-specific flags that were given.
func (o *connOpts) givenKindFlags() map[string]bool {
	return map[string]bool{
		"endpoint": o.endpoint.set, "region": o.region.set, "bucket": o.bucket.set, "path-style": o.pathStyle.set,
		"access-key-id": o.accessKeyID.set, "secret-access-key-file": o.secretAccessKeyFile != "", "session-token-file": o.sessionTokenFile != "",
		"host": o.host.set, "port": o.port.set, "user": o.user.set, "password-file": o.passwordFile != "",
		"private-key-file": o.privateKeyFile != "", "private-key-passphrase-file": o.privateKeyPassphraseFile != "",
		"host-key": o.hostKey.set, "host-key-file": o.hostKeyFile != "",
		"url": o.url.set, "header": o.headers.set || o.headers.credential != "", "basic-user": o.basicUser.set, "basic-password-file": o.basicPasswordFile != "",
		"bearer-token-file": o.bearerTokenFile != "",
		"path":              o.path.set,
	}
}

// applyConnectionFlags sets the flags' values on conn, a connection of
// kind (its message is created when missing), and returns the update mask
// paths of what it set. cur is the stored connection of an update by
// fields (nil otherwise); creating says conn is to be saved whole, so the
// secrets its settings need are asked for.
func (c *cli) applyConnectionFlags(conn, cur *intakev1.Connection, kind string, creating bool) ([]string, error) {
	o := &c.conn
	var paths []string
	str := func(prefix, field string, dst *string, v optString) {
		if v.set {
			*dst = v.v
			paths = append(paths, prefix+field)
		}
	}
	str("", "display_name", &conn.DisplayName, o.displayName)
	str("", "description", &conn.Description, o.description)
	switch kind {
	case kindS3:
		s := conn.GetS3()
		if s == nil {
			s = &intakev1.S3Connection{}
			conn.Kind = &intakev1.Connection_S3{S3: s}
		}
		str("s3.", "endpoint", &s.Endpoint, o.endpoint)
		str("s3.", "region", &s.Region, o.region)
		str("s3.", "bucket", &s.Bucket, o.bucket)
		str("s3.", "access_key_id", &s.AccessKeyId, o.accessKeyID)
		if o.pathStyle.set {
			s.PathStyle = o.pathStyle.v
			paths = append(paths, "s3.path_style")
		}
		if o.caFile != "" {
			pem, err := readTextFile("--ca-file", o.caFile)
			if err != nil {
				return nil, err
			}
			s.CaPem = pem
			paths = append(paths, "s3.ca_pem")
		}
		needed := s.GetSecretAccessKey() == "" && (creating && s.GetAccessKeyId() != "" || o.accessKeyID.set && o.accessKeyID.v != "")
		v, ok, err := c.secret(secretSpec{flag: "--secret-access-key-file", file: o.secretAccessKeyFile, env: envS3Secret,
			needed: needed, what: "the secret access key of access key id " + s.GetAccessKeyId()})
		if err != nil {
			return nil, err
		}
		if ok {
			s.SecretAccessKey = v
			paths = append(paths, "s3.secret_access_key")
		}
		if v, ok, err = c.secret(secretSpec{flag: "--session-token-file", file: o.sessionTokenFile}); err != nil {
			return nil, err
		} else if ok {
			s.SessionToken = v
			paths = append(paths, "s3.session_token")
		}
	case kindSFTP:
		s := conn.GetSftp()
		if s == nil {
			s = &intakev1.SftpConnection{}
			conn.Kind = &intakev1.Connection_Sftp{Sftp: s}
		}
		str("sftp.", "host", &s.Host, o.host)
		str("sftp.", "user", &s.User, o.user)
		if o.port.set {
			s.Port = int32(o.port.v)
			paths = append(paths, "sftp.port")
		}
		switch {
		case o.hostKey.set && o.hostKeyFile != "":
			return nil, command.Usagef("give --host-key or --host-key-file, not both")
		case o.hostKey.set:
			s.HostKey = o.hostKey.v
			paths = append(paths, "sftp.host_key")
		case o.hostKeyFile != "":
			keys, err := readTextFile("--host-key-file", o.hostKeyFile)
			if err != nil {
				return nil, err
			}
			s.HostKey = strings.TrimSpace(keys)
			paths = append(paths, "sftp.host_key")
		}
		if o.privateKeyFile != "" {
			key, err := readTextFile("--private-key-file", o.privateKeyFile)
			if err != nil {
				return nil, err
			}
			s.PrivateKey = key
			paths = append(paths, "sftp.private_key")
		}
		if v, ok, err := c.secret(secretSpec{flag: "--private-key-passphrase-file", file: o.privateKeyPassphraseFile}); err != nil {
			return nil, err
		} else if ok {
			s.PrivateKeyPassphrase = v
			paths = append(paths, "sftp.private_key_passphrase")
		}
		needed := creating && s.GetPassword() == "" && s.GetPrivateKey() == ""
		v, ok, err := c.secret(secretSpec{flag: "--password-file", file: o.passwordFile, env: envSFTPPassword, needed: needed,
			what: fmt.Sprintf("the password of %s on %s (or --private-key-file)", s.GetUser(), s.GetHost())})
		if err != nil {
			return nil, err
		}
		if ok {
			s.Password = v
			paths = append(paths, "sftp.password")
		}
	case kindHTTP:
		h := conn.GetHttp()
		if h == nil {
			h = &intakev1.HttpConnection{}
			conn.Kind = &intakev1.Connection_Http{Http: h}
		}
		str("http.", "url", &h.Url, o.url)
		if n := o.headers.credential; n != "" {
			return nil, command.Usagef("--header %s: it holds credentials, and headers are shown to whoever reads the connection; use --basic-user with --basic-password-file, or --bearer-token-file", n)
		}
		if o.headers.set {
			h.Headers = o.headers.m
			paths = append(paths, "http.headers")
		}
		if o.caFile != "" {
			pem, err := readTextFile("--ca-file", o.caFile)
			if err != nil {
				return nil, err
			}
			h.CaPem = pem
			paths = append(paths, "http.ca_pem")
		}
		basic := o.basicUser.set || o.basicPasswordFile != ""
		switch {
		case basic && o.bearerTokenFile != "":
			return nil, command.Usagef("give basic authentication (--basic-user, --basic-password-file) or --bearer-token-file, not both")
		case basic:
			// Into basic auth from none or bearer: the whole of it.
			whole := h.GetBasic() == nil && cur.GetHttp().GetBasic() == nil
			if h.GetBasic() == nil {
				h.Auth = &intakev1.HttpConnection_Basic{Basic: &intakev1.BasicAuth{}}
			}
			b := h.GetBasic()
			if o.basicUser.set {
				b.Username = o.basicUser.v
			}
			needed := (creating || whole) && b.GetPassword() == "" && o.basicUser.set
			v, ok, err := c.secret(secretSpec{flag: "--basic-password-file", file: o.basicPasswordFile, needed: needed,
				what: fmt.Sprintf("the password of %s", b.GetUsername())})
			if err != nil {
				return nil, err
			}
			if ok {
				b.Password = v
			}
			switch {
			case whole:
				paths = append(paths, "http.basic")
			default:
				if o.basicUser.set {
					paths = append(paths, "http.basic.username")
				}
				if ok {
					paths = append(paths, "http.basic.password")
				}
			}
		case o.bearerTokenFile != "":
			v, _, err := c.secret(secretSpec{flag: "--bearer-token-file", file: o.bearerTokenFile})
			if err != nil {
				return nil, err
			}
			h.Auth = &intakev1.HttpConnection_Bearer{Bearer: &intakev1.BearerAuth{Token: v}}
			paths = append(paths, "http.bearer")
		}
	case kindLocal:
		l := conn.GetLocal()
		if l == nil {
			l = &intakev1.LocalConnection{}
			conn.Kind = &intakev1.Connection_Local{Local: l}
		}
		str("local.", "path", &l.Path, o.path)
	}
	return paths, nil
}

// secretSpec says where a secret may come from.
type secretSpec struct {
	// flag names a file holding the secret ("-": standard input).
	flag, file string
	// needed: without the file, read env or ask on a terminal, and fail
	// when neither gives one.
	needed bool
	env    string
	// what is the secret, for the prompt and the error ("the password of …").
	what string
}

// secret reads a secret from its file, its environment variable or the
// terminal. ok is false when there is none and none is needed. Errors name
// the flag or file, never the secret.
func (c *cli) secret(s secretSpec) (value string, ok bool, err error) {
	if s.file != "" {
		var data []byte
		if s.file == "-" {
			if c.conn.stdinTaken != "" {
				return "", false, command.Usagef("%s - and %s - both read standard input: give one of them a file", c.conn.stdinTaken, s.flag)
			}
			c.conn.stdinTaken = s.flag
			data, err = io.ReadAll(c.sys.Stdin)
		} else {
			data, err = os.ReadFile(s.file)
		}
		if err != nil {
			return "", false, fmt.Errorf("%s: read the secret: %w", s.flag, err)
		}
		v := strings.TrimRight(string(data), "\r\n")
		if v == "" {
			where := s.file
			if s.file == "-" {
				where = "standard input"
			}
			return "", false, command.Usagef("%s: %s is empty", s.flag, where)
		}
		return v, true, nil
	}
	if !s.needed {
		return "", false, nil
	}
	if s.env != "" && c.sys.LookupEnv != nil {
		if v, found := c.sys.LookupEnv(s.env); found && v != "" {
			return v, true, nil
		}
	}
	if f, isFile := c.sys.Stdin.(*os.File); isFile && term.IsTerminal(int(f.Fd())) && c.conn.stdinTaken == "" {
		fmt.Fprintf(c.sys.Stderr, "%s%s (not shown): ", strings.ToUpper(s.what[:1]), s.what[1:])
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.sys.Stderr)
		if err != nil {
			return "", false, fmt.Errorf("read %s from the terminal: %w", s.what, err)
		}
		if v := strings.TrimSpace(string(b)); v != "" {
			return v, true, nil
		}
		return "", false, command.Usagef("%s is empty", s.what)
	}
	how := s.flag + ` FILE ("-": standard input)`
	if s.env != "" {
		how += " or set " + s.env
	}
	return "", false, command.Usagef("%s is needed: give %s; it is never a plain flag, so that it stays out of the shell's history", s.what, how)
}

// readTextFile reads a non-secret file a flag names (a CA bundle, host
// keys) or a private key; errors name the flag and the file.
func readTextFile(flagName, path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", flagName, err)
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return "", command.Usagef("%s: %s is empty", flagName, path)
	}
	return string(data), nil
}

// readConnectionFile reads -f: an intake.v1.Connection as YAML or JSON
// (proto JSON names).
func (c *cli) readConnectionFile() (*intakev1.Connection, error) {
	path := c.conn.file
	var (
		data []byte
		err  error
	)
	if path == "-" {
		c.conn.stdinTaken = "-f"
		data, err = io.ReadAll(c.sys.Stdin)
		path = "standard input"
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("read connection file: %w", err)
	}
	conn, err := ParseConnection(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return conn, nil
}

// ParseConnection reads an intake.v1.Connection written as YAML or JSON
// with its proto JSON field names (displayName or display_name). Unknown
// fields are errors.
func ParseConnection(data []byte) (*intakev1.Connection, error) {
	conn := &intakev1.Connection{}
	if err := jobfile.ParseMessage(data, conn, "connection", "name, s3, sftp, http or local, …"); err != nil {
		return nil, err
	}
	return conn, nil
}

// clearConnectionOutput drops the output-only fields of a connection read
// from a file (e.g. one printed by connection get -o json).
func clearConnectionOutput(conn *intakev1.Connection) {
	conn.CreateTime, conn.UpdateTime, conn.Etag, conn.UsedBy = nil, nil, "", nil
	switch k := conn.GetKind().(type) {
	case *intakev1.Connection_S3:
		k.S3.SecretAccessKeySet, k.S3.SessionTokenSet = false, false
	case *intakev1.Connection_Sftp:
		k.Sftp.PasswordSet, k.Sftp.PrivateKeySet = false, false
	case *intakev1.Connection_Http:
		if b := k.Http.GetBasic(); b != nil {
			b.PasswordSet = false
		}
		if b := k.Http.GetBearer(); b != nil {
			b.TokenSet = false
		}
	}
}

// jobSource is where a job reads its file: a stored connection and the
// file's path or pattern, or an inline connection (Source).
func jobSource(j *intakev1.Job) string {
	name := j.GetConnectionName()
	if name == "" {
		return Source(j.GetConnection())
	}
	switch f := j.GetFile().GetSelector().(type) {
	case *intakev1.FileSelector_Path:
		return name + ": " + f.Path
	case *intakev1.FileSelector_Pattern:
		return name + ": " + f.Pattern + " (pattern: the newest matching file)"
	}
	return name + " (no file chosen)"
}

// runWithSourceDetails is r with the size and modification time of its
// source file added to Run.source, for runview.Summary.
func runWithSourceDetails(r *intakev1.Run) *intakev1.Run {
	if r.GetSource() == "" || r.GetSourceSize() <= 0 && r.GetSourceModifyTime() == nil {
		return r
	}
	var parts []string
	if n := r.GetSourceSize(); n > 0 {
		parts = append(parts, runview.Bytes(n))
	}
	if t := r.GetSourceModifyTime(); t != nil {
		parts = append(parts, "modified "+runview.Time(t.AsTime()))
	}
	out := proto.Clone(r).(*intakev1.Run)
	out.Source += " (" + strings.Join(parts, ", ") + ")"
	return out
}

// optString is a string flag that knows whether it was given.
type optString struct {
	v   string
	set bool
}

func (o *optString) String() string { return o.v }

func (o *optString) Set(s string) error {
	o.v, o.set = s, true
	return nil
}

// optBool is a boolean flag that knows whether it was given.
type optBool struct{ v, set bool }

func (o *optBool) String() string   { return strconv.FormatBool(o.v) }
func (o *optBool) IsBoolFlag() bool { return true }

func (o *optBool) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("%q is not true or false", s)
	}
	o.v, o.set = b, true
	return nil
}

// optInt is an integer flag that knows whether it was given.
type optInt struct {
	v   int
	set bool
}

func (o *optInt) String() string { return strconv.Itoa(o.v) }

func (o *optInt) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q is not a port (1-65535)", s)
	}
	o.v, o.set = n, true
	return nil
}

// headerFlag collects NAME=VALUE headers. A credentials header is not
// refused by Set, whose error the flag package prints with the value: it
// is remembered in credential and refused without it.
type headerFlag struct {
	m          map[string]string
	set        bool
	credential string
}

func (h *headerFlag) String() string {
	if h == nil {
		return ""
	}
	var parts []string
	for k, v := range h.m {
		parts = append(parts, k+"="+v)
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

func (h *headerFlag) Set(s string) error {
	name, value, ok := strings.Cut(s, "=")
	name = strings.TrimSpace(name)
	if !ok || name == "" {
		return fmt.Errorf("want NAME=VALUE, e.g. X-Client=intake")
	}
	switch strings.ToLower(name) {
	case "authorization", "proxy-authorization", "cookie":
		h.credential = name
		return nil
	}
	if h.m == nil {
		h.m = map[string]string{}
	}
	h.m[name] = value
	h.set = true
	return nil
}

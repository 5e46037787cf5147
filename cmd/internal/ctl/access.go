package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/intakehq/intake/cmd/internal/command"
	"github.com/intakehq/intake/cmd/internal/runview"
	"github.com/intakehq/intake/pkg/tlsconf"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// Access control: the token intakectl sends with every call, and the
// commands that manage API tokens (`intakectl token create|list|revoke`,
// `intakectl whoami`).
//
// The token comes from --token (INTAKE_TOKEN), else from the file of
// --token-file (INTAKE_TOKEN_FILE), else from DefaultTokenFile when it
// exists (`intake dev` writes its admin token there). With --api-ca-file
// (INTAKE_API_CA_FILE, the CA of the API's certificate) or --api-tls (the
// system's CAs) intakectl calls the API over TLS; without, the token would cross the
// connection in plain text, so intakectl sends it only to a loopback
// address (127.0.0.1, ::1, localhost) unless --insecure (INTAKE_INSECURE)
// says a network you trust lies between (a cluster's, a port-forward, a
// VPN).

// BearerCredentials sends token as "authorization: Bearer <token>" with
// every call. It does not require transport security (the API may serve
// plaintext), so whoever dials with it decides where the token may go: see
// CheckTokenDestination.
func BearerCredentials(token string) credentials.PerRPCCredentials {
	return bearer(token)
}

type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity is false: the API serves gRPC without TLS.
func (bearer) RequireTransportSecurity() bool { return false }

// IsLoopback reports whether a host:port address is on this machine
// (127.0.0.0/8, ::1 or localhost), where a token sent in plain text stays.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CheckTokenDestination refuses to send a token in plain text to an
// address that is not on this machine, unless allowed: flag names the
// setting that allows it, for the error.
func CheckTokenDestination(addr string, allowed bool, flag string) error {
	if allowed || IsLoopback(addr) {
		return nil
	}
	return fmt.Errorf("%s is not a loopback address and the connection has no TLS, so the token would cross the network in plain text; "+
		"set %s if the network between is yours (a cluster network, a port-forward, a VPN)", addr, flag)
}

// DefaultTokenFile is where intakectl looks for its token when told
// nothing: $XDG_CONFIG_HOME/intake/token, else ~/.config/intake/token; ""
// when the environment names neither directory.
func DefaultTokenFile(lookupEnv func(string) (string, bool)) string {
	if dir, ok := lookupEnv("XDG_CONFIG_HOME"); ok && filepath.IsAbs(dir) {
		return filepath.Join(dir, "intake", "token")
	}
	if home, ok := lookupEnv("HOME"); ok && home != "" {
		return filepath.Join(home, ".config", "intake", "token")
	}
	return ""
}

// ReadTokenFile returns the first line of a token file that is neither
// empty nor a comment (#), trimmed. Its errors name the file, never its
// content.
func ReadTokenFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read the token file: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			return line, nil
		}
	}
	return "", fmt.Errorf("token file %s is empty", path)
}

// authOptions are intakectl's credentials and the flags of the token
// commands.
type authOptions struct {
	token     string
	tokenFile string
	insecure  bool
	caFile    string // --api-ca-file: TLS, verified with this CA
	tls       bool   // --api-tls: TLS, verified with the system's CAs
	// source says where the token came from, for errors: "" when there
	// is none.
	source string
	api    intakev1.AccessServiceClient

	// token create
	role    string
	tenant  string
	jobs    listFlag
	expires string
	name    string
	// token list
	all bool
}

// authFlags registers the credential flags of every command.
func (c *cli) authFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.auth.token, "token", "", "the API token to send (prefer INTAKE_TOKEN or a file: a flag shows in ps)")
	fs.StringVar(&c.auth.tokenFile, "token-file", "", "a file holding the API token (default: $XDG_CONFIG_HOME/intake/token or ~/.config/intake/token, if it exists)")
	fs.BoolVar(&c.auth.insecure, "insecure", false, "send the token to an address that is not on this machine in plain text, without TLS")
	fs.StringVar(&c.auth.caFile, "api-ca-file", "", "PEM file of the CA(s) that verify the API's certificate; turns TLS on")
	fs.BoolVar(&c.auth.tls, "api-tls", false, "call the API over TLS, verified with the system's CAs (see --api-ca-file)")
}

// authEnvFlags are the credential flags read from the environment too.
var authEnvFlags = []string{"token", "token-file", "insecure", "api-ca-file", "api-tls"}

// dial connects to the API with the caller's token, when there is one.
func (c *cli) dial() (*grpc.ClientConn, error) {
	a := &c.auth
	switch {
	case a.token != "":
		a.source = "--token (or INTAKE_TOKEN)"
	case a.tokenFile != "":
		tok, err := ReadTokenFile(a.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("--token-file (or INTAKE_TOKEN_FILE): %w", err)
		}
		a.token, a.source = tok, "the token file "+a.tokenFile
	default:
		if def := DefaultTokenFile(c.sys.LookupEnv); def != "" {
			tok, err := ReadTokenFile(def)
			switch {
			case err == nil:
				a.token, a.source = tok, "the token file "+def
			case !errors.Is(err, fs.ErrNotExist):
				return nil, err
			}
		}
	}
	transport, err := tlsconf.Client(a.caFile, a.tls)
	if err != nil {
		return nil, fmt.Errorf("--api-ca-file (or INTAKE_API_CA_FILE): %w", err)
	}
	var perRPC credentials.PerRPCCredentials
	if a.token != "" {
		tlsOn := a.caFile != "" || a.tls
		if err := CheckTokenDestination(c.addr, a.insecure || tlsOn, "--api-ca-file or --api-tls (TLS), or --insecure (or INTAKE_INSECURE=true)"); err != nil {
			return nil, fmt.Errorf("send the token of %s: %w", a.source, err)
		}
		perRPC = BearerCredentials(a.token)
	}
	conn, err := grpc.NewClient(c.addr, tlsconf.DialOptions(transport, perRPC)...)
	if err != nil {
		return nil, fmt.Errorf("connect to the API at %s: %w", c.addr, err)
	}
	c.auth.api = intakev1.NewAccessServiceClient(conn)
	return conn, nil
}

// authHint explains an Unauthenticated answer: where the token came from.
func (c *cli) authHint() string {
	if c.auth.source == "" {
		where := "~/.config/intake/token"
		if def := DefaultTokenFile(c.sys.LookupEnv); def != "" {
			where = def
		}
		return "intakectl sent no token: give one with --token-file FILE, INTAKE_TOKEN or INTAKE_TOKEN_FILE, or put it in " +
			where + " (intake dev writes its admin token there)"
	}
	return "intakectl sent the token of " + c.auth.source
}

// whoAmIArgs turns `intakectl whoami …` into `intakectl token whoami …`.
func whoAmIArgs(args []string) []string {
	if len(args) > 0 && args[0] == "whoami" {
		return append([]string{"token", "whoami"}, args[1:]...)
	}
	return args
}

// tokenCreateFlags are the flags of token create.
func tokenCreateFlags(fs *flag.FlagSet, c *cli) {
	fs.StringVar(&c.auth.role, "role", "", "what the token may do: admin, editor, viewer or trigger (required)")
	fs.Var(&c.auth.jobs, "job", "for --role trigger: a job it may trigger (NAME or jobs/NAME; repeat, or separate with commas)")
	fs.StringVar(&c.auth.tenant, "tenant", "", "the tenant of the token (only the bootstrap admin token may name another than its own)")
	fs.StringVar(&c.auth.expires, "expires", "", "the token expires after this long, e.g. 720h or 30d (default: never)")
	fs.StringVar(&c.auth.name, "name", "", "what the token is for, shown by token list")
}

// tokenCreateArgs is the usage of token create.
const tokenCreateArgs = "--role ROLE [--job JOB ...] [--tenant TENANT] [--expires DURATION] [--name TEXT]"

// tokenListFlags are the flags of token list.
func tokenListFlags(fs *flag.FlagSet, c *cli) {
	fs.BoolVar(&c.auth.all, "all", false, "include revoked and expired tokens")
}

// roles are the roles token create takes.
var roles = map[string]intakev1.Role{
	"admin": intakev1.Role_ROLE_ADMIN, "editor": intakev1.Role_ROLE_EDITOR,
	"viewer": intakev1.Role_ROLE_VIEWER, "trigger": intakev1.Role_ROLE_TRIGGER,
}

// RoleName is a role as intakectl prints it: "editor".
func RoleName(r intakev1.Role) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "ROLE_"))
}

// parseExpiry reads --expires: a Go duration (720h) or days (30d).
func parseExpiry(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n > 0 {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("--expires %q: want a positive duration such as 720h or 30d", s)
	}
	return d, nil
}

// tokenCreate makes an API token and prints its secret alone on standard
// output, so `TOKEN=$(intakectl token create --role viewer)` keeps it.
func (c *cli) tokenCreate(ctx context.Context, _ []string) error {
	a := &c.auth
	role, ok := roles[strings.ToLower(a.role)]
	if !ok {
		return command.Usagef("--role %q: want admin, editor, viewer or trigger", a.role)
	}
	tok := &intakev1.AccessToken{Role: role, DisplayName: a.name}
	if a.tenant != "" {
		tok.Tenant = "tenants/" + strings.TrimPrefix(a.tenant, "tenants/")
	}
	for _, j := range a.jobs {
		name, err := JobName(j)
		if err != nil {
			return command.Usagef("--job: %v", err)
		}
		tok.Jobs = append(tok.Jobs, name)
	}
	if role == intakev1.Role_ROLE_TRIGGER && len(tok.Jobs) == 0 {
		return command.Usagef("--role trigger needs the jobs it may trigger: --job NAME (one or more)")
	}
	if a.expires != "" {
		d, err := parseExpiry(a.expires)
		if err != nil {
			return command.Usagef("%v", err)
		}
		tok.ExpireTime = timestamppb.New(time.Now().Add(d))
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	made, err := a.api.CreateToken(ctx, &intakev1.CreateTokenRequest{Token: tok})
	if err != nil {
		return c.apiError("create a token", err)
	}
	if c.output == "json" {
		return c.printJSON(made)
	}
	fmt.Fprintln(c.sys.Stdout, made.GetToken())
	fmt.Fprintf(c.sys.Stderr, "%s (%s of %s%s): the token above is shown only now; keep it secret (send it as Authorization: Bearer <token>, or keep it in a file for --token-file)\n",
		made.GetName(), RoleName(made.GetRole()), made.GetTenant(), expiresNote(made.GetExpireTime()))
	return nil
}

func expiresNote(t *timestamppb.Timestamp) string {
	if t == nil {
		return ""
	}
	return ", expires " + runview.Time(t.AsTime())
}

// AccessTokenName turns a token id or resource name into the name.
func AccessTokenName(s string) (string, error) {
	id := strings.TrimPrefix(s, "tokens/")
	if id == "" || strings.Contains(id, "/") || strings.HasPrefix(id, "itk_") {
		return "", fmt.Errorf("%q is not a token name: want tokens/ID or ID, as intakectl token list prints (never the secret)", s)
	}
	return "tokens/" + id, nil
}

func (c *cli) tokenRevokeAccess(ctx context.Context, args []string) error {
	name, err := AccessTokenName(args[0])
	if err != nil {
		return command.Usagef("%v", err)
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	tok, err := c.auth.api.RevokeToken(ctx, &intakev1.RevokeTokenRequest{Name: name})
	if err != nil {
		return c.apiError("revoke token "+name, err)
	}
	if c.output == "json" {
		return c.printJSON(tok)
	}
	fmt.Fprintf(c.sys.Stdout, "revoked %s: the API refuses it from now on\n", name)
	return nil
}

func (c *cli) tokenListAccess(ctx context.Context, _ []string) error {
	ctx, cancel := c.call(ctx)
	defer cancel()
	resp := &intakev1.ListTokensResponse{}
	page := ""
	for {
		r, err := c.auth.api.ListTokens(ctx, &intakev1.ListTokensRequest{PageSize: 1000, PageToken: page, ShowInactive: c.auth.all})
		if err != nil {
			return c.apiError("list tokens", err)
		}
		resp.Tokens = append(resp.Tokens, r.GetTokens()...)
		if page = r.GetNextPageToken(); page == "" {
			break
		}
	}
	if c.output == "json" {
		return c.printJSON(resp)
	}
	if len(resp.GetTokens()) == 0 {
		fmt.Fprintln(c.sys.Stdout, "no tokens; make one with: intakectl token create --role viewer --name NAME")
		return nil
	}
	w := tabwriter.NewWriter(c.sys.Stdout, 0, 4, 2, ' ', 0)
	head := "TOKEN\tROLE\tNAME\tJOBS\tCREATED\tEXPIRES\tLAST USED"
	if c.auth.all {
		head += "\tREVOKED"
	}
	fmt.Fprintln(w, head)
	now := time.Now()
	for _, t := range resp.GetTokens() {
		row := []string{t.GetName(), RoleName(t.GetRole()), dash(t.GetDisplayName()), dash(strings.Join(t.GetJobs(), ",")),
			runview.Time(t.GetCreateTime().AsTime()), timeOr(t.GetExpireTime(), "never"), timeOr(t.GetLastUsedTime(), "never")}
		if t.GetExpireTime() != nil && !t.GetExpireTime().AsTime().After(now) {
			row[5] += " (expired)"
		}
		if c.auth.all {
			row = append(row, timeOr(t.GetRevokeTime(), "-"))
		}
		fmt.Fprintln(w, strings.Join(row, "\t"))
	}
	return w.Flush()
}

func timeOr(t *timestamppb.Timestamp, none string) string {
	if t == nil {
		return none
	}
	return runview.Time(t.AsTime())
}

func (c *cli) whoAmI(ctx context.Context, _ []string) error {
	ctx, cancel := c.call(ctx)
	defer cancel()
	me, err := c.auth.api.WhoAmI(ctx, &intakev1.WhoAmIRequest{})
	if err != nil {
		return c.apiError("who am I", err)
	}
	if c.output == "json" {
		return c.printJSON(me)
	}
	w := tabwriter.NewWriter(c.sys.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "token:\t%s\n", me.GetName())
	if me.GetDisplayName() != "" {
		fmt.Fprintf(w, "name:\t%s\n", me.GetDisplayName())
	}
	fmt.Fprintf(w, "role:\t%s\n", RoleName(me.GetRole()))
	fmt.Fprintf(w, "tenant:\t%s\n", dash(me.GetTenant()))
	if len(me.GetJobs()) > 0 {
		fmt.Fprintf(w, "jobs:\t%s\n", strings.Join(me.GetJobs(), ", "))
	}
	fmt.Fprintf(w, "expires:\t%s\n", timeOr(me.GetExpireTime(), "never"))
	fmt.Fprintf(w, "from:\t%s\n", dash(c.auth.source))
	return w.Flush()
}

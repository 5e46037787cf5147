// Package ctl is intakectl, the command line of Intake's control API: it
// creates and lists jobs, starts runs and watches them over gRPC.
package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/intakehq/intake/cmd/internal/command"
	"github.com/intakehq/intake/cmd/internal/flagenv"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// DefaultAPIAddr is where intakectl finds the API unless told otherwise.
const DefaultAPIAddr = "127.0.0.1:7070"

const usage = `intakectl talks to the Intake control API.

Usage:
  intakectl job create -f FILE [--id ID]     create a job from a YAML or JSON file ("-": stdin);
                                             an enabled job's mapping is validated first
  intakectl job update -f FILE [--id ID]     replace a job's settings from a file (validated too);
                                             both take --connection NAME --path P | --pattern G
                                             (a stored connection, instead of the file's connection)
  intakectl job validate NAME|-f FILE        check a mapping against the data model and the file
  intakectl job preview NAME|-f FILE         the first rows of the file, raw and transformed
  intakectl job suggest -f FILE | --object OBJECT --url URL | --object OBJECT --connection NAME --path P
                                             propose a mapping (YAML to paste into a job file)
  intakectl job list                         list jobs
  intakectl job get NAME                     show a job
  intakectl job delete NAME                  delete a job (permanent)
  intakectl job duplicate NAME [--id ID]     copy a job as "Copy of …", saved disabled
  intakectl job enable NAME                  enable a job's schedule (its mapping is validated
                                             first when it has not passed)
  intakectl job disable NAME                 disable a job's schedule (run now still works)
  intakectl job run NAME [--dry-run] [--force] [--watch]
                                             start a run now (the schedule does not move);
                                             a dry run reports what it would do, changing nothing;
                                             --force runs even when the file is unchanged
  intakectl job token create|rotate NAME     make a trigger token of a job for the trigger API (printed
                                             once); rotate also revokes the job's other tokens
  intakectl job token list NAME              a job's trigger tokens (without secrets), last use
  intakectl job token revoke TOKEN           revoke a token (jobs/JOB/triggerTokens/ID)
  intakectl run list [--job NAME] [--state S,..] [--trigger T,..] [--since TIME] [--until TIME]
                                             list runs, newest first; TIME: 2026-03-01T06:00:00Z,
                                             2026-03-01 or a duration ago (36h, 7d)
  intakectl run cancel NAME                  cancel a queued or running run: nothing of it lands
  intakectl run get NAME                     show a run: state, counters, row errors
  intakectl run watch NAME                   follow a run until it ends
  intakectl run rejects NAME [-o FILE]       download a run's rejected rows as CSV
  intakectl run source NAME [-o FILE|DIR]    download a run's source file, byte for byte as fetched
  intakectl run replay NAME [--dry-run] [--watch]
                                             re-import a run's stored file with the job's
                                             current mapping, as a new run
  intakectl object list                      the objects of the data model and their keys
  intakectl attribute list OBJECT            an object's attributes
  intakectl attribute create OBJECT --id ID --type TYPE [--references OBJECT] [--display-name TEXT]
                                             add a custom attribute (TYPE: text, number,
                                             currency, date, timestamp, boolean, foreign-key)
  intakectl attribute delete NAME            delete a custom attribute (objects/OBJECT/attributes/ID)
  intakectl token create --role ROLE [--job JOB ...] [--tenant TENANT] [--expires 720h] [--name TEXT]
                                             make an API token (admins only; printed once); ROLE:
                                             admin, editor, viewer, or trigger (TriggerJob of --job)
  intakectl token list [--all]               the tenant's API tokens (never their secrets)
  intakectl token revoke TOKEN               revoke an API token (tokens/ID)
  intakectl whoami                           the token intakectl sends: name, role, tenant
  intakectl connection create NAME --kind s3|sftp|http|local [settings] [-f FILE]
                                             store a connection (secrets from *-file flags, env or a prompt)
  intakectl connection update NAME [settings] | -f FILE
                                             change the settings given (stored secrets stay unless given)
  intakectl connection get NAME              show a connection (secrets only as set / not set)
  intakectl connection list                  connections, where they point, the jobs using them
  intakectl connection delete NAME           delete a connection no job uses
  intakectl connection test NAME [--path P | --pattern G] [--time-zone Z]
                                             reach and log in (and find the file); exit 1 on failure
  intakectl connection ls NAME [PREFIX] [--all] [--page-token T]
                                             browse a bucket prefix or a directory

NAME is a job id ("demo-accounts") or resource name ("jobs/demo-accounts");
a run's NAME is "jobs/JOB/runs/RUN"; a connection's NAME is "acme-s3" or
"connections/acme-s3"; OBJECT is "accounts" or "objects/accounts".

Flags of every command:
  --api-addr ADDR   the API's gRPC address (env INTAKE_API_ADDR, default 127.0.0.1:7070)
  -o table|json     output format (env INTAKE_OUTPUT)
  --timeout D       deadline of each call (default 30s)
  --token-file F    a file holding the API token (env INTAKE_TOKEN_FILE; default
                    $XDG_CONFIG_HOME/intake/token or ~/.config/intake/token if it exists;
                    intake dev writes its admin token there); or the token itself in
                    INTAKE_TOKEN (or --token, which shows in ps)
  --api-ca-file F   call the API over TLS, verified with the CA(s) of F (env
                    INTAKE_API_CA_FILE); --api-tls (env INTAKE_API_TLS): the system's CAs
  --insecure        send the token to an address that is not on this machine in plain
                    text, without TLS (env INTAKE_INSECURE)

Exit status: 0 on success; 1 on an error, when a mapping does not validate, or
when a watched run ends failed, skipped or cancelled; 2 on a usage error.
`

// Run runs intakectl with args (without the program name).
func Run(ctx context.Context, args []string, sys command.System) error {
	args = whoAmIArgs(args) // access.go
	switch {
	case len(args) == 0:
		fmt.Fprint(sys.Stderr, usage)
		return &command.ExitError{Code: 2}
	case args[0] == "help" || args[0] == "-h" || args[0] == "--help":
		fmt.Fprint(sys.Stdout, usage)
		return nil
	case !slices.Contains(resources, args[0]):
		return command.Usagef("unknown command %q (want %s; see intakectl help)", args[0], strings.Join(resources, ", "))
	case len(args) == 1:
		return command.Usagef("intakectl %s needs a command: %s", args[0], verbs(args[0]))
	}
	key := args[0] + " " + args[1]
	cmd, ok := commands[key]
	if !ok {
		return command.Usagef("unknown command %q: intakectl %s takes %s", key, args[0], verbs(args[0]))
	}
	c := &cli{sys: sys}
	fs := flag.NewFlagSet("intakectl "+key, flag.ContinueOnError)
	fs.SetOutput(sys.Stderr)
	fs.StringVar(&c.addr, "api-addr", DefaultAPIAddr, "the API's gRPC address")
	c.output = "table"
	if !cmd.fileOutput {
		fs.StringVar(&c.output, "o", "table", "output format: table or json")
		fs.StringVar(&c.output, "output", "table", "output format: table or json")
	}
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "deadline of each call")
	c.authFlags(fs) // access.go: --token, --token-file, --insecure
	if cmd.flags != nil {
		cmd.flags(fs, c)
	}
	fs.Usage = func() {
		fmt.Fprintf(sys.Stderr, "Usage: intakectl %s %s\n\nFlags:\n", key, cmd.args)
		fs.PrintDefaults()
	}
	envFlags := []string{"api-addr", "output"}
	if cmd.fileOutput {
		envFlags = envFlags[:1]
	}
	envFlags = append(envFlags, authEnvFlags...)
	pos, err := flagenv.Parse(fs, args[2:], sys.LookupEnv, envFlags...)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return &command.ExitError{Code: 2, Err: err}
	}
	if c.output != "table" && c.output != "json" {
		return command.Usagef("-o must be table or json, not %q", c.output)
	}
	if len(pos) < cmd.nargs || len(pos) > cmd.nargs+cmd.optArgs {
		if cmd.nargs+cmd.optArgs == 0 {
			return command.Usagef("intakectl %s takes no arguments, got %q", key, pos)
		}
		return command.Usagef("usage: intakectl %s %s", key, cmd.args)
	}
	conn, err := c.dial() // access.go: with the caller's token
	if err != nil {
		return err
	}
	defer conn.Close()
	c.jobs = intakev1.NewJobServiceClient(conn)
	c.runs = intakev1.NewRunServiceClient(conn)
	c.model = intakev1.NewDataModelServiceClient(conn)
	c.conns = intakev1.NewConnectionServiceClient(conn)
	return cmd.run(c, ctx, pos)
}

type cli struct {
	sys     command.System
	addr    string
	output  string
	timeout time.Duration
	jobs    intakev1.JobServiceClient
	runs    intakev1.RunServiceClient
	model   intakev1.DataModelServiceClient
	conns   intakev1.ConnectionServiceClient

	file   string
	id     string
	watch  bool
	dryRun bool
	force  bool // issue 4 (files): job run --force
	job    string
	limit  int
	rows   int
	object string
	url    string
	out    string

	attrType    string
	references  string
	displayName string
	description string

	// runFilter: the filters of run list (jobops.go).
	runFilter runListFilter
	// conn: the flags of the connection commands and of --connection (connections.go).
	conn connOpts
	// auth: the caller's token and the token commands (access.go).
	auth authOptions
}

type cmdSpec struct {
	args string
	// nargs positional arguments are required, optArgs more are allowed.
	nargs, optArgs int
	// fileOutput: -o names an output file, not the output format.
	fileOutput bool
	flags      func(*flag.FlagSet, *cli)
	run        func(*cli, context.Context, []string) error
}

// resources are the nouns of intakectl's commands.
var resources = []string{"job", "run", "object", "attribute", "connection", "token"}

var commands = map[string]cmdSpec{
	"job create": {args: "-f FILE [--id ID]", flags: fileFlags, run: (*cli).jobCreate},
	"job update": {args: "-f FILE [--id ID]", flags: fileFlags, run: (*cli).jobUpdate},
	"job list":   {run: (*cli).jobList},
	"job get":    {args: "NAME", nargs: 1, run: (*cli).jobGet},
	"job delete": {args: "NAME", nargs: 1, run: (*cli).jobDelete},
	"job run": {args: "NAME [--dry-run] [--force] [--watch]", nargs: 1, run: (*cli).jobRun, flags: func(fs *flag.FlagSet, c *cli) {
		fs.BoolVar(&c.watch, "watch", false, "follow the run until it ends")
		fs.BoolVar(&c.dryRun, "dry-run", false, "stage the whole file and report what the run would do, changing nothing")
		fs.BoolVar(&c.force, "force", false, "run even when the file is unchanged since the last successful run")
	}},
	"job validate": {args: "NAME | -f FILE | NAME -f FILE", optArgs: 1, run: (*cli).jobValidate, flags: func(fs *flag.FlagSet, c *cli) {
		fs.StringVar(&c.file, "f", "", `job file, YAML or JSON ("-": standard input); with NAME, its mapping is checked against the saved job`)
		fs.IntVar(&c.rows, "sample", 0, "data rows of the file to check (default: the API's, 200)")
	}},
	"job preview": {args: "NAME | -f FILE [--rows N]", optArgs: 1, run: (*cli).jobPreview, flags: func(fs *flag.FlagSet, c *cli) {
		fs.StringVar(&c.file, "f", "", `job file, YAML or JSON ("-": standard input); with NAME, its mapping on the saved job`)
		fs.IntVar(&c.rows, "rows", 0, "data rows to show (default: the API's, 20)")
	}},
	"job suggest": {args: "-f FILE | --object OBJECT --url URL", run: (*cli).jobSuggest, flags: func(fs *flag.FlagSet, c *cli) {
		fs.StringVar(&c.file, "f", "", "a partial job file: object, connection and, when needed, mapping.dialect")
		fs.StringVar(&c.object, "object", "", `the object to map onto, e.g. "accounts"`)
		fs.StringVar(&c.url, "url", "", "the file's HTTP(S) URL")
		jobConnectionFlags(fs, c) // connections.go
	}},
	"run list": {args: "[--job NAME] [--limit N] [--state S,..] [--trigger T,..] [--since TIME] [--until TIME]",
		run: (*cli).runList, flags: runListFlags},
	// jobops.go
	"run cancel":  {args: "NAME", nargs: 1, run: (*cli).runCancel},
	"job enable":  {args: "NAME", nargs: 1, run: (*cli).jobEnable},
	"job disable": {args: "NAME", nargs: 1, run: (*cli).jobDisable},
	"job duplicate": {args: "NAME [--id ID]", nargs: 1, run: (*cli).jobDuplicate, flags: func(fs *flag.FlagSet, c *cli) {
		fs.StringVar(&c.id, "id", "", "the copy's job id (default: generated)")
	}},
	"run get":   {args: "NAME", nargs: 1, run: (*cli).runGet},
	"run watch": {args: "NAME", nargs: 1, run: (*cli).runWatch},
	"run rejects": {args: "NAME [-o FILE]", nargs: 1, fileOutput: true, run: (*cli).runRejects, flags: func(fs *flag.FlagSet, c *cli) {
		fs.StringVar(&c.out, "o", "", "write the CSV to this file (default: standard output)")
		fs.StringVar(&c.out, "output", "", "write the CSV to this file (default: standard output)")
	}},
	// issue 4 (files): source download and replay (source.go).
	"run source": {args: "NAME [-o FILE|DIR]", nargs: 1, fileOutput: true, run: (*cli).runSource, flags: func(fs *flag.FlagSet, c *cli) {
		fs.StringVar(&c.out, "o", "", "write the file here; a directory: under the name the API suggests (default: standard output)")
		fs.StringVar(&c.out, "output", "", "write the file here; a directory: under the name the API suggests (default: standard output)")
	}},
	"run replay": {args: "NAME [--dry-run] [--watch]", nargs: 1, run: (*cli).runReplay, flags: func(fs *flag.FlagSet, c *cli) {
		fs.BoolVar(&c.watch, "watch", false, "follow the new run until it ends")
		fs.BoolVar(&c.dryRun, "dry-run", false, "stage the whole file and report what the replay would do, changing nothing")
	}},
	"object list":    {run: (*cli).objectList},
	"attribute list": {args: "OBJECT", nargs: 1, run: (*cli).attributeList},
	"attribute create": {args: "OBJECT --id ID --type TYPE [--references OBJECT] [--display-name TEXT]", nargs: 1,
		run: (*cli).attributeCreate, flags: func(fs *flag.FlagSet, c *cli) {
			fs.StringVar(&c.id, "id", "", "the attribute id, also its column: lowercase letters, digits and _")
			fs.StringVar(&c.attrType, "type", "", attributeTypes)
			fs.StringVar(&c.references, "references", "", `for a foreign-key: the object it refers to, e.g. "accounts"`)
			fs.StringVar(&c.displayName, "display-name", "", "the name people see (default: the id)")
			fs.StringVar(&c.description, "description", "", "what the attribute holds")
		}},
	"attribute delete": {args: "NAME", nargs: 1, run: (*cli).attributeDelete},
	"job token":        {args: tokenArgs, nargs: 2, run: (*cli).jobToken}, // token.go
	// access.go: API tokens.
	"token create": {args: tokenCreateArgs, run: (*cli).tokenCreate, flags: tokenCreateFlags},
	"token list":   {args: "[--all]", run: (*cli).tokenListAccess, flags: tokenListFlags},
	"token revoke": {args: "TOKEN", nargs: 1, run: (*cli).tokenRevokeAccess},
	"token whoami": {run: (*cli).whoAmI},
	// connections.go
	"connection create": {args: "NAME --kind s3|sftp|http|local [settings] [-f FILE]", optArgs: 1, run: (*cli).connectionCreate, flags: connectionFlags},
	"connection update": {args: "NAME [settings] | -f FILE", optArgs: 1, run: (*cli).connectionUpdate, flags: connectionFlags},
	"connection get":    {args: "NAME", nargs: 1, run: (*cli).connectionGet},
	"connection list":   {run: (*cli).connectionList},
	"connection delete": {args: "NAME", nargs: 1, run: (*cli).connectionDelete},
	"connection test":   {args: "NAME [--path P | --pattern G] [--time-zone Z]", nargs: 1, run: (*cli).connectionTest, flags: connectionTestFlags},
	"connection ls":     {args: "NAME [PREFIX] [--all] [--page-token T]", nargs: 1, optArgs: 1, run: (*cli).connectionLs, flags: connectionLsFlags},
}

func verbs(resource string) string {
	var vs []string
	for k := range commands {
		if r, v, _ := strings.Cut(k, " "); r == resource {
			vs = append(vs, v)
		}
	}
	slices.Sort(vs)
	return strings.Join(vs, ", ")
}

func fileFlags(fs *flag.FlagSet, c *cli) {
	fs.StringVar(&c.file, "f", "", `job file, YAML or JSON ("-": standard input)`)
	fs.StringVar(&c.id, "id", "", `job id (default: from the file's name, "jobs/ID")`)
	jobConnectionFlags(fs, c) // connections.go
}

func (c *cli) call(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.timeout)
}

// apiError explains a failed call: which address could not be reached, or
// the API's code, message and the details it attached.
func (c *cli) apiError(what string, err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%s: %w", what, err)
	}
	switch st.Code() {
	case codes.Unavailable:
		hint := "is it running? set --api-addr or INTAKE_API_ADDR"
		tlsOn := c.auth.caFile != "" || c.auth.tls
		switch msg := st.Message(); {
		case !tlsOn && strings.Contains(msg, "error reading server preface"):
			hint += "; if it serves TLS, set --api-ca-file or --api-tls" // the TLS server hung up on plaintext
		case tlsOn && strings.Contains(msg, "first record does not look like a TLS handshake"):
			hint += "; it does not serve TLS: drop --api-ca-file and --api-tls"
		}
		return fmt.Errorf("%s: cannot reach the Intake API at %s (%s): %s", what, c.addr, hint, st.Message())
	case codes.DeadlineExceeded:
		return fmt.Errorf("%s: no answer from the Intake API at %s within %s", what, c.addr, c.timeout)
	case codes.Unauthenticated:
		return fmt.Errorf("%s: %s (unauthenticated): %s", what, st.Message(), c.authHint()) // access.go
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", what, st.Message())
	if st.Code() != codes.Unknown {
		fmt.Fprintf(&b, " (%s)", codeName(st.Code()))
	}
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				fmt.Fprintf(&b, "\n  %s: %s", v.GetField(), v.GetDescription())
			}
		case *errdetails.PreconditionFailure:
			for _, v := range d.GetViolations() {
				fmt.Fprintf(&b, "\n  %s: %s", v.GetSubject(), v.GetDescription())
			}
		case *errdetails.ResourceInfo:
			if d.GetDescription() != "" {
				fmt.Fprintf(&b, "\n  %s %s: %s", d.GetResourceType(), d.GetResourceName(), d.GetDescription())
			}
		case *errdetails.LocalizedMessage:
			fmt.Fprintf(&b, "\n  %s", d.GetMessage())
		case *errdetails.Help:
			for _, l := range d.GetLinks() {
				fmt.Fprintf(&b, "\n  see %s: %s", l.GetDescription(), l.GetUrl())
			}
		}
	}
	return errors.New(b.String())
}

func codeName(c codes.Code) string {
	var b strings.Builder
	for i, r := range c.String() {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte(' ')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// JobName turns a job id or resource name into the resource name.
func JobName(s string) (string, error) {
	id := strings.TrimPrefix(s, "jobs/")
	if id == "" || strings.Contains(id, "/") {
		return "", fmt.Errorf("%q is not a job: want a job id (demo-accounts) or name (jobs/demo-accounts)", s)
	}
	return "jobs/" + id, nil
}

// RunName checks a run's resource name.
func RunName(s string) (string, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 4 || parts[0] != "jobs" || parts[1] == "" || parts[2] != "runs" || parts[3] == "" {
		return "", fmt.Errorf("%q is not a run: want jobs/JOB/runs/RUN (as intakectl run list prints)", s)
	}
	return s, nil
}

func (c *cli) printJSON(m proto.Message) error {
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	_, err = fmt.Fprintf(c.sys.Stdout, "%s\n", b)
	return err
}

func writeString(w io.Writer, s string) { _, _ = io.WriteString(w, s) }

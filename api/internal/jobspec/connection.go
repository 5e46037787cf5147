package jobspec

import (
	"crypto/x509"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// Stored connections (ConnectionService) and the connection of a job.
//
// A connection's secrets (passwords, keys, tokens) are write-only: a
// request carries them in clear text, the store seals them, and a
// connection read back carries only the matching *_set flags. This file
// knows which fields are secrets, validates a connection's settings, and
// applies an update's field mask.

// ConnectionPrefix starts the resource name of a stored connection.
const ConnectionPrefix = "connections/"

// Secret field paths of a Connection, relative to the Connection.
const (
	SecretHTTPBasicPassword  = "http.basic.password"
	SecretHTTPBearerToken    = "http.bearer.token"
	SecretS3SecretAccessKey  = "s3.secret_access_key"
	SecretS3SessionToken     = "s3.session_token"
	SecretSFTPPassword       = "sftp.password"
	SecretSFTPPrivateKey     = "sftp.private_key"
	SecretSFTPKeyPassphrase  = "sftp.private_key_passphrase"
	maxConnectionSecretBytes = 64 << 10
)

// secretField is one secret of a connection kind.
type secretField struct {
	path string
	// get returns the value and whether the message holding the field is
	// there (e.g. http.basic for http.basic.password).
	get func(c *intakev1.Connection) (string, bool)
	set func(c *intakev1.Connection, v string)
	// flag sets the output-only *_set field; nil when there is none.
	flag func(c *intakev1.Connection, set bool)
}

var secretFields = []secretField{
	{
		path: SecretHTTPBasicPassword,
		get: func(c *intakev1.Connection) (string, bool) {
			b := c.GetHttp().GetBasic()
			return b.GetPassword(), b != nil
		},
		set:  func(c *intakev1.Connection, v string) { c.GetHttp().GetBasic().Password = v },
		flag: func(c *intakev1.Connection, set bool) { c.GetHttp().GetBasic().PasswordSet = set },
	},
	{
		path: SecretHTTPBearerToken,
		get: func(c *intakev1.Connection) (string, bool) {
			b := c.GetHttp().GetBearer()
			return b.GetToken(), b != nil
		},
		set:  func(c *intakev1.Connection, v string) { c.GetHttp().GetBearer().Token = v },
		flag: func(c *intakev1.Connection, set bool) { c.GetHttp().GetBearer().TokenSet = set },
	},
	{
		path: SecretS3SecretAccessKey,
		get: func(c *intakev1.Connection) (string, bool) {
			s := c.GetS3()
			return s.GetSecretAccessKey(), s != nil
		},
		set:  func(c *intakev1.Connection, v string) { c.GetS3().SecretAccessKey = v },
		flag: func(c *intakev1.Connection, set bool) { c.GetS3().SecretAccessKeySet = set },
	},
	{
		path: SecretS3SessionToken,
		get: func(c *intakev1.Connection) (string, bool) {
			s := c.GetS3()
			return s.GetSessionToken(), s != nil
		},
		set:  func(c *intakev1.Connection, v string) { c.GetS3().SessionToken = v },
		flag: func(c *intakev1.Connection, set bool) { c.GetS3().SessionTokenSet = set },
	},
	{
		path: SecretSFTPPassword,
		get: func(c *intakev1.Connection) (string, bool) {
			s := c.GetSftp()
			return s.GetPassword(), s != nil
		},
		set:  func(c *intakev1.Connection, v string) { c.GetSftp().Password = v },
		flag: func(c *intakev1.Connection, set bool) { c.GetSftp().PasswordSet = set },
	},
	{
		path: SecretSFTPPrivateKey,
		get: func(c *intakev1.Connection) (string, bool) {
			s := c.GetSftp()
			return s.GetPrivateKey(), s != nil
		},
		set:  func(c *intakev1.Connection, v string) { c.GetSftp().PrivateKey = v },
		flag: func(c *intakev1.Connection, set bool) { c.GetSftp().PrivateKeySet = set },
	},
	{
		path: SecretSFTPKeyPassphrase,
		get: func(c *intakev1.Connection) (string, bool) {
			s := c.GetSftp()
			return s.GetPrivateKeyPassphrase(), s != nil
		},
		set: func(c *intakev1.Connection, v string) { c.GetSftp().PrivateKeyPassphrase = v },
	},
}

func secretFieldOf(p string) *secretField {
	for i := range secretFields {
		if secretFields[i].path == p {
			return &secretFields[i]
		}
	}
	return nil
}

// SecretSlots are the secret field paths c's settings have room for: those
// of its kind whose holding message is present (http.basic.password only
// with http.basic).
func SecretSlots(c *intakev1.Connection) []string {
	var out []string
	for _, f := range secretFields {
		if _, ok := f.get(c); ok {
			out = append(out, f.path)
		}
	}
	return out
}

// Secrets returns the non-empty secrets of c by field path.
func Secrets(c *intakev1.Connection) map[string]string {
	out := map[string]string{}
	for _, f := range secretFields {
		if v, ok := f.get(c); ok && v != "" {
			out[f.path] = v
		}
	}
	return out
}

// SetSecret puts a secret's clear text into c; a path c has no slot for
// is ignored.
func SetSecret(c *intakev1.Connection, p, v string) {
	if f := secretFieldOf(p); f != nil {
		if _, ok := f.get(c); ok {
			f.set(c, v)
		}
	}
}

// ClearSecrets removes every secret and *_set flag from c.
func ClearSecrets(c *intakev1.Connection) {
	for _, f := range secretFields {
		if _, ok := f.get(c); ok {
			f.set(c, "")
			if f.flag != nil {
				f.flag(c, false)
			}
		}
	}
}

// MarkSecrets clears c's secrets and sets each *_set flag to whether set
// has the field.
func MarkSecrets(c *intakev1.Connection, set map[string]bool) {
	for _, f := range secretFields {
		if _, ok := f.get(c); ok {
			f.set(c, "")
			if f.flag != nil {
				f.flag(c, set[f.path])
			}
		}
	}
}

// ClearConnectionOutput removes the name and output-only fields of a
// stored connection, as its spec is stored.
func ClearConnectionOutput(c *intakev1.Connection) {
	c.Name, c.Etag, c.CreateTime, c.UpdateTime, c.UsedBy = "", "", nil, nil, nil
}

// ConnectionKind is the kind of c: "http", "local", "s3", "sftp", or "" when
// it has none.
func ConnectionKind(c *intakev1.Connection) string {
	switch c.GetKind().(type) {
	case *intakev1.Connection_Http:
		return "http"
	case *intakev1.Connection_Local:
		return "local"
	case *intakev1.Connection_S3:
		return "s3"
	case *intakev1.Connection_Sftp:
		return "sftp"
	}
	return ""
}

// CheckConnectionID checks a client-chosen connection id (the rules of a
// job id).
func CheckConnectionID(id string) error {
	if !jobIDPattern.MatchString(id) {
		return fmt.Errorf("%q is not a connection id (1-63 lowercase letters, digits and '-', not starting or ending with '-')", id)
	}
	return nil
}

// ParseConnectionName returns the id of "connections/{connection}".
func ParseConnectionName(name string) (string, error) {
	id, ok := strings.CutPrefix(name, ConnectionPrefix)
	if !ok || id == "" || strings.Contains(id, "/") {
		return "", fmt.Errorf("%q is not a connection name (connections/{connection})", name)
	}
	if err := CheckConnectionID(id); err != nil {
		return "", fmt.Errorf("%q is not a connection name: %v", name, err)
	}
	return id, nil
}

// ValidateConnection checks the settings of a stored connection (field is
// its path in the request, "connection"). has says whether a secret is set:
// sent in c, or kept from the stored connection. It does not check whether
// a local connection is allowed (development mode only).
func ValidateConnection(field string, c *intakev1.Connection, has func(path string) bool) Violations {
	var vs Violations
	f := func(name string) string { return field + "." + name }
	if c == nil {
		vs.add(field, "required")
		return vs
	}
	if utf8.RuneCountInString(c.GetDisplayName()) > MaxDisplayName {
		vs.add(f("display_name"), "longer than %d characters", MaxDisplayName)
	}
	if utf8.RuneCountInString(c.GetDescription()) > MaxDescription {
		vs.add(f("description"), "longer than %d characters", MaxDescription)
	}
	for p, v := range Secrets(c) {
		if len(v) > maxConnectionSecretBytes {
			vs.add(f(p), "longer than %d bytes", maxConnectionSecretBytes)
		} else if !utf8.ValidString(v) {
			vs.add(f(p), "not valid UTF-8")
		}
	}
	switch k := c.GetKind().(type) {
	case nil:
		vs.add(field, "the kind is required: set one of s3, sftp, http or local")
	case *intakev1.Connection_Http:
		validateHTTP(&vs, f("http"), k.Http, false)
		if b := k.Http.GetBasic(); b != nil {
			if strings.TrimSpace(b.GetUsername()) == "" {
				vs.add(f("http.basic.username"), "required")
			}
			if !has(SecretHTTPBasicPassword) {
				vs.add(f(SecretHTTPBasicPassword), "required with basic authentication")
			}
		}
		if b := k.Http.GetBearer(); b != nil && !has(SecretHTTPBearerToken) {
			vs.add(f(SecretHTTPBearerToken), "required with bearer authentication")
		}
	case *intakev1.Connection_Local:
		validateLocalPath(&vs, f("local.path"), k.Local.GetPath())
	case *intakev1.Connection_S3:
		s := k.S3
		switch b := s.GetBucket(); {
		case strings.TrimSpace(b) == "":
			vs.add(f("s3.bucket"), "required: the bucket's name")
		case strings.ContainsAny(b, "/ \t\r\n"):
			vs.add(f("s3.bucket"), "%q is not a bucket name (no '/' or spaces; a key prefix belongs in the job's file path)", b)
		}
		if e := s.GetEndpoint(); e != "" {
			checkURL(&vs, f("s3.endpoint"), e, "https://minio.internal:9000")
		}
		switch {
		case s.GetAccessKeyId() != "" && !has(SecretS3SecretAccessKey):
			vs.add(f(SecretS3SecretAccessKey), "required with access_key_id")
		case s.GetAccessKeyId() == "" && has(SecretS3SecretAccessKey):
			vs.add(f("s3.access_key_id"), "required with secret_access_key (leave both empty for the default credential chain)")
		}
		if s.GetAccessKeyId() == "" && has(SecretS3SessionToken) {
			vs.add(f(SecretS3SessionToken), "only with static credentials (access_key_id and secret_access_key)")
		}
		checkCAPEM(&vs, f("s3.ca_pem"), s.GetCaPem())
	case *intakev1.Connection_Sftp:
		s := k.Sftp
		switch h := s.GetHost(); {
		case strings.TrimSpace(h) == "":
			vs.add(f("sftp.host"), "required: the server's host name or IP address")
		case strings.ContainsAny(h, "/ \t\r\n@"):
			vs.add(f("sftp.host"), "%q is not a host name (the user and port have fields of their own)", h)
		}
		if p := s.GetPort(); p < 0 || p > 65535 {
			vs.add(f("sftp.port"), "%d is not a port (1-65535; 0 means 22)", p)
		}
		if strings.TrimSpace(s.GetUser()) == "" {
			vs.add(f("sftp.user"), "required")
		}
		if strings.TrimSpace(s.GetHostKey()) == "" {
			vs.add(f("sftp.host_key"), `required: the server's host key, pinned (a known_hosts line, "ssh-ed25519 AAAA…", or "SHA256:…" from ssh-keyscan HOST | ssh-keygen -lf -)`)
		}
		if !has(SecretSFTPPassword) && !has(SecretSFTPPrivateKey) {
			vs.add(f("sftp"), "set a password or a private_key (or both)")
		}
		if has(SecretSFTPKeyPassphrase) && !has(SecretSFTPPrivateKey) {
			vs.add(f(SecretSFTPKeyPassphrase), "only with a private_key")
		}
	}
	return vs
}

// validateHTTP checks an HTTP connection's URL, headers and CA.
func validateHTTP(vs *Violations, field string, h *intakev1.HttpConnection, inline bool) {
	ex := "https://exports.example.com/"
	if inline {
		ex = "https://exports.example.com/accounts.csv"
	}
	if raw := h.GetUrl(); raw == "" {
		vs.add(field+".url", "required")
	} else {
		checkURL(vs, field+".url", raw, ex)
	}
	for name, value := range h.GetHeaders() {
		if name == "" || strings.ContainsAny(name, " \t\r\n:") {
			vs.add(field+".headers", "%q is not a header name", name)
		} else if strings.ContainsAny(value, "\r\n") {
			vs.add(field+".headers", "the value of %q holds a line break", name)
		}
	}
	checkCAPEM(vs, field+".ca_pem", h.GetCaPem())
}

// checkURL checks an absolute http or https URL with a host; ex is an
// example for the message.
func checkURL(vs *Violations, field, raw, ex string) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		vs.add(field, "not a URL: %v", unwrapURLError(err))
	case u.Scheme != "http" && u.Scheme != "https":
		vs.add(field, "%q: the scheme must be http or https, not %q (e.g. %s)", raw, u.Scheme, ex)
	case u.Host == "" || u.Hostname() == "":
		vs.add(field, "%q has no host (e.g. %s)", raw, ex)
	}
}

func checkCAPEM(vs *Violations, field, pem string) {
	if strings.TrimSpace(pem) == "" {
		return
	}
	if !x509.NewCertPool().AppendCertsFromPEM([]byte(pem)) {
		vs.add(field, "holds no PEM certificate (-----BEGIN CERTIFICATE----- …)")
	}
}

func validateLocalPath(vs *Violations, field, p string) {
	switch {
	case p == "":
		vs.add(field, "required")
	case !path.IsAbs(p):
		vs.add(field, "%q is not an absolute path", p)
	}
}

// Update mask paths of a connection: its descriptive fields and the kind,
// whole ("s3") or one of its fields ("s3.bucket", "sftp.password",
// "http.basic.password").
var connectionTop = []string{"display_name", "description", "http", "local", "s3", "sftp"}

// ApplyConnectionMask copies the fields named by paths from src into dst
// (the stored connection, secrets cleared). An empty mask means every
// updatable field, the kind as a whole. Secrets are not merged here: see
// SecretsToKeep. Bad paths are violations of "update_mask.paths[i]".
func ApplyConnectionMask(dst, src *intakev1.Connection, paths []string) Violations {
	var vs Violations
	if len(paths) == 0 {
		paths = []string{"display_name", "description"}
		dst.Kind = proto.Clone(src).(*intakev1.Connection).Kind
	}
	for i, p := range paths {
		if msg := applyPath(dst.ProtoReflect(), src.ProtoReflect(), p); msg != "" {
			vs.add(fmt.Sprintf("update_mask.paths[%d]", i), "%s", msg)
		}
	}
	return vs
}

// applyPath copies one dotted field path from src to dst; it returns why
// the path cannot be updated, or "".
func applyPath(dst, src protoreflect.Message, p string) string {
	parts := strings.Split(p, ".")
	if !slices.Contains(connectionTop, parts[0]) {
		if dst.Descriptor().Fields().ByName(protoreflect.Name(parts[0])) != nil {
			return fmt.Sprintf("%q is output only", p)
		}
		return fmt.Sprintf("unknown field %q (updatable: %s, or a field of the kind such as s3.bucket)", p, strings.Join(connectionTop, ", "))
	}
	for i, name := range parts {
		fd := dst.Descriptor().Fields().ByName(protoreflect.Name(name))
		if fd == nil {
			return fmt.Sprintf("unknown field %q in %q", name, p)
		}
		if strings.HasSuffix(name, "_set") && fd.Kind() == protoreflect.BoolKind {
			return fmt.Sprintf("%q is output only", p)
		}
		last := i == len(parts)-1
		if last {
			copyField(dst, src, fd)
			return ""
		}
		if fd.Message() == nil || fd.IsMap() || fd.IsList() {
			return fmt.Sprintf("%q: %q has no fields", p, name)
		}
		// Into a nested message: both sides must have it (a oneof member
		// of dst that is another member is a change of kind or auth).
		if od := fd.ContainingOneof(); od != nil {
			if w := dst.WhichOneof(od); w != nil && w != fd {
				return fmt.Sprintf("%q: the connection has %s, not %s; to change it, name %q", p, w.Name(), name, strings.Join(parts[:i+1], "."))
			}
		}
		if !src.Has(fd) && !dst.Has(fd) {
			return ""
		}
		// Get of an absent message is an empty, read-only one.
		dst, src = dst.Mutable(fd).Message(), src.Get(fd).Message()
	}
	return ""
}

// copyField sets dst's field fd to src's (a deep copy), or clears it.
func copyField(dst, src protoreflect.Message, fd protoreflect.FieldDescriptor) {
	if !src.Has(fd) {
		dst.Clear(fd)
		return
	}
	v := src.Get(fd)
	switch {
	case fd.IsMap():
		dst.Clear(fd)
		m := dst.Mutable(fd).Map()
		v.Map().Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
			m.Set(k, v)
			return true
		})
	case fd.IsList():
		dst.Clear(fd)
		l := dst.Mutable(fd).List()
		for i := 0; i < v.List().Len(); i++ {
			l.Append(v.List().Get(i))
		}
	case fd.Message() != nil:
		dst.Set(fd, protoreflect.ValueOfMessage(proto.Clone(v.Message().Interface()).ProtoReflect()))
	default:
		dst.Set(fd, v)
	}
}

// SecretsToKeep says which stored secrets an update keeps: those the
// updated connection still has a slot for, that it does not send anew, and
// whose field the mask does not name ("sftp.password" in the mask with an
// empty password removes it). updated carries the secrets the request
// sent; stored are the fields the connection has secrets for.
func SecretsToKeep(updated *intakev1.Connection, stored map[string]bool, paths []string) map[string]bool {
	keep := map[string]bool{}
	sent := Secrets(updated)
	for _, p := range SecretSlots(updated) {
		if stored[p] && sent[p] == "" && !slices.Contains(paths, p) {
			keep[p] = true
		}
	}
	return keep
}

// validateJobConnection checks where a job reads its file: an inline
// connection (http or local, without secrets), or connection_name and file.
func validateJobConnection(vs *Violations, prefix string, job *intakev1.Job) {
	f := func(name string) string { return prefix + "." + name }
	name, c, sel := job.GetConnectionName(), job.GetConnection(), job.GetFile()
	switch {
	case name != "" && c != nil:
		vs.add(f("connection_name"), "set connection_name (a stored connection) or connection (inline), not both; to switch, name both in the update mask")
		return
	case name == "" && c == nil:
		vs.add(f("connection"), "required: connection_name (a stored connection, with file) or an inline http or local connection")
		return
	case name != "":
		if _, err := ParseConnectionName(name); err != nil {
			vs.add(f("connection_name"), "%v", err)
		}
		switch s := sel.GetSelector().(type) {
		case nil:
			vs.add(f("file"), "required with connection_name: set file.path (e.g. exports/accounts.csv) or file.pattern (e.g. exports/accounts_*.csv)")
		case *intakev1.FileSelector_Pattern:
			if s.Pattern == "" {
				vs.add(f("file.pattern"), "empty: give a glob such as exports/accounts_*.csv")
			}
		}
		return
	}
	if sel != nil {
		vs.add(f("file"), "only with connection_name (an inline connection names its file itself)")
	}
	validateConnection(vs, f("connection"), c)
}

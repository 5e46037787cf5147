// Package jobspec checks a Job as a client sent it and applies field-mask
// updates to a stored Job. It knows nothing of gRPC or PostgreSQL: it returns
// field violations ("job.schedule.daily.hour", "25 is not an hour (0-23)")
// that the API turns into a google.rpc.BadRequest.
package jobspec

import (
	"fmt"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/intakehq/intake/pkg/objects"
	"github.com/intakehq/intake/pkg/schedule"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// Limits on free text.
const (
	MaxDisplayName = 200
	MaxDescription = 10000
	MaxEntries     = 1000
)

// Violation is one bad field of a request.
type Violation struct {
	// Field is the path of the field in the request, e.g. "job.schedule.daily.hour".
	Field string
	// Description says what is wrong with it.
	Description string
}

func (v Violation) String() string { return v.Field + ": " + v.Description }

// Violations collects field violations.
type Violations []Violation

func (vs *Violations) add(field, format string, args ...any) {
	*vs = append(*vs, Violation{Field: field, Description: fmt.Sprintf(format, args...)})
}

// Error joins the violations into one line.
func (vs Violations) Error() string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = v.String()
	}
	return strings.Join(parts, "; ")
}

var jobIDPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// CheckJobID checks a client-chosen job id.
func CheckJobID(id string) error {
	if !jobIDPattern.MatchString(id) {
		return fmt.Errorf("%q is not a job id (1-63 lowercase letters, digits and '-', not starting or ending with '-')", id)
	}
	return nil
}

// Validate checks every client-settable field of job. prefix is the path of
// the job in the request ("job"). It does not check whether a local
// connection is allowed: see IsLocal.
func Validate(prefix string, job *intakev1.Job) Violations {
	var vs Violations
	if job == nil {
		vs.add(prefix, "required")
		return vs
	}
	f := func(name string) string { return prefix + "." + name }

	switch name := strings.TrimSpace(job.GetDisplayName()); {
	case name == "":
		vs.add(f("display_name"), "required")
	case utf8.RuneCountInString(job.GetDisplayName()) > MaxDisplayName:
		vs.add(f("display_name"), "longer than %d characters", MaxDisplayName)
	}
	if utf8.RuneCountInString(job.GetDescription()) > MaxDescription {
		vs.add(f("description"), "longer than %d characters", MaxDescription)
	}

	var obj *objects.Object
	if job.GetObject() == intakev1.ObjectType_OBJECT_TYPE_UNSPECIFIED {
		vs.add(f("object"), "required (one of %s)", objectNames())
	} else if o, err := objects.Lookup(job.GetObject()); err != nil {
		vs.add(f("object"), "unknown object %d (one of %s)", int32(job.GetObject()), objectNames())
	} else {
		obj = o
	}

	validateConnection(&vs, f("connection"), job.GetConnection())
	validateMapping(&vs, f("mapping"), obj, job.GetMapping())

	if job.GetSchedule() == nil {
		if job.GetEnabled() {
			vs.add(f("schedule"), "required when the job is enabled")
		}
	} else {
		validateSchedule(&vs, f("schedule"), job.GetSchedule())
	}
	return vs
}

// IsLocal reports whether the job reads a local file, which only a
// development deployment accepts.
func IsLocal(job *intakev1.Job) bool { return job.GetConnection().GetLocal() != nil }

func objectNames() string {
	var names []string
	for _, o := range objects.All() {
		names = append(names, strings.TrimPrefix(o.Type.String(), "OBJECT_TYPE_"))
	}
	return strings.Join(names, ", ")
}

func validateConnection(vs *Violations, field string, c *intakev1.Connection) {
	switch k := c.GetKind().(type) {
	case nil:
		vs.add(field, "required (http or local)")
	case *intakev1.Connection_Http:
		f := field + ".http.url"
		raw := k.Http.GetUrl()
		if raw == "" {
			vs.add(f, "required")
			break
		}
		u, err := url.Parse(raw)
		switch {
		case err != nil:
			vs.add(f, "%q is not a URL: %v", raw, err)
		case u.Scheme != "http" && u.Scheme != "https":
			vs.add(f, "%q: the scheme must be http or https, not %q", raw, u.Scheme)
		case u.Host == "" || u.Hostname() == "":
			vs.add(f, "%q has no host", raw)
		}
		for name := range k.Http.GetHeaders() {
			if name == "" || strings.ContainsAny(name, " \t\r\n:") {
				vs.add(field+".http.headers", "%q is not a header name", name)
			}
		}
	case *intakev1.Connection_Local:
		f := field + ".local.path"
		p := k.Local.GetPath()
		switch {
		case p == "":
			vs.add(f, "required")
		case !path.IsAbs(p):
			vs.add(f, "%q is not an absolute path", p)
		}
	}
}

func validateMapping(vs *Violations, field string, obj *objects.Object, m *intakev1.MappingSpec) {
	if m == nil {
		vs.add(field, "required")
		return
	}
	if d := m.GetDialect(); d != nil {
		if del := d.GetDelimiter(); del != "" {
			r, n := utf8.DecodeRuneInString(del)
			switch {
			case n != len(del) || r == utf8.RuneError:
				vs.add(field+".dialect.delimiter", "%q is not one character", del)
			case r == '"' || r == '\r' || r == '\n':
				vs.add(field+".dialect.delimiter", "%q cannot be a delimiter", del)
			}
		}
		if d.GetHeaderRow() < 0 {
			vs.add(field+".dialect.header_row", "%d is not a row number (1 or more; 0 means 1)", d.GetHeaderRow())
		}
	}
	entries := m.GetEntries()
	if len(entries) == 0 {
		vs.add(field+".entries", "required: map at least the object's keys")
	}
	if len(entries) > MaxEntries {
		vs.add(field+".entries", "%d entries, at most %d", len(entries), MaxEntries)
		return
	}
	seen := map[string]int{}
	for i, e := range entries {
		f := fmt.Sprintf("%s.entries[%d]", field, i)
		attr := e.GetAttribute()
		switch {
		case attr == "":
			vs.add(f+".attribute", "required")
		case obj != nil:
			if _, ok := obj.Attribute(attr); !ok {
				vs.add(f+".attribute", "unknown attribute %q of object %s", attr, obj.Name)
			} else if j, dup := seen[attr]; dup {
				vs.add(f+".attribute", "%q is already mapped by entries[%d]", attr, j)
			} else {
				seen[attr] = i
			}
		}
		switch s := e.GetSource().(type) {
		case nil:
			vs.add(f, "a column or a constant is required")
		case *intakev1.MappingEntry_Column:
			if strings.TrimSpace(s.Column) == "" {
				vs.add(f+".column", "empty column name")
			}
		}
	}
	if obj != nil {
		for _, k := range obj.Keys {
			if _, ok := seen[k]; !ok {
				vs.add(field+".entries", "key attribute %q of object %s is not mapped", k, obj.Name)
			}
		}
	}
}

// validateSchedule reports the problems pkg/schedule finds, at their paths
// under field.
func validateSchedule(vs *Violations, field string, s *intakev1.Schedule) {
	for _, e := range schedule.Validate(s) {
		f := field
		if e.Field != "" {
			f += "." + e.Field
		}
		vs.add(f, "%s", e.Description)
	}
}

// Updatable are the Job fields an update may name in its mask.
var Updatable = []string{
	"display_name", "description", "connection", "mapping",
	"allow_new_records", "schedule", "enabled", "run_on_save",
}

// ApplyMask copies the fields named by paths from src into dst. An empty
// mask means every updatable field. Unknown or read-only paths are
// violations of "update_mask.paths[i]".
func ApplyMask(dst, src *intakev1.Job, paths []string) Violations {
	var vs Violations
	if len(paths) == 0 {
		paths = Updatable
	}
	var ok []protoreflect.FieldDescriptor
	fields := dst.ProtoReflect().Descriptor().Fields()
	for i, p := range paths {
		f := fmt.Sprintf("update_mask.paths[%d]", i)
		switch {
		case slices.Contains(Updatable, p):
			ok = append(ok, fields.ByName(protoreflect.Name(p)))
		case p == "object":
			vs.add(f, "the object of a job cannot be changed; create a new job")
		case fields.ByName(protoreflect.Name(p)) != nil:
			vs.add(f, "%q is output only", p)
		case strings.Contains(p, "."):
			top, _, _ := strings.Cut(p, ".")
			vs.add(f, "%q: only whole fields can be updated; name %q", p, top)
		default:
			vs.add(f, "unknown field %q (updatable: %s)", p, strings.Join(Updatable, ", "))
		}
	}
	if len(vs) > 0 {
		return vs
	}
	d, s := dst.ProtoReflect(), src.ProtoReflect()
	for _, fd := range ok {
		if s.Has(fd) {
			v := s.Get(fd)
			if fd.Message() != nil {
				v = protoreflect.ValueOfMessage(proto.Clone(v.Message().Interface()).ProtoReflect())
			}
			d.Set(fd, v)
		} else {
			d.Clear(fd)
		}
	}
	return nil
}

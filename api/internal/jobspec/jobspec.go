// Package jobspec checks a Job as a client sent it and applies field-mask
// updates to a stored Job. It knows nothing of gRPC or PostgreSQL: it returns
// field violations ("job.schedule.daily.hour", "25 is not an hour (0-23)")
// that the API turns into a google.rpc.BadRequest.
package jobspec

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/intakehq/intake/pkg/dialect"
	"github.com/intakehq/intake/pkg/mapping"
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
// the job in the request ("job"). model is the job's object with every
// attribute (custom ones included), nil when the object is unknown; the
// mapping is compiled against it (without the file: columns are not checked
// against a header, see ValidateMapping). It does not check whether a local
// connection is allowed: see IsLocal.
func Validate(prefix string, job *intakev1.Job, model *intakev1.DataObject) Violations {
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
	vs = append(vs, ValidateSource(prefix, job, model)...)
	validateMapping(&vs, f("mapping"), model, job.GetMapping())
	validateErrorBudget(&vs, f("error_budget"), job.GetErrorBudget())
	validateFailurePolicy(&vs, f("failure_policy"), job.GetFailurePolicy()) // failurepolicy.go
	validateRetention(&vs, f("retention"), job.GetRetention())              // retention.go

	if job.GetSchedule() == nil {
		if job.GetEnabled() {
			vs.add(f("schedule"), "required when the job is enabled")
		}
	} else {
		validateSchedule(&vs, f("schedule"), job.GetSchedule())
	}
	return vs
}

// ValidateSource checks what reading a job's file needs: its object (model
// is the object's data model, nil when unknown) and its connection.
func ValidateSource(prefix string, job *intakev1.Job, model *intakev1.DataObject) Violations {
	var vs Violations
	f := func(name string) string { return prefix + "." + name }
	switch t := job.GetObject(); {
	case t == intakev1.ObjectType_OBJECT_TYPE_UNSPECIFIED:
		vs.add(f("object"), "required (one of %s)", objectNames())
	case model == nil:
		vs.add(f("object"), "unknown object %d (one of %s)", int32(t), objectNames())
	}
	validateJobConnection(&vs, prefix, job) // connection.go
	return vs
}

// IsLocal reports whether the job reads a local file, which only a
// development deployment accepts.
func IsLocal(job *intakev1.Job) bool { return job.GetConnection().GetLocal() != nil }

func objectNames() string {
	var names []string
	for i := int32(1); ; i++ {
		n, ok := intakev1.ObjectType_name[i]
		if !ok {
			break
		}
		names = append(names, strings.TrimPrefix(n, "OBJECT_TYPE_"))
	}
	return strings.Join(names, ", ")
}

// validateConnection checks a job's inline connection: http (the file's
// URL) or local (the file's path), without secrets; s3 and sftp
// connections hold credentials, so a job names a stored one.
func validateConnection(vs *Violations, field string, c *intakev1.Connection) {
	const store = "store the connection (ConnectionService.CreateConnection) and name it in connection_name, with file"
	switch k := c.GetKind().(type) {
	case nil:
		vs.add(field, "required (http or local), or connection_name")
	case *intakev1.Connection_Http:
		validateHTTP(vs, field+".http", k.Http, true)
		switch {
		case k.Http.GetBasic() != nil:
			vs.add(field+".http.basic", "an inline connection may not hold secrets: %s", store)
		case k.Http.GetBearer() != nil:
			vs.add(field+".http.bearer", "an inline connection may not hold secrets: %s", store)
		}
	case *intakev1.Connection_Local:
		validateLocalPath(vs, field+".local.path", k.Local.GetPath())
	case *intakev1.Connection_S3:
		vs.add(field+".s3", "an S3 connection holds credentials, so it cannot be inline: %s", store)
	case *intakev1.Connection_Sftp:
		vs.add(field+".sftp", "an SFTP connection holds credentials, so it cannot be inline: %s", store)
	}
	if c.GetName() != "" {
		vs.add(field+".name", "an inline connection has no name; to use the stored connection %q set connection_name", c.GetName())
	}
}

func validateMapping(vs *Violations, field string, model *intakev1.DataObject, m *intakev1.MappingSpec) {
	if m == nil {
		vs.add(field, "required")
		return
	}
	if d := m.GetDialect(); d != nil {
		f := field + ".dialect"
		if _, err := dialect.Delimiter(d.GetDelimiter()); err != nil {
			vs.add(f+".delimiter", "%v", err)
		} else if d.GetHeaderRow() < 0 {
			vs.add(f+".header_row", "%d is not a row number (1 or more; 0 means 1)", d.GetHeaderRow())
		} else if d.GetSkipRows() < 0 {
			vs.add(f+".skip_rows", "%d is negative", d.GetSkipRows())
		} else if err := dialect.Validate(d); err != nil {
			vs.add(f, "%v", err)
		}
	}
	entries := m.GetEntries()
	if len(entries) == 0 {
		vs.add(field+".entries", "required: map at least the object's keys")
		return
	}
	if len(entries) > MaxEntries {
		vs.add(field+".entries", "%d entries, at most %d", len(entries), MaxEntries)
		return
	}
	if model == nil {
		return // the object is reported
	}
	// Everything but the file: the columns the mapping reads stand in for
	// the header, which only ValidateMapping reads.
	_, err := mapping.Compile(model, m, mapping.UsedColumns(m))
	var se *mapping.SpecError
	if err != nil && !errors.As(err, &se) {
		vs.add(field, "%v", err)
		return
	}
	if se == nil {
		return
	}
	for _, p := range se.Problems {
		if p.Code == mapping.CodeInvalidDialect {
			continue // the dialect is checked above (pkg/dialect reads more forms)
		}
		vs.add(ProblemField(field, p), "%s", p.Message)
	}
}

// ProblemField is the request field a mapping problem is about, under the
// mapping's path field ("job.mapping").
func ProblemField(field string, p mapping.Problem) string {
	if p.Entry < 0 {
		switch p.Code {
		case mapping.CodeInvalidDialect:
			return field + ".dialect"
		case mapping.CodeInvalidNewAttribute:
			return field + ".new_attributes"
		}
		return field + ".entries"
	}
	e := fmt.Sprintf("%s.entries[%d]", field, p.Entry)
	switch p.Code {
	case mapping.CodeMissingAttribute, mapping.CodeUnknownAttribute, mapping.CodeDuplicateAttribute:
		return e + ".attribute"
	case mapping.CodeInvalidFormat:
		return e + ".source_format"
	case mapping.CodeInvalidConstant:
		return e + ".constant"
	case mapping.CodeFunctionDoesNotCompile, mapping.CodeFunctionType:
		return e + ".function"
	case mapping.CodeColumnNotInHeader, mapping.CodeAmbiguousColumn:
		return e + ".column"
	}
	return e
}

// validateErrorBudget checks the most rejected rows a run may have.
func validateErrorBudget(vs *Violations, field string, b *intakev1.ErrorBudget) {
	switch l := b.GetLimit().(type) {
	case *intakev1.ErrorBudget_MaxRejectedRows:
		if l.MaxRejectedRows < 0 {
			vs.add(field+".max_rejected_rows", "%d is negative (0 or more rows)", l.MaxRejectedRows)
		}
	case *intakev1.ErrorBudget_MaxRejectedPercent:
		if p := l.MaxRejectedPercent; math.IsNaN(p) || p < 0 || p > 100 {
			vs.add(field+".max_rejected_percent", "%v is not a percentage (0-100)", p)
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
	"allow_new_records", "schedule", "enabled", "run_on_save", "error_budget",
	"failure_policy", "retention", "connection_name", "file",
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

// MappingHash identifies what a validation of a job checked: the SHA-256
// (hex) of the deterministic protobuf encoding of a Job holding only the
// job's object and mapping. A validation token fits a job whose MappingHash
// equals the token's.
func MappingHash(job *intakev1.Job) string {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(&intakev1.Job{Object: job.GetObject(), Mapping: job.GetMapping()})
	if err != nil {
		// Only invalid UTF-8 in a string field fails, which no decoded
		// request carries; hash something that matches no token.
		return "unencodable: " + err.Error()
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

package mapping

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	pipelinev1 "github.com/intakehq/intake/proto/gen/intake/pipeline/v1"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// Plan is a mapping spec compiled against the run's data model and the
// file's header. It is immutable and safe for concurrent use; map rows with
// a Mapper from NewMapper.
type Plan struct {
	model   *intakev1.DataObject
	comma   rune
	nulls   []string
	trim    bool
	header  []string
	index   map[string]int // header name -> first position
	fvars   map[string]int // column variables of the functions -> position
	hasFn   bool
	entries []entry
	attrs   []string
	types   []intakev1.AttributeType
	columns []string
	// Per row: how many cells of each wrapper kind the entries need.
	nText, nDecimal, nDate, nStamp int
	boolTrue, boolFalse            *pipelinev1.Value
	// loc is the time zone of timestamps written without one.
	loc *time.Location
	// mappers holds released Mappers for reuse.
	mappers sync.Pool
}

// source is where an entry's value comes from.
type source uint8

const (
	srcColumn source = iota
	srcConstant
	srcFunction
)

// entry is one compiled mapping entry.
type entry struct {
	attr   string
	src    source
	column string // source column; empty for a constant or a function
	col    int    // index in the record; -1 for a constant or a function
	key    bool
	conv   converter
	// slot is the entry's index among the row's cells of its value kind.
	slot int
	// constant holds the converted constant (no kind: null).
	constant *pipelinev1.Value
	// fn is the compiled function of a function entry.
	fn *function
}

// target is an attribute a mapping entry may fill.
type target struct {
	typ intakev1.AttributeType
	key bool
}

// CompileOptions are the options of CompileWith.
type CompileOptions struct {
	// Location is the time zone timestamps written without a zone are read
	// in: the job's schedule time zone (see JobLocation). Nil is UTC.
	Location *time.Location
}

// Compile checks spec against the run's data model (the object with every
// attribute and its type, DataObject.keys and required_any) and the file's
// header, and returns the plan that maps the file's records. Attributes
// declared in spec.new_attributes count as attributes of the object with
// their declared type (the API creates them when the job is saved). Every
// problem of the spec is reported at once in a *SpecError. Function entries
// are compiled and type-checked here, once. Timestamps without a zone are
// read as UTC; CompileWith reads them in another time zone.
func Compile(model *intakev1.DataObject, spec *intakev1.MappingSpec, header []string) (*Plan, error) {
	return CompileWith(model, spec, header, CompileOptions{})
}

// CompileWith is Compile with options: the time zone of timestamps written
// without one.
func CompileWith(model *intakev1.DataObject, spec *intakev1.MappingSpec, header []string, opts CompileOptions) (*Plan, error) {
	if model == nil {
		return nil, errors.New("mapping: compile: no data model")
	}
	var problems []Problem
	add := func(p Problem) { problems = append(problems, p) }
	addf := func(entry int, attr, column string, code Code, format string, args ...any) {
		add(Problem{Entry: entry, Attribute: attr, Column: column, Code: code, Message: fmt.Sprintf(format, args...)})
	}

	loc := opts.Location
	if loc == nil {
		loc = time.UTC
	}
	p := &Plan{
		loc:       loc,
		model:     model,
		header:    append([]string(nil), header...),
		boolTrue:  &pipelinev1.Value{Kind: &pipelinev1.Value_Boolean{Boolean: true}},
		boolFalse: &pipelinev1.Value{Kind: &pipelinev1.Value_Boolean{Boolean: false}},
	}
	dialect := spec.GetDialect()
	comma, err := Delimiter(dialect.GetDelimiter())
	if err != nil {
		addf(-1, "", "", CodeInvalidDialect, "%v", err)
	}
	p.comma = comma
	p.trim = dialect.GetTrimSpace()
	for _, nv := range dialect.GetNullValues() {
		if nv = trimSpace(nv); nv != "" && !slices.Contains(p.nulls, nv) {
			p.nulls = append(p.nulls, nv)
		}
	}

	// Header positions; a name that appears twice is ambiguous.
	p.index = make(map[string]int, len(header))
	count := make(map[string]int, len(header))
	for i, h := range header {
		if _, ok := p.index[h]; !ok {
			p.index[h] = i
		}
		count[h]++
	}

	targets, names := modelTargets(model)
	keys := modelKeys(model)
	for _, na := range spec.GetNewAttributes() {
		id := na.GetAttributeId()
		if reason := checkAttributeID(id); reason != "" {
			addf(-1, id, "", CodeInvalidNewAttribute, "new attribute %q: %s", id, reason)
			continue
		}
		t := na.GetType()
		if _, ok := intakev1.AttributeType_name[int32(t)]; !ok || t == intakev1.AttributeType_ATTRIBUTE_TYPE_UNSPECIFIED {
			addf(-1, id, "", CodeInvalidNewAttribute, "new attribute %s has no type (use text, number, currency, date, timestamp, boolean or foreign_key)", id)
			continue
		}
		if old, ok := targets[id]; ok {
			// Declared again after it was created: fine while the types agree.
			if old.typ != t {
				addf(-1, id, "", CodeInvalidNewAttribute, "new attribute %s is declared as %s, but %s already has it as %s", id, typeName(t), objectName(model), typeName(old.typ))
			}
			continue
		}
		targets[id] = target{typ: t}
		names = append(names, id)
	}

	var fenv *functionEnv    // built on the first function entry
	seen := map[string]int{} // attribute -> entry
	for i, e := range spec.GetEntries() {
		n := i + 1
		attr := e.GetAttribute()
		ecol := e.GetColumn() // the entry's column, for its problems
		if attr == "" {
			addf(i, "", ecol, CodeMissingAttribute, "entry %d has no attribute", n)
			continue
		}
		tg, ok := targets[attr]
		if !ok {
			addf(i, attr, ecol, CodeUnknownAttribute, "entry %d: %s has no attribute %q; its attributes are: %s", n, objectName(model), attr, strings.Join(names, ", "))
			continue
		}
		if first, dup := seen[attr]; dup {
			addf(i, attr, ecol, CodeDuplicateAttribute, "attribute %s is mapped twice (entries %d and %d)", attr, first+1, n)
			continue
		}
		seen[attr] = i
		en := entry{attr: attr, col: -1, key: tg.key || slices.Contains(keys, attr)}
		conv, ferr := newConverter(tg.typ, e.GetSourceFormat(), loc)
		if ferr != nil {
			addf(i, attr, ecol, CodeInvalidFormat, "entry %d (attribute %s): source format %v", n, attr, ferr)
		}
		en.conv = conv
		switch src := e.GetSource().(type) {
		case *intakev1.MappingEntry_Column:
			if src.Column == "" {
				addf(i, attr, "", CodeNoSource, "entry %d (attribute %s) has neither a column, a constant nor a function", n, attr)
				continue
			}
			en.src = srcColumn
			en.column = src.Column
			col, found := p.index[src.Column]
			switch {
			case !found:
				addf(i, attr, src.Column, CodeColumnNotInHeader, "column %q (entry %d, attribute %s) is not in the file's header;%s the header has: %s",
					src.Column, n, attr, suggest(src.Column, header), listHeader(header))
			case count[src.Column] > 1:
				addf(i, attr, src.Column, CodeAmbiguousColumn, "column %q (entry %d, attribute %s) appears %d times in the file's header", src.Column, n, attr, count[src.Column])
			}
			en.col = col
		case *intakev1.MappingEntry_Constant:
			en.src = srcConstant
			en.constant = &pipelinev1.Value{}
			if ferr != nil {
				break
			}
			c := trimSpace(src.Constant)
			if en.conv.keepsSpaces() && !p.trim {
				c = src.Constant
			}
			if trimSpace(c) == "" {
				if en.key {
					addf(i, attr, "", CodeInvalidConstant, "entry %d: key %s is mapped to an empty constant", n, attr)
				}
				break
			}
			var np numberParser
			k, reason := en.conv.convert(&np, c)
			if reason != "" {
				addf(i, attr, "", CodeInvalidConstant, "entry %d (attribute %s): invalid constant: %s", n, attr, reason)
				break
			}
			en.constant.Kind = k.wrap(p).Kind
		case *intakev1.MappingEntry_Function:
			en.src = srcFunction
			if strings.TrimSpace(src.Function) == "" {
				addf(i, attr, "", CodeNoSource, "entry %d (attribute %s) has an empty function", n, attr)
				continue
			}
			if fenv == nil {
				if fenv, err = newFunctionEnv(header); err != nil {
					return nil, fmt.Errorf("mapping: compile: %w", err)
				}
			}
			fn, fps := fenv.compile(i, attr, src.Function, &en.conv, ferr == nil, p.index, count, header)
			problems = append(problems, fps...)
			en.fn = fn
		default:
			addf(i, attr, "", CodeNoSource, "entry %d (attribute %s) has neither a column, a constant nor a function", n, attr)
			continue
		}
		p.entries = append(p.entries, en)
	}

	var modelProblems []Problem
	for _, k := range keys {
		if _, ok := seen[k]; !ok {
			modelProblems = append(modelProblems, Problem{Entry: -1, Attribute: k, Code: CodeKeyNotMapped,
				Message: fmt.Sprintf("key attribute %s is not mapped", k)})
		}
	}
	if req := model.GetRequiredAny(); len(req) > 0 && !slices.ContainsFunc(req, func(a string) bool { _, ok := seen[a]; return ok }) {
		msg := fmt.Sprintf("%s needs at least one of %s mapped", objectName(model), strings.Join(req, ", "))
		if len(req) == 1 {
			msg = fmt.Sprintf("%s needs %s mapped", objectName(model), req[0])
		}
		modelProblems = append(modelProblems, Problem{Entry: -1, Attribute: strings.Join(req, ","), Code: CodeRequiredAnyNotMapped, Message: msg})
	}
	if len(problems)+len(modelProblems) > 0 {
		return nil, &SpecError{Problems: append(modelProblems, problems...)}
	}
	if fenv != nil {
		p.fvars, p.hasFn = fenv.vars, true
	}
	for i := range p.entries {
		e := &p.entries[i]
		p.attrs = append(p.attrs, e.attr)
		p.types = append(p.types, e.conv.typ)
		p.columns = append(p.columns, e.column)
		if e.src == srcConstant {
			continue
		}
		switch e.conv.wrapper() {
		case kText:
			e.slot = p.nText
			p.nText++
		case kDecimal:
			e.slot = p.nDecimal
			p.nDecimal++
		case kDate:
			e.slot = p.nDate
			p.nDate++
		case kTimestamp:
			e.slot = p.nStamp
			p.nStamp++
		}
	}
	return p, nil
}

// modelTargets returns the model's attributes by id, and their ids in order.
func modelTargets(model *intakev1.DataObject) (map[string]target, []string) {
	targets := make(map[string]target, len(model.GetAttributes()))
	names := make([]string, 0, len(model.GetAttributes()))
	for _, a := range model.GetAttributes() {
		id := a.GetAttributeId()
		if _, dup := targets[id]; dup || id == "" {
			continue
		}
		targets[id] = target{typ: a.GetType(), key: a.GetKey()}
		names = append(names, id)
	}
	return targets, names
}

// modelKeys returns the model's keys: DataObject.keys, then any attribute
// marked key that the list lacks.
func modelKeys(model *intakev1.DataObject) []string {
	keys := slices.Clone(model.GetKeys())
	for _, a := range model.GetAttributes() {
		if a.GetKey() && !slices.Contains(keys, a.GetAttributeId()) {
			keys = append(keys, a.GetAttributeId())
		}
	}
	return keys
}

// objectName names the model's object for messages: "accounts".
func objectName(model *intakev1.DataObject) string {
	if n, ok := strings.CutPrefix(model.GetName(), "objects/"); ok && n != "" {
		return n
	}
	if model.GetDisplayName() != "" {
		return model.GetDisplayName()
	}
	if model.GetType() != intakev1.ObjectType_OBJECT_TYPE_UNSPECIFIED {
		return strings.ToLower(strings.TrimPrefix(model.GetType().String(), "OBJECT_TYPE_"))
	}
	return "the object"
}

// checkAttributeID says why id is not a valid attribute id, or "".
func checkAttributeID(id string) string {
	switch {
	case id == "":
		return "the id is empty"
	case len(id) > 63:
		return "the id is longer than 63 characters"
	case id[0] < 'a' || id[0] > 'z':
		return "the id must start with a lowercase letter"
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return "the id may hold only lowercase letters, digits and '_'"
		}
	}
	return ""
}

// Model is the data model the plan was compiled against.
func (p *Plan) Model() *intakev1.DataObject { return p.model }

// Location is the time zone timestamps written without a zone are read in.
func (p *Plan) Location() *time.Location { return p.loc }

// Attributes are the target attributes, in the order of a row's values,
// which is the order of the spec's entries.
func (p *Plan) Attributes() []string { return append([]string(nil), p.attrs...) }

// Types are the types of the target attributes, in the order of Attributes
// (for Batch.types).
func (p *Plan) Types() []intakev1.AttributeType {
	return append([]intakev1.AttributeType(nil), p.types...)
}

// Columns are the source columns, in the order of a row's values; empty for
// an attribute filled with a constant or a function.
func (p *Plan) Columns() []string { return append([]string(nil), p.columns...) }

// Comma is the field delimiter of the dialect.
func (p *Plan) Comma() rune { return p.comma }

// Header is the header the plan was compiled against.
func (p *Plan) Header() []string { return append([]string(nil), p.header...) }

// Delimiter resolves a dialect's delimiter: "" is a comma; "\t" (the
// character, or written as `\t` or "tab") is a tab; otherwise one character
// that is not a quote or a line break.
func Delimiter(d string) (rune, error) {
	switch d {
	case "":
		return ',', nil
	case `\t`, "tab", "TAB", "\t":
		return '\t', nil
	}
	r, w := utf8.DecodeRuneInString(d)
	if w != len(d) {
		return 0, fmt.Errorf("the delimiter %q is not one character", d)
	}
	if r == '"' || r == '\r' || r == '\n' || r == utf8.RuneError || r == 0 {
		return 0, fmt.Errorf("the delimiter %q cannot be used (not a quote, a line break or a NUL)", d)
	}
	return r, nil
}

// listHeader lists the header's columns for an error message.
func listHeader(header []string) string {
	if len(header) == 0 {
		return "no columns"
	}
	const max = 40
	var b strings.Builder
	for i, h := range header {
		if i == max {
			fmt.Fprintf(&b, ", … (%d more)", len(header)-max)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(fmt.Sprintf("%q", h))
	}
	return b.String()
}

// suggest proposes a header column that differs from col only in case,
// spaces or punctuation ("Account ID" for "account_id").
func suggest(col string, header []string) string {
	want := NormalizeName(col)
	if want == "" {
		return ""
	}
	for _, h := range header {
		if NormalizeName(h) == want {
			return fmt.Sprintf(" did you mean %q?", h)
		}
	}
	return ""
}

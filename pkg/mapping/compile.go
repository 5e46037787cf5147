package mapping

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/intakehq/intake/pkg/objects"
	pipelinev1 "github.com/intakehq/intake/proto/gen/intake/pipeline/v1"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// Plan is a mapping spec compiled against a file's header. It is immutable
// and safe for concurrent use; map rows with a Mapper from NewMapper.
type Plan struct {
	object  *objects.Object
	comma   rune
	nulls   []string
	header  []string
	entries []entry
	attrs   []string
	columns []string
	// Per row: how many cells of each wrapper kind the column entries need.
	nText, nDecimal, nDate int
	boolTrue, boolFalse    *pipelinev1.Value
	// mappers holds released Mappers for reuse.
	mappers sync.Pool
}

// entry is one compiled mapping entry.
type entry struct {
	attr   string
	column string // source column; empty for a constant
	col    int    // index in the record; -1 for a constant
	key    bool
	conv   converter
	// slot is the entry's index among the row's cells of its value kind.
	slot int
	// constant holds the converted constant (no kind: null).
	constant *pipelinev1.Value
}

// Compile checks spec against the object and the file's header and returns
// the plan that maps the file's records. Every problem of the spec is
// reported at once in a *SpecError.
func Compile(obj *objects.Object, spec *intakev1.MappingSpec, header []string) (*Plan, error) {
	if obj == nil {
		return nil, errors.New("mapping: compile: no object")
	}
	var problems []Problem
	add := func(entry int, attr string, code Code, format string, args ...any) {
		problems = append(problems, Problem{Entry: entry, Attribute: attr, Code: code, Message: fmt.Sprintf(format, args...)})
	}

	p := &Plan{
		object:    obj,
		header:    append([]string(nil), header...),
		boolTrue:  &pipelinev1.Value{Kind: &pipelinev1.Value_Boolean{Boolean: true}},
		boolFalse: &pipelinev1.Value{Kind: &pipelinev1.Value_Boolean{Boolean: false}},
	}
	comma, err := Delimiter(spec.GetDialect().GetDelimiter())
	if err != nil {
		add(-1, "", CodeInvalidDialect, "%v", err)
	}
	p.comma = comma
	for _, nv := range spec.GetDialect().GetNullValues() {
		if nv = trimSpace(nv); nv != "" {
			p.nulls = append(p.nulls, nv)
		}
	}

	// Header positions; a name that appears twice is ambiguous.
	index := make(map[string]int, len(header))
	count := make(map[string]int, len(header))
	for i, h := range header {
		if _, ok := index[h]; !ok {
			index[h] = i
		}
		count[h]++
	}

	seen := map[string]int{} // attribute -> entry
	var keyProblems []Problem
	for i, e := range spec.GetEntries() {
		n := i + 1
		attr := e.GetAttribute()
		if attr == "" {
			add(i, "", CodeMissingAttribute, "entry %d has no attribute", n)
			continue
		}
		a, ok := obj.Attribute(attr)
		if !ok {
			add(i, attr, CodeUnknownAttribute, "entry %d: %s has no attribute %q; its attributes are: %s", n, obj.Name, attr, attributeNames(obj))
			continue
		}
		if first, dup := seen[attr]; dup {
			add(i, attr, CodeDuplicateAttribute, "attribute %s is mapped twice (entries %d and %d)", attr, first+1, n)
			continue
		}
		seen[attr] = i
		en := entry{attr: attr, col: -1, key: obj.IsKey(attr)}
		conv, ferr := newConverter(a.Type, e.GetSourceFormat())
		if ferr != nil {
			add(i, attr, CodeInvalidFormat, "entry %d (attribute %s): source format %v", n, attr, ferr)
		}
		en.conv = conv
		switch src := e.GetSource().(type) {
		case *intakev1.MappingEntry_Column:
			if src.Column == "" {
				add(i, attr, CodeNoSource, "entry %d (attribute %s) has neither a column nor a constant", n, attr)
				continue
			}
			en.column = src.Column
			col, found := index[src.Column]
			switch {
			case !found:
				add(i, attr, CodeColumnNotInHeader, "column %q (entry %d, attribute %s) is not in the file's header;%s the header has: %s",
					src.Column, n, attr, suggest(src.Column, header), listHeader(header))
			case count[src.Column] > 1:
				add(i, attr, CodeAmbiguousColumn, "column %q (entry %d, attribute %s) appears %d times in the file's header", src.Column, n, attr, count[src.Column])
			}
			en.col = col
		case *intakev1.MappingEntry_Constant:
			en.constant = &pipelinev1.Value{}
			if ferr != nil {
				break
			}
			c := trimSpace(src.Constant)
			if en.conv.typ == intakev1.AttributeType_ATTRIBUTE_TYPE_TEXT {
				c = src.Constant
			}
			if trimSpace(c) == "" {
				if en.key {
					add(i, attr, CodeInvalidConstant, "entry %d: key %s is mapped to an empty constant", n, attr)
				}
				break
			}
			var np numberParser
			k, reason := en.conv.convert(&np, c)
			if reason != "" {
				add(i, attr, CodeInvalidConstant, "entry %d (attribute %s): invalid constant: %s", n, attr, reason)
				break
			}
			en.constant.Kind = k.wrap(p).Kind
		default:
			add(i, attr, CodeNoSource, "entry %d (attribute %s) has neither a column nor a constant", n, attr)
			continue
		}
		p.entries = append(p.entries, en)
	}
	for _, k := range obj.Keys {
		if _, ok := seen[k]; !ok {
			keyProblems = append(keyProblems, Problem{Entry: -1, Attribute: k, Code: CodeKeyNotMapped,
				Message: fmt.Sprintf("key attribute %s is not mapped", k)})
		}
	}
	if len(problems)+len(keyProblems) > 0 {
		return nil, &SpecError{Problems: append(keyProblems, problems...)}
	}
	for i := range p.entries {
		e := &p.entries[i]
		p.attrs = append(p.attrs, e.attr)
		p.columns = append(p.columns, e.column)
		if e.col < 0 {
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
		}
	}
	return p, nil
}

// Object is the target object.
func (p *Plan) Object() *objects.Object { return p.object }

// Attributes are the target attributes, in the order of a row's values.
func (p *Plan) Attributes() []string { return append([]string(nil), p.attrs...) }

// Columns are the source columns, in the order of a row's values; empty for
// an attribute filled with a constant.
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

func attributeNames(obj *objects.Object) string {
	names := make([]string, len(obj.Attributes))
	for i, a := range obj.Attributes {
		names[i] = a.Name
	}
	return strings.Join(names, ", ")
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

// suggest proposes a header column that differs from col only in case or
// surrounding spaces.
func suggest(col string, header []string) string {
	want := strings.ToLower(strings.TrimSpace(strings.TrimPrefix(col, "\ufeff")))
	for _, h := range header {
		if strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))) == want {
			return fmt.Sprintf(" did you mean %q?", h)
		}
	}
	return ""
}

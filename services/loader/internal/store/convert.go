package store

import (
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/intakehq/intake/pkg/objects"
	pipelinev1 "github.com/intakehq/intake/proto/gen/intake/pipeline/v1"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// shape is what a run loads: the target object, whether new keys may be
// inserted, and the mapped attributes.
type shape struct {
	object     *objects.Object
	allowNew   bool
	attributes []objects.Attribute
}

// names are the mapped attribute names, in order.
func (s *shape) names() []string {
	out := make([]string, len(s.attributes))
	for i, a := range s.attributes {
		out[i] = a.Name
	}
	return out
}

// newShape checks a message's object and attributes against the data model.
// what says where they come from, for the error message.
func newShape(what string, t intakev1.ObjectType, allowNew bool, attrs []string) (*shape, error) {
	obj, err := objects.Lookup(t)
	if err != nil {
		return nil, invalidf("%s: object %v is not a known object", what, t)
	}
	sh := &shape{object: obj, allowNew: allowNew}
	seen := make(map[string]bool, len(attrs))
	for i, name := range attrs {
		a, ok := obj.Attribute(name)
		if !ok {
			return nil, invalidf("%s: attribute %d %q is not an attribute of %s", what, i+1, name, obj.Name)
		}
		if seen[name] {
			return nil, invalidf("%s: attribute %q is mapped twice", what, name)
		}
		seen[name] = true
		sh.attributes = append(sh.attributes, a)
	}
	for _, k := range obj.Keys {
		if !seen[k] {
			return nil, invalidf("%s: key attribute %q of %s is not mapped", what, k, obj.Name)
		}
	}
	return sh, nil
}

// sameAttributes reports whether a and b hold the same attribute names, in
// any order.
func sameAttributes(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// convertRows turns a batch's rows into COPY rows: the row number, then one
// Go value per attribute that pgx encodes in binary for the column's type.
func convertRows(sh *shape, b *pipelinev1.Batch) ([][]any, error) {
	out := make([][]any, len(b.Rows))
	// One backing array for the whole batch: a single allocation.
	width := len(sh.attributes) + 1
	cells := make([]any, len(b.Rows)*width)
	for i, r := range b.Rows {
		if len(r.Values) != len(sh.attributes) {
			return nil, invalidf("chunk %d, row %d: %d values for %d attributes", b.Chunk, r.Row, len(r.Values), len(sh.attributes))
		}
		row := cells[i*width : (i+1)*width : (i+1)*width]
		row[0] = r.Row
		for j, v := range r.Values {
			a := sh.attributes[j]
			x, err := convertValue(a.Type, v)
			if err != nil {
				return nil, invalidf("chunk %d, row %d, attribute %s: %v", b.Chunk, r.Row, a.Name, err)
			}
			if x == nil && sh.object.IsKey(a.Name) {
				return nil, invalidf("chunk %d, row %d: key attribute %s is empty", b.Chunk, r.Row, a.Name)
			}
			row[j+1] = x
		}
		out[i] = row
	}
	return out, nil
}

// convertValue converts one cell to the Go value of the attribute's column
// type; a value without a kind is NULL.
func convertValue(t intakev1.AttributeType, v *pipelinev1.Value) (any, error) {
	if v == nil || v.Kind == nil {
		return nil, nil
	}
	pg := objects.PostgresType(t)
	switch k := v.Kind.(type) {
	case *pipelinev1.Value_Text:
		if pg == "text" {
			return k.Text, nil
		}
	case *pipelinev1.Value_Decimal:
		if pg == "numeric" {
			var n pgtype.Numeric
			if err := n.Scan(k.Decimal); err != nil {
				return nil, fmt.Errorf("%q is not a decimal number", k.Decimal)
			}
			return n, nil
		}
	case *pipelinev1.Value_Date:
		if pg == "date" {
			return pgtype.Date{Time: time.Unix(int64(k.Date)*86400, 0).UTC(), Valid: true}, nil
		}
	case *pipelinev1.Value_Boolean:
		if pg == "boolean" {
			return k.Boolean, nil
		}
	}
	return nil, fmt.Errorf("a %s value cannot go into a %s column", kindName(v), pg)
}

func kindName(v *pipelinev1.Value) string {
	switch v.Kind.(type) {
	case *pipelinev1.Value_Text:
		return "text"
	case *pipelinev1.Value_Decimal:
		return "decimal"
	case *pipelinev1.Value_Date:
		return "date"
	case *pipelinev1.Value_Boolean:
		return "boolean"
	default:
		return fmt.Sprintf("%T", v.Kind)
	}
}

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
// inserted, and the mapped attributes with their types.
type shape struct {
	object     *objects.Object
	allowNew   bool
	attributes []objects.Attribute
	// schema holds the object tables of the run's tenant: objects.Schema
	// when empty (the default tenant). Set by merge.
	schema string
}

// schemaName is the schema of the run's object table.
func (s *shape) schemaName() string {
	if s.schema == "" {
		return objects.Schema
	}
	return s.schema
}

// table is the run's object table in its tenant's schema, quoted.
func (s *shape) table() string { return s.object.TableIn(s.schemaName()) }

// tableName is the run's object table as people read it:
// "objects_acme.accounts".
func (s *shape) tableName() string { return s.object.TableNameIn(s.schemaName()) }

// names are the mapped attribute names, in order.
func (s *shape) names() []string {
	out := make([]string, len(s.attributes))
	for i, a := range s.attributes {
		out[i] = a.Name
	}
	return out
}

// typed reports whether the type of every attribute is known (a seal does
// not carry the types of custom attributes; a batch does).
func (s *shape) typed() bool {
	for _, a := range s.attributes {
		if a.Type == intakev1.AttributeType_ATTRIBUTE_TYPE_UNSPECIFIED {
			return false
		}
	}
	return true
}

// types are the attribute types in the order of names.
func (s *shape) types() []int32 {
	out := make([]int32, len(s.attributes))
	for i, a := range s.attributes {
		out[i] = int32(a.Type)
	}
	return out
}

// typeOf returns the type of the named attribute, UNSPECIFIED when unknown.
func (s *shape) typeOf(name string) intakev1.AttributeType {
	for _, a := range s.attributes {
		if a.Name == name {
			return a.Type
		}
	}
	return intakev1.AttributeType_ATTRIBUTE_TYPE_UNSPECIFIED
}

// newShape checks a message's object and attributes against the data model.
// what says where they come from, for the error message. types are the
// attribute types, in the order of attrs (Batch.types): a system attribute
// must have its own type; any other attribute is a custom one (a column
// added through the DataModelService) and takes the type given. Without
// types, system attributes have their own and custom ones stay UNSPECIFIED
// (see typed), unless needTypes (a batch) makes that an error.
func newShape(what string, t intakev1.ObjectType, allowNew bool, attrs []string, types []intakev1.AttributeType, needTypes bool) (*shape, error) {
	obj, err := objects.Lookup(t)
	if err != nil {
		return nil, invalidf("%s: object %v is not a known object", what, t)
	}
	if len(types) > 0 && len(types) != len(attrs) {
		return nil, invalidf("%s: %d types for %d attributes", what, len(types), len(attrs))
	}
	sh := &shape{object: obj, allowNew: allowNew}
	seen := make(map[string]bool, len(attrs))
	for i, name := range attrs {
		var typ intakev1.AttributeType
		if len(types) > 0 {
			typ = types[i]
			if _, ok := intakev1.AttributeType_name[int32(typ)]; !ok || typ == intakev1.AttributeType_ATTRIBUTE_TYPE_UNSPECIFIED {
				return nil, invalidf("%s: attribute %d %q has no valid type (%v)", what, i+1, name, typ)
			}
		}
		a, system := obj.Attribute(name)
		switch {
		case system && typ != intakev1.AttributeType_ATTRIBUTE_TYPE_UNSPECIFIED && typ != a.Type:
			return nil, invalidf("%s: attribute %d %q of %s is %s, not %s", what, i+1, name, obj.Name,
				objects.TypeName(a.Type), objects.TypeName(typ))
		case system:
		case objects.CheckAttributeID(name) != nil:
			return nil, invalidf("%s: attribute %d %q is not an attribute of %s: %v", what, i+1, name, obj.Name, objects.CheckAttributeID(name))
		case len(types) == 0 && needTypes:
			return nil, invalidf("%s: attribute %d %q is not an attribute of %s (and the batch gives no type for it)", what, i+1, name, obj.Name)
		default:
			a = objects.Attribute{Name: name, Type: typ}
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
	case *pipelinev1.Value_Timestamp:
		if pg == "timestamptz" {
			return pgtype.Timestamptz{Time: time.UnixMicro(k.Timestamp).UTC(), Valid: true}, nil
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
	case *pipelinev1.Value_Timestamp:
		return "timestamp"
	default:
		return fmt.Sprintf("%T", v.Kind)
	}
}

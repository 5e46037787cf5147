// Package objects is the data model: the target objects of an import, their
// key attributes and their typed attributes, and the PostgreSQL tables that
// hold them. It is the single description the mapper, the loader and the
// control API agree on.
package objects

import (
	"fmt"
	"slices"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// Schema is the PostgreSQL schema of the object tables.
const Schema = "objects"

// Attribute is one typed column of an object table.
type Attribute struct {
	Name string
	Type intakev1.AttributeType
}

// Object is a target of imports.
type Object struct {
	Type intakev1.ObjectType
	// Name is the user-facing name and the table name, e.g. "accounts".
	Name string
	// Keys identify a record; every key must be mapped.
	Keys []string
	// Attributes are every column, keys first.
	Attributes []Attribute
}

// Table is the schema-qualified, quoted table name.
func (o *Object) Table() string { return fmt.Sprintf("%q.%q", Schema, o.Name) }

// Attribute returns the attribute with the given name.
func (o *Object) Attribute(name string) (Attribute, bool) {
	for _, a := range o.Attributes {
		if a.Name == name {
			return a, true
		}
	}
	return Attribute{}, false
}

// IsKey reports whether name is one of the object's keys.
func (o *Object) IsKey(name string) bool { return slices.Contains(o.Keys, name) }

var (
	text     = intakev1.AttributeType_ATTRIBUTE_TYPE_TEXT
	number   = intakev1.AttributeType_ATTRIBUTE_TYPE_NUMBER
	date     = intakev1.AttributeType_ATTRIBUTE_TYPE_DATE
	currency = intakev1.AttributeType_ATTRIBUTE_TYPE_CURRENCY
	boolean  = intakev1.AttributeType_ATTRIBUTE_TYPE_BOOLEAN
)

// The objects, in a fixed order. The table definitions in
// pkg/schema/migrations must match them (a test checks it).
var all = []*Object{
	{
		Type: intakev1.ObjectType_OBJECT_TYPE_ACCOUNTS,
		Name: "accounts",
		Keys: []string{"account_id"},
		Attributes: []Attribute{
			{"account_id", text},
			{"name", text},
			{"status", text},
			{"industry", text},
			{"region", text},
			{"parent_account_id", text},
			{"employees", number},
			{"annual_revenue", currency},
			{"mrr", currency},
			{"is_active", boolean},
			{"created_date", date},
			{"renewal_date", date},
			{"notes", text},
		},
	},
	{
		Type: intakev1.ObjectType_OBJECT_TYPE_USERS,
		Name: "users",
		Keys: []string{"account_id", "user_id"},
		Attributes: []Attribute{
			{"account_id", text},
			{"user_id", text},
			{"name", text},
			{"email", text},
			{"title", text},
			{"role", text},
			{"logins", number},
			{"is_active", boolean},
			{"created_date", date},
			{"last_login_date", date},
		},
	},
}

// Lookup returns the object of the given type.
func Lookup(t intakev1.ObjectType) (*Object, error) {
	for _, o := range all {
		if o.Type == t {
			return o, nil
		}
	}
	return nil, fmt.Errorf("unknown object %v", t)
}

// All returns every object.
func All() []*Object { return slices.Clone(all) }

// PostgresType is the column type of an attribute type.
func PostgresType(t intakev1.AttributeType) string {
	switch t {
	case number, currency:
		return "numeric"
	case date:
		return "date"
	case boolean:
		return "boolean"
	default:
		return "text"
	}
}

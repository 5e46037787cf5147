// Package objects is the data model: the ten target objects of an import,
// their keys, their system attributes with types, and the PostgreSQL tables
// that hold them. It is the single description the mapper, the loader and
// the control API agree on.
//
// An object's system attributes are static (this file; the migrations in
// pkg/schema create the matching tables, a test checks it). Custom
// attributes are added at run time through the control API's
// DataModelService: they live in intake.attributes and as extra columns of
// the object tables. Model merges them into an object's
// intake.v1.DataObject, which is what travels with a run
// (RunRequest.model).
//
// A few modelling decisions worth knowing:
//   - usage is append-only: a row whose keys exist already is never
//     updated (see DataObject.append_only). Its "timestamp" key is a
//     Timestamp (timestamptz, an instant to the microsecond): a Date would
//     hold only the day and merge the events of one day into one. The same
//     instant written with another offset (10:00Z, 11:00+01:00) is the
//     same key.
//   - usage_aggregations is identified by account, user, aggregation
//     ("module##activity") and date; its value must be mapped too
//     (required_any = [value]) but is not part of the key, so importing a
//     corrected value updates the day's row instead of adding a second one.
//   - touchpoints need a subject or a content (required_any).
//   - keys are Text; attributes that name a record of another object (a
//     task's assignee, a touchpoint's owner) are Foreign Keys.
package objects

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// Schema is the PostgreSQL schema of the object tables of the default
// tenant; another tenant's are in a schema of its own (the control API
// makes it: "objects_<tenant>"), with the same tables.
const Schema = "objects"

// Attribute is one typed column of an object table.
type Attribute struct {
	// Name is the attribute id, also the column name.
	Name string
	Type intakev1.AttributeType
	// DisplayName is the user-facing name.
	DisplayName string
	// References is, for FOREIGN_KEY attributes, the object referred to
	// ("objects/accounts").
	References  string
	Description string
}

// Object is a target of imports.
type Object struct {
	Type intakev1.ObjectType
	// Name is the object id, also the table name, e.g. "accounts".
	Name string
	// DisplayName is the user-facing name, e.g. "Accounts".
	DisplayName string
	// Keys identify a record; every key must be mapped.
	Keys []string
	// RequiredAny: at least one of these must be mapped (empty: no rule).
	RequiredAny []string
	// AppendOnly objects never update a record whose keys exist.
	AppendOnly bool
	// Attributes are the system attributes, keys first.
	Attributes []Attribute
}

// Table is the schema-qualified, quoted table name.
func (o *Object) Table() string { return fmt.Sprintf("%q.%q", Schema, o.Name) }

// TableIn is the object's table in another schema (a tenant's, see
// Schema), qualified and quoted: "objects_acme"."accounts".
func (o *Object) TableIn(schema string) string { return fmt.Sprintf("%q.%q", schema, o.Name) }

// TableNameIn is the object's table in schema as DataObject.table has it,
// e.g. "objects_acme.accounts".
func (o *Object) TableNameIn(schema string) string { return schema + "." + o.Name }

// TableName is the schema-qualified table name as DataObject.table has it,
// e.g. "objects.accounts".
func (o *Object) TableName() string { return Schema + "." + o.Name }

// ResourceName is the object's resource name, e.g. "objects/accounts".
func (o *Object) ResourceName() string { return "objects/" + o.Name }

// AttributeName is the resource name of one of the object's attributes.
func (o *Object) AttributeName(id string) string { return o.ResourceName() + "/attributes/" + id }

// Attribute returns the system attribute with the given name.
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

// Model is the object as an intake.v1.DataObject: keys, rules, table, and
// every attribute — the system ones (keys first), then custom, in the order
// given. Custom attributes are copied; their name, system and key fields
// are set to what they are for this object. A custom attribute whose id is
// a system attribute's is left out (the system one wins).
func (o *Object) Model(custom ...*intakev1.Attribute) *intakev1.DataObject {
	m := &intakev1.DataObject{
		Name:        o.ResourceName(),
		Type:        o.Type,
		DisplayName: o.DisplayName,
		Keys:        slices.Clone(o.Keys),
		RequiredAny: slices.Clone(o.RequiredAny),
		AppendOnly:  o.AppendOnly,
		Table:       o.TableName(),
	}
	for _, a := range o.Attributes {
		m.Attributes = append(m.Attributes, &intakev1.Attribute{
			Name:        o.AttributeName(a.Name),
			AttributeId: a.Name,
			DisplayName: a.DisplayName,
			Type:        a.Type,
			System:      true,
			Key:         o.IsKey(a.Name),
			References:  a.References,
			Description: a.Description,
		})
	}
	for _, c := range custom {
		if c == nil {
			continue
		}
		if _, sys := o.Attribute(c.GetAttributeId()); sys {
			continue
		}
		a := proto.Clone(c).(*intakev1.Attribute)
		a.Name = o.AttributeName(a.GetAttributeId())
		a.System, a.Key = false, false
		if a.DisplayName == "" {
			a.DisplayName = DisplayName(a.GetAttributeId())
		}
		m.Attributes = append(m.Attributes, a)
	}
	return m
}

// Model returns the DataObject of the object of type t with the given
// custom attributes (see Object.Model).
func Model(t intakev1.ObjectType, custom ...*intakev1.Attribute) (*intakev1.DataObject, error) {
	o, err := Lookup(t)
	if err != nil {
		return nil, err
	}
	return o.Model(custom...), nil
}

var (
	text       = intakev1.AttributeType_ATTRIBUTE_TYPE_TEXT
	number     = intakev1.AttributeType_ATTRIBUTE_TYPE_NUMBER
	date       = intakev1.AttributeType_ATTRIBUTE_TYPE_DATE
	currency   = intakev1.AttributeType_ATTRIBUTE_TYPE_CURRENCY
	boolean    = intakev1.AttributeType_ATTRIBUTE_TYPE_BOOLEAN
	foreignKey = intakev1.AttributeType_ATTRIBUTE_TYPE_FOREIGN_KEY
	timestamp  = intakev1.AttributeType_ATTRIBUTE_TYPE_TIMESTAMP
)

// a is a system attribute.
func a(name string, t intakev1.AttributeType, display string) Attribute {
	return Attribute{Name: name, Type: t, DisplayName: display}
}

// fk is a system foreign key to the object named ref ("team_users").
func fk(name, ref, display string) Attribute {
	return Attribute{Name: name, Type: foreignKey, DisplayName: display, References: "objects/" + ref}
}

// described sets an attribute's description.
func described(at Attribute, d string) Attribute { at.Description = d; return at }

// The objects, in a fixed order. The table definitions in
// pkg/schema/migrations must match them (a test checks it).
var all = []*Object{
	{
		Type:        intakev1.ObjectType_OBJECT_TYPE_ACCOUNTS,
		Name:        "accounts",
		DisplayName: "Accounts",
		Keys:        []string{"account_id"},
		Attributes: []Attribute{
			a("account_id", text, "Account ID"),
			a("name", text, "Name"),
			a("status", text, "Status"),
			a("industry", text, "Industry"),
			a("region", text, "Region"),
			a("parent_account_id", text, "Parent account ID"),
			a("employees", number, "Employees"),
			a("annual_revenue", currency, "Annual revenue"),
			a("mrr", currency, "MRR"),
			a("is_active", boolean, "Active"),
			a("created_date", date, "Created date"),
			a("renewal_date", date, "Renewal date"),
			a("notes", text, "Notes"),
		},
	},
	{
		Type:        intakev1.ObjectType_OBJECT_TYPE_USERS,
		Name:        "users",
		DisplayName: "Users",
		Keys:        []string{"account_id", "user_id"},
		Attributes: []Attribute{
			a("account_id", text, "Account ID"),
			a("user_id", text, "User ID"),
			a("name", text, "Name"),
			a("email", text, "Email"),
			a("title", text, "Title"),
			a("role", text, "Role"),
			a("logins", number, "Logins"),
			a("is_active", boolean, "Active"),
			a("created_date", date, "Created date"),
			a("last_login_date", date, "Last login date"),
		},
	},
	{
		Type:        intakev1.ObjectType_OBJECT_TYPE_USAGE,
		Name:        "usage",
		DisplayName: "Usage",
		Keys:        []string{"account_id", "user_id", "activity", "module", "timestamp"},
		AppendOnly:  true,
		Attributes: []Attribute{
			a("account_id", text, "Account ID"),
			a("user_id", text, "User ID"),
			a("activity", text, "Activity"),
			a("module", text, "Module"),
			described(a("timestamp", timestamp, "Timestamp"),
				"When the event happened, to the microsecond. A value without a zone is read in the job's time zone."),
		},
	},
	{
		Type:        intakev1.ObjectType_OBJECT_TYPE_COLLECTIONS,
		Name:        "collections",
		DisplayName: "Collections",
		Keys:        []string{"account_id", "collection_id"},
		Attributes: []Attribute{
			a("account_id", text, "Account ID"),
			a("collection_id", text, "Collection ID"),
			a("name", text, "Name"),
			a("type", text, "Type"),
			a("status", text, "Status"),
			a("created_date", date, "Created date"),
		},
	},
	{
		Type:        intakev1.ObjectType_OBJECT_TYPE_USAGE_AGGREGATIONS,
		Name:        "usage_aggregations",
		DisplayName: "Usage aggregations",
		Keys:        []string{"account_id", "user_id", "aggregation", "date"},
		RequiredAny: []string{"value"},
		Attributes: []Attribute{
			a("account_id", text, "Account ID"),
			a("user_id", text, "User ID"),
			described(a("aggregation", text, "Aggregation"), `What is counted, as "module##activity".`),
			a("date", date, "Date"),
			a("value", number, "Value"),
		},
	},
	{
		Type:        intakev1.ObjectType_OBJECT_TYPE_TEAM_USERS,
		Name:        "team_users",
		DisplayName: "Team users",
		Keys:        []string{"email"},
		Attributes: []Attribute{
			a("email", text, "Email"),
			a("first_name", text, "First name"),
			a("last_name", text, "Last name"),
			a("license", text, "License"),
			described(a("teams", text, "Teams"), "The teams the user belongs to, as the file lists them."),
			a("active", boolean, "Active"),
			a("title", text, "Title"),
		},
	},
	{
		Type:        intakev1.ObjectType_OBJECT_TYPE_ACCOUNT_ASSIGNMENTS,
		Name:        "account_assignments",
		DisplayName: "Account assignments",
		Keys:        []string{"account_id", "role_id", "team_user_email"},
		Attributes: []Attribute{
			a("account_id", text, "Account ID"),
			a("role_id", text, "Role ID"),
			a("team_user_email", text, "Team user email"),
		},
	},
	{
		Type:        intakev1.ObjectType_OBJECT_TYPE_TASKS,
		Name:        "tasks",
		DisplayName: "Tasks",
		Keys:        []string{"account_id", "task_id"},
		Attributes: []Attribute{
			a("account_id", text, "Account ID"),
			a("task_id", text, "Task ID"),
			a("subject", text, "Subject"),
			a("description", text, "Description"),
			a("status", text, "Status"),
			a("type", text, "Type"),
			a("priority", text, "Priority"),
			a("due_date", date, "Due date"),
			a("completed_date", date, "Completed date"),
			fk("assignee_email", "team_users", "Assignee email"),
		},
	},
	{
		Type:        intakev1.ObjectType_OBJECT_TYPE_TOUCHPOINTS,
		Name:        "touchpoints",
		DisplayName: "Touchpoints",
		Keys:        []string{"account_id", "touchpoint_id"},
		RequiredAny: []string{"subject", "content"},
		Attributes: []Attribute{
			a("account_id", text, "Account ID"),
			a("touchpoint_id", text, "Touchpoint ID"),
			a("subject", text, "Subject"),
			a("content", text, "Content"),
			a("type", text, "Type"),
			a("date", date, "Date"),
			a("reason", text, "Reason"),
			fk("owner_email", "team_users", "Owner email"),
		},
	},
	{
		Type:        intakev1.ObjectType_OBJECT_TYPE_ACCOUNT_FOREIGN_KEYS,
		Name:        "account_foreign_keys",
		DisplayName: "Account foreign keys",
		Keys:        []string{"account_id", "foreign_key_id"},
		Attributes: []Attribute{
			a("account_id", text, "Account ID"),
			described(a("foreign_key_id", text, "Foreign key ID"), "The account's id in the other system."),
			described(a("system", text, "Source system"), "The system the foreign key comes from, e.g. salesforce."),
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

// LookupName returns the object of a resource name "objects/{object}" or of
// a bare object id ("accounts").
func LookupName(name string) (*Object, error) {
	id := strings.TrimPrefix(name, "objects/")
	for _, o := range all {
		if o.Name == id {
			return o, nil
		}
	}
	return nil, fmt.Errorf("unknown object %q (one of %s)", name, strings.Join(Names(), ", "))
}

// Names are the resource names of every object, in order.
func Names() []string {
	out := make([]string, len(all))
	for i, o := range all {
		out[i] = o.ResourceName()
	}
	return out
}

// All returns every object.
func All() []*Object { return slices.Clone(all) }

// PostgresType is the column type of an attribute type. Foreign keys are
// stored as text (the key of the record referred to); timestamps as
// timestamptz.
func PostgresType(t intakev1.AttributeType) string {
	switch t {
	case number, currency:
		return "numeric"
	case date:
		return "date"
	case timestamp:
		return "timestamptz"
	case boolean:
		return "boolean"
	default:
		return "text"
	}
}

// MaxAttributeID is the longest attribute id (a PostgreSQL identifier).
const MaxAttributeID = 63

var attributeIDPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// reserved are column names an attribute cannot take: PostgreSQL's system
// columns (every table has them).
var reserved = []string{"oid", "tableoid", "xmin", "cmin", "xmax", "cmax", "ctid"}

// CheckAttributeID checks the form of an attribute id: lowercase letters,
// digits and '_', starting with a letter, at most 63 characters, and not a
// name PostgreSQL keeps for itself. (Names starting with '_', such as the
// bookkeeping columns _run and _updated_at, are refused by the form.)
func CheckAttributeID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("required")
	case len(id) > MaxAttributeID:
		return fmt.Errorf("%q is longer than %d characters", id, MaxAttributeID)
	case !attributeIDPattern.MatchString(id):
		return fmt.Errorf("%q is not an attribute id: use lowercase letters, digits and '_', starting with a letter", id)
	case slices.Contains(reserved, id):
		return fmt.Errorf("%q is reserved: PostgreSQL uses it for a system column", id)
	}
	return nil
}

// CustomTypes are the types a custom attribute may have.
var CustomTypes = []intakev1.AttributeType{text, number, currency, date, timestamp, boolean, foreignKey}

// TypeName is the user-facing name of an attribute type: "text", "number",
// "currency", "date", "timestamp", "boolean", "foreign key".
func TypeName(t intakev1.AttributeType) string {
	if t == foreignKey {
		return "foreign key"
	}
	return strings.ToLower(strings.TrimPrefix(t.String(), "ATTRIBUTE_TYPE_"))
}

// DisplayName derives a display name from an attribute id:
// "annual_revenue" → "Annual revenue", "crm_id" → "CRM ID".
func DisplayName(id string) string {
	words := strings.Split(id, "_")
	out := words[:0]
	for _, w := range words {
		if w == "" {
			continue
		}
		switch w {
		case "id", "url", "crm", "mrr", "arr", "nps", "csm":
			w = strings.ToUpper(w)
		}
		out = append(out, w)
	}
	if len(out) == 0 {
		return id
	}
	if out[0] != strings.ToUpper(out[0]) {
		out[0] = strings.ToUpper(out[0][:1]) + out[0][1:]
	}
	return strings.Join(out, " ")
}

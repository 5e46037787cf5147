package objects_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/intakehq/intake/pkg/objects"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// Every object type has exactly one object, with the keys DESIGN.md lists,
// its keys first among its attributes, and consistent rules.
func TestEveryObjectIsWellFormed(t *testing.T) {
	t.Parallel()
	wantKeys := map[intakev1.ObjectType][]string{
		intakev1.ObjectType_OBJECT_TYPE_ACCOUNTS:             {"account_id"},
		intakev1.ObjectType_OBJECT_TYPE_USERS:                {"account_id", "user_id"},
		intakev1.ObjectType_OBJECT_TYPE_USAGE:                {"account_id", "user_id", "activity", "module", "timestamp"},
		intakev1.ObjectType_OBJECT_TYPE_COLLECTIONS:          {"account_id", "collection_id"},
		intakev1.ObjectType_OBJECT_TYPE_USAGE_AGGREGATIONS:   {"account_id", "user_id", "aggregation", "date"},
		intakev1.ObjectType_OBJECT_TYPE_TEAM_USERS:           {"email"},
		intakev1.ObjectType_OBJECT_TYPE_ACCOUNT_ASSIGNMENTS:  {"account_id", "role_id", "team_user_email"},
		intakev1.ObjectType_OBJECT_TYPE_TASKS:                {"account_id", "task_id"},
		intakev1.ObjectType_OBJECT_TYPE_TOUCHPOINTS:          {"account_id", "touchpoint_id"},
		intakev1.ObjectType_OBJECT_TYPE_ACCOUNT_FOREIGN_KEYS: {"account_id", "foreign_key_id"},
	}
	require.Len(t, objects.All(), len(wantKeys))
	for typ, keys := range wantKeys {
		o, err := objects.Lookup(typ)
		require.NoError(t, err, typ)
		require.Equal(t, keys, o.Keys, o.Name)
		byName, err := objects.LookupName(o.ResourceName())
		require.NoError(t, err)
		require.Same(t, o, byName)
		for i, k := range o.Keys {
			require.Equal(t, k, o.Attributes[i].Name, "%s: keys come first", o.Name)
		}
		for _, r := range o.RequiredAny {
			_, ok := o.Attribute(r)
			require.True(t, ok, "%s: required_any %q is an attribute", o.Name, r)
		}
		seen := map[string]bool{}
		for _, a := range o.Attributes {
			require.NoError(t, objects.CheckAttributeID(a.Name), "%s.%s", o.Name, a.Name)
			require.False(t, seen[a.Name], "%s.%s twice", o.Name, a.Name)
			seen[a.Name] = true
			require.NotEmpty(t, a.DisplayName, "%s.%s", o.Name, a.Name)
			require.NotEqual(t, intakev1.AttributeType_ATTRIBUTE_TYPE_UNSPECIFIED, a.Type, "%s.%s", o.Name, a.Name)
			if a.Type == intakev1.AttributeType_ATTRIBUTE_TYPE_FOREIGN_KEY {
				_, err := objects.LookupName(a.References)
				require.NoError(t, err, "%s.%s references", o.Name, a.Name)
			}
		}
	}
	usage, _ := objects.Lookup(intakev1.ObjectType_OBJECT_TYPE_USAGE)
	require.True(t, usage.AppendOnly)
	tp, _ := objects.Lookup(intakev1.ObjectType_OBJECT_TYPE_TOUCHPOINTS)
	require.Equal(t, []string{"subject", "content"}, tp.RequiredAny)
}

func TestModelMergesCustomAttributes(t *testing.T) {
	t.Parallel()
	created := timestamppb.Now()
	m, err := objects.Model(intakev1.ObjectType_OBJECT_TYPE_TASKS,
		&intakev1.Attribute{AttributeId: "effort", Type: intakev1.AttributeType_ATTRIBUTE_TYPE_NUMBER, CreateTime: created},
		&intakev1.Attribute{AttributeId: "crm_id", Type: intakev1.AttributeType_ATTRIBUTE_TYPE_FOREIGN_KEY, References: "objects/accounts", System: true},
		// A custom attribute cannot shadow a system one.
		&intakev1.Attribute{AttributeId: "subject", Type: intakev1.AttributeType_ATTRIBUTE_TYPE_NUMBER},
	)
	require.NoError(t, err)
	require.Equal(t, "objects/tasks", m.GetName())
	require.Equal(t, "objects.tasks", m.GetTable())
	require.Equal(t, "Tasks", m.GetDisplayName())
	require.Equal(t, []string{"account_id", "task_id"}, m.GetKeys())
	attrs := m.GetAttributes()
	require.Len(t, attrs, 12)
	require.Equal(t, "objects/tasks/attributes/account_id", attrs[0].GetName())
	require.True(t, attrs[0].GetKey())
	require.True(t, attrs[0].GetSystem())
	require.False(t, attrs[2].GetKey())
	require.Equal(t, intakev1.AttributeType_ATTRIBUTE_TYPE_TEXT, attrs[2].GetType(), "subject stays text")
	assignee := attrs[9]
	require.Equal(t, "assignee_email", assignee.GetAttributeId())
	require.Equal(t, "objects/team_users", assignee.GetReferences())

	effort, crm := attrs[10], attrs[11]
	require.Equal(t, "objects/tasks/attributes/effort", effort.GetName())
	require.Equal(t, "Effort", effort.GetDisplayName())
	require.False(t, effort.GetSystem())
	require.Equal(t, created.AsTime(), effort.GetCreateTime().AsTime())
	require.Equal(t, "CRM ID", crm.GetDisplayName())
	require.False(t, crm.GetSystem(), "custom attributes are never system ones")
	require.Equal(t, "objects/accounts", crm.GetReferences())
}

func TestCheckAttributeID(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"a", "health_score", "x1", "a_b_c_2", "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij123"} {
		require.NoError(t, objects.CheckAttributeID(ok), ok)
	}
	for id, want := range map[string]string{
		"":             "required",
		"Health":       `"Health" is not an attribute id`,
		"_run":         `"_run" is not an attribute id`,
		"_updated_at":  `"_updated_at" is not an attribute id`,
		"1st":          `"1st" is not an attribute id`,
		"health-score": `"health-score" is not an attribute id`,
		"xmin":         `"xmin" is reserved`,
		"ctid":         `"ctid" is reserved`,
		"abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij1234": "longer than 63 characters",
	} {
		require.ErrorContains(t, objects.CheckAttributeID(id), want, id)
	}
}

func TestLookupNameUnknown(t *testing.T) {
	t.Parallel()
	_, err := objects.LookupName("objects/widgets")
	require.ErrorContains(t, err, `unknown object "objects/widgets" (one of objects/accounts, objects/users, objects/usage,`)
}

func TestDisplayName(t *testing.T) {
	t.Parallel()
	for id, want := range map[string]string{
		"annual_revenue": "Annual revenue",
		"crm_id":         "CRM ID",
		"id":             "ID",
		"nps__score":     "NPS score",
		"x":              "X",
	} {
		require.Equal(t, want, objects.DisplayName(id), id)
	}
}

// Every attribute type has its column type and its name; usage events are
// told apart by their instant, not their day.
func TestTypes(t *testing.T) {
	t.Parallel()
	for typ, want := range map[intakev1.AttributeType][2]string{
		intakev1.AttributeType_ATTRIBUTE_TYPE_TEXT:        {"text", "text"},
		intakev1.AttributeType_ATTRIBUTE_TYPE_NUMBER:      {"numeric", "number"},
		intakev1.AttributeType_ATTRIBUTE_TYPE_CURRENCY:    {"numeric", "currency"},
		intakev1.AttributeType_ATTRIBUTE_TYPE_DATE:        {"date", "date"},
		intakev1.AttributeType_ATTRIBUTE_TYPE_TIMESTAMP:   {"timestamptz", "timestamp"},
		intakev1.AttributeType_ATTRIBUTE_TYPE_BOOLEAN:     {"boolean", "boolean"},
		intakev1.AttributeType_ATTRIBUTE_TYPE_FOREIGN_KEY: {"text", "foreign key"},
	} {
		require.Equal(t, want[0], objects.PostgresType(typ), typ)
		require.Equal(t, want[1], objects.TypeName(typ), typ)
		require.Contains(t, objects.CustomTypes, typ, "a custom attribute may be %s", want[1])
	}
	usage, err := objects.Lookup(intakev1.ObjectType_OBJECT_TYPE_USAGE)
	require.NoError(t, err)
	ts, ok := usage.Attribute("timestamp")
	require.True(t, ok)
	require.Equal(t, intakev1.AttributeType_ATTRIBUTE_TYPE_TIMESTAMP, ts.Type)
	require.True(t, usage.IsKey("timestamp"))
}

// A tenant's table is the object's table in the tenant's schema.
func TestTableInASchema(t *testing.T) {
	o, err := objects.LookupName("usage_aggregations")
	require.NoError(t, err)
	require.Equal(t, `"objects"."usage_aggregations"`, o.Table())
	require.Equal(t, `"objects_acme_eu"."usage_aggregations"`, o.TableIn("objects_acme_eu"))
	require.Equal(t, "objects_acme_eu.usage_aggregations", o.TableNameIn("objects_acme_eu"))
	require.Equal(t, o.TableName(), o.TableNameIn(objects.Schema))
}

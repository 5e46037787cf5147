package jobspec_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/api/internal/jobspec"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// accounts is a data model for the tests: an object with one key.
var accounts = &intakev1.DataObject{
	Name: "objects/accounts", Type: intakev1.ObjectType_OBJECT_TYPE_ACCOUNTS, Keys: []string{"account_id"},
	Attributes: []*intakev1.Attribute{
		{AttributeId: "account_id", Type: intakev1.AttributeType_ATTRIBUTE_TYPE_TEXT, Key: true, System: true},
		{AttributeId: "name", Type: intakev1.AttributeType_ATTRIBUTE_TYPE_TEXT, System: true},
		{AttributeId: "created_date", Type: intakev1.AttributeType_ATTRIBUTE_TYPE_DATE, System: true},
	},
}

func TestApplyMask(t *testing.T) {
	t.Parallel()
	dst := &intakev1.Job{
		DisplayName: "old", Description: "keep",
		Schedule: &intakev1.Schedule{Cadence: &intakev1.Schedule_Daily{Daily: &intakev1.Daily{Hour: 1}}},
	}
	src := &intakev1.Job{
		DisplayName: "new", Description: "ignored",
		Schedule: &intakev1.Schedule{Cadence: &intakev1.Schedule_Daily{Daily: &intakev1.Daily{Hour: 2}}},
	}
	require.Empty(t, jobspec.ApplyMask(dst, src, []string{"display_name", "schedule"}))
	require.Equal(t, "new", dst.GetDisplayName())
	require.Equal(t, "keep", dst.GetDescription())
	require.EqualValues(t, 2, dst.GetSchedule().GetDaily().GetHour())
	src.Schedule.GetDaily().Hour = 3
	require.EqualValues(t, 2, dst.GetSchedule().GetDaily().GetHour(), "dst does not share src's messages")

	// A field named in the mask but unset in src is cleared.
	require.Empty(t, jobspec.ApplyMask(dst, &intakev1.Job{}, []string{"schedule", "description"}))
	require.Nil(t, dst.GetSchedule())
	require.Empty(t, dst.GetDescription())

	dst.DisplayName = "before"
	vs := jobspec.ApplyMask(dst, src, []string{"display_name", "etag", "schedule.time_zone", "nope", "object"})
	require.Len(t, vs, 4)
	require.Equal(t, "update_mask.paths[1]", vs[0].Field)
	require.Contains(t, vs[0].Description, "output only")
	require.Contains(t, vs[1].Description, "only whole fields")
	require.Contains(t, vs[2].Description, `unknown field "nope"`)
	require.Contains(t, vs[3].Description, "cannot be changed")
	require.Equal(t, "before", dst.GetDisplayName(), "nothing applied when the mask is bad")
}

func TestCheckJobID(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"a", "accounts", "crm-2", "0abc"} {
		require.NoError(t, jobspec.CheckJobID(ok), ok)
	}
	for _, bad := range []string{"", "-", "a-", "-a", "A", "a_b", "a/b", string(make([]byte, 64))} {
		require.Error(t, jobspec.CheckJobID(bad), bad)
	}
}

// Schedule problems come from pkg/schedule, at their paths under the job.
func TestValidateSchedule(t *testing.T) {
	t.Parallel()
	job := &intakev1.Job{
		DisplayName: "x", Object: intakev1.ObjectType_OBJECT_TYPE_ACCOUNTS,
		Connection: &intakev1.Connection{Kind: &intakev1.Connection_Http{Http: &intakev1.HttpConnection{Url: "https://h/a.csv"}}},
		Mapping: &intakev1.MappingSpec{Entries: []*intakev1.MappingEntry{
			{Attribute: "account_id", Source: &intakev1.MappingEntry_Column{Column: "id"}},
		}},
		Enabled:  true,
		Schedule: &intakev1.Schedule{TimeZone: "Local", Cadence: &intakev1.Schedule_Daily{Daily: &intakev1.Daily{Hour: 24, Minute: -1}}},
	}
	require.Equal(t, jobspec.Violations{
		{Field: "job.schedule.time_zone", Description: `"Local" is not an IANA time zone (e.g. "Europe/Berlin")`},
		{Field: "job.schedule.daily.hour", Description: "24 is not an hour (0-23)"},
		{Field: "job.schedule.daily.minute", Description: "-1 is not a minute (0-59)"},
	}, jobspec.Validate("job", job, accounts))

	job.Schedule = &intakev1.Schedule{TimeZone: "Europe/Berlin"}
	require.Equal(t, jobspec.Violations{
		{Field: "job.schedule", Description: "a cadence is required (every_minutes, hourly, daily, workdays, weekly, monthly or cron)"},
	}, jobspec.Validate("job", job, accounts))

	job.Schedule.Cadence = &intakev1.Schedule_Weekly{Weekly: &intakev1.Weekly{Hour: 9}}
	require.Equal(t, jobspec.Violations{
		{Field: "job.schedule.weekly.days", Description: "at least one day is required"},
	}, jobspec.Validate("job", job, accounts))
	job.Schedule.Cadence = &intakev1.Schedule_Cron{Cron: &intakev1.Cron{Expression: "61 * * * *"}}
	require.Equal(t, jobspec.Violations{
		{Field: "job.schedule.cron.expression", Description: "minute 61 is out of range 0-59"},
	}, jobspec.Validate("job", job, accounts))

	job.Schedule.Cadence = &intakev1.Schedule_EveryMinutes{EveryMinutes: &intakev1.EveryMinutes{Minutes: 30}}
	require.Empty(t, jobspec.Validate("job", job, accounts))
}

func validJob() *intakev1.Job {
	return &intakev1.Job{
		DisplayName: "x", Object: intakev1.ObjectType_OBJECT_TYPE_ACCOUNTS,
		Connection: &intakev1.Connection{Kind: &intakev1.Connection_Http{Http: &intakev1.HttpConnection{Url: "https://h/a.csv"}}},
		Mapping: &intakev1.MappingSpec{Entries: []*intakev1.MappingEntry{
			{Attribute: "account_id", Source: &intakev1.MappingEntry_Column{Column: "Id"}},
			{Attribute: "created_date", Source: &intakev1.MappingEntry_Column{Column: "Created"}, SourceFormat: "MM/dd/yyyy"},
		}},
	}
}

// The mapping is compiled against the model: its problems are reported at
// the fields they are about, and the file's columns are not checked.
func TestValidateMapping(t *testing.T) {
	t.Parallel()
	require.Empty(t, jobspec.Validate("job", validJob(), accounts))

	for name, tc := range map[string]struct {
		change      func(j *intakev1.Job)
		field, want string
	}{
		"unknown attribute": {func(j *intakev1.Job) { j.Mapping.Entries[1].Attribute = "colour" },
			"job.mapping.entries[1].attribute", `accounts has no attribute "colour"`},
		"bad format": {func(j *intakev1.Job) { j.Mapping.Entries[1].SourceFormat = "MM/qq" },
			"job.mapping.entries[1].source_format", "entry 2 (attribute created_date): source format"},
		"key not mapped": {func(j *intakev1.Job) { j.Mapping.Entries[0].Attribute = "name" },
			"job.mapping.entries", "key attribute account_id is not mapped"},
		"function": {func(j *intakev1.Job) {
			j.Mapping.Entries[1].Source = &intakev1.MappingEntry_Function{Function: `col["Created"] +`}
		}, "job.mapping.entries[1].function", "entry 2"},
		"delimiter": {func(j *intakev1.Job) { j.Mapping.Dialect = &intakev1.CsvDialect{Delimiter: ";;"} },
			"job.mapping.dialect.delimiter", `";;" is not one character`},
		"negative budget": {func(j *intakev1.Job) {
			j.ErrorBudget = &intakev1.ErrorBudget{Limit: &intakev1.ErrorBudget_MaxRejectedRows{MaxRejectedRows: -1}}
		}, "job.error_budget.max_rejected_rows", "-1 is negative"},
		"percent over 100": {func(j *intakev1.Job) {
			j.ErrorBudget = &intakev1.ErrorBudget{Limit: &intakev1.ErrorBudget_MaxRejectedPercent{MaxRejectedPercent: 100.5}}
		}, "job.error_budget.max_rejected_percent", "100.5 is not a percentage (0-100)"},
		"unknown object": {func(j *intakev1.Job) { j.Object = 99 }, "job.object", "unknown object 99"},
	} {
		job := validJob()
		tc.change(job)
		model := accounts
		if job.GetObject() == 99 {
			model = nil
		}
		vs := jobspec.Validate("job", job, model)
		found := false
		for _, v := range vs {
			if v.Field == tc.field {
				found = true
				require.Contains(t, v.Description, tc.want, name)
			}
		}
		require.True(t, found, "%s: no violation of %s in %v", name, tc.field, vs)
	}

	// A new attribute declared by the mapping can be mapped.
	job := validJob()
	job.Mapping.Entries = append(job.Mapping.Entries, &intakev1.MappingEntry{Attribute: "tier", Source: &intakev1.MappingEntry_Column{Column: "Tier"}})
	require.NotEmpty(t, jobspec.Validate("job", job, accounts))
	job.Mapping.NewAttributes = []*intakev1.NewAttribute{{AttributeId: "tier", Type: intakev1.AttributeType_ATTRIBUTE_TYPE_NUMBER}}
	require.Empty(t, jobspec.Validate("job", job, accounts))

	for _, p := range []float64{0, 12.5, 100} {
		job.ErrorBudget = &intakev1.ErrorBudget{Limit: &intakev1.ErrorBudget_MaxRejectedPercent{MaxRejectedPercent: p}}
		require.Empty(t, jobspec.Validate("job", job, accounts), p)
	}
}

// The mapping hash covers the object and the mapping, nothing else.
func TestMappingHash(t *testing.T) {
	t.Parallel()
	a, b := validJob(), validJob()
	require.Regexp(t, `^[0-9a-f]{64}$`, jobspec.MappingHash(a))
	b.DisplayName, b.Enabled = "other", true
	b.Schedule = &intakev1.Schedule{Cadence: &intakev1.Schedule_Daily{Daily: &intakev1.Daily{Hour: 3}}}
	require.Equal(t, jobspec.MappingHash(a), jobspec.MappingHash(b))
	b.Mapping.Entries[1].SourceFormat = "dd/MM/yyyy"
	require.NotEqual(t, jobspec.MappingHash(a), jobspec.MappingHash(b))
	b = validJob()
	b.Object = intakev1.ObjectType_OBJECT_TYPE_USERS
	require.NotEqual(t, jobspec.MappingHash(a), jobspec.MappingHash(b))
}

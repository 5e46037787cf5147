package jobspec_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/api/internal/jobspec"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

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
	}, jobspec.Validate("job", job))

	job.Schedule = &intakev1.Schedule{TimeZone: "Europe/Berlin"}
	require.Equal(t, jobspec.Violations{
		{Field: "job.schedule", Description: "a cadence is required (every_minutes or daily)"},
	}, jobspec.Validate("job", job))

	job.Schedule.Cadence = &intakev1.Schedule_EveryMinutes{EveryMinutes: &intakev1.EveryMinutes{Minutes: 30}}
	require.Empty(t, jobspec.Validate("job", job))
}

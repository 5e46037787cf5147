package jobspec_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/intakehq/intake/api/internal/jobspec"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// A retention policy keeps 0 or more runs' files and 0 or more days; a
// negative limit is refused, naming the field. An update may set it.
func TestRetention(t *testing.T) {
	t.Parallel()
	job := func(runs, days int32) *intakev1.Job {
		return &intakev1.Job{
			DisplayName: "accounts", Object: intakev1.ObjectType_OBJECT_TYPE_ACCOUNTS,
			Connection: &intakev1.Connection{Kind: &intakev1.Connection_Http{Http: &intakev1.HttpConnection{Url: "https://x.example/a.csv"}}},
			Mapping: &intakev1.MappingSpec{Entries: []*intakev1.MappingEntry{
				{Attribute: "account_id", Source: &intakev1.MappingEntry_Column{Column: "id"}},
			}},
			Retention: &intakev1.RetentionPolicy{KeepRuns: runs, KeepDays: days},
		}
	}
	for _, ok := range [][2]int32{{0, 0}, {1, 0}, {0, 30}, {10, 90}} {
		require.Empty(t, jobspec.Validate("job", job(ok[0], ok[1]), accounts), ok)
	}
	vs := jobspec.Validate("job", job(-1, -2), accounts)
	require.Len(t, vs, 2)
	require.Equal(t, "job.retention.keep_runs", vs[0].Field)
	require.Contains(t, vs[0].Description, "-1 is negative")
	require.Equal(t, "job.retention.keep_days", vs[1].Field)
	require.Contains(t, vs[1].Description, "-2 is negative")

	dst := job(0, 0)
	require.Empty(t, jobspec.ApplyMask(dst, job(3, 7), []string{"retention"}))
	require.EqualValues(t, 7, dst.GetRetention().GetKeepDays())
}

// ClearOutputOnly drops what the server sets and keeps the rest.
func TestClearOutputOnly(t *testing.T) {
	t.Parallel()
	job := &intakev1.Job{Name: "jobs/a", Etag: "e1", DisplayName: "a", DisabledReason: "x", ConsecutiveFailures: 3,
		MappingValidated: true, LastRun: "jobs/a/runs/1", NextRunTimes: []*timestamppb.Timestamp{timestamppb.Now()},
		NextRunTime: timestamppb.Now(), CreateTime: timestamppb.Now(), UpdateTime: timestamppb.Now(), MappingValidateTime: timestamppb.Now()}
	jobspec.ClearOutputOnly(job)
	require.True(t, proto.Equal(&intakev1.Job{Name: "jobs/a", Etag: "e1", DisplayName: "a"}, job), "%v", job)
	jobspec.ClearOutputOnly(nil)
}

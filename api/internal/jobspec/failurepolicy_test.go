package jobspec_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/api/internal/jobspec"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// A failure policy disables after N >= 1 failed runs, or never (0); a
// negative N is refused, naming the field. An update may set it.
func TestFailurePolicy(t *testing.T) {
	t.Parallel()
	job := func(n int32) *intakev1.Job {
		return &intakev1.Job{
			DisplayName: "accounts", Object: intakev1.ObjectType_OBJECT_TYPE_ACCOUNTS,
			Connection: &intakev1.Connection{Kind: &intakev1.Connection_Http{Http: &intakev1.HttpConnection{Url: "https://x.example/a.csv"}}},
			Mapping: &intakev1.MappingSpec{Entries: []*intakev1.MappingEntry{
				{Attribute: "account_id", Source: &intakev1.MappingEntry_Column{Column: "id"}},
			}},
			FailurePolicy: &intakev1.FailurePolicy{DisableAfterFailures: n},
		}
	}
	for _, n := range []int32{0, 1, 3, 1000} {
		require.Empty(t, jobspec.Validate("job", job(n), accounts), n)
	}
	require.Equal(t, jobspec.Violations{{Field: "job.failure_policy.disable_after_failures",
		Description: "-1 is negative (0: never disable; N: disable after N consecutive failed runs)"}},
		jobspec.Validate("job", job(-1), accounts))

	dst := job(0)
	require.Empty(t, jobspec.ApplyMask(dst, job(3), []string{"failure_policy"}))
	require.EqualValues(t, 3, dst.GetFailurePolicy().GetDisableAfterFailures())
}

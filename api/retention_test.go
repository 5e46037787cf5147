package api_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/api"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

func TestRetentionConfig(t *testing.T) {
	t.Parallel()
	ok := api.Config{DatabaseURL: "postgres://x@localhost/db", NATSURL: "nats://localhost:4222", GRPCAddr: ":7070"}
	require.NoError(t, ok.Validate())
	for _, tc := range []struct {
		edit func(*api.Config)
		err  string
	}{
		{func(c *api.Config) { c.DefaultRetention = &intakev1.RetentionPolicy{KeepRuns: -1} }, "api: DefaultRetention: keep_runs -1 is negative"},
		{func(c *api.Config) { c.DefaultRetention = &intakev1.RetentionPolicy{KeepDays: -2} }, "api: DefaultRetention: keep_days -2 is negative"},
		{func(c *api.Config) { c.RetentionInterval = time.Millisecond }, "api: RetentionInterval 1ms: must be at least 100ms"},
		{func(c *api.Config) { c.RetentionInterval = -time.Second }, "api: RetentionInterval -1s"},
	} {
		c := ok
		tc.edit(&c)
		require.ErrorContains(t, c.Validate(), tc.err)
	}
}

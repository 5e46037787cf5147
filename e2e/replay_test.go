package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// replayAccounts is an accounts file of n rows "RP-1" … whose Created
// dates are written with layout (a Go time layout).
func replayAccounts(n int, layout string) string {
	lines := []string{"Id,Name,Created"}
	for i := 1; i <= n; i++ {
		d := time.Date(2021, time.Month(i%12+1), i%15+13, 0, 0, 0, 0, time.UTC)
		lines = append(lines, fmt.Sprintf("RP-%d,Replay company %d,%s", i, i, d.Format(layout)))
	}
	return csvLines(lines...)
}

// downloadSource reads a run's source download whole.
func (s *system) downloadSource(ctx context.Context, t *testing.T, run string) ([]byte, *intakev1.FileChunk) {
	t.Helper()
	stream, err := s.runs.DownloadSource(ctx, &intakev1.DownloadSourceRequest{Name: run})
	require.NoError(t, err)
	var (
		data  []byte
		first *intakev1.FileChunk
	)
	for {
		c, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if first == nil {
			first = c
		}
		data = append(data, c.GetData()...)
	}
	require.NotNil(t, first, "an empty download")
	return data, first
}

// TestReplayAfterAMappingFix: a run whose file the mapping rejects is
// replayed after the mapping is fixed, from the stored file (the source has
// moved on since), and the stored file downloads byte for byte.
func TestReplayAfterAMappingFix(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	s := startSystem(t)
	files := newFileServer(t, "")

	// The job reads US dates; the export switches to German ones.
	url := files.setFile("/replay.csv", replayAccounts(30, "01/02/2006"))
	job := s.createJob(ctx, t, newJob(intakev1.ObjectType_OBJECT_TYPE_ACCOUNTS, url,
		column("account_id", "Id"), column("name", "Name"), columnFormat("created_date", "Created", "MM/dd/yyyy")))
	served := replayAccounts(30, "02.01.2006")
	files.setFile("/replay.csv", served)

	first := s.runOnce(ctx, t, job.GetName(), false)
	require.Equal(t, intakev1.RunState_RUN_STATE_FAILED, first.GetState(), first.GetMessage())
	require.EqualValues(t, 30, first.GetCounters().GetRowsRejected())
	require.Zero(t, s.accountsLike(ctx, t, "RP"))

	// Fix the mapping (validated against today's file), then the source
	// moves on: only the stored file still has these rows.
	job.Mapping.Entries[2].SourceFormat = "dd.MM.yyyy"
	v, err := s.jobs.ValidateMapping(ctx, &intakev1.ValidateMappingRequest{Job: job})
	require.NoError(t, err)
	require.True(t, v.GetValid(), "%v", v.GetFindings())
	_, err = s.jobs.UpdateJob(ctx, &intakev1.UpdateJobRequest{Job: job, ValidationToken: v.GetValidationToken()})
	require.NoError(t, err)
	files.setFile("/replay.csv", "Id,Name,Created\nOTHER-1,Other,01.01.2022\n")

	replay, err := s.runs.ReplayRun(ctx, &intakev1.ReplayRunRequest{Name: first.GetName()})
	require.NoError(t, err)
	require.Equal(t, intakev1.Trigger_TRIGGER_REPLAY, replay.GetTrigger())
	require.Equal(t, first.GetName(), replay.GetReplayOf())
	done := s.wait(ctx, t, replay.GetName(), nil)
	require.Equal(t, intakev1.RunState_RUN_STATE_SUCCEEDED, done.GetState(), done.GetMessage())
	require.Equal(t, intakev1.Trigger_TRIGGER_REPLAY, done.GetTrigger())
	require.EqualValues(t, 30, done.GetCounters().GetRowsCreated())
	require.Equal(t, first.GetSha256(), done.GetSha256())
	require.Contains(t, done.GetSource(), "replay of "+first.GetName())
	require.EqualValues(t, 30, s.accountsLike(ctx, t, "RP"))
	require.Zero(t, count(ctx, t, s.db, `SELECT count(*) FROM objects.accounts WHERE account_id = 'OTHER-1'`))
	require.EqualValues(t, 1, count(ctx, t, s.db,
		`SELECT count(*) FROM objects.accounts WHERE account_id = 'RP-1' AND created_date = '2021-02-14'`))

	// The first run's file downloads as it was served.
	data, chunk := s.downloadSource(ctx, t, first.GetName())
	require.Equal(t, served, string(data))
	sum := sha256.Sum256(data)
	require.Equal(t, first.GetSha256(), hex.EncodeToString(sum[:]))
	require.Contains(t, chunk.GetFilename(), "-replay.csv")
	require.Equal(t, "text/csv", chunk.GetContentType())
}

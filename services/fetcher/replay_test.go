package fetcher_test

import (
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/pkg/archive"
	"github.com/intakehq/intake/pkg/pipeline"
	pipelinev1 "github.com/intakehq/intake/proto/gen/intake/pipeline/v1"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"

	"github.com/intakehq/intake/services/fetcher"
)

// A replay re-imports the archived file of an earlier run: it is copied to
// the new run's key, hashed and chunked as a download would be, and the
// job's connection is never read (its file has changed meanwhile).
func TestReplayUsesTheArchivedFileOfTheReplayedRun(t *testing.T) {
	t.Parallel()
	e := start(t, fetcher.Config{}, nil)
	srv := serveFiles(t, map[string]string{"/a.csv": "id,name\nchanged,since\n"})
	arch, err := archive.NewJetStream(t.Context(), e.js, pipeline.ArchiveBucket, 1)
	require.NoError(t, err)
	body := accountsCSV()
	const oldID = "0197a1b2-old-run"
	_, err = arch.Put(t.Context(), oldID, strings.NewReader(body))
	require.NoError(t, err)

	job := newJob(httpConn(srv.URL+"/a.csv"), nil)
	run := e.submitRequest(t, &pipelinev1.RunRequest{Job: job, ReplayOf: oldID})
	reports := e.waitDone(t, run, finished)
	require.Equal(t, []intakev1.RunEventKind{started, fetchedK, finished}, e.api.kinds(run))
	require.Equal(t, 0, srv.hitCount("/a.csv"), "a replay does not fetch")
	require.Equal(t, sha(body), reports[1].GetSha256())
	require.Equal(t, int64(len(body)), reports[1].GetCounters().GetBytes())
	require.Equal(t, "replay of jobs/j-accounts/runs/"+oldID+" ("+srv.URL+"/a.csv)", reports[1].GetSource())
	require.Equal(t, []string{"id", "name", "note"}, reports[1].GetHeader())
	require.Equal(t, int64(4), reports[2].GetCounters().GetChunks())

	// The new run has its own copy, byte for byte.
	newID := run[strings.LastIndex(run, "/")+1:]
	rc, err := arch.Open(t.Context(), newID)
	require.NoError(t, err)
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	require.Equal(t, body, string(got))

	var rows int64
	for _, c := range e.chunks(t, run) {
		rows += c.GetRows()
	}
	require.Equal(t, int64(10), rows)
	require.Len(t, e.seals(t, run), 1)
}

// A replay of a run whose file is gone fails with a message that says so.
func TestReplayOfAMissingFileFails(t *testing.T) {
	t.Parallel()
	e := start(t, fetcher.Config{}, nil)
	srv := serveFiles(t, map[string]string{"/a.csv": accountsCSV()})
	run := e.submitRequest(t, &pipelinev1.RunRequest{Job: newJob(httpConn(srv.URL+"/a.csv"), nil), ReplayOf: "gone"})
	reports := e.waitDone(t, run, failed)
	require.Equal(t, []intakev1.RunEventKind{started, failed}, e.api.kinds(run))
	require.Equal(t, "replay of jobs/j-accounts/runs/gone ("+srv.URL+"/a.csv): the source file of run jobs/j-accounts/runs/gone is no longer in the run archive (the retention policy may have deleted it)",
		reports[1].GetMessage())
	require.Equal(t, 0, srv.hitCount("/a.csv"))
	require.Empty(t, e.chunks(t, run))
}

package ctl_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The source file of a run downloads byte for byte; a forced run of an
// unchanged file is not skipped; a replay re-imports a run's stored file.
func TestRunSourceForceAndReplayThroughTheCLI(t *testing.T) {
	t.Parallel()
	addr, logs := startIntake(t)
	files := httptest.NewServer(http.FileServer(http.Dir("../../../examples/data")))
	defer files.Close()
	want, err := os.ReadFile("../../../examples/data/accounts.csv")
	require.NoError(t, err)
	jobFile := filepath.Join(t.TempDir(), "job.yaml")
	require.NoError(t, os.WriteFile(jobFile, []byte(strings.Replace(jobYAML, "URL", files.URL+"/accounts.csv", 1)), 0o600))
	out, err := intakectl(t, addr, "job", "create", "-f", jobFile, "--id", "src")
	require.NoError(t, err, out)

	out, err = intakectl(t, addr, "job", "run", "src", "--watch")
	require.NoError(t, err, "%s\nlogs:\n%s", out, logs)
	runName := strings.TrimSpace(strings.TrimPrefix(strings.SplitN(out, "\n", 2)[0], "started "))
	runID := runName[strings.LastIndex(runName, "/")+1:]

	// To standard output, to a file, into a directory.
	out, err = intakectl(t, addr, "run", "source", runName)
	require.NoError(t, err)
	require.Equal(t, string(want), out, "byte for byte")
	file := filepath.Join(t.TempDir(), "source.csv")
	out, err = intakectl(t, addr, "run", "source", runName, "-o", file)
	require.NoError(t, err, out)
	require.Contains(t, out, "wrote the source file of "+runName+" to "+file)
	got, err := os.ReadFile(file)
	require.NoError(t, err)
	require.Equal(t, want, got)
	dir := t.TempDir()
	out, err = intakectl(t, addr, "run", "source", runName, "-o", dir)
	require.NoError(t, err, out)
	got, err = os.ReadFile(filepath.Join(dir, "src-"+runID+"-accounts.csv"))
	require.NoError(t, err, out)
	require.Equal(t, want, got)

	// No file: the reason, and no empty file left behind.
	missing := filepath.Join(t.TempDir(), "x.csv")
	_, err = intakectl(t, addr, "run", "source", "jobs/src/runs/00000000-0000-0000-0000-000000000000", "-o", missing)
	require.ErrorContains(t, err, "not found")
	require.NoFileExists(t, missing)

	// The file is unchanged: a plain run is skipped, a forced one is not.
	out, err = intakectl(t, addr, "job", "run", "src", "--watch")
	require.Equal(t, 1, exitCode(err), out)
	require.Contains(t, out, "State:    skipped")
	out, err = intakectl(t, addr, "job", "run", "src", "--force", "--watch")
	require.NoError(t, err, "%s\nlogs:\n%s", out, logs)
	require.Contains(t, out, "State:    succeeded")

	out, err = intakectl(t, addr, "run", "replay", runName, "--watch")
	require.NoError(t, err, "%s\nlogs:\n%s", out, logs)
	require.Contains(t, out, "a replay of "+runName)
	require.Contains(t, out, "State:    succeeded")
	require.Contains(t, out, "replay of "+runName)

	_, err = intakectl(t, addr, "run", "replay", "r1")
	require.Equal(t, 2, exitCode(err))
}

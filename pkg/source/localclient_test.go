package source_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"

	"github.com/intakehq/intake/pkg/source"
)

func storedLocalConn(dir string) *intakev1.Connection {
	return &intakev1.Connection{Name: "connections/dev", Kind: &intakev1.Connection_Local{Local: &intakev1.LocalConnection{Path: dir}}}
}

// writeFile writes a file under dir with a modification time.
func writeFile(t *testing.T, dir, name, content string, mod time.Time) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	require.NoError(t, os.Chtimes(p, mod, mod))
}

func TestLocalClient(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mod := time.Date(2025, 3, 30, 8, 0, 0, 0, time.UTC)
	writeFile(t, dir, "exports/b.csv", "id\n2\n", mod)
	writeFile(t, dir, "exports/a.csv", "id\n1\n", mod.Add(time.Hour))
	writeFile(t, dir, "exports/c.csv", "id\n3\n", mod)
	require.NoError(t, os.Mkdir(filepath.Join(dir, "exports", "archive"), 0o755))

	c := dialClient(t, storedLocalConn(dir), source.Options{DevMode: true})
	require.NoError(t, c.Check(t.Context()))

	fi, err := c.Stat(t.Context(), "exports/a.csv")
	require.NoError(t, err)
	require.Equal(t, source.FileInfo{Path: "exports/a.csv", Size: 5, ModTime: mod.Add(time.Hour)}, fi)
	fi, err = c.Stat(t.Context(), "/exports/a.csv")
	require.NoError(t, err, "a leading / is the connection's directory")
	require.Equal(t, "exports/a.csv", fi.Path)

	rc, meta, err := c.Open(t.Context(), "exports/b.csv", source.Conditional{})
	require.NoError(t, err)
	require.Equal(t, "id\n2\n", readAllClose(t, rc))
	require.Equal(t, source.FileInfo{Path: "exports/b.csv", Size: 5, ModTime: mod}, meta.FileInfo)

	// Pages of two, sorted by name, directories included.
	var names []string
	var dirs []bool
	token := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 3)
		page, next, err := c.List(t.Context(), "exports", token, 2)
		require.NoError(t, err)
		for _, e := range page {
			names = append(names, e.Path)
			dirs = append(dirs, e.Dir)
		}
		if next == "" {
			break
		}
		token = next
	}
	require.Equal(t, []string{"exports/a.csv", "exports/archive", "exports/b.csv", "exports/c.csv"}, names)
	require.Equal(t, []bool{false, true, false, false}, dirs)
	root, next, err := c.List(t.Context(), "", "", 0)
	require.NoError(t, err)
	require.Empty(t, next)
	require.Equal(t, []source.FileInfo{{Path: "exports", ModTime: root[0].ModTime, Dir: true}}, root)

	_, _, err = c.Open(t.Context(), "exports/missing.csv", source.Conditional{})
	requireErrKind(t, err, ekNotFound, false, "local file "+filepath.Join(dir, "exports", "missing.csv")+" does not exist")
	_, err = c.Stat(t.Context(), "missing.csv")
	requireErrKind(t, err, ekNotFound, false, "does not exist")
	_, _, err = c.List(t.Context(), "nothing-here", "", 10)
	requireErrKind(t, err, ekNotFound, false, "local file "+filepath.Join(dir, "nothing-here")+" does not exist")
	_, _, err = c.List(t.Context(), "exports/a.csv", "", 10)
	requireErrKind(t, err, ekConfig, false, "is not a directory")
	_, _, err = c.Open(t.Context(), "exports", source.Conditional{})
	requireErrKind(t, err, ekConfig, false, "local file "+filepath.Join(dir, "exports")+" is a directory")
}

func TestLocalClientStaysInItsDirectory(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	dir := filepath.Join(parent, "data")
	writeFile(t, parent, "secret.txt", "no", time.Now())
	writeFile(t, dir, "ok.csv", "id\n", time.Now())
	require.NoError(t, os.Symlink(filepath.Join(parent, "secret.txt"), filepath.Join(dir, "link.csv")))
	c := dialClient(t, storedLocalConn(dir), source.Options{DevMode: true})

	for _, p := range []string{"../secret.txt", "exports/../../secret.txt", ".."} {
		_, _, err := c.Open(t.Context(), p, source.Conditional{})
		requireErrKind(t, err, ekConfig, false, `path "`+p+`" leaves the local directory `+dir)
		_, err = c.Stat(t.Context(), p)
		requireErrKind(t, err, ekConfig, false, "leaves the local directory")
		_, _, err = c.List(t.Context(), p, "", 10)
		requireErrKind(t, err, ekConfig, false, "leaves the local directory")
	}
	_, _, err := c.Open(t.Context(), "link.csv", source.Conditional{})
	requireErrKind(t, err, ekConfig, false, "local file "+filepath.Join(dir, "link.csv")+" is a link that leaves the connection's directory")

	rc, _, err := c.Open(t.Context(), "sub/../ok.csv", source.Conditional{})
	require.NoError(t, err, "a .. that stays inside is fine")
	require.Equal(t, "id\n", readAllClose(t, rc))
}

func TestLocalClientConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, err := source.Dial(t.Context(), storedLocalConn(dir), source.Options{})
	requireErrKind(t, err, ekConfig, false, "local files are only available in development mode (scheduled imports need a data file connection)")
	require.ErrorIs(t, err, source.ErrLocalNotAllowed)

	_, err = source.Dial(t.Context(), storedLocalConn("data"), source.Options{DevMode: true})
	requireErrKind(t, err, ekConfig, false, `local directory "data" is not absolute`)
	_, err = source.Dial(t.Context(), storedLocalConn(""), source.Options{DevMode: true})
	requireErrKind(t, err, ekConfig, false, "the local connection has no directory")

	missing := dialClient(t, storedLocalConn(filepath.Join(dir, "missing")), source.Options{DevMode: true})
	requireErrKind(t, missing.Check(t.Context()), ekNotFound, false, "local directory "+filepath.Join(dir, "missing")+" does not exist")

	writeFile(t, dir, "a.csv", "id\n", time.Now())
	file := dialClient(t, storedLocalConn(filepath.Join(dir, "a.csv")), source.Options{DevMode: true})
	requireErrKind(t, file.Check(t.Context()), ekConfig, false, "local directory "+filepath.Join(dir, "a.csv")+" is not a directory")
}

package source_test

import (
	"context"
	"testing"
	"time"
	_ "time/tzdata" // the tests' zones, wherever they run

	"github.com/stretchr/testify/require"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"

	"github.com/intakehq/intake/pkg/source"
)

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	require.NoError(t, err)
	return loc
}

func TestExpandPlaceholders(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 1, 1, 0, 30, 0, 0, time.UTC) // New Year in UTC, still 2024 in Los Angeles
	for _, tc := range []struct {
		template string
		zone     string
		want     string
	}{
		{"exports/accounts_{yyyy-MM-dd}.csv", "UTC", "exports/accounts_2025-01-01.csv"},
		{"exports/accounts_{yyyy-MM-dd}.csv", "America/Los_Angeles", "exports/accounts_2024-12-31.csv"},
		{"exports/accounts_{yyyy-MM-dd}.csv", "Asia/Kolkata", "exports/accounts_2025-01-01.csv"},
		{"{yyyyMMdd}/{HH}{mm}.csv", "Asia/Kolkata", "20250101/0600.csv"},
		{"{yy}.{MM}_{dd}-{HHmm}", "America/Los_Angeles", "24.12_31-1630"},
		{"dump_{yyyy_MM_dd.HH.mm}.csv.gz", "UTC", "dump_2025_01_01.00.30.csv.gz"},
		{"no-placeholders/*.csv", "UTC", "no-placeholders/*.csv"},
		{"", "UTC", ""},
	} {
		got, err := source.ExpandPlaceholders(tc.template, at, mustZone(t, tc.zone))
		require.NoError(t, err, tc)
		require.Equal(t, tc.want, got, tc)
	}
	got, err := source.ExpandPlaceholders("{yyyy-MM-dd}", at, nil)
	require.NoError(t, err)
	require.Equal(t, "2025-01-01", got, "nil location is UTC")
}

func TestExpandPlaceholdersOnDSTDays(t *testing.T) {
	t.Parallel()
	berlin := mustZone(t, "Europe/Berlin")
	const tmpl = "exports/{yyyy-MM-dd}/accounts_{HHmm}.csv"
	for _, tc := range []struct {
		at   time.Time
		want string
	}{
		// 2025-03-30: 02:00 CET jumps to 03:00 CEST.
		{time.Date(2025, 3, 30, 0, 30, 0, 0, time.UTC), "exports/2025-03-30/accounts_0130.csv"},
		{time.Date(2025, 3, 30, 1, 30, 0, 0, time.UTC), "exports/2025-03-30/accounts_0330.csv"},
		{time.Date(2025, 3, 29, 23, 30, 0, 0, time.UTC), "exports/2025-03-30/accounts_0030.csv"},
		// 2025-10-26: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice.
		{time.Date(2025, 10, 26, 0, 30, 0, 0, time.UTC), "exports/2025-10-26/accounts_0230.csv"},
		{time.Date(2025, 10, 26, 1, 30, 0, 0, time.UTC), "exports/2025-10-26/accounts_0230.csv"},
		{time.Date(2025, 10, 26, 22, 59, 0, 0, time.UTC), "exports/2025-10-26/accounts_2359.csv"},
	} {
		got, err := source.ExpandPlaceholders(tmpl, tc.at, berlin)
		require.NoError(t, err, tc.at)
		require.Equal(t, tc.want, got, tc.at)
	}
	// A zone whose DST starts at midnight: 2025-09-07 00:00 in Santiago is
	// skipped, so the day starts at 01:00.
	got, err := source.ExpandPlaceholders("{yyyy-MM-dd_HH}", time.Date(2025, 9, 7, 4, 0, 0, 0, time.UTC), mustZone(t, "America/Santiago"))
	require.NoError(t, err)
	require.Equal(t, "2025-09-07_01", got)
}

func TestExpandPlaceholdersErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ template, want string }{
		{"exports/a_{yyyy-MMM-dd}.csv", `"exports/a_{yyyy-MMM-dd}.csv": unknown date pattern "MMM" in placeholder {yyyy-MMM-dd} at character 17 (a placeholder holds yyyy, yy, MM, dd, HH, mm and the separators - _ .)`},
		{"{yyyy}/{DD}.csv", `unknown date pattern "DD" in placeholder {DD} at character 9`},
		{"{yyyy:MM}", `unknown date pattern ":" in placeholder {yyyy:MM} at character 6`},
		{"{yyyy-MM-dd HH}", `unknown date pattern " " in placeholder {yyyy-MM-dd HH} at character 12`},
		{"é_{yyy}", `unknown date pattern "yyy" in placeholder {yyy} at character 4`},
		{"a_{}.csv", `"a_{}.csv": empty placeholder {} at character 3`},
		{"a_{yyyy.csv", `"a_{yyyy.csv": the placeholder at character 3 has no closing }`},
		{"a_yyyy}.csv", `"a_yyyy}.csv": a } at character 7 closes no placeholder`},
		{"a_{yy{MM}}.csv", `a { at character 6 inside the placeholder at character 3`},
	} {
		_, err := source.ExpandPlaceholders(tc.template, time.Now(), time.UTC)
		require.Error(t, err, tc.template)
		require.Contains(t, err.Error(), tc.want, tc.template)
	}
}

func TestValidateSelector(t *testing.T) {
	t.Parallel()
	path := func(p string) *intakev1.FileSelector {
		return &intakev1.FileSelector{Selector: &intakev1.FileSelector_Path{Path: p}}
	}
	pattern := func(p string) *intakev1.FileSelector {
		return &intakev1.FileSelector{Selector: &intakev1.FileSelector_Pattern{Pattern: p}}
	}
	web := storedHTTPConn(&intakev1.HttpConnection{Url: "https://exports.example/"})
	dir := storedLocalConn("/data")
	for _, ok := range []struct {
		sel  *intakev1.FileSelector
		conn *intakev1.Connection
	}{
		{path("exports/accounts_{yyyy-MM-dd}.csv"), web},
		{path(""), web},
		{path("exports/a.csv"), dir},
		{pattern("exports/{yyyy}/accounts_*.csv"), dir},
		{pattern("accounts_[0-9]?.csv"), nil},
	} {
		require.NoError(t, source.ValidateSelector(ok.sel, ok.conn), ok.sel)
	}
	for _, bad := range []struct {
		sel  *intakev1.FileSelector
		conn *intakev1.Connection
		want string
	}{
		{nil, dir, "the job names no file: set file.path or file.pattern"},
		{&intakev1.FileSelector{}, dir, "the job names no file"},
		{path(""), dir, "the file path is empty"},
		{pattern(""), dir, "the file pattern is empty"},
		{path("a_{yyyy-MMM}.csv"), dir, `file path "a_{yyyy-MMM}.csv": unknown date pattern "MMM"`},
		{pattern("a_{yyyy-MMM}*.csv"), dir, `file pattern "a_{yyyy-MMM}*.csv": unknown date pattern "MMM"`},
		{pattern("exports/*.csv"), web, `file pattern "exports/*.csv": an HTTP connection cannot be browsed: name the file's path`},
		{pattern("exports/*/a.csv"), dir, `file pattern "exports/*/a.csv": only the file name may hold glob characters, not the directory "exports/*"`},
		{pattern("exports/"), dir, `file pattern "exports/" ends with /`},
		{pattern("exports/a_[0-9.csv"), dir, `file pattern "exports/a_[0-9.csv": the glob "a_[0-9.csv" is malformed`},
	} {
		err := source.ValidateSelector(bad.sel, bad.conn)
		requireErrKind(t, err, ekConfig, false, bad.want)
	}
}

// pagedClient lists at most n entries a page, to make Resolve turn pages.
type pagedClient struct {
	source.Client
	n     int
	pages int
}

func (c *pagedClient) List(ctx context.Context, dir, token string, _ int) ([]source.FileInfo, string, error) {
	c.pages++
	return c.Client.List(ctx, dir, token, c.n)
}

func TestResolve(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	base := time.Date(2025, 3, 30, 8, 0, 0, 0, time.UTC)
	writeFile(t, dir, "exports/accounts_1.csv", "1", base)
	writeFile(t, dir, "exports/accounts_2.csv", "2", base.Add(2*time.Hour)) // newest
	writeFile(t, dir, "exports/accounts_3.csv", "3", base.Add(time.Hour))
	writeFile(t, dir, "exports/users_9.csv", "9", base.Add(5*time.Hour)) // newer, not matching
	writeFile(t, dir, "exports/accounts_dir.csv/x", "x", base.Add(9*time.Hour))
	writeFile(t, dir, "ties/b.csv", "b", base)
	writeFile(t, dir, "ties/a.csv", "a", base)
	writeFile(t, dir, "daily/2025-03-30/a.csv", "a", base)
	writeFile(t, dir, "accounts_root.csv", "r", base)
	c := &pagedClient{Client: dialClient(t, storedLocalConn(dir), source.Options{DevMode: true}), n: 2}
	pattern := func(p string) *intakev1.FileSelector {
		return &intakev1.FileSelector{Selector: &intakev1.FileSelector_Pattern{Pattern: p}}
	}
	at := time.Date(2025, 3, 30, 23, 30, 0, 0, time.UTC) // already the 31st in Berlin
	berlin := mustZone(t, "Europe/Berlin")

	fi, err := source.Resolve(t.Context(), c, pattern("exports/accounts_*.csv"), at, berlin)
	require.NoError(t, err)
	require.Equal(t, source.FileInfo{Path: "exports/accounts_2.csv", Size: 1, ModTime: base.Add(2 * time.Hour)}, fi)
	require.Equal(t, 3, c.pages, "6 entries in pages of 2")

	fi, err = source.Resolve(t.Context(), c, pattern("ties/*.csv"), at, berlin)
	require.NoError(t, err)
	require.Equal(t, "ties/b.csv", fi.Path, "same time: the greatest name")

	fi, err = source.Resolve(t.Context(), c, pattern("accounts_*.csv"), at, berlin)
	require.NoError(t, err)
	require.Equal(t, "accounts_root.csv", fi.Path)

	fi, err = source.Resolve(t.Context(), c, pattern("daily/{yyyy-MM-dd}/*.csv"), at, time.UTC)
	require.NoError(t, err)
	require.Equal(t, "daily/2025-03-30/a.csv", fi.Path)
	_, err = source.Resolve(t.Context(), c, pattern("daily/{yyyy-MM-dd}/*.csv"), at, berlin)
	requireErrKind(t, err, ekNotFound, false, "daily/2025-03-31 does not exist")

	_, err = source.Resolve(t.Context(), c, pattern("exports/contacts_*.csv"), at, berlin)
	requireErrKind(t, err, ekNoMatch, false, "no file in exports/ matches contacts_*.csv (4 files there)")
	_, err = source.Resolve(t.Context(), c, pattern("*.json"), at, berlin)
	requireErrKind(t, err, ekNoMatch, false, "no file in the connection's root directory matches *.json (1 file there)")

	fi, err = source.Resolve(t.Context(), c, &intakev1.FileSelector{Selector: &intakev1.FileSelector_Path{Path: "daily/{yyyy-MM-dd}/a.csv"}}, at, time.UTC)
	require.NoError(t, err)
	require.Equal(t, source.FileInfo{Path: "daily/2025-03-30/a.csv", Size: 1, ModTime: base}, fi)
	_, err = source.Resolve(t.Context(), c, &intakev1.FileSelector{Selector: &intakev1.FileSelector_Path{Path: "daily/{yyyy-MM-dd}/a.csv"}}, at, berlin)
	requireErrKind(t, err, ekNotFound, false, "daily/2025-03-31/a.csv does not exist")
	_, err = source.Resolve(t.Context(), c, nil, at, berlin)
	requireErrKind(t, err, ekConfig, false, "the job names no file")

	// HTTP: a path is only expanded (no request); a pattern is refused.
	web := dialClient(t, storedHTTPConn(&intakev1.HttpConnection{Url: "http://127.0.0.1:1/"}), source.Options{})
	fi, err = source.Resolve(t.Context(), web, &intakev1.FileSelector{Selector: &intakev1.FileSelector_Path{Path: "a_{yyyyMMdd}.csv"}}, at, berlin)
	require.NoError(t, err)
	require.Equal(t, source.FileInfo{Path: "a_20250331.csv", Size: -1}, fi)
	fi, err = source.Resolve(t.Context(), web, nil, at, berlin)
	require.NoError(t, err)
	require.Equal(t, source.FileInfo{Size: -1}, fi, "the URL itself")
	_, err = source.Resolve(t.Context(), web, pattern("*.csv"), at, berlin)
	requireErrKind(t, err, ekConfig, false, "an HTTP connection cannot be browsed")
}

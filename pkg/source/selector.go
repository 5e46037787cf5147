package source

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"
	"unicode/utf8"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// placeholderTokens are the date patterns a placeholder may hold, with the
// time.Format layout of each.
var placeholderTokens = map[string]string{
	"yyyy": "2006",
	"yy":   "06",
	"MM":   "01",
	"dd":   "02",
	"HH":   "15",
	"mm":   "04",
}

// placeholderHelp lists what a placeholder may hold, for error messages.
const placeholderHelp = "a placeholder holds yyyy, yy, MM, dd, HH, mm and the separators - _ ."

// ExpandPlaceholders replaces the date placeholders of a file path or
// pattern with t in loc (nil: UTC). A placeholder is in braces and holds date
// patterns — yyyy (year), yy (2-digit year), MM (month), dd (day), HH (hour,
// 00-23), mm (minute) — and the literal separators "-", "_" and ".":
// "exports/accounts_{yyyy-MM-dd}.csv" becomes
// "exports/accounts_2025-03-30.csv", "{yyyyMMdd}" becomes "20250330". A
// pattern is a run of one letter; anything else in braces is an error that
// names it and its position (1-based, in characters of template).
func ExpandPlaceholders(template string, t time.Time, loc *time.Location) (string, error) {
	if loc == nil {
		loc = time.UTC
	}
	t = t.In(loc)
	var b strings.Builder
	rest := template
	for {
		open := strings.IndexAny(rest, "{}")
		if open < 0 {
			b.WriteString(rest)
			return b.String(), nil
		}
		done := len(template) - len(rest) // bytes of template consumed
		pos := func(i int) int { return utf8.RuneCountInString(template[:done+i]) + 1 }
		if rest[open] == '}' {
			return "", fmt.Errorf("%q: a } at character %d closes no placeholder", template, pos(open))
		}
		b.WriteString(rest[:open])
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return "", fmt.Errorf("%q: the placeholder at character %d has no closing }", template, pos(open))
		}
		end += open
		body := rest[open+1 : end]
		if body == "" {
			return "", fmt.Errorf("%q: empty placeholder {} at character %d (%s)", template, pos(open), placeholderHelp)
		}
		if i := strings.IndexByte(body, '{'); i >= 0 {
			return "", fmt.Errorf("%q: a { at character %d inside the placeholder at character %d", template, pos(open+1+i), pos(open))
		}
		layout, bad, badAt := placeholderLayout(body)
		if bad != "" {
			return "", fmt.Errorf("%q: unknown date pattern %q in placeholder {%s} at character %d (%s)",
				template, bad, body, pos(open+1+badAt), placeholderHelp)
		}
		b.WriteString(t.Format(layout))
		rest = rest[end+1:]
	}
}

// placeholderLayout translates the body of a placeholder into a time.Format
// layout. On an unknown pattern it returns it and its byte offset in body.
func placeholderLayout(body string) (layout, bad string, badAt int) {
	var b strings.Builder
	for i := 0; i < len(body); {
		c := body[i]
		switch c {
		case '-', '_', '.':
			b.WriteByte(c)
			i++
			continue
		}
		j := i + 1
		if isASCIILetter(c) {
			for j < len(body) && body[j] == c {
				j++
			}
		} else {
			_, size := utf8.DecodeRuneInString(body[i:])
			j = i + size
		}
		l, ok := placeholderTokens[body[i:j]]
		if !ok {
			return "", body[i:j], i
		}
		b.WriteString(l)
		i = j
	}
	return b.String(), "", 0
}

func isASCIILetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// hasGlob reports whether s holds glob characters of path.Match.
func hasGlob(s string) bool { return strings.ContainsAny(s, `*?[\`) }

// splitPattern splits a pattern into its directory ("" for the root, else
// without a trailing "/") and the glob on the file name.
func splitPattern(pattern string) (dir, glob string) {
	dir, glob = path.Split(pattern)
	if dir != "/" {
		dir = strings.TrimSuffix(dir, "/")
	}
	return dir, glob
}

// selectorFixedTime is the time placeholders are expanded with to check a
// selector's syntax.
var selectorFixedTime = time.Date(2006, 1, 2, 15, 4, 0, 0, time.UTC)

// ValidateSelector checks a job's file selector for conn's kind (nil conn:
// any kind), so a bad selector is refused when the job is saved rather than
// at its first run. It refuses an empty selector, a bad placeholder, a
// pattern on an HTTP connection (which cannot be listed), a pattern whose
// directory part has glob characters (only the file name may vary), a
// pattern that names no file, and bad glob syntax. Errors are *Error of
// kind INVALID_CONFIG.
func ValidateSelector(sel *intakev1.FileSelector, conn *intakev1.Connection) error {
	switch s := sel.GetSelector().(type) {
	case *intakev1.FileSelector_Path:
		if s.Path == "" {
			if _, ok := conn.GetKind().(*intakev1.Connection_Http); ok {
				return nil // the connection's URL itself
			}
			return Errorf(kindConfig, false, nil, "the file path is empty: name the file to read")
		}
		if _, err := ExpandPlaceholders(s.Path, selectorFixedTime, time.UTC); err != nil {
			return Errorf(kindConfig, false, err, "file path %v", err)
		}
		return nil
	case *intakev1.FileSelector_Pattern:
		p := s.Pattern
		if p == "" {
			return Errorf(kindConfig, false, nil, "the file pattern is empty: give a glob such as exports/accounts_*.csv")
		}
		if _, ok := conn.GetKind().(*intakev1.Connection_Http); ok {
			return Errorf(kindConfig, false, nil, "file pattern %q: %s (patterns need a connection that can be listed: S3, SFTP or local)", p, errHTTPNotBrowsable)
		}
		expanded, err := ExpandPlaceholders(p, selectorFixedTime, time.UTC)
		if err != nil {
			return Errorf(kindConfig, false, err, "file pattern %v", err)
		}
		dir, glob := splitPattern(p)
		if hasGlob(dir) {
			return Errorf(kindConfig, false, nil, "file pattern %q: only the file name may hold glob characters, not the directory %q", p, dir)
		}
		if glob == "" {
			return Errorf(kindConfig, false, nil, "file pattern %q ends with / : it must end with a file name glob such as *.csv", p)
		}
		if _, err := path.Match(path.Base(expanded), ""); err != nil {
			return Errorf(kindConfig, false, err, "file pattern %q: the glob %q is malformed (use *, ? and [abc])", p, glob)
		}
		return nil
	}
	return Errorf(kindConfig, false, nil, "the job names no file: set file.path or file.pattern")
}

// Resolve says which file of c a selector names at time at (its date
// placeholders in loc, nil: UTC).
//
// A path is expanded and, except on HTTP connections, checked with Stat (so
// a missing file fails here, with its path). HTTP paths are not checked:
// a HEAD costs a round trip, and servers that sign URLs for GET only refuse
// it; the GET that follows reports a missing file just as clearly. The
// returned FileInfo then has only the Path (Size -1).
//
// A pattern is expanded, its directory listed (every page) and the newest
// matching file by modification time taken (on a tie, the greatest name).
// When none matches, the error is an *Error of kind NO_MATCH that says how
// many files the directory holds.
//
// A nil or empty selector names an HTTP connection's URL itself, and is an
// error on other kinds.
func Resolve(ctx context.Context, c Client, sel *intakev1.FileSelector, at time.Time, loc *time.Location) (FileInfo, error) {
	_, isHTTP := c.(*httpConnClient)
	switch s := sel.GetSelector().(type) {
	case *intakev1.FileSelector_Pattern:
		if isHTTP {
			return FileInfo{}, Errorf(kindConfig, false, nil, "file pattern %q: %s", s.Pattern, errHTTPNotBrowsable)
		}
		return resolvePattern(ctx, c, s.Pattern, at, loc)
	case *intakev1.FileSelector_Path:
		if s.Path != "" || isHTTP {
			p, err := ExpandPlaceholders(s.Path, at, loc)
			if err != nil {
				return FileInfo{}, Errorf(kindConfig, false, err, "file path %v", err)
			}
			if isHTTP {
				return FileInfo{Path: p, Size: -1}, nil
			}
			return c.Stat(ctx, p)
		}
	}
	if isHTTP {
		return FileInfo{Path: "", Size: -1}, nil
	}
	return FileInfo{}, Errorf(kindConfig, false, nil, "the job names no file: set file.path or file.pattern")
}

// resolveListLimit is the page size Resolve lists a directory with.
const resolveListLimit = 1000

func resolvePattern(ctx context.Context, c Client, pattern string, at time.Time, loc *time.Location) (FileInfo, error) {
	expanded, err := ExpandPlaceholders(pattern, at, loc)
	if err != nil {
		return FileInfo{}, Errorf(kindConfig, false, err, "file pattern %v", err)
	}
	dir, glob := splitPattern(expanded)
	if hasGlob(dir) {
		return FileInfo{}, Errorf(kindConfig, false, nil, "file pattern %q: only the file name may hold glob characters, not the directory %q", pattern, dir)
	}
	if _, err := path.Match(glob, ""); err != nil || glob == "" {
		return FileInfo{}, Errorf(kindConfig, false, err, "file pattern %q: the glob %q is malformed (use *, ? and [abc])", pattern, glob)
	}
	var best FileInfo
	found, seen := false, 0
	token := ""
	for {
		page, next, err := c.List(ctx, dir, token, resolveListLimit)
		if err != nil {
			return FileInfo{}, err
		}
		for _, fi := range page {
			if fi.Dir {
				continue
			}
			seen++
			if ok, _ := path.Match(glob, path.Base(fi.Path)); !ok {
				continue
			}
			if !found || fi.ModTime.After(best.ModTime) || fi.ModTime.Equal(best.ModTime) && fi.Path > best.Path {
				best, found = fi, true
			}
		}
		if next == "" {
			break
		}
		if next == token {
			return FileInfo{}, Errorf(kindOther, false, nil, "listing %s does not advance (page token %q repeats)", describeDir(dir), next)
		}
		token = next
	}
	if !found {
		return FileInfo{}, Errorf(kindNoMatch, false, nil, "no file in %s matches %s (%d %s there)", describeDir(dir), glob, seen, plural(seen, "file", "files"))
	}
	return best, nil
}

// describeDir names a listed directory in messages.
func describeDir(dir string) string {
	switch {
	case dir == "":
		return "the connection's root directory"
	case strings.HasSuffix(dir, "/"):
		return dir
	}
	return dir + "/"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

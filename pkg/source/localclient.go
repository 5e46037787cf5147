package source

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// localListLimit is the page size of List when the caller gives none.
const localListLimit = 1000

// localDirClient is the Client of a local directory connection (development
// mode only). Paths are relative to the directory, "/"-separated; a leading
// "/" is the directory itself (as on a chrooted SFTP server). A path that
// leaves the directory ("..", or a symbolic link pointing outside) is refused.
type localDirClient struct {
	root string
}

func dialLocal(conn *intakev1.LocalConnection, opts Options) (Client, error) {
	if !opts.DevMode {
		return nil, localNotAllowed()
	}
	dir := conn.GetPath()
	switch {
	case dir == "":
		return nil, Errorf(kindConfig, false, nil, "the local connection has no directory (path)")
	case !filepath.IsAbs(dir):
		return nil, Errorf(kindConfig, false, nil, "local directory %q is not absolute", dir)
	}
	return &localDirClient{root: filepath.Clean(dir)}, nil
}

// rel checks p and returns it cleaned, relative to the root ("." for the
// root itself).
func (c *localDirClient) rel(p string) (string, error) {
	q := strings.TrimLeft(p, "/")
	if q == "" {
		return ".", nil
	}
	if !filepath.IsLocal(q) {
		return "", Errorf(kindConfig, false, nil, "path %q leaves the local directory %s", p, c.root)
	}
	return path.Clean(q), nil
}

// full is the absolute file name of a relative path, for messages.
func (c *localDirClient) full(rel string) string {
	return filepath.Join(c.root, filepath.FromSlash(rel))
}

// openRoot opens the connection's directory.
func (c *localDirClient) openRoot() (*os.Root, error) {
	r, err := os.OpenRoot(c.root)
	if err == nil {
		return r, nil
	}
	st, serr := os.Stat(c.root)
	switch {
	case serr == nil && !st.IsDir(), errors.Is(err, syscall.ENOTDIR):
		return nil, Errorf(kindConfig, false, err, "local directory %s is not a directory", c.root)
	case errors.Is(err, fs.ErrNotExist):
		return nil, Errorf(kindNotFound, false, err, "local directory %s does not exist", c.root)
	case errors.Is(err, fs.ErrPermission):
		return nil, Errorf(kindDenied, false, err, "local directory %s cannot be read: permission denied", c.root)
	}
	return nil, Errorf(kindOther, false, err, "open local directory %s: %v", c.root, unwrapPath(err))
}

// localFileError describes an error of a local file operation on name.
func localFileError(name string, err error) *Error {
	var pe *fs.PathError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Errorf(kindNotFound, false, err, "local file %s does not exist", name)
	case errors.Is(err, fs.ErrPermission):
		return Errorf(kindDenied, false, err, "local file %s cannot be read: permission denied", name)
	case errors.Is(err, syscall.ENOTDIR):
		return Errorf(kindNotFound, false, err, "local file %s does not exist (a parent is not a directory)", name)
	case errors.As(err, &pe) && strings.Contains(pe.Err.Error(), "escapes"):
		// os.Root refuses a symbolic link that points outside the root.
		return Errorf(kindConfig, false, err, "local file %s is a link that leaves the connection's directory", name)
	}
	return Errorf(kindOther, false, err, "local file %s: %v", name, unwrapPath(err))
}

// unwrapPath drops the file name an fs.PathError repeats.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Check implements Client: the directory exists and can be read.
func (c *localDirClient) Check(context.Context) error {
	r, err := c.openRoot()
	if err != nil {
		return err
	}
	defer r.Close()
	f, err := r.Open(".")
	if err != nil {
		return Errorf(kindDenied, false, err, "local directory %s cannot be read: %v", c.root, unwrapPath(err))
	}
	defer f.Close()
	if _, err := f.ReadDir(1); err != nil && err != io.EOF {
		if errors.Is(err, fs.ErrPermission) {
			return Errorf(kindDenied, false, err, "local directory %s cannot be read: permission denied", c.root)
		}
		return Errorf(kindOther, false, err, "local directory %s cannot be read: %v", c.root, unwrapPath(err))
	}
	return nil
}

// localInfo makes the FileInfo of a relative path.
func localInfo(rel string, st fs.FileInfo) FileInfo {
	if rel == "." {
		rel = ""
	}
	fi := FileInfo{Path: rel, ModTime: st.ModTime().UTC(), Dir: st.IsDir()}
	if !fi.Dir {
		fi.Size = st.Size()
	}
	return fi
}

// Stat implements Client.
func (c *localDirClient) Stat(_ context.Context, p string) (FileInfo, error) {
	rel, err := c.rel(p)
	if err != nil {
		return FileInfo{}, err
	}
	r, err := c.openRoot()
	if err != nil {
		return FileInfo{}, err
	}
	defer r.Close()
	st, err := r.Stat(rel)
	if err != nil {
		return FileInfo{}, localFileError(c.full(rel), err)
	}
	return localInfo(rel, st), nil
}

// List implements Client. The page token is the name of the last entry of
// the previous page.
func (c *localDirClient) List(_ context.Context, dir, pageToken string, limit int) ([]FileInfo, string, error) {
	rel, err := c.rel(dir)
	if err != nil {
		return nil, "", err
	}
	if limit <= 0 {
		limit = localListLimit
	}
	r, err := c.openRoot()
	if err != nil {
		return nil, "", err
	}
	defer r.Close()
	f, err := r.Open(rel)
	if err != nil {
		return nil, "", localFileError(c.full(rel), err)
	}
	defer f.Close()
	entries, err := f.ReadDir(-1)
	if err != nil {
		if errors.Is(err, syscall.ENOTDIR) {
			return nil, "", Errorf(kindConfig, false, err, "local path %s is not a directory", c.full(rel))
		}
		return nil, "", localFileError(c.full(rel), err)
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	var out []FileInfo
	for i, e := range entries {
		if pageToken != "" && e.Name() <= pageToken {
			continue
		}
		if len(out) == limit {
			return out, entries[i-1].Name(), nil
		}
		name := path.Join(rel, e.Name())
		var st fs.FileInfo
		if e.Type()&fs.ModeSymlink != 0 {
			st, err = r.Stat(name) // the link's target, if inside the root
		}
		if st == nil || err != nil {
			if st, err = e.Info(); err != nil {
				continue // removed since ReadDir
			}
		}
		out = append(out, localInfo(name, st))
	}
	return out, "", nil
}

// Open implements Client; cond is ignored (local files have no validators).
func (c *localDirClient) Open(_ context.Context, p string, _ Conditional) (io.ReadCloser, Meta, error) {
	rel, err := c.rel(p)
	if err != nil {
		return nil, Meta{}, err
	}
	r, err := c.openRoot()
	if err != nil {
		return nil, Meta{}, err
	}
	defer r.Close() // open files outlive their Root
	f, err := r.Open(rel)
	if err != nil {
		return nil, Meta{}, localFileError(c.full(rel), err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, Meta{}, localFileError(c.full(rel), err)
	}
	if st.IsDir() {
		_ = f.Close()
		return nil, Meta{}, Errorf(kindConfig, false, nil, "local file %s is a directory", c.full(rel))
	}
	return f, Meta{FileInfo: localInfo(rel, st)}, nil
}

// Close implements Client.
func (c *localDirClient) Close() error { return nil }

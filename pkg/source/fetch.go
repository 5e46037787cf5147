package source

import (
	"context"

	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"time"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// Request names the file OpenFile opens.
type Request struct {
	// Conn is the connection, with its secrets in clear text: a stored one
	// (with a name) or an inline one.
	Conn *intakev1.Connection
	// File selects the file of a stored connection. Nil with an inline
	// connection: the connection names the file itself (an HTTP URL, a
	// local file path).
	File *intakev1.FileSelector
	// At is the time File's date placeholders stand for (the run's
	// scheduled time); zero means now.
	At time.Time
	// Location is the zone of the placeholders (the job's schedule zone);
	// nil means UTC.
	Location *time.Location
	// Cond are the validators of the last successful read, for a
	// conditional request (HTTP).
	Cond Conditional
}

// FileMeta describes the file OpenFile opened.
type FileMeta struct {
	Meta
	// Path is the file's path on the connection after placeholders and
	// patterns were resolved (inline: the URL without secrets, or the local
	// file path).
	Path string
	// Source says where the file comes from, for users: "<connection
	// name>: <path>" for a stored connection, the URL without secrets or the
	// local path for an inline one (Describe).
	Source string
}

// OpenFile opens a job's file: it dials the connection, resolves the file
// selector (retrying transient failures), and opens the file (retrying
// transient failures of the open only: nothing is retried once the reader
// is handed out). The reader's Close also closes the connection. Errors are
// *Error (KindOf says why), prefixed with the connection's name.
//
// When the file did not change since Request.Cond (an HTTP 304), the reader
// is nil, FileMeta.NotModified is set, and the connection is closed already.
func OpenFile(ctx context.Context, req Request, opts Options) (io.ReadCloser, FileMeta, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	conn := req.Conn
	if conn.GetKind() == nil {
		return nil, FileMeta{}, Errorf(kindConfig, false, nil, "the job has no connection to read the file from")
	}
	if conn.GetName() == "" && req.File.GetSelector() == nil {
		return openInlineFile(ctx, req, opts)
	}
	at := req.At
	if at.IsZero() {
		at = time.Now()
	}
	label := connLabel(conn)
	prefix := ""
	if conn.GetName() != "" {
		prefix = conn.GetName() + ": "
	}

	c, err := Dial(ctx, conn, opts)
	if err != nil {
		return nil, FileMeta{}, withPrefix(err, prefix)
	}
	var fi FileInfo
	err = Retry(ctx, opts.Retry, func(ctx context.Context) error {
		var err error
		fi, err = Resolve(ctx, c, req.File, at, req.Location)
		return err
	})
	if err != nil {
		_ = c.Close()
		return nil, FileMeta{}, withPrefix(err, prefix)
	}
	var rc io.ReadCloser
	var meta Meta
	err = Retry(ctx, opts.Retry, func(ctx context.Context) error {
		var err error
		rc, meta, err = c.Open(ctx, fi.Path, req.Cond)
		return err
	})
	if err != nil {
		_ = c.Close()
		return nil, FileMeta{}, withPrefix(err, prefix)
	}
	if meta.Path == "" {
		meta.Path = fi.Path
	}
	if meta.ModTime.IsZero() {
		meta.ModTime = fi.ModTime
	}
	where := fi.Path
	if hc, ok := c.(*httpConnClient); ok && where == "" {
		where = Redact(hc.base)
	}
	fm := FileMeta{Meta: meta, Path: fi.Path, Source: label + ": " + where}
	if rc == nil { // not modified
		_ = c.Close()
		return nil, fm, nil
	}
	return &clientReader{ReadCloser: rc, client: c}, fm, nil
}

// openInlineFile opens the file an inline connection names.
func openInlineFile(ctx context.Context, req Request, opts Options) (io.ReadCloser, FileMeta, error) {
	fm := FileMeta{Source: Describe(req.Conn)}
	fm.Path = fm.Source
	switch kind := req.Conn.GetKind().(type) {
	case *intakev1.Connection_Http:
		c, err := dialHTTPConn(kind.Http, opts, "file URL")
		if err != nil {
			return nil, fm, err
		}
		var rc io.ReadCloser
		err = Retry(ctx, opts.Retry, func(ctx context.Context) error {
			var err error
			rc, fm.Meta, err = c.Open(ctx, "", req.Cond)
			return err
		})
		if err != nil || rc == nil {
			_ = c.Close()
			return nil, fm, err
		}
		return &clientReader{ReadCloser: rc, client: c}, fm, nil
	case *intakev1.Connection_Local:
		rc, _, err := openLocal(kind.Local, opts)
		if err != nil {
			return nil, fm, err
		}
		if f, ok := rc.(*os.File); ok {
			if st, err := f.Stat(); err == nil {
				fm.Meta = Meta{FileInfo: FileInfo{Path: fm.Path, Size: st.Size(), ModTime: st.ModTime()}}
			}
		}
		return rc, fm, nil
	}
	return nil, fm, Errorf(kindConfig, false, nil,
		"%s connections cannot be inline: store the connection and name the file on it", connKindName(req.Conn))
}

// connKindName is the kind of a connection in words.
func connKindName(conn *intakev1.Connection) string {
	switch conn.GetKind().(type) {
	case *intakev1.Connection_Http:
		return "HTTP"
	case *intakev1.Connection_Local:
		return "local"
	case *intakev1.Connection_S3:
		return "S3"
	case *intakev1.Connection_Sftp:
		return "SFTP"
	}
	return "such"
}

// connLabel names a connection for users, without secrets: its resource
// name, else its display name, else where it points.
func connLabel(conn *intakev1.Connection) string {
	switch {
	case conn.GetName() != "":
		return conn.GetName()
	case conn.GetDisplayName() != "":
		return conn.GetDisplayName()
	}
	switch kind := conn.GetKind().(type) {
	case *intakev1.Connection_Http:
		if u, err := url.Parse(kind.Http.GetUrl()); err == nil {
			return Redact(u)
		}
		return "HTTP connection"
	case *intakev1.Connection_Local:
		return kind.Local.GetPath()
	case *intakev1.Connection_S3:
		return "s3://" + kind.S3.GetBucket()
	case *intakev1.Connection_Sftp:
		port := int(kind.Sftp.GetPort())
		if port == 0 {
			port = 22
		}
		return "sftp://" + net.JoinHostPort(kind.Sftp.GetHost(), strconv.Itoa(port))
	}
	return "connection"
}

// withPrefix puts prefix before err's message, keeping its Kind.
func withPrefix(err error, prefix string) error {
	if prefix == "" || err == nil {
		return err
	}
	return &Error{Kind: KindOf(err), Msg: prefix + err.Error(), Transient: IsTransient(err), Err: err}
}

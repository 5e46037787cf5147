package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// A Client reads files from one stored connection. Paths are relative to the
// connection's root: an S3 key, an SFTP path, a path under an HTTP base URL
// or under a local directory. Clients are not safe for concurrent use unless
// the kind says so; Close releases the connection.
//
// Every error a Client returns is an *Error (errors.As) with a Kind.
type Client interface {
	// Check reaches the server and authenticates (S3: the bucket is
	// reachable; SFTP: login and the root directory is readable; HTTP: the
	// base URL answers; local: the directory exists).
	Check(ctx context.Context) error
	// Stat describes one file.
	Stat(ctx context.Context, path string) (FileInfo, error)
	// List lists one directory level (S3: a prefix with "/" as delimiter),
	// sorted by path, at most limit entries from pageToken on; the returned
	// token is empty on the last page.
	List(ctx context.Context, dir, pageToken string, limit int) ([]FileInfo, string, error)
	// Open streams a file. With cond set and the file unchanged (HTTP 304),
	// it returns a nil reader and Meta.NotModified.
	Open(ctx context.Context, path string, cond Conditional) (io.ReadCloser, Meta, error)
	Close() error
}

// FileInfo describes a file or directory of a connection.
type FileInfo struct {
	Path    string
	Size    int64
	ModTime time.Time
	Dir     bool
}

// Conditional carries the validators of the last successful read of the
// same file, for a conditional request. Kinds without validators ignore it.
type Conditional struct {
	ETag         string
	LastModified string
}

// Meta describes an opened file.
type Meta struct {
	FileInfo
	// ETag and LastModified are the response validators (HTTP).
	ETag         string
	LastModified string
	// NotModified: the server answered 304; there is no body.
	NotModified bool
}

// Error is a connection failure a user can act on: Kind classifies it and
// Error() says what failed and where, never with a secret in it.
type Error struct {
	Kind intakev1.ConnectionErrorKind
	// Msg is the sentence shown to users, e.g. "sftp files.example.com:22:
	// authentication failed for user \"acme\"".
	Msg string
	// Transient errors (timeouts, refused or reset connections, 5xx, S3
	// throttling) may succeed when retried; the others (wrong credentials,
	// missing file, host key mismatch) are never retried.
	Transient bool
	// Err is the underlying error, for errors.Is / errors.As.
	Err error
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Err }

// Errorf makes an *Error.
func Errorf(kind intakev1.ConnectionErrorKind, transient bool, err error, format string, args ...any) *Error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...), Transient: transient, Err: err}
}

// KindOf returns the Kind of err, CONNECTION_ERROR_KIND_OTHER when err is
// not an *Error, and UNSPECIFIED for nil.
func KindOf(err error) intakev1.ConnectionErrorKind {
	if err == nil {
		return intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_UNSPECIFIED
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_OTHER
}

// IsTransient reports whether err is worth retrying.
func IsTransient(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Transient
}

// Dial makes a Client for a stored (or inline) connection, with its secrets
// in clear text. It does not touch the network: Check does.
func Dial(ctx context.Context, conn *intakev1.Connection, opts Options) (Client, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	switch kind := conn.GetKind().(type) {
	case *intakev1.Connection_Http:
		return dialHTTP(ctx, kind.Http, opts)
	case *intakev1.Connection_Local:
		return dialLocal(kind.Local, opts)
	case *intakev1.Connection_S3:
		return dialS3(ctx, kind.S3, opts)
	case *intakev1.Connection_Sftp:
		return dialSFTP(ctx, kind.Sftp, opts)
	case nil:
		return nil, Errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_INVALID_CONFIG, false, nil, "the connection has no kind (s3, sftp, http or local)")
	default:
		return nil, Errorf(intakev1.ConnectionErrorKind_CONNECTION_ERROR_KIND_INVALID_CONFIG, false, nil, "connection kind %T is not supported", kind)
	}
}

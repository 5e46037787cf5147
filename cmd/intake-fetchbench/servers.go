package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/intakehq/intake/pkg/s3test"
	"github.com/intakehq/intake/pkg/sftptest"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// bucketName is the S3 bucket of the files.
const bucketName = "exports"

// filePath is the path of the file of size bytes on every connection: in
// the SFTP chroot, the S3 bucket and under the HTTPS server's root.
func filePath(size int64) string {
	return fmt.Sprintf("exports/accounts-%d.csv", size)
}

// fileModTime is the modification time every server reports.
var fileModTime = time.Date(2026, 3, 1, 6, 0, 0, 0, time.UTC)

// startSFTP starts sshd (pkg/sftptest) for the life of h.
func startSFTP(h *harness) (*sftptest.Server, error) {
	var srv *sftptest.Server
	if err := h.run(func() { srv = sftptest.New(h) }); err != nil {
		return nil, fmt.Errorf("start sshd: %w", err)
	}
	return srv, nil
}

// sftpConnection is the stored connection to srv: password authentication,
// host key pinned by its known_hosts line.
func sftpConnection(srv *sftptest.Server) *intakev1.Connection {
	return &intakev1.Connection{
		Name: "connections/bench-sftp",
		Kind: &intakev1.Connection_Sftp{Sftp: srv.Connection()},
	}
}

// writeSFTPFile writes the generated file of size bytes into srv's chroot
// and returns its SHA-256.
func writeSFTPFile(srv *sftptest.Server, seed uint64, size int64) (string, error) {
	p := srv.Path(filePath(size))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", fmt.Errorf("create the directory of %s: %w", p, err)
	}
	gen, err := newGenerator(seed, size)
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return "", fmt.Errorf("create %s: %w", p, err)
	}
	h := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	if _, err := io.Copy(w, gen); err != nil {
		_ = f.Close()
		return "", fmt.Errorf("write %s: %w", p, err)
	}
	if err := w.Flush(); err != nil {
		_ = f.Close()
		return "", fmt.Errorf("write %s: %w", p, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("write %s: %w", p, err)
	}
	if err := os.Chtimes(p, fileModTime, fileModTime); err != nil {
		return "", fmt.Errorf("set the modification time of %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// startS3 starts gofakes3 over HTTPS (pkg/s3test) for the life of h, with
// the files' bucket.
func startS3(h *harness) (*s3test.Server, error) {
	var srv *s3test.Server
	if err := h.run(func() {
		srv = s3test.NewTLS(h)
		srv.CreateBucket(bucketName)
	}); err != nil {
		return nil, fmt.Errorf("start the S3 server: %w", err)
	}
	return srv, nil
}

// s3Connection is the stored connection to srv's bucket.
func s3Connection(srv *s3test.Server) *intakev1.Connection {
	return &intakev1.Connection{
		Name: "connections/bench-s3",
		Kind: &intakev1.Connection_S3{S3: srv.S3Connection(bucketName)},
	}
}

// putS3File stores the generated file of size bytes in srv's bucket and
// returns its SHA-256. gofakes3 keeps objects in memory: the object, and
// for a moment the copy PutObject reads it from, are in this process.
func putS3File(h *harness, srv *s3test.Server, seed uint64, size int64) (string, error) {
	gen, err := newGenerator(seed, size)
	if err != nil {
		return "", err
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(gen, data); err != nil {
		return "", fmt.Errorf("generate %d bytes: %w", size, err)
	}
	sum := sha256.Sum256(data)
	if err := h.run(func() { srv.PutObject(bucketName, filePath(size), data, fileModTime) }); err != nil {
		return "", err
	}
	return hex.EncodeToString(sum[:]), nil
}

// httpsServer serves the generated files over HTTPS, written on the fly:
// GET /exports/accounts-{size}.csv answers the file of size bytes, with
// Content-Length, ETag and Last-Modified. Nothing is on disk.
type httpsServer struct {
	srv   *httptest.Server
	caPEM string
}

func startHTTPS(seed uint64) *httpsServer {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /exports/{name}", func(w http.ResponseWriter, r *http.Request) {
		sizeText, ok := strings.CutPrefix(r.PathValue("name"), "accounts-")
		sizeText, ok2 := strings.CutSuffix(sizeText, ".csv")
		size, err := strconv.ParseInt(sizeText, 10, 64)
		if !ok || !ok2 || err != nil || size < genMinSize {
			http.NotFound(w, r)
			return
		}
		gen, err := newGenerator(seed, size)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/csv")
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		w.Header().Set("ETag", fmt.Sprintf(`"gen-%d-%d"`, seed, size))
		w.Header().Set("Last-Modified", fileModTime.Format(http.TimeFormat))
		if r.Method == http.MethodHead {
			return
		}
		_, _ = io.CopyBuffer(w, gen, make([]byte, 256<<10))
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	return &httpsServer{
		srv:   srv,
		caPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})),
	}
}

// connection is the stored connection to the server: its root as the base
// URL, its self-signed certificate trusted.
func (s *httpsServer) connection() *intakev1.Connection {
	return &intakev1.Connection{
		Name: "connections/bench-https",
		Kind: &intakev1.Connection_Http{Http: &intakev1.HttpConnection{Url: s.srv.URL + "/", CaPem: s.caPEM}},
	}
}

func (s *httpsServer) close() { s.srv.Close() }

// generatedSHA256 is the SHA-256 of the generated file of size bytes.
func generatedSHA256(seed uint64, size int64) (string, error) {
	gen, err := newGenerator(seed, size)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	if _, err := io.Copy(h, gen); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Package archive keeps the source file of every run so it can be cut into
// chunks after the fetch and downloaded later from the run history.
//
// Archive is the interface the workers and the API use; JetStreamArchive
// keeps the files in a JetStream object store bucket. Another implementation
// (an S3 bucket) can take its place without changes to its users.
package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrNotFound is returned for a key that is not in the archive.
var ErrNotFound = errors.New("archive: file not found")

// Info describes an archived file.
type Info struct {
	Key  string
	Size int64
	// SHA256 is the hex SHA-256 of the file's bytes.
	SHA256 string
}

// Archive stores files by key.
type Archive interface {
	// Put streams r into the archive under key, replacing any file with the
	// same key, and returns its size and SHA-256. It reads r once and never
	// holds the whole file in memory.
	Put(ctx context.Context, key string, r io.Reader) (Info, error)
	// Stat returns the Info of the file under key, or ErrNotFound.
	Stat(ctx context.Context, key string) (Info, error)
	// Open returns the file under key for reading, or ErrNotFound.
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	// Delete removes the file under key, or returns ErrNotFound.
	Delete(ctx context.Context, key string) error
}

// JetStreamArchive is an Archive over a JetStream object store bucket.
type JetStreamArchive struct {
	bucket string
	store  jetstream.ObjectStore
}

var _ Archive = (*JetStreamArchive)(nil)

// NewJetStream binds to the object store bucket, creating it (file storage,
// replicas copies, no expiry) when it does not exist yet. An existing
// bucket's configuration is left as it is.
func NewJetStream(ctx context.Context, js jetstream.JetStream, bucket string, replicas int) (*JetStreamArchive, error) {
	if replicas < 1 {
		replicas = 1
	}
	store, err := js.ObjectStore(ctx, bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		store, err = js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket:      bucket,
			Description: "Intake run archive: the source file of every run, keyed by run id",
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			// Another process created it first.
			store, err = js.ObjectStore(ctx, bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("archive: object store bucket %s: %w", bucket, err)
	}
	return &JetStreamArchive{bucket: bucket, store: store}, nil
}

// Put streams r into the bucket, hashing it on the way.
func (a *JetStreamArchive) Put(ctx context.Context, key string, r io.Reader) (Info, error) {
	h := sha256.New()
	cr := &countingReader{r: io.TeeReader(r, h)}
	info, err := a.store.Put(ctx, jetstream.ObjectMeta{Name: key}, cr)
	if err != nil {
		return Info{}, fmt.Errorf("archive: put %s in %s: %w", key, a.bucket, err)
	}
	if int64(info.Size) != cr.n {
		return Info{}, fmt.Errorf("archive: put %s in %s: stored %d bytes of %d", key, a.bucket, info.Size, cr.n)
	}
	return Info{Key: key, Size: cr.n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// Stat returns the file's size and hash from the bucket's metadata.
func (a *JetStreamArchive) Stat(ctx context.Context, key string) (Info, error) {
	info, err := a.store.GetInfo(ctx, key)
	if err != nil {
		return Info{}, a.wrap("stat", key, err)
	}
	sum, err := jetstream.DecodeObjectDigest(info.Digest)
	if err != nil && info.Size > 0 {
		return Info{}, fmt.Errorf("archive: stat %s in %s: digest %q: %w", key, a.bucket, info.Digest, err)
	}
	if info.Size == 0 {
		empty := sha256.Sum256(nil)
		sum = empty[:]
	}
	return Info{Key: key, Size: int64(info.Size), SHA256: hex.EncodeToString(sum)}, nil
}

// Open streams the file back. A read fails if the bytes do not match the
// digest stored with them.
func (a *JetStreamArchive) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	res, err := a.store.Get(ctx, key)
	if err != nil {
		return nil, a.wrap("open", key, err)
	}
	return res, nil
}

// Delete removes the file.
func (a *JetStreamArchive) Delete(ctx context.Context, key string) error {
	// The object store deletes a deleted object again without complaint.
	if _, err := a.store.GetInfo(ctx, key); err != nil {
		return a.wrap("delete", key, err)
	}
	if err := a.store.Delete(ctx, key); err != nil {
		return a.wrap("delete", key, err)
	}
	return nil
}

func (a *JetStreamArchive) wrap(op, key string, err error) error {
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("%w: %s in %s", ErrNotFound, key, a.bucket)
	}
	return fmt.Errorf("archive: %s %s in %s: %w", op, key, a.bucket, err)
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

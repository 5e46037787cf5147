package archive_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/pkg/archive"
	"github.com/intakehq/intake/pkg/natstest"
)

// randomStream is a reproducible stream of size pseudo-random bytes.
func randomStream(seed uint64, size int64) io.Reader {
	var s [32]byte
	s[0] = byte(seed)
	return io.LimitReader(rand.NewChaCha8(s), size)
}

func newArchive(t *testing.T) *archive.JetStreamArchive {
	t.Helper()
	_, js := natstest.Start(t).Connect(t)
	a, err := archive.NewJetStream(t.Context(), js, "TEST_ARCHIVE", 1)
	require.NoError(t, err)
	return a
}

func TestPutOpenLargeFile(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	a := newArchive(t)

	const size = 50 << 20
	want := sha256.New()
	_, err := io.Copy(want, randomStream(7, size))
	require.NoError(t, err)
	wantSum := hex.EncodeToString(want.Sum(nil))

	info, err := a.Put(ctx, "run-1", randomStream(7, size))
	require.NoError(t, err)
	require.Equal(t, archive.Info{Key: "run-1", Size: size, SHA256: wantSum}, info)

	stat, err := a.Stat(ctx, "run-1")
	require.NoError(t, err)
	require.Equal(t, info, stat)

	// Read back and compare byte for byte with the same stream.
	rc, err := a.Open(ctx, "run-1")
	require.NoError(t, err)
	defer rc.Close()
	expect := randomStream(7, size)
	got, exp := make([]byte, 1<<20), make([]byte, 1<<20)
	var total int64
	for {
		n, err := io.ReadFull(rc, got)
		if n > 0 {
			_, eerr := io.ReadFull(expect, exp[:n])
			require.NoError(t, eerr)
			require.True(t, bytes.Equal(exp[:n], got[:n]), "bytes differ in the MiB at offset %d", total)
			total += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		require.NoError(t, err)
	}
	require.Equal(t, int64(size), total)
	n, _ := expect.Read(exp)
	require.Zero(t, n, "the archived file is not shorter than the original")
}

func TestPutReplacesAndEmptyFile(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	a := newArchive(t)

	_, err := a.Put(ctx, "k", strings.NewReader("first version"))
	require.NoError(t, err)
	info, err := a.Put(ctx, "k", strings.NewReader("second"))
	require.NoError(t, err)
	require.Equal(t, int64(6), info.Size)
	rc, err := a.Open(ctx, "k")
	require.NoError(t, err)
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	require.Equal(t, "second", string(b))

	info, err = a.Put(ctx, "empty", strings.NewReader(""))
	require.NoError(t, err)
	empty := sha256.Sum256(nil)
	require.Equal(t, archive.Info{Key: "empty", Size: 0, SHA256: hex.EncodeToString(empty[:])}, info)
	stat, err := a.Stat(ctx, "empty")
	require.NoError(t, err)
	require.Equal(t, info, stat)
	rc, err = a.Open(ctx, "empty")
	require.NoError(t, err)
	b, err = io.ReadAll(rc)
	require.NoError(t, err)
	require.Empty(t, b)
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	a := newArchive(t)

	_, err := a.Open(ctx, "missing")
	require.ErrorIs(t, err, archive.ErrNotFound)
	require.EqualError(t, err, "archive: file not found: missing in TEST_ARCHIVE")
	_, err = a.Stat(ctx, "missing")
	require.ErrorIs(t, err, archive.ErrNotFound)
	require.ErrorIs(t, a.Delete(ctx, "missing"), archive.ErrNotFound)

	_, err = a.Put(ctx, "gone", strings.NewReader("x"))
	require.NoError(t, err)
	require.NoError(t, a.Delete(ctx, "gone"))
	_, err = a.Open(ctx, "gone")
	require.ErrorIs(t, err, archive.ErrNotFound)
	require.ErrorIs(t, a.Delete(ctx, "gone"), archive.ErrNotFound)
}

type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, io.ErrUnexpectedEOF
	}
	n := min(len(p), f.n)
	f.n -= n
	return n, nil
}

func TestPutFailingReaderStoresNothing(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	a := newArchive(t)
	_, err := a.Put(ctx, "broken", &failingReader{n: 300 << 10})
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	_, err = a.Stat(ctx, "broken")
	require.ErrorIs(t, err, archive.ErrNotFound)
}

func TestBucketIsSharedBetweenProcesses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := natstest.Start(t)
	_, js1 := srv.Connect(t)
	_, js2 := srv.Connect(t)
	a1, err := archive.NewJetStream(ctx, js1, "SHARED", 1)
	require.NoError(t, err)
	a2, err := archive.NewJetStream(ctx, js2, "SHARED", 1)
	require.NoError(t, err)
	_, err = a1.Put(ctx, "k", strings.NewReader("hello"))
	require.NoError(t, err)
	info, err := a2.Stat(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, int64(5), info.Size)
}

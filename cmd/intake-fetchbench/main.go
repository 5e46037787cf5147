// Command intake-fetchbench measures the fetch path on large files: that a
// file of any size streams from its connection into the run archive with
// flat memory (issue 5: "a 2 GB file with flat memory").
//
// It starts, on loopback, one real server per kind of connection:
//
//   - SFTP: Debian's OpenSSH sshd (pkg/sftptest; needs root), the files
//     written into its chroot once, before the clock starts;
//   - S3: gofakes3 over HTTPS (pkg/s3test), in this process. It keeps
//     objects in memory, so S3 files are at most -s3-max bytes (1 GB);
//   - HTTPS: a Go TLS server that generates each file on the fly, with
//     Content-Length: nothing is on disk;
//
// and a NATS server with JetStream (embedded, file storage in -dir). Every
// file is the same deterministic CSV file of accounts for its size (seed
// -seed), so every fetch is checked against one SHA-256.
//
// Each fetch runs in a fresh child process (this binary with -child), so
// that the peak resident memory it reports is the fetch's alone: the child
// opens the file of a stored connection with source.OpenFile and streams
// it with archive.Put (SHA-256 on the way) into a JetStream object store,
// as the fetcher does (without the chunker's record check the fetcher runs
// beside the upload), then reports bytes, seconds, its VmRSS
// before opening the file, its VmHWM (the peak of VmRSS over its life) and
// the peak of the Go heap in use sampled every 10 ms. The servers are in
// other processes: their memory is not counted.
//
// It prints a table, one line per fetch
//
//	fetch sftp 2.00 GB: 95 MB/s, peak RSS 41 MiB
//
// and a verdict on the peak RSS of every fetch against a bound that does
// not depend on the size (-bound-mib, 128), with how much the peak changes
// from the smallest to the largest size:
//
//	fetch peak RSS: … (target < 128 MiB at any size): met|NOT met
//
// The target is reported, not enforced: it fails only when it cannot
// measure (a server does not start, a fetch fails, a file arrives with the
// wrong size or hash). With less than -min-free-gb of free disk (the SFTP
// files and the JetStream store), files over 1 GB are fetched at 1 GB, and
// it says so. Everything it writes is removed at the end.
//
// Usage (`make bench` runs it; see docs/benchmark.md):
//
//	intake-fetchbench -dir .bench/fetch -sizes 200MB,2GB
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/intakehq/intake/pkg/archive"
	"github.com/intakehq/intake/pkg/sftptest"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// The kinds of connection measured, in order.
const (
	kindSFTP  = "sftp"
	kindS3    = "s3"
	kindHTTPS = "https"
)

var allKinds = []string{kindSFTP, kindS3, kindHTTPS}

// archiveBucket is the object store bucket the fetches write to.
const archiveBucket = "INTAKE_FETCHBENCH"

// Config says what to measure.
type Config struct {
	// Dir holds the JetStream store, the servers' temporary files and a
	// log per fetch; the store and temporary files are removed at the end.
	Dir string
	// Sizes are the file sizes in bytes, fetched smallest first.
	Sizes []int64
	// Kinds are the connection kinds to measure (sftp, s3, https).
	Kinds []string
	// S3Max caps the size of S3 files: gofakes3 holds them in memory.
	S3Max int64
	// Bound is the peak RSS every fetch should stay under, in bytes.
	Bound int64
	// MinFree is the free disk space under which files over Fallback
	// bytes are fetched at Fallback bytes.
	MinFree  int64
	Fallback int64
	// Seed makes the files.
	Seed uint64
	// Timeout is the fetch timeout (source.Options.Timeout).
	Timeout time.Duration
}

// Validate checks the config.
func (c Config) Validate() error {
	switch {
	case c.Dir == "":
		return errors.New("the work directory is required (-dir)")
	case len(c.Sizes) == 0:
		return errors.New("at least one size is required (-sizes)")
	case len(c.Kinds) == 0:
		return errors.New("at least one kind is required (-kinds)")
	case c.S3Max < genMinSize:
		return fmt.Errorf("s3-max must be at least %d bytes, got %d", genMinSize, c.S3Max)
	case c.Bound <= 0:
		return fmt.Errorf("the RSS bound must be positive, got %d", c.Bound)
	case c.Fallback < genMinSize:
		return fmt.Errorf("the fallback size must be at least %d bytes, got %d", genMinSize, c.Fallback)
	case c.Timeout <= 0:
		return fmt.Errorf("the timeout must be positive, got %v", c.Timeout)
	}
	for _, s := range c.Sizes {
		if s < genMinSize {
			return fmt.Errorf("size %d is under the smallest file, %d bytes", s, genMinSize)
		}
	}
	for _, k := range c.Kinds {
		if !slices.Contains(allKinds, k) {
			return fmt.Errorf("unknown kind %q: use %s", k, strings.Join(allKinds, ", "))
		}
	}
	return nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	var err error
	if len(os.Args) == 2 && os.Args[1] == "-child" {
		err = childMain(ctx, os.Stdin, os.Stdout)
	} else {
		err = run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	}
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "intake-fetchbench:", err)
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("intake-fetchbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg                  Config
		sizes, kinds, s3Max  string
		boundMiB, minFreeGiB int64
	)
	fs.StringVar(&cfg.Dir, "dir", ".bench/fetch", "directory of the JetStream store and the fetches' logs")
	fs.StringVar(&sizes, "sizes", "200MB,2GB", "file sizes, comma-separated (KB, MB, GB are powers of 1000; KiB, MiB, GiB of 1024)")
	fs.StringVar(&kinds, "kinds", strings.Join(allKinds, ","), "connection kinds to measure")
	fs.StringVar(&s3Max, "s3-max", "1GB", "largest S3 file (gofakes3 holds objects in memory)")
	fs.Int64Var(&boundMiB, "bound-mib", 128, "peak RSS of a fetch to report against, MiB, whatever the size")
	fs.Int64Var(&minFreeGiB, "min-free-gb", 8, "free disk space (GiB) under which files over 1 GB are fetched at 1 GB")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the generated files")
	fs.DurationVar(&cfg.Timeout, "timeout", 30*time.Second, "fetch timeout: connecting, and any pause in a transfer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var err error
	if cfg.Sizes, err = parseSizes(sizes); err != nil {
		return fmt.Errorf("-sizes: %w", err)
	}
	if cfg.S3Max, err = parseSize(s3Max); err != nil {
		return fmt.Errorf("-s3-max: %w", err)
	}
	for k := range strings.SplitSeq(kinds, ",") {
		if k = strings.TrimSpace(k); k != "" {
			cfg.Kinds = append(cfg.Kinds, k)
		}
	}
	cfg.Bound, cfg.MinFree, cfg.Fallback = boundMiB<<20, minFreeGiB<<30, 1_000_000_000
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid config: %w", err)
	}
	b := &bench{cfg: cfg, stderr: stderr, hashes: map[int64]string{}}
	defer b.close()
	rows, err := b.run(ctx)
	if err != nil {
		return err
	}
	b.print(stdout, rows)
	return nil
}

// bench is one run of the benchmark: the servers and what they serve.
type bench struct {
	cfg    Config
	stderr io.Writer // progress
	notes  []string  // printed before the results

	h         *harness // owns sshd and the S3 server
	sftp      *sftptest.Server
	natsSrv   *server.Server
	natsStore string
	nc        *nats.Conn
	arch      *archive.JetStreamArchive
	conns     map[string]*intakev1.Connection
	https     *httpsServer
	s3Sizes   []int64          // the sizes of the S3 files (capped at S3Max)
	hashes    map[int64]string // SHA-256 of the file of each size
	kinds     []string         // the kinds measured (sftp may be skipped)
	exe       string           // this binary, run with -child
}

// row is one measured fetch.
type row struct {
	kind string
	size int64
	res  fetchResult
	cpu  float64 // CPU seconds of the child process
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.stderr, "fetchbench: "+format+"\n", args...)
}

func (b *bench) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	b.notes = append(b.notes, msg)
	b.logf("%s", msg)
}

func (b *bench) run(ctx context.Context) ([]row, error) {
	cfg := b.cfg
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", cfg.Dir, err)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this program to run the fetches: %w", err)
	}
	b.exe = exe
	b.h = newHarness(cfg.Dir, b.stderr)
	b.conns = map[string]*intakev1.Connection{}
	if err := b.startNATS(ctx); err != nil {
		return nil, err
	}

	var sftpRoot string
	if slices.Contains(cfg.Kinds, kindSFTP) {
		switch _, statErr := os.Stat(sftptest.SSHD); {
		case os.Geteuid() != 0:
			b.note("sftp: not measured: sshd must run as root to log a user in; run the benchmark as root")
		case statErr != nil:
			b.note("sftp: not measured: %s is missing (apt-get install openssh-server)", sftptest.SSHD)
		default:
			srv, err := startSFTP(b.h)
			if err != nil {
				return nil, err
			}
			b.logf("sftp: sshd on %s, chroot %s", srv.Addr(), srv.Root)
			b.conns[kindSFTP] = sftpConnection(srv)
			sftpRoot = srv.Root
			b.sftp = srv
		}
	}
	for _, k := range cfg.Kinds {
		if k != kindSFTP || b.conns[kindSFTP] != nil {
			b.kinds = append(b.kinds, k)
		}
	}
	if len(b.kinds) == 0 {
		return nil, errors.New("no kind of connection can be measured")
	}
	if err := b.checkDisk(sftpRoot); err != nil {
		return nil, err
	}

	// Files: the SFTP ones on disk (hashed while written), the S3 ones in
	// gofakes3's memory; HTTPS needs none.
	if b.sftp != nil {
		for _, size := range b.cfg.Sizes {
			t0 := time.Now()
			sum, err := writeSFTPFile(b.sftp, cfg.Seed, size)
			if err != nil {
				return nil, fmt.Errorf("sftp: %w", err)
			}
			b.hashes[size] = sum
			b.logf("sftp: wrote %s into the chroot in %.1f s", gb(size), time.Since(t0).Seconds())
		}
	}
	if slices.Contains(b.kinds, kindS3) {
		srv, err := startS3(b.h)
		if err != nil {
			return nil, err
		}
		b.conns[kindS3] = s3Connection(srv)
		if b.cfg.Sizes[len(b.cfg.Sizes)-1] > cfg.S3Max {
			b.note("s3: gofakes3 holds objects in memory (in the benchmark's process, not the fetch's): S3 files are at most %s", gb(cfg.S3Max))
		}
		for _, size := range b.cfg.Sizes {
			size = min(size, cfg.S3Max)
			if slices.Contains(b.s3Sizes, size) {
				continue
			}
			sum, err := putS3File(b.h, srv, cfg.Seed, size)
			if err != nil {
				return nil, fmt.Errorf("s3: %w", err)
			}
			b.s3Sizes = append(b.s3Sizes, size)
			b.hashes[size] = sum
			runtime.GC()
			debug.FreeOSMemory()
			b.logf("s3: stored %s in gofakes3 on %s", gb(size), srv.URL)
		}
	}
	if slices.Contains(b.kinds, kindHTTPS) {
		b.https = startHTTPS(cfg.Seed)
		b.conns[kindHTTPS] = b.https.connection()
		b.logf("https: generating the files on the fly on %s", b.https.srv.URL)
	}
	for _, size := range b.cfg.Sizes {
		if _, ok := b.hashes[size]; !ok {
			sum, err := generatedSHA256(cfg.Seed, size)
			if err != nil {
				return nil, err
			}
			b.hashes[size] = sum
		}
	}

	// Smallest first; S3 at its own (capped) sizes.
	all := slices.Clone(b.cfg.Sizes)
	for _, s := range b.s3Sizes {
		if !slices.Contains(all, s) {
			all = append(all, s)
		}
	}
	slices.Sort(all)
	var rows []row
	for _, size := range all {
		for _, kind := range b.kinds {
			sizes := b.cfg.Sizes
			if kind == kindS3 {
				sizes = b.s3Sizes
			}
			if !slices.Contains(sizes, size) {
				continue
			}
			r, err := b.fetch(ctx, kind, size)
			if err != nil {
				return nil, err
			}
			rows = append(rows, r)
		}
	}
	return rows, nil
}

// checkDisk applies the fallback size when the disk of the SFTP files (if
// any) or of the JetStream store has less than MinFree bytes free.
func (b *bench) checkDisk(sftpRoot string) error {
	paths := []string{b.natsStore}
	if sftpRoot != "" {
		paths = append(paths, sftpRoot)
	}
	free, where := int64(-1), ""
	for _, p := range paths {
		n, err := freeBytes(p)
		if err != nil {
			return fmt.Errorf("free disk space of %s: %w", p, err)
		}
		if free < 0 || n < free {
			free, where = n, p
		}
	}
	largest := b.cfg.Sizes[len(b.cfg.Sizes)-1]
	if free >= b.cfg.MinFree || largest <= b.cfg.Fallback {
		return nil
	}
	var sizes []int64
	for _, s := range b.cfg.Sizes {
		s = min(s, b.cfg.Fallback)
		if !slices.Contains(sizes, s) {
			sizes = append(sizes, s)
		}
	}
	b.note("only %.1f GiB free on the disk of %s (under %d GiB): files of %s are fetched at %s",
		float64(free)/(1<<30), where, b.cfg.MinFree>>30, gb(largest), gb(b.cfg.Fallback))
	b.cfg.Sizes = sizes
	return nil
}

// startNATS starts an embedded NATS server with JetStream (file storage in
// Dir/nats) and creates the archive bucket.
func (b *bench) startNATS(ctx context.Context) error {
	b.natsStore = filepath.Join(b.cfg.Dir, "nats")
	if err := os.RemoveAll(b.natsStore); err != nil {
		return fmt.Errorf("remove the old JetStream store %s: %w", b.natsStore, err)
	}
	if err := os.MkdirAll(b.natsStore, 0o755); err != nil {
		return fmt.Errorf("create the JetStream store %s: %w", b.natsStore, err)
	}
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: b.natsStore,
		NoLog: true, NoSigs: true,
	})
	if err != nil {
		return fmt.Errorf("NATS server: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(15 * time.Second) {
		srv.Shutdown()
		return errors.New("the NATS server did not accept connections within 15 s")
	}
	b.natsSrv = srv
	b.nc, err = nats.Connect(srv.ClientURL())
	if err != nil {
		return fmt.Errorf("connect to NATS at %s: %w", srv.ClientURL(), err)
	}
	js, err := jetstream.New(b.nc)
	if err != nil {
		return fmt.Errorf("JetStream at %s: %w", srv.ClientURL(), err)
	}
	b.arch, err = archive.NewJetStream(ctx, js, archiveBucket, 1)
	if err != nil {
		return err
	}
	b.logf("nats: JetStream on %s, store %s", srv.ClientURL(), b.natsStore)
	return nil
}

// fetch runs one fetch in a child process, checks what arrived in the
// archive and removes it.
func (b *bench) fetch(ctx context.Context, kind string, size int64) (row, error) {
	name := fmt.Sprintf("%s %s", kind, gb(size))
	connJSON, err := protojson.Marshal(b.conns[kind])
	if err != nil {
		return row{}, fmt.Errorf("fetch %s: encode the connection: %w", name, err)
	}
	key := fmt.Sprintf("%s-%d", kind, size)
	spec, err := json.Marshal(fetchSpec{
		Connection: connJSON, Path: filePath(size), NATSURL: b.natsSrv.ClientURL(),
		Bucket: archiveBucket, Key: key, Timeout: b.cfg.Timeout,
	})
	if err != nil {
		return row{}, fmt.Errorf("fetch %s: encode the spec: %w", name, err)
	}
	logPath := filepath.Join(b.cfg.Dir, "fetch-"+key+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return row{}, fmt.Errorf("fetch %s: create its log: %w", name, err)
	}
	defer logFile.Close()

	b.logf("fetch %s: %s in a child process (log %s)", name, filePath(size), logPath)
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, b.exe, "-child")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(spec), &out, logFile
	cmd.SysProcAttr = childAttr()
	if err := cmd.Run(); err != nil {
		msg, _ := os.ReadFile(logPath)
		return row{}, fmt.Errorf("fetch %s: the child process failed (%v): %s", name, err, strings.TrimSpace(string(msg)))
	}
	var res fetchResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return row{}, fmt.Errorf("fetch %s: read the child's result %q: %w", name, out.String(), err)
	}
	if res.Bytes != size || res.SHA256 != b.hashes[size] {
		return row{}, fmt.Errorf("fetch %s: archived %d bytes with SHA-256 %s; the file has %d bytes, SHA-256 %s",
			name, res.Bytes, res.SHA256, size, b.hashes[size])
	}
	info, err := b.arch.Stat(ctx, key)
	if err != nil {
		return row{}, fmt.Errorf("fetch %s: %w", name, err)
	}
	if info.Size != size || info.SHA256 != res.SHA256 {
		return row{}, fmt.Errorf("fetch %s: the object store holds %d bytes with SHA-256 %s, want %d bytes, %s",
			name, info.Size, info.SHA256, size, res.SHA256)
	}
	if err := b.arch.Delete(ctx, key); err != nil {
		return row{}, fmt.Errorf("fetch %s: %w", name, err)
	}
	if st, err := logFile.Stat(); err == nil && st.Size() == 0 {
		_ = os.Remove(logPath) // nothing logged
	}
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	b.logf("fetch %s: %.1f s, peak RSS %.1f MiB", name, res.Seconds, mib(res.PeakRSS))
	return row{kind: kind, size: size, res: res, cpu: cpu.Seconds()}, nil
}

// close stops the servers and removes the files and the JetStream store.
func (b *bench) close() {
	if b.https != nil {
		b.https.close()
	}
	if b.nc != nil {
		b.nc.Close()
	}
	if b.natsSrv != nil {
		b.natsSrv.Shutdown()
		b.natsSrv.WaitForShutdown()
	}
	if b.natsStore != "" {
		_ = os.RemoveAll(b.natsStore)
	}
	if b.h != nil {
		b.h.close() // sshd and its chroot with the files, gofakes3
	}
}

// print writes the results.
func (b *bench) print(w io.Writer, rows []row) {
	fmt.Fprintln(w, "fetchbench: each fetch in its own process: source.OpenFile on a stored connection, then archive.Put (SHA-256 on the way)")
	fmt.Fprintln(w, "fetchbench: into a JetStream object store (file storage; nats-server, gofakes3 and the HTTPS server in the benchmark's process, sshd its own)")
	for _, n := range b.notes {
		fmt.Fprintln(w, "fetchbench: "+n)
	}
	fmt.Fprintf(w, "%-6s %8s %8s %7s %13s %15s %14s %6s\n",
		"kind", "size", "seconds", "MB/s", "peak RSS MiB", "RSS before MiB", "peak heap MiB", "CPU s")
	for _, r := range rows {
		fmt.Fprintf(w, "%-6s %8s %8.2f %7.1f %13.1f %15.1f %14.1f %6.1f\n",
			r.kind, gb(r.size), r.res.Seconds, mbps(r), mib(r.res.PeakRSS), mib(r.res.RSSBefore), mib(r.res.PeakHeap), r.cpu)
	}
	for _, k := range b.kinds {
		for _, r := range rows {
			if r.kind == k {
				fmt.Fprintf(w, "fetch %s %s: %.0f MB/s, peak RSS %.0f MiB\n", r.kind, gb(r.size), mbps(r), mib(r.res.PeakRSS))
			}
		}
	}
	fmt.Fprintln(w, verdict(rows, b.cfg.Bound))
}

// verdict is the last line: the highest peak RSS against the bound, and
// how much each kind's peak changes from its smallest file to its largest.
func verdict(rows []row, bound int64) string {
	var peak int64
	growth := map[string][2]row{} // kind → smallest, largest
	for _, r := range rows {
		peak = max(peak, r.res.PeakRSS)
		g, ok := growth[r.kind]
		if !ok || r.size < g[0].size {
			g[0] = r
		}
		if !ok || r.size > g[1].size {
			g[1] = r
		}
		growth[r.kind] = g
	}
	var parts []string
	for _, k := range allKinds {
		g, ok := growth[k]
		if !ok || g[0].size == g[1].size {
			continue
		}
		d := int64(math.Round(mib(g[1].res.PeakRSS) - mib(g[0].res.PeakRSS)))
		parts = append(parts, fmt.Sprintf("%s %+d MiB from %s to %s", k, d, gb(g[0].size), gb(g[1].size)))
	}
	change := ""
	if len(parts) > 0 {
		change = "; " + strings.Join(parts, ", ")
	}
	state := "met"
	if peak >= bound {
		state = "NOT met"
	}
	return fmt.Sprintf("fetch peak RSS: %.0f MiB at most over %d fetches%s (target < %d MiB at any size): %s",
		mib(peak), len(rows), change, bound>>20, state)
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// gb formats a size as file sizes are told: in GB (10^9 bytes) from 1 GB,
// else in MB (10^6) or KB (10^3).
func gb(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.0f MB", float64(n)/1e6)
	}
	return fmt.Sprintf("%.0f KB", float64(n)/1e3)
}

func mbps(r row) float64 {
	if r.res.Seconds <= 0 {
		return 0
	}
	return float64(r.res.Bytes) / 1e6 / r.res.Seconds
}

// parseSizes reads a comma-separated list of sizes, sorted and without
// duplicates.
func parseSizes(s string) ([]int64, error) {
	var out []int64
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		n, err := parseSize(part)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

// sizeUnits are the suffixes parseSize reads, longest first.
var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1},
}

// parseSize reads a size such as "200MB" (10^6), "1.5GB" (10^9), "64MiB"
// (2^20) or "1000" (bytes).
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	num := s
	for _, u := range sizeUnits {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			num, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("size %q: want a positive number with an optional unit (KB, MB, GB, KiB, MiB, GiB)", s)
	}
	return int64(v * float64(mult)), nil
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/metrics"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/intakehq/intake/pkg/archive"
	"github.com/intakehq/intake/pkg/source"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// fetchSpec is the fetch a child process makes, read as JSON from its
// standard input (never from its arguments: the connection holds secrets).
type fetchSpec struct {
	// Connection is a stored connection (with a name and its secrets), as
	// protojson.
	Connection json.RawMessage `json:"connection"`
	// Path is the job's file path on the connection.
	Path string `json:"path"`
	// NATSURL is the JetStream server of the archive.
	NATSURL string `json:"nats_url"`
	// Bucket is the archive's object store bucket (it exists); Key the
	// file's key in it.
	Bucket string `json:"bucket"`
	Key    string `json:"key"`
	// Timeout is source.Options.Timeout.
	Timeout time.Duration `json:"timeout"`
}

// fetchResult is what a child measured, written as JSON to its standard
// output. Memory is in bytes.
type fetchResult struct {
	Bytes   int64   `json:"bytes"`
	SHA256  string  `json:"sha256"`
	Source  string  `json:"source"`
	Seconds float64 `json:"seconds"`
	// RSSBefore is VmRSS just before the file is opened (connected to
	// NATS, archive bucket bound).
	RSSBefore int64 `json:"rss_before"`
	// PeakRSS is VmHWM at the end: the process's most resident memory
	// over its whole life.
	PeakRSS int64 `json:"peak_rss"`
	// PeakHeap is the most Go heap in use (live and not yet swept
	// objects) sampled every 10 ms during the fetch.
	PeakHeap int64 `json:"peak_heap"`
}

// childMain is the child process: it fetches the file of the spec on
// stdin and writes the result on stdout.
func childMain(ctx context.Context, stdin io.Reader, stdout io.Writer) error {
	var spec fetchSpec
	if err := json.NewDecoder(stdin).Decode(&spec); err != nil {
		return fmt.Errorf("read the fetch spec from stdin: %w", err)
	}
	res, err := fetch(ctx, spec)
	if err != nil {
		return err
	}
	if err := json.NewEncoder(stdout).Encode(res); err != nil {
		return fmt.Errorf("write the result: %w", err)
	}
	return nil
}

// fetch does what the fetcher does with a run's file: it opens the file of
// a stored connection with source.OpenFile and streams it into the archive
// with archive.Put, which hashes it (SHA-256) on the way into a JetStream
// object store. (The fetcher also tees the bytes through the chunker's
// record check; that is not measured here.)
func fetch(ctx context.Context, spec fetchSpec) (fetchResult, error) {
	conn := &intakev1.Connection{}
	if err := protojson.Unmarshal(spec.Connection, conn); err != nil {
		return fetchResult{}, fmt.Errorf("decode the connection of the fetch spec: %w", err)
	}
	nc, err := nats.Connect(spec.NATSURL, nats.Name("intake-fetchbench"))
	if err != nil {
		return fetchResult{}, fmt.Errorf("connect to NATS at %s: %w", spec.NATSURL, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fetchResult{}, fmt.Errorf("JetStream at %s: %w", spec.NATSURL, err)
	}
	arch, err := archive.NewJetStream(ctx, js, spec.Bucket, 1)
	if err != nil {
		return fetchResult{}, err
	}

	runtime.GC()
	var res fetchResult
	if res.RSSBefore, _, err = readProcStatus(); err != nil {
		return fetchResult{}, err
	}
	heap := startHeapSampler(10 * time.Millisecond)

	start := time.Now()
	req := source.Request{
		Conn:     conn,
		File:     &intakev1.FileSelector{Selector: &intakev1.FileSelector_Path{Path: spec.Path}},
		At:       start,
		Location: time.UTC,
	}
	// As the fetcher: one HTTP client for every request, the fetch timeout
	// for connecting and for any pause in the transfer.
	opts := source.Options{HTTPClient: source.NewHTTPClient(spec.Timeout), Timeout: spec.Timeout}
	rc, fm, err := source.OpenFile(ctx, req, opts)
	if err != nil {
		heap.stop()
		return fetchResult{}, fmt.Errorf("open %s: %w", spec.Path, err)
	}
	info, err := arch.Put(ctx, spec.Key, rc)
	_ = rc.Close()
	elapsed := time.Since(start)
	res.PeakHeap = heap.stop()
	if err != nil {
		return fetchResult{}, fmt.Errorf("stream %s into the archive: %w", fm.Source, err)
	}
	_, res.PeakRSS, err = readProcStatus()
	if err != nil {
		return fetchResult{}, err
	}
	res.Bytes, res.SHA256, res.Source, res.Seconds = info.Size, info.SHA256, fm.Source, elapsed.Seconds()
	return res, nil
}

// heapSampler records the most Go heap in use, sampled periodically.
type heapSampler struct {
	done chan struct{}
	wg   sync.WaitGroup
	max  int64
}

// heapMetric is the bytes of heap objects, live or not yet swept.
const heapMetric = "/memory/classes/heap/objects:bytes"

func startHeapSampler(every time.Duration) *heapSampler {
	h := &heapSampler{done: make(chan struct{})}
	sample := []metrics.Sample{{Name: heapMetric}}
	read := func() {
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			h.max = max(h.max, int64(sample[0].Value.Uint64()))
		}
	}
	read()
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-h.done:
				read()
				return
			case <-t.C:
				read()
			}
		}
	}()
	return h
}

// stop ends the sampling and returns the peak.
func (h *heapSampler) stop() int64 {
	close(h.done)
	h.wg.Wait()
	return h.max
}

package fetcher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/intakehq/intake/pkg/archive"
	"github.com/intakehq/intake/pkg/chunker"
	"github.com/intakehq/intake/pkg/dialect"
	"github.com/intakehq/intake/pkg/pipeline"
	"github.com/intakehq/intake/pkg/source"
	"github.com/intakehq/intake/pkg/tracing"
	pipelinev1 "github.com/intakehq/intake/proto/gen/intake/pipeline/v1"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// maxMessageBytes is the chunk stream's message size limit
// (pipeline.EnsureStreams).
const maxMessageBytes = 16 << 20

// messageReserve is room kept in a chunk message beyond the job, the header
// and the data: the run name, numbers and protobuf framing.
const messageReserve = 4096

// fileError is a failure of the run's file or job (unreachable, missing,
// malformed): the run fails with its message. Any other error is a failure
// of the fetcher or its infrastructure and the run request is retried.
type fileError struct {
	msg string
	// broken: the download broke off with a transient error (a reset
	// connection, a stalled server); fetch tries it again.
	broken bool
}

func (e *fileError) Error() string { return e.msg }

// handle processes one RunRequest.
func (s *Service) handle(ctx context.Context, msg jetstream.Msg) error {
	var req pipelinev1.RunRequest
	if err := proto.Unmarshal(msg.Data(), &req); err != nil {
		return pipeline.Term(fmt.Errorf("fetcher: message on %s is not a RunRequest: %w", msg.Subject(), err))
	}
	id, err := runID(req.GetRun())
	if err != nil {
		return pipeline.Term(fmt.Errorf("fetcher: %w", err))
	}
	log := s.log.With("run", req.GetRun(), "job", req.GetJob().GetName())
	tracing.SetAttributes(ctx, tracing.Run(req.GetRun(), req.GetJob().GetName(), -1)...)
	log = tracing.Logger(ctx, log) // trace_id, span_id
	if md, err := msg.Metadata(); err == nil && md.NumDelivered > 1 {
		log = log.With("delivery", md.NumDelivered)
		log.Info("run request redelivered")
	}
	r := &run{s: s, log: log, req: &req, id: id}
	return r.process(ctx)
}

// run is the work on one run request.
type run struct {
	s   *Service
	log *slog.Logger
	req *pipelinev1.RunRequest
	id  string
	// headerBudget is how many bytes the header may take in a chunk message.
	headerBudget int
	// apiRun is the run as the control API last answered a report (nil
	// from an API that does not send it).
	apiRun *intakev1.Run
}

// fetched is the result of the fetch step.
type fetched struct {
	info archive.Info
	// file is where the file came from and what its server said of it
	// (file.source is the run's source).
	file fileMeta
	// header is the decoded header row.
	header []string
}

func (r *run) process(ctx context.Context) error {
	started := &intakev1.ReportRunEventRequest{Kind: intakev1.RunEventKind_RUN_EVENT_KIND_STARTED}
	dir, err := r.report(ctx, started)
	if err != nil {
		return err
	}
	if dir == intakev1.Directive_DIRECTIVE_ABANDON {
		r.log.Info("run abandoned by the control API before the fetch")
		return nil
	}
	if r.req.GetJob() == nil {
		return r.fail(ctx, "the run request carries no job")
	}
	opts, err := r.chunkOptions()
	if err != nil {
		return r.fail(ctx, err.Error())
	}

	f, err := r.fetch(ctx, opts)
	var ferr *fileError
	switch {
	case errors.As(err, &ferr):
		return r.fail(ctx, ferr.msg)
	case errors.Is(err, errAbandoned):
		return nil
	case err != nil:
		return err
	case f.file.notModified:
		return r.notModified(ctx, f.file)
	}
	size := f.file.size
	if size <= 0 {
		size = f.info.Size
	}
	dir, err = r.report(ctx, &intakev1.ReportRunEventRequest{
		Kind:             intakev1.RunEventKind_RUN_EVENT_KIND_FETCHED,
		Sha256:           f.info.SHA256,
		Source:           f.file.source,
		Counters:         &intakev1.RunCounters{Bytes: f.info.Size},
		Header:           f.header,
		Etag:             f.file.etag,
		LastModified:     f.file.lastModified,
		SourceSize:       size,
		SourceModifyTime: timestamp(f.file.modTime),
	})
	if err != nil {
		return err
	}
	switch dir {
	case intakev1.Directive_DIRECTIVE_SKIP:
		r.log.Info("run skipped: the file is unchanged since the last successful run", "sha256", f.info.SHA256)
		r.s.metrics.runs.WithLabelValues(outcomeSkipped).Inc()
		return nil
	case intakev1.Directive_DIRECTIVE_ABANDON:
		r.log.Info("run abandoned by the control API after the fetch")
		return nil
	}

	chunks, err := r.publish(ctx, opts, f.file.source)
	if errors.As(err, &ferr) {
		return r.fail(ctx, ferr.msg)
	}
	if err != nil {
		return err
	}
	if _, err := r.report(ctx, &intakev1.ReportRunEventRequest{
		Kind:     intakev1.RunEventKind_RUN_EVENT_KIND_FINISHED,
		Counters: &intakev1.RunCounters{Bytes: f.info.Size, Chunks: chunks},
	}); err != nil {
		return err
	}
	r.s.metrics.runs.WithLabelValues(outcomeFetched).Inc()
	r.log.Info("run chunked and sealed", "chunks", chunks, "bytes", f.info.Size)
	return nil
}

// notModified reports a file the server did not send again (HTTP 304 Not
// Modified to the conditional request): the control API ends the run
// skipped, its file being the last successful run's.
func (r *run) notModified(ctx context.Context, file fileMeta) error {
	dir, err := r.report(ctx, &intakev1.ReportRunEventRequest{
		Kind:             intakev1.RunEventKind_RUN_EVENT_KIND_FETCHED,
		NotModified:      true,
		Source:           file.source,
		Etag:             file.etag,
		LastModified:     file.lastModified,
		SourceModifyTime: timestamp(file.modTime),
	})
	if err != nil {
		return err
	}
	switch dir {
	case intakev1.Directive_DIRECTIVE_SKIP:
		r.log.Info("run skipped: the server answered 304 Not Modified", "source", file.source)
		r.s.metrics.runs.WithLabelValues(outcomeSkipped).Inc()
		return nil
	case intakev1.Directive_DIRECTIVE_ABANDON:
		r.log.Info("run ended by the control API after 304 Not Modified", "source", file.source)
		return nil
	}
	// The API wants the file, which the server did not send.
	return r.fail(ctx, file.source+": the server answered 304 Not Modified, but the control API did not skip the run")
}

// timestamp is t as a protobuf timestamp, nil when t is zero.
func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// fail reports the run as failed with msg and acks the request.
func (r *run) fail(ctx context.Context, msg string) error {
	r.log.Warn("run failed", "reason", msg)
	if _, err := r.report(ctx, &intakev1.ReportRunEventRequest{
		Kind:    intakev1.RunEventKind_RUN_EVENT_KIND_FAILED,
		Message: msg,
	}); err != nil {
		return err
	}
	r.s.metrics.runs.WithLabelValues(outcomeFailed).Inc()
	return nil
}

// chunkOptions are the chunker options for the job's dialect (but the
// delimiter, quote and escape, which Open resolves from the file), with a
// chunk size that lets a chunk message (job snapshot, model, dialect and
// header included) fit the NATS server's max_payload.
func (r *run) chunkOptions() (chunker.Options, error) {
	d := r.req.GetJob().GetMapping().GetDialect()
	if err := dialect.Validate(d); err != nil {
		return chunker.Options{}, fmt.Errorf("the job's CSV dialect: %w", err)
	}
	opts := chunker.Options{HeaderRow: int(d.GetHeaderRow()), SkipRows: int(d.GetSkipRows()), MaxChunkRows: r.s.cfg.MaxChunkRows}
	payload := maxMessageBytes
	if nc := r.s.nc.Load(); nc != nil && nc.MaxPayload() > 0 && int(nc.MaxPayload()) < payload {
		payload = int(nc.MaxPayload())
	}
	budget := payload - messageReserve - proto.Size(&pipelinev1.Chunk{
		Run: r.req.GetRun(), Job: r.req.GetJob(), Model: r.req.GetModel(), Dialect: d, DryRun: r.req.GetDryRun(),
	})
	// Half for the data, half for the header (which a record limit of the
	// data's size bounds in the file, not in its protobuf form).
	opts.MaxChunkBytes = min(r.s.cfg.MaxChunkBytes, budget/2)
	r.headerBudget = budget - opts.MaxChunkBytes
	if opts.MaxChunkBytes < 1024 {
		return opts, fmt.Errorf("the job is too large (%d bytes) to travel with its chunks in a NATS message of at most %d bytes", budget, payload)
	}
	return opts, nil
}

// openChunker decodes rd (gzip, encoding; see dialect.Open), starts cutting
// it with the resolved dialect and checks the header. It returns the
// resolved dialect, which the chunks carry.
func (r *run) openChunker(rd io.Reader, opts chunker.Options, src string) (*chunker.Chunker, *intakev1.CsvDialect, error) {
	text, resolved, det, err := dialect.Open(rd, r.req.GetJob().GetMapping().GetDialect())
	if err != nil {
		return nil, nil, r.chunkErr(err, src)
	}
	d, err := dialect.CSV(resolved)
	if err != nil {
		return nil, nil, &fileError{msg: fmt.Sprintf("%s: %v", src, err)}
	}
	o := chunker.OptionsFor(d)
	o.HeaderRow, o.SkipRows, o.MaxChunkBytes, o.MaxChunkRows = opts.HeaderRow, opts.SkipRows, opts.MaxChunkBytes, opts.MaxChunkRows
	c, err := chunker.New(text, o)
	if err != nil {
		return nil, nil, r.chunkErr(err, src)
	}
	for i, name := range c.Header() {
		if !utf8.ValidString(name) {
			return nil, nil, &fileError{msg: fmt.Sprintf("%s: column %d of the header row is not valid UTF-8 (%s): set the job's encoding (one of %s)",
				src, i+1, strconv.QuoteToASCII(name), joinEncodings())}
		}
	}
	if n := proto.Size(&pipelinev1.Chunk{Header: c.Header()}); n > r.headerBudget {
		return nil, nil, &fileError{msg: fmt.Sprintf("%s: the header row is too large (%d bytes, at most %d)", src, n, r.headerBudget)}
	}
	r.log.Debug("file dialect resolved", "delimiter", resolved.GetDelimiter(), "encoding", det.GetEncoding(),
		"encoding_confidence", det.GetEncodingConfidence(), "delimiter_confidence", det.GetDelimiterConfidence(), "gzip", det.GetGzip())
	return c, resolved, nil
}

func joinEncodings() string {
	out := ""
	for i, e := range dialect.Encodings {
		if i > 0 {
			out += ", "
		}
		out += strconv.Quote(e)
	}
	return out
}

// chunkErr tells a problem of the file from a failure to read it.
func (r *run) chunkErr(err error, src string) error {
	var de *dialect.DecodeError
	if errors.As(err, &de) {
		return &fileError{msg: fmt.Sprintf("%s: %v", src, de)}
	}
	for _, fe := range []error{chunker.ErrEmptyFile, chunker.ErrNoRows, chunker.ErrNoHeader, chunker.ErrUnterminatedQuote, chunker.ErrRecordTooLarge} {
		if errors.Is(err, fe) {
			return &fileError{msg: fmt.Sprintf("%s: %v", src, err)}
		}
	}
	return fmt.Errorf("read %s: %w", src, err)
}

// validate reads the whole file through the chunker, so a malformed file
// fails before the API is told it was fetched and before any chunk leaves.
// It returns the header.
func (r *run) validate(rd io.Reader, opts chunker.Options, src string) ([]string, error) {
	c, _, err := r.openChunker(rd, opts, src)
	if err != nil {
		return nil, err
	}
	for {
		_, err := c.Next()
		if errors.Is(err, io.EOF) {
			return c.Header(), nil
		}
		if err != nil {
			return nil, r.chunkErr(err, src)
		}
	}
}

// fetch streams the job's file into the archive under the run id, checking
// it is a well-formed CSV file on the way. When an earlier delivery of the
// run already archived the file and reported it fetched, that copy is used,
// so every chunk of the run comes from the same bytes even if the source has
// changed since. A copy an earlier delivery archived without reporting it
// (it stopped in between: no chunk left) is replaced by a new download, so
// that the run records the source, validators and size of the file it uses.
//
// A file the server did not send again (HTTP 304) comes back with
// file.notModified set and nothing archived.
func (r *run) fetch(ctx context.Context, opts chunker.Options) (fetched, error) {
	src := r.describe() // issue 4 (files): a replay says so
	info, err := r.s.archive.Stat(ctx, r.id)
	switch {
	case err == nil && (r.apiRun == nil || r.apiRun.GetSha256() != ""):
		r.log.Info("using the file archived by an earlier attempt", "bytes", info.Size, "sha256", info.SHA256)
		file := fileMeta{source: src}
		if r.apiRun.GetSource() != "" {
			file.source = r.apiRun.GetSource()
		}
		file.size = r.apiRun.GetSourceSize()
		if t := r.apiRun.GetSourceModifyTime(); t != nil && t.IsValid() && t.GetSeconds() > 0 {
			file.modTime = t.AsTime()
		}
		rc, err := r.s.archive.Open(ctx, r.id)
		if err != nil {
			return fetched{}, fmt.Errorf("fetcher: open archived file: %w", err)
		}
		defer rc.Close()
		header, err := r.validate(rc, opts, file.source)
		if err != nil {
			return fetched{}, err
		}
		return fetched{info: info, file: file, header: header}, nil
	case err == nil:
		r.log.Info("an earlier attempt archived the file but never reported it fetched: fetching it again",
			"bytes", info.Size, "sha256", info.SHA256)
		if err := r.s.archive.Delete(ctx, r.id); err != nil && !errors.Is(err, archive.ErrNotFound) {
			return fetched{}, fmt.Errorf("fetcher: delete the file archived by an earlier attempt: %w", err)
		}
	case !errors.Is(err, archive.ErrNotFound):
		return fetched{}, fmt.Errorf("fetcher: look up archived file: %w", err)
	}

	for attempt := 1; ; attempt++ {
		f, err := r.download(ctx, opts, src)
		var ferr *fileError
		if !errors.As(err, &ferr) || !ferr.broken || attempt >= downloadAttempts || ctx.Err() != nil {
			return f, err
		}
		wait := downloadBackoff << (attempt - 1)
		r.log.Warn("the download broke off; fetching the file again", "attempt", attempt, "err", ferr.msg, "wait", wait)
		select {
		case <-ctx.Done():
			return fetched{}, fmt.Errorf("fetcher: %w", ctx.Err())
		case <-time.After(wait):
		}
	}
}

// A download that breaks off with a transient error is tried again, up to
// downloadAttempts in all, waiting downloadBackoff, then twice as long each
// time. (Opening the file is retried by source.OpenFile.)
const (
	downloadAttempts = 3
	downloadBackoff  = time.Second
)

// download opens the run's file and streams it into the archive (see
// fetch). A download that broke off with a transient error is a
// *fileError with broken set.
func (r *run) download(ctx context.Context, opts chunker.Options, src string) (fetched, error) {
	start := time.Now()
	body, file, err := r.open(ctx, src) // the connection, or a replayed run's file
	if err != nil {
		return fetched{}, err
	}
	if file.notModified {
		return fetched{file: file}, nil
	}
	defer body.Close()
	src = file.source

	// One pass: the archive reads the source, and a copy of every byte goes
	// through the chunker, which stops the upload at the first malformed
	// record. Nothing holds the whole file: the source's reader (an HTTP
	// body, an S3 object, an SFTP file) streams into the archive.
	tracked := &trackingReader{r: body}
	pr, pw := io.Pipe()
	verr := make(chan error, 1)
	var header []string
	go func() {
		h, err := r.validate(pr, opts, src)
		header = h
		pr.CloseWithError(err) // a malformed file stops the upload
		verr <- err
	}()
	info, perr := r.s.archive.Put(ctx, r.id, io.TeeReader(tracked, pw))
	pw.CloseWithError(perr)
	vErr := <-verr

	var ferr *fileError
	switch {
	case tracked.err != nil:
		// The download broke: whatever the check of the file says (a
		// gzip stream cut short, say) follows from that.
		if ctx.Err() != nil {
			return fetched{}, fmt.Errorf("fetcher: %w", tracked.err)
		}
		return fetched{}, &fileError{msg: tracked.err.Error(), broken: source.IsTransient(tracked.err)}
	case errors.As(vErr, &ferr):
		return fetched{}, vErr
	case perr != nil:
		return fetched{}, fmt.Errorf("fetcher: %w", perr)
	case vErr != nil:
		return fetched{}, fmt.Errorf("fetcher: check file while archiving: %w", vErr)
	}
	r.s.metrics.bytes.Add(float64(info.Size))
	r.s.metrics.fetchDuration.Observe(sinceSeconds(start))
	r.log.Info("file fetched and archived", "source", src, "bytes", info.Size, "sha256", info.SHA256,
		"duration", time.Since(start).Round(time.Millisecond))
	return fetched{info: info, file: file, header: header}, nil
}

// publish cuts the archived file into chunks, publishes them and the seal,
// and returns the number of chunks.
func (r *run) publish(ctx context.Context, opts chunker.Options, src string) (int64, error) {
	rc, err := r.s.archive.Open(ctx, r.id)
	if err != nil {
		return 0, fmt.Errorf("fetcher: open archived file: %w", err)
	}
	defer rc.Close()
	c, resolved, err := r.openChunker(rc, opts, src)
	if err != nil {
		return 0, err
	}
	job := r.req.GetJob()
	header := c.Header()
	var n int64
	for {
		ch, err := c.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return n, r.chunkErr(err, src)
		}
		msg := &pipelinev1.Chunk{
			Run: r.req.GetRun(), Job: job, Index: ch.Index, FirstRow: ch.FirstRow,
			Header: header, Data: ch.Data, Rows: ch.Rows,
			Model: r.req.GetModel(), DryRun: r.req.GetDryRun(), Dialect: resolved, Tenant: r.req.GetTenant(),
		}
		if err := pipeline.Publish(ctx, r.s.js, pipeline.SubjectChunk, pipeline.ChunkMsgID(r.req.GetRun(), ch.Index), msg); err != nil {
			return n, fmt.Errorf("fetcher: %w", err)
		}
		n++
		r.s.metrics.chunks.Inc()
	}
	attrs := make([]string, 0, len(job.GetMapping().GetEntries()))
	for _, e := range job.GetMapping().GetEntries() {
		attrs = append(attrs, e.GetAttribute())
	}
	seal := &pipelinev1.Seal{
		Run: r.req.GetRun(), Chunks: n, Object: job.GetObject(),
		AllowNewRecords: job.GetAllowNewRecords(), Attributes: attrs, DryRun: r.req.GetDryRun(), Tenant: r.req.GetTenant(),
	}
	if err := pipeline.Publish(ctx, r.s.js, pipeline.SubjectSeal, pipeline.SealMsgID(r.req.GetRun()), seal); err != nil {
		return n, fmt.Errorf("fetcher: %w", err)
	}
	return n, nil
}

// trackingReader remembers the first read error of the source, to tell a
// broken download from a failure to archive.
type trackingReader struct {
	r   io.Reader
	err error
}

func (t *trackingReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && t.err == nil {
		t.err = err
	}
	return n, err
}

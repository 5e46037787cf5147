package mapper

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/intakehq/intake/pkg/csv"
	"github.com/intakehq/intake/pkg/dialect"
	"github.com/intakehq/intake/pkg/mapping"
	"github.com/intakehq/intake/pkg/objects"
	"github.com/intakehq/intake/pkg/pipeline"
	"github.com/intakehq/intake/pkg/tracing"
	pipelinev1 "github.com/intakehq/intake/proto/gen/intake/pipeline/v1"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// maxRowErrorBytes bounds the row errors sent in one report, so a chunk of
// bad rows stays under gRPC's default 4 MiB message limit. The counters stay
// exact; only the list is cut.
const maxRowErrorBytes = 3 << 20

// maxRecordBytes bounds the raw record kept with a row error
// (RowError.record).
const maxRecordBytes = 64 << 10

// handle maps one chunk (docs/pipeline.md, step 3).
func (s *Service) handle(ctx context.Context, msg jetstream.Msg) error {
	start := time.Now()
	chunk := &pipelinev1.Chunk{}
	if err := proto.Unmarshal(msg.Data(), chunk); err != nil {
		return pipeline.Term(fmt.Errorf("mapper: decode chunk on %s: %w", msg.Subject(), err))
	}
	if chunk.GetRun() == "" {
		return pipeline.Term(errors.New("mapper: chunk without a run"))
	}
	log := s.log.With("run", chunk.GetRun(), "job", chunk.GetJob().GetName(), "chunk", chunk.GetIndex())
	tracing.SetAttributes(ctx, tracing.Run(chunk.GetRun(), chunk.GetJob().GetName(), chunk.GetIndex())...)
	log = tracing.Logger(ctx, log) // trace_id, span_id

	plan, d, err := s.plan(chunk)
	if err != nil {
		log.Warn("mapping does not fit the file; failing the run", "err", err)
		if _, rerr := s.report(ctx, &intakev1.ReportRunEventRequest{
			Run: chunk.GetRun(), Stage: intakev1.Stage_STAGE_MAP, Kind: intakev1.RunEventKind_RUN_EVENT_KIND_FAILED,
			Chunk: chunk.GetIndex(), Message: err.Error(),
		}); rerr != nil {
			return reportFailed(log, rerr)
		}
		s.metrics.chunks.WithLabelValues(outcomeFailed).Inc()
		return nil
	}

	m := plan.NewMapper(int(chunk.GetRows()))
	defer m.Release() // after the batch is published: nothing uses its rows then
	rows, rowErrs, read, err := mapChunk(m, d, chunk)
	if err != nil {
		return fmt.Errorf("mapper: read chunk %d of %s: %w", chunk.GetIndex(), chunk.GetRun(), err)
	}
	rejected := read - int64(len(rows))
	if chunk.GetRows() != 0 && read != chunk.GetRows() {
		log.Warn("chunk holds a different number of records than the fetcher counted", "records", read, "rows", chunk.GetRows())
	}

	batch := &pipelinev1.Batch{
		Run:             chunk.GetRun(),
		Tenant:          chunk.GetTenant(),
		Object:          chunk.GetJob().GetObject(),
		AllowNewRecords: chunk.GetJob().GetAllowNewRecords(),
		Attributes:      plan.Attributes(),
		Types:           plan.Types(),
		Chunk:           chunk.GetIndex(),
		Rows:            rows,
		Rejected:        rejected,
		DryRun:          chunk.GetDryRun(),
	}
	// Leave room for the message's headers.
	if size := proto.Size(batch); s.maxPayload > 0 && int64(size) > s.maxPayload-4096 {
		msg := fmt.Sprintf("chunk %d maps to a batch of %d bytes, more than NATS accepts in a message (%d bytes); the chunks are too large", chunk.GetIndex(), size, s.maxPayload)
		log.Error("batch too large; failing the run", "bytes", size, "max", s.maxPayload)
		if _, rerr := s.report(ctx, &intakev1.ReportRunEventRequest{
			Run: chunk.GetRun(), Stage: intakev1.Stage_STAGE_MAP, Kind: intakev1.RunEventKind_RUN_EVENT_KIND_FAILED,
			Chunk: chunk.GetIndex(), Message: msg,
		}); rerr != nil {
			return reportFailed(log, rerr)
		}
		s.metrics.chunks.WithLabelValues(outcomeFailed).Inc()
		return nil
	}

	resp, err := s.report(ctx, &intakev1.ReportRunEventRequest{
		Run: chunk.GetRun(), Stage: intakev1.Stage_STAGE_MAP, Kind: intakev1.RunEventKind_RUN_EVENT_KIND_CHUNK_DONE,
		Chunk:     chunk.GetIndex(),
		Counters:  &intakev1.RunCounters{RowsRead: read, RowsRejected: rejected},
		RowErrors: rowErrorsForReport(log, rowErrs),
	})
	if err != nil {
		return reportFailed(log, err)
	}
	if resp.GetDirective() == intakev1.Directive_DIRECTIVE_ABANDON {
		log.Info("run has ended; chunk dropped")
		s.metrics.chunks.WithLabelValues(outcomeAbandoned).Inc()
		return nil
	}
	if err := pipeline.Publish(ctx, s.js, pipeline.SubjectBatch, pipeline.BatchMsgID(chunk.GetRun(), chunk.GetIndex()), batch); err != nil {
		return fmt.Errorf("mapper: publish batch: %w", err)
	}
	s.metrics.rows.WithLabelValues("mapped").Add(float64(len(rows)))
	s.metrics.rows.WithLabelValues("rejected").Add(float64(rejected))
	s.metrics.chunks.WithLabelValues(outcomePublished).Inc()
	s.metrics.duration.Observe(time.Since(start).Seconds())
	log.Debug("chunk mapped", "rows", len(rows), "rejected", rejected, "duration", time.Since(start))
	return nil
}

// plan returns the run's compiled plan and the dialect of its chunks,
// compiling them on the run's first chunk.
func (s *Service) plan(chunk *pipelinev1.Chunk) (*mapping.Plan, csv.Dialect, error) {
	if c, ok := s.plans.get(chunk.GetRun()); ok {
		return c.plan, c.dialect, c.err
	}
	var c compiled
	switch job := chunk.GetJob(); {
	case job == nil:
		c.err = errors.New("the chunk carries no job")
	default:
		c.dialect, c.err = chunkDialect(chunk)
		if c.err != nil {
			break
		}
		model := chunk.GetModel()
		if model == nil {
			// A chunk queued before runs carried their model: the object's
			// system attributes.
			obj, err := objects.Lookup(job.GetObject())
			if err != nil {
				c.err = fmt.Errorf("the job's object: %w", err)
				break
			}
			model = mapping.ModelOf(obj)
		}
		// Timestamps without a zone are wall times of the job's schedule
		// time zone (UTC when it has none).
		c.plan, c.err = mapping.CompileWith(model, job.GetMapping(), chunk.GetHeader(),
			mapping.CompileOptions{Location: mapping.JobLocation(job)})
	}
	s.plans.put(chunk.GetRun(), c)
	return c.plan, c.dialect, c.err
}

// chunkDialect is the dialect to read the chunk's data with: the one the
// fetcher resolved, or for a chunk queued before chunks carried it, the
// job's (an empty delimiter is a comma).
func chunkDialect(chunk *pipelinev1.Chunk) (csv.Dialect, error) {
	d := chunk.GetDialect()
	if d == nil {
		d = chunk.GetJob().GetMapping().GetDialect()
	}
	cd, err := dialect.CSV(d)
	if err != nil {
		return csv.Dialect{}, fmt.Errorf("the job's CSV dialect: %w", err)
	}
	return cd, nil
}

// rowError is a mapping.RowError with the raw record of its row.
type rowError struct {
	mapping.RowError
	record string
}

// mapChunk parses the chunk's records with pkg/csv (record boundaries are
// the fetcher's chunker's) and maps them. Records are numbered from
// chunk.first_row; a malformed record is rejected and reading goes on with
// the next one. Every row error carries its row's raw record.
func mapChunk(m *mapping.Mapper, d csv.Dialect, chunk *pipelinev1.Chunk) (rows []*pipelinev1.Row, errs []rowError, read int64, err error) {
	r := csv.NewReader(bytes.NewReader(chunk.GetData()), d)
	r.KeepBOM = true // the data starts at a record, not at the file's start
	rows = make([]*pipelinev1.Row, 0, chunk.GetRows())
	var rowErrs []mapping.RowError
	for {
		record, rerr := r.Read()
		if errors.Is(rerr, io.EOF) {
			return rows, errs, read, nil
		}
		read++
		rowNum := chunk.GetFirstRow() + r.Record() - 1
		n := len(rowErrs)
		if rerr != nil {
			var pe *csv.ParseError
			if !errors.As(rerr, &pe) {
				return nil, nil, read, rerr
			}
			rowErrs = append(rowErrs, mapping.RowError{Row: rowNum, Reason: "malformed CSV: " + pe.Reason()})
		} else {
			var row *pipelinev1.Row
			if row, rowErrs = m.MapRecord(rowNum, record, rowErrs); row != nil {
				rows = append(rows, row)
			}
		}
		if len(rowErrs) > n {
			raw := recordText(r.RawRecord())
			for _, e := range rowErrs[n:] {
				errs = append(errs, rowError{RowError: e, record: raw})
			}
		}
	}
}

// recordText is a raw record as text for RowError.record: at most
// maxRecordBytes, and valid UTF-8 (a protobuf string) with any invalid byte
// replaced by U+FFFD.
func recordText(raw []byte) string {
	if len(raw) > maxRecordBytes {
		cut := maxRecordBytes
		for cut > 0 && !utf8.RuneStart(raw[cut]) {
			cut--
		}
		raw = raw[:cut]
	}
	if utf8.Valid(raw) {
		return string(raw)
	}
	return strings.ToValidUTF8(string(raw), "\uFFFD")
}

// rowErrorsForReport converts the row errors, cut to maxRowErrorBytes.
func rowErrorsForReport(log *slog.Logger, errs []rowError) []*intakev1.RowError {
	out := make([]*intakev1.RowError, 0, len(errs))
	size := 0
	for i, e := range errs {
		size += len(e.Column) + len(e.Reason) + len(e.record) + 32
		if size > maxRowErrorBytes {
			log.Warn("too many row errors for one report; the rest are counted but not listed", "listed", i, "errors", len(errs))
			break
		}
		pe := e.Proto()
		pe.Record = e.record
		out = append(out, pe)
	}
	return out
}

// report sends a report to the control API, retrying a few times with
// backoff while the API is unavailable.
func (s *Service) report(ctx context.Context, req *intakev1.ReportRunEventRequest) (*intakev1.ReportRunEventResponse, error) {
	req.EventTime = timestamppb.Now()
	delay := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		resp, err := s.stage.ReportRunEvent(cctx, req)
		cancel()
		if err == nil {
			return resp, nil
		}
		code := status.Code(err)
		if attempt >= 5 || ctx.Err() != nil || code != codes.Unavailable && code != codes.DeadlineExceeded {
			return nil, fmt.Errorf("mapper: report %v %v of chunk %d of %s: %w", req.GetStage(), req.GetKind(), req.GetChunk(), req.GetRun(), err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("mapper: report %v of %s: %w", req.GetKind(), req.GetRun(), ctx.Err())
		case <-time.After(delay):
		}
		delay *= 2
	}
}

// reportFailed turns a report that could not be made into the handler's
// result: redeliver the chunk later, or drop it when the API refuses it for
// good (the run does not exist, the request is invalid).
func reportFailed(log *slog.Logger, err error) error {
	switch status.Code(err) {
	case codes.NotFound, codes.InvalidArgument, codes.FailedPrecondition:
		log.Error("control API refused the report; chunk dropped", "err", err)
		return pipeline.Term(err)
	}
	return pipeline.Retry(err, 5*time.Second)
}

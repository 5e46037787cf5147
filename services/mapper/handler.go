package mapper

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/intakehq/intake/pkg/mapping"
	"github.com/intakehq/intake/pkg/objects"
	"github.com/intakehq/intake/pkg/pipeline"
	pipelinev1 "github.com/intakehq/intake/proto/gen/intake/pipeline/v1"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// maxRowErrorBytes bounds the row errors sent in one report, so a chunk of
// bad rows stays under gRPC's default 4 MiB message limit. The counters stay
// exact; only the list is cut.
const maxRowErrorBytes = 3 << 20

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

	plan, err := s.plan(chunk)
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
	rows, rowErrs, read, err := mapChunk(plan, m, chunk)
	if err != nil {
		return fmt.Errorf("mapper: read chunk %d of %s: %w", chunk.GetIndex(), chunk.GetRun(), err)
	}
	rejected := read - int64(len(rows))
	if chunk.GetRows() != 0 && read != chunk.GetRows() {
		log.Warn("chunk holds a different number of records than the fetcher counted", "records", read, "rows", chunk.GetRows())
	}

	batch := &pipelinev1.Batch{
		Run:             chunk.GetRun(),
		Object:          chunk.GetJob().GetObject(),
		AllowNewRecords: chunk.GetJob().GetAllowNewRecords(),
		Attributes:      plan.Attributes(),
		Chunk:           chunk.GetIndex(),
		Rows:            rows,
		Rejected:        rejected,
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

// plan returns the run's compiled plan, compiling it on the run's first chunk.
func (s *Service) plan(chunk *pipelinev1.Chunk) (*mapping.Plan, error) {
	if c, ok := s.plans.get(chunk.GetRun()); ok {
		return c.plan, c.err
	}
	var c compiled
	switch job := chunk.GetJob(); {
	case job == nil:
		c.err = errors.New("the chunk carries no job")
	default:
		obj, err := objects.Lookup(job.GetObject())
		if err != nil {
			c.err = fmt.Errorf("the job's object: %w", err)
			break
		}
		c.plan, c.err = mapping.Compile(obj, job.GetMapping(), chunk.GetHeader())
	}
	s.plans.put(chunk.GetRun(), c)
	return c.plan, c.err
}

// mapChunk parses the chunk's records and maps them. Records are numbered
// from chunk.first_row; a record the CSV parser cannot read is rejected and
// parsing goes on with the next one.
func mapChunk(plan *mapping.Plan, m *mapping.Mapper, chunk *pipelinev1.Chunk) (rows []*pipelinev1.Row, errs []mapping.RowError, read int64, err error) {
	rr := newRecordReader(chunk.GetData(), plan.Comma())
	rows = make([]*pipelinev1.Row, 0, chunk.GetRows())
	for rowNum := chunk.GetFirstRow(); ; rowNum++ {
		record, rerr := rr.read()
		if rerr == io.EOF {
			return rows, errs, read, nil
		}
		read++
		if rerr != nil {
			var pe *csv.ParseError
			if !errors.As(rerr, &pe) {
				return nil, nil, read, rerr
			}
			errs = append(errs, mapping.RowError{Row: rowNum, Reason: parseErrorReason(pe)})
			continue
		}
		var row *pipelinev1.Row
		if row, errs = m.MapRecord(rowNum, record, errs); row != nil {
			rows = append(rows, row)
		}
	}
}

// recordReader reads a chunk's records strictly (a stray quote is an error),
// but where a record ends is decided as the fetcher's chunker decides it:
// the way encoding/csv reads with LazyQuotes. So after a malformed record
// the next one, and every row number after it, are the ones the fetcher
// counted, even when the bad record spans lines.
type recordReader struct {
	data  []byte
	comma rune
	base  int64 // offset in data where r starts
	r     *csv.Reader
}

func newRecordReader(data []byte, comma rune) *recordReader {
	rr := &recordReader{data: data, comma: comma}
	rr.restart(0)
	return rr
}

func (rr *recordReader) restart(off int64) {
	rr.base = off
	rr.r = csv.NewReader(bytes.NewReader(rr.data[off:]))
	rr.r.Comma = rr.comma
	rr.r.FieldsPerRecord = -1
	rr.r.ReuseRecord = true
	rr.r.LazyQuotes = false
}

// read returns the next record, a *csv.ParseError for a malformed one, or
// io.EOF.
func (rr *recordReader) read() ([]string, error) {
	start := rr.base + rr.r.InputOffset()
	record, err := rr.r.Read()
	if err == nil || err == io.EOF {
		return record, err
	}
	// Find the end of the malformed record as a lenient reader sees it and
	// go on from there.
	lazy := csv.NewReader(bytes.NewReader(rr.data[start:]))
	lazy.Comma = rr.comma
	lazy.FieldsPerRecord = -1
	lazy.LazyQuotes = true
	end := int64(len(rr.data))
	if _, lerr := lazy.Read(); lerr == nil {
		end = start + lazy.InputOffset()
	}
	rr.restart(end)
	return nil, err
}

// parseErrorReason describes a CSV syntax error of a record. Lines are
// counted within the record, since the parser's line numbers are the chunk's.
func parseErrorReason(pe *csv.ParseError) string {
	if pe.Line > pe.StartLine {
		return fmt.Sprintf("malformed CSV: %v (line %d of the record, byte %d)", pe.Err, pe.Line-pe.StartLine+1, pe.Column)
	}
	return fmt.Sprintf("malformed CSV: %v (byte %d)", pe.Err, pe.Column)
}

// rowErrorsForReport converts the row errors, cut to maxRowErrorBytes.
func rowErrorsForReport(log *slog.Logger, errs []mapping.RowError) []*intakev1.RowError {
	out := make([]*intakev1.RowError, 0, len(errs))
	size := 0
	for i, e := range errs {
		size += len(e.Column) + len(e.Reason) + 24
		if size > maxRowErrorBytes {
			log.Warn("too many row errors for one report; the rest are counted but not listed", "listed", i, "errors", len(errs))
			break
		}
		out = append(out, e.Proto())
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

package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/intakehq/intake/pkg/csv"
	"github.com/intakehq/intake/pkg/dialect"
	"github.com/intakehq/intake/pkg/mapping"
	"github.com/intakehq/intake/pkg/source"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// DefaultSampleTimeout is Config.SampleTimeout when unset.
const DefaultSampleTimeout = 30 * time.Second

// maxSampleRecordBytes bounds one record of a sample.
const maxSampleRecordBytes = 4 << 20

// sampleRow is one data record of a sample.
type sampleRow struct {
	// row is the record number in the file (header = header_row).
	row int64
	// fields are the record's fields (owned: safe to keep).
	fields []string
	// raw is the record's text as in the file (after decoding).
	raw string
	// err is a problem of the whole record (bad quoting); "" when none.
	err string
}

// sample is the beginning of a job's file: its header and first data rows.
type sample struct {
	header   []string
	rows     []sampleRow
	dialect  *intakev1.CsvDialect // resolved: delimiter, quote, escape set
	detected *intakev1.DialectDetection
	source   string
}

// sampleError is the status of a file that cannot be sampled: the file's
// problem, not the request's.
func sampleError(where, format string, args ...any) error {
	return failedPrecondition("FILE_UNREADABLE", where, fmt.Sprintf(format, args...))
}

// readSample reads the header and up to n data rows of job's file through
// its connection and dialect, within Config.SampleTimeout. Only what the
// rows need is read. A file that cannot be reached or read is a
// FailedPrecondition that says why.
func (s *Server) readSample(ctx context.Context, job *intakev1.Job, n int) (*sample, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.SampleTimeout)
	defer cancel()
	body, where, err := s.openSample(ctx, job)
	if err != nil {
		return nil, err
	}
	defer body.Close()

	spec := job.GetMapping().GetDialect()
	if err := dialect.Validate(spec); err != nil {
		return nil, badField("job.mapping.dialect", "%v", err)
	}
	text, resolved, detected, err := dialect.Open(body, spec)
	if err != nil {
		return nil, s.sampleFailed(ctx, where, err)
	}
	r, err := dialect.NewReader(text, resolved)
	if err != nil {
		return nil, badField("job.mapping.dialect", "%v", err)
	}
	r.MaxRecordBytes = maxSampleRecordBytes
	out := &sample{dialect: resolved, detected: detected, source: where}

	headerRow := int64(max(spec.GetHeaderRow(), 1))
	skip := int64(max(spec.GetSkipRows(), 0))
	for {
		rec, err := r.Read()
		var pe *csv.ParseError
		switch {
		case errors.Is(err, io.EOF):
			switch {
			case out.header == nil && r.Record() == 0:
				return nil, sampleError(where, "the file is empty: it has no header row")
			case out.header == nil:
				return nil, sampleError(where, "the header is row %d (mapping.dialect.header_row) but the file has only %d rows", headerRow, r.Record())
			}
			return out, nil
		case errors.As(err, &pe) && rec != nil:
			// A malformed record: kept, with its problem.
		case err != nil:
			return nil, s.sampleFailed(ctx, where, err)
		}
		num := r.Record()
		switch {
		case num < headerRow:
			continue
		case num == headerRow:
			if pe != nil {
				return nil, sampleError(where, "the header (row %d) cannot be read: %s", num, pe.Reason())
			}
			out.header = slices.Clone(rec)
			continue
		case num <= headerRow+skip:
			continue // mapping.dialect.skip_rows
		}
		sr := sampleRow{row: num, fields: slices.Clone(rec), raw: string(r.RawRecord())}
		if pe != nil {
			sr.err = pe.Reason()
		}
		out.rows = append(out.rows, sr)
		if len(out.rows) >= n {
			return out, nil
		}
	}
}

// openSample opens job's file: through its inline connection, or through
// the stored connection it names (secrets opened), its file selector
// resolved now in the job's schedule time zone, as a run now would. It
// returns the file and where it is, for messages.
func (s *Server) openSample(ctx context.Context, job *intakev1.Job) (io.ReadCloser, string, error) {
	opts := s.sourceOptions()
	if name := job.GetConnectionName(); name != "" {
		conn, err := s.openConnection(ctx, "job.connection_name", name)
		if err != nil {
			return nil, "", err
		}
		// No retries: a user waits for the answer, which the error gives.
		opts.Retry = source.RetryPolicy{Attempts: 1}
		body, meta, err := source.OpenFile(ctx, source.Request{
			Conn: conn, File: job.GetFile(), At: time.Now(), Location: mapping.JobLocation(job),
		}, opts)
		var se *source.Error
		if errors.As(err, &se) && ctx.Err() == nil && !errors.Is(err, source.ErrLocalNotAllowed) {
			// The message names the connection already.
			return nil, "", sampleError(name, "%s", strings.TrimPrefix(se.Error(), name+": "))
		}
		if err != nil {
			return nil, "", s.sampleFailed(ctx, name, err)
		}
		if body == nil { // never: the request is not conditional
			return nil, "", sampleError(meta.Source, "the server sent no file")
		}
		return body, meta.Source, nil
	}
	conn := job.GetConnection()
	where := source.Describe(conn)
	if where == "" {
		where = "job.connection"
	}
	body, info, err := source.Open(ctx, conn, opts)
	if err != nil {
		return nil, "", s.sampleFailed(ctx, where, err)
	}
	if info.Source != "" {
		where = info.Source
	}
	return body, where, nil
}

// sampleFailed turns an error reading the file into a status naming the
// file (where) and the cause.
func (s *Server) sampleFailed(ctx context.Context, where string, err error) error {
	switch {
	case errors.Is(err, source.ErrLocalNotAllowed):
		return failedPrecondition("DEV_MODE", "job.connection.local",
			"local file connections are only accepted when Intake runs in development mode; use an http connection")
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return sampleError(where, "reading a sample of the file took longer than %v: %v", s.cfg.SampleTimeout, err)
	case ctx.Err() != nil:
		return status.FromContextError(ctx.Err()).Err()
	}
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return sampleError(where, "row %d: %s", pe.Record, pe.Reason())
	}
	if _, ok := status.FromError(err); ok && status.Code(err) != codes.Unknown {
		return err
	}
	return sampleError(where, "cannot read the file: %v", err)
}

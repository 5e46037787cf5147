package api

import (
	"bytes"
	"encoding/csv"
	"strconv"
	"strings"

	"google.golang.org/grpc"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// rejectsChunkSize is about the size of each FileChunk of a download.
const rejectsChunkSize = 64 << 10

// neutralise makes a cell safe to open in a spreadsheet: a cell starting
// with a character that starts a formula (=, +, -, @, and tab or carriage
// return, per OWASP's CSV injection advice) gets a leading single quote, so
// it shows as text and never runs.
func neutralise(cell string) string {
	if cell == "" {
		return cell
	}
	switch cell[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + cell
	}
	return cell
}

// DownloadRejects streams a run's rejected rows as CSV: a header
// "row,column,reason,record", then one line per rejected value (a row with
// two bad cells has two lines), in row order, every cell neutralised
// against formula injection. The first chunk names the file
// "<job>-<run>-rejects.csv". When more than store.MaxRowErrorsKept values
// were rejected, a last line says how many were not kept.
func (r *runService) DownloadRejects(req *intakev1.DownloadRejectsRequest, stream grpc.ServerStreamingServer[intakev1.FileChunk]) error {
	s := r.s
	ctx := stream.Context()
	jobID, runID, err := parseRunName("name", req.GetName())
	if err != nil {
		return err
	}
	var (
		buf   bytes.Buffer
		first = true
		rows  int
	)
	w := csv.NewWriter(&buf)
	send := func() error {
		w.Flush()
		if err := w.Error(); err != nil {
			return err
		}
		c := &intakev1.FileChunk{Data: bytes.Clone(buf.Bytes())}
		if first {
			c.Filename = jobID + "-" + runID + "-rejects.csv"
			c.ContentType = "text/csv; charset=utf-8"
			first = false
		}
		buf.Reset()
		return stream.Send(c)
	}
	write := func(cells ...string) error {
		for i, c := range cells {
			cells[i] = neutralise(c)
		}
		if err := w.Write(cells); err != nil {
			return err
		}
		if buf.Len() >= rejectsChunkSize {
			w.Flush()
			if buf.Len() >= rejectsChunkSize {
				return send()
			}
		}
		return nil
	}
	if err := write("row", "column", "reason", "record"); err != nil {
		return err
	}
	dropped, err := s.store.Rejects(ctx, jobID, runID, func(e *intakev1.RowError) error {
		rows++
		return write(strconv.FormatInt(e.GetRow(), 10), e.GetColumn(), e.GetReason(), strings.TrimRight(e.GetRecord(), "\r\n"))
	})
	if err != nil {
		return s.storeError(ctx, "download the rejects of", "run "+req.GetName(), err)
	}
	if dropped > 0 {
		if err := write("", "", "only the first "+strconv.FormatInt(s.store.RowErrorCap(), 10)+" rejected values of the run are kept; "+
			strconv.FormatInt(dropped, 10)+" more were not", ""); err != nil {
			return err
		}
	}
	if err := send(); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "rejects downloaded", "job", jobID, "run", runID, "rejects", rows)
	return nil
}

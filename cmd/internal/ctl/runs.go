package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/intakehq/intake/cmd/internal/command"
	"github.com/intakehq/intake/cmd/internal/runview"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// maxRowErrors is how many row errors the end of a watch prints.
const maxRowErrors = 10

func (c *cli) runList(ctx context.Context, _ []string) error {
	parent := "jobs/-"
	if c.job != "" {
		name, err := JobName(c.job)
		if err != nil {
			return command.Usagef("--job: %v", err)
		}
		parent = name
	}
	filter := &intakev1.ListRunsRequest{}
	if err := c.runFilter.apply(filter, time.Now()); err != nil { // jobops.go
		return err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	all := &intakev1.ListRunsResponse{}
	for token := ""; ; {
		size := int32(100)
		if c.limit > 0 {
			size = int32(min(100, c.limit-len(all.Runs)))
		}
		resp, err := c.runs.ListRuns(ctx, &intakev1.ListRunsRequest{Parent: parent, PageSize: size, PageToken: token,
			States: filter.States, Triggers: filter.Triggers, CreateTimeFrom: filter.CreateTimeFrom, CreateTimeTo: filter.CreateTimeTo})
		if err != nil {
			return c.apiError("list runs of "+parent, err)
		}
		all.Runs = append(all.Runs, resp.GetRuns()...)
		if token = resp.GetNextPageToken(); token == "" || c.limit > 0 && len(all.Runs) >= c.limit {
			break
		}
	}
	if c.limit > 0 && len(all.Runs) > c.limit {
		all.Runs = all.Runs[:c.limit]
	}
	if c.output == "json" {
		return c.printJSON(all)
	}
	now := time.Now()
	tw := tabwriter.NewWriter(c.sys.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tSTATE\tTRIGGER\tCREATED\tDURATION\tREAD\tREJECTED\tCREATED\tUPDATED\tMESSAGE")
	for _, r := range all.GetRuns() {
		cnt := r.GetCounters()
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", r.GetName(), runview.State(r.GetState()),
			runview.Trigger(r.GetTrigger()), timeOrDash(r.GetCreateTime().AsTime(), r.GetCreateTime() != nil),
			runview.Duration(runview.Elapsed(r, now)), cnt.GetRowsRead(), cnt.GetRowsRejected(), cnt.GetRowsCreated(),
			cnt.GetRowsUpdated(), oneLine(r.GetMessage(), 60))
	}
	return tw.Flush()
}

func (c *cli) runGet(ctx context.Context, args []string) error {
	name, err := RunName(args[0])
	if err != nil {
		return command.Usagef("%v", err)
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	r, err := c.runs.GetRun(ctx, &intakev1.GetRunRequest{Name: name})
	if err != nil {
		return c.apiError("get run "+name, err)
	}
	if c.output == "json" {
		return c.printJSON(r)
	}
	runview.Summary(c.sys.Stdout, runWithSourceDetails(r), 100, time.Now()) // source size and time: connections.go
	return nil
}

func (c *cli) runWatch(ctx context.Context, args []string) error {
	name, err := RunName(args[0])
	if err != nil {
		return command.Usagef("%v", err)
	}
	return c.watchRun(ctx, name)
}

// watchRun follows a run until it ends. On a terminal it redraws one
// progress line; elsewhere it prints a line per change (a JSON object per
// change with -o json). Then it prints the outcome and returns an exit code
// of 1 unless the run succeeded.
func (c *cli) watchRun(ctx context.Context, name string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.runs.WatchRun(ctx, &intakev1.WatchRunRequest{Name: name})
	if err != nil {
		return c.apiError("watch run "+name, err)
	}
	type recv struct {
		run *intakev1.Run
		err error
	}
	updates := make(chan recv)
	go func() {
		for {
			resp, err := stream.Recv()
			select {
			case updates <- recv{resp.GetRun(), err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()

	width, tty := 0, false
	if c.sys.TerminalWidth != nil {
		width, tty = c.sys.TerminalWidth()
	}
	tty = tty && c.output == "table"
	var tick <-chan time.Time
	if tty {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		tick = t.C
	}
	var (
		last  *intakev1.Run
		drawn bool
	)
	draw := func() {
		if last == nil {
			return
		}
		now := time.Now()
		switch {
		case tty:
			line := runview.Progress(last, now, width)
			if r := []rune(line); width > 1 && len(r) >= width {
				line = string(r[:width-1])
			}
			writeString(c.sys.Stdout, "\r"+line+"\x1b[K")
			drawn = true
		case c.output == "json":
			b, err := protojson.Marshal(last)
			if err == nil {
				fmt.Fprintf(c.sys.Stdout, "%s\n", b)
			}
		default:
			fmt.Fprintln(c.sys.Stdout, runview.Update(last, now))
		}
	}
loop:
	for {
		select {
		case <-ctx.Done():
			if drawn {
				writeString(c.sys.Stdout, "\n")
			}
			return ctx.Err()
		case <-tick:
			draw()
		case u := <-updates:
			if u.err != nil {
				if errors.Is(u.err, io.EOF) {
					break loop
				}
				if drawn {
					writeString(c.sys.Stdout, "\n")
				}
				return c.apiError("watch run "+name, u.err)
			}
			last = u.run
			draw()
			if runview.Final(last.GetState()) {
				break loop
			}
		}
	}
	if drawn {
		writeString(c.sys.Stdout, "\n")
	}
	if last == nil || !runview.Final(last.GetState()) {
		// The stream ended early (the API stopped?): ask once more.
		cctx, ccancel := c.call(ctx)
		defer ccancel()
		r, err := c.runs.GetRun(cctx, &intakev1.GetRunRequest{Name: name})
		if err != nil {
			return c.apiError("get run "+name, err)
		}
		if !runview.Final(r.GetState()) {
			return fmt.Errorf("the API ended the watch of %s while it is %s; watch again with: intakectl run watch %s", name, runview.State(r.GetState()), name)
		}
		last = r
	}
	if c.output == "table" {
		runview.Summary(c.sys.Stdout, runWithSourceDetails(last), maxRowErrors, time.Now())
	}
	if !runview.Succeeded(last.GetState()) {
		return &command.ExitError{Code: 1}
	}
	return nil
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > max {
		return string(r[:max-1]) + "…"
	}
	return s
}

// runRejects writes a run's rejected rows as CSV to -o FILE or standard
// output.
func (c *cli) runRejects(ctx context.Context, args []string) (err error) {
	name, err := RunName(args[0])
	if err != nil {
		return command.Usagef("%v", err)
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	stream, err := c.runs.DownloadRejects(ctx, &intakev1.DownloadRejectsRequest{Name: name})
	if err != nil {
		return c.apiError("download the rejects of "+name, err)
	}
	// The first message says whether the run exists; only then is the file created.
	first, err := stream.Recv()
	if err != nil && !errors.Is(err, io.EOF) {
		return c.apiError("download the rejects of "+name, err)
	}
	w := c.sys.Stdout
	if c.out != "" && c.out != "-" {
		f, err := os.Create(c.out)
		if err != nil {
			return fmt.Errorf("write the rejects: %w", err)
		}
		defer func() {
			if cerr := f.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("write the rejects: %w", cerr)
			}
		}()
		w = f
	}
	var n int64
	for chunk := first; chunk != nil; {
		m, err := w.Write(chunk.GetData())
		n += int64(m)
		if err != nil {
			return fmt.Errorf("write the rejects: %w", err)
		}
		chunk, err = stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return c.apiError("download the rejects of "+name, err)
		}
	}
	if w != c.sys.Stdout {
		fmt.Fprintf(c.sys.Stdout, "wrote the rejected rows of %s to %s (%s)\n", name, c.out, runview.Bytes(n))
	}
	return nil
}

// Package runview renders runs for people: state names, one-line outcomes,
// the summary printed when a run ends, and the live progress line of a
// watched run.
package runview

import (
	"fmt"
	"io"
	"strings"
	"time"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// State is the lowercase name of a run state: "partially succeeded".
func State(s intakev1.RunState) string {
	n, ok := intakev1.RunState_name[int32(s)]
	if !ok || s == intakev1.RunState_RUN_STATE_UNSPECIFIED {
		return "unknown"
	}
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(n, "RUN_STATE_")), "_", " ")
}

// Trigger is the lowercase name of a trigger: "schedule", "run now".
func Trigger(t intakev1.Trigger) string {
	n, ok := intakev1.Trigger_name[int32(t)]
	if !ok || t == intakev1.Trigger_TRIGGER_UNSPECIFIED {
		return "unknown"
	}
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(n, "TRIGGER_")), "_", " ")
}

// Final reports whether a run in state s has ended.
func Final(s intakev1.RunState) bool {
	return s >= intakev1.RunState_RUN_STATE_SUCCEEDED
}

// Succeeded reports whether s counts as success: succeeded or partially
// succeeded. Skipped runs count as failures, as users are told.
func Succeeded(s intakev1.RunState) bool {
	return s == intakev1.RunState_RUN_STATE_SUCCEEDED || s == intakev1.RunState_RUN_STATE_PARTIALLY_SUCCEEDED
}

// Elapsed is how long the run has taken: from its start (or creation) to
// its end, or to now while it runs.
func Elapsed(r *intakev1.Run, now time.Time) time.Duration {
	start := r.GetStartTime()
	if start == nil {
		start = r.GetCreateTime()
	}
	if start == nil {
		return 0
	}
	end := now
	if r.GetEndTime() != nil {
		end = r.GetEndTime().AsTime()
	}
	d := end.Sub(start.AsTime())
	if d < 0 {
		return 0
	}
	return d
}

// ChunksDone is the progress of a run in chunks: those loaded, or while none
// is loaded yet, those mapped; and the total (0 while unknown).
func ChunksDone(r *intakev1.Run) (done, total int64) {
	var mapped, loaded int64
	for _, s := range r.GetStages() {
		switch s.GetStage() {
		case intakev1.Stage_STAGE_MAP:
			mapped = s.GetChunksDone()
		case intakev1.Stage_STAGE_LOAD:
			loaded = s.GetChunksDone()
		}
	}
	done = loaded
	if loaded == 0 {
		done = mapped
	}
	total = r.GetCounters().GetChunks()
	if total > 0 && done > total {
		done = total
	}
	return done, total
}

// Counters is the row counters of a run in words.
func Counters(c *intakev1.RunCounters) string {
	return fmt.Sprintf("%d read, %d rejected, %d created, %d updated, %d unchanged, %d ignored",
		c.GetRowsRead(), c.GetRowsRejected(), c.GetRowsCreated(), c.GetRowsUpdated(), c.GetRowsUnchanged(), c.GetRowsIgnored())
}

// Outcome is one line about an ended run, for logs and the dev demo.
func Outcome(r *intakev1.Run, now time.Time) string {
	var b strings.Builder
	kind := Trigger(r.GetTrigger())
	if r.GetDryRun() {
		kind += ", dry run"
	}
	fmt.Fprintf(&b, "%s %s (%s) in %s", r.GetName(), State(r.GetState()), kind, Duration(Elapsed(r, now)))
	if Succeeded(r.GetState()) || r.GetCounters().GetRowsRead() > 0 {
		rows := "rows"
		if r.GetDryRun() {
			rows = "rows it would have"
		}
		fmt.Fprintf(&b, ": %s %s", rows, Counters(r.GetCounters()))
	}
	if m := r.GetMessage(); m != "" {
		fmt.Fprintf(&b, " — %s", m)
	}
	return b.String()
}

// Summary prints the details of a run: state, counters, message and the
// first maxErrors row errors.
func Summary(w io.Writer, r *intakev1.Run, maxErrors int, now time.Time) {
	fmt.Fprintf(w, "Run:      %s\n", r.GetName())
	fmt.Fprintf(w, "State:    %s\n", State(r.GetState()))
	fmt.Fprintf(w, "Trigger:  %s\n", Trigger(r.GetTrigger()))
	if r.GetDryRun() {
		fmt.Fprintf(w, "Dry run:  yes, nothing was changed; the rows say what a run would do\n")
	}
	if t := r.GetScheduledTime(); t != nil {
		fmt.Fprintf(w, "Schedule: %s\n", Time(t.AsTime()))
	}
	if t := r.GetCreateTime(); t != nil {
		fmt.Fprintf(w, "Created:  %s\n", Time(t.AsTime()))
	}
	if t := r.GetEndTime(); t != nil {
		fmt.Fprintf(w, "Ended:    %s (took %s)\n", Time(t.AsTime()), Duration(Elapsed(r, now)))
	} else if r.GetStartTime() != nil {
		fmt.Fprintf(w, "Running:  %s so far\n", Duration(Elapsed(r, now)))
	}
	if s := r.GetSource(); s != "" {
		fmt.Fprintf(w, "Source:   %s\n", s)
	}
	c := r.GetCounters()
	if c.GetBytes() > 0 || r.GetSha256() != "" {
		fmt.Fprintf(w, "File:     %s, %d chunks, sha256 %s\n", Bytes(c.GetBytes()), c.GetChunks(), r.GetSha256())
	}
	fmt.Fprintf(w, "Rows:     %s\n", Counters(c))
	if len(r.GetStages()) > 0 {
		fmt.Fprintln(w, "Stages:")
	}
	for _, s := range r.GetStages() {
		took := "-"
		if st := s.GetStartTime(); st != nil {
			end := now
			if s.GetEndTime() != nil {
				end = s.GetEndTime().AsTime()
			}
			took = Duration(end.Sub(st.AsTime()))
		}
		line := fmt.Sprintf("  %-6s %s", strings.ToLower(strings.TrimPrefix(s.GetStage().String(), "STAGE_")), took)
		if s.GetStage() != intakev1.Stage_STAGE_FETCH {
			line += fmt.Sprintf(", %d/%d chunks", s.GetChunksDone(), c.GetChunks())
		}
		fmt.Fprintln(w, line)
	}
	if m := r.GetMessage(); m != "" {
		fmt.Fprintf(w, "Message:  %s\n", m)
	}
	if cols := r.GetMissingColumns(); len(cols) > 0 {
		fmt.Fprintf(w, "Missing:  mapped columns not in the file: %s\n", quoteAll(cols))
	}
	if cols := r.GetNewColumns(); len(cols) > 0 {
		fmt.Fprintf(w, "New:      columns new in the file, not mapped: %s\n", quoteAll(cols))
	}
	if errs := r.GetRowErrors(); len(errs) > 0 {
		n := min(len(errs), maxErrors)
		fmt.Fprintf(w, "Row errors (first %d of %d rejected rows):\n", n, c.GetRowsRejected())
		for _, e := range errs[:n] {
			fmt.Fprintf(w, "  %s\n", RowError(e))
		}
		fmt.Fprintf(w, "Every rejected row as CSV: intakectl run rejects %s -o rejects.csv\n", r.GetName())
	}
	if ds := r.GetWebhookDeliveries(); len(ds) > 0 {
		fmt.Fprintln(w, "Webhook deliveries:")
		for _, d := range ds {
			at := "-"
			if d.GetTime() != nil {
				at = Time(d.GetTime().AsTime())
			}
			code := "no response"
			if d.GetStatusCode() != 0 {
				code = fmt.Sprintf("HTTP %d", d.GetStatusCode())
			}
			outcome := "delivered"
			if !d.GetDelivered() {
				outcome = "failed"
				if e := d.GetError(); e != "" {
					outcome += ": " + strings.Join(strings.Fields(e), " ")
				}
			}
			fmt.Fprintf(w, "  attempt %d  %s  %-11s  %s\n", d.GetAttempt(), at, code, outcome)
		}
	}
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// RowError is "row 7, column created_date: reason".
func RowError(e *intakev1.RowError) string {
	if e.GetColumn() == "" {
		return fmt.Sprintf("row %d: %s", e.GetRow(), e.GetReason())
	}
	return fmt.Sprintf("row %d, column %q: %s", e.GetRow(), e.GetColumn(), e.GetReason())
}

// Progress is the one-line progress of a running run, to be redrawn in
// place on a terminal of the given width: state, a bar of chunks done, rows
// read, rejected, rows per second, elapsed time and the estimated time left.
func Progress(r *intakev1.Run, now time.Time, width int) string {
	done, total := ChunksDone(r)
	elapsed := Elapsed(r, now)
	chunks := fmt.Sprintf("%d/?", done)
	eta := "ETA --"
	if total > 0 {
		chunks = fmt.Sprintf("%d/%d", done, total)
		if Final(r.GetState()) {
			eta = "done"
		} else if done > 0 && elapsed > 0 {
			left := time.Duration(float64(elapsed) * float64(total-done) / float64(done))
			eta = "ETA " + Duration(left)
		}
	}
	c := r.GetCounters()
	state := State(r.GetState())
	text := fmt.Sprintf(" %s  %d rows  %d rejected  %s rows/s  %s  %s",
		chunks, c.GetRowsRead(), c.GetRowsRejected(), rate(c.GetRowsRead(), elapsed), Duration(elapsed), eta)
	// The bar takes what the text leaves of the line, within limits.
	barWidth := min(30, max(5, width-1-len(state)-3-len([]rune(text))))
	bar := strings.Repeat("·", barWidth)
	if total > 0 {
		filled := int(done * int64(barWidth) / total)
		bar = strings.Repeat("█", filled) + strings.Repeat("·", barWidth-filled)
	}
	return fmt.Sprintf("%s [%s]%s", state, bar, text)
}

// Update is a line per change of a watched run, for logs and pipes.
func Update(r *intakev1.Run, now time.Time) string {
	done, total := ChunksDone(r)
	c := r.GetCounters()
	tot := "?"
	if total > 0 {
		tot = fmt.Sprint(total)
	}
	return fmt.Sprintf("%s %s: chunks %d/%s, rows read %d, rejected %d, elapsed %s",
		now.Format("15:04:05"), State(r.GetState()), done, tot, c.GetRowsRead(), c.GetRowsRejected(), Duration(Elapsed(r, now)))
}

func rate(rows int64, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", float64(rows)/d.Seconds())
}

// Duration is a short, rounded duration: 850ms, 12.3s, 4m05s, 1h02m.
func Duration(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		d = d.Round(time.Minute)
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
}

// Time is a timestamp in local time, to the second.
func Time(t time.Time) string {
	return t.Local().Format("2006-01-02 15:04:05 MST")
}

// Bytes is a byte count with a binary unit.
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

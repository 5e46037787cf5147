// Package mappingview renders what the control API says about a mapping for
// people: the findings of a validation, the file's columns with their
// mapped and new markers, what was detected of the file's dialect, the
// preview of transformed rows and a suggested mapping as YAML to paste.
package mappingview

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// ANSI sequences of the same length, so that tabwriter aligns colored and
// plain lines alike: a green background for new columns, the default one
// otherwise.
const (
	greenBG   = "\x1b[42m"
	defaultBG = "\x1b[49m"
	reset     = "\x1b[0m"
)

// Counts returns the number of error and warning findings.
func Counts(fs []*intakev1.Finding) (errs, warnings int) {
	for _, f := range fs {
		if f.GetSeverity() == intakev1.FindingSeverity_FINDING_SEVERITY_WARNING {
			warnings++
		} else {
			errs++
		}
	}
	return errs, warnings
}

// Severity is "error" or "warning".
func Severity(s intakev1.FindingSeverity) string {
	if s == intakev1.FindingSeverity_FINDING_SEVERITY_WARNING {
		return "warning"
	}
	return "error"
}

// Findings prints the findings as a table: severity, code, entry (counted
// from 1), attribute, column, row and message. Nothing when there are none.
func Findings(w io.Writer, fs []*intakev1.Finding) error {
	if len(fs) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEVERITY\tCODE\tENTRY\tATTRIBUTE\tCOLUMN\tROW\tMESSAGE")
	for _, f := range fs {
		// Entries are counted from 1, as the API's messages count them.
		entry := "-"
		if f.GetEntry() >= 0 {
			entry = strconv.Itoa(int(f.GetEntry()) + 1)
		}
		row := "-"
		if f.GetRow() > 0 {
			row = strconv.FormatInt(f.GetRow(), 10)
		}
		msg := f.GetMessage()
		if v := f.GetValue(); v != "" && !strings.Contains(msg, v) {
			msg += fmt.Sprintf(" (value %q)", v)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", Severity(f.GetSeverity()), dash(f.GetCode()), entry,
			dash(f.GetAttribute()), dashQ(f.GetColumn()), row, OneLine(msg, 0))
	}
	return tw.Flush()
}

// Columns prints the file's columns: mapped or not, "+ new" for columns
// that were not in the file when the mapping was last validated (on a
// terminal the whole line has a green background), and sample values.
func Columns(w io.Writer, cols []*intakev1.SourceColumn, tty bool) error {
	if len(cols) == 0 {
		return nil
	}
	var unmapped, fresh int
	for _, c := range cols {
		if !c.GetMapped() {
			unmapped++
		}
		if c.GetNew() {
			fresh++
		}
	}
	fmt.Fprintf(w, "Columns of the file: %d, %d mapped, %d not mapped", len(cols), len(cols)-unmapped, unmapped)
	if fresh > 0 {
		fmt.Fprintf(w, ", %d new since the mapping was last validated", fresh)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	line := func(isNew bool, format string, args ...any) {
		if tty {
			bg := defaultBG
			if isNew {
				bg = greenBG
			}
			fmt.Fprintf(tw, bg+format+reset+"\n", args...)
			return
		}
		fmt.Fprintf(tw, format+"\n", args...)
	}
	line(false, "  \tCOLUMN\tMAPPED\tSAMPLES")
	for _, c := range cols {
		mark := " "
		if c.GetNew() {
			mark = "+ new"
		}
		samples := make([]string, 0, len(c.GetSamples()))
		for _, s := range c.GetSamples() {
			samples = append(samples, strconv.Quote(OneLine(s, 30)))
		}
		line(c.GetNew(), "  %s\t%s\t%s\t%s", mark, OneLine(c.GetName(), 40), yesNo(c.GetMapped()), strings.Join(samples, ", "))
	}
	return tw.Flush()
}

// Detected is one line about the file's dialect as detected, with how sure
// the detection is: `delimiter ";" (97%), encoding iso-8859-1 (80%), gzip`.
func Detected(d *intakev1.DialectDetection) string {
	if d == nil {
		return ""
	}
	var parts []string
	if d.GetDelimiter() != "" {
		parts = append(parts, fmt.Sprintf("delimiter %s (%s sure)", Delimiter(d.GetDelimiter()), percent(d.GetDelimiterConfidence())))
	}
	if d.GetEncoding() != "" {
		enc := d.GetEncoding()
		if d.GetBom() {
			enc += " with BOM"
		}
		parts = append(parts, fmt.Sprintf("encoding %s (%s sure)", enc, percent(d.GetEncodingConfidence())))
	}
	if d.GetGzip() {
		parts = append(parts, "gzip-compressed")
	}
	return strings.Join(parts, ", ")
}

// Delimiter names a delimiter so it can be read: `";"`, `tab`.
func Delimiter(d string) string {
	switch d {
	case "\t":
		return "tab"
	case " ":
		return "space"
	}
	return strconv.Quote(d)
}

func percent(f float64) string {
	return fmt.Sprintf("%.0f%%", f*100)
}

// OneLine collapses white space (newlines too) and cuts s to max runes.
func OneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); max > 0 && len(r) > max {
		return string(r[:max-1]) + "…"
	}
	return s
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func dashQ(s string) string {
	if s == "" {
		return "-"
	}
	return strconv.Quote(s)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// cellWidth is the most runes of a value a preview shows.
const cellWidth = 28

// Preview prints the rows of a preview: per row a line of the raw values
// that feed each attribute and a line of the values as they would be
// stored. A cell that does not convert shows "✗ [n]"; the errors are listed
// below the table by n. mapping tells which column feeds which attribute
// (nil: no raw line).
func Preview(w io.Writer, resp *intakev1.PreviewJobResponse, mapping *intakev1.MappingSpec) error {
	attrs := resp.GetAttributes()
	header := map[string]int{}
	for i, h := range resp.GetHeader() {
		if _, dup := header[h]; !dup {
			header[h] = i
		}
	}
	entries := map[string]*intakev1.MappingEntry{}
	for _, e := range mapping.GetEntries() {
		if _, dup := entries[e.GetAttribute()]; !dup {
			entries[e.GetAttribute()] = e
		}
	}
	raw := func(r *intakev1.PreviewRow, attr string) string {
		e := entries[attr]
		switch e.GetSource().(type) {
		case *intakev1.MappingEntry_Column:
			if i, ok := header[e.GetColumn()]; ok && i < len(r.GetRaw()) {
				return OneLine(r.GetRaw()[i], cellWidth)
			}
			return ""
		case *intakev1.MappingEntry_Constant:
			return "(constant)"
		case *intakev1.MappingEntry_Function:
			return "(function)"
		}
		return ""
	}
	var errs []string
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "ROW\t\t%s\n", strings.Join(attrs, "\t"))
	for _, r := range resp.GetRows() {
		row := strconv.FormatInt(r.GetRow(), 10)
		if mapping != nil {
			cells := make([]string, len(attrs))
			for i, a := range attrs {
				cells[i] = raw(r, a)
			}
			fmt.Fprintf(tw, "%s\traw\t%s\n", row, strings.Join(cells, "\t"))
			row = ""
		}
		if r.GetError() != "" {
			errs = append(errs, fmt.Sprintf("row %d: %s", r.GetRow(), r.GetError()))
			fmt.Fprintf(tw, "%s\tvalue\t✗ [%d] the whole row\n", row, len(errs))
			continue
		}
		cells := make([]string, len(attrs))
		for i, c := range r.GetCells() {
			if i >= len(cells) {
				break
			}
			switch {
			case c.GetError() != "":
				where := ""
				if i < len(attrs) {
					where = ", " + attrs[i]
					if e := entries[attrs[i]]; e.GetColumn() != "" {
						where += fmt.Sprintf(" (column %q)", e.GetColumn())
					}
				}
				errs = append(errs, fmt.Sprintf("row %d%s: %s", r.GetRow(), where, c.GetError()))
				cells[i] = fmt.Sprintf("✗ [%d]", len(errs))
			case c.GetNull():
				cells[i] = "null"
			default:
				cells[i] = OneLine(c.GetValue(), cellWidth)
			}
		}
		fmt.Fprintf(tw, "%s\tvalue\t%s\n", row, strings.Join(cells, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(errs) > 0 {
		fmt.Fprintf(w, "\nValues that do not convert (%d):\n", len(errs))
		for i, e := range errs {
			fmt.Fprintf(w, "  [%d] %s\n", i+1, e)
		}
	}
	return nil
}

// SuggestionYAML is the mapping a SuggestMapping proposes as a YAML
// document with a top-level "mapping:" key, ready to paste into a job file:
// each entry's note says why it was proposed (the API's note, or else the
// suggestion's reason, with its confidence as a comment). dialect is used when the response has
// none (the dialect the request was read with).
func SuggestionYAML(resp *intakev1.SuggestMappingResponse, dialect *intakev1.CsvDialect) ([]byte, error) {
	m := proto.Clone(resp.GetMapping()).(*intakev1.MappingSpec)
	if m == nil {
		m = &intakev1.MappingSpec{}
	}
	if m.GetDialect() == nil && dialect != nil {
		m.Dialect = dialect
	}
	// Entries without a note get the reason as their note, and the
	// confidence as a comment.
	why := map[int32]*intakev1.Suggestion{}
	for _, s := range resp.GetSuggestions() {
		if i := int(s.GetEntry()); i >= 0 && i < len(m.GetEntries()) && m.GetEntries()[i].GetNote() == "" {
			m.GetEntries()[i].Note = s.GetReason()
			why[s.GetEntry()] = s
		}
	}
	js, err := protojson.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode the mapping: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(js, &doc); err != nil {
		return nil, fmt.Errorf("convert the mapping to YAML: %w", err)
	}
	spec := doc.Content[0]
	plain(spec)
	for i := 0; i+1 < len(spec.Content); i += 2 {
		if spec.Content[i].Value != "entries" {
			continue
		}
		for j, e := range spec.Content[i+1].Content {
			if s, ok := why[int32(j)]; ok && s.GetConfidence() > 0 && len(e.Content) >= 2 {
				e.Content[1].LineComment = fmt.Sprintf("# %s sure", percent(s.GetConfidence()))
			}
		}
	}
	root := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{
		{Kind: yaml.ScalarNode, Value: "mapping"}, spec,
	}}
	var head []string
	head = append(head, fmt.Sprintf("Suggested from the file's header (%d columns) and sample rows.", len(resp.GetHeader())))
	if d := Detected(resp.GetDetected()); d != "" {
		head = append(head, "Detected: "+d+".")
	}
	head = append(head, "Check it with: intakectl job validate -f JOB_FILE")
	root.HeadComment = "# " + strings.Join(head, "\n# ")
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, fmt.Errorf("write the YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("write the YAML: %w", err)
	}
	return []byte(b.String()), nil
}

// plain drops the JSON styles (quotes, flow) so the encoder writes block
// YAML, quoting only where needed.
func plain(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		plain(c)
	}
}

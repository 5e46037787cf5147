package api

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/intakehq/intake/pkg/mapping"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// SuggestMapping proposes a mapping from the file's header and a sample:
// the object's keys first, then its other attributes, each matched to a
// column by name (exact, normalised) or a common synonym; every column left
// over becomes a new attribute with its type (and source format) inferred
// from the sample. The result is a MappingSpec ready to validate, each
// entry with a note saying why it was proposed.
func (j *jobService) SuggestMapping(ctx context.Context, req *intakev1.SuggestMappingRequest) (*intakev1.SuggestMappingResponse, error) {
	s := j.s
	sub, err := s.resolveSubject(ctx, req.GetName(), req.GetJob(), false)
	if err != nil {
		return nil, err
	}
	smp, err := s.readSample(ctx, sub.job, suggestRows)
	if err != nil {
		return nil, err
	}
	resp := suggest(sub.model, smp)
	// Read the file as this sample was read: the detected delimiter.
	d := proto.Clone(sub.job.GetMapping().GetDialect()).(*intakev1.CsvDialect)
	if d == nil {
		d = &intakev1.CsvDialect{}
	}
	if d.GetDelimiter() == "" {
		d.Delimiter = smp.dialect.GetDelimiter()
	}
	resp.Mapping.Dialect = d
	s.log.InfoContext(ctx, "mapping suggested", "job", sub.id, "source", smp.source,
		"columns", len(smp.header), "entries", len(resp.GetMapping().GetEntries()))
	return resp, nil
}

// pairing is a column proposed for an attribute.
type pairing struct {
	col   int
	attr  *intakev1.Attribute
	match mapping.Match
}

// suggest builds the proposal for model from a sample of the file.
func suggest(model *intakev1.DataObject, smp *sample) *intakev1.SuggestMappingResponse {
	header := smp.header
	values := make([][]string, len(header))
	for _, r := range smp.rows {
		for i := range header {
			if i < len(r.fields) {
				values[i] = append(values[i], r.fields[i])
			}
		}
	}
	// Every plausible (column, attribute) pair with its confidence.
	var pairs []pairing
	for ci, h := range header {
		for _, a := range model.GetAttributes() {
			one := &intakev1.DataObject{Name: model.GetName(), Keys: model.GetKeys(), Attributes: []*intakev1.Attribute{a}}
			if m, ok := mapping.MatchAttribute(h, one); ok {
				pairs = append(pairs, pairing{col: ci, attr: a, match: m})
			}
		}
	}
	isKey := func(a *intakev1.Attribute) bool {
		return a.GetKey() || slices.Contains(model.GetKeys(), a.GetAttributeId())
	}
	// Keys choose first (in key order), then the best matches.
	sort.SliceStable(pairs, func(i, j int) bool {
		ki, kj := isKey(pairs[i].attr), isKey(pairs[j].attr)
		if ki != kj {
			return ki
		}
		if ki {
			pi := slices.Index(model.GetKeys(), pairs[i].attr.GetAttributeId())
			pj := slices.Index(model.GetKeys(), pairs[j].attr.GetAttributeId())
			if pi != pj {
				return pi < pj
			}
		}
		if pairs[i].match.Confidence != pairs[j].match.Confidence {
			return pairs[i].match.Confidence > pairs[j].match.Confidence
		}
		return pairs[i].col < pairs[j].col
	})
	colTaken := make([]bool, len(header))
	attrTaken := map[string]bool{}
	chosen := map[string]pairing{}
	for _, p := range pairs {
		id := p.attr.GetAttributeId()
		if colTaken[p.col] || attrTaken[id] {
			continue
		}
		colTaken[p.col], attrTaken[id] = true, true
		chosen[id] = p
	}

	// A key no column names: the first column left whose sample values
	// look like identifiers (every one present, unique, no spaces, with a
	// digit), e.g. "Kundennr" holding "DE-2001".
	for _, k := range model.GetKeys() {
		if attrTaken[k] {
			continue
		}
		a := attribute(model, k)
		if a == nil {
			continue
		}
		for ci := range header {
			if !colTaken[ci] && identifiers(values[ci]) {
				colTaken[ci], attrTaken[k] = true, true
				chosen[k] = pairing{col: ci, attr: a, match: mapping.Match{Attribute: k, Reason: "values look like identifiers", Confidence: 0.5}}
				break
			}
		}
	}

	resp := &intakev1.SuggestMappingResponse{Mapping: &intakev1.MappingSpec{}, Header: header, Detected: smp.detected}
	addEntry := func(e *intakev1.MappingEntry, s *intakev1.Suggestion) {
		s.Entry = int32(len(resp.Mapping.Entries))
		resp.Mapping.Entries = append(resp.Mapping.Entries, e)
		resp.Suggestions = append(resp.Suggestions, s)
	}
	// Keys first, then the other attributes, in the model's order.
	ordered := slices.Clone(model.GetAttributes())
	sort.SliceStable(ordered, func(i, j int) bool { return isKey(ordered[i]) && !isKey(ordered[j]) })
	for _, a := range ordered {
		p, ok := chosen[a.GetAttributeId()]
		if !ok {
			continue
		}
		col := header[p.col]
		reason := p.match.Reason
		if isKey(a) {
			reason = "key, " + reason
		}
		format, formatNote := sourceFormat(a.GetType(), values[p.col])
		e := &intakev1.MappingEntry{
			Attribute:    a.GetAttributeId(),
			Source:       &intakev1.MappingEntry_Column{Column: col},
			SourceFormat: format,
			Note:         fmt.Sprintf("suggested: column %q, %s (confidence %.2f)%s", col, reason, p.match.Confidence, formatNote),
		}
		addEntry(e, &intakev1.Suggestion{Column: col, Reason: reason, Confidence: p.match.Confidence})
	}

	// Every other column: a new attribute of the inferred type.
	taken := map[string]bool{}
	for _, a := range model.GetAttributes() {
		taken[a.GetAttributeId()] = true
	}
	for ci, col := range header {
		if colTaken[ci] {
			continue
		}
		id := mapping.NewAttributeID(col)
		if id == "" {
			continue // no letter or digit to name it by
		}
		for n := 2; taken[id]; n++ {
			base := id
			if len(base) > 59 {
				base = base[:59]
			}
			id = fmt.Sprintf("%s_%d", strings.TrimRight(base, "_"), n)
		}
		taken[id] = true
		typ, format, conf := mapping.InferType(values[ci])
		switch typ {
		case intakev1.AttributeType_ATTRIBUTE_TYPE_TEXT, intakev1.AttributeType_ATTRIBUTE_TYPE_NUMBER,
			intakev1.AttributeType_ATTRIBUTE_TYPE_CURRENCY, intakev1.AttributeType_ATTRIBUTE_TYPE_DATE,
			intakev1.AttributeType_ATTRIBUTE_TYPE_TIMESTAMP:
		default:
			// A new attribute is Text, Number, Currency, Date or Timestamp;
			// anything else (yes/no words) is proposed as Text.
			typ, format = intakev1.AttributeType_ATTRIBUTE_TYPE_TEXT, ""
		}
		resp.Mapping.NewAttributes = append(resp.Mapping.NewAttributes, &intakev1.NewAttribute{
			AttributeId: id, DisplayName: strings.TrimSpace(col), Type: typ,
		})
		note := fmt.Sprintf("suggested: new attribute for column %q, %s inferred from the sample", col, typeWord(typ))
		if format != "" {
			note += fmt.Sprintf(" (format %s)", format)
		}
		addEntry(&intakev1.MappingEntry{
			Attribute:    id,
			Source:       &intakev1.MappingEntry_Column{Column: col},
			SourceFormat: format,
			Note:         note,
		}, &intakev1.Suggestion{Column: col, Reason: "new attribute", Confidence: conf})
	}
	return resp
}

// sourceFormat proposes the source format of a column feeding an attribute
// of type t, from its sample values, and a note about it: the pattern of the
// sample's dates or timestamps for a Date or Timestamp attribute (a date
// pattern reads a timestamp attribute at midnight, a timestamp pattern a
// date attribute's day), the number format for a Number or Currency one.
func sourceFormat(t intakev1.AttributeType, values []string) (string, string) {
	switch t {
	case intakev1.AttributeType_ATTRIBUTE_TYPE_DATE, intakev1.AttributeType_ATTRIBUTE_TYPE_TIMESTAMP,
		intakev1.AttributeType_ATTRIBUTE_TYPE_NUMBER, intakev1.AttributeType_ATTRIBUTE_TYPE_CURRENCY:
	default:
		return "", ""
	}
	it, format, _ := mapping.InferType(values)
	if format == "" {
		return "", ""
	}
	if isTemporal(t) == isTemporal(it) && (isTemporal(t) || isNumeric(it)) {
		return format, fmt.Sprintf("; format %s inferred from the sample", format)
	}
	return "", ""
}

// isTemporal reports whether t is Date or Timestamp.
func isTemporal(t intakev1.AttributeType) bool {
	return t == intakev1.AttributeType_ATTRIBUTE_TYPE_DATE || t == intakev1.AttributeType_ATTRIBUTE_TYPE_TIMESTAMP
}

// isNumeric reports whether t is Number or Currency.
func isNumeric(t intakev1.AttributeType) bool {
	return t == intakev1.AttributeType_ATTRIBUTE_TYPE_NUMBER || t == intakev1.AttributeType_ATTRIBUTE_TYPE_CURRENCY
}

// typeWord names an attribute type for a note: "date".
func typeWord(t intakev1.AttributeType) string {
	return strings.ToLower(strings.TrimPrefix(t.String(), "ATTRIBUTE_TYPE_"))
}

// attribute returns the model's attribute with id, or nil.
func attribute(model *intakev1.DataObject, id string) *intakev1.Attribute {
	for _, a := range model.GetAttributes() {
		if a.GetAttributeId() == id {
			return a
		}
	}
	return nil
}

// identifiers reports whether sample values look like the identifiers of
// records: at least one, every one present and unique, without spaces, with
// a digit.
func identifiers(values []string) bool {
	if len(values) == 0 {
		return false
	}
	seen := make(map[string]bool, len(values))
	for _, v := range values {
		v = strings.TrimSpace(v)
		if v == "" || seen[v] || len(v) > 64 || strings.ContainsAny(v, " \t") || !strings.ContainsAny(v, "0123456789") {
			return false
		}
		seen[v] = true
	}
	return true
}

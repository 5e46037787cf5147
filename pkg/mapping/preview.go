package mapping

import (
	"strconv"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// Cell is one attribute's value of a previewed record.
type Cell struct {
	// Value is the value as it would be stored, as text: a decimal as
	// "1234.5", a date as "2024-03-01", a timestamp as RFC 3339 in UTC
	// ("2024-03-01T10:15:00Z"), a boolean as "true". Empty when Null or
	// when the value does not convert.
	Value string
	// Null is set when the value is null (an empty cell, a null marker, an
	// empty function result).
	Null bool
	// Err says why the value does not convert; empty when it does.
	Err string
}

// Proto returns the cell as the API's PreviewCell.
func (c Cell) Proto() *intakev1.PreviewCell {
	return &intakev1.PreviewCell{Value: c.Value, Null: c.Null, Error: c.Err}
}

// Preview maps one record, numbered row in the file, and returns one cell
// per attribute (in the order of Attributes), each with its converted value
// or its own error, so a preview can show every cell of a row that would be
// rejected. A record that cannot be mapped at all (a wrong number of fields)
// returns nil cells and that RowError.
func (p *Plan) Preview(row int64, record []string) ([]Cell, *RowError) {
	if len(record) != len(p.header) {
		e := fieldCountError(row, len(record), len(p.header))
		return nil, &e
	}
	m := p.newMapper(1)
	if m.act != nil {
		m.act.record, m.act.row = record, row
	}
	cells := make([]Cell, len(p.entries))
	for j := range p.entries {
		e := &p.entries[j]
		if e.src == srcConstant {
			if e.constant.GetKind() == nil {
				cells[j] = Cell{Null: true}
			} else {
				cells[j] = Cell{Value: Text(e.constant)}
			}
			continue
		}
		c, reason := m.cell(e, record)
		switch {
		case reason != "":
			cells[j] = Cell{Err: reason}
		case c.k == kNull:
			cells[j] = Cell{Null: true}
		default:
			cells[j] = Cell{Value: c.text()}
		}
	}
	return cells, nil
}

// text is the canonical text of a converted cell.
func (c cell) text() string {
	switch c.k {
	case kText, kDecimal:
		return c.s
	case kDate:
		return DateText(c.d)
	case kBool:
		return strconv.FormatBool(c.b)
	case kTimestamp:
		return TimestampText(c.t)
	}
	return ""
}

// Finding codes of Check, about one value of a sample row.
const (
	// CodeValueDoesNotConvert: a cell does not convert to its attribute's
	// type (or a function's result does not, or the function fails).
	CodeValueDoesNotConvert Code = "VALUE_DOES_NOT_CONVERT"
	// CodeKeyEmpty: a key is empty in a row.
	CodeKeyEmpty Code = "KEY_EMPTY"
	// CodeFieldCount: a row has more or fewer fields than the header.
	CodeFieldCount Code = "FIELD_COUNT"
)

// Check maps one sample record, numbered row in the file, and returns a
// finding for every value that does not convert (code VALUE_DOES_NOT_CONVERT,
// or KEY_EMPTY, or FIELD_COUNT for the whole record), with the entry, the
// attribute, the column, the row and the raw value. Entries are numbered as
// in the spec, since a compiled plan has one attribute per entry.
func (p *Plan) Check(row int64, record []string) []*intakev1.Finding {
	cells, rerr := p.Preview(row, record)
	if rerr != nil {
		return []*intakev1.Finding{{
			Severity: intakev1.FindingSeverity_FINDING_SEVERITY_ERROR,
			Code:     string(CodeFieldCount), Entry: -1, Row: row,
			Message: rerr.Error(),
		}}
	}
	var out []*intakev1.Finding
	for j, c := range cells {
		if c.Err == "" {
			continue
		}
		e := &p.entries[j]
		code := CodeValueDoesNotConvert
		if e.key && c.Err == "key "+e.attr+" is empty" {
			code = CodeKeyEmpty
		}
		f := &intakev1.Finding{
			Severity:  intakev1.FindingSeverity_FINDING_SEVERITY_ERROR,
			Code:      string(code),
			Entry:     int32(j),
			Attribute: e.attr,
			Column:    e.column,
			Row:       row,
			Message:   RowError{Row: row, Column: e.column, Reason: c.Err}.Error(),
		}
		if e.col >= 0 {
			f.Value = record[e.col]
		}
		out = append(out, f)
	}
	return out
}

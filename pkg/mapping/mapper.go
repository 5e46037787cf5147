package mapping

import (
	"strconv"

	pipelinev1 "github.com/intakehq/intake/proto/gen/intake/pipeline/v1"
)

// Mapper maps records through a plan. It allocates rows and values in
// blocks, so a row costs a small fraction of an allocation plus one string per
// reformatted number. The rows it returns stay valid until Release; a Mapper
// is not safe for concurrent use.
type Mapper struct {
	p      *Plan
	hint   int
	np     numberParser
	act    *rowActivation // the functions' variables; nil without functions
	buf    []byte         // a function's result being built
	blocks []*block
	bi, ri int // current block, next row in it
}

// block holds the rows and values of up to len(rows) rows.
type block struct {
	rows   []pipelinev1.Row
	values []pipelinev1.Value
	ptrs   []*pipelinev1.Value
	texts  []pipelinev1.Value_Text
	decs   []pipelinev1.Value_Decimal
	dates  []pipelinev1.Value_Date
	stamps []pipelinev1.Value_Timestamp
}

// defaultBlock is the number of rows a Mapper allocates at once when it was
// not told how many to expect (or got more).
const defaultBlock = 256

// NewMapper returns a Mapper for the plan, reusing the memory of a released
// one when it can. rowsHint is how many rows it will likely map (e.g. the
// records of a chunk); 0 if unknown.
func (p *Plan) NewMapper(rowsHint int) *Mapper {
	if m, ok := p.mappers.Get().(*Mapper); ok {
		return m
	}
	b := defaultBlock
	if rowsHint > 0 {
		b = min(rowsHint, 1<<16)
	}
	return p.newMapper(b)
}

func (p *Plan) newMapper(hint int) *Mapper {
	m := &Mapper{p: p, hint: hint}
	if p.hasFn {
		m.act = newRowActivation(p)
	}
	return m
}

// Release gives the Mapper's memory back to its plan for the next
// NewMapper. The rows it returned must not be used any more (for example,
// once their batch is published).
func (m *Mapper) Release() {
	m.bi, m.ri = 0, 0
	if m.act != nil {
		m.act.record = nil
	}
	m.p.mappers.Put(m)
}

// next returns the block and index of the next free row.
func (m *Mapper) next() (*block, int) {
	for {
		if m.bi < len(m.blocks) {
			if b := m.blocks[m.bi]; m.ri < len(b.rows) {
				return b, m.ri
			}
			m.bi, m.ri = m.bi+1, 0
			continue
		}
		size := defaultBlock
		if len(m.blocks) == 0 {
			size = m.hint
		}
		p, n := m.p, len(m.p.entries)
		m.blocks = append(m.blocks, &block{
			rows:   make([]pipelinev1.Row, size),
			values: make([]pipelinev1.Value, size*n),
			ptrs:   make([]*pipelinev1.Value, size*n),
			texts:  make([]pipelinev1.Value_Text, size*p.nText),
			decs:   make([]pipelinev1.Value_Decimal, size*p.nDecimal),
			dates:  make([]pipelinev1.Value_Date, size*p.nDate),
			stamps: make([]pipelinev1.Value_Timestamp, size*p.nStamp),
		})
	}
}

// MapRecord maps one record, numbered row in the file. It returns the row,
// or nil when the record is rejected; the record's errors (every bad value)
// are appended to errs.
func (m *Mapper) MapRecord(row int64, record []string, errs []RowError) (*pipelinev1.Row, []RowError) {
	p := m.p
	if len(record) != len(p.header) {
		return nil, append(errs, fieldCountError(row, len(record), len(p.header)))
	}
	if m.act != nil {
		m.act.record, m.act.row = record, row
	}
	b, ri := m.next()
	n := len(p.entries)
	ptrs := b.ptrs[ri*n : (ri+1)*n : (ri+1)*n]
	values := b.values[ri*n : (ri+1)*n]
	texts, decs, dates, stamps := b.texts[ri*p.nText:], b.decs[ri*p.nDecimal:], b.dates[ri*p.nDate:], b.stamps[ri*p.nStamp:]
	bad := false
	for j := range p.entries {
		e := &p.entries[j]
		v := &values[j]
		ptrs[j] = v
		if e.src == srcConstant {
			v.Kind = e.constant.Kind
			continue
		}
		c, reason := m.cell(e, record)
		if reason != "" {
			bad = true
			errs = append(errs, RowError{Row: row, Column: e.column, Reason: reason})
			continue
		}
		switch c.k {
		case kNull:
			v.Kind = nil
		case kText:
			t := &texts[e.slot]
			t.Text = c.s
			v.Kind = t
		case kDecimal:
			d := &decs[e.slot]
			d.Decimal = c.s
			v.Kind = d
		case kDate:
			d := &dates[e.slot]
			d.Date = c.d
			v.Kind = d
		case kTimestamp:
			t := &stamps[e.slot]
			t.Timestamp = c.t
			v.Kind = t
		case kBool:
			if c.b {
				v.Kind = p.boolTrue.Kind
			} else {
				v.Kind = p.boolFalse.Kind
			}
		}
	}
	if bad {
		return nil, errs
	}
	r := &b.rows[ri]
	r.Row = row
	r.Values = ptrs
	m.ri++
	return r, errs
}

// cell converts the value of a column or function entry. A null value of
// a key is an error.
func (m *Mapper) cell(e *entry, record []string) (cell, string) {
	var c cell
	if e.src == srcFunction {
		var reason string
		if c, reason = m.eval(e); reason != "" {
			return c, reason
		}
	} else {
		p := m.p
		raw := record[e.col]
		s := trimSpace(raw)
		if s == "" || (len(p.nulls) > 0 && p.isNull(s)) {
			c = cell{k: kNull}
		} else {
			if e.conv.keepsSpaces() && !p.trim {
				s = raw // text is kept as written
			}
			var reason string
			if c, reason = e.conv.convert(&m.np, s); reason != "" {
				return c, reason
			}
		}
	}
	if c.k == kNull && e.key {
		return c, "key " + e.attr + " is empty"
	}
	return c, ""
}

func fieldCountError(row int64, got, want int) RowError {
	return RowError{Row: row, Reason: strconv.Itoa(got) + " fields, the header has " + strconv.Itoa(want)}
}

// isNull reports whether a trimmed cell is one of the dialect's null values.
func (p *Plan) isNull(s string) bool {
	for _, nv := range p.nulls {
		if len(nv) == len(s) && nv == s {
			return true
		}
	}
	return false
}

// MapRecord maps one record with a throwaway Mapper: convenient for a
// preview or a validation of a few rows. It returns the record's values in
// the order of Attributes, or nil and the record's errors.
func (p *Plan) MapRecord(row int64, record []string) ([]*pipelinev1.Value, []RowError) {
	m := p.newMapper(1)
	r, errs := m.MapRecord(row, record, nil)
	if r == nil {
		return nil, errs
	}
	return r.Values, nil
}

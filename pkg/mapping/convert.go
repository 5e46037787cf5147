package mapping

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	pipelinev1 "github.com/intakehq/intake/proto/gen/intake/pipeline/v1"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// kind is the kind of a converted cell, i.e. of its Value.
type kind uint8

const (
	kNull kind = iota
	kText
	kDecimal
	kDate
	kBool
	kTimestamp
)

// cell is a converted value before it is wrapped in a Value.
type cell struct {
	k kind
	s string
	d int32
	b bool
	t int64 // a timestamp: microseconds since the epoch
}

// wrap allocates the Value of a cell (for constants; rows use a Mapper).
func (c cell) wrap(p *Plan) *pipelinev1.Value {
	switch c.k {
	case kText:
		return &pipelinev1.Value{Kind: &pipelinev1.Value_Text{Text: c.s}}
	case kDecimal:
		return &pipelinev1.Value{Kind: &pipelinev1.Value_Decimal{Decimal: c.s}}
	case kDate:
		return &pipelinev1.Value{Kind: &pipelinev1.Value_Date{Date: c.d}}
	case kBool:
		if c.b {
			return p.boolTrue
		}
		return p.boolFalse
	case kTimestamp:
		return &pipelinev1.Value{Kind: &pipelinev1.Value_Timestamp{Timestamp: c.t}}
	}
	return &pipelinev1.Value{}
}

// converter converts cells to one attribute type.
type converter struct {
	typ  intakev1.AttributeType
	num  numberFormat
	date dateFormat
	// loc is the time zone of timestamps written without one.
	loc *time.Location
	// custom is whether the source format is not the default one (for messages).
	custom bool
}

// newConverter compiles the conversion of cells in format to type t; loc
// is the time zone of timestamps written without one (nil: UTC).
func newConverter(t intakev1.AttributeType, format string, loc *time.Location) (converter, error) {
	c := converter{typ: t, custom: strings.TrimSpace(format) != ""}
	var err error
	switch t {
	case intakev1.AttributeType_ATTRIBUTE_TYPE_TEXT, intakev1.AttributeType_ATTRIBUTE_TYPE_BOOLEAN, intakev1.AttributeType_ATTRIBUTE_TYPE_FOREIGN_KEY:
		if c.custom {
			err = fmt.Errorf("%q does not apply to a %s attribute (only dates, timestamps, numbers and currency have a source format)", format, typeName(t))
		}
	case intakev1.AttributeType_ATTRIBUTE_TYPE_NUMBER:
		c.num, err = parseNumberFormat(format, false)
	case intakev1.AttributeType_ATTRIBUTE_TYPE_CURRENCY:
		c.num, err = parseNumberFormat(format, true)
	case intakev1.AttributeType_ATTRIBUTE_TYPE_DATE:
		c.date, err = parseDateFormat(format)
	case intakev1.AttributeType_ATTRIBUTE_TYPE_TIMESTAMP:
		c.date, err = parseDateFormat(format)
		if c.date.kind == dateISO && !c.custom {
			c.date.name = timestampISOName
		}
		c.loc = loc
		if c.loc == nil {
			c.loc = time.UTC
		}
	default:
		err = fmt.Errorf("cannot be used: the attribute's type %v is not supported", t)
	}
	return c, err
}

// wrapper is the kind of the cells the converter makes.
func (c *converter) wrapper() kind {
	switch c.typ {
	case intakev1.AttributeType_ATTRIBUTE_TYPE_TEXT, intakev1.AttributeType_ATTRIBUTE_TYPE_FOREIGN_KEY:
		return kText
	case intakev1.AttributeType_ATTRIBUTE_TYPE_NUMBER, intakev1.AttributeType_ATTRIBUTE_TYPE_CURRENCY:
		return kDecimal
	case intakev1.AttributeType_ATTRIBUTE_TYPE_DATE:
		return kDate
	case intakev1.AttributeType_ATTRIBUTE_TYPE_BOOLEAN:
		return kBool
	case intakev1.AttributeType_ATTRIBUTE_TYPE_TIMESTAMP:
		return kTimestamp
	}
	return kNull
}

// keepsSpaces reports whether values of the type are kept as written, with
// their surrounding spaces (text and foreign keys, unless the dialect trims).
func (c *converter) keepsSpaces() bool {
	return c.typ == intakev1.AttributeType_ATTRIBUTE_TYPE_TEXT || c.typ == intakev1.AttributeType_ATTRIBUTE_TYPE_FOREIGN_KEY
}

func typeName(t intakev1.AttributeType) string {
	if t == intakev1.AttributeType_ATTRIBUTE_TYPE_FOREIGN_KEY {
		return "foreign key"
	}
	return strings.ToLower(strings.TrimPrefix(t.String(), "ATTRIBUTE_TYPE_"))
}

// convert converts a non-null cell: for text and foreign keys the cell as
// written (or trimmed, when the dialect trims), for the other types the cell
// trimmed of spaces. It returns the cell, or the reason
// it is not valid.
func (c *converter) convert(np *numberParser, s string) (cell, string) {
	switch c.typ {
	case intakev1.AttributeType_ATTRIBUTE_TYPE_TEXT:
		if reason := checkText(s); reason != "" {
			return cell{}, reason
		}
		return cell{k: kText, s: s}, ""
	case intakev1.AttributeType_ATTRIBUTE_TYPE_FOREIGN_KEY:
		if reason := checkText(s); reason != "" {
			return cell{}, "not a valid reference: " + reason
		}
		return cell{k: kText, s: s}, ""
	case intakev1.AttributeType_ATTRIBUTE_TYPE_NUMBER:
		if v, ok := np.parse(&c.num, s); ok {
			return cell{k: kDecimal, s: v}, ""
		}
		return cell{}, c.reason("not a number", s)
	case intakev1.AttributeType_ATTRIBUTE_TYPE_CURRENCY:
		if v, ok := np.parseCurrency(&c.num, s); ok {
			return cell{k: kDecimal, s: v}, ""
		}
		return cell{}, c.reason("not a currency amount", s)
	case intakev1.AttributeType_ATTRIBUTE_TYPE_DATE:
		d, ok, detail := c.date.parse(s)
		if ok {
			return cell{k: kDate, d: d}, ""
		}
		reason := quoteValue(s) + " does not match date format " + c.date.name
		if detail != "" {
			reason += ": " + detail
		}
		return cell{}, reason
	case intakev1.AttributeType_ATTRIBUTE_TYPE_TIMESTAMP:
		us, ok, detail := c.date.parseTimestamp(s, c.loc)
		if ok {
			return cell{k: kTimestamp, t: us}, ""
		}
		reason := quoteValue(s) + " does not match timestamp format " + c.date.name
		if detail != "" {
			reason += ": " + detail
		}
		return cell{}, reason
	case intakev1.AttributeType_ATTRIBUTE_TYPE_BOOLEAN:
		if b, ok := parseBool(s); ok {
			return cell{k: kBool, b: b}, ""
		}
		return cell{}, "not a boolean: " + quoteValue(s) + " (use true/false, yes/no, y/n or 1/0)"
	}
	return cell{}, "unsupported attribute type"
}

func (c *converter) reason(what, s string) string {
	if c.custom {
		return what + " in the format " + c.num.String() + ": " + quoteValue(s)
	}
	return what + ": " + quoteValue(s)
}

// checkText returns why s cannot be stored as text, or "".
func checkText(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == 0 || c >= utf8.RuneSelf {
			return checkTextSlow(s)
		}
	}
	return ""
}

func checkTextSlow(s string) string {
	if !utf8.ValidString(s) {
		for i := 0; i < len(s); {
			r, w := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && w == 1 {
				return "invalid UTF-8 byte at position " + strconv.Itoa(i+1) + fmt.Sprintf(" (0x%02x)", s[i])
			}
			i += w
		}
	}
	if i := strings.IndexByte(s, 0); i >= 0 {
		return "NUL byte at position " + strconv.Itoa(i+1) + " (text cannot hold NUL)"
	}
	return ""
}

// parseBool reads true/false, yes/no, y/n, t/f, on/off and 1/0 in any case.
func parseBool(s string) (bool, bool) {
	switch len(s) {
	case 1:
		switch s[0] {
		case '1', 't', 'T', 'y', 'Y':
			return true, true
		case '0', 'f', 'F', 'n', 'N':
			return false, true
		}
	case 2:
		if strings.EqualFold(s, "no") {
			return false, true
		}
		if strings.EqualFold(s, "on") {
			return true, true
		}
	case 3:
		if strings.EqualFold(s, "yes") {
			return true, true
		}
		if strings.EqualFold(s, "off") {
			return false, true
		}
	case 4:
		if strings.EqualFold(s, "true") {
			return true, true
		}
	case 5:
		if strings.EqualFold(s, "false") {
			return false, true
		}
	}
	return false, false
}

// Text returns the value as text, canonically: a decimal as "-1234.5", a
// date as "2024-03-01", a timestamp as RFC 3339 in UTC
// ("2024-03-01T10:15:00Z"), a boolean as "true" or "false", text as it is.
// A null value is "".
func Text(v *pipelinev1.Value) string {
	switch k := v.GetKind().(type) {
	case *pipelinev1.Value_Text:
		return k.Text
	case *pipelinev1.Value_Decimal:
		return k.Decimal
	case *pipelinev1.Value_Date:
		return DateText(k.Date)
	case *pipelinev1.Value_Boolean:
		return strconv.FormatBool(k.Boolean)
	case *pipelinev1.Value_Timestamp:
		return TimestampText(k.Timestamp)
	}
	return ""
}

// DateText formats days since 1970-01-01 as yyyy-MM-dd.
func DateText(days int32) string {
	y, m, d := civilFromDays(int(days))
	b := make([]byte, 0, 10)
	if y < 0 {
		b = append(b, '-')
		y = -y
	}
	b = appendDigits(b, y, 4)
	b = append(b, '-')
	b = appendDigits(b, m, 2)
	b = append(b, '-')
	b = appendDigits(b, d, 2)
	return string(b)
}

func appendDigits(b []byte, v, width int) []byte {
	s := strconv.Itoa(v)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

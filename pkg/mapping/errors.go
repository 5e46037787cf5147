package mapping

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// Code classifies a problem of a mapping spec.
type Code string

// Problem codes of a SpecError.
const (
	// CodeKeyNotMapped: a key attribute of the object has no entry.
	CodeKeyNotMapped Code = "KEY_NOT_MAPPED"
	// CodeMissingAttribute: an entry names no target attribute.
	CodeMissingAttribute Code = "MISSING_ATTRIBUTE"
	// CodeUnknownAttribute: an entry names an attribute the object does not have.
	CodeUnknownAttribute Code = "UNKNOWN_ATTRIBUTE"
	// CodeDuplicateAttribute: two entries fill the same attribute.
	CodeDuplicateAttribute Code = "DUPLICATE_ATTRIBUTE"
	// CodeNoSource: an entry has neither a column nor a constant.
	CodeNoSource Code = "NO_SOURCE"
	// CodeColumnNotInHeader: a mapped column is not in the file's header.
	CodeColumnNotInHeader Code = "COLUMN_NOT_IN_HEADER"
	// CodeAmbiguousColumn: a mapped column appears more than once in the header.
	CodeAmbiguousColumn Code = "AMBIGUOUS_COLUMN"
	// CodeInvalidFormat: a source format is not valid for the attribute's type.
	CodeInvalidFormat Code = "INVALID_FORMAT"
	// CodeInvalidConstant: a constant does not convert to the attribute's type.
	CodeInvalidConstant Code = "INVALID_CONSTANT"
	// CodeInvalidDialect: the CSV dialect is not usable (e.g. a two-character delimiter).
	CodeInvalidDialect Code = "INVALID_DIALECT"
	// CodeRequiredAnyNotMapped: none of the attributes of which the object
	// needs at least one (DataObject.required_any) is mapped.
	CodeRequiredAnyNotMapped Code = "REQUIRED_ANY_NOT_MAPPED"
	// CodeFunctionDoesNotCompile: a function entry does not parse or type-check.
	CodeFunctionDoesNotCompile Code = "FUNCTION_DOES_NOT_COMPILE"
	// CodeFunctionType: a function yields a type that is not a string, a
	// number, a bool or null, or one that the attribute cannot take.
	CodeFunctionType Code = "FUNCTION_TYPE"
	// CodeInvalidNewAttribute: a new attribute declared by the spec is not
	// valid (its id, its type, or a clash with an existing attribute).
	CodeInvalidNewAttribute Code = "INVALID_NEW_ATTRIBUTE"
)

// Problem is one thing wrong with a mapping spec.
type Problem struct {
	// Entry is the 0-based index of the entry in MappingSpec.entries, or -1
	// when the problem is not about one entry (a key not mapped, the dialect).
	// Messages count entries from 1, as a user does.
	Entry int
	// Attribute is the target attribute concerned, if any.
	Attribute string
	// Column is the source column concerned, if any.
	Column string
	Code   Code
	// Message says what is wrong and where, for the user.
	Message string
}

// Finding returns the problem as a finding of ValidateMapping or
// PreviewJob (severity error).
func (p Problem) Finding() *intakev1.Finding {
	return &intakev1.Finding{
		Severity:  intakev1.FindingSeverity_FINDING_SEVERITY_ERROR,
		Code:      string(p.Code),
		Entry:     int32(p.Entry),
		Attribute: p.Attribute,
		Column:    p.Column,
		Message:   p.Message,
	}
}

// Findings returns the problems of err as findings when it is a
// *SpecError, and nil otherwise.
func Findings(err error) []*intakev1.Finding {
	var se *SpecError
	if !errors.As(err, &se) {
		return nil
	}
	out := make([]*intakev1.Finding, len(se.Problems))
	for i, p := range se.Problems {
		out[i] = p.Finding()
	}
	return out
}

// SpecError is every problem found in a mapping spec by Compile.
type SpecError struct {
	Problems []Problem
}

// Error joins the problems' messages.
func (e *SpecError) Error() string {
	if len(e.Problems) == 1 {
		return "invalid mapping: " + e.Problems[0].Message
	}
	var b strings.Builder
	fmt.Fprintf(&b, "invalid mapping (%d problems): ", len(e.Problems))
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.Message)
	}
	return b.String()
}

// RowError is a rejected row, or one bad value of a rejected row.
type RowError struct {
	// Row is the record number in the file, the header being row 1 (by default).
	Row int64
	// Column is the source column of the bad value; empty when the error is
	// about the whole row.
	Column string
	Reason string
}

// Error formats the error as "row 7, column \"Amount\": reason".
func (e RowError) Error() string {
	if e.Column == "" {
		return "row " + strconv.FormatInt(e.Row, 10) + ": " + e.Reason
	}
	return "row " + strconv.FormatInt(e.Row, 10) + ", column " + strconv.Quote(e.Column) + ": " + e.Reason
}

// Proto returns the error as the API's RowError.
func (e RowError) Proto() *intakev1.RowError {
	return &intakev1.RowError{Row: e.Row, Column: e.Column, Reason: e.Reason}
}

// quoteValue quotes a cell for an error message, shortened when long.
func quoteValue(s string) string {
	const max = 64
	if len(s) > max {
		cut := max
		for cut > 0 && !isRuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "…"
	}
	return strconv.Quote(s)
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

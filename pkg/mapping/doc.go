// Package mapping is the row mapping engine: it turns the records of a CSV
// file into typed rows of an object, following a job's mapping spec.
//
// A spec is compiled once per run against the run's data model (an
// intakev1.DataObject: keys, required_any, every attribute with its type)
// and the file's header ([Compile], or [CompileWith] to read timestamps
// without a zone in the job's time zone, [JobLocation]); attributes the spec declares in
// new_attributes count as attributes of the model. The resulting [Plan] is
// immutable and safe for concurrent use. Compile reports every problem of
// the job at once in a [*SpecError] (a key not mapped, none of required_any
// mapped, an unknown attribute, a column missing from the header, a bad
// source format, a function that does not compile, ...), so the user can
// fix them in one go; [Problem.Finding] turns them into the API's findings.
//
// Rows are converted by a [Mapper], one per goroutine, which hands out typed
// values from blocks it allocates in bulk, and reformatted numbers and
// function results from string arenas, so mapping a row costs almost no
// allocations; [Mapper.Release] gives the blocks back to the plan for the
// next Mapper once the rows are no longer used (e.g. after a chunk's batch is
// published). A bad cell rejects its whole row; every bad cell of the row is
// reported as a [RowError] with the row number, the source column and the
// reason. [Plan.Preview] and [Plan.Check] map one record for a preview or a
// validation, with a value or an error per cell.
//
// An entry's value comes from a column, a constant (converted once, by
// Compile) or a function: a CEL expression (cel.dev/cel-go) over the row,
// compiled and type-checked by Compile, never per row. Its variables are
// col, a map(string, string) of every column by header name; each column
// whose name is an identifier and not a reserved word, as a string; and row,
// the record number. A null cell reads as "" (trimmed when the dialect trims).
// It must yield a string, a number, a bool or null: strings are converted
// like a cell (through the entry's source format, "" is null), numbers and
// bools directly. Comprehension macros are not available (a function cannot
// loop), and its cost per row is bounded. A function that
// fails on a row (no such key, division by zero) rejects the row with the
// reason "function: ...". A function made only of cells and string literals
// joined by '+' is evaluated natively, with CEL's result.
//
// Conversions by attribute type:
//   - Text: any valid UTF-8 without NUL bytes, kept as written (trimmed when
//     the dialect's trim_space is set).
//   - Foreign key: the key of a record of another object, stored like text.
//   - Number: a decimal, written with the separators of the source format
//     ("1,234.56" by default, which also accepts plain "1234.56"; "1.234,56";
//     "1 234,56"; an exponent such as "1.5e3" is accepted). Output is a
//     canonical decimal string ("-1234.50"): no thousands separators, a dot as
//     the decimal point, no exponent, no leading zeros, the written scale kept.
//   - Currency: a number with an optional currency symbol or code before or
//     after it ("$1,234.56", "1.234,56 €", "USD 12") and parentheses for
//     negative amounts ("($12.00)").
//   - Date: days since 1970-01-01. Source formats are patterns of yyyy, yy,
//     MMMM, MMM, MM, M, dd, d, HH, H, hh, h, mm, ss, SSS (a fraction of a
//     second, any number of digits), a (AM/PM) and XXX or Z (a zone: Z, UTC,
//     +02, +0200 or +02:00, whichever of X, XX, XXX, Z is written) — quote
//     literal letters with '...' — or "iso8601", "unix" (seconds) or
//     "unix_ms". The default is ISO 8601 ("2024-01-31",
//     "2024-01-31T10:00:00Z"); the date is taken as written, ignoring a time
//     of day and offset. A two-digit year yy is 1969–1999 for 69–99 and
//     2000–2068 for 00–68.
//   - Timestamp: an instant, microseconds since 1970-01-01T00:00:00Z
//     (timestamptz), shown as RFC 3339 in UTC ("2024-03-01T10:15:00Z").
//     Source formats are those of dates; "unix" and "unix_ms" may have a
//     fraction. The default (also "iso8601") is ISO 8601 / RFC 3339:
//     "2024-03-01T10:15:00Z", "2024-03-01T10:15:00.25+01:00",
//     "2024-03-01 10:15:00" (also with a zone after a space, as +01, +0100,
//     UTC), "2024-03-01T10:15" and a plain date "2024-03-01" (midnight).
//     Hour 24:00 and second 60 roll over to the next day or minute; a
//     fraction finer than a microsecond is cut. A value without a zone is a
//     wall time of the job's time zone (CompileOptions.Location, UTC by
//     default): when clocks go back, a wall time that occurs twice is the
//     first one (the offset before the change, as java.time reads it;
//     PostgreSQL would take the second); when clocks go forward, a
//     skipped wall time is moved forward by the gap (02:30 is 03:30 after
//     the change), as PostgreSQL and java.time read it. Unix times are UTC.
//   - Boolean: true/false, yes/no, y/n, t/f, on/off, 1/0, in any case.
//
// An empty cell, a cell of only spaces, or one equal to a null value of the
// dialect (after trimming spaces) is null. A key attribute may not be null.
//
// For SuggestMapping, [InferType] guesses a column's type and source format
// from sample values, and [NormalizeName], [MatchAttribute] and [Synonyms]
// match header names to attribute ids.
package mapping

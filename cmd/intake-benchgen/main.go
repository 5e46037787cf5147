// Command intake-benchgen writes the accounts CSV file that `make bench`
// imports: a fixed number of rows, 12 columns, deterministic for a seed.
//
// The file is written so that Intake and PostgreSQL's COPY … (FORMAT csv,
// HEADER) read exactly the same bytes: ISO dates (yyyy-MM-dd), plain decimals
// for currency (12500.00), integers for numbers, true/false for booleans, and
// an empty unquoted cell for a missing value. Text fields are always quoted;
// some hold commas, doubled quotes and, in about 1% of the rows, a newline.
//
// With -formats it writes the same rows in the formats of a typical
// spreadsheet export instead, for the mapper benchmark (intake-mapbench):
// Created as MM/dd/yyyy, Employees with thousands separators ("31,902"),
// Annual Revenue and MRR as dollar amounts ("$3,731,658,609.12"), every 50th
// MRR negative in parentheses ("($1,234.56)"). COPY cannot read that file.
//
// Usage:
//
//	intake-benchgen -rows 1000000 -o .bench/accounts.csv
//	intake-benchgen -rows 1000000 -formats -o .bench/accounts-formats.csv
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"time"
)

// Header is the file's header row. The columns map onto these attributes of
// the accounts object, in order: account_id, name, status, industry, region,
// employees, annual_revenue, mrr, is_active, created_date, renewal_date, notes.
var Header = []string{
	"Account ID", "Account Name", "Status", "Industry", "Region", "Employees",
	"Annual Revenue", "MRR", "Active", "Created", "Renewal Date", "Notes",
}

// Config says what to generate.
type Config struct {
	// Rows is the number of data rows (the header not counted).
	Rows int
	// Seed makes the file reproducible: the same seed, the same bytes.
	Seed uint64
	// Formats writes dates, numbers and currency as a spreadsheet export
	// does (MM/dd/yyyy, 31,902, $1,234.56, ($1,234.56)) instead of the
	// plain forms COPY reads. The values are the same.
	Formats bool
}

// Validate checks the config.
func (c Config) Validate() error {
	if c.Rows < 1 {
		return fmt.Errorf("rows must be at least 1, got %d", c.Rows)
	}
	return nil
}

// Stats describes a generated file.
type Stats struct {
	Rows         int
	Bytes        int64
	NewlineRows  int // rows with a newline inside a quoted field
	CommaRows    int // rows with a comma inside a quoted field
	NullRenewals int // rows whose renewal date is empty (NULL)
	NullNotes    int // rows whose notes are empty (NULL)
}

var (
	prefixes   = []string{"Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay", "Soylent", "Tyrell", "Cyberdyne", "Wonka", "Gringotts", "Monarch", "Aperture", "Oscorp"}
	suffixes   = []string{"Labs", "Systems", "Holdings", "Group", "Industries", "Partners", "Logistics", "Analytics", "Foods", "Health"}
	legal      = []string{"Inc.", "LLC", "GmbH", "Ltd.", "S.A."}
	statuses   = []string{"active", "active", "active", "trial", "churned", "prospect"}
	industries = []string{"Software", "Manufacturing", "Finance, Banking", "Healthcare", "Retail", "Education", "Media, Entertainment", "Logistics"}
	regions    = []string{"NA", "EMEA", "APAC", "LATAM"}
	notes      = []string{
		"Key account; quarterly business review scheduled",
		"Renewal at risk, champion left",
		"Expansion opportunity in EMEA",
		"Prefers invoices by email",
		"Migrated from legacy CRM",
		"",
	}
	epoch = time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC)
)

// stride returns a step coprime with n, so that i*stride mod n visits every
// number below n once: account ids come in a shuffled, not sorted, order, as
// in an export sorted by something other than the key.
func stride(n int) int {
	s := 7919 // prime
	for gcd(s, n) != 1 {
		s += 2
	}
	return s
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// Generate writes the header and cfg.Rows data rows to w.
func Generate(w io.Writer, cfg Config) (Stats, error) {
	if err := cfg.Validate(); err != nil {
		return Stats{}, fmt.Errorf("invalid config: %w", err)
	}
	cw := &countingWriter{w: w}
	bw := bufio.NewWriterSize(cw, 1<<20)
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x1a7ace))
	st := Stats{Rows: cfg.Rows}
	step := stride(cfg.Rows)

	var line []byte
	for i, h := range Header {
		if i > 0 {
			line = append(line, ',')
		}
		line = append(line, h...)
	}
	line = append(line, '\n')
	if _, err := bw.Write(line); err != nil {
		return st, fmt.Errorf("write header: %w", err)
	}

	for i := range cfg.Rows {
		line = line[:0]
		comma, newline := false, false

		// account_id: unique, shuffled.
		id := (i*step)%cfg.Rows + 1
		line = append(line, `"ACC-`...)
		line = appendPadded(line, id, 7)
		line = append(line, `",`...)

		// name: always quoted; some with a comma, a few with a doubled quote.
		line = append(line, '"')
		switch r := rng.IntN(100); {
		case r < 8:
			line = append(line, `The ""`...)
			line = append(line, prefixes[rng.IntN(len(prefixes))]...)
			line = append(line, `"" `...)
			line = append(line, suffixes[rng.IntN(len(suffixes))]...)
		default:
			line = append(line, prefixes[rng.IntN(len(prefixes))]...)
			line = append(line, ' ')
			line = append(line, suffixes[rng.IntN(len(suffixes))]...)
			if r < 30 {
				line = append(line, ", "...)
				line = append(line, legal[rng.IntN(len(legal))]...)
				comma = true
			}
		}
		line = append(line, ' ')
		line = strconv.AppendInt(line, int64(id), 10)
		line = append(line, `",`...)

		// status, industry, region.
		line = append(line, statuses[rng.IntN(len(statuses))]...)
		line = append(line, `,"`...)
		ind := industries[rng.IntN(len(industries))]
		line = append(line, ind...)
		if containsComma(ind) {
			comma = true
		}
		line = append(line, `",`...)
		line = append(line, regions[rng.IntN(len(regions))]...)
		line = append(line, ',')

		// employees: a number.
		employees := 1 + rng.IntN(50000)
		if cfg.Formats {
			line = appendGrouped(line, int64(employees), true)
		} else {
			line = strconv.AppendInt(line, int64(employees), 10)
		}
		line = append(line, ',')

		// annual_revenue and mrr: currency as plain decimals.
		cents := int64(employees) * int64(5_000_00+rng.IntN(250_000_00))
		mrr := int64(rng.IntN(5_000_000_00)) / 12
		if cfg.Formats {
			comma = true // "$1,234.56"
			line = appendDollars(line, cents, false)
			line = append(line, ',')
			line = appendDollars(line, mrr, id%50 == 0)
		} else {
			line = appendCents(line, cents)
			line = append(line, ',')
			line = appendCents(line, mrr)
		}
		line = append(line, ',')

		// is_active: a boolean.
		line = strconv.AppendBool(line, rng.IntN(10) < 8)
		line = append(line, ',')

		// created_date and renewal_date: ISO dates; some renewals empty.
		created := epoch.AddDate(0, 0, rng.IntN(5000))
		if cfg.Formats {
			line = created.AppendFormat(line, "01/02/2006")
		} else {
			line = created.AppendFormat(line, time.DateOnly)
		}
		line = append(line, ',')
		if rng.IntN(20) == 0 {
			st.NullRenewals++
		} else {
			line = created.AddDate(1+rng.IntN(5), 0, 0).AppendFormat(line, time.DateOnly)
		}
		line = append(line, ',')

		// notes: quoted text; about 1% hold a newline. A row without notes
		// has an empty unquoted cell, which both COPY and Intake read as
		// NULL (COPY would read a quoted "" as an empty string).
		note := notes[rng.IntN(len(notes))]
		switch r := rng.IntN(100); {
		case r == 0:
			note += "\nSecond line: contact via portal, not phone"
			newline = true
		case r < 10:
			note += " (owner: Jane Doe, CSM)"
		}
		if note != "" {
			line = append(line, '"')
			line = append(line, note...)
			line = append(line, '"')
		} else {
			st.NullNotes++
		}
		if containsComma(note) {
			comma = true
		}
		line = append(line, '\n')

		if comma {
			st.CommaRows++
		}
		if newline {
			st.NewlineRows++
		}
		if _, err := bw.Write(line); err != nil {
			return st, fmt.Errorf("write row %d: %w", i+2, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return st, fmt.Errorf("flush: %w", err)
	}
	st.Bytes = cw.n
	return st, nil
}

func containsComma(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == ',' {
			return true
		}
	}
	return false
}

func appendPadded(b []byte, n, width int) []byte {
	s := strconv.Itoa(n)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

func appendCents(b []byte, cents int64) []byte {
	b = strconv.AppendInt(b, cents/100, 10)
	b = append(b, '.')
	c := cents % 100
	if c < 10 {
		b = append(b, '0')
	}
	return strconv.AppendInt(b, c, 10)
}

// appendGrouped writes n with ',' between groups of three digits, quoted
// when it holds a comma (and quote is set).
func appendGrouped(b []byte, n int64, quote bool) []byte {
	s := strconv.FormatInt(n, 10)
	if len(s) <= 3 {
		return append(b, s...)
	}
	if quote {
		b = append(b, '"')
	}
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			b = append(b, ',')
		}
		b = append(b, s[i])
	}
	if quote {
		b = append(b, '"')
	}
	return b
}

// appendDollars writes cents as a quoted dollar amount, "$1,234.56", or
// "($1,234.56)" when negative.
func appendDollars(b []byte, cents int64, negative bool) []byte {
	b = append(b, '"')
	if negative {
		b = append(b, '(')
	}
	b = append(b, '$')
	b = appendGrouped(b, cents/100, false)
	b = append(b, '.')
	if c := cents % 100; c < 10 {
		b = append(b, '0')
	}
	b = strconv.AppendInt(b, cents%100, 10)
	if negative {
		b = append(b, ')')
	}
	return append(b, '"')
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "intake-benchgen:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("intake-benchgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rows := fs.Int("rows", 1_000_000, "number of data rows")
	seed := fs.Uint64("seed", 1, "random seed (same seed, same file)")
	out := fs.String("o", "-", "output file (- for standard output)")
	formats := fs.Bool("formats", false, "write dates as MM/dd/yyyy, numbers with thousands separators, currency as $1,234.56 / ($1,234.56) (for intake-mapbench; COPY cannot read it)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg := Config{Rows: *rows, Seed: *seed, Formats: *formats}

	w := stdout
	var f *os.File
	if *out != "-" {
		var err error
		if f, err = os.Create(*out); err != nil {
			return fmt.Errorf("create output: %w", err)
		}
		w = f
	}
	st, err := Generate(w, cfg)
	if f != nil {
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		return fmt.Errorf("generate %s: %w", *out, err)
	}
	fmt.Fprintf(stderr, "intake-benchgen: %s: %d rows, %d bytes, %d rows with a quoted newline, %d with a quoted comma, %d empty renewal dates, %d empty notes\n",
		*out, st.Rows, st.Bytes, st.NewlineRows, st.CommaRows, st.NullRenewals, st.NullNotes)
	return nil
}

// Command intake-mapbench measures the mapping engine alone: it parses the
// accounts CSV file of `make bench` and maps every record through a mapping
// spec on one core (GOMAXPROCS=1), with no I/O but reading the file into
// memory first, and compares that with plain encoding/csv reading of the
// same bytes.
//
// The spec has a date format (Created: MM/dd/yyyy), currency with symbols
// and thousands separators (Annual Revenue, MRR: "$1,234.56", negatives in
// parentheses), a number with thousands separators (Employees: "31,902") and
// one function entry (notes = col["Account Name"] + " / " + col["Region"]),
// as in the file written by `intake-benchgen -formats`. Given the plain file
// of `intake-benchgen` (ISO dates), it reads Created as yyyy-MM-dd instead.
//
// It prints, for each path, rows/s, heap allocations and bytes allocated per
// row (runtime.MemStats), the best of -runs runs, then the line
//
//	ratio mapper/csv-read: N.NN
//
// (the mapper's rows/s over encoding/csv's). It fails when any row is
// rejected: the benchmark maps a clean file.
//
// Usage:
//
//	intake-benchgen -rows 1000000 -formats -o .bench/accounts-formats.csv
//	intake-mapbench -file .bench/accounts-formats.csv
package main

import (
	"bytes"
	stdcsv "encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/intakehq/intake/pkg/csv"
	"github.com/intakehq/intake/pkg/mapping"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// Config says what to measure.
type Config struct {
	// File is the accounts CSV file (intake-benchgen's header).
	File string
	// Runs is how many times each path runs; the fastest run is reported.
	Runs int
	// Chunk is the number of records mapped between two Mapper.Release, as
	// the mapper service releases its Mapper after each chunk.
	Chunk int
	// Target is the rows/s the mapper should reach (reported, not enforced).
	Target float64
	// CPUProfile, when set, is a file to write a CPU profile of the first
	// run of path ProfilePath to (go tool pprof).
	CPUProfile  string
	ProfilePath string
}

// Validate checks the config.
func (c Config) Validate() error {
	switch {
	case c.File == "":
		return errors.New("file is required (-file)")
	case c.Runs < 1:
		return fmt.Errorf("runs must be at least 1, got %d", c.Runs)
	case c.Chunk < 1:
		return fmt.Errorf("chunk must be at least 1, got %d", c.Chunk)
	case c.Target < 0:
		return fmt.Errorf("target must not be negative, got %g", c.Target)
	}
	return nil
}

// Result is one measured path.
type Result struct {
	Name     string
	Rows     int64
	Rejected int64
	Elapsed  time.Duration
	Mallocs  uint64
	Bytes    uint64
}

// RowsPerSecond is the throughput.
func (r Result) RowsPerSecond() float64 { return float64(r.Rows) / r.Elapsed.Seconds() }

// AllocsPerRow and BytesPerRow are the heap allocations per row.
func (r Result) AllocsPerRow() float64 { return float64(r.Mallocs) / float64(r.Rows) }

// BytesPerRow is the heap bytes allocated per row.
func (r Result) BytesPerRow() float64 { return float64(r.Bytes) / float64(r.Rows) }

// Header is the header of intake-benchgen's file.
var Header = []string{
	"Account ID", "Account Name", "Status", "Industry", "Region", "Employees",
	"Annual Revenue", "MRR", "Active", "Created", "Renewal Date", "Notes",
}

// Model is the accounts object as the run's model (DataObject) describes it.
func Model() *intakev1.DataObject {
	const (
		text     = intakev1.AttributeType_ATTRIBUTE_TYPE_TEXT
		number   = intakev1.AttributeType_ATTRIBUTE_TYPE_NUMBER
		currency = intakev1.AttributeType_ATTRIBUTE_TYPE_CURRENCY
		boolean  = intakev1.AttributeType_ATTRIBUTE_TYPE_BOOLEAN
		date     = intakev1.AttributeType_ATTRIBUTE_TYPE_DATE
	)
	m := &intakev1.DataObject{
		Name: "objects/accounts", Type: intakev1.ObjectType_OBJECT_TYPE_ACCOUNTS,
		Keys: []string{"account_id"}, Table: "objects.accounts",
	}
	for _, a := range []struct {
		id  string
		typ intakev1.AttributeType
	}{
		{"account_id", text}, {"name", text}, {"status", text}, {"industry", text}, {"region", text},
		{"parent_account_id", text}, {"employees", number}, {"annual_revenue", currency}, {"mrr", currency},
		{"is_active", boolean}, {"created_date", date}, {"renewal_date", date}, {"notes", text},
	} {
		m.Attributes = append(m.Attributes, &intakev1.Attribute{
			Name: "objects/accounts/attributes/" + a.id, AttributeId: a.id, Type: a.typ, System: true, Key: a.id == "account_id",
		})
	}
	return m
}

// The benchmark's function entry, and a variant that calls a CEL function.
const (
	// ConcatFunction joins cells and literals: the mapper evaluates such a
	// function natively (the result is CEL's).
	ConcatFunction = `col["Account Name"] + " / " + col["Region"]`
	// CallFunction calls a CEL function, so CEL's interpreter evaluates it.
	CallFunction = `col["Account Name"].lowerAscii() + " / " + col["Region"]`
)

// Spec is the benchmark's mapping; createdFormat is the source format of
// the Created column, function the expression of the notes entry.
func Spec(createdFormat, function string) *intakev1.MappingSpec {
	col := func(attr, column, format string) *intakev1.MappingEntry {
		return &intakev1.MappingEntry{Attribute: attr, Source: &intakev1.MappingEntry_Column{Column: column}, SourceFormat: format}
	}
	return &intakev1.MappingSpec{
		Dialect: &intakev1.CsvDialect{Delimiter: ","},
		Entries: []*intakev1.MappingEntry{
			col("account_id", "Account ID", ""),
			col("name", "Account Name", ""),
			col("status", "Status", ""),
			col("industry", "Industry", ""),
			col("region", "Region", ""),
			col("employees", "Employees", "1,234.5"),
			col("annual_revenue", "Annual Revenue", "$1,234.56"),
			col("mrr", "MRR", "$1,234.56"),
			col("is_active", "Active", ""),
			col("created_date", "Created", createdFormat),
			col("renewal_date", "Renewal Date", "yyyy-MM-dd"),
			{Attribute: "notes", Source: &intakev1.MappingEntry_Function{Function: function},
				Note: "the benchmark's function entry"},
		},
	}
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "intake-mapbench:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("intake-mapbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg Config
	fs.StringVar(&cfg.File, "file", "", "the accounts CSV file (intake-benchgen -formats)")
	fs.IntVar(&cfg.Runs, "runs", 3, "runs of each path; the fastest is reported")
	fs.IntVar(&cfg.Chunk, "chunk", 10000, "records mapped between two Mapper.Release (as per chunk in the mapper service)")
	fs.Float64Var(&cfg.Target, "target", 400000, "rows/s the mapper should reach (reported only)")
	fs.StringVar(&cfg.CPUProfile, "cpuprofile", "", "write a CPU profile of the first run of -profile-path to this file")
	fs.StringVar(&cfg.ProfilePath, "profile-path", "mapper", "the path -cpuprofile profiles")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid config: %w", err)
	}
	data, err := os.ReadFile(cfg.File)
	if err != nil {
		return fmt.Errorf("read the file: %w", err)
	}
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)

	plan, err := compile(data, ConcatFunction)
	if err != nil {
		return err
	}
	callPlan, err := compile(data, CallFunction)
	if err != nil {
		return err
	}
	best := map[string]Result{}
	order := []string{"csv-read", "mapper", "mapper/encoding-csv", "mapper/cel-call"}
	paths := map[string]func() (Result, error){
		"csv-read": func() (Result, error) {
			return measure("csv-read", func() (int64, int64, error) { return readStd(data) })
		},
		"mapper": func() (Result, error) {
			return measure("mapper", func() (int64, int64, error) { return mapPkgCSV(data, plan, cfg.Chunk) })
		},
		"mapper/encoding-csv": func() (Result, error) {
			return measure("mapper/encoding-csv", func() (int64, int64, error) { return mapStd(data, plan, cfg.Chunk) })
		},
		"mapper/cel-call": func() (Result, error) {
			return measure("mapper/cel-call", func() (int64, int64, error) { return mapPkgCSV(data, callPlan, cfg.Chunk) })
		},
	}
	var profile *os.File
	if cfg.CPUProfile != "" {
		if profile, err = os.Create(cfg.CPUProfile); err != nil {
			return fmt.Errorf("create the CPU profile: %w", err)
		}
		defer profile.Close()
	}
	for run := range cfg.Runs {
		for _, name := range order {
			profiling := profile != nil && run == 0 && name == cfg.ProfilePath
			if profiling {
				if err := pprof.StartCPUProfile(profile); err != nil {
					return fmt.Errorf("start the CPU profile: %w", err)
				}
			}
			r, err := paths[name]()
			if profiling {
				pprof.StopCPUProfile()
			}
			if err != nil {
				return fmt.Errorf("%s: %w (the benchmark maps a clean file written by intake-benchgen)", name, err)
			}
			if b, ok := best[name]; !ok || r.Elapsed < b.Elapsed {
				best[name] = r
			}
		}
	}
	csvRead, mapper := best["csv-read"], best["mapper"]
	if csvRead.Rows != mapper.Rows {
		return fmt.Errorf("encoding/csv read %d records, the mapper %d", csvRead.Rows, mapper.Rows)
	}
	fmt.Fprintf(stdout, "mapbench: %s: %d rows, %d columns, %.1f MiB, read into memory; GOMAXPROCS=1, best of %d runs\n",
		cfg.File, mapper.Rows, len(Header), float64(len(data))/(1<<20), cfg.Runs)
	fmt.Fprintf(stdout, "mapbench: mapper = pkg/csv reader + pkg/mapping, 12 entries: a date format, currency, a number with thousands separators, one function (%s)\n", ConcatFunction)
	fmt.Fprintf(stdout, "mapbench: mapper/encoding-csv = the same with encoding/csv; mapper/cel-call = the same with the function %s\n", CallFunction)
	fmt.Fprintf(stdout, "%-20s %10s %8s %11s %11s %10s\n", "path", "rows", "seconds", "rows/s", "allocs/row", "bytes/row")
	for _, name := range order {
		r := best[name]
		fmt.Fprintf(stdout, "%-20s %10d %8.2f %11.0f %11.3f %10.1f\n", r.Name, r.Rows, r.Elapsed.Seconds(), r.RowsPerSecond(), r.AllocsPerRow(), r.BytesPerRow())
	}
	verdict := "met"
	if mapper.RowsPerSecond() < cfg.Target {
		verdict = "NOT met"
	}
	fmt.Fprintf(stdout, "mapbench: target %.0f rows/s mapped (CSV parsing included) on one core: %s\n", cfg.Target, verdict)
	fmt.Fprintf(stdout, "ratio mapper/csv-read: %.2f\n", mapper.RowsPerSecond()/csvRead.RowsPerSecond())
	return nil
}

// compile reads the header and the first record and compiles the spec with
// the function; the Created column's format follows the file (MM/dd/yyyy or
// ISO).
func compile(data []byte, function string) (*mapping.Plan, error) {
	r := stdcsv.NewReader(bytes.NewReader(data))
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("read the header: %w", err)
	}
	if strings.Join(header, ",") != strings.Join(Header, ",") {
		return nil, fmt.Errorf("the header is %q; want intake-benchgen's %q", header, Header)
	}
	first, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("read the first record: %w", err)
	}
	format := "MM/dd/yyyy"
	if !strings.Contains(first[9], "/") {
		format = "yyyy-MM-dd"
	}
	plan, err := mapping.Compile(Model(), Spec(format, function), header)
	if err != nil {
		return nil, fmt.Errorf("compile the mapping: %w", err)
	}
	return plan, nil
}

// measure runs f once and records its time and heap allocations.
func measure(name string, f func() (rows, rejected int64, err error)) (Result, error) {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	rows, rejected, err := f()
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	if err != nil {
		return Result{}, err
	}
	if rows == 0 {
		return Result{}, errors.New("the file has no data rows")
	}
	return Result{Name: name, Rows: rows, Rejected: rejected, Elapsed: elapsed,
		Mallocs: after.Mallocs - before.Mallocs, Bytes: after.TotalAlloc - before.TotalAlloc}, nil
}

// readStd reads every data record with encoding/csv (ReuseRecord), doing
// nothing with them: the floor of any CSV import in Go.
func readStd(data []byte) (rows, rejected int64, err error) {
	r := stdcsv.NewReader(bytes.NewReader(data))
	r.ReuseRecord = true
	r.FieldsPerRecord = -1
	if _, err := r.Read(); err != nil {
		return 0, 0, fmt.Errorf("header: %w", err)
	}
	for {
		_, err := r.Read()
		if err == io.EOF {
			return rows, rejected, nil
		}
		if err != nil {
			return rows, rejected, fmt.Errorf("record %d: %w", rows+2, err)
		}
		rows++
	}
}

// mapper maps records as the mapper service does, releasing the Mapper
// every chunk records.
type mapper struct {
	plan     *mapping.Plan
	m        *mapping.Mapper
	chunk    int
	n        int
	errs     []mapping.RowError
	rejected int64
	first    []mapping.RowError // the first rejected row's errors
}

func newMapper(plan *mapping.Plan, chunk int) *mapper {
	return &mapper{plan: plan, m: plan.NewMapper(chunk), chunk: chunk}
}

// err describes the rejected rows, if any.
func (m *mapper) err() error {
	if m.rejected == 0 {
		return nil
	}
	return fmt.Errorf("%d rows rejected, the first: %v", m.rejected, m.first)
}

func (m *mapper) mapRecord(row int64, record []string) {
	if m.n == m.chunk {
		m.m.Release()
		m.m = m.plan.NewMapper(m.chunk)
		m.n = 0
	}
	m.n++
	if r, errs := m.m.MapRecord(row, record, m.errs[:0]); r == nil {
		m.rejected++
		if m.rejected == 1 {
			m.first = append([]mapping.RowError(nil), errs...)
		}
		m.errs = errs
	}
}

// mapPkgCSV parses with pkg/csv (the reader the mapper service uses) and
// maps every record.
func mapPkgCSV(data []byte, plan *mapping.Plan, chunk int) (rows, rejected int64, err error) {
	r := csv.NewReader(bytes.NewReader(data), csv.Dialect{Comma: plan.Comma(), Quote: '"', Escape: '"'})
	if _, err := r.Read(); err != nil {
		return 0, 0, fmt.Errorf("header: %w", err)
	}
	m := newMapper(plan, chunk)
	for row := int64(2); ; row++ {
		record, err := r.Read()
		if err == io.EOF {
			return rows, m.rejected, m.err()
		}
		if err != nil {
			return rows, m.rejected, fmt.Errorf("record %d: %w", row, err)
		}
		rows++
		m.mapRecord(row, record)
	}
}

// mapStd parses with encoding/csv and maps every record.
func mapStd(data []byte, plan *mapping.Plan, chunk int) (rows, rejected int64, err error) {
	r := stdcsv.NewReader(bytes.NewReader(data))
	r.Comma = plan.Comma()
	r.ReuseRecord = true
	r.FieldsPerRecord = -1
	if _, err := r.Read(); err != nil {
		return 0, 0, fmt.Errorf("header: %w", err)
	}
	m := newMapper(plan, chunk)
	for row := int64(2); ; row++ {
		record, err := r.Read()
		if err == io.EOF {
			return rows, m.rejected, m.err()
		}
		if err != nil {
			return rows, m.rejected, fmt.Errorf("record %d: %w", row, err)
		}
		rows++
		m.mapRecord(row, record)
	}
}

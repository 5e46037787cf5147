package mapping_test

import (
	"fmt"
	"testing"

	"github.com/intakehq/intake/pkg/mapping"
	pipelinev1 "github.com/intakehq/intake/proto/gen/intake/pipeline/v1"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

// benchHeader is the header of make bench's accounts file.
var benchHeader = []string{"Account ID", "Name", "Status", "Industry", "Region", "Parent", "Employees", "Revenue", "MRR", "Active", "Created", "Renewal"}

// benchMap maps 12-column accounts records, as a real export has them,
// through spec, reporting rows/s.
func benchMap(b *testing.B, s *intakev1.MappingSpec, records [][]string) {
	plan, err := mapping.Compile(accounts(b), s, benchHeader)
	if err != nil {
		b.Fatal(err)
	}
	const chunk = 1000
	m := plan.NewMapper(chunk)
	var errs []mapping.RowError
	var r *pipelinev1.Row
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i%chunk == 0 {
			// As the mapper service does per chunk, once the batch is out.
			m.Release()
			m = plan.NewMapper(chunk)
		}
		r, errs = m.MapRecord(int64(i+2), records[i%len(records)], errs[:0])
		if r == nil {
			b.Fatal(errs)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkMapRow maps records of every type, with separators to remove
// and dates to parse.
func BenchmarkMapRow(b *testing.B) {
	records := make([][]string, 1024)
	for i := range records {
		records[i] = []string{
			fmt.Sprintf("ACC-%07d", i), fmt.Sprintf("Company %d, Inc.", i), "active", "Software", "EMEA", "",
			fmt.Sprintf("%d,%03d", 1+i%50, i%1000), fmt.Sprintf("$%d,%03d.%02d", i%900+1, i%1000, i%100), fmt.Sprintf("%d.50", i),
			[]string{"true", "false", "yes", "no"}[i%4], fmt.Sprintf("20%02d-%02d-%02d", i%25, i%12+1, i%28+1),
			fmt.Sprintf("%02d/%02d/2025", i%12+1, i%28+1),
		}
	}
	benchMap(b, spec(
		col("account_id", "Account ID"),
		col("name", "Name"),
		col("status", "Status"),
		col("industry", "Industry"),
		col("region", "Region"),
		col("parent_account_id", "Parent"),
		col("employees", "Employees"),
		col("annual_revenue", "Revenue"),
		col("mrr", "MRR"),
		col("is_active", "Active"),
		col("created_date", "Created"),
		colf("renewal_date", "Renewal", "MM/dd/yyyy"),
	), records)
}

// BenchmarkMapRowFormats maps records as intake-mapbench does: a date
// format, currency with symbols and separators, a number with thousands
// separators and one function entry.
func BenchmarkMapRowFormats(b *testing.B) {
	for _, fc := range []struct{ name, function string }{
		{"concat", `col["Name"] + " / " + col["Region"]`},
		{"cel", `col["Name"].lowerAscii() + " / " + Region`},
	} {
		b.Run(fc.name, func(b *testing.B) {
			records := make([][]string, 1024)
			for i := range records {
				mrr := fmt.Sprintf("$%d,%03d.%02d", i%90+1, i%1000, i%100)
				if i%50 == 0 {
					mrr = "(" + mrr + ")"
				}
				records[i] = []string{
					fmt.Sprintf("ACC-%07d", i), fmt.Sprintf("Company %d, Inc.", i), "active", "Software", "EMEA", "",
					fmt.Sprintf("%d,%03d", 1+i%50, i%1000), fmt.Sprintf("$%d,%03d,%03d,%03d.%02d", i%9+1, i%1000, i%999, i%998, i%100), mrr,
					[]string{"true", "false"}[i%2], fmt.Sprintf("%02d/%02d/20%02d", i%12+1, i%28+1, i%25),
					fmt.Sprintf("2025-%02d-%02d", i%12+1, i%28+1),
				}
			}
			benchMap(b, spec(
				col("account_id", "Account ID"),
				col("name", "Name"),
				col("status", "Status"),
				col("industry", "Industry"),
				col("region", "Region"),
				colf("employees", "Employees", "1,234.5"),
				colf("annual_revenue", "Revenue", "$1,234.56"),
				colf("mrr", "MRR", "$1,234.56"),
				col("is_active", "Active"),
				colf("created_date", "Created", "MM/dd/yyyy"),
				colf("renewal_date", "Renewal", "yyyy-MM-dd"),
				fn("notes", fc.function),
			), records)
		})
	}
}

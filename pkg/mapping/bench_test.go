package mapping_test

import (
	"fmt"
	"testing"

	"github.com/intakehq/intake/pkg/mapping"
	pipelinev1 "github.com/intakehq/intake/proto/gen/intake/pipeline/v1"
)

// BenchmarkMapRow maps 12-column accounts records of every type, with
// separators to remove and dates to parse, as a real export has them.
func BenchmarkMapRow(b *testing.B) {
	header := []string{"Account ID", "Name", "Status", "Industry", "Region", "Parent", "Employees", "Revenue", "MRR", "Active", "Created", "Renewal"}
	plan, err := mapping.Compile(accounts(b), spec(
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
	), header)
	if err != nil {
		b.Fatal(err)
	}
	records := make([][]string, 1024)
	for i := range records {
		records[i] = []string{
			fmt.Sprintf("ACC-%07d", i), fmt.Sprintf("Company %d, Inc.", i), "active", "Software", "EMEA", "",
			fmt.Sprintf("%d,%03d", 1+i%50, i%1000), fmt.Sprintf("$%d,%03d.%02d", i%900+1, i%1000, i%100), fmt.Sprintf("%d.50", i),
			[]string{"true", "false", "yes", "no"}[i%4], fmt.Sprintf("20%02d-%02d-%02d", i%25, i%12+1, i%28+1),
			fmt.Sprintf("%02d/%02d/2025", i%12+1, i%28+1),
		}
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

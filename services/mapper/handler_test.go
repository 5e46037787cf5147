package mapper

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/pkg/mapping"
	"github.com/intakehq/intake/pkg/objects"
	pipelinev1 "github.com/intakehq/intake/proto/gen/intake/pipeline/v1"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
)

func TestRecordReaderResyncsLikeTheChunker(t *testing.T) {
	t.Parallel()
	data := "a,\"x\"y\nz\",b\nc,d\ne,f\"g\nh,i\n"
	rr := newRecordReader([]byte(data), ',')
	var got []string
	for {
		rec, err := rr.read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			got = append(got, "error")
			continue
		}
		got = append(got, fmt.Sprint(rec))
	}
	// The first record spans two lines for a lenient reader (as the fetcher
	// cuts it); a strict reader that restarted at the next line would see
	// one record more.
	require.Equal(t, []string{"error", "[c d]", "error", "[h i]"}, got)
}

// BenchmarkMapChunk parses and maps 1,000-row chunks of a 12-column file:
// the mapper's work per chunk without NATS and the API.
func BenchmarkMapChunk(b *testing.B) {
	obj, err := objects.Lookup(intakev1.ObjectType_OBJECT_TYPE_ACCOUNTS)
	require.NoError(b, err)
	header := []string{"Account ID", "Name", "Status", "Industry", "Region", "Parent", "Employees", "Revenue", "MRR", "Active", "Created", "Renewal"}
	attrs := []string{"account_id", "name", "status", "industry", "region", "parent_account_id", "employees", "annual_revenue", "mrr", "is_active", "created_date", "renewal_date"}
	spec := &intakev1.MappingSpec{}
	for i, a := range attrs {
		e := &intakev1.MappingEntry{Attribute: a, Source: &intakev1.MappingEntry_Column{Column: header[i]}}
		if a == "renewal_date" {
			e.SourceFormat = "MM/dd/yyyy"
		}
		spec.Entries = append(spec.Entries, e)
	}
	plan, err := mapping.Compile(obj, spec, header)
	require.NoError(b, err)
	var buf bytes.Buffer
	const rows = 1000
	for i := range rows {
		fmt.Fprintf(&buf, "ACC-%07d,\"Company %d, Inc.\",active,Software,EMEA,,\"%d,%03d\",\"$%d,%03d.%02d\",%d.50,%s,20%02d-%02d-%02d,%02d/%02d/2025\n",
			i, i, 1+i%50, i%1000, i%900+1, i%1000, i%100, i, []string{"true", "false", "yes", "no"}[i%4], i%25, i%12+1, i%28+1, i%12+1, i%28+1)
	}
	chunk := &pipelinev1.Chunk{FirstRow: 2, Rows: rows, Data: buf.Bytes(), Header: header}
	b.SetBytes(int64(buf.Len()))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		m := plan.NewMapper(rows)
		out, errs, _, err := mapChunk(plan, m, chunk)
		if err != nil || len(errs) > 0 || len(out) != rows {
			b.Fatal(err, errs)
		}
		m.Release()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*rows)/b.Elapsed().Seconds(), "rows/s")
}

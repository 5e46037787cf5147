package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	pipelinev1 "github.com/intakehq/intake/proto/gen/intake/pipeline/v1"
	"github.com/intakehq/intake/services/loader/internal/store"
)

// BenchmarkStageAndCommit stages 200k accounts rows (every attribute mapped,
// batches of 1,000 rows, two stagers at once, as two loader workers would)
// and commits them: into an empty table, and into one where every key is
// present and every row changes.
//
//	go test -run '^$' -bench StageAndCommit -benchtime 3x ./internal/store/
func BenchmarkStageAndCommit(b *testing.B) {
	const (
		rows      = 200_000
		batchRows = 1_000
		stagers   = 2
	)
	s := spec{object: accounts, allowNew: true, attrs: []string{
		"account_id", "name", "status", "industry", "region", "parent_account_id",
		"employees", "annual_revenue", "mrr", "is_active", "created_date", "renewal_date", "notes"}}
	batches := func(run string, version int) []*pipelinev1.Batch {
		out := make([]*pipelinev1.Batch, 0, rows/batchRows)
		for c := range rows / batchRows {
			bt := s.batch(run, int64(c))
			bt.Rows = make([]*pipelinev1.Row, batchRows)
			for i := range batchRows {
				n := c*batchRows + i
				bt.Rows[i] = row(int64(n+2),
					txt(fmt.Sprintf("ACC-%07d", n)), txt(fmt.Sprintf("Company %d v%d", n, version)), txt("active"),
					txt("Software"), txt("EMEA"), null(), dec(fmt.Sprint(n%5000)), dec(fmt.Sprintf("%d.%02d", n*37, n%100)),
					dec(fmt.Sprintf("%d.50", n%999)), boolean(n%3 == 0), day(2020, 1, 1+n%365), day(2026, 6, 1+n%28),
					txt("a note of some length that many rows carry along"))
			}
			out = append(out, bt)
		}
		return out
	}
	for _, target := range []string{"empty", "every key present"} {
		b.Run(target, func(b *testing.B) {
			st, pool := newStore(b)
			ctx := context.Background()
			var stageTime, commitTime time.Duration
			version := 0
			for b.Loop() {
				b.StopTimer()
				if target == "empty" {
					_, err := pool.Exec(ctx, "TRUNCATE objects.accounts")
					require.NoError(b, err)
				} else if version == 0 {
					version++
					load(b, st, s, newRun(), rowsOf(batches(newRun(), version))...)
				}
				version++
				run := newRun()
				work := batches(run, version)
				b.StartTimer()

				start := time.Now()
				ch := make(chan *pipelinev1.Batch)
				var wg sync.WaitGroup
				for range stagers {
					wg.Go(func() {
						for bt := range ch {
							if _, err := stage(st, bt); err != nil {
								b.Error(err)
							}
						}
					})
				}
				for _, bt := range work {
					ch <- bt
				}
				close(ch)
				wg.Wait()
				_, err := st.Seal(ctx, s.seal(run, int64(len(work))))
				require.NoError(b, err)
				staged := time.Now()
				res, committed, err := st.TryCommit(ctx, run)
				require.NoError(b, err)
				require.True(b, committed)
				stageTime += staged.Sub(start)
				commitTime += time.Since(staged)
				if target == "empty" {
					require.Equal(b, store.Counts{Created: rows}, res.Counts)
				} else {
					require.Equal(b, store.Counts{Updated: rows}, res.Counts)
				}
			}
			n := float64(b.N) * rows
			b.ReportMetric(n/(stageTime+commitTime).Seconds(), "rows/s")
			b.ReportMetric(n/stageTime.Seconds(), "staged_rows/s")
			b.ReportMetric(n/commitTime.Seconds(), "committed_rows/s")
		})
	}
}

func rowsOf(batches []*pipelinev1.Batch) [][]*pipelinev1.Row {
	out := make([][]*pipelinev1.Row, len(batches))
	for i, b := range batches {
		out[i] = b.Rows
	}
	return out
}

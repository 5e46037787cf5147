package mapper_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/intakehq/intake/pkg/natstest"
	"github.com/intakehq/intake/pkg/pipeline"
	pipelinev1 "github.com/intakehq/intake/proto/gen/intake/pipeline/v1"
	intakev1 "github.com/intakehq/intake/proto/gen/intake/v1"
	"github.com/intakehq/intake/services/mapper"
)

// stageServer is a small StageService that records reports and answers with
// a directive chosen by the test. The real API is tested end to end elsewhere.
type stageServer struct {
	intakev1.UnimplementedStageServiceServer
	mu          sync.Mutex
	reports     chan *intakev1.ReportRunEventRequest
	directive   intakev1.Directive
	unavailable int // fail this many reports with Unavailable first
	calls       int
}

func (s *stageServer) ReportRunEvent(_ context.Context, req *intakev1.ReportRunEventRequest) (*intakev1.ReportRunEventResponse, error) {
	s.mu.Lock()
	s.calls++
	if s.unavailable > 0 {
		s.unavailable--
		s.mu.Unlock()
		return nil, status.Error(codes.Unavailable, "the API is restarting")
	}
	d := s.directive
	s.mu.Unlock()
	s.reports <- req
	return &intakev1.ReportRunEventResponse{Directive: d}, nil
}

type bundle struct {
	js       jetstream.JetStream
	stage    *stageServer
	registry *prometheus.Registry
	svc      *mapper.Service
}

func setup(t *testing.T, directive intakev1.Directive, unavailable int) *bundle {
	t.Helper()
	srv := natstest.Start(t)
	_, js := srv.Connect(t)

	stage := &stageServer{reports: make(chan *intakev1.ReportRunEventRequest, 100), directive: directive, unavailable: unavailable}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gs := grpc.NewServer()
	intakev1.RegisterStageServiceServer(gs, stage)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)

	reg := prometheus.NewRegistry()
	svc, err := mapper.New(mapper.Config{
		NATSURL:    srv.URL,
		APIAddr:    lis.Addr().String(),
		Registerer: reg,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.ErrorIs(t, err, context.Canceled)
		case <-time.After(10 * time.Second):
			t.Error("mapper did not stop")
		}
	})
	require.Eventually(t, svc.Ready, 10*time.Second, 10*time.Millisecond)
	return &bundle{js: js, stage: stage, registry: reg, svc: svc}
}

func job(entries ...*intakev1.MappingEntry) *intakev1.Job {
	return &intakev1.Job{
		Name:            "jobs/j1",
		Object:          intakev1.ObjectType_OBJECT_TYPE_ACCOUNTS,
		AllowNewRecords: true,
		Mapping:         &intakev1.MappingSpec{Entries: entries},
	}
}

func col(attr, column, format string) *intakev1.MappingEntry {
	return &intakev1.MappingEntry{Attribute: attr, Source: &intakev1.MappingEntry_Column{Column: column}, SourceFormat: format}
}

func newRun() string { return "jobs/j1/runs/" + uuid.NewString() }

func (b *bundle) publishChunk(t *testing.T, c *pipelinev1.Chunk) {
	t.Helper()
	require.NoError(t, pipeline.Publish(context.Background(), b.js, pipeline.SubjectChunk, pipeline.ChunkMsgID(c.Run, c.Index), c))
}

func (b *bundle) nextReport(t *testing.T) *intakev1.ReportRunEventRequest {
	t.Helper()
	select {
	case r := <-b.stage.reports:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no report")
		return nil
	}
}

// nextBatch reads the next batch from INTAKE_LOAD as the loader would, or
// returns nil when none comes within wait.
func (b *bundle) nextBatch(t *testing.T, wait time.Duration) (*pipelinev1.Batch, string) {
	t.Helper()
	ctx := context.Background()
	cons, err := b.js.CreateOrUpdateConsumer(ctx, pipeline.StreamLoad, jetstream.ConsumerConfig{
		Durable: pipeline.ConsumerLoader, AckPolicy: jetstream.AckExplicitPolicy,
	})
	require.NoError(t, err)
	msgs, err := cons.Fetch(1, jetstream.FetchMaxWait(wait))
	require.NoError(t, err)
	for msg := range msgs.Messages() {
		require.Equal(t, pipeline.SubjectBatch, msg.Subject())
		batch := &pipelinev1.Batch{}
		require.NoError(t, proto.Unmarshal(msg.Data(), batch))
		require.NoError(t, msg.Ack())
		return batch, msg.Headers().Get(jetstream.MsgIDHeader)
	}
	return nil, ""
}

// requireChunksAcked waits until the mapper has acked every chunk.
func (b *bundle) requireChunksAcked(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool {
		s, err := b.js.Stream(context.Background(), pipeline.StreamChunks)
		if err != nil {
			return false
		}
		info, err := s.Info(context.Background())
		return err == nil && info.State.Msgs == 0
	}, 10*time.Second, 20*time.Millisecond)
}

func days(y int, m time.Month, d int) int32 {
	return int32(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

func TestMapChunk(t *testing.T) {
	t.Parallel()
	b := setup(t, intakev1.Directive_DIRECTIVE_CONTINUE, 0)
	run := newRun()
	data := "A1,\"Acme\nInc\",\"1,200\",01/31/2024,yes\n" + // row 2: a quoted newline
		"A2,Beta,1500,13/45/2020,no\n" + // row 3: bad date
		"A3,Gamma,7\n" + // row 4: too few fields
		"A4,Del\"ta,5,01/01/2024,yes\n" + // row 5: a quote inside an unquoted field is literal
		"A5,Eps,abc,02/30/2024,maybe\n" + // row 6: three bad cells
		",Zeta,1,01/01/2024,1\n" + // row 7: empty key
		"A7,\"Eta \"\"q\"\"\",0,12/31/1999,N\n" + // row 8
		"A8,\"Th\"eta\nline 2\",3,01/01/2024,y\n" + // row 9: a stray quote in a quoted field that spans lines
		"\n" + // a blank line is not a record
		"A9,Iota,4,01/02/2024,n" // row 10, without a final line feed
	b.publishChunk(t, &pipelinev1.Chunk{
		Run: run, Index: 3, FirstRow: 2, Rows: 9, Data: []byte(data),
		Header: []string{"Account ID", "Name", "Employees", "Created", "Active"},
		Job: job(
			col("account_id", "Account ID", ""),
			col("name", "Name", ""),
			col("employees", "Employees", ""),
			col("created_date", "Created", "MM/dd/yyyy"),
			col("is_active", "Active", ""),
		),
	})

	rep := b.nextReport(t)
	require.Equal(t, run, rep.GetRun())
	require.Equal(t, intakev1.Stage_STAGE_MAP, rep.GetStage())
	require.Equal(t, intakev1.RunEventKind_RUN_EVENT_KIND_CHUNK_DONE, rep.GetKind())
	require.Equal(t, int64(3), rep.GetChunk())
	require.Equal(t, int64(9), rep.GetCounters().GetRowsRead())
	require.Equal(t, int64(5), rep.GetCounters().GetRowsRejected())
	require.NotNil(t, rep.GetEventTime())
	type rowError struct {
		Row    int64
		Column string
		Reason string
		Record string
	}
	var got []rowError
	for _, e := range rep.GetRowErrors() {
		got = append(got, rowError{e.GetRow(), e.GetColumn(), e.GetReason(), e.GetRecord()})
	}
	require.Equal(t, []rowError{
		{3, "Created", `"13/45/2020" does not match date format MM/dd/yyyy: month 13 is not 1-12`, "A2,Beta,1500,13/45/2020,no"},
		{4, "", "3 fields, the header has 5", "A3,Gamma,7"},
		{6, "Employees", `not a number: "abc"`, "A5,Eps,abc,02/30/2024,maybe"},
		{6, "Created", `"02/30/2024" does not match date format MM/dd/yyyy: day 30 is not 1-29 in February 2024`, "A5,Eps,abc,02/30/2024,maybe"},
		{6, "Active", `not a boolean: "maybe" (use true/false, yes/no, y/n or 1/0)`, "A5,Eps,abc,02/30/2024,maybe"},
		{7, "Account ID", "key account_id is empty", ",Zeta,1,01/01/2024,1"},
		{9, "", `malformed CSV: extraneous quote in a quoted field at character 7 (a quote inside quotes is written "")`,
			"A8,\"Th\"eta\nline 2\",3,01/01/2024,y"},
	}, got)

	batch, msgID := b.nextBatch(t, 10*time.Second)
	require.NotNil(t, batch, "no batch")
	require.Equal(t, pipeline.BatchMsgID(run, 3), msgID)
	require.Equal(t, run, batch.GetRun())
	require.Equal(t, intakev1.ObjectType_OBJECT_TYPE_ACCOUNTS, batch.GetObject())
	require.True(t, batch.GetAllowNewRecords())
	require.Equal(t, int64(3), batch.GetChunk())
	require.Equal(t, int64(5), batch.GetRejected())
	require.Equal(t, []string{"account_id", "name", "employees", "created_date", "is_active"}, batch.GetAttributes())
	require.Equal(t, []intakev1.AttributeType{
		intakev1.AttributeType_ATTRIBUTE_TYPE_TEXT, intakev1.AttributeType_ATTRIBUTE_TYPE_TEXT, intakev1.AttributeType_ATTRIBUTE_TYPE_NUMBER,
		intakev1.AttributeType_ATTRIBUTE_TYPE_DATE, intakev1.AttributeType_ATTRIBUTE_TYPE_BOOLEAN,
	}, batch.GetTypes(), "the attributes' types, in their order")
	require.False(t, batch.GetDryRun())
	require.Len(t, batch.GetRows(), 4)
	require.Equal(t, int64(5), batch.GetRows()[1].GetRow())
	require.Equal(t, `Del"ta`, batch.GetRows()[1].GetValues()[1].GetText())
	r2, r8, r10 := batch.GetRows()[0], batch.GetRows()[2], batch.GetRows()[3]
	require.Equal(t, int64(2), r2.GetRow())
	require.Equal(t, "A1", r2.GetValues()[0].GetText())
	require.Equal(t, "Acme\nInc", r2.GetValues()[1].GetText())
	require.Equal(t, "1200", r2.GetValues()[2].GetDecimal())
	require.Equal(t, days(2024, 1, 31), r2.GetValues()[3].GetDate())
	require.True(t, r2.GetValues()[4].GetBoolean())
	require.Equal(t, int64(8), r8.GetRow())
	require.Equal(t, `Eta "q"`, r8.GetValues()[1].GetText())
	require.Equal(t, "0", r8.GetValues()[2].GetDecimal())
	require.Equal(t, days(1999, 12, 31), r8.GetValues()[3].GetDate())
	require.IsType(t, &pipelinev1.Value_Boolean{}, r8.GetValues()[4].GetKind())
	require.False(t, r8.GetValues()[4].GetBoolean())
	require.Equal(t, int64(10), r10.GetRow())
	require.Equal(t, "A9", r10.GetValues()[0].GetText())
	require.Equal(t, days(2024, 1, 2), r10.GetValues()[3].GetDate())
	b.requireChunksAcked(t)

	require.Equal(t, 4.0, metric(t, b.registry, "intake_mapper_rows_total", "mapped"))
	require.Equal(t, 5.0, metric(t, b.registry, "intake_mapper_rows_total", "rejected"))
	require.Equal(t, 1.0, metric(t, b.registry, "intake_mapper_chunks_total", "published"))
}

// metric is the value of a counter of the registry, by name and outcome label.
func metric(t *testing.T, reg *prometheus.Registry, name, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("metric %s{outcome=%q} not found", name, outcome)
	return 0
}

func TestMapChunkDialectAndEveryRowRejected(t *testing.T) {
	t.Parallel()
	b := setup(t, intakev1.Directive_DIRECTIVE_CONTINUE, 0)
	run := newRun()
	j := job(col("account_id", "id", ""), col("mrr", "mrr", "1.234,56 €"), col("notes", "notes", ""))
	j.Mapping.Dialect = &intakev1.CsvDialect{Delimiter: ";", NullValues: []string{"NULL"}}
	j.AllowNewRecords = false
	b.publishChunk(t, &pipelinev1.Chunk{Run: run, Index: 0, FirstRow: 2, Rows: 2, Header: []string{"id", "mrr", "notes"}, Job: j,
		Data: []byte("a;1.234,50 €;NULL\nb;(12,00 €);x;y\n")})
	rep := b.nextReport(t)
	require.Equal(t, int64(1), rep.GetCounters().GetRowsRejected())
	batch, _ := b.nextBatch(t, 10*time.Second)
	require.NotNil(t, batch)
	require.False(t, batch.GetAllowNewRecords())
	require.Len(t, batch.GetRows(), 1)
	require.Equal(t, "1234.50", batch.GetRows()[0].GetValues()[1].GetDecimal())
	require.Nil(t, batch.GetRows()[0].GetValues()[2].GetKind(), "NULL is null")

	// A chunk whose every row is rejected still gets a batch: the loader counts chunks.
	b.publishChunk(t, &pipelinev1.Chunk{Run: run, Index: 1, FirstRow: 4, Rows: 1, Header: []string{"id", "mrr", "notes"}, Job: j,
		Data: []byte(";1;x\n")})
	rep = b.nextReport(t)
	require.Equal(t, []*intakev1.RowError{{Row: 4, Column: "id", Reason: "key account_id is empty", Record: ";1;x"}}, rep.GetRowErrors())
	batch, _ = b.nextBatch(t, 10*time.Second)
	require.NotNil(t, batch)
	require.Empty(t, batch.GetRows())
	require.Equal(t, int64(1), batch.GetRejected())
	require.Equal(t, int64(1), batch.GetChunk())
}

func TestSpecErrorFailsTheRun(t *testing.T) {
	t.Parallel()
	b := setup(t, intakev1.Directive_DIRECTIVE_CONTINUE, 0)
	run := newRun()
	b.publishChunk(t, &pipelinev1.Chunk{Run: run, Index: 0, FirstRow: 2, Rows: 1, Data: []byte("1,x\n"),
		Header: []string{"Id", "Name"}, Job: job(col("account_id", "Acct", ""), col("name", "Name", ""))})
	rep := b.nextReport(t)
	require.Equal(t, intakev1.RunEventKind_RUN_EVENT_KIND_FAILED, rep.GetKind())
	require.Equal(t, intakev1.Stage_STAGE_MAP, rep.GetStage())
	require.Equal(t, run, rep.GetRun())
	require.Equal(t, `invalid mapping: column "Acct" (entry 1, attribute account_id) is not in the file's header; the header has: "Id", "Name"`, rep.GetMessage())
	b.requireChunksAcked(t)
	batch, _ := b.nextBatch(t, 300*time.Millisecond)
	require.Nil(t, batch, "a failed run publishes no batch")
	require.Equal(t, 1.0, metric(t, b.registry, "intake_mapper_chunks_total", "failed"))
}

func TestAbandonPublishesNoBatch(t *testing.T) {
	t.Parallel()
	b := setup(t, intakev1.Directive_DIRECTIVE_ABANDON, 0)
	b.publishChunk(t, &pipelinev1.Chunk{Run: newRun(), Index: 0, FirstRow: 2, Rows: 1, Data: []byte("1,x\n"),
		Header: []string{"Id", "Name"}, Job: job(col("account_id", "Id", ""), col("name", "Name", ""))})
	rep := b.nextReport(t)
	require.Equal(t, intakev1.RunEventKind_RUN_EVENT_KIND_CHUNK_DONE, rep.GetKind())
	b.requireChunksAcked(t)
	batch, _ := b.nextBatch(t, 300*time.Millisecond)
	require.Nil(t, batch, "an abandoned run publishes no batch")
	require.Equal(t, 1.0, metric(t, b.registry, "intake_mapper_chunks_total", "abandoned"))
}

func TestReportRetriedWhileAPIUnavailable(t *testing.T) {
	t.Parallel()
	b := setup(t, intakev1.Directive_DIRECTIVE_CONTINUE, 2)
	run := newRun()
	b.publishChunk(t, &pipelinev1.Chunk{Run: run, Index: 0, FirstRow: 2, Rows: 1, Data: []byte("1,x\n"),
		Header: []string{"Id", "Name"}, Job: job(col("account_id", "Id", ""), col("name", "Name", ""))})
	rep := b.nextReport(t)
	require.Equal(t, intakev1.RunEventKind_RUN_EVENT_KIND_CHUNK_DONE, rep.GetKind())
	batch, _ := b.nextBatch(t, 10*time.Second)
	require.NotNil(t, batch)
	require.Equal(t, run, batch.GetRun())
	b.stage.mu.Lock()
	require.Equal(t, 3, b.stage.calls)
	b.stage.mu.Unlock()
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	ok := mapper.Config{NATSURL: "nats://127.0.0.1:4222", APIAddr: "127.0.0.1:7400"}
	require.NoError(t, ok.Validate())
	for _, tc := range []struct {
		change func(*mapper.Config)
		want   error
	}{
		{func(c *mapper.Config) { c.NATSURL = "" }, mapper.ErrNoNATSURL},
		{func(c *mapper.Config) { c.APIAddr = "" }, mapper.ErrNoAPIAddr},
		{func(c *mapper.Config) { c.Concurrency = -1 }, mapper.ErrNegativeConcurrency},
		{func(c *mapper.Config) { c.AckWait = time.Millisecond }, mapper.ErrAckWaitTooShort},
		{func(c *mapper.Config) { c.AckWait = -time.Second }, mapper.ErrAckWaitTooShort},
		{func(c *mapper.Config) { c.ShutdownGrace = -1 }, mapper.ErrNegativeShutdownGrace},
		{func(c *mapper.Config) { c.StreamReplicas = 7 }, mapper.ErrStreamReplicas},
	} {
		c := ok
		tc.change(&c)
		require.True(t, errors.Is(c.Validate(), tc.want), "got %v, want %v", c.Validate(), tc.want)
		_, err := mapper.New(c)
		require.ErrorIs(t, err, tc.want)
	}
}

func TestNewRegistersMetricsOnce(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	cfg := mapper.Config{NATSURL: "nats://127.0.0.1:4222", APIAddr: "127.0.0.1:7400", Registerer: reg}
	_, err := mapper.New(cfg)
	require.NoError(t, err)
	_, err = mapper.New(cfg)
	require.ErrorContains(t, err, "mapper: register metrics")
	_, err = mapper.New(mapper.Config{NATSURL: "nats://127.0.0.1:4222", APIAddr: "127.0.0.1:7400"})
	require.NoError(t, err, "nil Registerer uses a private registry")
}

// A chunk of a run carries the run's model (custom attributes included), the
// dialect the fetcher resolved and the dry-run flag: the mapper maps against
// that model, reads with that dialect (not the job's) and passes the types
// and the flag on in the batch.
func TestChunkModelDialectAndDryRun(t *testing.T) {
	t.Parallel()
	b := setup(t, intakev1.Directive_DIRECTIVE_CONTINUE, 0)
	run := newRun()
	model := &intakev1.DataObject{
		Name: "objects/accounts", Type: intakev1.ObjectType_OBJECT_TYPE_ACCOUNTS, Keys: []string{"account_id"},
		Attributes: []*intakev1.Attribute{
			{AttributeId: "account_id", Type: intakev1.AttributeType_ATTRIBUTE_TYPE_TEXT, System: true, Key: true},
			{AttributeId: "name", Type: intakev1.AttributeType_ATTRIBUTE_TYPE_TEXT, System: true},
			{AttributeId: "arr_eur", Type: intakev1.AttributeType_ATTRIBUTE_TYPE_CURRENCY},
		},
	}
	j := job(col("account_id", "id", ""), col("name", "name", ""), col("arr_eur", "arr", "1.234,56 €"))
	j.Mapping.Dialect = &intakev1.CsvDialect{} // the delimiter was detected by the fetcher
	b.publishChunk(t, &pipelinev1.Chunk{
		Run: run, Index: 0, FirstRow: 5, Rows: 3, Header: []string{"id", "name", "arr"}, Job: j, Model: model, DryRun: true,
		Dialect: &intakev1.CsvDialect{Delimiter: ";", Quote: "none", Escape: "none", Encoding: "utf-8"},
		Data:    []byte("A1;\"Acme, Inc.\";1.200,50 €\nA2;Bolt;x\nA3;5\" disk;3\n"),
	})
	rep := b.nextReport(t)
	require.Equal(t, intakev1.RunEventKind_RUN_EVENT_KIND_CHUNK_DONE, rep.GetKind(), rep.GetMessage())
	require.Equal(t, []*intakev1.RowError{{Row: 6, Column: "arr", Reason: `not a currency amount in the format 1.234,56: "x"`, Record: "A2;Bolt;x"}},
		rep.GetRowErrors())
	batch, _ := b.nextBatch(t, 10*time.Second)
	require.NotNil(t, batch)
	require.True(t, batch.GetDryRun())
	require.Equal(t, []string{"account_id", "name", "arr_eur"}, batch.GetAttributes())
	require.Equal(t, []intakev1.AttributeType{intakev1.AttributeType_ATTRIBUTE_TYPE_TEXT, intakev1.AttributeType_ATTRIBUTE_TYPE_TEXT,
		intakev1.AttributeType_ATTRIBUTE_TYPE_CURRENCY}, batch.GetTypes())
	require.Len(t, batch.GetRows(), 2)
	require.Equal(t, int64(5), batch.GetRows()[0].GetRow())
	require.Equal(t, `"Acme, Inc."`, batch.GetRows()[0].GetValues()[1].GetText(), "quoting is off: quotes are data")
	require.Equal(t, "1200.50", batch.GetRows()[0].GetValues()[2].GetDecimal())
	require.Equal(t, int64(7), batch.GetRows()[1].GetRow())
	require.Equal(t, `5" disk`, batch.GetRows()[1].GetValues()[1].GetText())
}

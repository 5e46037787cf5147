package pipeline_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/intakehq/intake/pkg/natstest"
	"github.com/intakehq/intake/pkg/pipeline"
)

// A stopping worker finishes the messages it is handling and leaves no
// message waiting for its ack deadline (a minute here): whatever it did not
// handle is deliverable to another replica at once.
func TestWorkHandsBackPulledMessagesOnStop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns := natstest.Start(t)
	_, js := ns.Connect(t)
	require.NoError(t, pipeline.EnsureStreams(ctx, js, 1))
	for range 5 {
		_, err := js.Publish(ctx, pipeline.SubjectRunRequest, []byte("run"))
		require.NoError(t, err)
	}
	cfg := pipeline.WorkerConfig{
		Stream:      pipeline.StreamRuns,
		Consumer:    pipeline.ConsumerConfig("fetcher", time.Minute, 10),
		Concurrency: 2,
	}
	started := make(chan struct{}, 10)
	release := make(chan struct{})
	handled := 0
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- pipeline.Work(wctx, js, cfg, 10*time.Second, func(ctx context.Context, msg jetstream.Msg) error {
			started <- struct{}{}
			<-release
			handled++
			return nil
		})
	}()
	<-started
	<-started
	cons, err := js.Consumer(ctx, pipeline.StreamRuns, "fetcher")
	require.NoError(t, err)
	stop()
	close(release)
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(15 * time.Second):
		t.Fatal("Work did not return after its context was cancelled")
	}
	require.GreaterOrEqual(t, handled, 1, "the message in hand was finished")

	// What is left is deliverable again right away.
	info, err := cons.Info(ctx)
	require.NoError(t, err)
	require.Zero(t, info.NumAckPending, "messages pulled but not started still wait for their ack deadline")
	batch, err := cons.Fetch(10, jetstream.FetchMaxWait(2*time.Second))
	require.NoError(t, err)
	got := 0
	for msg := range batch.Messages() {
		require.NoError(t, msg.Ack())
		got++
	}
	require.Equal(t, 5-handled, got, "every message not handled comes again")
}

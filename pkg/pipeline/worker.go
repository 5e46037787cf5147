package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Handler processes one message. Return nil to ack it, Term(err) to drop it
// for good (it can never succeed), Retry(err, d) to have it redelivered after
// d; any other error naks it for redelivery after a short delay.
type Handler func(ctx context.Context, msg jetstream.Msg) error

type termError struct{ err error }

func (e *termError) Error() string { return e.err.Error() }
func (e *termError) Unwrap() error { return e.err }

// Term marks err as permanent: the message is terminated, not redelivered.
func Term(err error) error { return &termError{err} }

type retryError struct {
	err   error
	delay time.Duration
}

func (e *retryError) Error() string { return e.err.Error() }
func (e *retryError) Unwrap() error { return e.err }

// Retry asks for redelivery after delay.
func Retry(err error, delay time.Duration) error { return &retryError{err, delay} }

// WorkerConfig configures Work.
type WorkerConfig struct {
	Stream   string
	Consumer jetstream.ConsumerConfig
	// Concurrency is how many messages are handled at once. Default 1.
	Concurrency int
	Logger      *slog.Logger
}

// Work consumes the stream's durable consumer until ctx is cancelled, running
// h for each message with up to Concurrency in flight. While a handler runs,
// the message's ack deadline is extended, so long work is not redelivered
// under it. On cancel it stops fetching, lets running handlers finish (they
// get a context that is cancelled only after grace), and returns ctx.Err().
func Work(ctx context.Context, js jetstream.JetStream, cfg WorkerConfig, grace time.Duration, h Handler) error {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.Concurrency < 1 {
		cfg.Concurrency = 1
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, cfg.Stream, cfg.Consumer)
	if err != nil {
		return fmt.Errorf("pipeline: consumer %s on %s: %w", cfg.Consumer.Durable, cfg.Stream, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(cfg.Concurrency))
	if err != nil {
		return fmt.Errorf("pipeline: consume %s: %w", cfg.Stream, err)
	}
	// Handlers run on a context that outlives ctx by the grace period.
	hctx, hcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer hcancel()
	stopped := make(chan struct{})
	go func() {
		<-ctx.Done()
		// Drain, not Stop: messages already pulled are still returned by
		// Next, so they can be handed back below instead of waiting out
		// their ack deadline.
		it.Drain()
		close(stopped)
	}()

	sem := make(chan struct{}, cfg.Concurrency)
	var wg sync.WaitGroup
	for {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		msg, err := it.Next()
		if err != nil {
			<-sem
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				break
			}
			log.Warn("pipeline: fetch failed", "stream", cfg.Stream, "err", err)
			time.Sleep(200 * time.Millisecond)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			handle(hctx, msg, cfg.Consumer.AckWait, log, h)
		}()
	}
	<-stopped
	handBack(it, log, cfg.Stream)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		log.Warn("pipeline: grace period over, cancelling in-flight work", "stream", cfg.Stream)
		hcancel()
		<-done
	}
	return ctx.Err()
}

// handBackWait bounds how long a stopping worker waits for the messages it
// pulled but did not start.
const handBackWait = 2 * time.Second

// handBack naks the messages a stopping worker pulled but did not start, so
// another replica takes them at once rather than after their ack deadline.
func handBack(it jetstream.MessagesContext, log *slog.Logger, stream string) {
	done := make(chan int)
	go func() {
		n := 0
		for {
			msg, err := it.Next()
			if err != nil {
				done <- n
				return
			}
			if err := msg.Nak(); err == nil {
				n++
			}
		}
	}()
	var n int
	select {
	case n = <-done:
	case <-time.After(handBackWait):
		it.Stop()
		n = <-done
	}
	if n > 0 {
		log.Info("pipeline: handed back messages not started", "stream", stream, "messages", n)
	}
}

func handle(ctx context.Context, msg jetstream.Msg, ackWait time.Duration, log *slog.Logger, h Handler) {
	if ackWait <= 0 {
		ackWait = 30 * time.Second
	}
	beat, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		t := time.NewTicker(ackWait / 3)
		defer t.Stop()
		for {
			select {
			case <-beat.Done():
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	err := h(ctx, msg)
	stop()
	var term *termError
	var retry *retryError
	switch {
	case err == nil:
		if aerr := msg.DoubleAck(ctx); aerr != nil {
			log.Warn("pipeline: ack failed; message will be redelivered", "subject", msg.Subject(), "err", aerr)
		}
	case errors.As(err, &term):
		log.Error("pipeline: message dropped", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
	case errors.As(err, &retry):
		_ = msg.NakWithDelay(retry.delay)
	default:
		log.Warn("pipeline: message failed, will retry", "subject", msg.Subject(), "err", err)
		_ = msg.NakWithDelay(time.Second)
	}
}

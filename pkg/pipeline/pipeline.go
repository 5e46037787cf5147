// Package pipeline is the contract between the stages on JetStream: stream
// and subject names, durable consumer names, the run archive bucket, and the
// helpers that publish protobuf messages with a Nats-Msg-Id for dedupe.
//
// Every stream is a work queue: a message is removed once a worker acks it.
// Every message is at least once; every stage is idempotent.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
)

// Streams, subjects and consumers.
const (
	StreamRuns        = "INTAKE_RUNS"
	SubjectRunRequest = "intake.run.request"
	ConsumerFetcher   = "fetcher"

	StreamChunks   = "INTAKE_CHUNKS"
	SubjectChunk   = "intake.chunk"
	ConsumerMapper = "mapper"

	StreamLoad     = "INTAKE_LOAD"
	SubjectBatch   = "intake.load.batch"
	SubjectSeal    = "intake.load.seal"
	ConsumerLoader = "loader"

	// ArchiveBucket is the JetStream object store bucket that keeps each
	// run's source file, keyed by run id.
	ArchiveBucket = "INTAKE_ARCHIVE"
)

// DedupeWindow is how long JetStream remembers a Nats-Msg-Id.
const DedupeWindow = 10 * time.Minute

// EnsureStreams creates or updates the pipeline's streams. Safe to call from
// every process at start.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, replicas int) error {
	if replicas < 1 {
		replicas = 1
	}
	for _, cfg := range []jetstream.StreamConfig{
		{Name: StreamRuns, Subjects: []string{SubjectRunRequest}},
		{Name: StreamChunks, Subjects: []string{SubjectChunk}, MaxMsgSize: 16 << 20},
		{Name: StreamLoad, Subjects: []string{SubjectBatch, SubjectSeal}, MaxMsgSize: 16 << 20},
	} {
		cfg.Retention = jetstream.WorkQueuePolicy
		cfg.Storage = jetstream.FileStorage
		cfg.Duplicates = DedupeWindow
		cfg.Replicas = replicas
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("pipeline: ensure stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// ConsumerConfig is the durable pull consumer of a stage.
func ConsumerConfig(durable string, ackWait time.Duration, maxAckPending int) jetstream.ConsumerConfig {
	if ackWait <= 0 {
		ackWait = 30 * time.Second
	}
	if maxAckPending <= 0 {
		maxAckPending = 64
	}
	return jetstream.ConsumerConfig{
		Durable:       durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxDeliver:    -1,
		MaxAckPending: maxAckPending,
		// Back off redeliveries of a failing message; the last value repeats.
		BackOff: nil,
	}
}

// Publish sends m on subject with msgID as the Nats-Msg-Id header, so a
// retried publish is stored once.
func Publish(ctx context.Context, js jetstream.JetStream, subject, msgID string, m proto.Message) error {
	data, err := proto.Marshal(m)
	if err != nil {
		return fmt.Errorf("pipeline: marshal %T: %w", m, err)
	}
	msg := nats.NewMsg(subject)
	msg.Data = data
	msg.Header.Set(jetstream.MsgIDHeader, msgID)
	return PublishMsg(ctx, js, msg)
}

// PublishMsg sends msg, already encoded and with its Nats-Msg-Id header,
// as Publish does: retrying while the stream does not answer.
func PublishMsg(ctx context.Context, js jetstream.JetStream, msg *nats.Msg) error {
	for attempt := 0; ; attempt++ {
		_, err := js.PublishMsg(ctx, msg)
		if err == nil {
			return nil
		}
		if attempt >= 4 || ctx.Err() != nil || !errors.Is(err, jetstream.ErrNoStreamResponse) && !errors.Is(err, nats.ErrTimeout) {
			return fmt.Errorf("pipeline: publish %s %s: %w", msg.Subject, msg.Header.Get(jetstream.MsgIDHeader), err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(100<<attempt) * time.Millisecond):
		}
	}
}

// ChunkMsgID and BatchMsgID are the dedupe ids of a run's chunk and batch.
func ChunkMsgID(run string, index int64) string { return fmt.Sprintf("%s/chunk/%d", run, index) }

// BatchMsgID is the dedupe id of the batch of a chunk.
func BatchMsgID(run string, index int64) string { return fmt.Sprintf("%s/batch/%d", run, index) }

// SealMsgID is the dedupe id of a run's seal.
func SealMsgID(run string) string { return run + "/seal" }

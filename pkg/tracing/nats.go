package tracing

import (
	"context"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// HeaderCarrier carries trace context in NATS message headers
// (traceparent, tracestate, baggage).
type HeaderCarrier nats.Header

var _ propagation.TextMapCarrier = HeaderCarrier(nil)

// Get returns the first value of key.
func (c HeaderCarrier) Get(key string) string { return nats.Header(c).Get(key) }

// Set sets key to value, replacing any value it had.
func (c HeaderCarrier) Set(key, value string) { nats.Header(c).Set(key, value) }

// Keys lists the keys in the carrier.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// Inject puts ctx's span context (and baggage) into msg's headers, creating
// them if msg has none. Nothing is added when ctx has no span.
func Inject(ctx context.Context, msg *nats.Msg) {
	if msg.Header == nil {
		msg.Header = nats.Header{}
	}
	InjectHeader(ctx, msg.Header)
}

// InjectHeader puts ctx's span context (and baggage) into h.
func InjectHeader(ctx context.Context, h nats.Header) {
	Propagator().Inject(ctx, HeaderCarrier(h))
}

// Extract returns ctx with the span context (and baggage) carried in h as
// its remote parent; ctx unchanged when h carries none.
func Extract(ctx context.Context, h nats.Header) context.Context {
	if h == nil {
		return ctx
	}
	return Propagator().Extract(ctx, HeaderCarrier(h))
}

// StartConsumer starts the span of one consumed message: a consumer span
// named name whose parent is the span context carried in the message's
// headers (the publisher's span), so the message's work joins the
// publisher's trace.
func StartConsumer(ctx context.Context, h nats.Header, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	return Tracer().Start(Extract(ctx, h), name,
		trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...))
}

// Handler wraps a JetStream message handler (a pipeline.Handler) with a
// consumer span per message (StartConsumer) with attribute intake.stage.
// The span is named by the message's subject through names ("fetch run"
// for intake.run.request), else "consume SUBJECT". The handler adds the
// message's ids (SetAttributes); a handler error marks the span failed.
func Handler(stage string, names map[string]string, h func(context.Context, jetstream.Msg) error) func(context.Context, jetstream.Msg) error {
	return func(ctx context.Context, msg jetstream.Msg) error {
		name, ok := names[msg.Subject()]
		if !ok {
			name = "consume " + msg.Subject()
		}
		ctx, span := StartConsumer(ctx, msg.Headers(), name,
			AttrStage.String(stage), attribute.String("messaging.destination.name", msg.Subject()))
		err := h(ctx, msg)
		End(span, err)
		return err
	}
}

// JetStream returns js with every PublishMsg and Publish carrying the
// publisher's span context (from the call's ctx) in the message headers.
// PublishMsgAsync has no context: Inject into the message first.
func JetStream(js jetstream.JetStream) jetstream.JetStream {
	if t, ok := js.(tracingJetStream); ok {
		return t
	}
	return tracingJetStream{js}
}

type tracingJetStream struct{ jetstream.JetStream }

// PublishMsg injects ctx's span context into m's headers and publishes it.
func (j tracingJetStream) PublishMsg(ctx context.Context, m *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	Inject(ctx, m)
	return j.JetStream.PublishMsg(ctx, m, opts...)
}

// Publish publishes data on subj with ctx's span context in its headers.
func (j tracingJetStream) Publish(ctx context.Context, subj string, data []byte, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	return j.PublishMsg(ctx, &nats.Msg{Subject: subj, Data: data}, opts...)
}

package tracing

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// Log attribute keys of the trace ids.
const (
	LogTraceID = "trace_id"
	LogSpanID  = "span_id"
)

// LogHandler wraps h so that a record logged with a context that holds a
// span (logger.InfoContext(ctx, …)) gets trace_id and span_id, unless the
// logger has them already (Logger).
func LogHandler(h slog.Handler) slog.Handler {
	if l, ok := h.(*logHandler); ok {
		return l
	}
	return &logHandler{next: h}
}

type logHandler struct {
	next slog.Handler
	// has: the logger carries trace ids already (Logger's With).
	has bool
}

func (l *logHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return l.next.Enabled(ctx, level)
}

func (l *logHandler) Handle(ctx context.Context, r slog.Record) error {
	if !l.has {
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			r = r.Clone()
			r.AddAttrs(slog.String(LogTraceID, sc.TraceID().String()), slog.String(LogSpanID, sc.SpanID().String()))
		}
	}
	return l.next.Handle(ctx, r)
}

func (l *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	has := l.has
	for _, a := range attrs {
		if a.Key == LogTraceID {
			has = true
		}
	}
	return &logHandler{next: l.next.WithAttrs(attrs), has: has}
}

func (l *logHandler) WithGroup(name string) slog.Handler {
	return &logHandler{next: l.next.WithGroup(name), has: l.has}
}

// Logger returns log with the trace_id and span_id of ctx's span, for a
// logger that logs without a context (log.Info); log itself when ctx has no
// span.
func Logger(ctx context.Context, log *slog.Logger) *slog.Logger {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return log
	}
	return log.With(LogTraceID, sc.TraceID().String(), LogSpanID, sc.SpanID().String())
}

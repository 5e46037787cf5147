// Package serve runs the small HTTP server every Intake process exposes next
// to its real work: Prometheus metrics on /metrics, liveness on /healthz and
// readiness on /readyz, for Kubernetes probes and scrapes.
package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ShutdownTimeout bounds how long HTTP waits for open requests after ctx ends.
const ShutdownTimeout = 5 * time.Second

// Handler returns the mux with /metrics, /healthz and /readyz.
//
// /healthz answers 200 as long as the process serves HTTP. /readyz answers
// 200 when ready() reports true and 503 otherwise; a nil ready is always
// ready. A nil gatherer serves an empty registry.
func Handler(gatherer prometheus.Gatherer, ready func() bool) http.Handler {
	if gatherer == nil {
		gatherer = prometheus.NewRegistry()
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if ready != nil && !ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintln(w, "not ready")
			return
		}
		_, _ = fmt.Fprintln(w, "ok")
	})
	return mux
}

// HTTP listens on addr and serves Handler(gatherer, ready) until ctx is
// cancelled, then shuts down gracefully. It returns nil after a shutdown
// caused by ctx and an error when it cannot listen or serve.
func HTTP(ctx context.Context, addr string, gatherer prometheus.Gatherer, ready func() bool, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("serve: listen on %s: %w", addr, err)
	}
	return Listener(ctx, ln, gatherer, ready, log)
}

// Listener is HTTP on a listener the caller opened (for example on port 0).
// It closes ln.
func Listener(ctx context.Context, ln net.Listener, gatherer prometheus.Gatherer, ready func() bool, log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	srv := &http.Server{
		Handler:           Handler(gatherer, ready),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("metrics and health endpoints listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("serve: http on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("serve: shut down http on %s: %w", ln.Addr(), err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: http on %s: %w", ln.Addr(), err)
	}
	return nil
}

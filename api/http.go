package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/vanguard/vanguardgrpc"
	"google.golang.org/grpc"
)

// The API over HTTP (Config.HTTPAddr): every service of the gRPC server,
// through connectrpc.com/vanguard, which speaks
//   - Connect: POST /intake.v1.JobService/TriggerJob with a JSON (or
//     binary protobuf) body; errors are JSON {"code": ..., "message": ...}
//     with the matching HTTP status (401, 403, 404, ...);
//   - gRPC-Web, for browsers;
//   - gRPC itself (HTTP/2: over TLS with Config.TLS, else without, "h2c"),
//
// all on one port, over TLS with Config.TLS. Request headers reach the handlers as gRPC metadata, so
// "Authorization: Bearer <token>" authorises TriggerJob here as over gRPC.

// httpReadHeaderTimeout bounds how long a client may take to send its
// request headers.
const httpReadHeaderTimeout = 10 * time.Second

// restServer serves the API over HTTP. A nil *restServer (HTTPAddr empty)
// does nothing.
type restServer struct {
	srv  *http.Server
	addr net.Addr
	log  *slog.Logger
}

// checkHTTPAddr is Validate's rule for Config.HTTPAddr.
func (c Config) checkHTTPAddr() error {
	if c.HTTPAddr == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		return fmt.Errorf("api: HTTPAddr %q (empty: no HTTP API): %w", c.HTTPAddr, err)
	}
	return nil
}

// startHTTP listens on Config.HTTPAddr and serves gs's services there until
// shutdown; nil when HTTPAddr is empty. A serve error goes to failed
// (without blocking). Call it after every service is registered on gs.
func (s *Server) startHTTP(gs *grpc.Server, failed chan<- error) (*restServer, error) {
	if s.cfg.HTTPAddr == "" {
		return nil, nil
	}
	h, err := vanguardgrpc.NewTranscoder(gs)
	if err != nil {
		return nil, fmt.Errorf("api: HTTP API: %w", err)
	}
	lis, err := net.Listen("tcp", s.cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("api: listen on %s (HTTPAddr): %w", s.cfg.HTTPAddr, err)
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	if s.cfg.TLS != nil {
		protocols.SetHTTP2(true)
	} else {
		protocols.SetUnencryptedHTTP2(true) // gRPC and Connect over HTTP/2 without TLS
	}
	r := &restServer{
		srv: &http.Server{
			Handler:           connectByDefault(h),
			Protocols:         &protocols,
			ReadHeaderTimeout: httpReadHeaderTimeout,
		},
		addr: lis.Addr(),
		log:  s.log,
	}
	serve := r.srv.Serve
	if s.cfg.TLS != nil {
		r.srv.TLSConfig = s.cfg.TLS.Clone()
		serve = func(lis net.Listener) error { return r.srv.ServeTLS(lis, "", "") } // the certificate of TLSConfig
	}
	go func() {
		if err := serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			select {
			case failed <- fmt.Errorf("HTTP API on %s: %w", lis.Addr(), err):
			default:
			}
		}
	}()
	s.addrMu.Lock()
	s.rest = r
	s.addrMu.Unlock()
	s.log.Info("HTTP API serving (Connect JSON, gRPC-Web, gRPC)", "http_addr", lis.Addr().String(), "tls", s.cfg.TLS != nil)
	return r, nil
}

// connectByDefault marks a unary POST as the Connect protocol when the
// caller did not say (the "Connect-Protocol-Version: 1" header), so a plain
// `curl -X POST -H 'Content-Type: application/json'` works: vanguard would
// otherwise take it for a REST call, and the API defines no REST routes.
// gRPC, gRPC-Web and Connect streaming requests say what they are in
// their Content-Type and pass unchanged.
func connectByDefault(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ct := r.Header.Get("Content-Type")
		if r.Method == http.MethodPost && r.Header.Get("Connect-Protocol-Version") == "" &&
			strings.HasPrefix(ct, "application/") && !strings.HasPrefix(ct, "application/grpc") &&
			!strings.HasPrefix(ct, "application/connect+") {
			r.Header.Set("Connect-Protocol-Version", "1")
		}
		h.ServeHTTP(w, r)
	})
}

// HTTPAddr is the address the HTTP API listens on (Config.HTTPAddr), nil
// when it is off or before the server started.
func (s *Server) HTTPAddr() net.Addr {
	s.addrMu.Lock()
	defer s.addrMu.Unlock()
	if s.rest == nil {
		return nil
	}
	return s.rest.addr
}

// shutdown stops taking calls and waits up to timeout for the open ones,
// then closes them. It must end before the gRPC server's GracefulStop,
// which would cut the HTTP calls it serves off.
func (r *restServer) shutdown(timeout time.Duration) {
	if r == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := r.srv.Shutdown(ctx); err != nil {
		r.log.Warn("HTTP API graceful stop timed out; closing open calls", "timeout", timeout)
		_ = r.srv.Close()
	}
}

// close stops the HTTP API at once (when Run fails).
func (r *restServer) close() {
	if r != nil {
		_ = r.srv.Close()
	}
}

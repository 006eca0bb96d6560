package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/identity"
	"github.com/backstage-mcp/backstage-mcp/server/state"
	mcpserver "github.com/mark3labs/mcp-go/server"
)

// Handler returns the HTTP handler: Streamable HTTP MCP at /mcp, /healthz,
// /readyz, /metrics and, with token verification on, the protected
// resource metadata.
func (s *Server) Handler() http.Handler {
	h, _ := s.handler()
	return h
}

func (s *Server) handler() (http.Handler, *mcpserver.StreamableHTTPServer) {
	mux := http.NewServeMux()
	streamable := mcpserver.NewStreamableHTTPServer(s.mcp,
		mcpserver.WithEndpointPath("/mcp"),
		mcpserver.WithStreamableHTTPLogger(s.log),
		mcpserver.WithSessionIdleTTL(s.cfg.Server.Sessions.WithDefaults().IdleTTL),
	)
	// Inside out: mcp-go, then the per-revision JSON-RPC rules it lacks
	// (interop.go), then ingress redaction (ingress.go), then session lifecycle, then (with sign-in) scope,
	// token verification and the per-address limiter in front of it.
	var mcpH http.Handler = s.sessionLifecycle(s.opts.Sessions, s.ingress(s.interop(streamable)))
	if a := s.opts.Auth; a != nil {
		mcpH = s.unauth.middleware(s, a.Middleware(s.requireScope(mcpH)))
		prm := a.ProtectedResourceMetadata()
		mux.Handle("GET /.well-known/oauth-protected-resource", prm)
		mux.Handle("GET /.well-known/oauth-protected-resource/mcp", prm)
	}
	mux.Handle("/mcp", s.checkOrigin(s.limitBody(mcpH)))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", s.metrics)
	return mux, streamable
}

// requireScope answers 403 insufficient_scope to a verified token that
// lacks the configured OAuth scope.
func (s *Server) requireScope(next http.Handler) http.Handler {
	scope := s.opts.RequiredScope
	if scope == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := identity.FromContext(r.Context()); !ok || !p.HasScope(scope) {
			s.auditAuthFailure(r.Context(), "insufficient scope", r)
			s.opts.Auth.InsufficientScope(w, scope)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// auditAuthFailure records a rejected request in the audit trail,
// aggregated per client address and reason (see authFailureLog), and
// charges the address's unauthenticated budget for a failed verification
// (requests without a token were charged on arrival).
func (s *Server) auditAuthFailure(ctx context.Context, reason string, r *http.Request) {
	rec := s.authFailureRecord(ctx, reason, r)
	if s.unauth != nil && reason != "no token" && reason != unauthBlockedReason {
		_, _ = s.unauth.charge(ctx, rec.Source)
	}
	s.authFailures.add(rec)
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if err := s.opts.Audit.Healthy(); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "audit": "failing: calls are refused"})
		return
	}
	if s.opts.Ready == nil {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	if err := s.opts.Ready(ctx); err != nil {
		s.log.WarnContext(ctx, "not ready", "err", err)
		if errors.Is(err, state.ErrUnavailable) {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable",
				"state": "Redis unreachable: rate limits and sessions fail closed until it answers"})
			return
		}
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "backstage": "unreachable or refusing the server's credential"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "backstage": "ok"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// checkOrigin rejects browser requests from origins other than the
// server's own and the configured ones (MCP transport spec: invalid Origin
// → 403). Requests without Origin come from non-browser clients.
func (s *Server) checkOrigin(next http.Handler) http.Handler {
	allowed := map[string]bool{}
	if o := originOf(s.cfg.Server.PublicURL); o != "" {
		allowed[o] = true
	}
	for _, o := range s.cfg.Server.AllowedOrigins {
		allowed[originOf(o)] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o := r.Header.Get("Origin"); o != "" && !allowed[originOf(o)] {
			http.Error(w, "Forbidden: Origin not allowed", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func originOf(s string) string {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return strings.ToLower(u.Scheme + "://" + u.Host)
}

// limitBody caps request bodies; an oversized body gets 413 before any
// JSON-RPC parsing.
func (s *Server) limitBody(next http.Handler) http.Handler {
	limit := s.cfg.Server.MaxRequestBytes
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > limit {
			http.Error(w, fmt.Sprintf("request body larger than %d bytes", limit), http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		next.ServeHTTP(w, r)
	})
}

// ServeHTTP listens on addr until ctx is cancelled, then shuts down
// gracefully within the configured timeout. ready, when not nil, receives
// the bound address once listening.
func (s *Server) ServeHTTP(ctx context.Context, addr string, ready func(net.Addr)) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("server: listen %s: %w", addr, err)
	}
	if s.cfg.Server.PublicURL == "" {
		s.cfg.Server.PublicURL = "http://" + ln.Addr().String()
	}
	h, streamable := s.handler()
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		// In-flight requests must survive the cancellation that starts the
		// graceful shutdown; Shutdown bounds how long they get.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	s.log.Info("listening", "addr", ln.Addr().String(), "mcp", s.cfg.Server.PublicURL+"/mcp")
	if ready != nil {
		ready(ln.Addr())
	}
	select {
	case err := <-errc:
		return fmt.Errorf("server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.Server.ShutdownTimeout)
	defer cancel()
	s.log.Info("shutting down")
	// Long-lived SSE streams would hold Shutdown until its deadline: end
	// them first, then let in-flight calls finish.
	streamable.CloseSessions(sctx)
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.log.Warn("graceful shutdown timed out; closing the remaining connections", "err", err)
		_ = hs.Close()
	}
	return nil
}

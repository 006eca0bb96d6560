package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/audit"
	"github.com/backstage-mcp/backstage-mcp/server/identity"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog/mirror"
	mcpserver "github.com/mark3labs/mcp-go/server"
)

// Handler returns the agents' HTTP handler: Streamable HTTP MCP at /mcp,
// /healthz, /readyz (status only) and, with token verification on, the
// protected resource metadata. /metrics, pprof and the readiness details
// are on the admin listener only (AdminHandler).
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
	// Inside out: mcp-go, then the one read of each message: ingress
	// redaction (ingress.go) and the per-revision JSON-RPC rules mcp-go
	// lacks (interop.go), then session lifecycle, then (with sign-in) scope,
	// token verification and the per-address limiter in front of it.
	end := transportEnder(streamable)
	s.transports.Lock()
	s.transports.end = append(s.transports.end, end)
	s.transports.Unlock()
	mcpH := s.sessionLifecycle(s.opts.Sessions, end, s.streams.middleware(s, s.ingress(streamable)))
	if a := s.opts.Auth; a != nil {
		mcpH = s.unauth.middleware(s, a.Middleware(s.noteVerified(s.requireScope(mcpH))))
		prm := a.ProtectedResourceMetadata()
		mux.Handle("GET /.well-known/oauth-protected-resource", prm)
		mux.Handle("GET /.well-known/oauth-protected-resource/mcp", prm)
	} else {
		mcpH = withClientAddr(mcpH, s.cfg.Server.trustedPrefixes())
	}
	mux.Handle("/mcp", withCallerTrace(s.opts.Tracing.HTTP(s.checkOrigin(s.limitBody(mcpH))), s.cfg.Server.ForwardCallerTracestate))
	mux.HandleFunc("GET /healthz", s.healthzStatus)
	mux.HandleFunc("GET /readyz", s.readyzStatus)
	return mux, streamable
}

// noteVerified tells the unauthenticated guard that the request's token
// verified (it runs behind the token check only), so that the token's
// holder is let through even while their address is flooded.
func (s *Server) noteVerified(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := identity.FromContext(r.Context()); ok {
			s.unauth.noteVerified(r, p.ExpiresAt)
		}
		next.ServeHTTP(w, r)
	})
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
	s.auditRefusal(ctx, s.authFailureRecord(ctx, reason, r))
}

// auditRefusal records a refused request built by authFailureRecord
// (possibly retyped), aggregated per source and reason, and charges the
// source's unauthenticated budget unless the request was already charged,
// or its token verified (a session that Redis lost, a missing scope: a
// signed-in user is never charged to the address's unauthenticated
// bucket), or it failed for a dependency's sake (the token verified,
// Backstage did not answer the user lookup: charging it would lock
// signed-in users out during a Backstage outage).
func (s *Server) auditRefusal(ctx context.Context, rec *audit.Record) {
	_, verified := identity.FromContext(ctx)
	if s.unauth != nil && !verified && rec.Reason != "no token" && rec.Reason != unauthBlockedReason && rec.Reason != identity.ReasonResolutionUnavailable {
		_, _ = s.unauth.charge(ctx, rec.Source)
	}
	s.authFailures.add(rec)
}

// mirrorInfo is the mirror's state as /readyz and tool results give it.
func mirrorInfo(st mirror.Status) map[string]any {
	info := map[string]any{
		"mode":                CatalogMirror,
		"entities":            st.Entities,
		"stale":               st.Stale,
		"ready":               st.Ready,
		"maxStalenessSeconds": st.MaxStaleness.Seconds(),
		"lastSyncFailed":      st.LastError != "",
	}
	if st.Synced {
		info["syncedAt"] = st.SyncedAt.UTC().Format(time.RFC3339Nano)
		info["staleAt"] = st.StaleAt.UTC().Format(time.RFC3339Nano)
		info["ageSeconds"] = seconds(st.Age)
		info["lastSyncSeconds"] = seconds(st.SyncDuration)
		info["lastFullSyncSeconds"] = seconds(st.FullSyncDuration)
	}
	if !st.SyncingSince.IsZero() {
		info["syncingSince"] = st.SyncingSince.UTC().Format(time.RFC3339Nano)
		info["syncingForSeconds"] = seconds(st.SyncingFor)
	}
	return info
}

// seconds rounds d to milliseconds, in seconds.
func seconds(d time.Duration) float64 { return math.Round(d.Seconds()*1000) / 1000 }

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
	errc := make(chan error, 2)
	go func() { errc <- hs.Serve(ln) }()
	pctx, stopProbe := context.WithCancel(ctx)
	defer stopProbe()
	go s.probeReadiness(pctx)
	admin, err := s.startAdmin(ctx)
	if err != nil {
		_ = hs.Close()
		return err
	}
	if admin != nil {
		go func() { errc <- admin.serve() }()
		defer admin.close()
	}
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
	s.ready.draining.Store(true)
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

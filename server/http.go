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
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
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
// source's unauthenticated budget unless the request was already charged.
func (s *Server) auditRefusal(ctx context.Context, rec *audit.Record) {
	if s.unauth != nil && rec.Reason != "no token" && rec.Reason != unauthBlockedReason {
		_, _ = s.unauth.charge(ctx, rec.Source)
	}
	s.authFailures.add(rec)
}

// ReadyCheck is one dependency reported by /readyz. Check returns a short
// detail for operators (never a secret) and an error when the dependency
// keeps the server from answering calls.
type ReadyCheck struct {
	Name  string
	Check func(ctx context.Context) (detail string, err error)
	// Info, when set, adds machine-readable facts to the dependency's
	// entry (never a secret).
	Info func() map[string]any
}

// readyStatus is one dependency in the /readyz body.
type readyStatus struct {
	Status string         `json:"status"`
	Detail string         `json:"detail,omitempty"`
	Info   map[string]any `json:"info,omitempty"`
	Ms     float64        `json:"ms"`
}

// readyTimeout bounds the whole /readyz answer; checks run concurrently.
const readyTimeout = 3 * time.Second

// readyChecks lists the dependencies: Backstage (with the server's own
// credential), the audit sink, every trusted identity provider's signing
// keys (fetched or cached) and any extra checks (Redis when configured).
func (s *Server) readyChecks() []ReadyCheck {
	checks := []ReadyCheck{{Name: "audit", Check: func(context.Context) (string, error) {
		if err := s.opts.Audit.Healthy(); err != nil {
			return "failing: calls are refused", err
		}
		return "writable", nil
	}}}
	if s.opts.Ready != nil {
		checks = append(checks, ReadyCheck{Name: "backstage", Check: func(ctx context.Context) (string, error) {
			if err := s.opts.Ready(ctx); err != nil {
				return "unreachable or refusing the server's credential", err
			}
			return "reachable", nil
		}})
	}
	checks = append(checks, s.catalogCheck())
	if s.opts.Auth != nil {
		checks = append(checks, ReadyCheck{Name: "identity", Check: func(ctx context.Context) (string, error) {
			var parts []string
			var firstErr error
			for _, st := range s.opts.Auth.Ready(ctx) {
				if st.Err != nil {
					parts = append(parts, st.Issuer+": no signing keys")
					if firstErr == nil {
						firstErr = st.Err
					}
					continue
				}
				parts = append(parts, fmt.Sprintf("%s: %d keys", st.Issuer, st.Keys))
			}
			return strings.Join(parts, "; "), firstErr
		}})
	}
	return append(checks, s.opts.ReadyChecks...)
}

// catalogCheck reports where catalog reads are answered. In mirror mode it
// fails when the mirror has not completed its first sync or is stale
// (older than its maximum staleness; the calls then fail closed too), and
// gives the mirror's size, last sync time, age and sync durations.
func (s *Server) catalogCheck() ReadyCheck {
	m := s.opts.Mirror
	if m == nil {
		return ReadyCheck{Name: "catalog",
			Check: func(context.Context) (string, error) { return "passthrough: every call reads Backstage", nil },
			Info:  func() map[string]any { return map[string]any{"mode": CatalogPassthrough} }}
	}
	return ReadyCheck{Name: "catalog", Check: func(context.Context) (string, error) {
		st := m.Status()
		switch {
		case !st.Synced && !st.SyncingSince.IsZero():
			return fmt.Sprintf("mirror: first sync running for %s; catalog calls fail until it completes",
				st.SyncingFor.Round(time.Second)), mirror.ErrNotReady
		case !st.Synced:
			return "mirror: first sync not completed; catalog calls fail", mirror.ErrNotReady
		case st.Stale:
			return fmt.Sprintf("mirror: %d entities, stale: data %s old (last completed sync started then), beyond maxStaleness %s; catalog calls fail",
				st.Entities, st.Age.Round(time.Second), st.MaxStaleness), mirror.ErrNotReady
		case st.LastError != "":
			return fmt.Sprintf("mirror: %d entities, data %s old; the last sync failed, answering until the data is %s old",
				st.Entities, st.Age.Round(time.Second), st.MaxStaleness), nil
		}
		return fmt.Sprintf("mirror: %d entities, data %s old (last sync took %s)", st.Entities, st.Age.Round(time.Second),
			st.SyncDuration.Round(time.Millisecond)), nil
	}, Info: func() map[string]any { return mirrorInfo(m.Status()) }}
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

// readyBody is the /readyz answer: the status and, on the admin listener
// only, each check's state.
type readyBody struct {
	Status string                 `json:"status"`
	Checks map[string]readyStatus `json:"checks,omitempty"`
}

// readyz answers 200 when every dependency is ready and 503 otherwise,
// with a JSON body naming each dependency's state. It is served on the
// admin listener only: the details (a mirror's catalog size, Redis and
// Backstage latencies) are for operators, not for callers.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	code, body := s.readyReport(r.Context())
	writeJSON(w, code, body)
}

// readyzStatus is /readyz on the agents' listener: the same status and
// code as the admin listener's, without the checks' details.
func (s *Server) readyzStatus(w http.ResponseWriter, r *http.Request) {
	code, body := s.readyReport(r.Context())
	writeJSON(w, code, readyBody{Status: body.Status})
}

// readyReport runs every ready check concurrently within readyTimeout.
func (s *Server) readyReport(ctx context.Context) (int, readyBody) {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	checks := s.readyChecks()
	results := make([]readyStatus, len(checks))
	errs := make([]error, len(checks))
	done := make(chan int, len(checks))
	for i, c := range checks {
		go func() {
			start := time.Now()
			detail, err := c.Check(ctx)
			results[i] = readyStatus{Status: "ok", Detail: detail, Ms: float64(time.Since(start).Microseconds()) / 1000}
			if c.Info != nil {
				results[i].Info = c.Info()
			}
			errs[i] = err
			done <- i
		}()
	}
	body := readyBody{Status: "ok", Checks: make(map[string]readyStatus, len(checks))}
	finished := make([]bool, len(checks))
	for range checks {
		select {
		case i := <-done:
			finished[i] = true
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	for i, c := range checks {
		st := readyStatus{Status: "fail", Detail: "no answer within " + readyTimeout.String(), Ms: float64(readyTimeout.Milliseconds())}
		if finished[i] {
			st = results[i]
			if errs[i] != nil {
				st.Status = "fail"
				s.log.WarnContext(ctx, "not ready", "dependency", c.Name, "err", errs[i])
			}
		}
		if st.Status != "ok" {
			body.Status = "unavailable"
		}
		body.Checks[c.Name] = st
	}
	code := http.StatusOK
	if body.Status != "ok" {
		code = http.StatusServiceUnavailable
	}
	return code, body
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
	errc := make(chan error, 2)
	go func() { errc <- hs.Serve(ln) }()
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

package server

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/backstage-mcp/backstage-mcp/redact"
	"github.com/backstage-mcp/backstage-mcp/server/audit"
	"github.com/backstage-mcp/backstage-mcp/server/chain"
	"github.com/backstage-mcp/backstage-mcp/server/identity"
	"github.com/backstage-mcp/backstage-mcp/server/state"
	"github.com/mark3labs/mcp-go/mcp"
)

// sessionLifecycle enforces the Streamable HTTP session lifecycle of the
// MCP spec (protocol versions up to 2025-11-25; later versions have no
// sessions and pass through) with the records in store, so that every
// replica sharing the store agrees:
//
//   - initialize is rate-limited like a tool call (user × class, agent,
//     global); a refusal is 429 (503 if the store is down) with a JSON-RPC
//     error, and is audited;
//   - the session caps never refuse an initialize: at the per-user cap the
//     user's least recently used session ends, at the service-wide cap the
//     service's (clients rarely end sessions, so refusing would lock users
//     out with their own abandoned sessions); each eviction is logged and
//     counted in backstage_mcp_sessions_evicted_total;
//   - a request naming a session that is unknown, ended, evicted, expired
//     or opened by someone else gets 404 (no oracle between those cases),
//     on which the client opens a new session;
//   - DELETE ends the session everywhere; the next request with its ID
//     gets 404.
//
// endTransport drops mcp-go's state for a session this process will not
// serve again: one evicted, or one whose initialize was refused after
// mcp-go had answered it.
func (s *Server) sessionLifecycle(store state.SessionStore, endTransport func(sid string), next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if mcp.IsModernProtocol(r.Header.Get(mcp.HeaderProtocolVersion)) {
			next.ServeHTTP(w, r)
			return
		}
		ctx := r.Context()
		p, err := s.principal(ctx)
		if err != nil {
			next.ServeHTTP(w, r) // no identity: the call chain refuses it
			return
		}
		if sid := r.Header.Get(identity.SessionHeader); sid != "" {
			s.existingSession(w, r, store, p, sid, next)
			return
		}
		if r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				http.Error(w, fmt.Sprintf("request body larger than %d bytes", mbe.Limit), http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "could not read the request body", http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		var msg struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
		}
		var params struct {
			ProtocolVersion string `json:"protocolVersion"`
		}
		// An initialize whose params is not a valid object is refused by
		// interop (-32602, aggregated audit) before mcp-go sees it: it
		// opens no session, so it is not charged here either.
		if json.Unmarshal(body, &msg) != nil || msg.Method != string(mcp.MethodInitialize) ||
			!initializeParams(msg.Params) || json.Unmarshal(msg.Params, &params) != nil {
			next.ServeHTTP(w, r)
			return
		}
		refuse := func(status int, decision audit.Decision, reason, limiter, message string, retry int) {
			s.auditSession(ctx, r, p, "", decision, reason, limiter)
			if retry > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(retry))
			}
			writeRPCError(w, r, status, msg.ID, -32000, message)
		}
		g, _ := s.grantFor(p)
		d, err := s.opts.Limiter.Allow(ctx, p.LimitKey(), g.RateClass(), p.Agent.ClientID)
		switch {
		case err != nil:
			s.log.ErrorContext(ctx, "rate limiter failed", "err", err)
			refuse(http.StatusServiceUnavailable, audit.DecisionRefused, "rate limiter failed", chain.LimiterStore, "the rate limiter is unavailable; initialize was refused", 1)
			return
		case !d.Allowed:
			s.metrics.rateLimited("initialize", d.Limit)
			refuse(http.StatusTooManyRequests, audit.DecisionRateLimited, d.String(), d.Limit,
				fmt.Sprintf("rate limited (%s limit); retry in %s", d.Limit, roundUp(d.RetryAfter)), retrySeconds(d.RetryAfter))
			return
		}
		sw := &sessionWriter{ResponseWriter: w, create: func(sid string) bool {
			evicted, err := store.Create(ctx, state.Session{ID: sid, Owner: p.Key(), User: p.LimitKey(), Protocol: redact.Clip(params.ProtocolVersion, 32)})
			if err != nil {
				s.log.ErrorContext(ctx, "session store failed", "err", err)
				refuse(http.StatusServiceUnavailable, audit.DecisionRefused, "session store unavailable", limiterSessionStore, "the session store is unavailable; initialize was refused", 1)
				return false
			}
			for _, e := range evicted {
				which := "user"
				if e.Reason == state.EvictedServiceCap {
					which = "service"
				}
				s.metrics.sessionEvicted(which)
				s.log.InfoContext(ctx, "session evicted: least recently used at the "+which+" session cap",
					"session", e.ID, "sessionUser", e.User, "for", sid)
				endTransport(e.ID)
			}
			return true
		}}
		next.ServeHTTP(sw, r)
		switch {
		case sw.sid == "":
		case sw.failed:
			// mcp-go registers a session after writing its answer, which
			// the client never saw: drop it now, not after the idle TTL.
			endTransport(sw.sid)
		default:
			// A concurrent initialize may have evicted this session before
			// mcp-go registered it, when dropping it there was a no-op.
			if _, err := store.Touch(ctx, sw.sid); errors.Is(err, state.ErrSessionNotFound) {
				endTransport(sw.sid)
			}
		}
	})
}

// existingSession serves a request that names a session.
func (s *Server) existingSession(w http.ResponseWriter, r *http.Request, store state.SessionStore, p *identity.Principal, sid string, next http.Handler) {
	ctx := r.Context()
	sess, err := store.Touch(ctx, sid)
	switch {
	case errors.Is(err, state.ErrSessionNotFound):
		s.auditAuthFailure(ctx, "unknown or ended session", r)
		http.Error(w, "session not found", http.StatusNotFound)
		return
	case err != nil:
		s.log.ErrorContext(ctx, "session store failed", "err", err)
		s.auditStoreRefusal(ctx, r, p, sid)
		http.Error(w, "the session store is unavailable", http.StatusServiceUnavailable)
		return
	case sess.Owner != p.Key():
		s.auditAuthFailure(ctx, "session of another user", r)
		http.Error(w, "session not found", http.StatusNotFound)
		return
	}
	if r.Method == http.MethodDelete {
		if _, err := store.Delete(ctx, sid); err != nil && !errors.Is(err, state.ErrSessionNotFound) {
			s.log.ErrorContext(ctx, "session store failed", "err", err)
			s.auditStoreRefusal(ctx, r, p, sid)
			http.Error(w, "the session store is unavailable", http.StatusServiceUnavailable)
			return
		}
	}
	next.ServeHTTP(w, r)
}

// limiterSessionStore names the session store (Redis with state: redis)
// failing closed, in records.
const limiterSessionStore = "session-store"

// auditSession records a refused session.
func (s *Server) auditSession(ctx context.Context, r *http.Request, p *identity.Principal, sid string, d audit.Decision, reason, limiter string) {
	rec := &audit.Record{Type: audit.TypeSession, Transport: audit.TransportHTTP, Decision: d, Reason: redact.Clip(reason, 300),
		Rule: "session", SessionID: sid, Tool: string(mcp.MethodInitialize), CallerTraceparent: callerTraceparentOf(ctx),
		Stage: "session", Limiter: limiter, Source: clientAddrOf(ctx), UserAgent: audit.CleanUserAgent(r.UserAgent())}
	rec.User, rec.Agent = chain.Who(p)
	if err := s.appendAudit(ctx, rec); err != nil {
		s.metrics.auditFailure()
		s.log.ErrorContext(ctx, "audit write failed", "type", "session", "err", err)
	}
}

// maxRefusedCalls bounds the call records one refused request yields (a
// batch); the rest are counted in the last record's Count.
const maxRefusedCalls = 32

// auditStoreRefusal records a request of session sid refused because the
// session store is unavailable (fail closed): one call record per
// tools/call the body holds (a batch holds several), so that the trail
// counts every refused call, and a session record for anything else (a
// notification, a stream, a DELETE). The body is read within the
// transport's size limit; it was going to be refused unread.
func (s *Server) auditStoreRefusal(ctx context.Context, r *http.Request, p *identity.Principal, sid string) {
	base := audit.Record{Transport: audit.TransportHTTP, Decision: audit.DecisionRefused, Reason: "session store unavailable",
		Rule: "session", SessionID: redact.Clip(sid, 128), CallerTraceparent: callerTraceparentOf(ctx), Stage: "session",
		Limiter: limiterSessionStore, Source: clientAddrOf(ctx), UserAgent: audit.CleanUserAgent(r.UserAgent())}
	base.User, base.Agent = chain.Who(p)
	var recs []*audit.Record
	what := r.Method
	if r.Method == http.MethodPost && r.Body != nil {
		body, _ := io.ReadAll(r.Body)
		var method string
		recs, method = refusedCalls(base, body)
		what = cmp.Or(method, what)
	}
	if len(recs) == 0 {
		rec := base
		rec.Type, rec.Tool = audit.TypeSession, redact.Clip(what, 64)
		recs = []*audit.Record{&rec}
	}
	for _, rec := range recs {
		if err := s.appendAudit(ctx, rec); err != nil {
			s.metrics.auditFailure()
			s.log.ErrorContext(ctx, "audit write failed", "type", rec.Type, "err", err)
		}
	}
}

// refusedCalls is one call record (a copy of base) per tools/call in a
// JSON-RPC message or batch, at most maxRefusedCalls, the last counting
// the rest; none when the body holds no tools/call. method is the first
// message's method.
func refusedCalls(base audit.Record, body []byte) (recs []*audit.Record, method string) {
	type call struct {
		Method string `json:"method"`
		Params struct {
			Name      string          `json:"name"`
			Arguments json.RawMessage `json:"arguments"`
		} `json:"params"`
	}
	var msgs []call
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		if json.Unmarshal(trimmed, &msgs) != nil {
			return nil, ""
		}
	} else {
		var one call
		if json.Unmarshal(trimmed, &one) != nil {
			return nil, ""
		}
		msgs = []call{one}
	}
	var out []*audit.Record
	if len(msgs) > 0 {
		method = msgs[0].Method
	}
	for _, m := range msgs {
		if m.Method != string(mcp.MethodToolsCall) {
			continue
		}
		if len(out) == maxRefusedCalls {
			last := out[len(out)-1]
			last.Count = max(last.Count, 1) + 1
			continue
		}
		rec := base
		rec.Type, rec.Tool, rec.Arguments = audit.TypeCall, redact.Clip(m.Params.Name, 128), m.Params.Arguments
		out = append(out, &rec)
	}
	return out, method
}

// retrySeconds is d in whole seconds, rounded up, at least 1.
func retrySeconds(d time.Duration) int {
	return max(1, int((d+time.Second-1)/time.Second))
}

// sessionWriter records the session an initialize response hands out
// before the response leaves; if it cannot be recorded (cap reached, store
// down), create writes the refusal and mcp-go's answer is discarded.
type sessionWriter struct {
	http.ResponseWriter
	create  func(sid string) bool
	sid     string // the session ID mcp-go handed out
	written bool
	failed  bool
}

func (w *sessionWriter) WriteHeader(code int) {
	if w.written {
		if !w.failed {
			w.ResponseWriter.WriteHeader(code)
		}
		return
	}
	w.written = true
	if sid := w.Header().Get(identity.SessionHeader); sid != "" && code < 300 {
		w.Header().Del(identity.SessionHeader)
		w.sid = sid
		if !w.create(sid) {
			w.failed = true
			return
		}
		w.Header().Set(identity.SessionHeader, sid)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *sessionWriter) Write(b []byte) (int, error) {
	if !w.written {
		w.WriteHeader(http.StatusOK)
	}
	if w.failed {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// Flush keeps server-sent event streams working.
func (w *sessionWriter) Flush() {
	if !w.written {
		w.WriteHeader(http.StatusOK)
	}
	if w.failed {
		return
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *sessionWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// transportEnder returns endTransport for sessionLifecycle: it drops
// everything mcp-go keeps for a session (its session map entry, the
// transport's per-session tools, resources, log level and idle clock) the
// one way mcp-go exports, a DELETE for that session served to it directly.
// A session this process never served is a no-op.
func transportEnder(transport http.Handler) func(sid string) {
	return func(sid string) {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodDelete, "/mcp", nil)
		if err != nil {
			return
		}
		req.Header.Set(identity.SessionHeader, sid)
		transport.ServeHTTP(discardWriter{h: http.Header{}}, req)
	}
}

// discardWriter is a ResponseWriter that keeps nothing.
type discardWriter struct{ h http.Header }

func (d discardWriter) Header() http.Header       { return d.h }
func (discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (discardWriter) WriteHeader(int)             {}

// endTransports drops mcp-go's state for sid in every transport of this
// server: for sessions another replica evicted (with state: redis).
func (s *Server) endTransports(sid string) {
	s.transports.Lock()
	end := slices.Clone(s.transports.end)
	s.transports.Unlock()
	for _, f := range end {
		f(sid)
	}
}

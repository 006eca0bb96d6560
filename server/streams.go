package server

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/identity"
	"github.com/backstage-mcp/backstage-mcp/server/state"
	"github.com/mark3labs/mcp-go/mcp"
)

// Standalone SSE streams (GET /mcp, protocol revisions before
// 2026-07-28) cost a file descriptor, a goroutine pair and tens of KiB
// each for as long as the client keeps them. mcp-go accepts any number per
// session; streamGuard bounds them per session and per user (per replica),
// ending the oldest stream at a cap rather than refusing the new one (a
// client that reconnects before its old stream is noticed dead is never
// locked out; one that opens thousands keeps the cap), and ends a stream
// that has carried nothing for StreamIdle.
type streamGuard struct {
	limits  state.SessionLimits
	evicted func(cap string)

	mu        sync.Mutex
	bySession map[string][]*openStream
	byUser    map[string][]*openStream
	open      int
}

// openStream is one GET /mcp in progress.
type openStream struct {
	sid, user string
	end       context.CancelFunc
}

func newStreamGuard(l state.SessionLimits, evicted func(cap string)) *streamGuard {
	return &streamGuard{
		limits:    l.WithDefaults(),
		evicted:   evicted,
		bySession: map[string][]*openStream{},
		byUser:    map[string][]*openStream{},
	}
}

// Open reports the streams open now.
func (g *streamGuard) Open() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.open
}

// add registers st, ending the oldest streams of its session and user
// beyond the caps.
func (g *streamGuard) add(st *openStream) {
	var end []context.CancelFunc
	g.mu.Lock()
	for len(g.bySession[st.sid]) >= g.limits.StreamsPerSession {
		old := g.bySession[st.sid][0]
		g.removeLocked(old)
		end = append(end, old.end)
		g.count("session")
	}
	for len(g.byUser[st.user]) >= g.limits.StreamsPerUser {
		old := g.byUser[st.user][0]
		g.removeLocked(old)
		end = append(end, old.end)
		g.count("user")
	}
	g.bySession[st.sid] = append(g.bySession[st.sid], st)
	g.byUser[st.user] = append(g.byUser[st.user], st)
	g.open++
	g.mu.Unlock()
	for _, f := range end {
		f()
	}
}

func (g *streamGuard) count(cap string) {
	if g.evicted != nil {
		g.evicted(cap)
	}
}

// remove forgets st (no-op when it was already evicted).
func (g *streamGuard) remove(st *openStream) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.removeLocked(st)
}

func (g *streamGuard) removeLocked(st *openStream) {
	drop := func(m map[string][]*openStream, k string) bool {
		l := m[k]
		for i, x := range l {
			if x == st {
				l = append(l[:i:i], l[i+1:]...)
				if len(l) == 0 {
					delete(m, k)
				} else {
					m[k] = l
				}
				return true
			}
		}
		return false
	}
	if drop(g.bySession, st.sid) {
		g.open--
	}
	drop(g.byUser, st.user)
}

// middleware bounds GET /mcp streams. It runs after sessionLifecycle, so a
// session id it sees belongs to the caller. A GET without a session id is
// refused with 400 (transport spec: a server that assigns session ids
// answers requests without one, other than initialize, with 400); mcp-go
// would open a session of its own for it, past every session cap.
func (g *streamGuard) middleware(s *Server, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || mcp.IsModernProtocol(r.Header.Get(mcp.HeaderProtocolVersion)) {
			next.ServeHTTP(w, r)
			return
		}
		p, err := s.principal(r.Context())
		if err != nil {
			next.ServeHTTP(w, r) // no identity: refused further in
			return
		}
		sid := r.Header.Get(identity.SessionHeader)
		if sid == "" {
			writeRPCError(w, r, http.StatusBadRequest, nil, mcp.INVALID_REQUEST,
				"Bad Request: GET /mcp needs the Mcp-Session-Id header of a session opened by initialize")
			return
		}
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		st := &openStream{sid: sid, user: p.LimitKey(), end: cancel}
		g.add(st)
		defer g.remove(st)
		iw := &idleWriter{ResponseWriter: w, timer: time.AfterFunc(g.limits.StreamIdle, cancel), idle: g.limits.StreamIdle}
		defer iw.timer.Stop()
		next.ServeHTTP(iw, r.WithContext(ctx))
	})
}

// idleWriter restarts its timer on every write: a stream ends after idle
// without one.
type idleWriter struct {
	http.ResponseWriter
	timer *time.Timer
	idle  time.Duration
}

func (w *idleWriter) Write(b []byte) (int, error) {
	w.timer.Reset(w.idle)
	return w.ResponseWriter.Write(b)
}

func (w *idleWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *idleWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

package identity

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// SessionHeader is the Streamable HTTP session header.
const SessionHeader = "Mcp-Session-Id"

// SessionBinderOptions configure a SessionBinder. The zero value is usable.
type SessionBinderOptions struct {
	// IdleTTL forgets a binding not used for this long. Default 24h.
	IdleTTL time.Duration
	// MaxSessions bounds the number of bindings; when full, the least
	// recently used binding is dropped (its session then fails closed).
	// Default 100000.
	MaxSessions int
	// Now returns the current time. Default time.Now.
	Now func() time.Time
	// OnReject, when set, is called for every rejected session ID (for the
	// audit log). It must not block.
	OnReject func(ctx context.Context, reason string, r *http.Request)
}

// SessionBinder binds Streamable HTTP session IDs to the user (issuer and
// subject) that created them, and rejects a session ID presented by anyone
// else or not created through it. Bindings live in this process: behind
// several replicas, route a session to the replica that created it (mcp-go
// keeps session state in process too).
type SessionBinder struct {
	ttl      time.Duration
	max      int
	now      func() time.Time
	onReject func(ctx context.Context, reason string, r *http.Request)

	mu       sync.Mutex
	bindings map[string]binding
}

type binding struct {
	key      string
	lastUsed time.Time
}

// NewSessionBinder returns an empty binder.
func NewSessionBinder(opts SessionBinderOptions) *SessionBinder {
	b := &SessionBinder{
		ttl:      opts.IdleTTL,
		max:      opts.MaxSessions,
		now:      opts.Now,
		onReject: opts.OnReject,
		bindings: map[string]binding{},
	}
	if b.ttl <= 0 {
		b.ttl = 24 * time.Hour
	}
	if b.max <= 0 {
		b.max = 100000
	}
	if b.now == nil {
		b.now = time.Now
	}
	return b
}

// Bind records that sessionID belongs to p. Binding an ID already bound to
// another user fails with ErrSessionMismatch.
func (b *SessionBinder) Bind(sessionID string, p *Principal) error {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if cur, ok := b.bindings[sessionID]; ok && now.Sub(cur.lastUsed) < b.ttl && cur.key != p.Key() {
		return ErrSessionMismatch
	}
	if len(b.bindings) >= b.max {
		b.evictLocked(now)
	}
	b.bindings[sessionID] = binding{key: p.Key(), lastUsed: now}
	return nil
}

// Check reports whether sessionID is bound to p, refreshing its idle timer.
// Unknown or expired IDs fail too: a session must be created through Bind.
func (b *SessionBinder) Check(sessionID string, p *Principal) error {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	cur, ok := b.bindings[sessionID]
	if !ok {
		return fmt.Errorf("%w: unknown session", ErrSessionMismatch)
	}
	if now.Sub(cur.lastUsed) >= b.ttl {
		delete(b.bindings, sessionID)
		return fmt.Errorf("%w: session expired", ErrSessionMismatch)
	}
	if cur.key != p.Key() {
		return fmt.Errorf("%w: other user", ErrSessionMismatch)
	}
	cur.lastUsed = now
	b.bindings[sessionID] = cur
	return nil
}

// Forget drops the binding of sessionID.
func (b *SessionBinder) Forget(sessionID string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.bindings, sessionID)
}

// Len returns the number of bindings.
func (b *SessionBinder) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.bindings)
}

func (b *SessionBinder) evictLocked(now time.Time) {
	var oldestID string
	var oldest time.Time
	for id, cur := range b.bindings {
		if now.Sub(cur.lastUsed) >= b.ttl {
			delete(b.bindings, id)
			continue
		}
		if oldestID == "" || cur.lastUsed.Before(oldest) {
			oldestID, oldest = id, cur.lastUsed
		}
	}
	if len(b.bindings) >= b.max && oldestID != "" {
		delete(b.bindings, oldestID)
	}
}

// Middleware enforces the binding. Put it inside Authenticator.Middleware
// (it needs the Principal) and around the MCP handler:
//
//   - a request carrying Mcp-Session-Id must present the user that created
//     the session, else 404 (as for an unknown session: no oracle);
//   - a response that hands out a new Mcp-Session-Id binds it to the user;
//   - a successful DELETE forgets the binding.
func (b *SessionBinder) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := FromContext(r.Context())
		if !ok {
			http.Error(w, "no authenticated principal", http.StatusInternalServerError)
			return
		}
		sid := r.Header.Get(SessionHeader)
		if sid != "" {
			if err := b.Check(sid, p); err != nil {
				if b.onReject != nil {
					b.onReject(r.Context(), err.Error(), r)
				}
				http.Error(w, "session not found", http.StatusNotFound)
				return
			}
		}
		bw := &bindingWriter{ResponseWriter: w, binder: b, principal: p, requested: sid}
		next.ServeHTTP(bw, r)
		if r.Method == http.MethodDelete && sid != "" && bw.status >= 200 && bw.status < 300 {
			b.Forget(sid)
		}
	})
}

// bindingWriter binds a session ID the handler issues in its response headers.
type bindingWriter struct {
	http.ResponseWriter
	binder    *SessionBinder
	principal *Principal
	requested string
	status    int
	written   bool
	failed    bool
}

func (w *bindingWriter) WriteHeader(code int) {
	if !w.written {
		w.written = true
		w.status = code
		if sid := w.Header().Get(SessionHeader); sid != "" && sid != w.requested {
			if err := w.binder.Bind(sid, w.principal); err != nil {
				// A fresh, random ID collides only if something is wrong:
				// withhold the session rather than share it.
				w.Header().Del(SessionHeader)
				w.failed = true
				w.status = http.StatusInternalServerError
				w.ResponseWriter.WriteHeader(http.StatusInternalServerError)
				return
			}
		}
	}
	if w.failed {
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *bindingWriter) Write(p []byte) (int, error) {
	if !w.written {
		w.WriteHeader(http.StatusOK)
	}
	if w.failed {
		return len(p), nil
	}
	return w.ResponseWriter.Write(p)
}

// Flush keeps server-sent event streams working.
func (w *bindingWriter) Flush() {
	if !w.written {
		w.WriteHeader(http.StatusOK)
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *bindingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

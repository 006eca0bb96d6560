package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/backstage-mcp/backstage-mcp/redact"
	"github.com/backstage-mcp/backstage-mcp/server/audit"
	"github.com/backstage-mcp/backstage-mcp/server/chain"
	"github.com/backstage-mcp/backstage-mcp/server/identity"
	"github.com/backstage-mcp/backstage-mcp/server/ratelimit"
)

// Bounds of the unauthenticated-traffic defences.
const (
	// maxFailureKeys caps the (source, reason) pairs aggregated at once;
	// beyond it, failures are counted under source "(other)".
	maxFailureKeys = 4096
	// maxBlocked caps the addresses remembered as blocked.
	maxBlocked = 65536
)

// clientAddr returns the address a request comes from: the TCP peer, or,
// when the peer is one of the trusted proxies, the right-most address of
// X-Forwarded-For that is not itself a trusted proxy.
func clientAddr(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return redact.Clip(host, 64)
	}
	addr = addr.Unmap()
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	if !isTrusted(addr) {
		return addr.String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return addr.String() // a malformed hop: trust nothing beyond the proxy
		}
		if a = a.Unmap(); !isTrusted(a) {
			return a.String()
		}
	}
	return addr.String()
}

// unauthGuard bounds what unauthenticated requests can cost: a token
// bucket per client address, charged by every request without a bearer
// token and by every failed verification. An address whose bucket is empty
// is answered 429 before any token is parsed, until it refills.
type unauthGuard struct {
	lim     *ratelimit.Memory
	trusted []netip.Prefix
	now     func() time.Time

	mu      sync.Mutex
	blocked map[string]time.Time // address → until
}

func newUnauthGuard(r ratelimit.Rate, trusted []netip.Prefix, now func() time.Time) (*unauthGuard, error) {
	lim, err := ratelimit.NewMemory(ratelimit.Config{
		DefaultClass: "address",
		Classes:      map[string]ratelimit.Rate{"address": r},
		Agent:        ratelimit.Rate{Unlimited: true},
		Global:       ratelimit.Rate{Unlimited: true},
		MaxKeys:      maxBlocked,
		Now:          now,
	})
	if err != nil {
		return nil, fmt.Errorf("server: unauthenticated rate: %w", err)
	}
	return &unauthGuard{lim: lim, trusted: trusted, now: now, blocked: map[string]time.Time{}}, nil
}

// isBlocked reports whether addr must wait, and how long.
func (g *unauthGuard) isBlocked(addr string) (time.Duration, bool) {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	until, ok := g.blocked[addr]
	if !ok {
		return 0, false
	}
	if !now.Before(until) {
		delete(g.blocked, addr)
		return 0, false
	}
	return until.Sub(now), true
}

// charge takes a token from addr's bucket and reports whether there was
// one; an empty bucket blocks addr until it has a token again.
func (g *unauthGuard) charge(ctx context.Context, addr string) (time.Duration, bool) {
	d, err := g.lim.Allow(ctx, ratelimit.UserKey(addr, ""), 1)
	if err != nil {
		return time.Second, false // fail closed
	}
	if d.Allowed {
		return 0, true
	}
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.blocked) >= maxBlocked {
		for a, until := range g.blocked {
			if !now.Before(until) {
				delete(g.blocked, a)
			}
		}
	}
	if len(g.blocked) < maxBlocked {
		g.blocked[addr] = now.Add(d.RetryAfter)
	}
	return d.RetryAfter, false
}

type addrKey struct{}

// unauthBlockedReason is the audit reason of a request refused by the
// per-address guard.
const unauthBlockedReason = "too many unauthenticated requests from this address"

// initUnauthenticated sets up the per-address guard and the aggregated
// audit of authentication failures.
func (s *Server) initUnauthenticated() error {
	rate := s.cfg.Server.UnauthenticatedRate
	if rate == (ratelimit.Rate{}) {
		rate = ratelimit.PerSecond(10, 20)
	}
	g, err := newUnauthGuard(rate, s.cfg.Server.trustedPrefixes(), s.opts.Now)
	if err != nil {
		return err
	}
	s.unauth = g
	interval := s.cfg.Server.AuthFailureInterval
	if interval <= 0 {
		interval = 10 * time.Second
	}
	s.authFailures = newAuthFailureLog(interval, func(rec *audit.Record) {
		if err := s.appendAudit(context.Background(), rec); err != nil {
			s.metrics.auditFailure()
			s.log.Error("audit write failed", "type", "auth_failure", "err", err)
		}
	})
	return nil
}

// FlushAuthFailures writes the authentication failures counted but not yet
// recorded; call it before the server_stop record.
func (s *Server) FlushAuthFailures() { s.authFailures.close() }

// middleware guards next (the token check and everything behind it).
func (g *unauthGuard) middleware(s *Server, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr := clientAddr(r, g.trusted)
		ctx := context.WithValue(r.Context(), addrKey{}, addr)
		wait, blocked := g.isBlocked(addr)
		if !blocked && !strings.HasPrefix(strings.ToLower(r.Header.Get("Authorization")), "bearer ") && !sessionEndWithoutToken(r) {
			// No token: it will fail; charge it now.
			var ok bool
			wait, ok = g.charge(ctx, addr)
			blocked = !ok
		}
		if blocked {
			s.auditAuthFailure(ctx, unauthBlockedReason, r)
			w.Header().Set("Retry-After", fmt.Sprint(retrySeconds(wait)))
			writeJSON(w, http.StatusTooManyRequests, map[string]string{"error": "too many unauthenticated requests from this address; retry later"})
			return
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// sessionEndWithoutToken reports a DELETE of a session without a token.
// mcp-go's client sends one on every Close (without its Authorization
// header); it is refused with 401 and audited like any request without a
// token, but not charged to the address: charging it would block the
// address, and every signed-in user behind it, after about twenty quick
// reconnects. It costs no token verification, and an address already
// blocked still gets 429 for it.
func sessionEndWithoutToken(r *http.Request) bool {
	return r.Method == http.MethodDelete && r.Header.Get(identity.SessionHeader) != ""
}

// failureKey is one aggregation bucket of authentication failures.
type failureKey struct{ source, reason string }

type failureAgg struct {
	count int           // failures not yet written
	rec   *audit.Record // the first failure of the burst, for user/agent/session
}

// authFailureLog writes authentication failures to the audit trail
// aggregated: the first failure of a source and reason is written at
// once; the ones after it within the interval are counted and written as
// one record with Count when the interval ends. A flood of N bad requests
// from one source thus costs one record at once and one per interval, not
// N records and N fsyncs.
type authFailureLog struct {
	append   func(*audit.Record)
	interval time.Duration

	mu      sync.Mutex
	pending map[failureKey]*failureAgg
	timer   *time.Timer
}

func newAuthFailureLog(interval time.Duration, appendFn func(*audit.Record)) *authFailureLog {
	return &authFailureLog{append: appendFn, interval: interval, pending: map[failureKey]*failureAgg{}}
}

// add records one failure.
func (a *authFailureLog) add(rec *audit.Record) {
	k := failureKey{source: rec.Source, reason: rec.Reason}
	a.mu.Lock()
	if agg, ok := a.pending[k]; ok {
		agg.count++
		a.mu.Unlock()
		return
	}
	if len(a.pending) >= maxFailureKeys {
		k.source = "(other)"
		if agg, ok := a.pending[k]; ok {
			agg.count++
			a.mu.Unlock()
			return
		}
	}
	// The first failure of a burst: written now, and remembered so that
	// the rest of the interval is counted.
	a.pending[k] = &failureAgg{rec: rec}
	if a.timer == nil {
		a.timer = time.AfterFunc(a.interval, a.flush)
	}
	a.mu.Unlock()
	rec.Source = k.source
	a.append(rec)
}

// flush writes one record per (source, reason) with failures counted since
// the first one, and forgets the quiet ones.
func (a *authFailureLog) flush() {
	a.mu.Lock()
	var out []*audit.Record
	for k, agg := range a.pending {
		if agg.count == 0 {
			delete(a.pending, k)
			continue
		}
		rec := *agg.rec
		rec.Time, rec.ID, rec.Seq, rec.PrevHash, rec.Hash = time.Time{}, "", 0, "", ""
		rec.Source, rec.Count = k.source, agg.count
		out = append(out, &rec)
		agg.count = 0
	}
	a.timer = nil
	if len(a.pending) > 0 {
		a.timer = time.AfterFunc(a.interval, a.flush)
	}
	a.mu.Unlock()
	for _, rec := range out {
		a.append(rec)
	}
}

// close writes what is pending and stops the timer.
func (a *authFailureLog) close() {
	a.mu.Lock()
	if a.timer != nil {
		a.timer.Stop()
		a.timer = nil
	}
	a.mu.Unlock()
	a.flush()
	a.mu.Lock()
	if a.timer != nil {
		a.timer.Stop()
		a.timer = nil
	}
	a.mu.Unlock()
}

// authFailureRecord builds the audit record of a rejected request. It
// never sees or records the token.
func (s *Server) authFailureRecord(ctx context.Context, reason string, r *http.Request) *audit.Record {
	rec := &audit.Record{Type: audit.TypeAuthFailure, Transport: audit.TransportHTTP, Decision: audit.DecisionDeny,
		Reason: reason, Rule: "identity", SessionID: redact.Clip(r.Header.Get(identity.SessionHeader), 128),
		CallerTraceparent: callerTraceparentOf(ctx)}
	if addr, ok := ctx.Value(addrKey{}).(string); ok {
		rec.Source = addr
	} else {
		rec.Source = clientAddr(r, s.unauth.trusted)
	}
	if p, ok := identity.FromContext(ctx); ok {
		rec.User, rec.Agent = chain.Who(p)
	}
	return rec
}

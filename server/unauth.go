package server

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sort"
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

// clientAddrOf is the client address the HTTP front (the per-address
// guard, or withClientAddr without sign-in) found for ctx's request, by
// clientAddr: "" on stdio and in-process calls.
func clientAddrOf(ctx context.Context) string {
	addr, _ := ctx.Value(addrKey{}).(string)
	return addr
}

// withClientAddr keeps the request's client address (clientAddr) in its
// context, for the audit records of a server without sign-in (with
// sign-in the per-address guard keeps it).
func withClientAddr(next http.Handler, trusted []netip.Prefix) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), addrKey{}, clientAddr(r, trusted))))
	})
}

// unauthGuard bounds what unauthenticated requests can cost: token
// buckets per client address, per subnet and for everyone, charged by
// every request without a bearer token and by every failed verification
// (never by a request whose token verifies). While a bucket of a request's
// source is empty, a request without a token is answered 429 before
// anything else; one with a token is verified only within a small budget
// of verifications (per replica), so signed-in users behind a flooded
// address are still served and bogus tokens cannot buy unbounded
// signature checks. The buckets live in Redis with state: redis, so the
// bounds hold for the fleet.
type unauthGuard struct {
	lim     ratelimit.Limiter // address, subnet and global buckets
	verify  *ratelimit.Memory // verifications for blocked sources
	trusted []netip.Prefix
	now     func() time.Time

	mu      sync.Mutex
	blocked map[string]time.Time // bucket key → blocked until
	// known are tokens that verified lately (SHA-256 → expiry): a request
	// from a blocked source with one of them is let through to
	// verification without spending the verification budget, so a flood
	// of bogus tokens beside a signed-in user cannot crowd that user out.
	known map[[32]byte]time.Time
}

// maxKnownTokens bounds unauthGuard.known.
const maxKnownTokens = 16384

// Bucket classes of the unauthenticated limiter.
const (
	unauthAddress = "address"
	unauthSubnet  = "subnet"
)

// unauthRates are the unauthenticated buckets' rates.
type unauthRates struct {
	address, subnet, global, verify ratelimit.Rate
}

// unauthLimiterConfig is the limiter configuration of the address, subnet
// and global buckets (for ratelimit.NewMemory or NewRedis).
func unauthLimiterConfig(r unauthRates, now func() time.Time) ratelimit.Config {
	return ratelimit.Config{
		DefaultClass: unauthAddress,
		Classes:      map[string]ratelimit.Rate{unauthAddress: r.address, unauthSubnet: r.subnet},
		Agent:        ratelimit.Rate{Unlimited: true},
		Global:       r.global,
		MaxKeys:      maxBlocked,
		Now:          now,
	}
}

// newUnauthGuard returns the guard; lim, when nil, is an in-process
// limiter (state: memory).
func newUnauthGuard(r unauthRates, lim ratelimit.Limiter, trusted []netip.Prefix, now func() time.Time) (*unauthGuard, error) {
	if lim == nil {
		mem, err := ratelimit.NewMemory(unauthLimiterConfig(r, now))
		if err != nil {
			return nil, fmt.Errorf("server: unauthenticated rate: %w", err)
		}
		lim = mem
	}
	verify, err := ratelimit.NewMemory(ratelimit.Config{
		DefaultClass: unauthAddress,
		Classes:      map[string]ratelimit.Rate{unauthAddress: {Unlimited: true}},
		Agent:        ratelimit.Rate{Unlimited: true},
		Global:       r.verify,
		Now:          now,
	})
	if err != nil {
		return nil, fmt.Errorf("server: unauthenticated verify rate: %w", err)
	}
	return &unauthGuard{lim: lim, verify: verify, trusted: trusted, now: now, blocked: map[string]time.Time{}, known: map[[32]byte]time.Time{}}, nil
}

// subnetOf is the /24 (IPv4) or /48 (IPv6) holding addr, or addr itself
// when it is not an IP address.
func subnetOf(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	a = a.Unmap()
	bits := 48
	if a.Is4() {
		bits = 24
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return addr
	}
	return p.String()
}

// keysOf are the buckets a request from addr is charged to.
func keysOf(addr string) []ratelimit.Key {
	return []ratelimit.Key{
		ratelimit.UserKey(addr, unauthAddress),
		ratelimit.UserKey(subnetOf(addr), unauthSubnet),
		ratelimit.GlobalKey(),
	}
}

// isBlocked reports whether a bucket of addr is known empty, and how long
// to wait.
func (g *unauthGuard) isBlocked(addr string) (time.Duration, bool) {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	var wait time.Duration
	for _, k := range keysOf(addr) {
		ks := k.String()
		until, ok := g.blocked[ks]
		if !ok {
			continue
		}
		if !now.Before(until) {
			delete(g.blocked, ks)
			continue
		}
		wait = max(wait, until.Sub(now))
	}
	return wait, wait > 0
}

// charge takes a token from each of addr's buckets and reports whether
// there was one in each; an empty bucket blocks its key until it has a
// token again. A limiter that fails (Redis down) blocks: fail closed.
func (g *unauthGuard) charge(ctx context.Context, addr string) (time.Duration, bool) {
	for _, k := range keysOf(addr) {
		d, err := g.lim.Allow(ctx, k, 1)
		if err != nil {
			return time.Second, false
		}
		if !d.Allowed {
			g.block(k.String(), d.RetryAfter)
			return d.RetryAfter, false
		}
	}
	return 0, true
}

func (g *unauthGuard) block(key string, d time.Duration) {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.blocked) >= maxBlocked {
		for k, until := range g.blocked {
			if !now.Before(until) {
				delete(g.blocked, k)
			}
		}
	}
	if len(g.blocked) < maxBlocked {
		g.blocked[key] = now.Add(d)
	}
}

// tokenSum is the key of a bearer token in known; "" for none.
func tokenSum(r *http.Request) ([32]byte, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return [32]byte{}, false
	}
	return sha256.Sum256([]byte(strings.TrimSpace(tok))), true
}

// noteVerified remembers the request's token as verified until exp.
func (g *unauthGuard) noteVerified(r *http.Request, exp time.Time) {
	sum, ok := tokenSum(r)
	if !ok {
		return
	}
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, seen := g.known[sum]; !seen && len(g.known) >= maxKnownTokens {
		for k, until := range g.known {
			if !now.Before(until) {
				delete(g.known, k)
			}
		}
		if len(g.known) >= maxKnownTokens {
			for k := range g.known { // full of live tokens: forget one
				delete(g.known, k)
				break
			}
		}
	}
	g.known[sum] = exp
}

// mayVerify reports whether a request with a token from a blocked source
// may be verified now: a token that verified lately may, any other within
// the verification budget.
func (g *unauthGuard) mayVerify(ctx context.Context, r *http.Request) (time.Duration, bool) {
	if sum, ok := tokenSum(r); ok {
		g.mu.Lock()
		exp, known := g.known[sum]
		g.mu.Unlock()
		if known && g.now().Before(exp) {
			return 0, true
		}
	}
	d, err := g.verify.Allow(ctx, ratelimit.GlobalKey(), 1)
	if err != nil {
		return time.Second, false
	}
	return d.RetryAfter, d.Allowed
}

type addrKey struct{}

// unauthBlockedReason is the audit reason of a request refused by the
// per-address guard.
const unauthBlockedReason = "too many unauthenticated requests from this address"

// initUnauthenticated sets up the per-address guard and the aggregated
// audit of authentication failures.
func (s *Server) initUnauthenticated() error {
	g, err := newUnauthGuard(s.cfg.Server.unauthRates(), s.opts.UnauthLimiter, s.cfg.Server.trustedPrefixes(), s.opts.Now)
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
		hasToken := strings.HasPrefix(strings.ToLower(r.Header.Get("Authorization")), "bearer ")
		switch {
		case hasToken && blocked:
			// A signed-in user behind a flooded address: verify the
			// token, within the budget for blocked sources. A failure is
			// charged like any other.
			wait, blocked = g.mayVerify(ctx, r)
			blocked = !blocked
		case !hasToken && !blocked && !sessionEndWithoutToken(r):
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

// failureKey is one aggregation bucket of refused requests. user is the
// verified subject when the refused request had one (a scope or session
// refusal), "" otherwise.
type failureKey struct {
	typ                  audit.Type
	source, reason, user string
}

type failureAgg struct {
	count int           // refusals since the last flush, not yet written
	rec   *audit.Record // the first of them, for user/agent/session
}

// authFailureLog writes refused requests (failed sign-ins, token-less
// requests, malformed initializes, scope and session refusals) to the
// audit trail aggregated:
//
//   - refusals of nobody in particular (no verified user): the first after
//     a quiet interval is written at once (a single failed sign-in is
//     visible without delay); the rest of each interval is written when it
//     ends as one record per type with the total Count and the busiest
//     sources and reasons (Record.Sources). A flood costs at most one record
//     per interval and type, however many addresses it comes from.
//   - refusals of a verified user: the first of a user and reason is
//     written at once, the rest of the interval as one record with a count.
//     Only real accounts can add such keys, so their number is bounded by
//     the accounts an attacker holds, not by the requests it sends.
type authFailureLog struct {
	append   func(*audit.Record)
	interval time.Duration

	mu      sync.Mutex
	active  bool // an interval is running
	pending map[failureKey]*failureAgg
	timer   *time.Timer
}

func newAuthFailureLog(interval time.Duration, appendFn func(*audit.Record)) *authFailureLog {
	return &authFailureLog{append: appendFn, interval: interval, pending: map[failureKey]*failureAgg{}}
}

// add records one refusal.
func (a *authFailureLog) add(rec *audit.Record) {
	k := failureKey{typ: rec.Type, source: rec.Source, reason: rec.Reason, user: rec.User.Sub}
	a.mu.Lock()
	agg, ok := a.pending[k]
	if !ok && len(a.pending) >= maxFailureKeys {
		k = failureKey{typ: rec.Type, source: "(other)", reason: rec.Reason}
		agg, ok = a.pending[k]
	}
	if ok {
		agg.count++
		a.mu.Unlock()
		return
	}
	if k.user == "" && a.active {
		a.pending[k] = &failureAgg{rec: rec, count: 1}
		a.mu.Unlock()
		return
	}
	// Written now; the rest of the interval is counted.
	a.pending[k] = &failureAgg{rec: rec}
	if !a.active {
		a.active = true
		a.timer = time.AfterFunc(a.interval, a.flush)
	}
	a.mu.Unlock()
	a.append(rec)
}

// flush writes the refusals counted since the last flush: one record per
// type for nobody in particular, one per user and reason for verified
// users. Keys quiet for a whole interval are forgotten; when nothing is
// left the interval ends, so that the next refusal is written at once.
func (a *authFailureLog) flush() {
	a.mu.Lock()
	byType := map[audit.Type][]failureKey{}
	var out []*audit.Record
	for k, agg := range a.pending {
		switch {
		case agg.count == 0:
			delete(a.pending, k)
		case k.user != "":
			rec := *agg.rec
			rec.Time, rec.ID, rec.Seq, rec.PrevHash, rec.Hash = time.Time{}, "", 0, "", ""
			rec.Source, rec.Count = k.source, agg.count
			out = append(out, &rec)
		default:
			byType[k.typ] = append(byType[k.typ], k)
		}
	}
	for _, keys := range byType {
		out = append(out, aggregate(a.pending, keys))
	}
	for _, agg := range a.pending {
		agg.count = 0
	}
	a.timer = nil
	a.active = len(a.pending) > 0
	if a.active {
		a.timer = time.AfterFunc(a.interval, a.flush)
	}
	a.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i].Type < out[j].Type })
	for _, rec := range out {
		a.append(rec)
	}
}

// aggregate is the one record for keys (all of one type): the first
// refusal's record when there is one source and reason, else a record
// that names the busiest pairs.
func aggregate(pending map[failureKey]*failureAgg, keys []failureKey) *audit.Record {
	sort.Slice(keys, func(i, j int) bool {
		ci, cj := pending[keys[i]].count, pending[keys[j]].count
		if ci != cj {
			return ci > cj
		}
		if keys[i].source != keys[j].source {
			return keys[i].source < keys[j].source
		}
		return keys[i].reason < keys[j].reason
	})
	total := 0
	for _, k := range keys {
		total += pending[k].count
	}
	first := pending[keys[0]]
	rec := *first.rec
	rec.Time, rec.ID, rec.Seq, rec.PrevHash, rec.Hash = time.Time{}, "", 0, "", ""
	rec.Count = total
	if len(keys) == 1 {
		rec.Source = keys[0].source
		return &rec
	}
	// Several sources or reasons: nobody in particular.
	rec.User, rec.Agent, rec.SessionID, rec.CallerTraceparent = audit.User{}, audit.Agent{}, "", ""
	rec.Source = "(several)"
	reasons := map[string]bool{}
	for _, k := range keys {
		reasons[k.reason] = true
	}
	if len(reasons) > 1 {
		rec.Reason = "several reasons (see sources)"
	}
	other := 0
	for i, k := range keys {
		if i >= audit.MaxSources-1 && len(keys) > audit.MaxSources {
			other += pending[k].count
			continue
		}
		rec.Sources = append(rec.Sources, audit.SourceCount{Source: k.source, Reason: k.reason, Count: pending[k].count})
	}
	if other > 0 {
		rec.Sources = append(rec.Sources, audit.SourceCount{Source: "(other)", Count: other})
	}
	return &rec
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
	a.active = false
	a.mu.Unlock()
}

// authFailureRecord builds the audit record of a rejected request. It
// never sees or records the token.
func (s *Server) authFailureRecord(ctx context.Context, reason string, r *http.Request) *audit.Record {
	rec := &audit.Record{Type: audit.TypeAuthFailure, Transport: audit.TransportHTTP, Decision: audit.DecisionDeny,
		Reason: reason, Rule: "identity", SessionID: redact.Clip(r.Header.Get(identity.SessionHeader), 128),
		CallerTraceparent: callerTraceparentOf(ctx)}
	if addr := clientAddrOf(ctx); addr != "" {
		rec.Source = addr
	} else {
		rec.Source = clientAddr(r, s.unauth.trusted)
	}
	if p, ok := identity.FromContext(ctx); ok {
		rec.User, rec.Agent = chain.Who(p)
	}
	return rec
}

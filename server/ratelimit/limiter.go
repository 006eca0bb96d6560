// Package ratelimit protects backstage-mcp and Backstage from agent storms:
// token buckets per user × rate class, per agent client and global
// ([Memory], [Chain]), and a guard for calls towards Backstage
// ([Upstream]: concurrency cap, rate cap, coalescing and a short cache).
//
// The [Limiter] interface speaks only in keys and decisions, so a shared
// store (for example Redis, for several replicas) can implement it without
// per-process state that would multiply the limits.
//
//	lim, err := ratelimit.NewMemory(ratelimit.DefaultConfig())
//	if err != nil { ... }
//	chain := ratelimit.NewChain(lim)
//	d, err := chain.Allow(ctx, "user:default/jane", "default", "copilot")
//	if err != nil { ... } // fail closed
//	if !d.Allowed {
//		return toolError(d.String()) // "rate limited by the user limit; retry after 2s"
//	}
//
// # Bounded memory and eviction
//
// Memory keeps at most Config.MaxKeys buckets. It only ever evicts a bucket
// that is full (has its whole burst available): a new bucket starts full,
// so evicting a full one loses no state and can never grant a caller more
// than the configured rate, however many distinct keys churn through the
// table. Idle full buckets are swept after Config.IdleTTL. When the table is
// at its cap and no full bucket can be found among the least recently used,
// a call for a new key is denied (retry after the oldest bucket refills)
// rather than evicting a partly used bucket: evicting it would reset that
// caller's bucket, which is exactly what an attacker flooding distinct keys
// would want. Existing keys keep working at the cap. Keys come from verified
// identities (token subject, agent client id), so filling the table needs
// MaxKeys distinct, active identities, and the global bucket caps the total
// meanwhile.
package ratelimit

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Kind is the kind of bucket a Key names.
type Kind uint8

// Bucket kinds.
const (
	// KindUser is a bucket per user and rate class.
	KindUser Kind = iota + 1
	// KindAgent is a bucket per agent client id.
	KindAgent
	// KindGlobal is the single global bucket.
	KindGlobal
)

// String returns the limit name used in Decision.Limit.
func (k Kind) String() string {
	switch k {
	case KindUser:
		return LimitUser
	case KindAgent:
		return LimitAgent
	case KindGlobal:
		return LimitGlobal
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Limit names reported in Decision.Limit.
const (
	LimitUser   = "user"
	LimitAgent  = "agent"
	LimitGlobal = "global"
)

// Key identifies one bucket. It is a comparable value, usable as a map key.
type Key struct {
	// Kind is the kind of bucket.
	Kind Kind
	// Class is the rate class (KindUser only).
	Class string
	// ID is the user id (KindUser) or agent client id (KindAgent); empty for
	// KindGlobal.
	ID string
}

// UserKey returns the bucket key of user in a rate class ("" means the
// default class).
func UserKey(user, class string) Key { return Key{Kind: KindUser, Class: class, ID: user} }

// AgentKey returns the bucket key of an agent client id.
func AgentKey(clientID string) Key { return Key{Kind: KindAgent, ID: clientID} }

// GlobalKey returns the key of the global bucket.
func GlobalKey() Key { return Key{Kind: KindGlobal} }

// String returns an unambiguous text form, suitable as a key in a shared
// store: kind, then the length-prefixed class, then the id.
func (k Key) String() string {
	return k.Kind.String() + ":" + strconv.Itoa(len(k.Class)) + ":" + k.Class + ":" + k.ID
}

// Decision is the outcome of a rate-limit check.
type Decision struct {
	// Allowed is true when the request may proceed (its tokens are taken).
	Allowed bool
	// Limit names the limit that denied: LimitUser, LimitAgent or
	// LimitGlobal. Empty when allowed.
	Limit string
	// RetryAfter is how long to wait before the same request can be allowed
	// (zero when allowed).
	RetryAfter time.Duration
}

// String describes the decision for a tool error message.
func (d Decision) String() string {
	if d.Allowed {
		return "allowed"
	}
	return fmt.Sprintf("rate limited by the %s limit; retry after %s", d.Limit, d.RetryAfter.Round(time.Millisecond))
}

// ErrUnknownClass is returned for a rate class that is not configured.
var ErrUnknownClass = errors.New("ratelimit: unknown rate class")

// ErrExceedsBurst is returned when n is larger than a bucket's burst: the
// request could never be allowed.
var ErrExceedsBurst = errors.New("ratelimit: request exceeds the bucket burst")

// Limiter decides whether n requests for a key may proceed now, taking the
// tokens when they may. Implementations must be safe for concurrent use and
// may be backed by a shared store; callers must fail closed on error.
type Limiter interface {
	Allow(ctx context.Context, key Key, n int) (Decision, error)
}

// MultiLimiter is implemented by limiters that can check several buckets
// atomically: either every bucket has n tokens and all are taken, or none
// is taken and the decision names the limit with the longest wait.
type MultiLimiter interface {
	Limiter
	AllowAll(ctx context.Context, keys []Key, n int) (Decision, error)
}

var _ MultiLimiter = (*Memory)(nil)

// Chain checks the user × class, agent and global buckets of a call in one
// step.
type Chain struct {
	limiter Limiter
}

// NewChain returns a Chain over l. If l implements MultiLimiter (Memory
// does), a denied call takes no token from any bucket. Otherwise the buckets
// are checked one by one, user first, then agent, then global, and a call
// denied by a later bucket has already spent a token of the earlier ones.
func NewChain(l Limiter) *Chain { return &Chain{limiter: l} }

// Allow checks one call of user in rate class (empty: default class) through
// agent (client id). On error, deny the call.
func (c *Chain) Allow(ctx context.Context, user, class, agent string) (Decision, error) {
	keys := [3]Key{UserKey(user, class), AgentKey(agent), GlobalKey()}
	if ml, ok := c.limiter.(MultiLimiter); ok {
		return ml.AllowAll(ctx, keys[:], 1)
	}
	for _, k := range keys {
		d, err := c.limiter.Allow(ctx, k, 1)
		if err != nil || !d.Allowed {
			return d, err
		}
	}
	return Decision{Allowed: true}, nil
}

// bucketCfg is the resolved configuration of one bucket.
type bucketCfg struct {
	limit     rate.Limit
	burst     int
	unlimited bool
}

func resolve(r Rate) bucketCfg {
	l, b := r.limit()
	return bucketCfg{limit: l, burst: b, unlimited: r.Unlimited}
}

// entry is one tracked bucket.
type entry struct {
	key  Key
	lim  *rate.Limiter
	last time.Time // last access
}

// capacityScan is how many least recently used buckets are examined for a
// full one when the table is at its cap.
const capacityScan = 16

// Memory is an in-process Limiter and MultiLimiter built on
// golang.org/x/time/rate. See the package documentation for its eviction
// policy. It is safe for concurrent use.
type Memory struct {
	cfg     Config
	classes map[string]bucketCfg
	agent   bucketCfg
	global  bucketCfg

	mu        sync.Mutex // guards everything below and every bucket
	entries   map[Key]*list.Element
	lru       list.List // of *entry, most recently used first
	lastSweep time.Time
	evicted   uint64
	rejected  uint64
}

// NewMemory returns a Memory limiter for cfg (zero fields take defaults).
func NewMemory(cfg Config) (*Memory, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	m := &Memory{
		cfg:     cfg,
		classes: make(map[string]bucketCfg, len(cfg.Classes)),
		agent:   resolve(cfg.Agent),
		global:  resolve(cfg.Global),
		entries: make(map[Key]*list.Element),
	}
	for name, r := range cfg.Classes {
		m.classes[name] = resolve(r)
	}
	return m, nil
}

// MemoryStats are counters for metrics.
type MemoryStats struct {
	// Keys is the number of buckets tracked now.
	Keys int
	// Evicted counts buckets evicted (always full ones).
	Evicted uint64
	// RejectedAtCapacity counts calls denied because the table was full.
	RejectedAtCapacity uint64
}

// Stats returns current counters.
func (m *Memory) Stats() MemoryStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return MemoryStats{Keys: len(m.entries), Evicted: m.evicted, RejectedAtCapacity: m.rejected}
}

// Allow implements Limiter.
func (m *Memory) Allow(ctx context.Context, key Key, n int) (Decision, error) {
	return m.AllowAll(ctx, []Key{key}, n)
}

// AllowAll implements MultiLimiter: all buckets are charged n tokens, or
// none is and the decision names the limit with the longest wait.
func (m *Memory) AllowAll(ctx context.Context, keys []Key, n int) (Decision, error) {
	if err := ctx.Err(); err != nil {
		return Decision{}, fmt.Errorf("ratelimit: %w", err)
	}
	if n <= 0 {
		return Decision{}, fmt.Errorf("ratelimit: n must be positive, got %d", n)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.cfg.Now()
	m.maybeSweepLocked(now)

	var buf [4]*entry
	ents := buf[:0]
	for _, k := range keys {
		bc, err := m.bucketFor(k)
		if err != nil {
			return Decision{}, err
		}
		if bc.unlimited {
			continue
		}
		if n > bc.burst {
			return Decision{}, fmt.Errorf("%w: %d > %d for the %s limit", ErrExceedsBurst, n, bc.burst, k.Kind)
		}
		e, d := m.getLocked(k, bc, now)
		if e == nil {
			return d, nil
		}
		ents = append(ents, e)
	}
	deny := Decision{}
	for _, e := range ents {
		if tokens := e.lim.TokensAt(now); tokens < float64(n) {
			wait := waitFor(float64(n)-tokens, e.lim.Limit())
			if deny.Limit == "" || wait > deny.RetryAfter {
				deny = Decision{Limit: e.key.Kind.String(), RetryAfter: wait}
			}
		}
	}
	if deny.Limit != "" {
		return deny, nil
	}
	for _, e := range ents {
		// Cannot fail: every bucket was checked under m.mu, which guards all
		// access to them.
		e.lim.AllowN(now, n)
	}
	return Decision{Allowed: true}, nil
}

// waitFor is the time for a bucket refilling at l to gain tokens, rounded up
// to a millisecond.
func waitFor(tokens float64, l rate.Limit) time.Duration {
	if l <= 0 {
		return time.Duration(math.MaxInt64)
	}
	d := time.Duration(math.Ceil(tokens / float64(l) * float64(time.Second)))
	return (d + time.Millisecond - 1).Truncate(time.Millisecond)
}

func (m *Memory) bucketFor(k Key) (bucketCfg, error) {
	switch k.Kind {
	case KindUser:
		class := k.Class
		if class == "" {
			class = m.cfg.DefaultClass
		}
		bc, ok := m.classes[class]
		if !ok {
			return bucketCfg{}, fmt.Errorf("%w %q", ErrUnknownClass, k.Class)
		}
		return bc, nil
	case KindAgent:
		return m.agent, nil
	case KindGlobal:
		return m.global, nil
	}
	return bucketCfg{}, fmt.Errorf("ratelimit: unknown key kind %d", k.Kind)
}

// getLocked returns the bucket of k, creating it if there is room. When the
// table is full and no full bucket can be evicted it returns nil and a
// denial.
func (m *Memory) getLocked(k Key, bc bucketCfg, now time.Time) (*entry, Decision) {
	if k.Kind == KindUser && k.Class == "" {
		k.Class = m.cfg.DefaultClass
	}
	if el, ok := m.entries[k]; ok {
		e := el.Value.(*entry)
		e.last = now
		m.lru.MoveToFront(el)
		return e, Decision{}
	}
	if len(m.entries) >= m.cfg.MaxKeys && !m.evictOneFullLocked(now) {
		m.rejected++
		return nil, Decision{Limit: k.Kind.String(), RetryAfter: m.capacityRetryLocked(now)}
	}
	e := &entry{key: k, lim: rate.NewLimiter(bc.limit, bc.burst), last: now}
	m.entries[k] = m.lru.PushFront(e)
	return e, Decision{}
}

// isFull reports whether e has its whole burst available: evicting it then
// loses nothing, since a new bucket starts full.
func isFull(e *entry, now time.Time) bool {
	return e.lim.TokensAt(now) >= float64(e.lim.Burst())
}

func (m *Memory) removeLocked(el *list.Element) {
	e := el.Value.(*entry)
	m.lru.Remove(el)
	delete(m.entries, e.key)
	m.evicted++
}

// evictOneFullLocked evicts the least recently used full bucket among the
// capacityScan oldest.
func (m *Memory) evictOneFullLocked(now time.Time) bool {
	el := m.lru.Back()
	for i := 0; el != nil && i < capacityScan; i++ {
		if isFull(el.Value.(*entry), now) {
			m.removeLocked(el)
			return true
		}
		el = el.Prev()
	}
	return false
}

// capacityRetryLocked is when the least recently used bucket will be full.
func (m *Memory) capacityRetryLocked(now time.Time) time.Duration {
	el := m.lru.Back()
	if el == nil {
		return time.Second
	}
	e := el.Value.(*entry)
	return max(waitFor(float64(e.lim.Burst())-e.lim.TokensAt(now), e.lim.Limit()), time.Millisecond)
}

// maybeSweepLocked evicts idle full buckets, at most every IdleTTL/4.
func (m *Memory) maybeSweepLocked(now time.Time) {
	if now.Sub(m.lastSweep) < m.cfg.IdleTTL/4 {
		return
	}
	m.lastSweep = now
	cutoff := now.Add(-m.cfg.IdleTTL)
	for el := m.lru.Back(); el != nil; {
		e := el.Value.(*entry)
		if e.last.After(cutoff) {
			return // the rest were used more recently
		}
		prev := el.Prev()
		if isFull(e, now) {
			m.removeLocked(el)
		}
		el = prev
	}
}

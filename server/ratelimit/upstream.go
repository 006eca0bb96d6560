package ratelimit

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// FetchFunc performs one upstream request and returns its body, HTTP status
// and error. It must honour ctx. It is an alias, so that Upstream.Do has
// the shape of the catalog client's guard (catalog.Guard) without this
// package importing it.
type FetchFunc = func(ctx context.Context) (body []byte, status int, err error)

// Upstream guards calls towards Backstage. For each call, in order:
//
//  1. a fresh cached response for the key is returned (2xx and 404,
//     CacheTTL);
//  2. otherwise, if a call with the same key is in flight, the caller waits
//     for its result instead of calling again (coalescing);
//  3. otherwise the call waits for one of MaxConcurrent slots (a query,
//     see AsQuery, first for one of MaxConcurrentQueries) and for the
//     rate limiter, then runs fn with a Timeout.
//
// The shared call runs detached from any single caller: a caller that gives
// up (its ctx ends) gets its ctx error without affecting the others, and the
// call is cancelled only when every waiting caller has given up.
//
// Not-found answers are cached like found ones: the catalog client asks
// Backstage for entities the caller may not see with the same request as
// for missing ones, and a hidden entity (200, filtered out afterwards) and
// a missing one (404) must take the same time the second time too. Other
// errors are not cached.
//
// The key must identify the request completely (method, path, query, body)
// and the response must not depend on who asks: the catalog client calls
// Backstage with the server's own credential, and per-principal filtering
// happens after Upstream. An empty key disables caching and coalescing for
// that call. Returned bodies are shared between callers and the cache: treat
// them as read-only.
type Upstream struct {
	cfg  UpstreamConfig
	sem  chan struct{}
	qsem chan struct{} // MaxConcurrentQueries slots, taken before sem
	lim  *rate.Limiter // nil when unlimited

	mu       sync.Mutex
	inflight map[string]*flight
	cache    map[string]*list.Element
	order    list.List // of *cached, oldest first (TTL is uniform)
	bytes    int64
	stats    UpstreamStats
}

// UpstreamStats are counters for metrics.
type UpstreamStats struct {
	// Calls counts calls to fn.
	Calls uint64
	// CacheHits counts calls answered from the cache.
	CacheHits uint64
	// Coalesced counts calls that waited for an identical call in flight.
	Coalesced uint64
	// Errors counts fn calls that returned an error (or could not start).
	Errors uint64
	// InFlight is the number of distinct calls running or waiting for a slot.
	InFlight int
	// CacheEntries is the number of cached responses.
	CacheEntries int
	// CacheBytes is the total size of cached bodies.
	CacheBytes int64
}

type flight struct {
	done    chan struct{}
	waiters int // guarded by Upstream.mu
	cancel  context.CancelFunc
	body    []byte
	status  int
	err     error
}

type cached struct {
	key     string
	body    []byte
	status  int
	expires time.Time
}

// NewUpstream returns an Upstream guard (zero fields take defaults).
func NewUpstream(cfg UpstreamConfig) (*Upstream, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	u := &Upstream{
		cfg:      cfg,
		sem:      make(chan struct{}, cfg.MaxConcurrent),
		qsem:     make(chan struct{}, cfg.MaxConcurrentQueries),
		inflight: make(map[string]*flight),
		cache:    make(map[string]*list.Element),
	}
	if !cfg.Rate.Unlimited {
		l, b := cfg.Rate.limit()
		u.lim = rate.NewLimiter(l, b)
	}
	return u, nil
}

// Stats returns current counters.
func (u *Upstream) Stats() UpstreamStats {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.stats
	s.InFlight = len(u.inflight)
	s.CacheEntries = len(u.cache)
	s.CacheBytes = u.bytes
	return s
}

// Do runs fn under the guard; see Upstream. The error is ctx's error
// (wrapped) when the caller gave up, the guard's error when no slot or rate
// token could be had within Timeout, or fn's error.
func (u *Upstream) Do(ctx context.Context, key string, fn FetchFunc) ([]byte, int, error) {
	if fn == nil {
		return nil, 0, errors.New("ratelimit: upstream: nil fetch function")
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, fmt.Errorf("ratelimit: upstream: %w", err)
	}
	u.mu.Lock()
	if key != "" {
		if c, ok := u.cacheGetLocked(key); ok {
			u.stats.CacheHits++
			u.mu.Unlock()
			u.observe(key, true)
			return c.body, c.status, nil
		}
		if f, ok := u.inflight[key]; ok {
			f.waiters++
			u.stats.Coalesced++
			u.mu.Unlock()
			u.observe(key, false)
			return u.wait(ctx, key, f)
		}
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), u.cfg.Timeout)
	f := &flight{done: make(chan struct{}), waiters: 1, cancel: cancel}
	if key != "" {
		u.inflight[key] = f
	}
	u.mu.Unlock()
	u.observe(key, false)
	go u.run(fctx, key, f, fn)
	return u.wait(ctx, key, f)
}

// queryKey marks a context whose upstream call lists entities.
type queryKey struct{}

// AsQuery returns ctx marked so that its upstream call takes one of
// MaxConcurrentQueries slots as well as one of MaxConcurrent.
func AsQuery(ctx context.Context) context.Context {
	return context.WithValue(ctx, queryKey{}, true)
}

// isQuery reports whether ctx was marked by AsQuery.
func isQuery(ctx context.Context) bool {
	q, _ := ctx.Value(queryKey{}).(bool)
	return q
}

// observe reports the timing class of one keyed call.
func (u *Upstream) observe(key string, cached bool) {
	if key != "" && u.cfg.Observe != nil {
		u.cfg.Observe(key, cached)
	}
}

// cacheable reports whether an answer may be cached: success, and
// not-found so that hidden and missing entities time alike.
func cacheable(status int) bool {
	return (status >= 200 && status < 300) || status == 404
}

// wait waits for f or for the caller to give up.
func (u *Upstream) wait(ctx context.Context, key string, f *flight) ([]byte, int, error) {
	select {
	case <-f.done:
		return f.body, f.status, f.err
	case <-ctx.Done():
		u.mu.Lock()
		f.waiters--
		if f.waiters == 0 {
			// Nobody wants the result any more: stop the call and let a later
			// caller start a fresh one.
			f.cancel()
			if key != "" && u.inflight[key] == f {
				delete(u.inflight, key)
			}
		}
		u.mu.Unlock()
		return nil, 0, fmt.Errorf("ratelimit: upstream: %w", ctx.Err())
	}
}

// run performs the shared call and publishes its result.
func (u *Upstream) run(ctx context.Context, key string, f *flight, fn FetchFunc) {
	defer f.cancel()
	defer func() {
		if p := recover(); p != nil {
			f.body, f.status, f.err = nil, 0, fmt.Errorf("ratelimit: upstream call panicked: %v", p)
		}
		u.mu.Lock()
		if f.err != nil {
			u.stats.Errors++
		}
		if key != "" && u.inflight[key] == f {
			delete(u.inflight, key)
		}
		if key != "" && f.err == nil && cacheable(f.status) {
			u.cachePutLocked(key, f.body, f.status)
		}
		u.mu.Unlock()
		close(f.done)
	}()
	if isQuery(ctx) {
		// The query slot first, then the general one: a query waiting for
		// its own kind never holds a slot that a lookup could use.
		select {
		case u.qsem <- struct{}{}:
		case <-ctx.Done():
			f.err = fmt.Errorf("ratelimit: upstream: no query slot: %w", ctx.Err())
			return
		}
		defer func() { <-u.qsem }()
	}
	select {
	case u.sem <- struct{}{}:
	case <-ctx.Done():
		f.err = fmt.Errorf("ratelimit: upstream: no concurrency slot: %w", ctx.Err())
		return
	}
	defer func() { <-u.sem }()
	if u.lim != nil {
		if err := u.lim.Wait(ctx); err != nil {
			f.err = fmt.Errorf("ratelimit: upstream rate limit: %w", err)
			return
		}
	}
	u.mu.Lock()
	u.stats.Calls++
	u.mu.Unlock()
	f.body, f.status, f.err = fn(ctx)
}

func (u *Upstream) cacheGetLocked(key string) (*cached, bool) {
	el, ok := u.cache[key]
	if !ok {
		return nil, false
	}
	c := el.Value.(*cached)
	if !u.cfg.Now().Before(c.expires) {
		u.removeCachedLocked(el)
		return nil, false
	}
	return c, true
}

func (u *Upstream) cachePutLocked(key string, body []byte, status int) {
	size := int64(len(body))
	if u.cfg.CacheTTL < 0 || size > u.cfg.CacheMaxEntryBytes || size > u.cfg.CacheMaxBytes {
		return
	}
	now := u.cfg.Now()
	if el, ok := u.cache[key]; ok {
		u.removeCachedLocked(el)
	}
	// Oldest first: expired entries, then whatever is needed to make room.
	for el := u.order.Front(); el != nil; el = u.order.Front() {
		c := el.Value.(*cached)
		if now.Before(c.expires) && len(u.cache) < u.cfg.CacheMaxEntries && u.bytes+size <= u.cfg.CacheMaxBytes {
			break
		}
		u.removeCachedLocked(el)
	}
	c := &cached{key: key, body: body, status: status, expires: now.Add(u.cfg.CacheTTL)}
	u.cache[key] = u.order.PushBack(c)
	u.bytes += size
}

func (u *Upstream) removeCachedLocked(el *list.Element) {
	c := el.Value.(*cached)
	u.order.Remove(el)
	delete(u.cache, c.key)
	u.bytes -= int64(len(c.body))
}

package ratelimit

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/internal/redistest"
	"github.com/redis/go-redis/v9"
)

func redisConfig() Config {
	return Config{
		DefaultClass: "c",
		Classes: map[string]Rate{
			"c":         PerSecond(1, 3),
			"slow":      {Requests: 1, Per: time.Hour, Burst: 1},
			"fraction":  {Requests: 1.5, Per: time.Hour, Burst: 2},
			"unlimited": {Unlimited: true},
		},
		Agent:  Rate{Requests: 2, Per: time.Hour, Burst: 2},
		Global: PerSecond(1000, 1000),
	}
}

func newRedisLimiter(t *testing.T, srv *redistest.Server, cfg Config) *Redis {
	t.Helper()
	// Generous timeouts: the tests share two busy cores with others.
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), DialTimeout: time.Second,
		ReadTimeout: time.Second, WriteTimeout: time.Second, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	l, err := NewRedis(cfg, RedisOptions{Client: rdb, KeyPrefix: "test:", Timeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestRedisBuckets(t *testing.T) {
	srv := redistest.Start(t)
	l := newRedisLimiter(t, srv, redisConfig())
	ctx := context.Background()
	tests := []struct {
		name      string
		key       Key
		calls     int
		allowed   int
		limit     string
		maxRetry  time.Duration
		minRetry  time.Duration
		wantError error
	}{
		{name: "burst then deny", key: UserKey("jane", "c"), calls: 5, allowed: 3, limit: LimitUser, minRetry: 500 * time.Millisecond, maxRetry: time.Second},
		{name: "default class is c", key: UserKey("joe", ""), calls: 4, allowed: 3, limit: LimitUser, minRetry: 500 * time.Millisecond, maxRetry: time.Second},
		{name: "slow class", key: UserKey("jane", "slow"), calls: 3, allowed: 1, limit: LimitUser, minRetry: 59 * time.Minute, maxRetry: time.Hour},
		{name: "fractional rate", key: UserKey("jane", "fraction"), calls: 3, allowed: 2, limit: LimitUser, minRetry: 39 * time.Minute, maxRetry: 40 * time.Minute},
		{name: "agent", key: AgentKey("copilot"), calls: 3, allowed: 2, limit: LimitAgent, minRetry: 29 * time.Minute, maxRetry: 30 * time.Minute},
		{name: "unlimited class", key: UserKey("jane", "unlimited"), calls: 50, allowed: 50},
		{name: "unknown class", key: UserKey("jane", "nope"), calls: 1, wantError: ErrUnknownClass},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := 0
			var last Decision
			for range tc.calls {
				d, err := l.Allow(ctx, tc.key, 1)
				if tc.wantError != nil {
					if !errors.Is(err, tc.wantError) {
						t.Fatalf("err = %v, want %v", err, tc.wantError)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if d.Allowed {
					got++
				} else {
					last = d
				}
			}
			if got != tc.allowed {
				t.Fatalf("allowed %d of %d, want %d", got, tc.calls, tc.allowed)
			}
			if tc.limit == "" {
				return
			}
			if last.Limit != tc.limit || last.RetryAfter < tc.minRetry || last.RetryAfter > tc.maxRetry {
				t.Fatalf("denial = %+v, want limit %s, retry in [%s, %s]", last, tc.limit, tc.minRetry, tc.maxRetry)
			}
		})
	}
	t.Run("n above burst", func(t *testing.T) {
		if _, err := l.Allow(ctx, UserKey("ann", "c"), 4); !errors.Is(err, ErrExceedsBurst) {
			t.Fatalf("err = %v, want ErrExceedsBurst", err)
		}
	})
}

// TestRedisRefill shows the bucket refills with Redis's clock.
func TestRedisRefill(t *testing.T) {
	srv := redistest.Start(t)
	cfg := redisConfig()
	cfg.Classes["quick"] = PerSecond(20, 1)
	l := newRedisLimiter(t, srv, cfg)
	k := UserKey("jane", "quick")
	if d, err := l.Allow(t.Context(), k, 1); err != nil || !d.Allowed {
		t.Fatalf("first call: %+v %v", d, err)
	}
	d, err := l.Allow(t.Context(), k, 1)
	if err != nil || d.Allowed {
		t.Fatalf("second call at once: %+v %v, want denied", d, err)
	}
	time.Sleep(d.RetryAfter + 10*time.Millisecond)
	if d, err := l.Allow(t.Context(), k, 1); err != nil || !d.Allowed {
		t.Fatalf("after RetryAfter: %+v %v, want allowed", d, err)
	}
}

// TestRedisSharedAcrossReplicas runs two limiters (two replicas, each with
// its own client) against one Redis: together they allow one budget, not
// two.
func TestRedisSharedAcrossReplicas(t *testing.T) {
	srv := redistest.Start(t)
	cfg := redisConfig()
	cfg.Classes["team"] = Rate{Requests: 10, Per: time.Hour, Burst: 10}
	cfg.Agent = Rate{Unlimited: true}
	replicas := []*Chain{NewChain(newRedisLimiter(t, srv, cfg)), NewChain(newRedisLimiter(t, srv, cfg))}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			d, err := replicas[i%2].Allow(t.Context(), "user:default/jane", "team", "copilot")
			if err != nil {
				t.Error(err)
				return
			}
			if d.Allowed {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	if got := allowed.Load(); got != 10 {
		t.Fatalf("two replicas allowed %d calls, want exactly the one budget of 10", got)
	}
}

// TestRedisChainOrder: a call the user bucket denies takes nothing from
// the agent bucket.
func TestRedisChainOrder(t *testing.T) {
	srv := redistest.Start(t)
	c := NewChain(newRedisLimiter(t, srv, redisConfig()))
	// "slow" allows one call per hour; the agent allows two.
	for i, want := range []bool{true, false, false, false} {
		d, err := c.Allow(t.Context(), "jane", "slow", "copilot")
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed != want {
			t.Fatalf("call %d: %+v, want allowed=%v", i, d, want)
		}
		if !d.Allowed && d.Limit != LimitUser {
			t.Fatalf("call %d denied by %q, want the user limit", i, d.Limit)
		}
	}
	// The agent still has one token: another user gets through.
	if d, err := c.Allow(t.Context(), "joe", "slow", "copilot"); err != nil || !d.Allowed {
		t.Fatalf("other user through the same agent: %+v %v, want allowed", d, err)
	}
}

// TestRedisFailClosedAndRecover: Redis down → every check errors with
// ErrStoreUnavailable, within the timeout; Redis back → the same limiter
// works again without a restart.
func TestRedisFailClosedAndRecover(t *testing.T) {
	srv := redistest.Start(t)
	l := newRedisLimiter(t, srv, redisConfig())
	c := NewChain(l)
	if d, err := c.Allow(t.Context(), "jane", "c", "copilot"); err != nil || !d.Allowed {
		t.Fatalf("before: %+v %v", d, err)
	}
	srv.Stop()
	for range 3 {
		start := time.Now()
		d, err := c.Allow(t.Context(), "jane", "c", "copilot")
		if !errors.Is(err, ErrStoreUnavailable) || d.Allowed {
			t.Fatalf("Redis down: %+v, err %v; want a denial with ErrStoreUnavailable", d, err)
		}
		if !strings.Contains(err.Error(), "shared rate-limit store unavailable") {
			t.Fatalf("error %q does not say what failed", err)
		}
		if el := time.Since(start); el > 3*time.Second {
			t.Fatalf("failing took %s, want a bounded wait", el)
		}
	}
	srv.Restart()
	deadline := time.Now().Add(5 * time.Second)
	for {
		d, err := c.Allow(t.Context(), "jane", "c", "copilot")
		if err == nil && d.Allowed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery within 5s after Redis came back: %+v %v", d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRedisKeysExpire: a bucket's key carries a TTL, so Redis forgets
// full buckets and its memory stays bounded.
func TestRedisKeysExpire(t *testing.T) {
	srv := redistest.Start(t)
	l := newRedisLimiter(t, srv, redisConfig())
	k := UserKey("jane", "c")
	if _, err := l.Allow(t.Context(), k, 1); err != nil {
		t.Fatal(err)
	}
	ttl, err := srv.Do("TTL", "rate:test:rl:"+k.String())
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimPrefix(ttl, ":"))
	if err != nil || n < 1 || n > 3 {
		t.Fatalf("TTL of the bucket key = %q, want 1..3 seconds", ttl)
	}
}

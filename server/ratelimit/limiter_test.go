package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// clock is a manual clock for tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testConfig has one user class "c" of 1/s burst 3, generous agent and
// global limits, and the given clock.
func testConfig(c *clock) Config {
	return Config{
		DefaultClass: "c",
		Classes:      map[string]Rate{"c": PerSecond(1, 3), "slow": {Requests: 1, Per: time.Hour, Burst: 1}, "fast": PerSecond(100, 100)},
		Agent:        PerSecond(1000, 1000),
		Global:       PerSecond(1000, 1000),
		Now:          c.Now,
	}
}

func newMemory(t testing.TB, cfg Config) *Memory {
	t.Helper()
	m, err := NewMemory(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func allow(t *testing.T, l Limiter, k Key) Decision {
	t.Helper()
	d, err := l.Allow(context.Background(), k, 1)
	if err != nil {
		t.Fatalf("Allow(%v): %v", k, err)
	}
	return d
}

func TestMemoryBurstAndRefill(t *testing.T) {
	c := newClock()
	m := newMemory(t, testConfig(c))
	k := UserKey("jane", "c")
	for i := range 3 {
		if d := allow(t, m, k); !d.Allowed {
			t.Fatalf("burst call %d denied: %v", i, d)
		}
	}
	d := allow(t, m, k)
	if d.Allowed || d.Limit != LimitUser || d.RetryAfter != time.Second {
		t.Fatalf("4th call = %+v, want denied by user, retry after 1s", d)
	}
	c.Advance(500 * time.Millisecond)
	if d := allow(t, m, k); d.Allowed || d.RetryAfter != 500*time.Millisecond {
		t.Fatalf("after 0.5s = %+v, want denied, retry after 0.5s", d)
	}
	c.Advance(500 * time.Millisecond)
	if d := allow(t, m, k); !d.Allowed {
		t.Fatalf("after refill = %+v, want allowed", d)
	}
	if d := allow(t, m, k); d.Allowed {
		t.Fatal("a second call after a one-token refill was allowed")
	}
	c.Advance(time.Hour)
	for i := range 3 {
		if d := allow(t, m, k); !d.Allowed {
			t.Fatalf("after a long idle, call %d denied: burst is not restored", i)
		}
	}
	if d := allow(t, m, k); d.Allowed {
		t.Fatal("the burst grew beyond its size after a long idle")
	}
}

func TestMemorySeparation(t *testing.T) {
	tests := []struct {
		name  string
		other Key
	}{
		{"other class of same user", UserKey("jane", "fast")},
		{"other user in same class", UserKey("bob", "c")},
		{"agent bucket", AgentKey("jane")},
		{"global bucket", GlobalKey()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMemory(t, testConfig(newClock()))
			jane := UserKey("jane", "c")
			for range 3 {
				allow(t, m, jane)
			}
			if d := allow(t, m, jane); d.Allowed {
				t.Fatal("jane not exhausted")
			}
			if d := allow(t, m, tt.other); !d.Allowed {
				t.Errorf("%v was limited by jane's bucket: %+v", tt.other, d)
			}
		})
	}
}

func TestMemoryDefaultAndUnknownClass(t *testing.T) {
	m := newMemory(t, testConfig(newClock()))
	for range 3 {
		allow(t, m, UserKey("jane", ""))
	}
	if d := allow(t, m, UserKey("jane", "c")); d.Allowed {
		t.Error("the empty class is not the default class bucket")
	}
	_, err := m.Allow(context.Background(), UserKey("jane", "nope"), 1)
	if !errors.Is(err, ErrUnknownClass) {
		t.Errorf("unknown class: err = %v, want ErrUnknownClass", err)
	}
	_, err = m.Allow(context.Background(), UserKey("jane", "c"), 4)
	if !errors.Is(err, ErrExceedsBurst) {
		t.Errorf("n > burst: err = %v, want ErrExceedsBurst", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Allow(ctx, UserKey("jane", "c"), 1); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled ctx: err = %v", err)
	}
}

func TestChain(t *testing.T) {
	tests := []struct {
		name      string
		cfg       func(c Config) Config
		calls     int
		wantLimit string
		wantRetry time.Duration
	}{
		{
			name:      "user limit",
			cfg:       func(c Config) Config { return c },
			calls:     3,
			wantLimit: LimitUser, wantRetry: time.Second,
		},
		{
			name:      "agent limit",
			cfg:       func(c Config) Config { c.Agent = PerSecond(0.5, 2); return c },
			calls:     2,
			wantLimit: LimitAgent, wantRetry: 2 * time.Second,
		},
		{
			name:      "global limit",
			cfg:       func(c Config) Config { c.Global = PerSecond(0.25, 1); return c },
			calls:     1,
			wantLimit: LimitGlobal, wantRetry: 4 * time.Second,
		},
		{
			name: "longest wait reported",
			cfg: func(c Config) Config {
				c.Classes["c"] = PerSecond(1, 1)
				c.Global = PerSecond(0.1, 1)
				return c
			},
			calls:     1,
			wantLimit: LimitGlobal, wantRetry: 10 * time.Second,
		},
		{
			name:      "unlimited global",
			cfg:       func(c Config) Config { c.Global = Rate{Unlimited: true}; return c },
			calls:     3,
			wantLimit: LimitUser, wantRetry: time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chain := NewChain(newMemory(t, tt.cfg(testConfig(newClock()))))
			ctx := context.Background()
			for i := range tt.calls {
				if d, err := chain.Allow(ctx, "jane", "c", "copilot"); err != nil || !d.Allowed {
					t.Fatalf("call %d = %+v, %v", i, d, err)
				}
			}
			d, err := chain.Allow(ctx, "jane", "c", "copilot")
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed || d.Limit != tt.wantLimit || d.RetryAfter != tt.wantRetry {
				t.Errorf("decision = %+v, want %s retry %s", d, tt.wantLimit, tt.wantRetry)
			}
			if d.String() == "" || d.String() == "allowed" {
				t.Errorf("String() = %q", d.String())
			}
		})
	}
}

func TestChainDenialTakesNoTokens(t *testing.T) {
	c := newClock()
	cfg := testConfig(c)
	cfg.Classes["c"] = PerMinute(1, 2)
	cfg.Global = PerSecond(1, 1)
	chain := NewChain(newMemory(t, cfg))
	ctx := context.Background()
	call := func() Decision {
		d, err := chain.Allow(ctx, "jane", "c", "copilot")
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := call(); !d.Allowed {
		t.Fatalf("first call = %+v", d)
	}
	for range 5 {
		if d := call(); d.Allowed || d.Limit != LimitGlobal {
			t.Fatalf("call while global is empty = %+v, want global denial", d)
		}
	}
	c.Advance(time.Second)
	// Jane still has her second token: the global denials took none.
	if d := call(); !d.Allowed {
		t.Fatalf("after global refill = %+v, want allowed", d)
	}
	c.Advance(time.Second)
	if d := call(); d.Allowed || d.Limit != LimitUser {
		t.Fatalf("third call = %+v, want user denial", d)
	}
}

// seqLimiter is a Limiter without AllowAll, to exercise the fallback.
type seqLimiter struct{ m *Memory }

func (s seqLimiter) Allow(ctx context.Context, k Key, n int) (Decision, error) {
	return s.m.Allow(ctx, k, n)
}

func TestChainFallback(t *testing.T) {
	cfg := testConfig(newClock())
	cfg.Agent = PerSecond(1, 1)
	chain := NewChain(seqLimiter{newMemory(t, cfg)})
	ctx := context.Background()
	if d, _ := chain.Allow(ctx, "jane", "c", "copilot"); !d.Allowed {
		t.Fatal("first call denied")
	}
	d, err := chain.Allow(ctx, "jane", "c", "copilot")
	if err != nil || d.Allowed || d.Limit != LimitAgent {
		t.Fatalf("second call = %+v, %v; want agent denial", d, err)
	}
}

func TestMemoryIdleEviction(t *testing.T) {
	c := newClock()
	cfg := testConfig(c)
	cfg.IdleTTL = time.Minute
	m := newMemory(t, cfg)
	for i := range 100 {
		allow(t, m, UserKey(fmt.Sprintf("user-%d", i), "c"))
	}
	// An exhausted bucket in a slow class stays until it has refilled.
	slow := UserKey("slowpoke", "slow")
	allow(t, m, slow)
	if got := m.Stats().Keys; got != 101 {
		t.Fatalf("Keys = %d, want 101", got)
	}
	c.Advance(time.Minute + time.Second)
	allow(t, m, UserKey("trigger", "c"))
	if got := m.Stats().Keys; got != 2 {
		t.Fatalf("after idle sweep Keys = %d, want 2 (slowpoke and trigger)", got)
	}
	if d := allow(t, m, slow); d.Allowed {
		t.Fatal("a non-full bucket was reset by eviction")
	}
	if got := m.Stats().Evicted; got != 100 {
		t.Errorf("Evicted = %d, want 100", got)
	}
}

func TestMemoryKeyCap(t *testing.T) {
	c := newClock()
	cfg := testConfig(c)
	cfg.MaxKeys = 3
	m := newMemory(t, cfg)
	// The attacker exhausts its bucket, then floods distinct keys.
	attacker := UserKey("attacker", "c")
	for range 3 {
		allow(t, m, attacker)
	}
	if d := allow(t, m, attacker); d.Allowed {
		t.Fatal("attacker not exhausted")
	}
	allow(t, m, UserKey("u1", "c"))
	allow(t, m, UserKey("u1", "c")) // u1 no longer full
	admitted, rejected := 0, 0
	for i := range 50 {
		d := allow(t, m, UserKey(fmt.Sprintf("flood-%d", i), "c"))
		if d.Allowed {
			admitted++
		} else {
			rejected++
			if d.Limit != LimitUser || d.RetryAfter <= 0 {
				t.Fatalf("capacity denial = %+v", d)
			}
		}
		if got := m.Stats().Keys; got > cfg.MaxKeys {
			t.Fatalf("Keys = %d over MaxKeys %d", got, cfg.MaxKeys)
		}
	}
	// Each flood key that got in used a token, so it is not full and cannot
	// be evicted: exactly one was admitted, the rest rejected.
	if admitted != 1 || rejected != 49 {
		t.Errorf("admitted %d, rejected %d; want 1 and 49", admitted, rejected)
	}
	if d := allow(t, m, attacker); d.Allowed {
		t.Fatal("eviction churn reset the attacker's bucket")
	}
	if got := m.Stats().RejectedAtCapacity; got != 49 {
		t.Errorf("RejectedAtCapacity = %d, want 49", got)
	}
	// Once buckets have refilled they are evictable and new keys get in.
	c.Advance(10 * time.Second)
	if d := allow(t, m, UserKey("newcomer", "c")); !d.Allowed {
		t.Errorf("newcomer after refill = %+v", d)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{"defaults", DefaultConfig(), false},
		{"zero value", Config{}, false},
		{"default class missing", Config{DefaultClass: "gold"}, true},
		{"rate without per", Config{Classes: map[string]Rate{"default": {Requests: 5}}}, true},
		{"rate without requests", Config{Classes: map[string]Rate{"default": {Per: time.Second}}}, true},
		{"negative burst", Config{Agent: Rate{Requests: 1, Per: time.Second, Burst: -1}}, true},
		{"explicit unlimited", Config{Global: Rate{Unlimited: true}}, false},
		{"bad upstream rate", Config{Upstream: UpstreamConfig{Rate: Rate{Requests: 3}}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); (err != nil) != tt.wantErr {
				t.Errorf("Validate = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
	if !DefaultConfig().HasClass("default") || DefaultConfig().HasClass("gold") {
		t.Error("HasClass is wrong")
	}
}

func TestKeyString(t *testing.T) {
	tests := []struct {
		name string
		a, b Key
	}{
		{"class and id boundary", UserKey("b:c", "a"), UserKey("c", "a:b")},
		{"kinds", AgentKey("x"), UserKey("x", "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.a.String() == tt.b.String() {
				t.Errorf("%v and %v have the same String %q", tt.a, tt.b, tt.a.String())
			}
		})
	}
}

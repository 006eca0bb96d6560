package ratelimit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newUpstream(t *testing.T, cfg UpstreamConfig) *Upstream {
	t.Helper()
	u, err := NewUpstream(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// waitUntil yields until cond holds. It asserts no timing: it only lets the
// goroutines under test make progress.
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for i := 0; !cond(); i++ {
		if i > 5_000_000 {
			t.Fatal("condition never held")
		}
		runtime.Gosched()
	}
}

func TestUpstreamCoalesces(t *testing.T) {
	u := newUpstream(t, UpstreamConfig{Rate: Rate{Unlimited: true}})
	var calls atomic.Int32
	release := make(chan struct{})
	fn := func(ctx context.Context) ([]byte, int, error) {
		calls.Add(1)
		<-release
		return []byte(`{"items":[]}`), 200, nil
	}
	const n = 20
	var wg sync.WaitGroup
	results := make([][]byte, n)
	for i := range n {
		wg.Go(func() {
			body, status, err := u.Do(context.Background(), "GET /entities?filter=kind=component", fn)
			if err != nil || status != 200 {
				t.Errorf("Do = %d, %v", status, err)
			}
			results[i] = body
		})
	}
	waitUntil(t, func() bool { return u.Stats().Coalesced == n-1 })
	close(release)
	wg.Wait()
	if got := calls.Load(); got != 1 {
		t.Fatalf("fn called %d times, want 1", got)
	}
	for i, b := range results {
		if !bytes.Equal(b, []byte(`{"items":[]}`)) {
			t.Errorf("caller %d got %q", i, b)
		}
	}
}

func TestUpstreamCache(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		err       error
		wantCalls int32 // after two calls within TTL
	}{
		{"2xx cached", 200, nil, 1},
		{"404 cached too (hidden and missing alike)", 404, nil, 1},
		{"400 not cached", 400, nil, 2},
		{"5xx not cached", 503, nil, 2},
		{"error not cached", 0, errors.New("boom"), 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			u := newUpstream(t, UpstreamConfig{CacheTTL: 2 * time.Second, Now: c.Now, Rate: Rate{Unlimited: true}})
			var calls atomic.Int32
			fn := func(ctx context.Context) ([]byte, int, error) {
				calls.Add(1)
				return []byte("body"), tt.status, tt.err
			}
			for range 2 {
				_, status, err := u.Do(context.Background(), "k", fn)
				if status != tt.status || !errors.Is(err, tt.err) {
					t.Fatalf("Do = %d, %v", status, err)
				}
			}
			if got := calls.Load(); got != tt.wantCalls {
				t.Fatalf("fn called %d times, want %d", got, tt.wantCalls)
			}
			c.Advance(2 * time.Second)
			if _, _, err := u.Do(context.Background(), "k", fn); !errors.Is(err, tt.err) {
				t.Fatal(err)
			}
			if got := calls.Load(); got != tt.wantCalls+1 {
				t.Errorf("after TTL fn called %d times, want %d", got, tt.wantCalls+1)
			}
		})
	}
}

// TestUpstreamHiddenAndMissingTimeAlike is the regression test for the
// cache-timing side channel: a hidden entity (Backstage answers 200, the
// tool filters it out) and a missing one (404) must be answered from the
// cache alike on the second call within the window, and the Observe hook
// must report the same timing classes for both.
func TestUpstreamHiddenAndMissingTimeAlike(t *testing.T) {
	for _, status := range []int{200, 404} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			c := newClock()
			var classes []bool
			u := newUpstream(t, UpstreamConfig{CacheTTL: 2 * time.Second, Now: c.Now, Rate: Rate{Unlimited: true},
				Observe: func(_ string, cached bool) { classes = append(classes, cached) }})
			var calls atomic.Int32
			fn := func(ctx context.Context) ([]byte, int, error) { calls.Add(1); return []byte("{}"), status, nil }
			for range 2 {
				if _, got, err := u.Do(context.Background(), "GET /entities/by-name/component/default/x", fn); err != nil || got != status {
					t.Fatalf("Do = %d, %v", got, err)
				}
			}
			c.Advance(2 * time.Second)
			if _, _, err := u.Do(context.Background(), "GET /entities/by-name/component/default/x", fn); err != nil {
				t.Fatal(err)
			}
			if want := []bool{false, true, false}; !slices.Equal(classes, want) {
				t.Errorf("timing classes %v, want %v", classes, want)
			}
			if calls.Load() != 2 {
				t.Errorf("fn called %d times, want 2", calls.Load())
			}
		})
	}
}

func TestUpstreamCacheBounds(t *testing.T) {
	tests := []struct {
		name        string
		cfg         UpstreamConfig
		bodies      []int // sizes, keys k0, k1, …
		wantEntries int
		wantBytes   int64
		wantCached  []bool // per key, after all puts
	}{
		{
			name:        "entry cap evicts oldest",
			cfg:         UpstreamConfig{CacheMaxEntries: 2},
			bodies:      []int{10, 10, 10},
			wantEntries: 2, wantBytes: 20,
			wantCached: []bool{false, true, true},
		},
		{
			name:        "byte cap evicts oldest",
			cfg:         UpstreamConfig{CacheMaxBytes: 25},
			bodies:      []int{10, 10, 10},
			wantEntries: 2, wantBytes: 20,
			wantCached: []bool{false, true, true},
		},
		{
			name:        "oversized entry not cached",
			cfg:         UpstreamConfig{CacheMaxEntryBytes: 15},
			bodies:      []int{10, 20},
			wantEntries: 1, wantBytes: 10,
			wantCached: []bool{true, false},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Now = newClock().Now
			cfg.Rate = Rate{Unlimited: true}
			u := newUpstream(t, cfg)
			var calls atomic.Int32
			for i, size := range tt.bodies {
				_, _, err := u.Do(context.Background(), fmt.Sprintf("k%d", i), func(ctx context.Context) ([]byte, int, error) {
					calls.Add(1)
					return make([]byte, size), 200, nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			s := u.Stats()
			if s.CacheEntries != tt.wantEntries || s.CacheBytes != tt.wantBytes {
				t.Fatalf("cache = %d entries, %d bytes; want %d, %d", s.CacheEntries, s.CacheBytes, tt.wantEntries, tt.wantBytes)
			}
			for i, want := range tt.wantCached {
				before := calls.Load()
				if _, _, err := u.Do(context.Background(), fmt.Sprintf("k%d", i), func(ctx context.Context) ([]byte, int, error) {
					calls.Add(1)
					return nil, 500, nil
				}); err != nil {
					t.Fatal(err)
				}
				if cached := calls.Load() == before; cached != want {
					t.Errorf("k%d cached = %v, want %v", i, cached, want)
				}
			}
		})
	}
}

func TestUpstreamConcurrencyCap(t *testing.T) {
	u := newUpstream(t, UpstreamConfig{MaxConcurrent: 2, Rate: Rate{Unlimited: true}})
	var active, peak atomic.Int32
	release := make(chan struct{})
	fn := func(ctx context.Context) ([]byte, int, error) {
		n := active.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		active.Add(-1)
		return nil, 200, nil
	}
	const n = 10
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, _, err := u.Do(context.Background(), fmt.Sprintf("k%d", i), fn); err != nil {
				t.Error(err)
			}
		})
	}
	waitUntil(t, func() bool { return active.Load() == 2 && u.Stats().InFlight == n })
	for range n {
		release <- struct{}{}
	}
	wg.Wait()
	if got := peak.Load(); got != 2 {
		t.Errorf("peak concurrency %d, want 2", got)
	}
}

// TestUpstreamQueryCap checks that queries (AsQuery) run at most
// MaxConcurrentQueries at a time, and that lookups keep the remaining
// MaxConcurrent slots while queries wait.
func TestUpstreamQueryCap(t *testing.T) {
	u := newUpstream(t, UpstreamConfig{MaxConcurrent: 4, MaxConcurrentQueries: 2, Rate: Rate{Unlimited: true}})
	var queries, lookups atomic.Int32
	release := make(chan struct{})
	block := func(active *atomic.Int32) FetchFunc {
		return func(ctx context.Context) ([]byte, int, error) {
			active.Add(1)
			<-release
			active.Add(-1)
			return nil, 200, nil
		}
	}
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			if _, _, err := u.Do(AsQuery(context.Background()), fmt.Sprintf("q%d", i), block(&queries)); err != nil {
				t.Error(err)
			}
		})
	}
	waitUntil(t, func() bool { return queries.Load() == 2 && u.Stats().InFlight == 6 })
	// Four queries wait for a query slot, holding no general slot: two
	// lookups still run.
	for i := range 3 {
		wg.Go(func() {
			if _, _, err := u.Do(context.Background(), fmt.Sprintf("g%d", i), block(&lookups)); err != nil {
				t.Error(err)
			}
		})
	}
	waitUntil(t, func() bool { return lookups.Load() == 2 && u.Stats().InFlight == 9 })
	if q := queries.Load(); q != 2 {
		t.Errorf("%d queries running, want 2", q)
	}
	for range 9 {
		release <- struct{}{}
	}
	wg.Wait()
}

func TestUpstreamQueryCapConfig(t *testing.T) {
	for _, c := range []struct {
		cfg  UpstreamConfig
		want int // effective MaxConcurrentQueries; 0: invalid
	}{
		{UpstreamConfig{}, 4},
		{UpstreamConfig{MaxConcurrent: 2}, 2},
		{UpstreamConfig{MaxConcurrent: 32, MaxConcurrentQueries: 8}, 8},
		{UpstreamConfig{MaxConcurrent: 4, MaxConcurrentQueries: 8}, 0},
		{UpstreamConfig{MaxConcurrentQueries: -1}, 0},
	} {
		err := c.cfg.Validate()
		if c.want == 0 {
			if err == nil {
				t.Errorf("%+v: accepted", c.cfg)
			}
			continue
		}
		if err != nil {
			t.Errorf("%+v: %v", c.cfg, err)
			continue
		}
		if got := c.cfg.withDefaults().MaxConcurrentQueries; got != c.want {
			t.Errorf("%+v: maxConcurrentQueries %d, want %d", c.cfg, got, c.want)
		}
	}
}

func TestUpstreamCallerGivesUp(t *testing.T) {
	u := newUpstream(t, UpstreamConfig{Rate: Rate{Unlimited: true}})
	started := make(chan struct{})
	cancelled := make(chan struct{})
	fn := func(ctx context.Context) ([]byte, int, error) {
		close(started)
		<-ctx.Done()
		close(cancelled)
		return nil, 0, ctx.Err()
	}

	// Two callers share the call; the first gives up, the second still waits.
	ctx1, cancel1 := context.WithCancel(context.Background())
	ctx2, cancel2 := context.WithCancel(context.Background())
	errs := make(chan error, 2)
	go func() { _, _, err := u.Do(ctx1, "k", fn); errs <- err }()
	<-started
	go func() { _, _, err := u.Do(ctx2, "k", fn); errs <- err }()
	waitUntil(t, func() bool { return u.Stats().Coalesced == 1 })
	cancel1()
	if err := <-errs; !errors.Is(err, context.Canceled) {
		t.Fatalf("first caller: %v", err)
	}
	select {
	case <-cancelled:
		t.Fatal("the shared call was cancelled while a caller still waited")
	default:
	}
	cancel2()
	if err := <-errs; !errors.Is(err, context.Canceled) {
		t.Fatalf("second caller: %v", err)
	}
	<-cancelled // the call stops once nobody waits
	waitUntil(t, func() bool { return u.Stats().InFlight == 0 })
}

func TestUpstreamRateCap(t *testing.T) {
	u := newUpstream(t, UpstreamConfig{Rate: Rate{Requests: 1, Per: time.Hour, Burst: 1}, Timeout: time.Second})
	fn := func(ctx context.Context) ([]byte, int, error) { return nil, 200, nil }
	if _, _, err := u.Do(context.Background(), "a", fn); err != nil {
		t.Fatal(err)
	}
	// The next token is an hour away, beyond Timeout: fail at once.
	_, _, err := u.Do(context.Background(), "b", fn)
	if err == nil {
		t.Fatal("second call within the rate cap succeeded")
	}
	if got := u.Stats().Calls; got != 1 {
		t.Errorf("Calls = %d, want 1", got)
	}
}

func TestUpstreamPanicAndNilFn(t *testing.T) {
	u := newUpstream(t, UpstreamConfig{Rate: Rate{Unlimited: true}})
	_, _, err := u.Do(context.Background(), "k", func(ctx context.Context) ([]byte, int, error) { panic("bad") })
	if err == nil {
		t.Fatal("panic not turned into an error")
	}
	if _, _, err := u.Do(context.Background(), "k", nil); err == nil {
		t.Fatal("nil fn accepted")
	}
	// The key is usable again.
	body, _, err := u.Do(context.Background(), "k", func(ctx context.Context) ([]byte, int, error) { return []byte("ok"), 200, nil })
	if err != nil || string(body) != "ok" {
		t.Fatalf("Do = %q, %v", body, err)
	}
}

func TestUpstreamEmptyKeyNotShared(t *testing.T) {
	u := newUpstream(t, UpstreamConfig{Rate: Rate{Unlimited: true}})
	var calls atomic.Int32
	fn := func(ctx context.Context) ([]byte, int, error) { calls.Add(1); return nil, 200, nil }
	for range 3 {
		if _, _, err := u.Do(context.Background(), "", fn); err != nil {
			t.Fatal(err)
		}
	}
	if got := calls.Load(); got != 3 {
		t.Errorf("fn called %d times, want 3", got)
	}
}

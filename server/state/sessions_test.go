package state

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// storeKinds builds each SessionStore implementation for the same
// contract tests.
func storeKinds(t *testing.T) map[string]func(t *testing.T, lim SessionLimits) SessionStore {
	srv := redistest.Start(t)
	cluster := clusterAddrs(t)
	n := 0
	return map[string]func(t *testing.T, lim SessionLimits) SessionStore{
		"memory": func(_ *testing.T, lim SessionLimits) SessionStore { return NewMemorySessions(lim, nil) },
		"redis": func(t *testing.T, lim SessionLimits) SessionStore {
			n++
			rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
			t.Cleanup(func() { _ = rdb.Close() })
			return NewRedisSessions(rdb, lim, fmt.Sprintf("t%d:", n), nil)
		},
		// Redis Cluster: the create script's keys must share a slot.
		"redis cluster": func(t *testing.T, lim SessionLimits) SessionStore {
			n++
			rdb, err := NewRedisClient(RedisConfig{Cluster: RedisClusterConfig{Addrs: cluster}, Timeout: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = rdb.Close() })
			return NewRedisSessions(rdb, lim, fmt.Sprintf("t%d:", n), nil)
		},
	}
}

func TestSessionStores(t *testing.T) {
	ctx := context.Background()
	for kind, newStore := range storeKinds(t) {
		t.Run(kind, func(t *testing.T) {
			t.Run("create touch delete", func(t *testing.T) {
				st := newStore(t, SessionLimits{})
				if err := create(st, Session{ID: "s1", Owner: "jane", Protocol: "2025-06-18"}); err != nil {
					t.Fatal(err)
				}
				got, err := st.Touch(ctx, "s1")
				if err != nil || got.Owner != "jane" || got.Protocol != "2025-06-18" || got.Created.IsZero() || got.LastSeen.Before(got.Created) {
					t.Fatalf("Touch = %+v, %v", got, err)
				}
				if _, err := st.Delete(ctx, "s1"); err != nil {
					t.Fatal(err)
				}
				for _, op := range []func() error{
					func() error { _, err := st.Touch(ctx, "s1"); return err },
					func() error { _, err := st.Delete(ctx, "s1"); return err },
					func() error { _, err := st.Touch(ctx, "never-created"); return err },
				} {
					if err := op(); !errors.Is(err, ErrSessionNotFound) {
						t.Fatalf("after delete / unknown: %v, want ErrSessionNotFound", err)
					}
				}
				if n, err := st.Count(ctx); err != nil || n != 0 {
					t.Fatalf("Count = %d, %v; want 0", n, err)
				}
			})
			t.Run("duplicate id refused", func(t *testing.T) {
				st := newStore(t, SessionLimits{})
				if err := create(st, Session{ID: "dup", Owner: "jane"}); err != nil {
					t.Fatal(err)
				}
				if err := create(st, Session{ID: "dup", Owner: "mallory"}); err == nil {
					t.Fatal("second Create with the same id succeeded")
				}
				if s, _ := st.Touch(ctx, "dup"); s.Owner != "jane" {
					t.Fatalf("owner = %q after a duplicate Create, want jane", s.Owner)
				}
			})
			t.Run("caps evict the least recently used", func(t *testing.T) {
				st := newStore(t, SessionLimits{MaxPerUser: 2, Max: 3})
				steps := []struct {
					id, owner string
					touch     string // touched before the Create
					evicted   string // "id/user/reason", or ""
				}{
					{id: "a1", owner: "ann"}, {id: "a2", owner: "ann"},
					// a1 was used more recently than a2: a2 goes.
					{id: "a3", owner: "ann", touch: "a1", evicted: "a2/ann/user cap"},
					{id: "b1", owner: "bob"},
					// The service is full: its least recently used (a3) goes.
					{id: "c1", owner: "cat", touch: "a1", evicted: "a3/ann/service cap"},
				}
				for _, s := range steps {
					if s.touch != "" {
						time.Sleep(3 * time.Millisecond) // Redis keeps milliseconds
						if _, err := st.Touch(ctx, s.touch); err != nil {
							t.Fatal(err)
						}
						time.Sleep(3 * time.Millisecond)
					}
					ev, err := st.Create(ctx, Session{ID: s.id, Owner: s.owner})
					if err != nil {
						t.Fatalf("Create(%s, %s): %v", s.id, s.owner, err)
					}
					var got []string
					for _, e := range ev {
						got = append(got, e.ID+"/"+e.User+"/"+e.Reason)
					}
					if want := []string{s.evicted}; (s.evicted == "" && len(got) != 0) || (s.evicted != "" && fmt.Sprint(got) != fmt.Sprint(want)) {
						t.Fatalf("Create(%s) evicted %v, want %v", s.id, got, s.evicted)
					}
					time.Sleep(3 * time.Millisecond)
				}
				for _, id := range []string{"a2", "a3"} {
					if _, err := st.Touch(ctx, id); !errors.Is(err, ErrSessionNotFound) {
						t.Fatalf("evicted %s: %v, want ErrSessionNotFound", id, err)
					}
				}
				for _, id := range []string{"a1", "b1", "c1"} {
					if _, err := st.Touch(ctx, id); err != nil {
						t.Fatalf("kept %s: %v", id, err)
					}
				}
				if n, _ := st.Count(ctx); n != 3 {
					t.Fatalf("Count = %d, want 3", n)
				}
			})
			t.Run("cap holds under 64 concurrent creates", func(t *testing.T) {
				const limit = 32
				st := newStore(t, SessionLimits{MaxPerUser: limit})
				var wg sync.WaitGroup
				var mu sync.Mutex
				evicted := 0
				for i := range 64 {
					wg.Go(func() {
						ev, err := st.Create(ctx, Session{ID: fmt.Sprint("k", i), Owner: "jane"})
						if err != nil {
							t.Error(err)
						}
						mu.Lock()
						evicted += len(ev)
						mu.Unlock()
					})
				}
				wg.Wait()
				n, err := st.Count(ctx)
				live := 0
				for i := range 64 {
					if _, err := st.Touch(ctx, fmt.Sprint("k", i)); err == nil {
						live++
					}
				}
				t.Logf("%s: 64 concurrent creates for one user, cap %d: %d live (Count %d), %d evicted", kind, limit, live, n, evicted)
				if err != nil || n != limit || live != limit || evicted != 64-limit {
					t.Fatalf("Count %d (%v), live %d, evicted %d; want %d live and %d evicted", n, err, live, evicted, limit, 64-limit)
				}
			})
			t.Run("idle ttl", func(t *testing.T) {
				st := newStore(t, SessionLimits{IdleTTL: time.Second, MaxPerUser: 1})
				if err := create(st, Session{ID: "idle", Owner: "jane"}); err != nil {
					t.Fatal(err)
				}
				// Use keeps it alive past one TTL.
				for range 3 {
					time.Sleep(400 * time.Millisecond)
					if _, err := st.Touch(ctx, "idle"); err != nil {
						t.Fatalf("touched session ended: %v", err)
					}
				}
				time.Sleep(1300 * time.Millisecond)
				if _, err := st.Touch(ctx, "idle"); !errors.Is(err, ErrSessionNotFound) {
					t.Fatalf("idle session: %v, want ErrSessionNotFound", err)
				}
				// Its place under the cap is free again: nothing to evict.
				if ev, err := st.Create(ctx, Session{ID: "next", Owner: "jane"}); err != nil || len(ev) != 0 {
					t.Fatalf("create after expiry: evicted %+v, %v", ev, err)
				}
			})
			t.Run("concurrent", func(t *testing.T) {
				st := newStore(t, SessionLimits{MaxPerUser: 1000})
				var wg sync.WaitGroup
				for i := range 50 {
					wg.Go(func() {
						id := fmt.Sprint("c", i)
						if err := create(st, Session{ID: id, Owner: "jane"}); err != nil {
							t.Error(err)
							return
						}
						if _, err := st.Touch(ctx, id); err != nil {
							t.Error(err)
						}
					})
				}
				wg.Wait()
				if n, err := st.Count(ctx); err != nil || n != 50 {
					t.Fatalf("Count = %d, %v; want 50", n, err)
				}
			})
		})
	}
}

// create is Create without the evicted sessions.
func create(st SessionStore, s Session) error {
	_, err := st.Create(context.Background(), s)
	return err
}

// TestRedisSessionsAcrossReplicas: a session created through one client
// is seen and ended through another; Redis down gives ErrUnavailable.
func TestRedisSessionsAcrossReplicas(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	newStore := func() *RedisSessions {
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
		t.Cleanup(func() { _ = rdb.Close() })
		return NewRedisSessions(rdb, SessionLimits{}, "x:", nil)
	}
	a, b := newStore(), newStore()
	if err := create(a, Session{ID: "s", Owner: "jane"}); err != nil {
		t.Fatal(err)
	}
	if s, err := b.Touch(ctx, "s"); err != nil || s.Owner != "jane" {
		t.Fatalf("replica b: %+v %v", s, err)
	}
	if _, err := b.Delete(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Touch(ctx, "s"); !errors.Is(err, ErrSessionNotFound) {
		t.Fatalf("replica a after delete on b: %v, want ErrSessionNotFound", err)
	}
	srv.Stop()
	if _, err := a.Touch(ctx, "s"); !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrSessionNotFound) {
		t.Fatalf("Redis down: %v, want ErrUnavailable (not a 404)", err)
	}
	if err := create(a, Session{ID: "t", Owner: "jane"}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Create with Redis down: %v, want ErrUnavailable", err)
	}
}

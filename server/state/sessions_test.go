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
	n := 0
	return map[string]func(t *testing.T, lim SessionLimits) SessionStore{
		"memory": func(_ *testing.T, lim SessionLimits) SessionStore { return NewMemorySessions(lim, nil) },
		"redis": func(t *testing.T, lim SessionLimits) SessionStore {
			n++
			rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
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
				if err := st.Create(ctx, Session{ID: "s1", Owner: "jane", Protocol: "2025-06-18"}); err != nil {
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
				if err := st.Create(ctx, Session{ID: "dup", Owner: "jane"}); err != nil {
					t.Fatal(err)
				}
				if err := st.Create(ctx, Session{ID: "dup", Owner: "mallory"}); err == nil {
					t.Fatal("second Create with the same id succeeded")
				}
				if s, _ := st.Touch(ctx, "dup"); s.Owner != "jane" {
					t.Fatalf("owner = %q after a duplicate Create, want jane", s.Owner)
				}
			})
			t.Run("caps", func(t *testing.T) {
				st := newStore(t, SessionLimits{MaxPerUser: 2, Max: 3})
				steps := []struct {
					id, owner string
					want      error
				}{
					{"a1", "ann", nil}, {"a2", "ann", nil}, {"a3", "ann", ErrUserSessionCap},
					{"b1", "bob", nil}, {"c1", "cat", ErrSessionCap},
				}
				for _, s := range steps {
					err := st.Create(ctx, Session{ID: s.id, Owner: s.owner})
					if !errors.Is(err, s.want) || (s.want == nil) != (err == nil) {
						t.Fatalf("Create(%s, %s) = %v, want %v", s.id, s.owner, err, s.want)
					}
				}
				// Ending one frees its place.
				if _, err := st.Delete(ctx, "a1"); err != nil {
					t.Fatal(err)
				}
				if err := st.Create(ctx, Session{ID: "c1", Owner: "cat"}); err != nil {
					t.Fatalf("after a delete: %v", err)
				}
			})
			t.Run("per-user cap counts the person, not the subject", func(t *testing.T) {
				st := newStore(t, SessionLimits{MaxPerUser: 2})
				for i, owner := range []string{"iss\x00sub-1", "iss\x00sub-2"} {
					if err := st.Create(ctx, Session{ID: fmt.Sprint("p", i), Owner: owner, User: "ref:user:default/jane"}); err != nil {
						t.Fatal(err)
					}
				}
				err := st.Create(ctx, Session{ID: "p3", Owner: "iss\x00sub-3", User: "ref:user:default/jane"})
				if !errors.Is(err, ErrUserSessionCap) {
					t.Fatalf("third subject of one person: %v, want ErrUserSessionCap", err)
				}
				if s, err := st.Touch(ctx, "p1"); err != nil || s.Owner != "iss\x00sub-2" || s.User != "ref:user:default/jane" {
					t.Fatalf("Touch = %+v, %v", s, err)
				}
				if _, err := st.Delete(ctx, "p0"); err != nil {
					t.Fatal(err)
				}
				if err := st.Create(ctx, Session{ID: "p3", Owner: "iss\x00sub-3", User: "ref:user:default/jane"}); err != nil {
					t.Fatalf("after ending one: %v", err)
				}
			})
			t.Run("idle ttl", func(t *testing.T) {
				st := newStore(t, SessionLimits{IdleTTL: time.Second, MaxPerUser: 1})
				if err := st.Create(ctx, Session{ID: "idle", Owner: "jane"}); err != nil {
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
				// Its place under the cap is free again.
				if err := st.Create(ctx, Session{ID: "next", Owner: "jane"}); err != nil {
					t.Fatalf("create after expiry: %v", err)
				}
			})
			t.Run("concurrent", func(t *testing.T) {
				st := newStore(t, SessionLimits{MaxPerUser: 1000})
				var wg sync.WaitGroup
				for i := range 50 {
					wg.Go(func() {
						id := fmt.Sprint("c", i)
						if err := st.Create(ctx, Session{ID: id, Owner: "jane"}); err != nil {
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
	if err := a.Create(ctx, Session{ID: "s", Owner: "jane"}); err != nil {
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
	if err := a.Create(ctx, Session{ID: "t", Owner: "jane"}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Create with Redis down: %v, want ErrUnavailable", err)
	}
}

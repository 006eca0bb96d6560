package state

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/identity"
	"github.com/backstage-mcp/backstage-mcp/server/internal/identitytest"
	"github.com/backstage-mcp/backstage-mcp/server/internal/redistest"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"github.com/redis/go-redis/v9"
)

// countingCatalog is a Backstage catalog of users and groups that counts
// lookups and can be changed while the test runs.
type countingCatalog struct {
	mu       sync.Mutex
	finds    int
	entities map[string]map[string]any // by ref
}

func (c *countingCatalog) FindUsers(_ context.Context, filter catalog.Filter) ([]map[string]any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.finds++
	email := ""
	if vs := filter["spec.profile.email"]; len(vs) == 1 {
		email = vs[0]
	}
	var out []map[string]any
	for _, e := range c.entities {
		spec, _ := e["spec"].(map[string]any)
		prof, _ := spec["profile"].(map[string]any)
		if e["kind"] == "User" && prof["email"] == email {
			out = append(out, e)
		}
	}
	return out, nil
}

func (c *countingCatalog) GetEntity(_ context.Context, ref string) (map[string]any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entities[ref]; ok {
		return e, nil
	}
	return nil, identity.ErrEntityNotFound
}

func (c *countingCatalog) setUser(name, email, group string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entities["user:default/"+name] = map[string]any{
		"kind":      "User",
		"metadata":  map[string]any{"name": name, "namespace": "default"},
		"spec":      map[string]any{"profile": map[string]any{"email": email}},
		"relations": []any{map[string]any{"type": "memberOf", "targetRef": group}},
	}
	c.entities[group] = map[string]any{"kind": "Group", "metadata": map[string]any{"name": strings.TrimPrefix(group, "group:default/")}}
}

func (c *countingCatalog) lookups() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.finds
}

const testPublicURL = "https://mcp.example.com"

// replica is one Authenticator as a replica builds it: its own process
// state, the resolver cache in the shared Redis.
func replica(t *testing.T, op *identitytest.Provider, cat identity.Catalog, rdb redis.UniversalClient, ttl time.Duration) *identity.Authenticator {
	t.Helper()
	a, err := identity.New(identity.Options{
		Config:     identity.Config{Issuers: []identity.IssuerConfig{{URL: op.URL()}}, CacheTTL: ttl},
		PublicURL:  testPublicURL,
		Catalog:    cat,
		HTTPClient: op.Client(),
		Cache:      NewRedisResolverCache(rdb, "rc:"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestRedisResolverCacheAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	key := identitytest.NewRSAKey(t, "k1")
	op := identitytest.New(t, key)
	token := func(sub, email string) string {
		now := time.Now().Unix()
		return key.Sign(t, map[string]any{
			"iss": op.URL(), "sub": sub, "aud": testPublicURL + "/mcp", "exp": now + 300, "iat": now - 5,
			"azp": "vscode", "email": email,
		})
	}
	newClient := func() redis.UniversalClient {
		rdb, err := NewRedisClient(RedisConfig{URL: srv.URL(), Timeout: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = rdb.Close() })
		return rdb
	}
	cat := &countingCatalog{entities: map[string]map[string]any{}}
	cat.setUser("jane", "jane@example.com", "group:default/team-a")
	cat.setUser("bob", "bob@example.com", "group:default/team-b")
	const ttl = 2 * time.Minute
	r1 := replica(t, op, cat, newClient(), ttl)
	r2 := replica(t, op, cat, newClient(), ttl)

	verify := func(a *identity.Authenticator, sub, email, wantRef, wantGroup string) {
		t.Helper()
		p, err := a.VerifyToken(ctx, token(sub, email))
		if err != nil {
			t.Fatal(err)
		}
		if p.User.Ref != wantRef || len(p.User.OwnershipRefs) != 2 || p.User.OwnershipRefs[1] != wantGroup {
			t.Fatalf("%s resolved to %s %v, want %s with %s", sub, p.User.Ref, p.User.OwnershipRefs, wantRef, wantGroup)
		}
	}

	t.Run("one resolution serves every replica", func(t *testing.T) {
		before := cat.lookups()
		verify(r1, "sub-jane", "jane@example.com", "user:default/jane", "group:default/team-a")
		verify(r2, "sub-jane", "jane@example.com", "user:default/jane", "group:default/team-a")
		verify(r1, "sub-jane", "jane@example.com", "user:default/jane", "group:default/team-a")
		if got := cat.lookups() - before; got != 1 {
			t.Fatalf("Backstage asked %d times for one user on two replicas, want 1", got)
		}
		// Another subject is another key: bob is never served jane's entry.
		verify(r2, "sub-bob", "bob@example.com", "user:default/bob", "group:default/team-b")
		if got := cat.lookups() - before; got != 2 {
			t.Fatalf("Backstage asked %d times, want 2", got)
		}
	})

	t.Run("entries expire after auth.cacheTTL", func(t *testing.T) {
		var keys []string
		keys, err := newClient().Keys(ctx, "rc:resolver:*").Result()
		if err != nil || len(keys) != 2 {
			t.Fatalf("keys = %v, %v; want 2 resolver keys", keys, err)
		}
		for _, k := range keys {
			if strings.Contains(k, "jane") || strings.Contains(k, "example.com") {
				t.Fatalf("key %q carries personal data", k)
			}
			pttl, err := newClient().PTTL(ctx, k).Result()
			if err != nil || pttl <= ttl-10*time.Second || pttl > ttl {
				t.Fatalf("PTTL(%s) = %s, %v; want about %s", k, pttl, err, ttl)
			}
		}
	})

	t.Run("a malformed entry is never used", func(t *testing.T) {
		keys, err := newClient().Keys(ctx, "rc:resolver:*").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			// Point every entry at another user, badly formed (owners
			// missing): the resolver must ask Backstage instead.
			if err := newClient().Set(ctx, k, `{"ref":"user:default/mallory"}`, time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
		}
		before := cat.lookups()
		verify(r1, "sub-jane", "jane@example.com", "user:default/jane", "group:default/team-a")
		if cat.lookups() != before+1 {
			t.Fatal("a malformed entry was not replaced by a fresh resolution")
		}
	})

	t.Run("Redis down: resolved from Backstage, never from a stale entry", func(t *testing.T) {
		srv.Stop()
		// Jane moves team while Redis is down.
		cat.setUser("jane", "jane@example.com", "group:default/team-c")
		before := cat.lookups()
		for range 3 {
			verify(r2, "sub-jane", "jane@example.com", "user:default/jane", "group:default/team-c")
		}
		if got := cat.lookups() - before; got != 3 {
			t.Fatalf("Backstage asked %d times with Redis down, want every time (3)", got)
		}
	})

	t.Run("recovery without restart", func(t *testing.T) {
		srv.Restart()
		cat.setUser("jane", "jane@example.com", "group:default/team-d")
		deadline := time.Now().Add(5 * time.Second)
		for {
			before := cat.lookups()
			verify(r1, "sub-jane", "jane@example.com", "user:default/jane", "group:default/team-d")
			verify(r2, "sub-jane", "jane@example.com", "user:default/jane", "group:default/team-d")
			if cat.lookups()-before == 1 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("the replicas did not share resolutions again after Redis came back")
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

func TestRedisResolverCacheValues(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	c := NewRedisResolverCache(rdb, "v:")
	jane := identity.CachedUser{Ref: "user:default/jane", Owners: []string{"user:default/jane", "group:default/a"}}
	tests := []struct {
		name    string
		stored  string // raw value put in Redis ("" = via Set(jane))
		wantOK  bool
		wantErr bool
	}{
		{name: "round trip", wantOK: true},
		{name: "unknown user", stored: `{"unknown":true}`, wantOK: true},
		{name: "not JSON", stored: `user:default/jane`, wantErr: true},
		{name: "owners missing", stored: `{"ref":"user:default/jane"}`, wantErr: true},
		{name: "owners of someone else", stored: `{"ref":"user:default/jane","owners":["user:default/bob"]}`, wantErr: true},
		{name: "not a user ref", stored: `{"ref":"group:default/a","owners":["group:default/a"]}`, wantErr: true},
		{name: "unknown with refs", stored: `{"unknown":true,"ref":"user:default/jane","owners":["user:default/jane"]}`, wantErr: true},
		{name: "oversized", stored: `{"ref":"user:default/jane","owners":["user:default/jane","` + strings.Repeat("g", MaxResolverEntryBytes) + `"]}`, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.stored == "" {
				if err := c.Set(ctx, tc.name, jane, time.Minute); err != nil {
					t.Fatal(err)
				}
			} else if err := rdb.Set(ctx, "v:resolver:"+tc.name, tc.stored, time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
			u, ok, err := c.Get(ctx, tc.name)
			if (err != nil) != tc.wantErr || ok != tc.wantOK {
				t.Fatalf("Get = %+v, %v, %v; want ok=%v err=%v", u, ok, err, tc.wantOK, tc.wantErr)
			}
			if tc.wantErr && (u.Ref != "" || len(u.Owners) != 0) {
				t.Fatalf("an error came with a user: %+v", u)
			}
		})
	}
	t.Run("miss", func(t *testing.T) {
		if _, ok, err := c.Get(ctx, "absent"); ok || err != nil {
			t.Fatalf("Get(absent) = %v, %v", ok, err)
		}
	})
	t.Run("a malformed value is not stored", func(t *testing.T) {
		if err := c.Set(ctx, "bad", identity.CachedUser{Ref: "user:default/x"}, time.Minute); err == nil {
			t.Fatal("Set accepted a user without owners")
		}
	})
	t.Run("Redis down is ErrUnavailable", func(t *testing.T) {
		srv.Stop()
		_, ok, err := c.Get(ctx, "round trip")
		if ok || !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Get with Redis down = %v, %v", ok, err)
		}
		if err := c.Set(ctx, "x", jane, time.Minute); err == nil {
			t.Fatal("Set with Redis down succeeded")
		}
	})
}

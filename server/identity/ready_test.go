package identity

import (
	"context"
	"testing"
	"time"
)

// TestReady: the identity provider is ready when its keys are at hand,
// fetched now or cached from before it went down; it is not ready when
// it is down and nothing is cached, and probes keep the refetch bound.
func TestReady(t *testing.T) {
	ctx := context.Background()
	t.Run("reachable", func(t *testing.T) {
		f := newFixture(t, nil)
		st := f.auth.Ready(ctx)
		if len(st) != 1 || st[0].Err != nil || st[0].Keys != 1 || st[0].Issuer != f.iss.URL() {
			t.Fatalf("Ready = %+v, want one issuer with one key", st)
		}
		hits := f.iss.JWKSHits()
		for range 5 {
			if st := f.auth.Ready(ctx); st[0].Err != nil {
				t.Fatalf("Ready = %+v", st)
			}
		}
		if got := f.iss.JWKSHits(); got != hits {
			t.Fatalf("probes refetched the JWKS %d times; cached keys must be enough", got-hits)
		}
	})
	t.Run("down with keys cached", func(t *testing.T) {
		f := newFixture(t, nil)
		if _, err := f.auth.VerifyToken(ctx, sign(t, f.key, f.claims(nil))); err != nil {
			t.Fatal(err)
		}
		f.iss.Close()
		if st := f.auth.Ready(ctx); st[0].Err != nil || st[0].Keys != 1 {
			t.Fatalf("Ready = %+v, want ready from the cached key", st)
		}
	})
	t.Run("down from the start", func(t *testing.T) {
		f := newFixture(t, nil)
		f.iss.Close()
		st := f.auth.Ready(ctx)
		if st[0].Err == nil || st[0].Keys != 0 {
			t.Fatalf("Ready = %+v, want not ready", st)
		}
	})
	t.Run("empty key set", func(t *testing.T) {
		f := newFixture(t, nil)
		f.iss.Publish()
		if st := f.auth.Ready(ctx); st[0].Err == nil {
			t.Fatalf("Ready = %+v, want not ready without usable keys", st)
		}
		f.iss.Publish(f.key)
		if st := f.auth.Ready(ctx); st[0].Err == nil {
			t.Fatalf("Ready = %+v: the refetch must stay rate-limited", st)
		}
		f.clock.Advance(10 * time.Minute)
		if st := f.auth.Ready(ctx); st[0].Err != nil || st[0].Keys != 1 {
			t.Fatalf("Ready = %+v after the refetch interval, want ready", st)
		}
	})
}

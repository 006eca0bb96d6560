package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/server/ratelimit"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
)

func TestIsQueryKey(t *testing.T) {
	for key, want := range map[string]bool{
		"GET http://b/api/catalog/entities/by-query?filter=kind%3Dapi&limit=21": true,
		"GET http://b/api/catalog/entities/by-query":                            true,
		"GET http://b/api/catalog/entity-facets?facet=kind":                     true,
		"GET http://b/api/catalog/entities/by-name/component/default/x":         false,
		"POST http://b/api/catalog/entities/by-refs":                            false,
		"GET http://b/api/catalog/entities/by-name/component/default/by-query":  false,
		"": false,
	} {
		if got := isQueryKey(key); got != want {
			t.Errorf("isQueryKey(%q) = %v, want %v", key, got, want)
		}
	}
}

// TestUpstreamGuardCapsQueries drives the real catalog client through the
// server's guard against a stand-in Backstage that holds every request:
// searches run at most maxConcurrentQueries at a time, while lookups still
// get through.
func TestUpstreamGuardCapsQueries(t *testing.T) {
	var queries, lookups, peak atomic.Int32
	release := make(chan struct{})
	bs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		active := &lookups
		if strings.HasSuffix(r.URL.Path, "/entities/by-query") {
			active = &queries
		}
		n := active.Add(1)
		if active == &queries {
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
		}
		<-release
		active.Add(-1)
		w.Header().Set("Content-Type", "application/json")
		if active == &queries {
			_, _ = w.Write([]byte(`{"items":[],"totalItems":0,"pageInfo":{}}`))
			return
		}
		_, _ = w.Write([]byte(`{"kind":"Component","metadata":{"name":"x","namespace":"default"}}`))
	}))
	defer bs.Close()
	up, err := ratelimit.NewUpstream(ratelimit.UpstreamConfig{MaxConcurrent: 8, MaxConcurrentQueries: 2, Rate: ratelimit.Rate{Unlimited: true}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := catalog.New(catalog.Config{BaseURL: bs.URL, Token: catalog.StaticToken("t"), Guard: upstreamGuard(up, false)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			q := catalog.Query{Filters: []catalog.Filter{{"metadata.name": {"q" + string(rune('a'+i))}}}, Limit: 21}
			if _, err := c.Query(ctx, q); err != nil {
				t.Error(err)
			}
		})
	}
	for _, name := range []string{"a", "b"} {
		wg.Go(func() {
			if _, err := c.GetByName(ctx, catalog.Ref{Kind: "component", Namespace: "default", Name: name}); err != nil {
				t.Error(err)
			}
		})
	}
	for i := 0; queries.Load() != 2 || lookups.Load() != 2; i++ {
		if i > 5_000_000 {
			t.Fatalf("queries %d, lookups %d in flight; want 2 and 2", queries.Load(), lookups.Load())
		}
		runtime.Gosched()
	}
	for range 8 {
		release <- struct{}{}
	}
	wg.Wait()
	if p := peak.Load(); p != 2 {
		t.Errorf("peak concurrent searches %d, want 2", p)
	}
}

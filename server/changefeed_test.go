package server

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/server/demo"
	"github.com/backstage-mcp/backstage-mcp/server/internal/buildseam"
	"github.com/backstage-mcp/backstage-mcp/server/internal/redistest"
	"github.com/backstage-mcp/backstage-mcp/server/internal/servertest"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog/memcatalog"
)

// swapCatalog serves Backstage's catalog API from a catalog a test can
// replace between mirror syncs.
type swapCatalog struct {
	cur atomic.Pointer[memcatalog.Catalog]
}

func (s *swapCatalog) set(t *testing.T, ents []map[string]any) {
	t.Helper()
	c, err := memcatalog.New(ents)
	if err != nil {
		t.Fatal(err)
	}
	s.cur.Store(c)
}

func (s *swapCatalog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.cur.Load().Handler().ServeHTTP(w, r)
}

// TestChangeFeedInRedisOutlivesRestart: with state: redis the change feed
// lives in Redis: a server that saw a change answers with it, and a new
// server on the same Redis (a restart) still does, and says the feed is
// kept across restarts. With state: memory the answer says the feed starts at
// the server's start.
func TestChangeFeedInRedisOutlivesRestart(t *testing.T) {
	srv := redistest.Start(t)
	ents, err := demo.Entities()
	if err != nil {
		t.Fatal(err)
	}
	up := &swapCatalog{}
	up.set(t, ents)
	build := func(state string) *Server {
		y := "catalog:\n  mode: mirror\n  syncInterval: 1h\n  maxStaleness: 2h\n"
		if state == "redis" {
			y += "state: redis\nredis:\n  url: " + srv.URL() + "\n"
		}
		cfg, err := ParseConfig([]byte(y), "", func(k string) string {
			if k == "BACKSTAGE_MCP_CURSOR_KEY" {
				return testCursorKey
			}
			return ""
		})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Audit.Path = filepath.Join(t.TempDir(), "audit.log")
		s, closeFn, err := BuildWithSeams(context.Background(), cfg, BuildOptions{Demo: true, LocalUser: "user:default/amelia.hart"}, buildseam.Seams{DemoUpstream: up})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(closeFn)
		return s
	}
	first := build("redis")
	mem := build("memory")

	// The catalog changes: checkout-service gets a new description, a
	// component is added.
	changed := make([]map[string]any, 0, len(ents)+1)
	for _, e := range ents {
		md := e["metadata"].(map[string]any)
		if e["kind"] == "Component" && md["name"] == "checkout-service" {
			c := map[string]any{}
			for k, v := range e {
				c[k] = v
			}
			m := map[string]any{}
			for k, v := range md {
				m[k] = v
			}
			m["description"] = "Orchestrates checkout; now with gift cards."
			c["metadata"] = m
			e = c
		}
		changed = append(changed, e)
	}
	changed = append(changed, map[string]any{"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
		"metadata": map[string]any{"name": "gift-card-service", "title": "Gift Card Service"},
		"spec":     map[string]any{"type": "service", "lifecycle": "experimental", "owner": "team-checkout"}})
	up.set(t, changed)
	for _, s := range []*Server{first, mem} {
		if _, err := s.opts.Mirror.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"changed component:default/checkout-service", "added component:default/gift-card-service \"Gift Card Service\""}
	check := func(name string, s *Server, coverage string) {
		t.Helper()
		res := servertest.Call(t, inProcess(t, s), "catalog_list_changes", `{"since":"720h"}`)
		got := servertest.Text(res)
		if res.IsError {
			t.Fatalf("%s: %s", name, got)
		}
		for _, w := range append(want, coverage) {
			if !strings.Contains(got, w) {
				t.Errorf("%s: lacks %q:\n%s", name, w, got)
			}
		}
	}
	check("state: redis", first, "kept in the shared state store across restarts")
	check("state: memory", mem, "the feed starts when this server started")

	// A restart: a new server on the same Redis, whose first sync finds
	// nothing to compare, answers with the changes the first one saw.
	restarted := build("redis")
	check("after a restart", restarted, "kept in the shared state store across restarts")
	// A memory server started now knows nothing of them.
	if got := servertest.Text(servertest.Call(t, inProcess(t, build("memory")), "catalog_list_changes", `{"since":"720h"}`)); !strings.HasPrefix(got, "no changes you can see") {
		t.Errorf("a new memory server: %s", got)
	}

	// Redis down: the feed fails closed with a tool error.
	srv.Stop()
	if res := servertest.Call(t, inProcess(t, restarted), "catalog_list_changes", `{}`); !res.IsError {
		t.Errorf("Redis down: %s", servertest.Text(res))
	}
}

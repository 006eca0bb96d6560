package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/internal/buildseam"
	"github.com/backstage-mcp/backstage-mcp/server/internal/servertest"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog/mirror"
	"github.com/mark3labs/mcp-go/client"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newMirrorServer builds the demo server in catalog mirror mode: the
// mirror reads the embedded demo catalog, and the tools read the mirror.
// Syncs are an hour apart, so only the first ones run during a test.
func newMirrorServer(t *testing.T, clk *testClock) *Server {
	t.Helper()
	return newMirrorServerYAML(t, clk, "")
}

// newMirrorServerYAML is newMirrorServer with more configuration (YAML
// sections other than catalog).
func newMirrorServerYAML(t *testing.T, clk *testClock, yaml string) *Server {
	t.Helper()
	cfg, err := ParseConfig([]byte(yaml+"catalog:\n  mode: mirror\n  syncInterval: 1h\n  maxStaleness: 2h\n"), "", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Audit.Path = filepath.Join(t.TempDir(), "audit.log")
	bo := BuildOptions{Demo: true, LocalUser: "user:default/amelia.hart"}
	var seams buildseam.Seams
	if clk != nil {
		seams.MirrorNow = clk.Now
	}
	s, closeFn, err := BuildWithSeams(context.Background(), cfg, bo, seams)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeFn)
	if !s.opts.Mirror.Status().Ready {
		t.Fatalf("mirror not ready after Build: %+v", s.opts.Mirror.Status())
	}
	return s
}

func inProcess(t *testing.T, s *Server) *client.Client {
	t.Helper()
	c, err := client.NewInProcessClient(s.MCP())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	servertest.Connect(t, c)
	return c
}

// TestToolsInMirrorMode: every tool answers from the mirror exactly as the
// tool suite expects of the catalog itself.
func TestToolsInMirrorMode(t *testing.T) {
	servertest.CheckTools(t, inProcess(t, newMirrorServer(t, nil)))
}

// TestMirrorModeSameAnswers: for the same caller, mirror and passthrough
// answer a few calls with the same structured content.
func TestMirrorModeSameAnswers(t *testing.T) {
	m := inProcess(t, newMirrorServer(t, nil))
	p := inProcess(t, newDemoServer(t))
	for _, call := range [][2]string{
		{"catalog_get_entity", `{"ref":"component:default/checkout-service"}`},
		{"catalog_get_entity", `{"ref":"api:default/payments-api","detail":"full"}`},
		{"catalog_search_entities", `{"kind":"component","limit":5}`},
		{"catalog_search_entities", `{"text":"payment"}`},
	} {
		var a, b any
		servertest.Structured(t, servertest.Call(t, m, call[0], call[1]), &a)
		servertest.Structured(t, servertest.Call(t, p, call[0], call[1]), &b)
		if !servertest.SameAnswer(a, b) {
			t.Errorf("%s %s:\nmirror      %v\npassthrough %v", call[0], call[1], a, b)
		}
	}
}

// TestMirrorMetaReadyzAndFailClosed: tool results carry the mirror's age;
// /readyz reports it; beyond maxStaleness calls fail closed and /readyz
// says not ready.
func TestMirrorMetaReadyzAndFailClosed(t *testing.T) {
	clk := &testClock{t: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	s := newMirrorServer(t, clk)
	c := inProcess(t, s)
	clk.Add(90 * time.Second)

	res := servertest.Call(t, c, "catalog_get_entity", `{"ref":"component:default/checkout-service"}`)
	if res.IsError || res.Meta == nil {
		t.Fatalf("result %+v", res)
	}
	meta := res.Meta.AdditionalFields
	if meta["catalogMode"] != "mirror" || meta["catalogSyncedAt"] != "2026-11-30T12:00:00Z" ||
		meta["catalogAgeSeconds"] != float64(90) || meta["catalogStale"] != false {
		t.Errorf("_meta = %v", meta)
	}

	code, b := getReadyz(t, s.AdminHandler())
	cat := b.Checks["catalog"]
	if code != 200 || cat.Status != "ok" || cat.Info["mode"] != "mirror" || cat.Info["ageSeconds"] != float64(90) ||
		cat.Info["syncedAt"] != "2026-11-30T12:00:00Z" || cat.Info["entities"] == float64(0) {
		t.Errorf("readyz = %d %+v", code, b)
	}
	if _, ok := b.Checks["backstage"]; ok {
		t.Errorf("mirror mode readiness should not follow Backstage's: %+v", b.Checks)
	}

	clk.Add(2 * time.Hour) // beyond maxStaleness (2h)
	res = servertest.Call(t, c, "catalog_get_entity", `{"ref":"component:default/checkout-service"}`)
	if !res.IsError || strings.Contains(servertest.Text(res), "Checkout") {
		t.Errorf("beyond maxStaleness: %s", servertest.Text(res))
	}
	if res.Meta == nil || res.Meta.AdditionalFields["catalogStale"] != true {
		t.Errorf("error result _meta = %+v", res.Meta)
	}
	res = servertest.Call(t, c, "catalog_search_entities", `{"kind":"component"}`)
	if !res.IsError {
		t.Errorf("search beyond maxStaleness answered: %s", servertest.Text(res))
	}
	// Stale is Backstage's doing, shared by every replica: reported, not
	// a reason to take this one out of rotation.
	code, b = getReadyz(t, s.AdminHandler())
	if code != 200 || b.Checks["catalog"].Status != "fail" || b.Checks["catalog"].Scope != ScopeShared || b.Checks["catalog"].Info["ready"] != false {
		t.Errorf("readyz beyond maxStaleness = %d %+v", code, b)
	}
}

func TestPassthroughHasNoCatalogMeta(t *testing.T) {
	c := inProcess(t, newDemoServer(t))
	res := servertest.Call(t, c, "catalog_get_entity", `{"ref":"component:default/checkout-service"}`)
	if res.Meta != nil && res.Meta.AdditionalFields["catalogMode"] != nil {
		t.Errorf("passthrough result carries mirror metadata: %+v", res.Meta)
	}
}

func TestCatalogConfigValidation(t *testing.T) {
	for _, tc := range []struct{ yaml, key string }{
		{"catalog:\n  mode: cache\n", "catalog.mode"},
		{"catalog:\n  syncInterval: 100ms\n", "catalog.syncInterval"},
		{"catalog:\n  syncInterval: 10m\n  maxStaleness: 5m\n", "catalog.maxStaleness"},
		{"catalog:\n  syncInterval: 1m\n  maxStaleness: 90s\n", "catalog.maxStaleness"},
		{"catalog:\n  maxStaleness: 48h\n", "catalog.maxStaleness"},
		{"catalog:\n  pageSize: 5000\n", "catalog.pageSize"},
		{"catalog:\n  batchSize: -1\n", "catalog.batchSize"},
		{"catalog:\n  maxEntities: -5\n", "catalog.maxEntities"},
		{"catalog:\n  modes: mirror\n", "modes"},
		{"catalog:\n  fullSyncInterval: 10s\n", "catalog.fullSyncInterval"},
	} {
		_, err := ParseConfig([]byte(tc.yaml), "", func(string) string { return "" })
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%q: error %v, want one naming %s", tc.yaml, err, tc.key)
		}
	}
	cfg, err := ParseConfig(nil, "", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if c := cfg.Catalog; c.Mode != CatalogPassthrough || c.SyncInterval != 30*time.Second || c.MaxStaleness != 5*time.Minute ||
		c.PageSize != 500 || c.BatchSize != 500 || c.MaxEntities != 500_000 || c.FullSyncInterval != time.Hour {
		t.Errorf("defaults = %+v", c)
	}
	cfg, err = ParseConfig(nil, "", func(k string) string {
		if k == "BACKSTAGE_MCP_CATALOG_MODE" {
			return "mirror"
		}
		return ""
	})
	if err != nil || cfg.Catalog.Mode != CatalogMirror {
		t.Errorf("env override: %v %+v", err, cfg)
	}
}

// TestMirrorMetrics: sync duration, size, age and readiness are exported.
func TestMirrorMetrics(t *testing.T) {
	s := newMirrorServer(t, nil)
	rec := httptest.NewRecorder()
	s.AdminHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`backstage_mcp_catalog_mirror_sync_duration_seconds_count{kind="full",outcome="ok"} 1`,
		"backstage_mcp_catalog_mirror_entities 82",
		"backstage_mcp_catalog_mirror_ready 1",
		"backstage_mcp_catalog_mirror_age_seconds ",
		"backstage_mcp_catalog_mirror_last_sync_duration_seconds ",
		"backstage_mcp_catalog_mirror_last_full_sync_duration_seconds ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestReadyzBeforeFirstMirrorSync: a mirror that has not synced yet makes
// the server not ready.
func TestReadyzBeforeFirstMirrorSync(t *testing.T) {
	s := newDemoServer(t)
	up, err := NewDemoCatalog()
	if err != nil {
		t.Fatal(err)
	}
	m, err := mirror.New(mirror.Config{Upstream: up})
	if err != nil {
		t.Fatal(err)
	}
	s.opts.Mirror = m
	code, b := getReadyz(t, s.AdminHandler())
	if code != 503 || b.Checks["mirror"].Status != "fail" || b.Checks["mirror"].Scope != ScopeReplica ||
		b.Checks["catalog"].Status != "fail" || b.Checks["catalog"].Info["ready"] != false ||
		b.Checks["catalog"].Info["syncedAt"] != nil || !strings.Contains(b.Checks["catalog"].Detail, "first sync") {
		t.Errorf("readyz before the first sync = %d %+v", code, b)
	}
	if _, err := m.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code, b := getReadyz(t, s.AdminHandler()); code != 200 || b.Checks["catalog"].Info["entities"] == float64(0) {
		t.Errorf("readyz after the first sync = %d %+v", code, b)
	}
}

// TestMirrorReadsBypassTheUpstreamCache: syncs in quick succession each
// read the catalog again; none is answered from the upstream cache, which
// would hand a delta sync a listing as old as the cache's entry.
func TestMirrorReadsBypassTheUpstreamCache(t *testing.T) {
	s := newMirrorServer(t, nil)
	for range 3 {
		if _, err := s.opts.Mirror.FullSync(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	rec := httptest.NewRecorder()
	s.AdminHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if !strings.Contains(rec.Body.String(), "\nbackstage_mcp_upstream_cache_hits_total 0\n") {
		t.Errorf("mirror syncs were answered from the upstream cache:\n%s", grepLines(rec.Body.String(), "backstage_mcp_upstream_cache"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// slowUpstream is a Backstage that takes perPage to answer each listing
// page: it moves the test clock on before answering, so no test sleeps.
// onPage, when set, runs first.
type slowUpstream struct {
	mirror.Upstream
	clk     *testClock
	perPage time.Duration
	onPage  func()
}

func (u *slowUpstream) Query(ctx context.Context, q catalog.Query) (*catalog.Page, error) {
	if u.onPage != nil {
		u.onPage()
	}
	u.clk.Add(u.perPage)
	return u.Upstream.Query(ctx, q)
}

// TestReadyzAndMetaAfterASlowFirstSync: a first full sync longer than
// syncInterval (3 pages of 25 s against 30 s) leaves /readyz ready and
// not stale and tool results with catalogStale false the moment it
// completes; /readyz gives the sync's duration. While it runs /readyz says
// so and is 503. Stale, in both, only once maxStaleness has passed.
func TestReadyzAndMetaAfterASlowFirstSync(t *testing.T) {
	s := newDemoServer(t)
	c := inProcess(t, s)
	up, err := NewDemoCatalog()
	if err != nil {
		t.Fatal(err)
	}
	clk := &testClock{t: time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)}
	slow := &slowUpstream{Upstream: up, clk: clk, perPage: 25 * time.Second}
	m, err := mirror.New(mirror.Config{Upstream: slow, SyncInterval: 30 * time.Second, MaxStaleness: 5 * time.Minute,
		PageSize: 30, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	s.opts.Mirror = m
	t0 := clk.Now()
	var during []string
	slow.onPage = func() {
		code, b := getReadyz(t, s.AdminHandler())
		during = append(during, fmt.Sprintf("%d %s %v", code, b.Checks["catalog"].Detail, b.Checks["catalog"].Info["syncingSince"]))
	}
	rep, err := m.Sync(context.Background())
	if err != nil || rep.Duration != 75*time.Second {
		t.Fatalf("first sync: %+v %v, want 75s (3 pages)", rep, err)
	}
	if len(during) != 3 {
		t.Fatalf("%d pages read, want 3", len(during))
	}
	for i, d := range during {
		if d != fmt.Sprintf("503 mirror: first sync running for %ds; catalog calls fail until it completes 2026-12-02T09:00:00Z", 25*i) {
			t.Errorf("readyz during the first sync, page %d: %s", i, d)
		}
	}

	code, b := getReadyz(t, s.AdminHandler())
	info := b.Checks["catalog"].Info
	if code != 200 || info["stale"] != false || info["ready"] != true || info["ageSeconds"] != float64(75) ||
		info["lastSyncSeconds"] != float64(75) || info["lastFullSyncSeconds"] != float64(75) ||
		info["syncedAt"] != "2026-12-02T09:00:00Z" || info["staleAt"] != "2026-12-02T09:05:00Z" || info["syncingSince"] != nil {
		t.Errorf("readyz right after a first sync longer than syncInterval = %d %+v", code, b)
	}
	res := servertest.Call(t, c, "catalog_get_entity", `{"ref":"component:default/checkout-service"}`)
	if res.Meta == nil || res.Meta.AdditionalFields["catalogStale"] != false || res.Meta.AdditionalFields["catalogAgeSeconds"] != float64(75) {
		t.Errorf("_meta right after the first sync = %+v", res.Meta)
	}

	clk.Add(t0.Add(5 * time.Minute).Sub(clk.Now())) // age = maxStaleness: still fresh
	if code, b := getReadyz(t, s.AdminHandler()); code != 200 || b.Checks["catalog"].Info["stale"] != false {
		t.Errorf("readyz at maxStaleness = %d %+v", code, b)
	}
	clk.Add(time.Millisecond)
	code, b = getReadyz(t, s.AdminHandler())
	if code != 200 || b.Checks["catalog"].Info["stale"] != true || !strings.Contains(b.Checks["catalog"].Detail, "stale") {
		t.Errorf("readyz beyond maxStaleness = %d %+v", code, b)
	}
	res = servertest.Call(t, c, "whoami", `{}`)
	if res.Meta == nil || res.Meta.AdditionalFields["catalogStale"] != true {
		t.Errorf("_meta beyond maxStaleness = %+v", res.Meta)
	}
}

// TestChangeFeedNeedsMirrorMode: catalog_list_changes reads the mirror's
// change feed in mirror mode (a fresh mirror has seen no change yet) and
// says plainly, without an error, that it needs mirror mode otherwise.
func TestChangeFeedNeedsMirrorMode(t *testing.T) {
	m := servertest.Call(t, inProcess(t, newMirrorServer(t, nil)), "catalog_list_changes", `{"since":"24h"}`)
	if m.IsError || !strings.HasPrefix(servertest.Text(m), "no changes you can see since") {
		t.Errorf("mirror mode: %s", servertest.Text(m))
	}
	p := servertest.Call(t, inProcess(t, newDemoServer(t)), "catalog_list_changes", `{}`)
	if p.IsError || !strings.Contains(servertest.Text(p), "needs catalog mirror mode") {
		t.Errorf("pass-through: %s", servertest.Text(p))
	}
}

// TestMirrorAnswersBoundedByMaxResponseBytes: backstage.maxResponseBytes
// bounds the mirror's answers as it bounds Backstage's: with a small bound
// one entity is still served, and a page of the whole catalog is refused
// as an over-large Backstage answer is.
func TestMirrorAnswersBoundedByMaxResponseBytes(t *testing.T) {
	s := newMirrorServerYAML(t, nil, "backstage:\n  maxResponseBytes: 6000\n")
	c := inProcess(t, s)
	if res := servertest.Call(t, c, "catalog_get_entity", `{"ref":"component:default/checkout-service"}`); res.IsError {
		t.Fatalf("one entity within the bound refused: %s", servertest.Text(res))
	}
	_, err := s.opts.Mirror.Query(context.Background(), catalog.Query{Limit: 1000})
	if !errors.Is(err, catalog.ErrResponseTooLarge) {
		t.Fatalf("the whole catalog in one page: %v, want the response-too-large error", err)
	}
}

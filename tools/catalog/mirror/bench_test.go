package mirror

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog/memcatalog"
)

// Benchmarks (figures in the README):
//
//	go test -run '^$' -bench 'FullSync|DeltaSync' -benchtime 1x ./tools/catalog/mirror/
//	go test -run '^$' -bench 'Mirror(Get|Search)' ./tools/catalog/mirror/
//
// "Backstage" is a memcatalog behind a loopback httptest server holding a
// generated catalog shaped like the bench-e2e one (server/e2e/benchcmd):
// groups, users, systems, APIs with definitions, resources and components
// with annotations, links, tags and relations.

// genEntities returns about n entities; version changes the descriptions
// of every entity whose index is divisible by 100 (1% of the catalog).
func genEntities(n int, version int) []map[string]any {
	r := rand.New(rand.NewPCG(7, 11))
	words := []string{"orders", "payments", "catalog", "search", "inventory", "pricing", "shipping", "billing", "identity", "loyalty"}
	langs := []string{"go", "java", "kotlin", "typescript", "python"}
	nTeams, nSystems := max(6, n/70), max(5, n/50)
	nUsers, nAPIs, nRes := n*12/100, n*18/100, n*12/100
	nComp := n - nTeams - nSystems - nUsers - nAPIs - nRes
	ents := make([]map[string]any, 0, n)
	desc := func(i int, s string) string {
		if version > 0 && i%100 == 0 {
			return fmt.Sprintf("%s (revision %d)", s, version)
		}
		return s
	}
	meta := func(name, description string, tags []string) map[string]any {
		m := map[string]any{"name": name, "title": strings.ReplaceAll(name, "-", " "), "description": description}
		if len(tags) > 0 {
			m["tags"] = tags
		}
		return m
	}
	team := func(i int) string { return fmt.Sprintf("team-%s-%04d", words[i%len(words)], i) }
	system := func(i int) string { return fmt.Sprintf("%s-system-%04d", words[i%len(words)], i) }
	for i := range nTeams {
		ents = append(ents, map[string]any{"apiVersion": "backstage.io/v1alpha1", "kind": "Group",
			"metadata": meta(team(i), desc(len(ents), "Builds and runs things."), nil),
			"spec": map[string]any{"type": "team", "children": []any{},
				"profile": map[string]any{"displayName": team(i), "email": team(i) + "@example.com"}}})
	}
	for i := range nUsers {
		name := fmt.Sprintf("user-%06d", i)
		ents = append(ents, map[string]any{"apiVersion": "backstage.io/v1alpha1", "kind": "User",
			"metadata": meta(name, desc(len(ents), ""), nil),
			"spec": map[string]any{"memberOf": []any{team(i % nTeams)},
				"profile": map[string]any{"displayName": name, "email": name + "@example.com"}}})
	}
	for i := range nSystems {
		ents = append(ents, map[string]any{"apiVersion": "backstage.io/v1alpha1", "kind": "System",
			"metadata": meta(system(i), desc(len(ents), "Everything needed to run it."), []string{langs[i%len(langs)]}),
			"spec":     map[string]any{"owner": team(r.IntN(nTeams))}})
	}
	for i := range nAPIs {
		name := fmt.Sprintf("%s-api-%05d", words[i%len(words)], i)
		ents = append(ents, map[string]any{"apiVersion": "backstage.io/v1alpha1", "kind": "API",
			"metadata": meta(name, desc(len(ents), "Lets other teams work with it over the network."), []string{"rest"}),
			"spec": map[string]any{"type": "openapi", "lifecycle": "production", "owner": team(r.IntN(nTeams)),
				"system":     system(r.IntN(nSystems)),
				"definition": "openapi: 3.0.0\ninfo:\n  title: " + name + "\n  version: 1.0.0\npaths:\n  /items:\n    get:\n      summary: List items\n"}})
	}
	for i := range nRes {
		name := fmt.Sprintf("%s-db-%05d", words[i%len(words)], i)
		ents = append(ents, map[string]any{"apiVersion": "backstage.io/v1alpha1", "kind": "Resource",
			"metadata": meta(name, desc(len(ents), "Stores the data of its system."), []string{"db"}),
			"spec":     map[string]any{"type": "database", "owner": team(r.IntN(nTeams)), "system": system(r.IntN(nSystems))}})
	}
	for i := range nComp {
		name := fmt.Sprintf("%s-service-%05d", words[i%len(words)], i)
		spec := map[string]any{"type": "service", "lifecycle": "production", "owner": team(r.IntN(nTeams)), "system": system(r.IntN(nSystems)),
			"consumesApis": []any{fmt.Sprintf("%s-api-%05d", words[(i*7)%nAPIs%len(words)], (i*7)%nAPIs)},
			"dependsOn":    []any{fmt.Sprintf("resource:%s-db-%05d", words[(i*3)%nRes%len(words)], (i*3)%nRes)}}
		md := meta(name, desc(len(ents), "A service for the "+words[i%len(words)]+" system."), []string{langs[i%len(langs)], langs[(i+1)%len(langs)]})
		md["annotations"] = map[string]any{"github.com/project-slug": "acme/" + name, "backstage.io/techdocs-ref": "dir:."}
		md["links"] = []any{map[string]any{"url": "https://grafana.example.com/d/" + name, "title": "Dashboard"}}
		ents = append(ents, map[string]any{"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": md, "spec": spec})
	}
	return ents
}

// upstreams caches generated "Backstage" catalogs per size and version
// across benchmarks.
var upstreams sync.Map

func upstreamCatalog(b *testing.B, n, version int) *memcatalog.Catalog {
	key := fmt.Sprint(n, "/", version)
	if c, ok := upstreams.Load(key); ok {
		return c.(*memcatalog.Catalog)
	}
	c, err := memcatalog.New(genEntities(n, version), memcatalog.WithToken(upstreamToken), memcatalog.WithoutRecording())
	if err != nil {
		b.Fatal(err)
	}
	upstreams.Store(key, c)
	return c
}

type benchUpstream struct {
	cur atomic.Pointer[memcatalog.Catalog]
	srv *httptest.Server
	c   *catalog.Client
}

func newBenchUpstream(b *testing.B, c *memcatalog.Catalog) *benchUpstream {
	u := &benchUpstream{}
	u.cur.Store(c)
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.cur.Load().Handler().ServeHTTP(w, r)
	}))
	b.Cleanup(u.srv.Close)
	cl, err := catalog.New(catalog.Config{BaseURL: u.srv.URL, Token: catalog.StaticToken(upstreamToken), Timeout: 60e9,
		MaxResponseBytes: 256 << 20})
	if err != nil {
		b.Fatal(err)
	}
	u.c = cl
	return u
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

var sizes = []int{10_000, 30_000, 100_000}

// BenchmarkFullSync: time to fill an empty mirror by paging through
// "Backstage" (500 per page), and the heap the mirror holds afterwards.
func BenchmarkFullSync(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
			up := newBenchUpstream(b, upstreamCatalog(b, n, 0))
			var heap uint64
			for b.Loop() {
				b.StopTimer()
				before := heapInUse()
				m, err := New(Config{Upstream: up.c})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := m.Sync(context.Background()); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				heap = heapInUse() - before
				runtime.KeepAlive(m)
				b.StartTimer()
			}
			b.ReportMetric(float64(heap)/(1<<20), "heapMB")
			b.ReportMetric(float64(heap)/(1<<20)/(float64(n)/10_000), "heapMB/10k")
		})
	}
}

// BenchmarkDeltaSync1pct: one delta sync when 1% of the entities changed
// (versions list, by-refs fetch of the changed ones, new catalog built).
func BenchmarkDeltaSync1pct(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
			v0, v1 := upstreamCatalog(b, n, 0), upstreamCatalog(b, n, 1)
			up := newBenchUpstream(b, v0)
			m, err := New(Config{Upstream: up.c})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := m.Sync(context.Background()); err != nil {
				b.Fatal(err)
			}
			flip := 0
			var changed int
			for b.Loop() {
				flip++
				if flip%2 == 1 {
					up.cur.Store(v1)
				} else {
					up.cur.Store(v0)
				}
				rep, err := m.Sync(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				changed = rep.Changed
			}
			b.ReportMetric(float64(changed), "changed")
		})
	}
}

// BenchmarkDeltaSyncIdle: one delta sync when nothing changed (the
// versions listing only).
func BenchmarkDeltaSyncIdle(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
			up := newBenchUpstream(b, upstreamCatalog(b, n, 0))
			m, err := New(Config{Upstream: up.c})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := m.Sync(context.Background()); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := m.Sync(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// inProcessTransport hands requests to a handler in this process (as the
// server's InProcessTransport does).
type inProcessTransport struct{ h http.Handler }

func (t inProcessTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, req)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

func syncedMirrorClient(b *testing.B, n int) *catalog.Client {
	up := newBenchUpstream(b, upstreamCatalog(b, n, 0))
	m, err := New(Config{Upstream: up.c, Token: "bench-mirror-token"})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := m.Sync(context.Background()); err != nil {
		b.Fatal(err)
	}
	c, err := catalog.New(catalog.Config{BaseURL: "http://mirror.invalid", Token: catalog.StaticToken("bench-mirror-token"),
		HTTPClient: &http.Client{Transport: inProcessTransport{m.Handler()}}})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkMirrorGet: a by-name lookup through the catalog client, served
// in process by the mirror.
func BenchmarkMirrorGet(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
			c := syncedMirrorClient(b, n)
			ctx := context.Background()
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				i++
				ref := catalog.Ref{Kind: "component", Namespace: "default", Name: fmt.Sprintf("%s-service-%05d", "orders", (i%100)*10)}
				if _, err := c.GetByName(ctx, ref); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMirrorSearch: the query a kind+owner search sends (20 results,
// ordered by name; a few dozen entities match), the same with kind alone
// (half the catalog matches), and a free-text one, served in process by
// the mirror.
func BenchmarkMirrorSearch(b *testing.B) {
	for _, n := range []int{10_000, 30_000, 100_000} {
		c := syncedMirrorClient(b, n)
		ctx := context.Background()
		owner := "group:default/team-orders-0000"
		b.Run(fmt.Sprintf("kind+owner/%dk", n/1000), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p, err := c.Query(ctx, catalog.Query{Filters: []catalog.Filter{{"kind": {"component"}, "relations.ownedBy": {owner}}},
					Order: []catalog.Order{{Field: "metadata.name"}}, Limit: 20})
				if err != nil || len(p.Items) == 0 {
					b.Fatal(err, len(p.Items))
				}
			}
		})
		b.Run(fmt.Sprintf("kind/%dk", n/1000), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p, err := c.Query(ctx, catalog.Query{Filters: []catalog.Filter{{"kind": {"component"}}},
					Order: []catalog.Order{{Field: "metadata.name"}}, Limit: 20})
				if err != nil || len(p.Items) == 0 {
					b.Fatal(err, len(p.Items))
				}
			}
		})
		b.Run(fmt.Sprintf("fulltext/%dk", n/1000), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p, err := c.Query(ctx, catalog.Query{Filters: []catalog.Filter{{"kind": {"component"}}},
					FullTextTerm: "payments-service-001", FullTextFields: []string{"metadata.name"}, Limit: 20})
				if err != nil || len(p.Items) == 0 {
					b.Fatal(err, len(p.Items))
				}
			}
		})
	}
}

// rawItems is what a full sync reads from "Backstage": every entity as
// served (uids, etags and relations included).
func rawItems(b *testing.B, n, version int) []json.RawMessage {
	key := fmt.Sprint("raw/", n, "/", version)
	if v, ok := upstreams.Load(key); ok {
		return v.([]json.RawMessage)
	}
	up := newBenchUpstream(b, upstreamCatalog(b, n, version))
	var items []json.RawMessage
	m := &Mirror{cfg: Config{Upstream: up.c, PageSize: 1000, MaxEntities: DefaultMaxEntities}}
	if err := m.pages(context.Background(), nil, func(p []json.RawMessage) error {
		items = append(items, p...)
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	upstreams.Store(key, items)
	return items
}

// BenchmarkBuild: the mirror's own work in a full sync, without the
// reads from Backstage: decode, validate and index every entity.
func BenchmarkBuild(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
			items := rawItems(b, n, 0)
			for b.Loop() {
				if _, err := memcatalog.NewJSON(items, memcatalog.Verbatim(), memcatalog.WithoutRecording()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkUpdate1pct: the mirror's own work in a delta sync where 1% of
// the entities changed, without the reads from Backstage: decode the
// changed ones and rebuild the index (shared entities are not decoded
// again).
func BenchmarkUpdate1pct(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
			items := rawItems(b, n, 0)
			cat, err := memcatalog.NewJSON(items, memcatalog.Verbatim(), memcatalog.WithoutRecording())
			if err != nil {
				b.Fatal(err)
			}
			var changed []json.RawMessage
			for i, it := range rawItems(b, n, 1) {
				if i%100 == 0 {
					changed = append(changed, it)
				}
			}
			for b.Loop() {
				if _, err := cat.Update(changed, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// pageUpstream serves a fixed catalog as by-query pages without HTTP: each
// Query returns fresh copies of one page's items, as the catalog client
// does, so that a full sync's memory is the mirror's own.
type pageUpstream struct{ items []json.RawMessage }

func (u pageUpstream) Query(_ context.Context, q catalog.Query) (*catalog.Page, error) {
	start := 0
	if q.Cursor != "" {
		fmt.Sscan(q.Cursor, &start)
	}
	end := min(start+q.Limit, len(u.items))
	p := &catalog.Page{TotalItems: len(u.items)}
	for _, it := range u.items[start:end] {
		p.Items = append(p.Items, bytes.Clone(it))
	}
	if end < len(u.items) {
		p.NextCursor = fmt.Sprint(end)
	}
	return p, nil
}

func (u pageUpstream) GetByRefs(context.Context, []string, []string) ([]json.RawMessage, error) {
	return nil, errors.New("pageUpstream: no by-refs")
}

// heapObjects reads the bytes of heap objects, live or not yet collected,
// without stopping the world.
func heapObjects(s []metrics.Sample) uint64 {
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// BenchmarkFullSyncMemory: the heap a full sync needs, from an upstream
// that costs nothing: live heap afterwards (after GC), the peak of the heap
// during the sync (sampled every millisecond; garbage not yet collected
// included, as the process's RSS sees it), and the bytes allocated.
//
//	go test -run '^$' -bench FullSyncMemory -benchtime 1x ./tools/catalog/mirror/
func BenchmarkFullSyncMemory(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
			up := pageUpstream{items: rawItems(b, n, 0)}
			var live, peak, alloc uint64
			for b.Loop() {
				b.StopTimer()
				base := heapInUse()
				var ms0, ms1 runtime.MemStats
				runtime.ReadMemStats(&ms0)
				m, err := New(Config{Upstream: up})
				if err != nil {
					b.Fatal(err)
				}
				done := make(chan struct{})
				peaks := make(chan uint64)
				go func() {
					s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
					var top uint64
					t := time.NewTicker(time.Millisecond)
					defer t.Stop()
					for {
						top = max(top, heapObjects(s))
						select {
						case <-done:
							peaks <- max(top, heapObjects(s))
							return
						case <-t.C:
						}
					}
				}()
				b.StartTimer()
				if _, err := m.Sync(context.Background()); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				close(done)
				peak = <-peaks - base
				runtime.ReadMemStats(&ms1)
				alloc = ms1.TotalAlloc - ms0.TotalAlloc
				live = heapInUse() - base
				runtime.KeepAlive(m)
				b.StartTimer()
			}
			per := func(v uint64) float64 { return float64(v) / (1 << 20) / (float64(n) / 10_000) }
			b.ReportMetric(per(live), "liveMB/10k")
			b.ReportMetric(per(peak), "peakMB/10k")
			b.ReportMetric(per(alloc), "allocMB/10k")
		})
	}
}

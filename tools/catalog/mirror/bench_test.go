package mirror

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog/gencatalog"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog/memcatalog"
)

// Benchmarks (figures in the README):
//
//	go test -run '^$' -bench 'FullSync|DeltaSync' -benchtime 1x ./tools/catalog/mirror/
//	go test -run '^$' -bench 'Mirror(Get|Search)' ./tools/catalog/mirror/
//
// "Backstage" is a memcatalog behind a loopback httptest server holding a
// generated catalog shaped like a real one, the bench-e2e's (package
// gencatalog): groups, users, domains, systems, APIs with definitions,
// resources and components with the annotations, links, tags and
// relations Backstage serves.

// genEntities returns a catalog of n entities shaped like a real
// Backstage's (package gencatalog, the generator of the bench-e2e
// catalogs: about 1,710 bytes per entity as served, against 1,654 for a
// real catalog), each with the location annotations Backstage adds when
// it reads the entity from GitHub. Version > 0 changes the descriptions
// of every entity whose index is divisible by 100 (1% of the catalog).
func genEntities(n int, version int) []map[string]any {
	cat, err := gencatalog.Generate(n, 1)
	if err != nil {
		panic(err)
	}
	for i, e := range cat.Entities {
		gencatalog.AddLocation(e, gencatalog.RepoLocation(e))
		if version > 0 && i%100 == 0 {
			md := e["metadata"].(map[string]any)
			d, _ := md["description"].(string)
			md["description"] = fmt.Sprintf("%s (revision %d)", d, version)
		}
	}
	return cat.Entities
}

// benchTargets are names the lookup and search benchmarks ask for, from
// the catalog genEntities(n, 0) builds: components, the owner of the
// first, and a prefix of its name that a few components share.
func benchTargets(b *testing.B, n int) (components []string, owner, prefix string) {
	cat, err := gencatalog.Generate(n, 1)
	if err != nil {
		b.Fatal(err)
	}
	for i, r := range cat.Refs {
		if r.Kind != "component" {
			continue
		}
		if owner == "" {
			owner = "group:default/" + cat.Entities[i]["spec"].(map[string]any)["owner"].(string)
			prefix = r.Name[:len(r.Name)-2]
		}
		components = append(components, r.Name)
	}
	return components, owner, prefix
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

// syncedMirror is a mirror of a generated catalog of n entities, synced.
func syncedMirror(b *testing.B, n int) *Mirror {
	up := newBenchUpstream(b, upstreamCatalog(b, n, 0))
	m, err := New(Config{Upstream: up.c})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := m.Sync(context.Background()); err != nil {
		b.Fatal(err)
	}
	return m
}

// BenchmarkMirrorGet: a by-name lookup, answered in process by the mirror.
func BenchmarkMirrorGet(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
			c := syncedMirror(b, n)
			names, _, _ := benchTargets(b, n)
			ctx := context.Background()
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				i++
				ref := catalog.Ref{Kind: "component", Namespace: "default", Name: names[(i%100)*10]}
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
		// Each size's mirror is synced by the first sub-benchmark that
		// runs, so that -bench 'MirrorSearch/.*/10k' syncs 10k alone.
		var c *Mirror
		var owner, prefix string
		setup := func(b *testing.B) {
			if c == nil {
				c = syncedMirror(b, n)
				_, owner, prefix = benchTargets(b, n)
			}
		}
		ctx := context.Background()
		b.Run(fmt.Sprintf("kind+owner/%dk", n/1000), func(b *testing.B) {
			setup(b)
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
			setup(b)
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
			setup(b)
			b.ReportAllocs()
			for b.Loop() {
				p, err := c.Query(ctx, catalog.Query{Filters: []catalog.Filter{{"kind": {"component"}}},
					FullTextTerm: prefix, FullTextFields: []string{"metadata.name"}, Limit: 20})
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
	// Read in process (the catalog answers the client's calls itself),
	// so that nothing but the cache keeps the "Backstage" catalog alive.
	var items []json.RawMessage
	m := &Mirror{cfg: Config{Upstream: upstreamCatalog(b, n, version), PageSize: 1000, MaxEntities: DefaultMaxEntities}}
	if err := m.pages(context.Background(), nil, func(p []json.RawMessage, _ int) error {
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

// pageUpstream serves a fixed catalog as by-query pages without HTTP and
// from a file, not from the heap: each Query reads one page's items from
// the file, as the catalog client reads a page from the network, so that
// a full sync's memory is the mirror's own and the heap the garbage
// collector paces itself on holds nothing else.
type pageUpstream struct {
	f    *os.File
	ends []int64 // the end offset of each item in f
}

// newPageUpstream writes items to a temporary file.
func newPageUpstream(b testing.TB, items []json.RawMessage) *pageUpstream {
	f, err := os.CreateTemp(b.TempDir(), "pages")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = f.Close() })
	u := &pageUpstream{f: f, ends: make([]int64, len(items))}
	var off int64
	for i, it := range items {
		if _, err := f.Write(it); err != nil {
			b.Fatal(err)
		}
		off += int64(len(it))
		u.ends[i] = off
	}
	return u
}

func (u *pageUpstream) Query(_ context.Context, q catalog.Query) (*catalog.Page, error) {
	start := 0
	if q.Cursor != "" {
		fmt.Sscan(q.Cursor, &start)
	}
	end := min(start+q.Limit, len(u.ends))
	var from int64
	if start > 0 {
		from = u.ends[start-1]
	}
	buf := make([]byte, u.ends[end-1]-from)
	if _, err := u.f.ReadAt(buf, from); err != nil {
		return nil, err
	}
	p := &catalog.Page{TotalItems: len(u.ends)}
	at := from
	for _, e := range u.ends[start:end] {
		p.Items = append(p.Items, bytes.Clone(buf[at-from:e-from])) // one copy per item, as the client makes
		at = e
	}
	if end < len(u.ends) {
		p.NextCursor = fmt.Sprint(end)
	}
	return p, nil
}

func (u *pageUpstream) GetByRefs(context.Context, []string, []string) ([]json.RawMessage, error) {
	return nil, errors.New("pageUpstream: no by-refs")
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// heapObjects reads the bytes of heap objects, live or not yet collected,
// without stopping the world.
func heapObjects(s []metrics.Sample) uint64 {
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// heapGrowthFromEnv is MIRROR_HEAP_GROWTH, the HeapGrowth the memory
// benchmarks use (unset: the default; -1: the runtime's pacing only).
func heapGrowthFromEnv(b testing.TB) float64 {
	g := os.Getenv("MIRROR_HEAP_GROWTH")
	if g == "" {
		return 0
	}
	v, err := strconv.ParseFloat(g, 64)
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// BenchmarkFullSyncMemory: the heap a full sync needs, from an upstream
// that costs nothing and holds its pages in a file: live heap afterwards
// (after GC), the peak of the heap during the sync (sampled every
// millisecond; garbage not yet collected included, as the process's RSS
// sees it), the bytes allocated and the CPU time the process spent (cpu-s:
// what the sync costs, whatever else the machine runs); jsonMB is the catalog's JSON as
// Backstage serves it, the yardstick of the other three. MIRROR_HEAP_GROWTH
// sets Config.HeapGrowth (-1: the runtime's pacing only, as before the
// pacer).
//
//	go test -run '^$' -bench FullSyncMemory -benchtime 1x ./tools/catalog/mirror/
//	MIRROR_HEAP_GROWTH=-1 go test -run '^$' -bench FullSyncMemory -benchtime 1x ./tools/catalog/mirror/
func BenchmarkFullSyncMemory(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
			up := newPageUpstream(b, rawItems(b, n, 0))
			// Only the file holds the catalog now: drop the cached copies.
			upstreams.Delete(fmt.Sprint("raw/", n, "/0"))
			upstreams.Delete(fmt.Sprint(n, "/0"))
			var jsonBytes int64
			if len(up.ends) > 0 {
				jsonBytes = up.ends[len(up.ends)-1]
			}
			var live, peak, alloc uint64
			var cpu time.Duration
			for b.Loop() {
				b.StopTimer()
				base := heapInUse()
				var ms0, ms1 runtime.MemStats
				runtime.ReadMemStats(&ms0)
				m, err := New(Config{Upstream: up, HeapGrowth: heapGrowthFromEnv(b)})
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
				cpu0 := cpuTime()
				b.StartTimer()
				if _, err := m.Sync(context.Background()); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				cpu = cpuTime() - cpu0
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
			b.ReportMetric(per(uint64(jsonBytes)), "jsonMB/10k")
			b.ReportMetric(float64(live)/float64(jsonBytes), "live/json")
			b.ReportMetric(float64(peak)/float64(live), "peak/live")
			b.ReportMetric(cpu.Seconds(), "cpu-s")
		})
	}
}

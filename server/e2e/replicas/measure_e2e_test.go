//go:build e2e

package replicas

import (
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/internal/redistest"
)

// TestMeasure logs the figures of issue 13, measured in one run on the
// real binary: the latency a tools/call takes with limits (and sessions)
// in Redis against in memory, and the RSS of 10,000 open sessions.
func TestMeasure(t *testing.T) {
	dir := t.TempDir()
	rs := redistest.Start(t)
	op := newIdP(t)
	const calls = 2000
	// Limits so high they never deny, but every call still checks the
	// three buckets (an unlimited bucket would skip Redis).
	unlimited := "rateLimits:\n  classes:\n    default: {requests: 1000000, per: 1s, burst: 1000000}\n" +
		"  agent: {requests: 1000000, per: 1s, burst: 1000000}\n  global: {requests: 1000000, per: 1s, burst: 1000000}\n"

	type mode struct{ name, redisURL string }
	lat := map[string][]time.Duration{}
	for _, m := range []mode{{"memory", ""}, {"redis", rs.URL()}} {
		addr := freeAddr(t)
		r := startReplicaAt(t, dir, "measure-"+m.name, addr, op.srv.URL, m.redisURL, unlimited)
		base := "http://" + r.addr
		tok := op.token(t, "http://"+addr+"/mcp", "00u-measure-"+m.name)
		sid := openSession(t, base, tok)
		for range 100 { // warm up
			post(t, base, tok, sid, callMsg)
		}
		for range calls {
			start := time.Now()
			got := post(t, base, tok, sid, callMsg)
			d := time.Since(start)
			if callOutcome(got) != "ok" {
				t.Fatalf("%s: %s", m.name, callOutcome(got))
			}
			lat[m.name] = append(lat[m.name], d)
		}
		sort.Slice(lat[m.name], func(i, j int) bool { return lat[m.name][i] < lat[m.name][j] })

		if m.name == "memory" {
			// RSS with 10,000 sessions open (tracked in memory).
			before := r.rss(t)
			var wg sync.WaitGroup
			work := make(chan struct{})
			var failed sync.Map
			for range 16 {
				wg.Go(func() {
					for range work {
						a := post(t, base, tok, "", initMsg)
						if a.code != http.StatusOK {
							failed.Store(a.code, a.body)
						}
					}
				})
			}
			for range 10000 {
				work <- struct{}{}
			}
			close(work)
			wg.Wait()
			failed.Range(func(k, v any) bool { t.Fatalf("initialize failed: %v %v", k, v); return false })
			after := r.rss(t)
			// Go returns freed heap to the OS lazily: look again once the
			// garbage of 10,000 initialize requests had time to go.
			time.Sleep(15 * time.Second)
			settled := r.rss(t)
			t.Logf("RSS with 10,000 sessions open (memory state): %d KiB before, %d KiB right after, %d KiB 15 s later (+%.1f KiB per session)",
				before, after, settled, float64(settled-before)/10000)
		}
		r.stop()
	}
	p := func(ds []time.Duration, q float64) time.Duration { return ds[int(float64(len(ds)-1)*q)] }
	mem, red := lat["memory"], lat["redis"]
	t.Logf("tools/call catalog_get_entity over HTTP, %d sequential calls each, one run:", calls)
	t.Logf("  memory state: p50 %s p99 %s", p(mem, .5).Round(time.Microsecond), p(mem, .99).Round(time.Microsecond))
	t.Logf("  redis state:  p50 %s p99 %s", p(red, .5).Round(time.Microsecond), p(red, .99).Round(time.Microsecond))
	t.Logf("  added by Redis: p50 %s p99 %s", (p(red, .5) - p(mem, .5)).Round(time.Microsecond), (p(red, .99) - p(mem, .99)).Round(time.Microsecond))
}

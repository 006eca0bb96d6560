package server

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/internal/redistest"
)

const (
	initBody  = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	listBody  = `{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}`
	callBody  = `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"catalog_get_entity","arguments":{"ref":"component:default/checkout-service"}}}`
	protoHead = "2025-06-18"
)

type httpResult struct {
	code int
	sid  string
	body string
	hdr  http.Header
}

// send sends one request to /mcp of h.
func send(t testing.TB, h http.Handler, method, sid, body string) httpResult {
	t.Helper()
	req := httptest.NewRequest(method, "/mcp", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
		req.Header.Set("Mcp-Protocol-Version", protoHead)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Body)
	return httpResult{code: rec.Code, sid: rec.Header().Get("Mcp-Session-Id"), body: string(b), hdr: rec.Header()}
}

func newDemoServerYAML(t testing.TB, yaml string) (*Server, string) {
	t.Helper()
	cfg, err := ParseConfig([]byte(yaml), "", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Audit.Path = filepath.Join(t.TempDir(), "audit.log")
	s, closeFn, err := Build(context.Background(), cfg, BuildOptions{Demo: true, LocalUser: "user:default/amelia.hart"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeFn)
	return s, cfg.Audit.Path
}

// auditTypes counts the audit records by type and decision ("type/decision").
func auditTypes(t *testing.T, path string) map[string]int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r struct{ Type, Decision, Reason string }
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		out[r.Type+"/"+r.Decision]++
	}
	return out
}

func TestSessionLifecycle(t *testing.T) {
	s, _ := newDemoServerYAML(t, "")
	h := s.Handler()
	init := send(t, h, "POST", "", initBody)
	if init.code != 200 || init.sid == "" {
		t.Fatalf("initialize = %d sid %q: %s", init.code, init.sid, init.body)
	}
	steps := []struct {
		name, method, sid, body string
		want                    int
	}{
		{"list in the session", "POST", init.sid, listBody, 200},
		{"call in the session", "POST", init.sid, callBody, 200},
		{"unknown session", "POST", "mcp-session-00000000-0000-4000-8000-000000000000", listBody, 404},
		{"malformed session id", "POST", "nope", listBody, 404},
		{"end it", "DELETE", init.sid, "", 200},
		{"ended session", "POST", init.sid, listBody, 404},
		{"end it again", "DELETE", init.sid, "", 404},
		{"listen on an ended session", "GET", init.sid, "", 404},
	}
	for _, st := range steps {
		if got := send(t, h, st.method, st.sid, st.body); got.code != st.want {
			t.Fatalf("%s: %d, want %d: %s", st.name, got.code, st.want, got.body)
		}
	}
}

// unlimitedIngress lifts the per-user message budget (a server section).
const unlimitedIngress = "server:\n  ingressRate: {unlimited: true}\n  ingressKiBRate: {unlimited: true}\n"

// unlimitedRates lifts every rate limit, for tests that open many sessions.
const unlimitedRates = "rateLimits:\n  classes:\n    low: {unlimited: true}\n    default: {unlimited: true}\n    high: {unlimited: true}\n  agent: {unlimited: true}\n  global: {unlimited: true}\n"

// TestSessionCapEvicts: at the per-user cap an initialize succeeds and
// ends the user's least recently used session, whose next request gets
// 404; the metric counts it, mcp-go forgets it, and nothing is refused.
func TestSessionCapEvicts(t *testing.T) {
	s, auditPath := newDemoServerYAML(t, "server:\n  sessions: {maxPerUser: 2}\n")
	h := s.Handler()
	var sids []string
	for i := range 2 {
		r := send(t, h, "POST", "", initBody)
		if r.code != 200 || r.sid == "" {
			t.Fatalf("initialize %d = %d: %s", i, r.code, r.body)
		}
		sids = append(sids, r.sid)
	}
	// Use the first: the second is now the least recently used.
	if r := send(t, h, "POST", sids[0], listBody); r.code != 200 {
		t.Fatalf("list = %d: %s", r.code, r.body)
	}
	r := send(t, h, "POST", "", initBody)
	if r.code != 200 || r.sid == "" {
		t.Fatalf("initialize at the cap = %d sid %q: %s", r.code, r.sid, r.body)
	}
	if got := send(t, h, "POST", sids[1], listBody); got.code != 404 {
		t.Fatalf("evicted session = %d, want 404: %s", got.code, got.body)
	}
	for _, sid := range []string{sids[0], r.sid} {
		if got := send(t, h, "POST", sid, callBody); got.code != 200 || !strings.Contains(got.body, "checkout-service") {
			t.Fatalf("kept session = %d: %s", got.code, got.body)
		}
	}
	if n, _ := s.opts.Sessions.Count(context.Background()); n != 2 {
		t.Fatalf("%d sessions recorded, want 2", n)
	}
	if n := s.transportSessions.Load(); n != 2 {
		t.Fatalf("mcp-go holds %d sessions, want 2", n)
	}
	if n := evictedMetric(t, s, "user"); n != 1 {
		t.Fatalf("backstage_mcp_sessions_evicted_total{cap=user} = %v, want 1", n)
	}
	if n := auditTypes(t, auditPath)["session/deny"]; n != 0 {
		t.Fatalf("%d session/deny audit records, want 0", n)
	}
}

func TestSessionInitializeRateLimit(t *testing.T) {
	s, auditPath := newDemoServerYAML(t, "rateLimits:\n  classes:\n    default: {requests: 1, per: 1h, burst: 3}\n    high: {requests: 1, per: 1h, burst: 3}\n")
	h := s.Handler()
	for i := range 3 {
		if r := send(t, h, "POST", "", initBody); r.code != 200 || r.sid == "" {
			t.Fatalf("initialize %d = %d: %s", i, r.code, r.body)
		}
	}
	r := send(t, h, "POST", "", initBody)
	if r.code != 429 || r.sid != "" || !strings.Contains(r.body, "rate limited (user limit)") || !strings.Contains(r.body, `"jsonrpc":"2.0"`) || r.hdr.Get("Retry-After") == "" {
		t.Fatalf("initialize over the limit = %d sid %q retry %q: %s", r.code, r.sid, r.hdr.Get("Retry-After"), r.body)
	}
	if n := auditTypes(t, auditPath)["session/rate_limited"]; n != 1 {
		t.Fatalf("%d session/rate_limited audit records, want 1", n)
	}
	// The refused initialize left no session behind, here or in mcp-go.
	if n, _ := s.opts.Sessions.Count(context.Background()); n != 3 {
		t.Fatalf("%d sessions recorded, want 3", n)
	}
	if n := s.transportSessions.Load(); n != 3 {
		t.Fatalf("mcp-go holds %d sessions, want 3", n)
	}
}

// TestSessionConcurrentInitializeCap: 64 initializes at once for one user
// end with exactly the cap of live sessions, in memory and in Redis, and
// mcp-go keeps no more than that either.
func TestSessionConcurrentInitializeCap(t *testing.T) {
	const cap, n = 32, 64
	srv := redistest.Start(t)
	kinds := map[string]func(t *testing.T) *Server{
		"memory": func(t *testing.T) *Server { s, _ := newDemoServerYAML(t, unlimitedRates); return s },
		"redis":  func(t *testing.T) *Server { return newRedisDemoServer(t, srv, unlimitedRates) },
	}
	for _, kind := range []string{"memory", "redis"} {
		t.Run(kind, func(t *testing.T) {
			s := kinds[kind](t)
			h := s.Handler()
			sids := make([]string, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					r := send(t, h, "POST", "", initBody)
					if r.code != 200 || r.sid == "" {
						t.Errorf("initialize %d = %d: %s", i, r.code, r.body)
					}
					sids[i] = r.sid
				})
			}
			wg.Wait()
			count, err := s.opts.Sessions.Count(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			live := 0
			for _, sid := range sids {
				if sid != "" && send(t, h, "POST", sid, listBody).code == 200 {
					live++
				}
			}
			evicted := evictedMetric(t, s, "user")
			t.Logf("%s: %d concurrent initializes for one user, cap %d: %d live sessions (store Count %d), %v evicted, mcp-go holds %d",
				kind, n, cap, live, count, evicted, s.transportSessions.Load())
			if live != cap || count != cap || evicted != n-cap {
				t.Fatalf("%d live, Count %d, %v evicted; want %d live and %d evicted", live, count, evicted, cap, n-cap)
			}
			if got := s.transportSessions.Load(); got > cap {
				t.Fatalf("mcp-go holds %d sessions, want at most %d", got, cap)
			}
		})
	}
}

// TestSessionEvictedOnAnotherReplica: with state: redis, a session that
// one replica evicts is dropped at once from mcp-go on the replica that
// served it (Redis pub/sub), and answers 404 on both.
func TestSessionEvictedOnAnotherReplica(t *testing.T) {
	srv := redistest.Start(t)
	yaml := "server:\n  sessions: {maxPerUser: 2}\n" + unlimitedRates
	a, b := newRedisDemoServer(t, srv, yaml), newRedisDemoServer(t, srv, yaml)
	ha, hb := a.Handler(), b.Handler()
	var sids []string
	for range 2 {
		r := send(t, ha, "POST", "", initBody)
		if r.code != 200 || r.sid == "" {
			t.Fatalf("initialize on a = %d: %s", r.code, r.body)
		}
		sids = append(sids, r.sid)
		// Least recently used is decided on millisecond timestamps: two
		// sessions opened within one millisecond tie.
		time.Sleep(5 * time.Millisecond)
	}
	if n := a.transportSessions.Load(); n != 2 {
		t.Fatalf("a holds %d sessions in mcp-go, want 2", n)
	}
	if r := send(t, hb, "POST", "", initBody); r.code != 200 || r.sid == "" {
		t.Fatalf("initialize on b = %d: %s", r.code, r.body)
	}
	deadline := time.Now().Add(5 * time.Second)
	for a.transportSessions.Load() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("a still holds %d sessions in mcp-go 5s after b evicted one, want 1", a.transportSessions.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, h := range []http.Handler{ha, hb} {
		if r := send(t, h, "POST", sids[0], listBody); r.code != 404 {
			t.Fatalf("evicted session = %d, want 404", r.code)
		}
	}
	if r := send(t, ha, "POST", sids[1], listBody); r.code != 200 {
		t.Fatalf("kept session = %d: %s", r.code, r.body)
	}
}

// TestSessionAbandonedMemoryFlat: initialize-then-abandon (no DELETE), the
// way many clients reconnect, 100 and then 1,600 times as one user: live
// heap after GC must not grow with the count, because every session
// evicted at the cap is dropped from mcp-go too.
func TestSessionAbandonedMemoryFlat(t *testing.T) {
	s, _ := newDemoServerYAML(t, unlimitedRates+unlimitedIngress)
	h := s.Handler()
	heap := func() uint64 {
		var ms runtime.MemStats
		for range 3 {
			runtime.GC()
		}
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	cycles := func(k int) {
		for i := range k {
			r := send(t, h, "POST", "", initBody)
			if r.code != 200 || r.sid == "" {
				t.Fatalf("initialize %d = %d: %s", i, r.code, r.body)
			}
			if r := send(t, h, "POST", r.sid, callBody); r.code != 200 {
				t.Fatalf("call %d = %d: %s", i, r.code, r.body)
			}
		}
	}
	cycles(100)
	at100 := heap()
	cycles(1500)
	at1600 := heap()
	per := (float64(at1600) - float64(at100)) / 1500
	t.Logf("live heap after 100 abandoned sessions %d B, after 1,600 %d B: %+.0f B per abandoned session; mcp-go holds %d, store %d",
		at100, at1600, per, s.transportSessions.Load(), mustCount(t, s))
	if got := s.transportSessions.Load(); got != 32 {
		t.Fatalf("mcp-go holds %d sessions, want the cap (32)", got)
	}
	// A session that stayed would cost about 13-17 KiB; allow noise.
	if per > 1024 {
		t.Fatalf("live heap grows %.0f B per abandoned session, want under 1 KiB", per)
	}
}

// evictedMetric reads backstage_mcp_sessions_evicted_total{cap} from /metrics.
func evictedMetric(t *testing.T, s *Server, cap string) float64 {
	t.Helper()
	return scrape(t, s)[`backstage_mcp_sessions_evicted_total{cap="`+cap+`"}`]
}

func mustCount(t *testing.T, s *Server) int {
	t.Helper()
	n, err := s.opts.Sessions.Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSessionsAcrossReplicas: two servers sharing one Redis: a session
// opened on one continues on the other, and DELETE on one ends it on both.
func TestSessionsAcrossReplicas(t *testing.T) {
	srv := redistest.Start(t)
	a := newRedisDemoServer(t, srv, "").Handler()
	b := newRedisDemoServer(t, srv, "").Handler()
	init := send(t, a, "POST", "", initBody)
	if init.code != 200 || init.sid == "" {
		t.Fatalf("initialize on a = %d: %s", init.code, init.body)
	}
	if r := send(t, b, "POST", init.sid, callBody); r.code != 200 || !strings.Contains(r.body, "checkout-service") {
		t.Fatalf("call on b in a's session = %d: %s", r.code, r.body)
	}
	if r := send(t, b, "DELETE", init.sid, ""); r.code != 200 {
		t.Fatalf("DELETE on b = %d: %s", r.code, r.body)
	}
	if r := send(t, a, "POST", init.sid, listBody); r.code != 404 {
		t.Fatalf("a after DELETE on b = %d, want 404", r.code)
	}
	srv.Stop()
	if r := send(t, a, "POST", "", initBody); r.code != 503 || r.sid != "" {
		t.Fatalf("initialize with Redis down = %d sid %q, want 503 and no session", r.code, r.sid)
	}
}

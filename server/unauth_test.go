package server

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/audit"
)

func TestClientAddr(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32")}
	cases := []struct {
		name, remote string
		xff          []string
		trusted      []netip.Prefix
		want         string
	}{
		{name: "peer, no proxies", remote: "203.0.113.5:4711", xff: []string{"198.51.100.1"}, want: "203.0.113.5"},
		{name: "untrusted peer's XFF ignored", remote: "203.0.113.5:4711", xff: []string{"198.51.100.1"}, trusted: trusted, want: "203.0.113.5"},
		{name: "trusted proxy", remote: "10.1.2.3:80", xff: []string{"198.51.100.1"}, trusted: trusted, want: "198.51.100.1"},
		{name: "spoofed left entries ignored", remote: "10.1.2.3:80", xff: []string{"1.1.1.1, 198.51.100.1"}, trusted: trusted, want: "198.51.100.1"},
		{name: "chain of proxies", remote: "10.1.2.3:80", xff: []string{"198.51.100.1, 192.0.2.7", "10.9.9.9"}, trusted: trusted, want: "198.51.100.1"},
		{name: "malformed hop", remote: "10.1.2.3:80", xff: []string{"198.51.100.1, nonsense"}, trusted: trusted, want: "10.1.2.3"},
		{name: "only proxies", remote: "10.1.2.3:80", xff: []string{"10.2.2.2"}, trusted: trusted, want: "10.1.2.3"},
		{name: "mapped IPv6", remote: "[::ffff:203.0.113.5]:4711", want: "203.0.113.5"},
		{name: "IPv6", remote: "[2001:db8::1]:4711", want: "2001:db8::1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/mcp", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := clientAddr(r, tc.trusted); got != tc.want {
				t.Fatalf("clientAddr = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestAuthFailureAggregation(t *testing.T) {
	var mu sync.Mutex
	var written []audit.Record
	a := newAuthFailureLog(time.Hour, func(r *audit.Record) {
		mu.Lock()
		defer mu.Unlock()
		written = append(written, *r)
	})
	t.Cleanup(a.close)
	fail := func(source, reason string, n int) {
		for range n {
			a.add(&audit.Record{Type: audit.TypeAuthFailure, Source: source, Reason: reason})
		}
	}
	take := func() []audit.Record {
		mu.Lock()
		defer mu.Unlock()
		out := written
		written = nil
		return out
	}
	total := func(recs []audit.Record) map[string]int {
		m := map[string]int{}
		for _, r := range recs {
			m[r.Source+"|"+r.Reason] += max(r.Count, 1)
		}
		return m
	}

	fail("203.0.113.5", "no token", 1000)
	fail("198.51.100.1", "malformed token", 3)
	if got := take(); len(got) != 2 || got[0].Count != 0 || got[1].Count != 0 {
		t.Fatalf("at once: %d records %+v, want the first failure of each source, uncounted", len(got), got)
	}
	a.flush()
	got := take()
	if len(got) != 2 {
		t.Fatalf("after one interval: %d records, want 2", len(got))
	}
	if m := total(got); m["203.0.113.5|no token"] != 999 || m["198.51.100.1|malformed token"] != 2 {
		t.Fatalf("counts = %v, want 999 and 2", m)
	}
	// A quiet interval writes nothing and forgets the burst...
	a.flush()
	a.flush()
	if got := take(); len(got) != 0 {
		t.Fatalf("quiet intervals wrote %+v", got)
	}
	// ...so the first failure of a new burst is written at once.
	fail("203.0.113.5", "no token", 1)
	if got := take(); len(got) != 1 || got[0].Count != 0 {
		t.Fatalf("new burst: %+v, want one record at once", got)
	}
	// Distinct sources beyond the cap share one "(other)" bucket.
	for i := range maxFailureKeys + 100 {
		fail(fmt.Sprintf("2001:db8::%x", i), "no token", 1)
	}
	a.flush()
	recs := take()
	if len(recs) > maxFailureKeys+2 {
		t.Fatalf("%d records for %d sources, want at most the cap + (other)", len(recs), maxFailureKeys+100)
	}
	if total(recs)["(other)|no token"] == 0 {
		t.Fatal("no (other) aggregate beyond the cap")
	}
}

// TestUnauthenticatedFlood: token-less requests from one address are
// turned away with 429 before token verification once its budget is
// spent; the audit trail holds a handful of aggregated records whose
// counts add up to every request; the server keeps serving a valid token
// from another address.
func TestUnauthenticatedFlood(t *testing.T) {
	const n = 2000
	e := startAuthServer(t, newTestIdP(t), authSetup{serverExtra: "  unauthenticatedRate: {requests: 5, per: 1s, burst: 10}\n  authFailureInterval: 1h\n"})
	codes := map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	work := make(chan struct{})
	for range 16 {
		wg.Go(func() {
			for range work {
				resp, _ := e.do(http.MethodPost, "/mcp", "", "", rpcInitialize)
				mu.Lock()
				codes[resp.StatusCode]++
				mu.Unlock()
			}
		})
	}
	start := time.Now()
	for range n {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()
	elapsed := time.Since(start)
	maxPassed := 10 + int(elapsed.Seconds()*5) + 5
	if codes[401]+codes[429] != n || codes[401] > maxPassed || codes[401] < 10 {
		t.Fatalf("codes %v in %s: want %d answered, 10..%d of them 401 and the rest 429", codes, elapsed, n, maxPassed)
	}
	// A valid token from elsewhere is served (the in-process request
	// comes from the same loopback address, so use the handler directly).
	req := httptest.NewRequest(http.MethodPost, "/mcp", stringsReader(rpcInitialize))
	req.RemoteAddr = "198.51.100.9:5000"
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+e.token(amelia, scopeCatalog))
	rec := httptest.NewRecorder()
	e.s.Handler().ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("valid token during the flood: %d %s", rec.Code, rec.Body)
	}

	recs, raw := e.auditRecords()
	counted := 0
	nAuth := 0
	for _, r := range recs {
		if r.Type == audit.TypeAuthFailure {
			nAuth++
			counted += max(r.Count, 1)
		}
	}
	if counted != n || nAuth > 4 {
		t.Fatalf("%d auth_failure records counting %d failures, want at most 4 records counting %d", nAuth, counted, n)
	}
	st, _ := os.Stat(e.auditPath)
	t.Logf("%d token-less requests: %v; audit: %d records, %d bytes in total (%d auth_failure records)", n, codes, len(recs), st.Size(), nAuth)
	if len(raw) > 16<<10 {
		t.Fatalf("audit file %d bytes after the flood, want a few KB", len(raw))
	}
}

// TestTokenlessSessionDeleteNotCharged: mcp-go's client ends each session
// with a DELETE that lacks the token; many of them in a row are refused
// (401) but do not block the address, so the same client's next
// initialize, with its token, is served.
func TestTokenlessSessionDeleteNotCharged(t *testing.T) {
	e := startAuthServer(t, newTestIdP(t), authSetup{serverExtra: "  unauthenticatedRate: {requests: 1, per: 1h, burst: 2}\n  authFailureInterval: 1h\n"})
	for i := range 30 {
		if resp, body := e.do(http.MethodDelete, "/mcp", "", "mcp-session-6f1b3b0e-4c1e-4d0a-9d6b-2a1f5e0c7a11", ""); resp.StatusCode != 401 {
			t.Fatalf("token-less DELETE %d = %d, want 401: %s", i, resp.StatusCode, body)
		}
	}
	if resp, body := e.do(http.MethodPost, "/mcp", "Bearer "+e.token(amelia, scopeCatalog), "", rpcInitialize); resp.StatusCode != 200 {
		t.Fatalf("initialize with a token after 30 token-less DELETEs = %d, want 200: %s", resp.StatusCode, body)
	}
	// Other token-less requests are still charged: the third is refused.
	codes := []int{}
	for range 3 {
		resp, _ := e.do(http.MethodPost, "/mcp", "", "", rpcInitialize)
		codes = append(codes, resp.StatusCode)
	}
	if codes[2] != 429 {
		t.Fatalf("token-less initializes = %v, want the third refused with 429", codes)
	}
}

func stringsReader(s string) *stringReader { return &stringReader{s: s} }

type stringReader struct {
	s string
	i int
}

func (r *stringReader) Read(p []byte) (int, error) {
	if r.i >= len(r.s) {
		return 0, io.EOF
	}
	n := copy(p, r.s[r.i:])
	r.i += n
	return n, nil
}

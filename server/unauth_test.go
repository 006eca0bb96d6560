package server

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/audit"
	"github.com/backstage-mcp/backstage-mcp/server/internal/redistest"
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

	fail("203.0.113.5", "no token", 1000)
	fail("198.51.100.1", "malformed token", 3)
	if got := take(); len(got) != 1 || got[0].Count != 0 || got[0].Source != "203.0.113.5" {
		t.Fatalf("at once: %d records %+v, want only the first refusal of the interval, uncounted", len(got), got)
	}
	a.flush()
	got := take()
	if len(got) != 1 {
		t.Fatalf("after one interval: %d records, want 1 for every source and reason", len(got))
	}
	r := got[0]
	if r.Count != 1002 || r.Source != "(several)" || r.Reason != "several reasons (see sources)" || len(r.Sources) != 2 ||
		r.Sources[0] != (audit.SourceCount{Source: "203.0.113.5", Reason: "no token", Count: 999}) ||
		r.Sources[1] != (audit.SourceCount{Source: "198.51.100.1", Reason: "malformed token", Count: 3}) {
		t.Fatalf("aggregate = %+v, want count 1002 with 999 + 3 by source", r)
	}
	// One source and reason: the record is that source's, with its count.
	fail("203.0.113.5", "no token", 10)
	a.flush()
	if got := take(); len(got) != 1 || got[0].Count != 10 || got[0].Source != "203.0.113.5" || got[0].Sources != nil {
		t.Fatalf("one source: %+v", got)
	}
	// A quiet interval writes nothing and ends the interval...
	a.flush()
	a.flush()
	if got := take(); len(got) != 0 {
		t.Fatalf("quiet intervals wrote %+v", got)
	}
	// ...so the first refusal of a new burst is written at once.
	fail("203.0.113.5", "no token", 1)
	if got := take(); len(got) != 1 || got[0].Count != 0 {
		t.Fatalf("new burst: %+v, want one record at once", got)
	}
	// A flood from 10,000 addresses is one record per interval, with the
	// busiest 31 sources and the rest as (other), counting every request.
	for i := range 10000 {
		fail(fmt.Sprintf("2001:db8::%x", i), "no token", 1+i%3)
	}
	a.flush()
	recs := take()
	if len(recs) != 1 {
		t.Fatalf("%d records for a flood from 10,000 addresses, want 1", len(recs))
	}
	sum := 0
	for _, sc := range recs[0].Sources {
		sum += sc.Count
	}
	if len(recs[0].Sources) != audit.MaxSources || recs[0].Sources[audit.MaxSources-1].Source != "(other)" || sum != recs[0].Count || recs[0].Count != 19999 {
		t.Fatalf("flood aggregate: count %d, %d sources summing to %d", recs[0].Count, len(recs[0].Sources), sum)
	}
	// Two types (authentication failures, refused initializes) are one
	// record each.
	fail("203.0.113.5", "no token", 5)
	for range 5 {
		a.add(&audit.Record{Type: audit.TypeSession, Source: "203.0.113.6", Reason: malformedInitReason})
	}
	a.flush()
	if got := take(); len(got) != 2 {
		t.Fatalf("two types: %d records, want 2", len(got))
	}
}

// TestSubnetOf: floods spread over an IPv4 /24 or an IPv6 /48 share a
// bucket.
func TestSubnetOf(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.77":        "203.0.113.0/24",
		"2001:db8:1:2:3::4":   "2001:db8:1::/48",
		"not-an-ip":           "not-an-ip",
		"::ffff:203.0.113.77": "203.0.113.0/24",
	} {
		if got := subnetOf(in); got != want {
			t.Errorf("subnetOf(%s) = %s, want %s", in, got, want)
		}
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

// TestSignedInServedBesideFlood: signed-in users behind one address with a
// token-less flood beside them are served (a token that verifies is never
// charged, and a blocked address's tokens are still verified within the
// verification budget); the flood gets 429 and a bounded audit trail; a
// bogus-token flood from the blocked address cannot buy more
// verifications than the budget.
func TestSignedInServedBesideFlood(t *testing.T) {
	e := startAuthServer(t, newTestIdP(t), authSetup{serverExtra: "  unauthenticatedRate: {requests: 5, per: 1s, burst: 10}\n" +
		"  unauthenticatedVerifyRate: {requests: 20, per: 1s, burst: 40}\n  authFailureInterval: 1h\n" +
		"  sessions: {maxPerUser: 1000, max: 10000}\n", extra: unlimitedRates})
	h := e.s.Handler()
	const addr = "198.51.100.20:4444"
	do := func(token string) int {
		req := httptest.NewRequest(http.MethodPost, "/mcp", stringsReader(rpcInitialize))
		req.RemoteAddr = addr
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	tok := e.token(amelia, scopeCatalog)
	stop := make(chan struct{})
	floodStart := time.Now()
	var flood sync.WaitGroup
	var mu sync.Mutex
	floodCodes := map[int]int{}
	for range 4 {
		flood.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				c := do("")
				mu.Lock()
				floodCodes[c]++
				mu.Unlock()
			}
		})
	}
	served, n := 0, 200
	userCodes := map[int]int{}
	for range n {
		c := do(tok)
		userCodes[c]++
		if c == 200 {
			served++
		}
		time.Sleep(2 * time.Millisecond) // a user's pace, not a flood's
	}
	close(stop)
	flood.Wait()
	t.Logf("signed-in user: %d of %d served (%v) beside a token-less flood of %v", served, n, userCodes, floodCodes)
	if served < n*99/100 {
		t.Fatalf("signed-in user served %d of %d beside the flood, want ≥ 99%%", served, n)
	}
	if floodCodes[429] == 0 || float64(floodCodes[401]) > 10+5*time.Since(floodStart).Seconds()+5 {
		t.Fatalf("flood codes %v: want most refused with 429", floodCodes)
	}
	// The address is blocked: bogus tokens from it are verified at most
	// within the budget (burst 40), the rest refused before verification.
	bogus := map[int]int{}
	for range 200 {
		bogus[do("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln")]++
	}
	if bogus[401] > 40+5 || bogus[429] < 150 {
		t.Fatalf("bogus tokens from a blocked address: %v, want at most the verification budget (40) verified", bogus)
	}
	recs, _ := e.auditRecords()
	nAuth := 0
	for _, r := range recs {
		if r.Type == audit.TypeAuthFailure {
			nAuth++
		}
	}
	if nAuth > 2 {
		t.Fatalf("%d auth_failure records during the flood, want the first one only until the interval ends", nAuth)
	}
}

// TestUnauthenticatedBucketsFleetWide: with state: redis two replicas
// draw on one address bucket, so a token-less flood spread over them gets
// no more through than one replica would let through; a neighbour in the
// same /24 is bounded by the subnet bucket, shared too.
func TestUnauthenticatedBucketsFleetWide(t *testing.T) {
	rs := redistest.Start(t)
	extra := "state: redis\nredis:\n  url: " + rs.URL() + "\n"
	srv := "  cursorKey: " + testCursorKey + "\n  unauthenticatedRate: {requests: 1, per: 1m, burst: 10}\n  unauthenticatedSubnetRate: {requests: 1, per: 1m, burst: 15}\n  authFailureInterval: 1h\n"
	idp := newTestIdP(t)
	a := startAuthServer(t, idp, authSetup{serverExtra: srv, extra: extra})
	b := startAuthServer(t, idp, authSetup{serverExtra: srv, extra: extra})
	do := func(e *authEnv, remote string) int {
		req := httptest.NewRequest(http.MethodPost, "/mcp", stringsReader(rpcInitialize))
		req.RemoteAddr = remote
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		rec := httptest.NewRecorder()
		e.s.Handler().ServeHTTP(rec, req)
		return rec.Code
	}
	codes := map[int]int{}
	for i := range 40 {
		codes[do([]*authEnv{a, b}[i%2], "203.0.113.7:1000")]++
	}
	if codes[401] != 10 || codes[429] != 30 {
		t.Fatalf("one address over two replicas: %v, want 10 through (one shared bucket of 10) and 30 refused", codes)
	}
	// Another address of the same /24: its own bucket has 10, but the
	// subnet's (15) has 5 left after the first address took 10.
	codes = map[int]int{}
	for i := range 20 {
		codes[do([]*authEnv{a, b}[i%2], "203.0.113.8:1000")]++
	}
	if codes[401] != 5 || codes[429] != 15 {
		t.Fatalf("a neighbour in the /24: %v, want 5 through (what the shared subnet bucket had left)", codes)
	}
}

// TestResolutionOutageNotCharged: a token that verifies while Backstage
// cannot resolve its user gets 503, and that outage is not charged to the
// address's unauthenticated budget (which would lock every signed-in user
// behind it out once Backstage is back).
func TestResolutionOutageNotCharged(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	e := startAuthServer(t, newTestIdP(t), authSetup{backstageURL: down.URL, backstageToken: "t",
		serverExtra: "  unauthenticatedRate: {requests: 1, per: 1h, burst: 2}\n  authFailureInterval: 1h\n"})
	for i := range 10 {
		if resp, body := e.do(http.MethodPost, "/mcp", "Bearer "+e.token(amelia, scopeCatalog), "", rpcInitialize); resp.StatusCode != 503 {
			t.Fatalf("initialize %d with Backstage down = %d, want 503: %s", i, resp.StatusCode, body)
		}
	}
	// The address's budget is whole: two token-less requests get 401, the
	// third 429.
	codes := []int{}
	for range 3 {
		resp, _ := e.do(http.MethodPost, "/mcp", "", "", rpcInitialize)
		codes = append(codes, resp.StatusCode)
	}
	if codes[0] != 401 || codes[1] != 401 || codes[2] != 429 {
		t.Fatalf("token-less requests after the outage = %v, want 401 401 429", codes)
	}
}

// TestVerifiedRefusalsNotCharged: requests whose token verified but which
// are refused for another reason (a session the store no longer knows,
// as after a Redis wipe; a session of another user) are audited but not
// charged to the address's unauthenticated budget.
func TestVerifiedRefusalsNotCharged(t *testing.T) {
	e := startAuthServer(t, newTestIdP(t), authSetup{
		serverExtra: "  unauthenticatedRate: {requests: 1, per: 1h, burst: 2}\n  authFailureInterval: 1h\n"})
	tok := "Bearer " + e.token(amelia, scopeCatalog)
	for i := range 10 {
		resp, body := e.do(http.MethodPost, "/mcp", tok, "sess-that-redis-lost-"+strconv.Itoa(i), rpcInitialize)
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("request %d in an unknown session = %d, want 404: %s", i, resp.StatusCode, body)
		}
	}
	codes := []int{}
	for range 3 {
		resp, _ := e.do(http.MethodPost, "/mcp", "", "", rpcInitialize)
		codes = append(codes, resp.StatusCode)
	}
	if codes[0] != 401 || codes[1] != 401 || codes[2] != 429 {
		t.Fatalf("token-less requests after 10 signed-in 404s = %v, want 401 401 429 (the budget whole)", codes)
	}
}

package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/state"
)

// openGET starts GET /mcp on srv for sid and returns once the stream's
// headers arrived, with a function that waits for the stream to end.
func openGET(t *testing.T, srv *httptest.Server, sid string) (code int, ended func(time.Duration) bool) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/mcp", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
		req.Header.Set("Mcp-Protocol-Version", protoHead)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		b := make([]byte, 300)
		n, _ := resp.Body.Read(b)
		t.Logf("GET %s: %d %s", sid, resp.StatusCode, b[:n])
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 512)
		for {
			if _, err := resp.Body.Read(buf); err != nil {
				_ = resp.Body.Close()
				return
			}
		}
	}()
	return resp.StatusCode, func(d time.Duration) bool {
		select {
		case <-done:
			return true
		case <-time.After(d):
			return false
		}
	}
}

// TestStreamsPerSessionBounded: thousands of GET streams on one session
// keep one open (each new one ends the older), a reconnecting client is
// never refused, the metric counts the evictions, and a GET without a
// session id is refused with 400 instead of opening a session past the
// caps.
func TestStreamsPerSessionBounded(t *testing.T) {
	s, _ := newDemoServerYAML(t, unlimitedRates)
	h := s.Handler()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	init := send(t, h, "POST", "", initBody)
	if init.code != 200 || init.sid == "" {
		t.Fatalf("initialize = %d %s", init.code, init.body)
	}
	const n = 200
	var ends []func(time.Duration) bool
	for i := range n {
		code, ended := openGET(t, srv, init.sid)
		if code != 200 {
			t.Fatalf("stream %d = %d, want 200 (a new stream is never refused)", i, code)
		}
		ends = append(ends, ended)
	}
	for i, ended := range ends[:n-1] {
		if !ended(5 * time.Second) {
			t.Fatalf("stream %d of %d still open: the per-session cap (1) did not end it", i, n)
		}
	}
	if ends[n-1](100 * time.Millisecond) {
		t.Fatal("the newest stream was ended")
	}
	if got := s.streams.Open(); got != 1 {
		t.Errorf("%d streams open, want 1", got)
	}
	if got := evictedStreams(t, s, "session"); got != n-1 {
		t.Errorf("backstage_mcp_streams_evicted_total{cap=session} = %v, want %d", got, n-1)
	}
	code, _ := openGET(t, srv, "")
	if code != http.StatusBadRequest {
		t.Errorf("GET without a session id = %d, want 400", code)
	}
}

// TestStreamsPerUserBounded: one user's streams over many sessions stay
// at streamsPerUser; another user's stream is untouched.
func TestStreamsPerUserBounded(t *testing.T) {
	s, _ := newDemoServerYAML(t, unlimitedRates+"server:\n  sessions: {streamsPerUser: 3}\n")
	h := s.Handler()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	var ends []func(time.Duration) bool
	for range 10 {
		init := send(t, h, "POST", "", initBody)
		if init.code != 200 {
			t.Fatalf("initialize = %d %s", init.code, init.body)
		}
		code, ended := openGET(t, srv, init.sid)
		if code != 200 {
			t.Fatalf("stream = %d", code)
		}
		ends = append(ends, ended)
	}
	for i, ended := range ends[:7] {
		if !ended(5 * time.Second) {
			t.Fatalf("stream %d still open past the per-user cap", i)
		}
	}
	for i, ended := range ends[7:] {
		if ended(50 * time.Millisecond) {
			t.Fatalf("stream %d of the newest three was ended", 7+i)
		}
	}
	if got := s.streams.Open(); got != 3 {
		t.Errorf("%d streams open, want 3", got)
	}
	if got := evictedStreams(t, s, "user"); got != 7 {
		t.Errorf("evicted by the user cap = %v, want 7", got)
	}
}

// TestStreamIdleEnds: a stream that carries nothing for streamIdle ends.
func TestStreamIdleEnds(t *testing.T) {
	s, _ := newDemoServerYAML(t, unlimitedRates+"server:\n  sessions: {streamIdle: 200ms}\n")
	h := s.Handler()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	init := send(t, h, "POST", "", initBody)
	code, ended := openGET(t, srv, init.sid)
	if code != 200 {
		t.Fatalf("stream = %d", code)
	}
	if !ended(5 * time.Second) {
		t.Fatal("an idle stream stayed open past streamIdle")
	}
	if got := s.streams.Open(); got != 0 {
		t.Errorf("%d streams open after the idle one ended", got)
	}
}

// TestStreamGuardConcurrent: concurrent opens and closes keep the counts
// exact (run with -race).
func TestStreamGuardConcurrent(t *testing.T) {
	g := newStreamGuard(parseLimits(t, "server:\n  sessions: {streamsPerSession: 2, streamsPerUser: 4}\n"), nil)
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			_, cancel := context.WithCancel(context.Background())
			st := &openStream{sid: []string{"a", "b", "c"}[i%3], user: []string{"u1", "u2"}[i%2], end: cancel}
			g.add(st)
			if i%4 == 0 {
				g.remove(st)
			}
		})
	}
	wg.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	total := 0
	for sid, l := range g.bySession {
		if len(l) > 2 {
			t.Errorf("session %s holds %d streams", sid, len(l))
		}
		total += len(l)
	}
	for u, l := range g.byUser {
		if len(l) > 4 {
			t.Errorf("user %s holds %d streams", u, len(l))
		}
	}
	if total != g.open {
		t.Errorf("open = %d, sessions hold %d", g.open, total)
	}
}

func parseLimits(t *testing.T, y string) (l state.SessionLimits) {
	t.Helper()
	cfg, err := ParseConfig([]byte(y), "", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Server.Sessions
}

// evictedStreams reads backstage_mcp_streams_evicted_total{cap}.
func evictedStreams(t *testing.T, s *Server, cap string) float64 {
	t.Helper()
	return scrape(t, s)[`backstage_mcp_streams_evicted_total{cap="`+cap+`"}`]
}

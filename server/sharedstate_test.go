package server

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/audit"
	"github.com/backstage-mcp/backstage-mcp/server/internal/redistest"
	"github.com/backstage-mcp/backstage-mcp/server/internal/servertest"
	"github.com/mark3labs/mcp-go/client"
)

// newRedisDemoServer is the demo server with state: redis.
func newRedisDemoServer(t testing.TB, srv *redistest.Server, yaml string) *Server {
	t.Helper()
	return newRedisDemoServerWith(t, "redis:\n  url: "+srv.URL()+"\n", yaml)
}

// newRedisDemoServerWith is the demo server with state: redis and the
// redis section given.
func newRedisDemoServerWith(t testing.TB, redisYAML, yaml string) *Server {
	t.Helper()
	cfg, err := ParseConfig([]byte("state: redis\n"+redisYAML+yaml), "", func(k string) string {
		if k == "BACKSTAGE_MCP_CURSOR_KEY" {
			return testCursorKey // required with state: redis
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Audit.Path = filepath.Join(t.TempDir(), "audit.log")
	s, closeFn, err := Build(context.Background(), cfg, BuildOptions{Demo: true, LocalUser: "user:default/amelia.hart"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeFn)
	return s
}

func readyz(t *testing.T, s *Server) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	s.AdminHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	b, _ := io.ReadAll(rec.Body)
	return rec.Code, string(b)
}

// TestRedisStateFailsClosedAndRecovers: with state: redis, a call while
// Redis is down is refused with a clear tool error and /readyz answers
// 503; once Redis is back, the same process serves again.
func TestRedisStateFailsClosedAndRecovers(t *testing.T) {
	srv := redistest.Start(t)
	s := newRedisDemoServer(t, srv, "")
	c, err := client.NewInProcessClient(s.MCP())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	servertest.Connect(t, c)
	call := func() (bool, string) {
		res := servertest.Call(t, c, "catalog_get_entity", `{"ref":"component:default/checkout-service"}`)
		return res.IsError, servertest.Text(res)
	}
	if isErr, text := call(); isErr {
		t.Fatalf("with Redis up: %s", text)
	}
	if code, body := readyz(t, s); code != 200 {
		t.Fatalf("readyz with Redis up = %d %s", code, body)
	}

	srv.Stop()
	if isErr, text := call(); !isErr || !strings.Contains(text, "rate limiter is unavailable") {
		t.Fatalf("with Redis down: error=%v %q, want the call refused by the rate limiter", isErr, text)
	}
	// Redis is shared by every replica: reported, never a 503 that would
	// take the whole fleet out of rotation.
	if code, body := readyz(t, s); code != 200 || !strings.Contains(body, "Redis unreachable") {
		t.Fatalf("readyz with Redis down = %d %s, want 200 naming Redis", code, body)
	}

	srv.Restart()
	deadline := time.Now().Add(5 * time.Second)
	for {
		isErr, text := call()
		if !isErr {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery 5s after Redis came back: %s", text)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, body := readyz(t, s); code != 200 {
		t.Fatalf("readyz after recovery = %d %s", code, body)
	}
}

// testCursorKey is the cursor key of the state: redis test servers.
const testCursorKey = "test-cursor-key-0123456789abcdef0123456789"

// TestRedisStateSharesBudget: two servers on one Redis share the user's
// budget (burst 5 in all, not 5 each).
func TestRedisStateSharesBudget(t *testing.T) {
	srv := redistest.Start(t)
	limits := "rateLimits:\n  classes:\n    default: {requests: 1, per: 1h, burst: 5}\n    high: {requests: 1, per: 1h, burst: 5}\n"
	a, b := newRedisDemoServer(t, srv, limits), newRedisDemoServer(t, srv, limits)
	var clients []*client.Client
	for _, s := range []*Server{a, b} {
		c, err := client.NewInProcessClient(s.MCP())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		servertest.Connect(t, c)
		clients = append(clients, c)
	}
	allowed, limited := 0, 0
	for i := range 12 {
		res := servertest.Call(t, clients[i%2], "catalog_get_entity", `{"ref":"component:default/checkout-service"}`)
		switch {
		case !res.IsError:
			allowed++
		case strings.Contains(servertest.Text(res), "rate limited (user limit)"):
			limited++
		default:
			t.Fatalf("call %d: unexpected error %s", i, servertest.Text(res))
		}
	}
	if allowed != 5 || limited != 7 {
		t.Fatalf("two replicas allowed %d and limited %d of 12, want 5 and 7", allowed, limited)
	}
}

// TestRedisWipeKeepsCursors: with state: redis the cursor key comes from
// the config, so a page cursor issued by one replica opens on another, and
// still opens after Redis lost all its data (FLUSHALL): nothing about
// cursors lives in Redis.
func TestRedisWipeKeepsCursors(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newRedisDemoServer(t, srv, unlimitedRates), newRedisDemoServer(t, srv, unlimitedRates)
	connect := func(s *Server) *client.Client {
		c, err := client.NewInProcessClient(s.MCP())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		servertest.Connect(t, c)
		return c
	}
	ca, cb := connect(a), connect(b)
	res := servertest.Call(t, ca, "catalog_search_entities", `{"kind":"component","limit":1}`)
	var page struct {
		NextCursor string `json:"nextCursor"`
	}
	servertest.Structured(t, res, &page)
	m := regexp.MustCompile(`^([a-z2-7]+)$`).FindStringSubmatch(page.NextCursor)
	if res.IsError || m == nil {
		t.Fatalf("first page: %s", servertest.Text(res))
	}
	if _, err := srv.Do("FLUSHALL"); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*client.Client{"same replica": ca, "other replica": cb} {
		if res := servertest.Call(t, c, "catalog_search_entities", `{"kind":"component","limit":1,"cursor":"`+m[1]+`"}`); res.IsError {
			t.Errorf("%s after FLUSHALL: %s", name, servertest.Text(res))
		}
	}
}

func TestCursorKeyRequiredWithRedis(t *testing.T) {
	_, err := ParseConfig([]byte("state: redis\nredis:\n  url: redis://r:6379/0\n"), "c.yaml", func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "server.cursorKey") || !strings.Contains(err.Error(), "openssl rand") {
		t.Fatalf("state: redis without a cursor key: %v", err)
	}
}

// TestSessionStoreDownIsAudited: a request in a session that gets 503
// because Redis does not answer leaves a record (one per request, so
// records and calls still match), not nothing.
func TestSessionStoreDownIsAudited(t *testing.T) {
	srv := redistest.Start(t)
	cfg, err := ParseConfig([]byte("state: redis\nredis:\n  url: "+srv.URL()+"\n"), "", func(k string) string {
		if k == "BACKSTAGE_MCP_CURSOR_KEY" {
			return testCursorKey
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Audit.Path = filepath.Join(t.TempDir(), "audit.log")
	s, closeFn, err := Build(context.Background(), cfg, BuildOptions{Demo: true, LocalUser: "user:default/amelia.hart"})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	post := func(sid, body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, hs.URL+"/mcp", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if sid != "" {
			req.Header.Set("Mcp-Session-Id", sid)
			req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.Header.Get("Mcp-Session-Id")
	}
	code, sid := post("", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	if code != 200 || sid == "" {
		t.Fatalf("initialize = %d %q", code, sid)
	}
	srv.Stop()
	const n = 5
	for range n {
		if code, _ := post(sid, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`); code != http.StatusServiceUnavailable {
			t.Fatalf("in a session with Redis down = %d, want 503", code)
		}
	}
	s.FlushAuthFailures()
	closeFn()
	var recs int
	for _, r := range readRecords(t, cfg.Audit.Path) {
		if r.Limiter == limiterSessionStore {
			if r.Type != audit.TypeSession || r.Decision != audit.DecisionRefused || r.User.Sub == "" || r.Tool != "tools/list" {
				t.Errorf("record %+v", r)
			}
			recs++
		}
	}
	if recs != n {
		t.Fatalf("%d records of refusals by the session store, want %d (one per request)", recs, n)
	}
}

// TestRedisStateModes: the server runs its calls and readiness on Redis
// as operators run it: behind Sentinel, as a Cluster (two replicas still
// share one budget), and over TLS with a CA file and an ACL user whose
// password comes from a file.
func TestRedisStateModes(t *testing.T) {
	limits := "rateLimits:\n  classes:\n    default: {requests: 1, per: 1h, burst: 3}\n    high: {requests: 1, per: 1h, burst: 3}\n"
	serve := func(t *testing.T, redisYAML string, replicas int) {
		var clients []*client.Client
		for range replicas {
			s := newRedisDemoServerWith(t, redisYAML, limits)
			if code, body := readyz(t, s); code != 200 {
				t.Fatalf("readyz = %d %s", code, body)
			}
			c, err := client.NewInProcessClient(s.MCP())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close() })
			servertest.Connect(t, c)
			clients = append(clients, c)
		}
		allowed, limited := 0, 0
		for i := range 6 {
			res := servertest.Call(t, clients[i%len(clients)], "catalog_get_entity", `{"ref":"component:default/checkout-service"}`)
			switch {
			case !res.IsError:
				allowed++
			case strings.Contains(servertest.Text(res), "rate limited (user limit)"):
				limited++
			default:
				t.Fatalf("call %d: %s", i, servertest.Text(res))
			}
		}
		if allowed != 3 || limited != 3 {
			t.Fatalf("%d replicas allowed %d and limited %d of 6, want the shared burst of 3", replicas, allowed, limited)
		}
	}
	t.Run("sentinel", func(t *testing.T) {
		ss := redistest.StartSentinelSet(t, "primary", 3)
		serve(t, "redis:\n  sentinel:\n    masterName: primary\n    addrs: ["+strings.Join(ss.SentinelAddrs(), ", ")+"]\n", 2)
	})
	t.Run("cluster", func(t *testing.T) {
		var addrs []string
		for _, n := range redistest.StartCluster(t, 3) {
			addrs = append(addrs, n.Addr())
		}
		serve(t, "redis:\n  cluster:\n    addrs: ["+strings.Join(addrs, ", ")+"]\n", 2)
	})
	t.Run("tls and acl", func(t *testing.T) {
		files := redistest.NewTLSFiles(t)
		srv := redistest.StartWith(t, redistest.Options{TLS: files, Args: []string{
			"--user", "default", "off", "--user", "mcp", "on", ">acl-pass-0123456789", "~*", "&*", "+@all",
		}})
		pw := filepath.Join(t.TempDir(), "redis-password")
		if err := os.WriteFile(pw, []byte("acl-pass-0123456789\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		serve(t, "redis:\n  url: "+srv.URL()+"\n  username: mcp\n  passwordFile: "+pw+"\n  tls:\n    caFile: "+files.CA+"\n", 2)
	})
}

package server

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// TestAdminListenerSeparatesMetrics: /metrics is served on the admin
// listener and never to agents, whatever server.adminAddr says; pprof only
// with server.pprof.
func TestAdminListenerSeparatesMetrics(t *testing.T) {
	tests := []struct {
		name               string
		admin              string
		pprof              bool
		publicMetrics      int
		adminMetrics, prof int
	}{
		{"default admin listener", "", false, 404, 200, 404},
		{"admin listener off", "off", false, 404, 200, 404},
		{"admin listener", "127.0.0.1:9090", false, 404, 200, 404},
		{"admin listener with pprof", "127.0.0.1:9090", true, 404, 200, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newDemoServer(t)
			s.cfg.Server.AdminAddr, s.cfg.Server.Pprof = tc.admin, tc.pprof
			get := func(h http.Handler, path string) (int, string) {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
				return rec.Code, rec.Body.String()
			}
			if code, _ := get(s.Handler(), "/metrics"); code != tc.publicMetrics {
				t.Errorf("public /metrics = %d, want %d", code, tc.publicMetrics)
			}
			code, body := get(s.AdminHandler(), "/metrics")
			if code != tc.adminMetrics || !strings.Contains(body, "go_goroutines") || !strings.Contains(body, "process_cpu_seconds_total") {
				t.Errorf("admin /metrics = %d, want %d with Go runtime and process metrics", code, tc.adminMetrics)
			}
			if code, _ := get(s.AdminHandler(), "/debug/pprof/"); code != tc.prof {
				t.Errorf("admin /debug/pprof/ = %d, want %d", code, tc.prof)
			}
			if code, _ := get(s.Handler(), "/debug/pprof/"); code != 404 {
				t.Errorf("pprof reachable on the agents' listener: %d", code)
			}
		})
	}
}

func TestPprofNeedsAdminAddr(t *testing.T) {
	if _, err := ParseConfig([]byte("server:\n  pprof: true\n"), "c.yaml", func(string) string { return "" }); err != nil {
		t.Fatalf("pprof on the default admin listener: %v", err)
	}
	_, err := ParseConfig([]byte("server:\n  pprof: true\n  adminAddr: \"off\"\n"), "c.yaml", func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "server.pprof") {
		t.Fatalf("err = %v, want server.pprof needs server.adminAddr", err)
	}
	_, err = ParseConfig([]byte("server:\n  adminAddr: nope\n"), "c.yaml", func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "server.adminAddr") {
		t.Fatalf("err = %v, want a bad server.adminAddr", err)
	}
}

// TestServeHTTPStartsAdminListener runs the real listeners.
func TestServeHTTPStartsAdminListener(t *testing.T) {
	s := newDemoServer(t)
	admin := freeAddr(t)
	s.cfg.Server.AdminAddr = admin
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan net.Addr, 1)
	go func() { done <- s.ServeHTTP(ctx, "127.0.0.1:0", func(a net.Addr) { ready <- a }) }()
	pub := <-ready
	get := func(url string) int {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(fmt.Sprintf("http://%s/metrics", admin)); code != 200 {
		t.Errorf("admin /metrics = %d", code)
	}
	if code := get(fmt.Sprintf("http://%s/metrics", pub)); code != 404 {
		t.Errorf("public /metrics = %d, want 404", code)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("ServeHTTP did not return after cancel")
	}
	if _, err := net.DialTimeout("tcp", admin, time.Second); err == nil {
		t.Error("admin listener still open after shutdown")
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestAdminAddrNotLoopbackNeedsToken: an admin listener reachable from the
// network must demand a bearer token; loopback ones may go without.
func TestAdminAddrNotLoopbackNeedsToken(t *testing.T) {
	env := func(string) string { return "" }
	for _, addr := range []string{"0.0.0.0:9090", ":9090", "10.1.2.3:9090", "[::]:9090", "example.com:9090"} {
		_, err := ParseConfig([]byte("server:\n  adminAddr: \""+addr+"\"\n"), "c.yaml", env)
		if err == nil || !strings.Contains(err.Error(), "server.adminTokenFile") || !strings.Contains(err.Error(), "openssl rand") {
			t.Errorf("adminAddr %s without a token: err = %v, want server.adminTokenFile required", addr, err)
		}
		if _, err := ParseConfig([]byte("server:\n  adminAddr: \""+addr+"\"\n  adminTokenFile: /run/secrets/admin\n"), "c.yaml", env); err != nil {
			t.Errorf("adminAddr %s with a token file: %v", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:9090", "localhost:9090", "[::1]:9090", "127.0.0.2:9191"} {
		if _, err := ParseConfig([]byte("server:\n  adminAddr: \""+addr+"\"\n"), "c.yaml", env); err != nil {
			t.Errorf("loopback adminAddr %s: %v", addr, err)
		}
	}
}

// TestAdminBearerToken: with a token every admin path answers 401 to a
// request without it, with a wrong one, or with a prefix of it.
func TestAdminBearerToken(t *testing.T) {
	s := newDemoServer(t)
	s.cfg.Server.Pprof = true
	tok := "0123456789abcdef0123456789abcdef0123456789abcdef"
	h := s.adminHandler([]byte(tok))
	for _, path := range []string{"/metrics", "/readyz", "/healthz", "/debug/pprof/"} {
		for _, auth := range []string{"", "Bearer ", "Bearer wrong", "Bearer " + tok[:40], "Basic " + tok, tok} {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodGet, path, nil)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusUnauthorized || strings.Contains(rec.Body.String(), "backstage_mcp") {
				t.Errorf("%s with %q = %d, want 401", path, auth, rec.Code)
			}
		}
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Errorf("%s with the token = %d, want 200", path, rec.Code)
		}
	}
}

func TestReadAdminToken(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := dir + "/" + name
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if tok, err := readAdminToken(write("ok", "  "+strings.Repeat("a", 64)+"\n")); err != nil || len(tok) != 64 {
		t.Errorf("good token: %d bytes, %v", len(tok), err)
	}
	if _, err := readAdminToken(write("short", "tooshort\n")); err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Errorf("short token: %v", err)
	}
	if _, err := readAdminToken(write("long", strings.Repeat("a", 5000))); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("long file: %v", err)
	}
	if _, err := readAdminToken(dir + "/missing"); err == nil || !strings.Contains(err.Error(), "server.adminTokenFile") {
		t.Errorf("missing file: %v", err)
	}
}

// TestAgentsReadyzHasNoDetails: the agents' /readyz gives the status and
// nothing else (a mirror's size, the dependencies and their latencies are
// on the admin listener).
func TestAgentsReadyzHasNoDetails(t *testing.T) {
	s := newDemoServer(t)
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != `{"status":"ok"}` {
		t.Fatalf("agents' /readyz = %d %s, want 200 {\"status\":\"ok\"}", rec.Code, rec.Body.String())
	}
	code, b := getReadyz(t, s.AdminHandler())
	if code != 200 || len(b.Checks) == 0 {
		t.Fatalf("admin /readyz = %d %+v, want the checks", code, b)
	}
}

// TestCursorKeyFile: the first key seals, the others open (rotation);
// comments and blank lines are skipped; bad files name the line and fix.
func TestCursorKeyFile(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) ServerConfig {
		p := dir + "/keys"
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return ServerConfig{CursorKeyFile: p}
	}
	a, b := strings.Repeat("a", 64), strings.Repeat("b", 64)
	cur, prev, err := write("# current first\n" + a + "\n\n" + b + "\n").CursorKeys()
	if err != nil || string(cur) != a || len(prev) != 1 || string(prev[0]) != b {
		t.Fatalf("keys = %q %q %v", cur, prev, err)
	}
	for body, want := range map[string]string{
		"short\n":                          "line 1: a key must be at least 32 bytes",
		"# only a comment\n":               "no key",
		strings.Repeat(a+"\n", 9):          "9 keys, at most 8",
		strings.Repeat("x", 70<<10) + "\n": "larger than 64 KiB",
	} {
		if _, _, err := write(body).CursorKeys(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("file %.20q…: err = %v, want %q", body, err, want)
		}
	}
	if _, _, err := (ServerConfig{CursorKeyFile: dir + "/missing"}).CursorKeys(); err == nil || !strings.Contains(err.Error(), "server.cursorKeyFile") {
		t.Errorf("missing file: %v", err)
	}
}

package server

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestAdminListenerSeparatesMetrics: with server.adminAddr, /metrics is
// served there and not to agents; pprof only with server.pprof.
func TestAdminListenerSeparatesMetrics(t *testing.T) {
	tests := []struct {
		name               string
		admin              string
		pprof              bool
		publicMetrics      int
		adminMetrics, prof int
	}{
		{"no admin listener", "", false, 200, 200, 404},
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
	_, err := ParseConfig([]byte("server:\n  pprof: true\n"), "c.yaml", func(string) string { return "" })
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

package server

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/server/internal/servertest"
	"github.com/mark3labs/mcp-go/client"
)

func newDemoServer(t testing.TB) *Server {
	t.Helper()
	cfg, err := ParseConfig(nil, "", func(string) string { return "" })
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

func TestToolsInProcess(t *testing.T) {
	s := newDemoServer(t)
	c, err := client.NewInProcessClient(s.MCP())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	servertest.Connect(t, c)
	servertest.CheckTools(t, c)
}

func TestToolsOverStreamableHTTP(t *testing.T) {
	s := newDemoServer(t)
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	s.cfg.Server.PublicURL = hs.URL
	servertest.CheckTools(t, servertest.ConnectHTTP(t, hs.URL+"/mcp", ""))
}

func TestHTTPEndpoints(t *testing.T) {
	s := newDemoServer(t)
	s.cfg.Server.PublicURL = "http://127.0.0.1:8080"
	s.cfg.Server.AllowedOrigins = []string{"https://app.example.com"}
	h := s.Handler()
	init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	cases := []struct {
		name, method, path, origin, body string
		want                             int
		wantIn                           string
	}{
		{name: "healthz", method: "GET", path: "/healthz", want: 200, wantIn: `"ok"`},
		{name: "readyz", method: "GET", path: "/readyz", want: 200, wantIn: `{"status":"ok"}`},
		{name: "no origin", method: "POST", path: "/mcp", body: init, want: 200},
		{name: "own origin", method: "POST", path: "/mcp", origin: "http://127.0.0.1:8080", body: init, want: 200},
		{name: "allowed origin", method: "POST", path: "/mcp", origin: "https://app.example.com", body: init, want: 200},
		{name: "foreign origin", method: "POST", path: "/mcp", origin: "https://evil.example", body: init, want: 403},
		{name: "oversized body", method: "POST", path: "/mcp", body: `{"x":"` + strings.Repeat("a", 2<<20) + `"}`, want: 413},
		{name: "malformed json-rpc", method: "POST", path: "/mcp", body: `{"jsonrpc":`, want: 400},
		{name: "unknown path", method: "GET", path: "/nope", want: 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tc.want, rec.Body.String())
			}
			if tc.wantIn != "" && !strings.Contains(rec.Body.String(), tc.wantIn) {
				t.Fatalf("body %s lacks %s", rec.Body.String(), tc.wantIn)
			}
		})
	}
}

// TestReadyzWhenBackstageDown: Backstage is shared by every replica; its
// being down is reported on the admin listener, never a 503 that would take
// every replica out at once.
func TestReadyzWhenBackstageDown(t *testing.T) {
	s := newDemoServer(t)
	s.opts.Ready = func(context.Context) error { return io.ErrUnexpectedEOF }
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), "EOF") {
		t.Fatalf("readyz = %d %s", rec.Code, rec.Body.String())
	}
}

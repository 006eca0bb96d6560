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
	"strings"
	"testing"

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
func send(t *testing.T, h http.Handler, method, sid, body string) httpResult {
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

func TestSessionCapsAndInitializeLimit(t *testing.T) {
	cases := []struct {
		name       string
		yaml       string
		opened     int
		wantIn     string
		wantAudit  string
		thenDelete bool
	}{
		{name: "per-user cap", yaml: "server:\n  sessions: {maxPerUser: 2}\n", opened: 2,
			wantIn: "too many open sessions for this user (cap 2)", wantAudit: "session/deny", thenDelete: true},
		{name: "initialize rate-limited", yaml: "rateLimits:\n  classes:\n    default: {requests: 1, per: 1h, burst: 3}\n    high: {requests: 1, per: 1h, burst: 3}\n",
			opened: 3, wantIn: "rate limited (user limit)", wantAudit: "session/rate_limited"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, auditPath := newDemoServerYAML(t, tc.yaml)
			h := s.Handler()
			var sids []string
			for i := range tc.opened {
				r := send(t, h, "POST", "", initBody)
				if r.code != 200 || r.sid == "" {
					t.Fatalf("initialize %d = %d: %s", i, r.code, r.body)
				}
				sids = append(sids, r.sid)
			}
			r := send(t, h, "POST", "", initBody)
			if r.code != 429 || r.sid != "" || !strings.Contains(r.body, tc.wantIn) || !strings.Contains(r.body, `"jsonrpc":"2.0"`) || r.hdr.Get("Retry-After") == "" {
				t.Fatalf("initialize over the limit = %d sid %q retry %q: %s", r.code, r.sid, r.hdr.Get("Retry-After"), r.body)
			}
			if n := auditTypes(t, auditPath)[tc.wantAudit]; n != 1 {
				t.Fatalf("%d %s audit records, want 1", n, tc.wantAudit)
			}
			// The refused initialize left no session behind.
			if n, _ := s.opts.Sessions.Count(context.Background()); n != tc.opened {
				t.Fatalf("%d sessions recorded, want %d", n, tc.opened)
			}
			if tc.thenDelete {
				if d := send(t, h, "DELETE", sids[0], ""); d.code != 200 {
					t.Fatalf("DELETE = %d", d.code)
				}
				if r := send(t, h, "POST", "", initBody); r.code != 200 {
					t.Fatalf("initialize after ending one = %d: %s", r.code, r.body)
				}
			}
		})
	}
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

package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/redact"
	"github.com/backstage-mcp/backstage-mcp/server/audit"
	"github.com/backstage-mcp/backstage-mcp/server/demo"
	"github.com/backstage-mcp/backstage-mcp/server/identity"
	"github.com/backstage-mcp/backstage-mcp/server/internal/servertest"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
)

func readRecords(t *testing.T, path string) []audit.Record {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Record
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var r audit.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}

// TestConcurrentCallsAreEachAudited: 100 concurrent calls leave exactly
// 100 call records, the chain verifies, and each record names the user,
// tool, decision, entities and redacted arguments.
func TestConcurrentCallsAreEachAudited(t *testing.T) {
	cfg, err := ParseConfig(nil, "", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "audit.log")
	cfg.Audit.Path = path
	s, closeFn, err := Build(context.Background(), cfg, BuildOptions{Demo: true, LocalUser: "user:default/amelia.hart"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.NewInProcessClient(s.MCP())
	if err != nil {
		t.Fatal(err)
	}
	servertest.Connect(t, c)
	var wg sync.WaitGroup
	var failed atomic.Int32
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := mcp.CallToolRequest{}
			req.Params.Name = "catalog_get_entity"
			req.Params.Arguments = json.RawMessage(fmt.Sprintf(`{"ref":"component:default/checkout-service","detail":%q}`, []string{"summary", "full"}[i%2]))
			res, err := c.CallTool(context.Background(), req)
			if err != nil || res.IsError {
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	closeFn()
	if failed.Load() != 0 {
		t.Fatalf("%d calls failed", failed.Load())
	}
	recs := readRecords(t, path)
	calls := 0
	for _, r := range recs {
		if r.Type != audit.TypeCall {
			continue
		}
		calls++
		if r.User.Ref != "user:default/amelia.hart" || r.Tool != "catalog_get_entity" || r.Decision != audit.DecisionAllowed ||
			r.Entities.Count != 1 || len(r.Arguments) == 0 || r.Agent.Name != "servertest" {
			t.Fatalf("record %+v", r)
		}
	}
	if calls != 100 {
		t.Fatalf("%d call records, want 100", calls)
	}
	if recs[0].Type != audit.TypeServerStart || recs[len(recs)-1].Type != audit.TypeServerStop {
		t.Errorf("first/last records = %s/%s", recs[0].Type, recs[len(recs)-1].Type)
	}
	res, err := audit.Verify(path)
	if err != nil || !res.OK {
		t.Fatalf("verify: %+v %v", res, err)
	}
}

// TestArgumentsAreRedactedInAudit: a secret typed into a tool argument is
// redacted in the audit record.
func TestArgumentsAreRedactedInAudit(t *testing.T) {
	cfg, _ := ParseConfig(nil, "", func(string) string { return "" })
	path := filepath.Join(t.TempDir(), "audit.log")
	cfg.Audit.Path = path
	s, closeFn, err := Build(context.Background(), cfg, BuildOptions{Demo: true, LocalUser: "user:default/amelia.hart"})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := client.NewInProcessClient(s.MCP())
	servertest.Connect(t, c)
	secret := "ghp_" + "16C7e42F292c6912E7710c838347Ae178B4a"
	servertest.Call(t, c, "catalog_search_entities", `{"text":"`+secret+`"}`)
	closeFn()
	data, _ := os.ReadFile(path)
	if strings.Contains(string(data), secret) {
		t.Fatal("secret from the arguments reached the audit log")
	}
	if !strings.Contains(string(data), "[REDACTED:") {
		t.Fatal("no redaction marker in the audit log")
	}
}

type failingWriter struct{ fail atomic.Bool }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.fail.Load() {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

// TestAuditFailureWithholdsResults: when the audit log cannot be written,
// tool calls fail closed and /readyz turns unhealthy.
func TestAuditFailureWithholdsResults(t *testing.T) {
	cfg, _ := ParseConfig(nil, "", func(string) string { return "" })
	w := &failingWriter{}
	alog, err := audit.OpenWriter(w, audit.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	cat, err := NewDemoCatalog()
	if err != nil {
		t.Fatal(err)
	}
	r, _ := redact.New()
	pols, err := NewStaticPolicyStore(demo.Policy(), "demo")
	if err != nil {
		t.Fatal(err)
	}
	p := identity.InsecureLocalUser("user:default/amelia.hart")
	s, err := New(cfg, Options{Catalog: cat, Redactor: r, Policy: pols, Audit: alog,
		LocalPrincipal: func(context.Context) (*identity.Principal, error) { return p, nil }})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := client.NewInProcessClient(s.MCP())
	servertest.Connect(t, c)
	ok := servertest.Call(t, c, "catalog_get_entity", `{"ref":"component:default/checkout-service"}`)
	if ok.IsError {
		t.Fatalf("healthy audit: %s", servertest.Text(ok))
	}
	w.fail.Store(true)
	res := servertest.Call(t, c, "catalog_get_entity", `{"ref":"component:default/checkout-service"}`)
	if !res.IsError || !strings.Contains(servertest.Text(res), "audit trail is unavailable") {
		t.Fatalf("result returned without audit: %+v", res)
	}
	b, _ := json.Marshal(res)
	if strings.Contains(string(b), "Checkout Service") {
		t.Fatal("entity data leaked in the refused result")
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("readyz = %d, want 503", rec.Code)
	}
}

// TestRateLimitedCallsAreRefusedAndAudited uses a tiny class so the
// burst runs out; the refusal says which limit and when to retry.
func TestRateLimitedCallsAreRefusedAndAudited(t *testing.T) {
	cfg, err := ParseConfig([]byte("rateLimits:\n  classes:\n    default: {requests: 60, per: 1m}\n    high: {requests: 3, per: 1h, burst: 3}\n"), "cfg", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "audit.log")
	cfg.Audit.Path = path
	s, closeFn, err := Build(context.Background(), cfg, BuildOptions{Demo: true, LocalUser: "user:default/amelia.hart"})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := client.NewInProcessClient(s.MCP())
	servertest.Connect(t, c)
	var last *mcp.CallToolResult
	for i := range 4 {
		last = servertest.Call(t, c, "whoami", ``)
		if i < 3 && last.IsError {
			t.Fatalf("call %d refused: %s", i, servertest.Text(last))
		}
	}
	txt := servertest.Text(last)
	if !last.IsError || !strings.Contains(txt, "rate limited (user limit)") || !strings.Contains(txt, "retry in") {
		t.Fatalf("4th call = %q", txt)
	}
	closeFn()
	n := 0
	for _, r := range readRecords(t, path) {
		if r.Decision == audit.DecisionRateLimited {
			n++
			if !strings.HasPrefix(r.Rule, "ratelimit:") {
				t.Errorf("rule = %q", r.Rule)
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d rate_limited records, want 1", n)
	}
}

// TestMetrics checks the Prometheus exposition after a few calls.
func TestMetrics(t *testing.T) {
	s := newPassthroughServer(t, "")
	c, _ := client.NewInProcessClient(s.MCP())
	servertest.Connect(t, c)
	servertest.Call(t, c, "catalog_get_entity", `{"ref":"component:default/checkout-service"}`)
	servertest.Call(t, c, "catalog_get_entity", `{"ref":"component:default/nope"}`)
	rec := httptest.NewRecorder()
	s.AdminHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`backstage_mcp_tool_calls_total{decision="allow",tool="catalog_get_entity"} 1`,
		`backstage_mcp_tool_calls_total{decision="error",tool="catalog_get_entity"} 1`,
		`backstage_mcp_tool_call_duration_seconds_count{tool="catalog_get_entity"} 2`,
		// The 404 counts as ok (see TestMetricsSameForHiddenAndMissing).
		`backstage_mcp_upstream_requests_total{op="get",outcome="ok"} `,
		"# TYPE backstage_mcp_audit_records_total counter",
		"# TYPE backstage_mcp_upstream_cache_hits_total counter",
		"# TYPE go_goroutines gauge",
		"# TYPE process_resident_memory_bytes gauge",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s\n%s", want, body)
		}
	}
	if strings.Contains(body, `outcome="4xx"`) {
		t.Errorf("a 404 counted as 4xx:\n%s", body)
	}
}

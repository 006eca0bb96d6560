package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/backstage-mcp/backstage-mcp/server/audit"
	"github.com/backstage-mcp/backstage-mcp/server/internal/servertest"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// TestMalformedInitializeRefused: initialize whose params is not an
// object is refused in the wire layer with HTTP 400 and JSON-RPC -32602,
// opens no session (neither in the store nor in mcp-go), is audited in
// aggregate (a flood costs a handful of records, not one per request) and
// leaves the live heap flat.
func TestMalformedInitializeRefused(t *testing.T) {
	s, auditPath := newDemoServerYAML(t, "server:\n  sessions: {maxPerUser: 5}\n")
	h := s.Handler()
	shapes := []string{`5`, `"x"`, `[]`, `null`, `true`, `{"protocolVersion":5}`, `{"clientInfo":"x"}`}
	for _, p := range shapes {
		body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":` + p + `}`
		r := send(t, h, "POST", "", body)
		if r.code != 400 || r.sid != "" || !strings.Contains(r.body, `"code":-32602`) || !strings.Contains(r.body, `"id":1`) {
			t.Errorf("params %s: %d sid %q: %s", p, r.code, r.sid, r.body)
		}
	}
	// An initialize without params at all is just as invalid.
	if r := send(t, h, "POST", "", `{"jsonrpc":"2.0","id":1,"method":"initialize"}`); r.code != 400 || r.sid != "" {
		t.Errorf("no params: %d sid %q: %s", r.code, r.sid, r.body)
	}

	flood := func(n int) (handed int) {
		for i := range n {
			p := shapes[i%4]
			r := send(t, h, "POST", "", fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"initialize","params":%s}`, i, p))
			if r.sid != "" {
				handed++
			}
		}
		return handed
	}
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	handed := flood(100)
	at100 := heap()
	handed += flood(2000)
	at2100 := heap()
	if handed != 0 {
		t.Errorf("%d session ids handed out to malformed initializes, want 0", handed)
	}
	if n, _ := s.opts.Sessions.Count(context.Background()); n != 0 {
		t.Errorf("%d sessions recorded after the flood, want 0", n)
	}
	s.FlushAuthFailures()
	types := auditTypes(t, auditPath)
	records := 0
	for k, n := range types {
		if k != "server_start/" {
			records += n
		}
	}
	counted := 0
	for _, rec := range readAuditRecords(t, auditPath) {
		if rec.Type == "session" {
			counted += max(rec.Count, 1)
		}
	}
	total := len(shapes) + 1 + 2100
	if counted != total {
		t.Errorf("the session records count %d refusals, want %d", counted, total)
	}
	t.Logf("audit records for %d malformed initializes: %d (%v), counting %d", total, records, types, counted)
	t.Logf("live heap: start %d B, after 100: %d B, after 2,100: %d B (growth per request over the last 2,000: %.1f B)",
		before, at100, at2100, (float64(at2100)-float64(at100))/2000)
	if records > 8 {
		t.Errorf("%d audit records for the flood, want a handful (aggregated)", records)
	}
	if grow := int64(at2100) - int64(at100); grow > 256<<10 {
		t.Errorf("live heap grew %d B over 2,000 malformed initializes", grow)
	}
	// The server still works for a well-formed client.
	if r := send(t, h, "POST", "", initBody); r.code != 200 || r.sid == "" {
		t.Fatalf("valid initialize after the flood = %d: %s", r.code, r.body)
	}
}

type auditLine struct {
	Type, Decision, Reason, Tool, TraceID, CallerTraceparent string
	Count, InvalidUTF8                                       int
}

func readAuditRecords(t *testing.T, path string) []auditLine {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []auditLine
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var r auditLine
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// TestAuditInvalidUTF8: invalid UTF-8 from a caller (argument keys and
// values, tool name, clientInfo, User-Agent) never reaches the audit file
// raw: every line is valid JSON, the file is valid UTF-8, the records say
// how many invalid bytes were replaced, and the chain verifies.
func TestAuditInvalidUTF8(t *testing.T) {
	s, auditPath := newDemoServerYAML(t, "")
	h := s.Handler()
	const bad = "\xff\xfe\xc3(" // two invalid bytes, a truncated sequence
	sendUA := func(sid, body string) httpResult {
		req := httptest.NewRequest("POST", "/mcp", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("User-Agent", "agent"+bad)
		if sid != "" {
			req.Header.Set("Mcp-Session-Id", sid)
			req.Header.Set("Mcp-Protocol-Version", protoHead)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return httpResult{code: rec.Code, sid: rec.Header().Get("Mcp-Session-Id"), body: rec.Body.String()}
	}
	init := sendUA("", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"cli`+bad+`","version":"1`+bad+`"}}}`)
	if init.code != 200 || init.sid == "" {
		t.Fatalf("initialize = %d: %s", init.code, init.body)
	}
	calls := []string{
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"catalog_get_entity","arguments":{"ref":"component:default/x` + bad + `","k` + bad + `":"v` + bad + `"}}}`,
		`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"catalog_search_entities","arguments":{"text":"` + bad + `"}}}`,
		`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"catalog_get_entity` + bad + `","arguments":{"ref":"` + bad + `"}}}`,
		// Only the tool name is invalid: the record still says so.
		`{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"catalog_get_entity` + bad + `","arguments":{"ref":"component:default/x"}}}`,
	}
	for _, c := range calls {
		if r := sendUA(init.sid, c); r.code != 200 {
			t.Fatalf("call = %d: %s", r.code, r.body)
		}
	}
	b, err := os.ReadFile(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	if !utf8.Valid(b) {
		t.Errorf("the audit file is not valid UTF-8")
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	flagged := 0
	for i, line := range lines {
		if !json.Valid([]byte(line)) {
			t.Errorf("line %d is not valid JSON: %q", i+1, line)
		}
		var r auditLine
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		if r.Type == "call" {
			if r.InvalidUTF8 == 0 {
				t.Errorf("call record %d does not say invalid UTF-8 was replaced: %s", i+1, line)
			}
			flagged++
		}
	}
	if flagged != len(calls) {
		t.Errorf("%d call records, want %d:\n%s", flagged, len(calls), b)
	}
	rep, err := audit.Verify(auditPath)
	if err != nil || !rep.OK {
		t.Fatalf("audit verify: %+v, %v", rep, err)
	}
	t.Logf("%d records, %d calls flagged, verify: %+v", len(lines), flagged, rep)
}

// tracedHTTPServer is a demo server with in-memory tracing behind an
// httptest listener.
func tracedHTTPServer(t *testing.T, yaml string) (url, auditPath string, exp *tracetest.InMemoryExporter) {
	t.Helper()
	exp = tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	cfg, err := ParseConfig([]byte(yaml), "", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Audit.Path = filepath.Join(t.TempDir(), "audit.log")
	s, closeFn, err := Build(context.Background(), cfg, BuildOptions{Demo: true, LocalUser: "user:default/amelia.hart", Tracing: NewTracing(tp)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeFn)
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	s.cfg.Server.PublicURL = hs.URL
	return hs.URL, cfg.Audit.Path, exp
}

// TestCallerTraceContextNotTrusted: a caller's traceparent (here with an
// all-f trace id) does not choose the audit record's traceId; it is kept,
// validated, as callerTraceparent; the server's span starts a trace of its
// own, linked to the caller's.
func TestCallerTraceContextNotTrusted(t *testing.T) {
	const forged = "00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-01"
	for _, tc := range []struct {
		name        string
		traceparent string
		wantCaller  string
	}{
		{name: "forged all-f traceparent", traceparent: forged, wantCaller: forged},
		{name: "ordinary traceparent", traceparent: callerTraceparent, wantCaller: callerTraceparent},
		{name: "later version, extra fields cut", traceparent: "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future",
			wantCaller: "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		{name: "malformed traceparent", traceparent: "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01" + strings.Repeat("x", 300)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, auditPath, exp := tracedHTTPServer(t, "")
			c, err := client.NewStreamableHttpClient(url+"/mcp", transport.WithHTTPHeaders(map[string]string{"traceparent": tc.traceparent}))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close() })
			servertest.Connect(t, c)
			if res := servertest.Call(t, c, "catalog_get_entity", `{"ref":"component:default/orders-service"}`); res.IsError {
				t.Fatalf("call failed: %s", servertest.Text(res))
			}
			var tool tracetest.SpanStub
			for _, sp := range exp.GetSpans() {
				if sp.Name == "tools/call catalog_get_entity" {
					tool = sp
				}
			}
			serverTrace := tool.SpanContext.TraceID().String()
			callerTrace := strings.Split(tc.traceparent, "-")[1]
			if !tool.SpanContext.IsValid() || strings.EqualFold(serverTrace, callerTrace) {
				t.Fatalf("the tool span's trace %s is the caller's", serverTrace)
			}
			found := false
			for _, rec := range readAuditRecords(t, auditPath) {
				if rec.Type != "call" {
					continue
				}
				found = true
				if rec.TraceID != serverTrace {
					t.Errorf("audit traceId %q, want the server's own %s (caller sent %s)", rec.TraceID, serverTrace, tc.traceparent)
				}
				if rec.CallerTraceparent != tc.wantCaller {
					t.Errorf("audit callerTraceparent %q, want %q", rec.CallerTraceparent, tc.wantCaller)
				}
			}
			if !found {
				t.Fatal("no call record")
			}
			// The server span is a root, linked to the caller's context.
			for _, sp := range exp.GetSpans() {
				if sp.Name != "mcp POST" || sp.SpanContext.TraceID() != tool.SpanContext.TraceID() {
					continue
				}
				if sp.Parent.IsValid() {
					t.Errorf("the server span has the caller's span %s as parent", sp.Parent.SpanID())
				}
				if tc.wantCaller != "" && (len(sp.Links) != 1 || sp.Links[0].SpanContext.TraceID().String() != callerTrace) {
					t.Errorf("the server span links %v, want the caller's context", sp.Links)
				}
			}
		})
	}
}

// TestCallerTracestateNotForwarded: the caller's tracestate does not
// reach Backstage through the server's MCP request span and Backstage
// transport, as the server composes them.
func TestCallerTracestateNotForwarded(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tracing := NewTracing(tp)
	var sent http.Header
	upstream := tracing.Transport(roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sent = r.Header.Clone()
		return &http.Response{StatusCode: 204, Body: http.NoBody, Request: r}, nil
	}))
	h := tracing.HTTP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, "http://backstage.invalid/api/catalog/entities", nil)
		resp, err := upstream.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
	}))
	req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader("{}"))
	req.Header.Set("traceparent", callerTraceparent)
	req.Header.Set("tracestate", "vendor=secret-from-caller")
	h.ServeHTTP(httptest.NewRecorder(), req)
	if got := sent.Get("tracestate"); got != "" {
		t.Errorf("the caller's tracestate %q was sent to Backstage", got)
	}
	if got := sent.Get("traceparent"); got == "" || strings.Contains(got, "4bf92f3577b34da6a3ce929d0e0e4736") {
		t.Errorf("traceparent sent to Backstage %q, want one of the server's own trace", got)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestCallerTracestateForwardedWhenConfigured: with
// server.forwardCallerTracestate, a well-formed tracestate goes to
// Backstage with the server's own traceparent; a malformed one does not.
func TestCallerTracestateForwardedWhenConfigured(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tracing := NewTracing(tp)
	for _, tc := range []struct{ name, traceparent, state, want string }{
		{"well-formed", callerTraceparent, "vendor=abc,other=1", "vendor=abc,other=1"},
		{"malformed tracestate", callerTraceparent, "not a tracestate", ""},
		{"no valid traceparent", "garbage", "vendor=abc", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sent http.Header
			upstream := tracing.Transport(roundTripFunc(func(r *http.Request) (*http.Response, error) {
				sent = r.Header.Clone()
				return &http.Response{StatusCode: 204, Body: http.NoBody, Request: r}, nil
			}))
			h := withCallerTrace(tracing.HTTP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, "http://backstage.invalid/", nil)
				resp, err := upstream.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				_ = resp.Body.Close()
			})), true)
			req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader("{}"))
			req.Header.Set("traceparent", tc.traceparent)
			req.Header.Set("tracestate", tc.state)
			h.ServeHTTP(httptest.NewRecorder(), req)
			if got := sent.Get("tracestate"); got != tc.want {
				t.Errorf("tracestate sent to Backstage %q, want %q", got, tc.want)
			}
			if got := sent.Get("traceparent"); got == "" || strings.Contains(got, "4bf92f3577b34da6a3ce929d0e0e4736") {
				t.Errorf("traceparent sent to Backstage %q, want one of the server's own trace", got)
			}
		})
	}
}

func TestParseTraceparent(t *testing.T) {
	const ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, tc := range []struct {
		name string
		in   []string
		want string
	}{
		{"valid", []string{ok}, ok},
		{"all f ids are well-formed", []string{"00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-ff"}, "00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-ff"},
		{"surrounding space", []string{" " + ok + " "}, ok},
		{"two headers", []string{ok, ok}, ""},
		{"none", nil, ""},
		{"uppercase", []string{strings.ToUpper(ok)}, ""},
		{"version ff", []string{"ff" + ok[2:]}, ""},
		{"zero trace id", []string{"00-00000000000000000000000000000000-00f067aa0ba902b7-01"}, ""},
		{"zero parent id", []string{"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"}, ""},
		{"version 00 too long", []string{ok + "-x"}, ""},
		{"later version with more", []string{"cc" + ok[2:] + "-what-ever"}, "cc" + ok[2:]},
		{"later version glued", []string{"cc" + ok[2:] + "x"}, ""},
		{"short", []string{ok[:54]}, ""},
		{"bad separators", []string{strings.ReplaceAll(ok, "-", "_")}, ""},
		{"non-hex", []string{"00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01"}, ""},
		{"invalid UTF-8", []string{"00-4bf92f3577b34da6a3ce929d0e0e47\xff-00f067aa0ba902b7-01"}, ""},
		{"huge", []string{strings.Repeat("a", 1<<16)}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, sc, valid := parseTraceparent(tc.in)
			if got != tc.want || valid != (tc.want != "") || valid != sc.IsValid() {
				t.Fatalf("parseTraceparent(%.80q) = %q, %v, valid %v; want %q", tc.in, got, sc, valid, tc.want)
			}
		})
	}
}

// TestCallerTraceparentWithoutTracing: with tracing off the record has no
// traceId at all, whatever the caller sends, and keeps the caller's
// well-formed traceparent apart.
func TestCallerTraceparentWithoutTracing(t *testing.T) {
	s, auditPath := newDemoServerYAML(t, "")
	h := s.Handler()
	post := func(sid, body string) httpResult {
		req := httptest.NewRequest("POST", "/mcp", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("traceparent", "00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-01")
		if sid != "" {
			req.Header.Set("Mcp-Session-Id", sid)
			req.Header.Set("Mcp-Protocol-Version", protoHead)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return httpResult{code: rec.Code, sid: rec.Header().Get("Mcp-Session-Id"), body: rec.Body.String()}
	}
	init := post("", initBody)
	if r := post(init.sid, callBody); r.code != 200 {
		t.Fatalf("call = %d: %s", r.code, r.body)
	}
	for _, rec := range readAuditRecords(t, auditPath) {
		if rec.Type == "call" && (rec.TraceID != "" || rec.CallerTraceparent != "00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-01") {
			t.Fatalf("call record traceId %q callerTraceparent %q", rec.TraceID, rec.CallerTraceparent)
		}
	}
}

package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/backstage-mcp/backstage-mcp/server/audit"
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
	if flagged < 3 {
		t.Errorf("%d call records, want 3:\n%s", flagged, b)
	}
	rep, err := audit.Verify(auditPath)
	if err != nil || !rep.OK {
		t.Fatalf("audit verify: %+v, %v", rep, err)
	}
	t.Logf("%d records, %d calls flagged, verify: %+v", len(lines), flagged, rep)
}

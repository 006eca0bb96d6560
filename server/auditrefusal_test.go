package server

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/server/audit"
	"github.com/backstage-mcp/backstage-mcp/server/internal/redistest"
)

// TestSessionStoreDownLeavesRecords: with Redis down, a request of an
// existing session is refused 503 (fail closed) and still leaves its
// records: one call record per tools/call, batches included, naming the
// tool, its arguments and the store that failed; a session record for
// anything else.
func TestSessionStoreDownLeavesRecords(t *testing.T) {
	srv := redistest.Start(t)
	s := newRedisDemoServer(t, srv, "")
	h := s.Handler()
	init := send(t, h, "POST", "", initBody)
	if init.code != 200 || init.sid == "" {
		t.Fatalf("initialize = %d: %s", init.code, init.body)
	}
	srv.Stop()
	batch := `[{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"catalog_find_owner","arguments":{"ref":"component:default/cart-service"}}},` +
		`{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"catalog_search_entities","arguments":{"text":"probe-42"}}}]`
	for _, body := range []string{callBody, batch, listBody} {
		if r := send(t, h, "POST", init.sid, body); r.code != 503 {
			t.Fatalf("%s with Redis down = %d, want 503: %s", body, r.code, r.body)
		}
	}
	var calls []audit.Record
	sessions := 0
	for _, r := range readRecords(t, s.cfg.Audit.Path) {
		switch {
		case r.Type == audit.TypeCall:
			calls = append(calls, r)
		case r.Type == audit.TypeSession && r.Tool == "tools/list":
			sessions++
			if r.Decision != audit.DecisionRefused || r.Limiter != limiterSessionStore {
				t.Errorf("session record %+v", r)
			}
		}
	}
	if len(calls) != 3 || sessions != 1 {
		t.Fatalf("%d call records and %d session records for 3 refused calls and a refused tools/list", len(calls), sessions)
	}
	tools := []string{}
	for _, r := range calls {
		if r.Decision != audit.DecisionRefused || r.Stage != "session" || r.Limiter != limiterSessionStore ||
			r.SessionID != init.sid || r.User.Ref != "user:default/amelia.hart" || len(r.Arguments) == 0 {
			t.Errorf("refused call record %+v", r)
		}
		tools = append(tools, r.Tool)
	}
	if strings.Join(tools, " ") != "catalog_get_entity catalog_find_owner catalog_search_entities" {
		t.Errorf("tools %v", tools)
	}
	var args map[string]string
	if err := json.Unmarshal(calls[2].Arguments, &args); err != nil || args["text"] != "probe-42" {
		t.Errorf("arguments %s (%v)", calls[2].Arguments, err)
	}
}

// TestRefusedCallsBounded: a batch of more tools/calls than
// maxRefusedCalls yields maxRefusedCalls records, the last counting the
// rest; a body that is no JSON-RPC yields none.
func TestRefusedCallsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("[")
	for i := range maxRefusedCalls + 5 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami"}}`)
	}
	b.WriteString("]")
	recs, method := refusedCalls(audit.Record{}, []byte(b.String()))
	total := 0
	for _, r := range recs {
		total += max(r.Count, 1)
	}
	if len(recs) != maxRefusedCalls || total != maxRefusedCalls+5 || method != "tools/call" {
		t.Fatalf("%d records standing for %d calls (method %q)", len(recs), total, method)
	}
	if recs, _ := refusedCalls(audit.Record{}, []byte("not json")); recs != nil {
		t.Fatalf("records for a body that is no JSON-RPC: %+v", recs)
	}
}

package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// post sends one JSON-RPC body to h and returns the status and body.
func post(t *testing.T, h http.Handler, body string, headers map[string]string) (int, string, http.Header) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String(), rec.Header()
}

// initSession opens a session at protocol version v and returns its ID.
func openSession(t *testing.T, h http.Handler, v string) string {
	t.Helper()
	code, body, hdr := post(t, h, `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"`+v+`","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`, nil)
	if code != http.StatusOK {
		t.Fatalf("initialize: %d %s", code, body)
	}
	sid := hdr.Get("Mcp-Session-Id")
	if sid == "" {
		t.Fatal("no session id")
	}
	return sid
}

type rpcReply struct {
	ID     any             `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// TestInteropPerRevision: each revision the server negotiates gets its
// own JSON-RPC rules, in front of mcp-go.
func TestInteropPerRevision(t *testing.T) {
	s := newDemoServer(t)
	h := s.Handler()
	old := openSession(t, h, "2025-03-26")
	cur := openSession(t, h, "2025-11-25")
	modern := map[string]string{"Mcp-Protocol-Version": "2026-07-28"}

	cases := []struct {
		name      string
		body      string
		headers   map[string]string
		wantCode  int
		wantErr   int    // JSON-RPC error code of a single reply; 0: none
		wantBatch []any  // ids of the batch replies, in order
		wantIn    string // substring of the body
	}{
		{name: "null id", body: `{"jsonrpc":"2.0","id":null,"method":"ping"}`,
			headers: map[string]string{"Mcp-Session-Id": cur, "Mcp-Protocol-Version": "2025-11-25"}, wantCode: 400, wantErr: -32600},
		{name: "no method", body: `{"jsonrpc":"2.0","id":7}`,
			headers: map[string]string{"Mcp-Session-Id": cur, "Mcp-Protocol-Version": "2025-11-25"}, wantCode: 400, wantErr: -32600},
		{name: "empty method", body: `{"jsonrpc":"2.0","id":7,"method":""}`,
			headers: map[string]string{"Mcp-Session-Id": cur, "Mcp-Protocol-Version": "2025-11-25"}, wantCode: 400, wantErr: -32600},
		{name: "batch on 2025-03-26", body: `[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":"two","method":"tools/list"}]`,
			headers: map[string]string{"Mcp-Session-Id": old}, wantCode: 200, wantBatch: []any{float64(1), "two"}, wantIn: "catalog_get_entity"},
		{name: "batch on 2025-03-26 with header", body: `[{"jsonrpc":"2.0","id":1,"method":"ping"}]`,
			headers: map[string]string{"Mcp-Session-Id": old, "Mcp-Protocol-Version": "2025-03-26"}, wantCode: 200, wantBatch: []any{float64(1)}},
		{name: "batch of notifications", body: `[{"jsonrpc":"2.0","method":"notifications/initialized"}]`,
			headers: map[string]string{"Mcp-Session-Id": old}, wantCode: 202},
		{name: "batch with bad elements", body: `[{"jsonrpc":"2.0","id":null,"method":"ping"},{"jsonrpc":"2.0","id":3,"method":"initialize","params":{}},7]`,
			headers: map[string]string{"Mcp-Session-Id": old}, wantCode: 200, wantBatch: []any{nil, float64(3), nil}},
		{name: "empty batch", body: `[]`, headers: map[string]string{"Mcp-Session-Id": old}, wantCode: 400, wantErr: -32600},
		{name: "batch on 2025-11-25", body: `[{"jsonrpc":"2.0","id":1,"method":"ping"}]`,
			headers: map[string]string{"Mcp-Session-Id": cur, "Mcp-Protocol-Version": "2025-11-25"}, wantCode: 400, wantErr: -32600},
		{name: "2026-07-28 ping without _meta", body: `{"jsonrpc":"2.0","id":5,"method":"ping"}`,
			headers: merge(modern, map[string]string{"Mcp-Method": "ping"}), wantCode: 200, wantIn: `"result"`},
		{name: "2026-07-28 cancellation without _meta", body: `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":4}}`,
			headers: modern, wantCode: 202},
		{name: "2026-07-28 tools/list without _meta stays refused", body: `{"jsonrpc":"2.0","id":6,"method":"tools/list"}`,
			headers: merge(modern, map[string]string{"Mcp-Method": "tools/list"}), wantCode: 400},
		{name: "2026-07-28 ping with the envelope gets the removed-method answer", body: `{"jsonrpc":"2.0","id":9,"method":"ping","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`,
			headers: merge(modern, map[string]string{"Mcp-Method": "ping"}), wantCode: 404, wantErr: -32601},
		{name: "2026-07-28 ping naming another version in _meta stays refused", body: `{"jsonrpc":"2.0","id":8,"method":"ping","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2025-11-25"}}}`,
			headers: merge(modern, map[string]string{"Mcp-Method": "ping"}), wantCode: 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body, _ := post(t, h, tc.body, tc.headers)
			if code != tc.wantCode {
				t.Fatalf("status %d, want %d: %s", code, tc.wantCode, body)
			}
			if tc.wantIn != "" && !strings.Contains(body, tc.wantIn) {
				t.Fatalf("body lacks %q: %s", tc.wantIn, body)
			}
			if tc.wantErr != 0 {
				var r rpcReply
				if err := json.Unmarshal([]byte(body), &r); err != nil || r.Error == nil || r.Error.Code != tc.wantErr {
					t.Fatalf("want error %d, got %s", tc.wantErr, body)
				}
			}
			if tc.wantBatch != nil {
				var rs []rpcReply
				if err := json.Unmarshal([]byte(body), &rs); err != nil {
					t.Fatalf("batch reply is not an array: %v: %s", err, body)
				}
				if len(rs) != len(tc.wantBatch) {
					t.Fatalf("%d replies, want %d: %s", len(rs), len(tc.wantBatch), body)
				}
				for i, r := range rs {
					if r.ID != tc.wantBatch[i] {
						t.Fatalf("reply %d id %v, want %v", i, r.ID, tc.wantBatch[i])
					}
					if r.ID == nil || r.ID == float64(3) {
						if r.Error == nil || r.Error.Code != -32600 {
							t.Fatalf("reply %d: want -32600: %s", i, body)
						}
					} else if r.Error != nil || len(r.Result) == 0 {
						t.Fatalf("reply %d: want a result: %s", i, body)
					}
				}
			}
		})
	}
}

func merge(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// withMetaVersion is the interop handler's rewrite of one message: its top
// level decoded once, then withMetaFields (unparsable JSON stays as it is).
func withMetaVersion(body []byte, version string) []byte {
	m, ok := topLevel(body)
	if !ok {
		return body
	}
	return withMetaFields(body, m, methodOf(m), version)
}

func TestWithMetaVersion(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"ping no params", `{"jsonrpc":"2.0","id":1,"method":"ping"}`,
			`{"id":1,"jsonrpc":"2.0","method":"ping","params":{"_meta":{"io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`},
		{"setLevel keeps params", `{"jsonrpc":"2.0","id":1,"method":"logging/setLevel","params":{"level":"info","_meta":{"x":1}}}`,
			`{"id":1,"jsonrpc":"2.0","method":"logging/setLevel","params":{"_meta":{"io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/protocolVersion":"2026-07-28","x":1},"level":"info"}}`},
		{"present version untouched", `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2025-11-25"}}}`,
			`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2025-11-25"}}}`},
		{"other method untouched", `{"jsonrpc":"2.0","id":1,"method":"tools/call"}`, `{"jsonrpc":"2.0","id":1,"method":"tools/call"}`},
		{"params not an object untouched", `{"jsonrpc":"2.0","id":1,"method":"ping","params":[1]}`, `{"jsonrpc":"2.0","id":1,"method":"ping","params":[1]}`},
		{"not json untouched", `{"jsonrpc":`, `{"jsonrpc":`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(withMetaVersion([]byte(tc.in), "2026-07-28")); got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

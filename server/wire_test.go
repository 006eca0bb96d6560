package server

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/redact"
)

// wireWork is the server's own work on one tools/call over Streamable
// HTTP, from the request body to the bytes of the answer: body reads,
// decodes of the message, redaction calls (redact.JSON, KeyedValue, Value,
// Text; the tools' redaction of entity fields included) and encodes of the
// answer. mcp-go's own work on the message is fixed and not counted: it
// reads the body once, decodes it (envelope, id, protocol _meta, request)
// and encodes the answer once.
type wireWork struct {
	reads, decodes, encodes int64
	red                     redact.Calls
}

func (w wireWork) redactions() uint64 {
	return w.red.JSON + w.red.KeyedValue + w.red.Value + w.red.Text
}

// wireBudgets are the counts per call; a change that makes a call do more
// fails here. Lower a budget when a change makes calls do less. Before the
// wire layer was made one read (ingress and the per-revision rules each
// read the body; the chain redacted the arguments again and the audit
// record once more), get and search took 2 reads, 3 decodes, 1 encode and
// redact.JSON 4 times. The record's User-Agent (caller text) costs one
// KeyedValue since records carry it.
var wireBudgets = []struct {
	name, tool, args string
	want             wireWork
}{
	{"get", "catalog_get_entity", `{"ref":"component:default/checkout-service"}`,
		wireWork{reads: 1, decodes: 2, encodes: 1, red: redact.Calls{JSON: 2, KeyedValue: 19, Value: 1, Text: 0}}},
	{"search", "catalog_search_entities", `{"kind":"Component","limit":20}`,
		wireWork{reads: 1, decodes: 2, encodes: 1, red: redact.Calls{JSON: 2, KeyedValue: 30, Value: 21, Text: 0}}},
}

// TestWireWorkPerCall counts, per catalog_get_entity and per
// catalog_search_entities call over Streamable HTTP, the reads, decodes,
// redactions and encodes the server does, and fails when any grows past
// its budget.
func TestWireWorkPerCall(t *testing.T) {
	s := newBenchServer(t)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	post := func(session, body string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/mcp", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
		if session != "" {
			req.Header.Set("Mcp-Session-Id", session)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		return resp, string(b)
	}
	resp, _ := post("", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	session := resp.Header.Get("Mcp-Session-Id")
	post(session, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)

	snap := func() wireWork {
		return wireWork{reads: s.wire.reads.Load(), decodes: s.wire.decodes.Load(), encodes: s.wire.encodes.Load(), red: s.opts.Redactor.Calls()}
	}
	for _, c := range wireBudgets {
		body := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"` + c.tool + `","arguments":` + c.args + `}}`
		post(session, body) // warm caches (user resolution, key judgements)
		before := snap()
		_, answer := post(session, body)
		after := snap()
		if !strings.Contains(answer, `"result"`) || strings.Contains(answer, `"isError":true`) {
			t.Fatalf("%s: %s", c.name, answer)
		}
		got := wireWork{reads: after.reads - before.reads, decodes: after.decodes - before.decodes, encodes: after.encodes - before.encodes,
			red: redact.Calls{JSON: after.red.JSON - before.red.JSON, KeyedValue: after.red.KeyedValue - before.red.KeyedValue,
				Value: after.red.Value - before.red.Value, Text: after.red.Text - before.red.Text}}
		t.Logf("%-6s reads %d, decodes %d, encodes %d, redactions %d (JSON %d, KeyedValue %d, Value %d, Text %d)",
			c.name, got.reads, got.decodes, got.encodes, got.redactions(), got.red.JSON, got.red.KeyedValue, got.red.Value, got.red.Text)
		w := c.want
		if got.reads > w.reads || got.decodes > w.decodes || got.encodes > w.encodes || got.red.JSON > w.red.JSON ||
			got.red.KeyedValue > w.red.KeyedValue || got.red.Value > w.red.Value || got.red.Text > w.red.Text {
			t.Errorf("%s: %+v, budget %+v", c.name, got, w)
		}
	}
}

// httpSession is a Streamable HTTP session on one protocol revision.
type httpSession struct {
	t       *testing.T
	url     string
	client  *http.Client
	rev, id string
}

func newHTTPSession(t *testing.T, srv *httptest.Server, rev string) *httpSession {
	t.Helper()
	hs := &httpSession{t: t, url: srv.URL + "/mcp", client: srv.Client(), rev: rev}
	resp, _ := hs.post(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"` + rev + `","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	hs.id = resp.Header.Get("Mcp-Session-Id")
	hs.post(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	return hs
}

// post sends one message and returns the response and its JSON-RPC answer
// (the data of the first SSE event, or the body).
func (hs *httpSession) post(body string) (*http.Response, string) {
	hs.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, hs.url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if hs.id != "" {
		req.Header.Set("Mcp-Session-Id", hs.id)
		req.Header.Set("Mcp-Protocol-Version", hs.rev)
	}
	resp, err := hs.client.Do(req)
	if err != nil {
		hs.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	out := string(b)
	for _, line := range strings.Split(out, "\n") {
		if data, ok := strings.CutPrefix(line, "data:"); ok {
			return resp, strings.TrimSpace(data)
		}
	}
	return resp, strings.TrimSpace(out)
}

// TestResourceLinksByRevision: tool results carry resource_link content
// only for sessions on 2025-06-18 or later, whose schema has it; the text
// and structured content are the same on every revision.
func TestResourceLinksByRevision(t *testing.T) {
	s := newBenchServer(t)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	call := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"catalog_get_entity","arguments":{"ref":"component:default/checkout-service"}}}`
	for _, tc := range []struct {
		rev   string
		links bool
	}{{"2024-11-05", false}, {"2025-03-26", false}, {"2025-06-18", true}, {"2025-11-25", true}} {
		_, answer := newHTTPSession(t, srv, tc.rev).post(call)
		var msg struct {
			Result struct {
				Content []struct {
					Type string `json:"type"`
				} `json:"content"`
				IsError bool `json:"isError"`
			} `json:"result"`
		}
		if err := json.Unmarshal([]byte(answer), &msg); err != nil || msg.Result.IsError || len(msg.Result.Content) == 0 {
			t.Fatalf("%s: %v %s", tc.rev, err, answer)
		}
		links := 0
		for _, c := range msg.Result.Content {
			if c.Type == "resource_link" {
				links++
			}
		}
		if (links > 0) != tc.links {
			t.Errorf("%s: %d resource links, want links %v", tc.rev, links, tc.links)
		}
	}
}

// rpcErrorOf decodes a JSON-RPC error answer.
func rpcErrorOf(t *testing.T, answer string) (code int, data map[string]string) {
	t.Helper()
	var msg struct {
		Error *struct {
			Code int               `json:"code"`
			Data map[string]string `json:"data"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(answer), &msg); err != nil || msg.Error == nil {
		t.Fatalf("not an error answer (%v): %s", err, answer)
	}
	return msg.Error.Code, msg.Error.Data
}

// TestSpecErrorCodes: a missing (or hidden) entity read through a resource
// template answers -32002 with data.uri, -32602 with data.uri on
// 2026-07-28; a prompt whose argument is missing or malformed answers
// -32602; over HTTP and stdio alike.
func TestSpecErrorCodes(t *testing.T) {
	s := newBenchServer(t)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	const uri = "backstage://catalog/component/default/no-such-service"
	read := `{"jsonrpc":"2.0","id":7,"method":"resources/read","params":{"uri":"` + uri + `"}}`
	noArg := `{"jsonrpc":"2.0","id":8,"method":"prompts/get","params":{"name":"who-owns","arguments":{}}}`
	badArg := `{"jsonrpc":"2.0","id":9,"method":"prompts/get","params":{"name":"who-owns","arguments":{"ref":"a/b/c/d"}}}`

	hs := newHTTPSession(t, srv, "2025-06-18")
	if _, answer := hs.post(read); true {
		if code, data := rpcErrorOf(t, answer); code != -32002 || data["uri"] != uri {
			t.Errorf("HTTP resources/read of a missing entity: %d %v, want -32002 with data.uri", code, data)
		}
	}
	for _, body := range []string{noArg, badArg} {
		if _, answer := hs.post(body); true {
			if code, _ := rpcErrorOf(t, answer); code != -32602 {
				t.Errorf("HTTP %s: %d, want -32602 (%s)", body, code, answer)
			}
		}
	}

	// 2026-07-28: no session, the envelope in _meta.
	modern := &httpSession{t: t, url: srv.URL + "/mcp", client: srv.Client(), rev: "2026-07-28", id: ""}
	env := `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"t","version":"1"}}`
	req, _ := http.NewRequest(http.MethodPost, modern.url, strings.NewReader(`{"jsonrpc":"2.0","id":7,"method":"resources/read","params":{"uri":"`+uri+`",`+env+`}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2026-07-28")
	req.Header.Set("Mcp-Method", "resources/read")
	req.Header.Set("Mcp-Name", uri)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	answer := strings.TrimSpace(string(b))
	if i := strings.Index(answer, "data:"); i >= 0 {
		answer = strings.TrimSpace(strings.SplitN(answer[i+5:], "\n", 2)[0])
	}
	if code, data := rpcErrorOf(t, answer); code != -32602 || data["uri"] != uri {
		t.Errorf("2026-07-28 resources/read of a missing entity: %d %v, want -32602 with data.uri (%s)", code, data, answer)
	}

	// stdio: the input stays open until both answers are out.
	pr, pw := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- s.ServeStdio(t.Context(), pr, outW); _ = outW.Close() }()
	go func() {
		_, _ = io.WriteString(pw, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`+"\n"+
			`{"jsonrpc":"2.0","method":"notifications/initialized"}`+"\n"+read+"\n"+noArg+"\n")
	}()
	got := map[string]string{}
	sc := bufio.NewScanner(outR)
	sc.Buffer(make([]byte, 0, 1<<20), 1<<20)
	for (got["7"] == "" || got["8"] == "") && sc.Scan() {
		var head struct {
			ID json.RawMessage `json:"id"`
		}
		if json.Unmarshal(sc.Bytes(), &head) == nil {
			got[string(head.ID)] = sc.Text()
		}
	}
	_ = pw.Close()
	go func() { _, _ = io.Copy(io.Discard, outR) }()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if code, data := rpcErrorOf(t, got["7"]); code != -32002 || data["uri"] != uri {
		t.Errorf("stdio resources/read of a missing entity: %d %v, want -32002 with data.uri (%s)", code, data, got["7"])
	}
	if code, _ := rpcErrorOf(t, got["8"]); code != -32602 {
		t.Errorf("stdio prompts/get without its argument: %d, want -32602", code)
	}
}

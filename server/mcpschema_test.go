package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	sjs "github.com/santhosh-tekuri/jsonschema/v6"
)

// specRevisions are the protocol revisions the server negotiates (mcp-go
// v1.2.1's ValidProtocolVersions); each has its official schema under
// testdata/mcpschema (see the NOTICE there).
var specRevisions = []string{"2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"}

// specSchema is one revision's official schema.json, compiled on demand
// one definition at a time.
type specSchema struct {
	rev   string
	c     *sjs.Compiler
	url   string
	defs  string // "definitions" (draft-07) or "$defs" (2020-12)
	names map[string]bool
	cache map[string]*sjs.Schema
}

func loadSpecSchema(t *testing.T, rev string) *specSchema {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "mcpschema", rev, "schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		t.Fatal(err)
	}
	s := &specSchema{rev: rev, c: sjs.NewCompiler(), url: "file:///mcpschema/" + rev + "/schema.json", defs: "$defs", cache: map[string]*sjs.Schema{}}
	if _, ok := top["definitions"]; ok {
		s.defs = "definitions"
	}
	var defs map[string]json.RawMessage
	if err := json.Unmarshal(top[s.defs], &defs); err != nil {
		t.Fatal(err)
	}
	s.names = make(map[string]bool, len(defs))
	for k := range defs {
		s.names[k] = true
	}
	doc, err := sjs.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	s.c.AssertFormat()
	if err := s.c.AddResource(s.url, doc); err != nil {
		t.Fatal(err)
	}
	return s
}

// has reports whether the revision defines name.
func (s *specSchema) has(name string) bool { return s.names[name] }

// validate checks v against the definition name.
func (s *specSchema) validate(name string, v any) error {
	sch, ok := s.cache[name]
	if !ok {
		if !s.names[name] {
			return fmt.Errorf("%s defines no %s", s.rev, name)
		}
		var err error
		if sch, err = s.c.Compile(s.url + "#/" + s.defs + "/" + name); err != nil {
			return fmt.Errorf("compile %s: %w", name, err)
		}
		s.cache[name] = sch
	}
	return sch.Validate(v)
}

// resultTypes names the result definition of each method's answer.
var resultTypes = map[string]string{
	"initialize":               "InitializeResult",
	"ping":                     "EmptyResult",
	"tools/list":               "ListToolsResult",
	"tools/call":               "CallToolResult",
	"resources/list":           "ListResourcesResult",
	"resources/templates/list": "ListResourceTemplatesResult",
	"resources/read":           "ReadResourceResult",
	"resources/subscribe":      "EmptyResult",
	"resources/unsubscribe":    "EmptyResult",
	"prompts/list":             "ListPromptsResult",
	"prompts/get":              "GetPromptResult",
	"completion/complete":      "CompleteResult",
	"logging/setLevel":         "EmptyResult",
	"server/discover":          "DiscoverResult",
	"subscriptions/listen":     "SubscriptionsListenResult",
}

// checkMessage validates one message the server sent in answer to a
// request for method: a response (by the method's result type, or as a
// JSON-RPC error) or a notification (as a ServerNotification). It returns
// the kind ("result", "error" or "notification") and what is invalid.
func (s *specSchema) checkMessage(method string, msg []byte) (string, error) {
	v, err := sjs.UnmarshalJSON(bytes.NewReader(msg))
	if err != nil {
		return "", fmt.Errorf("not JSON: %w", err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return "", errors.New("not a JSON object")
	}
	switch {
	case obj["error"] != nil:
		name := "JSONRPCError"
		if s.has("JSONRPCErrorResponse") {
			name = "JSONRPCErrorResponse"
		}
		return "error", s.validate(name, v)
	case obj["result"] != nil:
		name := "JSONRPCResponse"
		if s.has("JSONRPCResultResponse") {
			name = "JSONRPCResultResponse"
		}
		if err := s.validate(name, v); err != nil {
			return "result", err
		}
		rt, ok := resultTypes[method]
		if !ok || !s.has(rt) {
			// A method this revision does not define has no result type
			// of its own: it is answered by a plain Result at most.
			rt = "Result"
		}
		return "result", s.validate(rt, obj["result"])
	case obj["method"] != nil:
		return "notification", s.validate("ServerNotification", v)
	}
	return "", errors.New("neither a response nor a notification")
}

// specCall is one request the schema test sends.
type specCall struct {
	name   string
	method string
	params string // JSON object, or "" for none
	want   string // "result", "error", or "" for either
	// legacy/modern restrict the call to revisions before 2026-07-28 or
	// to 2026-07-28 on.
	legacy, modern bool
	// httpOnly: not sent over stdio; envelope: the _meta envelope even on
	// a ping.
	httpOnly, envelope bool
	// raw, when set, is sent as the body instead of a request built from
	// method and params (the headers still name method); its id cannot
	// be known or is refused, so the answer has none (2025-11-25 on) or,
	// where the schema has no answer without one (before 2025-11-25), a
	// null id as JSON-RPC 2.0 prescribes.
	raw string
}

// specCalls drive every method the server answers, with good and bad
// arguments.
func specCalls() []specCall {
	var calls []specCall
	add := func(c specCall) { calls = append(calls, c) }
	add(specCall{name: "ping", method: "ping", want: "result", legacy: true})
	add(specCall{name: "discover", method: "server/discover", want: "result", modern: true})
	add(specCall{name: "tools/list", method: "tools/list", want: "result"})
	for i, oc := range outputCalls {
		add(specCall{name: fmt.Sprintf("tool %s #%d", oc.tool, i), method: "tools/call",
			params: `{"name":"` + oc.tool + `","arguments":` + oc.args + `}`, want: "result"})
	}
	for _, c := range []struct{ name, params, want string }{
		{"get without ref", `{"name":"catalog_get_entity","arguments":{}}`, ""},
		{"get with a number for ref", `{"name":"catalog_get_entity","arguments":{"ref":5}}`, ""},
		{"get with an unknown argument", `{"name":"catalog_get_entity","arguments":{"ref":"component:default/checkout-service","nope":1}}`, ""},
		{"get a missing entity", `{"name":"catalog_get_entity","arguments":{"ref":"component:default/no-such-service"}}`, "result"},
		{"get a malformed ref", `{"name":"catalog_get_entity","arguments":{"ref":"a/b/c/d"}}`, ""},
		{"search with a bad limit", `{"name":"catalog_search_entities","arguments":{"limit":-3}}`, ""},
		{"search with a bad filter", `{"name":"catalog_search_entities","arguments":{"filter":"((("}}`, ""},
		{"relations of a missing entity", `{"name":"catalog_get_relations","arguments":{"ref":"component:default/no-such-service"}}`, "result"},
		{"owner of a missing entity", `{"name":"catalog_find_owner","arguments":{"ref":"component:default/no-such-service"}}`, "result"},
		{"definition of a component", `{"name":"catalog_get_api_definition","arguments":{"ref":"component:default/checkout-service"}}`, ""},
		{"unknown facet", `{"name":"catalog_list_facets","arguments":{"facet":"no.such.field"}}`, ""},
		{"unknown tool", `{"name":"no_such_tool","arguments":{}}`, ""},
		{"call without a name", `{"arguments":{}}`, "error"},
		{"call with arguments not an object", `{"name":"whoami","arguments":[1]}`, ""},
	} {
		add(specCall{name: c.name, method: "tools/call", params: c.params, want: c.want})
	}
	add(specCall{name: "resources/list", method: "resources/list", want: "result"})
	add(specCall{name: "resources/templates/list", method: "resources/templates/list", want: "result"})
	add(specCall{name: "read an entity", method: "resources/read", params: `{"uri":"backstage://catalog/component/default/checkout-service"}`, want: "result"})
	add(specCall{name: "read a definition", method: "resources/read", params: `{"uri":"backstage://catalog/api/default/payments-api/definition"}`, want: "result"})
	add(specCall{name: "read a missing entity", method: "resources/read", params: `{"uri":"backstage://catalog/component/default/no-such-service"}`, want: "error"})
	add(specCall{name: "read an unknown scheme", method: "resources/read", params: `{"uri":"file:///etc/passwd"}`, want: "error"})
	add(specCall{name: "read without uri", method: "resources/read", params: `{}`, want: "error"})
	add(specCall{name: "subscribe", method: "resources/subscribe", params: `{"uri":"backstage://catalog/component/default/checkout-service"}`, legacy: true})
	add(specCall{name: "prompts/list", method: "prompts/list", want: "result"})
	add(specCall{name: "prompt with its argument", method: "prompts/get", params: `{"name":"who-owns","arguments":{"ref":"component:default/checkout-service"}}`, want: "result"})
	add(specCall{name: "prompt without its argument", method: "prompts/get", params: `{"name":"who-owns","arguments":{}}`, want: "error"})
	add(specCall{name: "prompt without arguments", method: "prompts/get", params: `{"name":"blast-radius"}`, want: "error"})
	add(specCall{name: "prompt with a malformed argument", method: "prompts/get", params: `{"name":"who-owns","arguments":{"ref":"a/b/c/d"}}`, want: "error"})
	add(specCall{name: "unknown prompt", method: "prompts/get", params: `{"name":"no-such-prompt"}`, want: "error"})
	add(specCall{name: "complete a prompt argument", method: "completion/complete", params: `{"ref":{"type":"ref/prompt","name":"who-owns"},"argument":{"name":"ref","value":"component:default/check"}}`, want: "result"})
	add(specCall{name: "complete a template variable", method: "completion/complete", params: `{"ref":{"type":"ref/resource","uri":"backstage://catalog/{kind}/{namespace}/{name}"},"argument":{"name":"kind","value":"comp"}}`, want: "result"})
	add(specCall{name: "complete an unknown prompt", method: "completion/complete", params: `{"ref":{"type":"ref/prompt","name":"no-such-prompt"},"argument":{"name":"ref","value":"x"}}`})
	// The server does not offer logging: the level cannot be set.
	add(specCall{name: "set the log level", method: "logging/setLevel", params: `{"level":"warning"}`, want: "error", legacy: true})
	add(specCall{name: "set a bad log level", method: "logging/setLevel", params: `{"level":"loud"}`, want: "error", legacy: true})
	add(specCall{name: "unknown method", method: "no/such/method", params: `{}`, want: "error"})
	// Messages whose id cannot be known or is refused.
	add(specCall{name: "unparsable JSON", method: "ping", raw: `{"jsonrpc":"2.0","id":1,"method":`, want: "error", httpOnly: true})
	add(specCall{name: "null id", method: "ping", raw: `{"jsonrpc":"2.0","id":null,"method":"ping"}`, want: "error", httpOnly: true})
	add(specCall{name: "neither method nor result", method: "ping", raw: `{"jsonrpc":"2.0","id":7}`, want: "error", httpOnly: true})
	add(specCall{name: "empty batch", method: "ping", raw: `[]`, want: "error", httpOnly: true})
	// Over HTTP the header names the revision, and a ping without the
	// envelope is answered (interop.go); over stdio nothing names it, and
	// the same line is a ping of the revisions before.
	add(specCall{name: "ping on 2026-07-28 without the envelope", method: "ping", want: "result", modern: true, httpOnly: true})
	add(specCall{name: "ping on 2026-07-28 with the envelope", method: "ping", params: "{}", want: "error", modern: true, envelope: true})
	add(specCall{name: "set the log level on 2026-07-28", method: "logging/setLevel", params: `{"level":"warning"}`, modern: true})
	return calls
}

// refusalPolicy grants catalog reads in the default namespace only: API
// definitions and people are refused, the platform namespace hidden, and
// the "low" class allows three calls an hour.
const refusalPolicy = `version: 1
roles:
  - name: narrow
    bind: { anonymous: true }
    tools: ["catalog:read"]
    entities:
      allow:
        - IN_NAMESPACE: { namespaces: [default] }
    rateClass: low
`

// refusalCalls are answered by refusals: a tool the policy does not
// grant, a hidden entity (as if missing), and calls past the rate limit.
func refusalCalls() []specCall {
	return []specCall{
		{name: "refused: definition tool not granted", method: "tools/call", params: `{"name":"catalog_get_api_definition","arguments":{"ref":"api:default/payments-api"}}`},
		{name: "refused: hidden entity", method: "tools/call", params: `{"name":"catalog_get_entity","arguments":{"ref":"component:platform/log-shipper"}}`, want: "result"},
		{name: "refused: hidden entity as a resource", method: "resources/read", params: `{"uri":"backstage://catalog/component/platform/log-shipper"}`, want: "error"},
		{name: "refused: definition resource not granted", method: "resources/read", params: `{"uri":"backstage://catalog/api/default/payments-api/definition"}`, want: "error"},
		{name: "rate limit: call 1", method: "tools/call", params: `{"name":"whoami","arguments":{}}`, want: "result"},
		{name: "rate limit: call 2", method: "tools/call", params: `{"name":"whoami","arguments":{}}`, want: "result"},
		{name: "rate limit: call 3", method: "tools/call", params: `{"name":"whoami","arguments":{}}`, want: "result"},
		{name: "rate limit: call 4", method: "tools/call", params: `{"name":"whoami","arguments":{}}`, want: "result"},
		{name: "rate limit: prompt", method: "prompts/get", params: `{"name":"who-owns","arguments":{"ref":"component:default/checkout-service"}}`},
		{name: "rate limit: read", method: "resources/read", params: `{"uri":"backstage://catalog/component/default/checkout-service"}`},
	}
}

// specSession is one client of the schema test: it sends a request and
// returns every message the server sent back for it.
type specSession interface {
	call(c specCall) [][]byte
}

// specHTTP is a Streamable HTTP client of one revision: a session
// opened with initialize before 2026-07-28, the _meta envelope and the
// request headers on it.
type specHTTP struct {
	t      *testing.T
	url    string
	client *http.Client
	rev    string
	sid    string
	id     int
}

func (h *specHTTP) modern() bool { return mcp.IsModernProtocol(h.rev) }

func (h *specHTTP) call(c specCall) [][]byte {
	h.t.Helper()
	h.id++
	method := c.method
	body, hdr := h.request(c)
	ctx, cancel := context.WithTimeout(h.t.Context(), 10*time.Second)
	defer cancel()
	if method == "subscriptions/listen" {
		// A long-lived stream: what it sends first is what there is to
		// check; the answer proper comes only when it ends.
		var short context.CancelFunc
		ctx, short = context.WithTimeout(ctx, 2*time.Second)
		defer short()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("%s: %v", method, err)
	}
	defer resp.Body.Close()
	if method == "initialize" {
		h.sid = resp.Header.Get("Mcp-Session-Id")
	}
	return readMessages(resp.Body)
}

// request builds the body and headers of one request.
func (h *specHTTP) request(c specCall) (string, map[string]string) {
	method, params := c.method, c.params
	hdr := map[string]string{"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
	if h.sid != "" {
		hdr["Mcp-Session-Id"] = h.sid
	}
	if method != "initialize" || h.modern() {
		hdr["Mcp-Protocol-Version"] = h.rev
	}
	if h.modern() {
		var p map[string]json.RawMessage
		if params != "" {
			if err := json.Unmarshal([]byte(params), &p); err != nil {
				h.t.Fatal(err)
			}
		}
		if p == nil {
			p = map[string]json.RawMessage{}
		}
		if method != "ping" || c.envelope {
			p["_meta"] = json.RawMessage(`{"io.modelcontextprotocol/protocolVersion":"` + h.rev +
				`","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"schema-test","version":"1"}}`)
		}
		b, _ := json.Marshal(p)
		params = string(b)
		hdr["Mcp-Method"] = method
		var named struct{ Name, URI string }
		_ = json.Unmarshal(b, &named)
		switch {
		case named.Name != "":
			hdr["Mcp-Name"] = named.Name
		case named.URI != "":
			hdr["Mcp-Name"] = named.URI
		}
	}
	if c.raw != "" {
		return c.raw, hdr
	}
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q`, h.id, method)
	if params != "" {
		body += `,"params":` + params
	}
	return body + "}", hdr
}

// specStdio is a stdio client of one revision: the server's ServeStdio
// on a pipe, one line per message.
type specStdio struct {
	t    *testing.T
	rev  string
	in   *io.PipeWriter
	msgs chan []byte
	id   int
	// close ends the session; mcp-go v1.2.1 keeps one stdio session per
	// process, so the next one may start only after it.
	close func()
}

func newSpecStdio(t *testing.T, s *Server, rev string) *specStdio {
	t.Helper()
	pr, pw := io.Pipe()
	outR, outW := io.Pipe()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.ServeStdio(ctx, pr, outW); _ = outW.Close() }()
	st := &specStdio{t: t, rev: rev, in: pw, msgs: make(chan []byte, 64)}
	go func() {
		sc := bufio.NewScanner(outR)
		sc.Buffer(make([]byte, 0, 1<<20), 4<<20)
		for sc.Scan() {
			st.msgs <- bytes.Clone(sc.Bytes())
		}
		close(st.msgs)
	}()
	st.close = func() {
		_ = pw.Close()
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		for range st.msgs {
		}
	}
	return st
}

// call sends one request and returns what came back up to its response
// (notifications included); a notification sent returns nothing.
func (st *specStdio) call(c specCall) [][]byte {
	st.t.Helper()
	st.id++
	h := &specHTTP{t: st.t, rev: st.rev, id: st.id}
	method := c.method
	body, _ := h.request(c)
	if strings.HasPrefix(method, "notifications/") {
		body = strings.Replace(body, fmt.Sprintf(`"id":%d,`, st.id), "", 1)
	}
	if _, err := io.WriteString(st.in, body+"\n"); err != nil {
		st.t.Fatal(err)
	}
	if strings.HasPrefix(method, "notifications/") {
		return nil
	}
	var out [][]byte
	want := fmt.Sprint(st.id)
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m, ok := <-st.msgs:
			if !ok {
				return out
			}
			out = append(out, m)
			var head struct {
				ID     json.RawMessage `json:"id"`
				Method string          `json:"method"`
			}
			if json.Unmarshal(m, &head) == nil && head.Method == "" && string(head.ID) == want {
				return out
			}
		case <-timeout:
			st.t.Errorf("stdio %s %s: no answer in 10s", st.rev, method)
			return out
		}
	}
}

// readMessages reads the JSON-RPC messages of an HTTP answer: one JSON
// body, or the data of each SSE event, until the stream ends or its
// context is done.
func readMessages(r io.Reader) [][]byte {
	br := bufio.NewReaderSize(r, 1<<16)
	first, _ := br.Peek(1)
	if len(first) == 1 && (first[0] == '{' || first[0] == '[') {
		b, _ := io.ReadAll(br)
		if b = bytes.TrimSpace(b); len(b) == 0 {
			return nil
		}
		if b[0] == '[' {
			var batch []json.RawMessage
			if json.Unmarshal(b, &batch) == nil {
				out := make([][]byte, len(batch))
				for i, m := range batch {
					out[i] = m
				}
				return out
			}
		}
		return [][]byte{b}
	}
	var out [][]byte
	for {
		line, err := br.ReadBytes('\n')
		if data, ok := bytes.CutPrefix(line, []byte("data:")); ok {
			if data = bytes.TrimSpace(data); len(data) > 0 {
				out = append(out, data)
			}
		}
		if err != nil {
			return out
		}
	}
}

// specTally counts the messages validated and the invalid ones.
type specTally struct {
	messages, invalid int
	nullIDs           int // answers with a null id before 2025-11-25 (see specCall.raw)
	byRev             map[string]int
	failures          []string
}

// check validates the messages of one call and records what is wrong.
func (st *specTally) check(t *testing.T, s *specSchema, transport string, c specCall, msgs [][]byte) {
	t.Helper()
	if len(msgs) == 0 && c.method != "subscriptions/listen" {
		st.failures = append(st.failures, fmt.Sprintf("%s %s %s: no answer", s.rev, transport, c.name))
		return
	}
	answered, acked := false, false
	for _, m := range msgs {
		if c.raw != "" && !s.has("JSONRPCErrorResponse") {
			// Before 2025-11-25 the schema requires a string or integer
			// id: check that it is null, then the rest of the message.
			var head map[string]json.RawMessage
			if json.Unmarshal(m, &head) == nil && string(head["id"]) == "null" {
				head["id"] = json.RawMessage("0")
				m, _ = json.Marshal(head)
				st.nullIDs++
			} else {
				st.failures = append(st.failures, fmt.Sprintf("%s %s %s: want a null id: %.300s", s.rev, transport, c.name, m))
			}
		}
		kind, err := s.checkMessage(c.method, m)
		st.messages++
		st.byRev[s.rev]++
		if err != nil {
			st.invalid++
			st.failures = append(st.failures, fmt.Sprintf("%s %s %s: %s invalid: %v\n  message: %.600s", s.rev, transport, c.name, kind, err, m))
			continue
		}
		if kind == "notification" {
			acked = acked || bytes.Contains(m, []byte(`"notifications/subscriptions/acknowledged"`))
			continue
		}
		answered = true
		if c.method == "subscriptions/listen" && !acked {
			st.failures = append(st.failures, fmt.Sprintf("%s %s %s: its result came before its acknowledgement", s.rev, transport, c.name))
		}
		if c.want != "" && kind != c.want {
			st.failures = append(st.failures, fmt.Sprintf("%s %s %s: answered %s, want %s: %.400s", s.rev, transport, c.name, kind, c.want, m))
		}
	}
	if c.method == "subscriptions/listen" && !acked {
		st.failures = append(st.failures, fmt.Sprintf("%s %s %s: no acknowledgement among %d messages: %q", s.rev, transport, c.name, len(msgs), msgs))
	}
	if !answered && c.method != "subscriptions/listen" {
		st.failures = append(st.failures, fmt.Sprintf("%s %s %s: no response among %d messages", s.rev, transport, c.name, len(msgs)))
	}
}

// TestAnswersMatchSpecSchema: on every protocol revision the server
// negotiates, over Streamable HTTP and stdio, every message the server
// sends in answer to every method it serves (with good and bad arguments,
// refusals and missing entities included) validates against that
// revision's official schema.json: results by the method's result type,
// errors as JSON-RPC errors, notifications as server notifications.
func TestAnswersMatchSpecSchema(t *testing.T) {
	s, _ := newDemoServerYAML(t, unlimitedRates+unlimitedIngress)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	policyFile := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policyFile, []byte(refusalPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	// narrowServer serves refusalPolicy; a new one for each revision, as
	// its rate limit is spent by the first.
	narrowServer := func() *httptest.Server {
		narrow, _ := newDemoServerYAML(t, "policy:\n  file: "+policyFile+"\nrateLimits:\n  classes:\n    default: {unlimited: true}\n    low: {requests: 1, per: 1h, burst: 6}\n"+unlimitedIngress)
		nsrv := httptest.NewServer(narrow.Handler())
		t.Cleanup(nsrv.Close)
		return nsrv
	}

	st := &specTally{byRev: map[string]int{}}
	// run drives one session through calls.
	run := func(sch *specSchema, transport string, sess specSession, calls []specCall) {
		modern := mcp.IsModernProtocol(sch.rev)
		if !modern {
			init := specCall{name: "initialize", method: "initialize", want: "result",
				params: `{"protocolVersion":"` + sch.rev + `","capabilities":{},"clientInfo":{"name":"schema-test","version":"1"}}`}
			st.check(t, sch, transport, init, sess.call(init))
			_ = sess.call(specCall{method: "notifications/initialized"})
		}
		for _, c := range calls {
			if (c.legacy && modern) || (c.modern && !modern) || (c.httpOnly && transport != "http") {
				continue
			}
			st.check(t, sch, transport, c, sess.call(c))
		}
	}
	for _, rev := range specRevisions {
		sch := loadSpecSchema(t, rev)
		httpSession := func(srv *httptest.Server) *specHTTP {
			return &specHTTP{t: t, url: srv.URL + "/mcp", client: srv.Client(), rev: rev}
		}
		calls := specCalls()
		if mcp.IsModernProtocol(rev) {
			// mcp-go orders (stdio) or keeps (HTTP) the acknowledgement by
			// chance: 20 listens catch a race that loses it.
			for i := range 20 {
				calls = append(calls, specCall{name: fmt.Sprintf("subscriptions/listen #%d", i), method: "subscriptions/listen",
					params: `{"notifications":{"toolsListChanged":true,"resourcesListChanged":true,"promptsListChanged":true}}`})
			}
		} else {
			bad := specCall{name: "initialize without params", method: "initialize", want: "error"}
			st.check(t, sch, "http", bad, httpSession(srv).call(bad))
		}
		run(sch, "http", httpSession(srv), calls)
		run(sch, "http", httpSession(narrowServer()), refusalCalls())
		stdio := newSpecStdio(t, s, rev)
		run(sch, "stdio", stdio, calls)
		stdio.close()
	}
	t.Logf("validated %d messages (%v), %d invalid; %d with a JSON-RPC null id before 2025-11-25", st.messages, st.byRev, st.invalid, st.nullIDs)
	for _, f := range st.failures {
		t.Error(f)
	}
}

// TestSpecSchemaRejects: the schema test's validator finds what each
// revision forbids: resource_link content before 2025-06-18, a result
// without resultType on 2026-07-28, a null id, a CallToolResult without
// content, an error without a code.
func TestSpecSchemaRejects(t *testing.T) {
	link := `{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"resource_link","uri":"backstage://catalog/component/default/x","name":"x"}]}}`
	cases := []struct {
		rev, method, msg string
		valid            bool
	}{
		{"2024-11-05", "tools/call", link, false},
		{"2025-03-26", "tools/call", link, false},
		{"2025-06-18", "tools/call", link, true},
		{"2025-11-25", "tools/call", link, true},
		{"2026-07-28", "tools/call", link, false},
		{"2026-07-28", "tools/call", strings.Replace(link, `"result":{`, `"result":{"resultType":"complete",`, 1), true},
		{"2026-07-28", "ping", `{"jsonrpc":"2.0","id":1,"result":{}}`, false},
		{"2025-11-25", "ping", `{"jsonrpc":"2.0","id":1,"result":{}}`, true},
		{"2024-11-05", "tools/call", `{"jsonrpc":"2.0","id":1,"result":{}}`, false},
		{"2024-11-05", "ping", `{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"x"}}`, false},
		{"2025-11-25", "ping", `{"jsonrpc":"2.0","id":1,"error":{"message":"x"}}`, false},
		{"2025-11-25", "ping", `{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"x"}}`, true},
		{"2025-06-18", "notifications", `{"jsonrpc":"2.0","method":"notifications/no-such"}`, false},
	}
	schemas := map[string]*specSchema{}
	for _, tc := range cases {
		sch := schemas[tc.rev]
		if sch == nil {
			sch = loadSpecSchema(t, tc.rev)
			schemas[tc.rev] = sch
		}
		_, err := sch.checkMessage(tc.method, []byte(tc.msg))
		if (err == nil) != tc.valid {
			t.Errorf("%s %s: valid %v, want %v (%v): %s", tc.rev, tc.method, err == nil, tc.valid, err, tc.msg)
		}
	}
}

package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/redact"
	"github.com/backstage-mcp/backstage-mcp/redact/corpus"
	"github.com/backstage-mcp/backstage-mcp/server/audit"
	"github.com/backstage-mcp/backstage-mcp/server/chain"
	"github.com/backstage-mcp/backstage-mcp/server/identity"
	"github.com/backstage-mcp/backstage-mcp/server/internal/buildseam"
	"github.com/backstage-mcp/backstage-mcp/server/internal/servertest"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog/memcatalog"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
)

// chainServer is a server on an in-memory catalog with the given policy
// and config, its audit file and its log output.
type chainServer struct {
	s     *Server
	audit string
	logs  *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

func newChainServer(t testing.TB, entities []map[string]any, policyYAML, configYAML string) *chainServer {
	t.Helper()
	cfg, err := ParseConfig([]byte(configYAML), "cfg", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	mc, err := memcatalog.New(entities, memcatalog.WithToken("tok"))
	if err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.New(catalog.Config{BaseURL: DemoBaseURL, Token: catalog.StaticToken("tok"),
		HTTPClient: &http.Client{Transport: buildseam.InProcessTransport{Handler: mc.Handler()}}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "audit.log")
	acfg := audit.DefaultConfig()
	acfg.Path, acfg.Sync = path, audit.SyncNone
	alog, err := audit.Open(acfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = alog.Close() })
	pols, err := NewStaticPolicyStore([]byte(policyYAML), "test policy")
	if err != nil {
		t.Fatal(err)
	}
	r, err := redact.New()
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	p := identity.InsecureLocalUser("user:default/amelia.hart")
	s, err := New(cfg, Options{Catalog: cat, Redactor: r, Policy: pols, Audit: alog,
		Logger:         slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		LocalPrincipal: func(context.Context) (*identity.Principal, error) { return p, nil }})
	if err != nil {
		t.Fatal(err)
	}
	return &chainServer{s: s, audit: path, logs: logs}
}

func (cs *chainServer) records(t testing.TB) []audit.Record {
	t.Helper()
	b, err := os.ReadFile(cs.audit)
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Record
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var r audit.Record
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if r.Type == audit.TypeCall {
			out = append(out, r)
		}
	}
	return out
}

const oneToolPolicy = `version: 1
roles:
  - name: everyone
    bind: { anonymous: true }
    tools: ["catalog_get_entity"]
    entities:
      allow:
        - IN_NAMESPACE: { namespaces: [default] }
`

var chainEntities = []map[string]any{{
	"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
	"metadata": map[string]any{"name": "orders", "namespace": "default"},
	"spec":     map[string]any{"type": "service", "lifecycle": "production", "owner": "group:default/team-a"},
}}

// TestCallChainOrder: granted, hidden and unknown tools all run the same
// stages in the documented order; refused ones stop at tool authorization
// and still get their audit record.
func TestCallChainOrder(t *testing.T) {
	cs := newChainServer(t, chainEntities, oneToolPolicy, "")
	var mu sync.Mutex
	var stages []string
	cs.s.chain.Observe = func(_ context.Context, st string) {
		mu.Lock()
		defer mu.Unlock()
		stages = append(stages, st)
	}
	c, err := client.NewInProcessClient(cs.s.MCP())
	if err != nil {
		t.Fatal(err)
	}
	servertest.Connect(t, c)
	take := func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := stages
		stages = nil
		return out
	}

	res := servertest.Call(t, c, "catalog_get_entity", `{"ref":"component:default/orders"}`)
	if res.IsError {
		t.Fatalf("granted call failed: %s", servertest.Text(res))
	}
	want := []string{chain.StageGrant, chain.StageRateLimit, chain.StageAuthz, chain.StageAudit, chain.StageTool, chain.StageEgress, chain.StageFinish}
	if got := take(); !slices.Equal(got, want) {
		t.Fatalf("granted call stages = %v, want %v", got, want)
	}

	refused := []string{chain.StageGrant, chain.StageRateLimit, chain.StageAuthz, chain.StageFinish}
	for _, tool := range []string{"catalog_search_entities", "no_such_tool"} {
		req := mcp.CallToolRequest{}
		req.Params.Name = tool
		_, err := c.CallTool(context.Background(), req)
		if err == nil || !strings.Contains(err.Error(), "not found") {
			t.Fatalf("%s: err = %v, want tool not found", tool, err)
		}
		if got := take(); !slices.Equal(got, refused) {
			t.Fatalf("%s stages = %v, want %v", tool, got, refused)
		}
	}
	if left := cs.s.pending.len(); left != 0 {
		t.Fatalf("%d call states left behind after the calls ended", left)
	}
	recs := cs.records(t)
	if len(recs) != 3 {
		t.Fatalf("audit call records = %d, want 3", len(recs))
	}
	if recs[1].Decision != audit.DecisionHiddenByPolicy || !strings.HasPrefix(recs[1].Reason, "tool not granted") {
		t.Fatalf("hidden tool record = %+v", recs[1])
	}
	if recs[2].Decision != audit.DecisionRefused || recs[2].Reason != "unknown tool" {
		t.Fatalf("unknown tool record = %+v", recs[2])
	}
}

// TestRefusedCallsAreRateLimited: calls to hidden and unknown tools spend
// the caller's budget like any other call.
func TestRefusedCallsAreRateLimited(t *testing.T) {
	cfg := "rateLimits:\n  classes:\n    default: {requests: 3, per: 1h, burst: 3}\n"
	cs := newChainServer(t, chainEntities, oneToolPolicy, cfg)
	c, err := client.NewInProcessClient(cs.s.MCP())
	if err != nil {
		t.Fatal(err)
	}
	servertest.Connect(t, c)
	for i := range 5 {
		req := mcp.CallToolRequest{}
		req.Params.Name = []string{"no_such_tool", "catalog_search_entities"}[i%2]
		_, _ = c.CallTool(context.Background(), req)
	}
	res := servertest.Call(t, c, "catalog_get_entity", `{"ref":"component:default/orders"}`)
	if !res.IsError || !strings.Contains(servertest.Text(res), "rate limited") {
		t.Fatalf("granted call after 5 refused ones: %s, want rate limited", servertest.Text(res))
	}
	var limited int
	for _, r := range cs.records(t) {
		if r.Decision == audit.DecisionRateLimited {
			limited++
		}
	}
	if limited != 3 {
		t.Fatalf("rate-limited records = %d, want 3 (two refused calls and the granted one)", limited)
	}
}

// seed is one secret of the labelled corpus, with the forms in which it
// could appear in output bytes.
type seed struct {
	typ, value string
	// standalone: redact finds it with no key as context, so it must not
	// leave from any field or argument. Secrets that only a key name
	// reveals (a bare random string) are seeded under credential keys.
	standalone bool
	// keyed: twelve or more characters, so a generic secret name
	// (client-secret) must reveal it. A shorter one that is not standalone
	// may be a secret only by its position in the corpus (the word "guest"
	// as a URL's password); it is seeded under a password name, which
	// proves a password, and searched for as a whole word, since
	// "password" is also part of that key's name.
	keyed bool
}

// wordAt reports whether b[i:i+n] stands alone: no letter, digit, '-' or
// '_' right before or after it.
func wordAt(b []byte, i, n int) bool {
	id := func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
	}
	return (i == 0 || !id(b[i-1])) && (i+n == len(b) || !id(b[i+n]))
}

// leakIndex returns where a needle of sd occurs in b, or -1.
func (s seed) leakIndex(b []byte, n string) int {
	if s.standalone || s.keyed {
		return bytes.Index(b, []byte(n))
	}
	for off := 0; ; {
		i := bytes.Index(b[off:], []byte(n))
		if i < 0 {
			return -1
		}
		if wordAt(b, off+i, len(n)) {
			return off + i
		}
		off += i + 1
	}
}

func (s seed) needles() []string {
	enc, _ := json.Marshal(s.value)
	js := string(enc[1 : len(enc)-1])
	out := []string{s.value, js}
	if len(js) >= 24 {
		mid := len(js)/2 - 6
		out = append(out, js[mid:mid+12])
	}
	return out
}

func corpusSeeds(t *testing.T, perType int) []seed {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "testdata", "redact", "corpus.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	cases, err := corpus.Read(f)
	if err != nil {
		t.Fatal(err)
	}
	r, err := redact.New()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	var out []seed
	for _, c := range cases {
		for _, s := range c.Secrets {
			if seen[s.Type] >= perType || strings.TrimSpace(s.Value) == "" {
				continue
			}
			seen[s.Type]++
			v, _, err := r.KeyedValue("", s.Value)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, seed{typ: s.Type, value: s.Value, standalone: v != s.Value, keyed: len(s.Value) >= 12})
		}
	}
	return out
}

// TestSeededSecretsLeaveNoChannel seeds secrets of the labelled corpus into
// every entity field and every tool argument (argument keys included),
// calls every tool, resource, prompt and completion over Streamable HTTP
// (secrets also as tool names and resource URIs, which mcp-go quotes in
// its own errors), and searches every byte the
// server wrote — HTTP answers, the audit file, the log lines and /metrics
// — for any of them.
func TestSeededSecretsLeaveNoChannel(t *testing.T) {
	seeds := corpusSeeds(t, 1<<20) // every secret of the corpus
	var ents []map[string]any
	for i, sd := range seeds {
		name := fmt.Sprintf("svc-%03d", i)
		meta := map[string]any{
			"name": name, "namespace": "default",
			"annotations": map[string]any{"acme.io/db-password": sd.value},
		}
		if sd.standalone || sd.keyed {
			meta["annotations"].(map[string]any)["acme.io/client-secret"] = sd.value
		}
		spec := map[string]any{"type": "service", "lifecycle": "production", "owner": "group:default/team-a"}
		if sd.standalone {
			meta["title"] = sd.value
			meta["description"] = "Deploy with " + sd.value + " and restart."
			meta["annotations"].(map[string]any)["acme.io/note"] = sd.value
			meta["links"] = []any{map[string]any{"url": "https://wiki.example.com/x?note=" + sd.value, "title": sd.value}}
			spec["notes"] = map[string]any{"setup": sd.value}
		}
		ents = append(ents, map[string]any{"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": meta, "spec": spec})
		if sd.standalone {
			ents = append(ents, map[string]any{"apiVersion": "backstage.io/v1alpha1", "kind": "API",
				"metadata": map[string]any{"name": fmt.Sprintf("api-%03d", i), "namespace": "default"},
				"spec": map[string]any{"type": "openapi", "lifecycle": "production", "owner": "group:default/team-a",
					"definition": "openapi: 3.0.0\ninfo:\n  title: x\n  description: call it with " + sd.value + "\npaths: {}\n"}})
		}
	}
	policy := `version: 1
roles:
  - name: everyone
    bind: { anonymous: true }
    tools: ["catalog:read", "catalog:api-definitions", "catalog:read:users"]
    entities:
      allow:
        - IN_NAMESPACE: { namespaces: [default] }
`
	cs := newChainServer(t, ents, policy, "rateLimits:\n  classes:\n    default: {unlimited: true}\n  agent: {unlimited: true}\n  global: {unlimited: true}\n"+
		"server:\n  ingressRate: {unlimited: true}\n  ingressKiBRate: {unlimited: true}\n")
	srv := httptest.NewServer(cs.s.Handler())
	defer srv.Close()

	var out bytes.Buffer // every byte of every HTTP answer
	var session string
	id := 0
	post := func(method string, params any) {
		id++
		body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/mcp", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if session != "" {
			req.Header.Set("Mcp-Session-Id", session)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		if s := resp.Header.Get("Mcp-Session-Id"); s != "" {
			session = s
		}
		for k, vs := range resp.Header {
			out.WriteString(k + ": " + strings.Join(vs, ",") + "\n")
		}
		if _, err := io.Copy(&out, resp.Body); err != nil {
			t.Fatal(err)
		}
	}
	post("initialize", map[string]any{"protocolVersion": "2025-06-18", "capabilities": map[string]any{},
		"clientInfo": map[string]any{"name": "seeded", "version": "1"}})
	call := func(tool string, args map[string]any) {
		post("tools/call", map[string]any{"name": tool, "arguments": args})
	}

	// Every seed sits in an entity, and every standalone seed is passed as
	// every argument. Under the race detector, which makes this test take
	// minutes, only two standalone seeds per rule are (the argument paths
	// do not depend on the secret's format); `make test` also runs the
	// whole test without it.
	perRule := 1 << 20
	if raceOn {
		perRule = 2
	}
	asArg, argSeeds := map[string]int{}, 0
	for i, sd := range seeds {
		v := sd.value
		call("catalog_get_entity", map[string]any{"ref": fmt.Sprintf("component:default/svc-%03d", i), "detail": "full"})
		if sd.standalone {
			asArg[sd.typ]++
		}
		if sd.standalone && asArg[sd.typ] <= perRule {
			argSeeds++
			call("catalog_get_api_definition", map[string]any{"ref": fmt.Sprintf("api:default/api-%03d", i)})
			// The secret as every argument value and as an argument key.
			call("catalog_get_entity", map[string]any{"ref": "component:default/" + v})
			call("catalog_get_entity", map[string]any{"kind": v, "name": v, "namespace": v})
			call("catalog_search_entities", map[string]any{"text": v, "owner": v, "system": v, "type": v, "lifecycle": v, "tags": []any{v}})
			call("catalog_search_entities", map[string]any{"cursor": v})
			call("catalog_get_relations", map[string]any{"ref": v, "relations": []any{v}, "direction": v})
			call("catalog_find_owner", map[string]any{"ref": v})
			call("catalog_list_facets", map[string]any{"facet": v, "kind": v})
			call("catalog_get_entity", map[string]any{"ref": "component:default/svc-000", v: v})
			// The secret as a tool name: mcp-go answers "tool not found" itself.
			call(v, map[string]any{})
			// Resources, prompts and completions with the secret as input.
			post("resources/read", map[string]any{"uri": "backstage://catalog/component/default/" + v})
			post("resources/read", map[string]any{"uri": "backstage://catalog/api/default/" + v + "/definition"})
			post("prompts/get", map[string]any{"name": "who-owns", "arguments": map[string]any{"ref": "component:default/" + v}})
			post("completion/complete", map[string]any{"ref": map[string]any{"type": "ref/resource", "uri": "backstage://catalog/{kind}/{namespace}/{name}"},
				"argument": map[string]any{"name": "name", "value": v}})
		}
		// Resources that hold the seeded entity and definition.
		post("resources/read", map[string]any{"uri": fmt.Sprintf("backstage://catalog/component/default/svc-%03d", i)})
		if sd.standalone {
			post("resources/read", map[string]any{"uri": fmt.Sprintf("backstage://catalog/api/default/api-%03d/definition", i)})
		}
	}
	// Every seeded entity through search, a page at a time, in the
	// summary and with the seeded fields projected.
	svcName := regexp.MustCompile(`svc-[0-9]{3}`)
	nextCursor := regexp.MustCompile(`nextCursor\\?":\\?"([^"\\]+)`)
	searched := map[string]bool{}
	for _, fields := range [][]any{nil, {"metadata.annotations", "metadata.description", "metadata.title", "metadata.links", "spec.notes"}} {
		cursor := ""
		for range 1000 {
			args := map[string]any{"text": "svc-", "limit": 50}
			if fields != nil {
				args["fields"] = fields
			}
			if cursor != "" {
				args["cursor"] = cursor
			}
			before := out.Len()
			call("catalog_search_entities", args)
			page := out.Bytes()[before:]
			for _, m := range svcName.FindAll(page, -1) {
				searched[string(m)] = true
			}
			m := nextCursor.FindSubmatch(page)
			if m == nil {
				break
			}
			cursor = string(m[1])
		}
	}
	if len(searched) != len(seeds) {
		t.Fatalf("search pages held %d of the %d seeded entities", len(searched), len(seeds))
	}
	for _, facet := range []string{"metadata.annotations.acme.io/db-password", "metadata.annotations.acme.io/client-secret",
		"metadata.annotations.acme.io/note", "metadata.title", "spec.notes.setup"} {
		call("catalog_list_facets", map[string]any{"facet": facet})
	}
	call("whoami", map[string]any{})
	post("resources/list", map[string]any{})
	for _, prefix := range []string{"svc", "api", "s", "a"} {
		post("completion/complete", map[string]any{"ref": map[string]any{"type": "ref/prompt", "name": "who-owns"},
			"argument": map[string]any{"name": "ref", "value": prefix}})
	}

	mrec := httptest.NewRecorder()
	cs.s.AdminHandler().ServeHTTP(mrec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	auditBytes, err := os.ReadFile(cs.audit)
	if err != nil {
		t.Fatal(err)
	}
	channels := map[string][]byte{
		"http answers": out.Bytes(), "audit file": auditBytes, "logs": cs.logs.Bytes(), "metrics": mrec.Body.Bytes(),
	}
	if n := len(cs.records(t)); n < len(seeds)*2 {
		t.Fatalf("only %d audit call records", n)
	}
	if !bytes.Contains(out.Bytes(), []byte("[REDACTED:")) {
		t.Fatal("no redaction marker in any answer: the seeds did not reach the output")
	}
	leaks := 0
	for _, sd := range seeds {
		for name, b := range channels {
			for _, n := range sd.needles() {
				if i := sd.leakIndex(b, n); i >= 0 {
					leaks++
					if leaks <= 20 {
						lo, hi := max(0, i-120), min(len(b), i+len(n)+40)
						t.Errorf("%s secret (%s) leaves through %s: …%s…", sd.typ, n, name, b[lo:hi])
					}
					break
				}
			}
		}
	}
	standalone, keyed := 0, 0
	for _, sd := range seeds {
		if sd.standalone {
			standalone++
		} else if sd.keyed {
			keyed++
		}
	}
	types := map[string]bool{}
	for _, sd := range seeds {
		types[sd.typ] = true
	}
	t.Logf("%d seeds (%d standalone, %d not standalone, of 12 or more characters: under a secret name too, %d shorter: under a password name only) from %d rules, %d of them as every argument; %d channel bytes searched; %d leaks",
		len(seeds), standalone, keyed, len(seeds)-standalone-keyed, len(types), argSeeds, out.Len()+len(auditBytes)+len(cs.logs.Bytes())+mrec.Body.Len(), leaks)
}

// TestEgressCatchesWhatAToolLeaks: a tool that forgets to redact (in its
// structured content, its text or an error) and a log line that quotes a
// secret still leave nothing: egress is the last step on every channel.
func TestEgressCatchesWhatAToolLeaks(t *testing.T) {
	cs := newChainServer(t, chainEntities, oneToolPolicy, "")
	const secret = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
	leaky := func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		cs.s.log.InfoContext(ctx, "tool saw "+secret, "token", secret, "err", fmt.Errorf("upstream said %s", secret))
		return mcp.NewToolResultStructured(map[string]any{"note": secret, "nested": []any{map[string]any{"password": "hunter2-Xy9!kq"}}},
			"note: "+secret), nil
	}
	erring := func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultError("not found: component:default/" + secret), nil
	}
	ctx := context.Background()
	req := mcp.CallToolRequest{}
	req.Params.Name = "catalog_get_entity"
	req.Params.RawArguments = json.RawMessage(`{"ref":"component:default/orders"}`)
	ctx = chain.WithScope(ctx, cs.s.grant(ctx))
	res, err := cs.s.call(ctx, req, leaky)
	if err != nil || res.IsError {
		t.Fatalf("leaky call: %v %+v", err, res)
	}
	b, _ := json.Marshal(res)
	if bytes.Contains(b, []byte(secret)) || bytes.Contains(b, []byte("hunter2")) {
		t.Fatalf("secret left in the result: %s", b)
	}
	if !bytes.Contains(b, []byte("[REDACTED:")) {
		t.Fatalf("no redaction marker: %s", b)
	}
	res, _ = cs.s.call(ctx, req, erring)
	if b, _ := json.Marshal(res); bytes.Contains(b, []byte(secret)) {
		t.Fatalf("secret left in the error: %s", b)
	}
	auditBytes, _ := os.ReadFile(cs.audit)
	for name, ch := range map[string][]byte{"audit": auditBytes, "logs": cs.logs.Bytes()} {
		if bytes.Contains(ch, []byte(secret)) {
			t.Fatalf("secret in %s: %s", name, ch)
		}
	}
	if !bytes.Contains(cs.logs.Bytes(), []byte("tool saw [REDACTED:")) {
		t.Fatalf("log line not redacted as expected: %s", cs.logs.Bytes())
	}
}

// TestOneEgressIsStructural: in package server, only egress.go appends to
// the audit log; every other record goes through appendAudit, so a new
// record type or channel cannot skip redaction.
func TestOneEgressIsStructural(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || f == "egress.go" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "Audit.Append(") {
				t.Errorf("%s:%d appends to the audit log without egress (use appendAudit): %s", f, i+1, strings.TrimSpace(line))
			}
		}
	}
}

// TestArgumentRedactionsAreCounted: a secret an agent sends is counted in
// the call's audit record, over HTTP too, where ingress has already
// replaced it before the chain sees the arguments.
func TestArgumentRedactionsAreCounted(t *testing.T) {
	cs := newChainServer(t, chainEntities, oneToolPolicy, "")
	srv := httptest.NewServer(cs.s.Handler())
	defer srv.Close()
	const secret = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"
	var session string
	for i, body := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`,
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"catalog_get_entity","arguments":{"ref":"component:default/` + secret + `"}}}`,
	} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/mcp", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if session != "" {
			req.Header.Set("Mcp-Session-Id", session)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if i == 0 {
			session = resp.Header.Get("Mcp-Session-Id")
		}
	}
	recs := cs.records(t)
	if len(recs) != 1 {
		t.Fatalf("call records = %d, want 1", len(recs))
	}
	if recs[0].Redactions["stripe-secret-key"] < 1 {
		t.Fatalf("argument redaction not counted: %+v (arguments %s)", recs[0].Redactions, recs[0].Arguments)
	}
}

// TestOneDoorIsStructural: in package server, only door.go touches
// mcp-go's hooks, its tool and prompt filters and its tool middleware, so
// that a call cannot enter the chain through a second door.
func TestOneDoorIsStructural(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	hooks := regexp.MustCompile(`mcpserver\.(Hooks|WithHooks|WithToolFilter|WithPromptFilter|WithToolHandlerMiddleware|WithResourceHandlerMiddleware)\b|\.Add(Before|After|On)[A-Z]\w*\(`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || f == "door.go" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if hooks.MatchString(line) {
				t.Errorf("%s:%d touches mcp-go's hooks outside door.go: %s", f, i+1, strings.TrimSpace(line))
			}
		}
	}
}

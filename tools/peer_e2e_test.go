//go:build e2e

package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/e2e/harness"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// peer is Backstage's own MCP endpoint (plugin-mcp-actions-backend), with
// the text of every answer counted.
type peer struct {
	t          *testing.T
	c          *client.Client
	get, query string
	listBytes  int
	// modelBytes is the part of tools/list a client passes its model:
	// each tool's name, title, description and input schema.
	modelBytes int
	calls      int
	bytes      int
	text       strings.Builder
}

func startBackstage(t *testing.T) *harness.Backstage {
	t.Helper()
	wd, _ := os.Getwd()
	root, err := harness.FindRepoRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	bs, stop, err := harness.StartProcess(ctx, harness.Options{RepoRoot: root, LogFile: filepath.Join(t.TempDir(), "backstage.log")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return bs
}

func dialPeer(t *testing.T, bs *harness.Backstage) *peer {
	t.Helper()
	ctx := context.Background()
	c, err := client.NewStreamableHttpClient(bs.BaseURL+"/api/mcp-actions/v1", transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + bs.Token}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	req.Params.ClientInfo = mcp.Implementation{Name: "question-suite", Version: "1"}
	if _, err := c.Initialize(ctx, req); err != nil {
		t.Fatal(err)
	}
	tl, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(tl)
	p := &peer{t: t, c: c, listBytes: len(b), modelBytes: modelView(t, b)}
	for _, tool := range tl.Tools {
		switch {
		case strings.HasSuffix(tool.Name, "get-catalog-entity"):
			p.get = tool.Name
		case strings.HasSuffix(tool.Name, "query-catalog-entities"):
			p.query = tool.Name
		}
	}
	if p.get == "" || p.query == "" {
		t.Fatalf("the peer lists no get/query tools: %s", b)
	}
	if os.Getenv("PEER_SCHEMAS") != "" {
		t.Logf("peer tools/list: %s", b)
	}
	return p
}

// modelView measures what of a tools/list result a client passes its
// model: each tool's name, title, description and input schema (output
// schemas and annotations are for the client).
func modelView(t *testing.T, list []byte) int {
	t.Helper()
	var l struct {
		Tools []map[string]json.RawMessage `json:"tools"`
	}
	if err := json.Unmarshal(list, &l); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, tool := range l.Tools {
		v := map[string]json.RawMessage{}
		for _, k := range []string{"name", "title", "description", "inputSchema"} {
			if tool[k] != nil {
				v[k] = tool[k]
			}
		}
		b, _ := json.Marshal(v)
		n += len(b)
	}
	return n
}

// call asks the peer and returns the text of its answer.
func (p *peer) call(tool string, args map[string]any) string {
	p.t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name = tool
	req.Params.Arguments = args
	res, err := p.c.CallTool(context.Background(), req)
	if err != nil {
		p.t.Fatalf("peer %s %v: %v", tool, args, err)
	}
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	if res.IsError {
		p.t.Errorf("peer %s %v: %s", tool, args, b.String())
	}
	p.calls++
	p.bytes += b.Len()
	p.text.WriteString(b.String())
	p.text.WriteByte('\n')
	return b.String()
}

// getRef asks the peer for one entity by ref.
func (p *peer) getRef(ref string) string {
	r, err := catalog.ParseRef(ref, "")
	if err != nil {
		p.t.Fatal(err)
	}
	return p.call(p.get, map[string]any{"kind": r.Kind, "namespace": r.Namespace, "name": r.Name})
}

// queryAll asks the peer for every entity matching filter, a page of 100
// at a time (the best a careful agent does).
func (p *peer) queryAll(filter map[string]any) {
	for offset := 0; ; offset += 100 {
		txt := p.call(p.query, map[string]any{"query": filter, "limit": 100, "offset": offset})
		var page struct {
			Items []json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal([]byte(txt), &page); err != nil || len(page.Items) < 100 {
			return
		}
	}
}

// peerHas reports whether the peer's text holds a fact: the fact itself,
// or for a ref the entity's name as the peer writes it, or for a
// key=value fact the value.
func peerHas(text, fact string) bool {
	if strings.Contains(text, fact) {
		return true
	}
	if k, v, ok := strings.Cut(fact, "="); ok && !strings.ContainsAny(k, " \n") {
		return peerHas(text, v)
	}
	if strings.Count(fact, ":") == 1 && strings.Count(fact, "/") == 1 && !strings.Contains(fact, " ") {
		if r, err := catalog.ParseRef(fact, ""); err == nil {
			return strings.Contains(strings.ToLower(text), `"name":"`+strings.ToLower(r.Name)+`"`)
		}
	}
	return false
}

// peerPaths are the questions Backstage's MCP endpoint can answer, each
// as an agent would with its two catalog tools (get by kind/namespace/name,
// query by a filter): the same subject and facts as the suite's own
// question, found by the oracle. Questions that need counting over the
// whole catalog (facets) are not asked of it.
var peerPaths = map[string]func(o *oracle, p *peer, subject func() (best []qcall, facts []string, ok bool)) []string{}

// firstRef returns the ref the suite's best path asks about.
func firstRef(best []qcall) string {
	var a struct {
		Ref string `json:"ref"`
	}
	_ = json.Unmarshal([]byte(best[0].args), &a)
	return a.Ref
}

// firstArgs decodes the arguments of the first call of a path.
func firstArgs(best []qcall) map[string]any {
	var a map[string]any
	_ = json.Unmarshal([]byte(best[0].args), &a)
	return a
}

func init() {
	getSubject := func(o *oracle, p *peer, s func() ([]qcall, []string, bool)) []string {
		best, facts, _ := s()
		p.getRef(firstRef(best))
		return facts
	}
	getWithOwner := func(o *oracle, p *peer, s func() ([]qcall, []string, bool)) []string {
		best, facts, _ := s()
		x := firstRef(best)
		p.getRef(x)
		if ow := o.rel(x, "ownedBy"); len(ow) == 1 {
			p.getRef(ow[0])
		}
		return facts
	}
	for _, id := range []string{"own-1", "own-3", "own-4", "own-5", "own-6", "own-7", "doc-1", "doc-2", "doc-3",
		"imp-4", "api-2", "api-3", "api-4", "api-5", "api-6", "life-2", "onb-2"} {
		peerPaths[id] = getSubject
	}
	peerPaths["own-2"] = getWithOwner
	peerPaths["onb-3"] = getWithOwner
	peerPaths["doc-4"] = func(o *oracle, p *peer, s func() ([]qcall, []string, bool)) []string {
		best, facts, _ := s()
		x := firstRef(best)
		p.getRef(x)
		if o.ann(x, "slack.com/channel") == "" {
			if ow := o.rel(x, "ownedBy"); len(ow) == 1 {
				p.getRef(ow[0])
			}
		}
		return facts
	}
	peerPaths["onb-5"] = func(o *oracle, p *peer, s func() ([]qcall, []string, bool)) []string {
		best, facts, _ := s()
		x := firstRef(best)
		p.getRef(x)
		p.getRef(o.rel(x, "partOf")[0])
		return facts
	}
	// Lists: one query with the filters the suite's search used.
	list := func(o *oracle, p *peer, s func() ([]qcall, []string, bool)) []string {
		best, facts, _ := s()
		a := firstArgs(best)
		f := map[string]any{}
		for k, v := range a {
			switch k {
			case "kind":
				f["kind"] = strings.ToLower(v.(string))
			case "owner":
				r, _ := catalog.ParseRef(v.(string), "group")
				f["relations.ownedBy"] = r.String()
			case "system":
				r, _ := catalog.ParseRef(v.(string), "system")
				f["relations.partOf"] = r.String()
			case "lifecycle":
				f["spec.lifecycle"] = v
			case "labels":
				for _, l := range v.([]any) {
					k, val, _ := strings.Cut(l.(string), "=")
					f["metadata.labels."+k] = val
				}
			case "annotations":
				// The peer's filter matches values; the agent reads
				// the annotation in every entity of the rest.
			case "relations":
				for _, r := range v.([]any) {
					typ, target, _ := strings.Cut(r.(string), "=")
					f["relations."+typ] = target
				}
			}
		}
		p.queryAll(f)
		return facts
	}
	for _, id := range []string{"own-8", "life-1", "life-4", "onb-1", "onb-4", "scope-1", "scope-2"} {
		peerPaths[id] = list
	}
	// Who consumes an API: the API's own relations name them.
	peerPaths["api-1"] = getSubject
	// Direct dependents of a resource, and who runs them: one query.
	direct := func(o *oracle, p *peer, s func() ([]qcall, []string, bool)) []string {
		best, facts, _ := s()
		p.queryAll(map[string]any{"relations.dependsOn": firstRef(best)})
		return facts
	}
	peerPaths["imp-3"] = direct
	peerPaths["chg-2"] = direct
	// Teams that must migrate off an API: its consumers, with their owners.
	peerPaths["chg-1"] = func(o *oracle, p *peer, s func() ([]qcall, []string, bool)) []string {
		best, facts, _ := s()
		p.queryAll(map[string]any{"relations.consumesApi": firstRef(best)})
		return facts
	}
	// What breaks if X goes down (and whom to tell): hop by hop, the
	// entities that depend on the frontier and the consumers of the APIs
	// it provides, as the agent learns them from each answer; then each
	// owning team for its contacts.
	impact := func(withOwners bool) func(o *oracle, p *peer, s func() ([]qcall, []string, bool)) []string {
		return func(o *oracle, p *peer, s func() ([]qcall, []string, bool)) []string {
			best, facts, _ := s()
			x := firstRef(best)
			p.getRef(x)
			all := o.walkDependents(x, 3, func(f string) {
				p.queryAll(map[string]any{"relations.dependsOn": f})
				for _, api := range o.rel(f, "providesApi") {
					p.queryAll(map[string]any{"relations.consumesApi": api})
				}
			})
			if withOwners {
				for _, ow := range o.ownersOf(all) {
					p.getRef(ow)
				}
			}
			return facts
		}
	}
	peerPaths["imp-1"] = impact(false)
	peerPaths["imp-2"] = impact(true)
}

// TestQuestionSuiteAgainstPeer asks the suite's questions of this server's
// tools (in process, reading the real Backstage) and of Backstage's own
// MCP endpoint, on the same catalog, and compares the tokens the model
// reads: text bytes / 4, each side's tools/list counted once. Our answers
// must hold every fact; the peer's are checked and reported.
// PEER_TABLE=file writes the Markdown table.
func TestQuestionSuiteAgainstPeer(t *testing.T) {
	bs := startBackstage(t)
	p := dialPeer(t, bs)
	c, err := catalog.New(catalog.Config{BaseURL: bs.BaseURL, Token: catalog.StaticToken(bs.Token)})
	if err != nil {
		t.Fatal(err)
	}
	d := &Deps{Catalog: c, Redactor: identityRedactor{}, Cursors: NewCursorCodec(nil)}
	o := newOracle(t, d)
	byName := map[string]Tool{}
	var list mcp.ListToolsResult
	for _, tl := range All(d) {
		byName[tl.Tool.Name] = tl
		list.Tools = append(list.Tools, tl.Tool)
	}
	lb, _ := json.Marshal(list)
	ourList, ourModel := len(lb), modelView(t, lb)

	var table strings.Builder
	table.WriteString("| question | ours: best calls / tokens | ours: literal calls / tokens | peer: calls / tokens | peer lacks |\n|---|---|---|---|---|\n")
	var ourBest, ourLit, peerTok, ourBestCalls, peerCalls int
	asked := 0
	for _, qu := range questions {
		path, ok := peerPaths[qu.id]
		if !ok {
			continue
		}
		best, literal, facts, ok := qu.plan(o)
		if !ok || len(facts) == 0 {
			t.Errorf("%s: no subject in this catalog", qu.id)
			continue
		}
		asked++
		b := runPath(t, d, byName, best, facts)
		l := runPath(t, d, byName, literal, facts)
		for name, st := range map[string]pathStats{"best": b, "literal": l} {
			if len(st.missing) > 0 {
				t.Errorf("%s %q, %s path: the text lacks %q", qu.id, qu.ask, name, st.missing)
			}
		}
		p.calls, p.bytes = 0, 0
		p.text.Reset()
		path(o, p, func() ([]qcall, []string, bool) { return best, facts, true })
		var lacks []string
		for _, f := range facts {
			if !peerHas(p.text.String(), f) {
				lacks = append(lacks, f)
			}
		}
		lack := "—"
		if len(lacks) > 0 {
			lack = strings.Join(lacks, ", ")
			if len(lack) > 80 {
				lack = lack[:80] + "…"
			}
		}
		fmt.Fprintf(&table, "| %s | %d / %d | %d / %d | %d / %d | %s |\n", qu.ask, b.calls, b.bytes/4, l.calls, l.bytes/4, p.calls, p.bytes/4, lack)
		ourBest += b.bytes / 4
		ourLit += l.bytes / 4
		peerTok += p.bytes / 4
		ourBestCalls += b.calls
		peerCalls += p.calls
	}
	ratio := float64(ourBest+ourModel/4) / float64(peerTok+p.modelBytes/4)
	ratioLit := float64(ourLit+ourModel/4) / float64(peerTok+p.modelBytes/4)
	ratioJSON := float64(ourBest+ourList/4) / float64(peerTok+p.listBytes/4)
	ratioLitJSON := float64(ourLit+ourList/4) / float64(peerTok+p.listBytes/4)
	fmt.Fprintf(&table, "| answers, %d questions | %d / %d | %d | %d / %d | |\n", asked, ourBestCalls, ourBest, ourLit, peerCalls, peerTok)
	fmt.Fprintf(&table, "| tools/list (once), the whole JSON (output schemas and annotations too) | %d | %d | %d | |\n", ourList/4, ourList/4, p.listBytes/4)
	fmt.Fprintf(&table, "| **total, whole tools/list** | %d | %d | %d | |\n", ourBest+ourList/4, ourLit+ourList/4, peerTok+p.listBytes/4)
	fmt.Fprintf(&table, "| tools/list (once) as the model reads it (name, title, description, input schema) | %d | %d | %d | |\n", ourModel/4, ourModel/4, p.modelBytes/4)
	fmt.Fprintf(&table, "| total, tools/list as the model reads it | %d | %d | %d | |\n", ourBest+ourModel/4, ourLit+ourModel/4, peerTok+p.modelBytes/4)
	fmt.Fprintf(&table, "\nTokens, ours ÷ peer, counting the whole tools/list JSON: best path %.2f×, literal path %.2f×. "+
		"Counting tools/list as the model reads it: best %.2f×, literal %.2f×. Answers alone: %.2f×.\n",
		ratioJSON, ratioLitJSON, ratio, ratioLit, float64(ourBest)/float64(peerTok))
	t.Log("\n" + table.String())
	if *update {
		// The peer's answers carry paths of this checkout (its location
		// annotations), so the figures vary a little from one machine to
		// another: README.md's table is rewritten on request only.
		writeReadmeBlock(t, peerBegin, peerEnd, table.String())
	}
	if f := os.Getenv("PEER_TABLE"); f != "" {
		if err := os.WriteFile(f, []byte(table.String()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if asked < 30 {
		t.Errorf("%d questions asked of the peer, want at least 30", asked)
	}
	// The target holds on the honest count: a client may send output
	// schemas and annotations to the model too.
	if ratioJSON > 0.4 || ratioLitJSON > 0.4 {
		t.Errorf("ours costs %.2f× (best) and %.2f× (literal) the peer's tokens counting the whole tools/list, target ≤ 0.4×", ratioJSON, ratioLitJSON)
	}
}

// The peer table's markers in README.md.
const (
	peerBegin = "<!-- peer-table:begin (written by go test -tags e2e ./tools -run TestQuestionSuiteAgainstPeer -update) -->\n"
	peerEnd   = "<!-- peer-table:end -->"
)

// writeReadmeBlock replaces what lies between begin and end in README.md.
func writeReadmeBlock(t *testing.T, begin, end, body string) {
	t.Helper()
	const path = "../README.md"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("README.md has no %q … %q block", begin, end)
	}
	if err := os.WriteFile(path, []byte(s[:i+len(begin)]+body+s[j:]), 0o600); err != nil {
		t.Fatal(err)
	}
}

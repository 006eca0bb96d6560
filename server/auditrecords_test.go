package server

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/server/audit"
	"github.com/backstage-mcp/backstage-mcp/server/demo"
	"github.com/backstage-mcp/backstage-mcp/server/internal/buildseam"
)

// Secrets seeded into the demo catalog by seededServer. They are test
// values in the shape the redaction rules know, never real credentials.
var (
	seedGitHubToken = "ghp_" + "16C7e42F292c6912E7710c838347Ae178B4a"
	seedAWSKey      = "AKIA" + "QYLPMN5HHHFPZAM2"
)

// seededCalls is one call of every tool over the seeded catalog; the test
// fails when a tool has none, so "every tool" stays true.
var seededCalls = []struct{ tool, args string }{
	{"whoami", `{}`},
	{"catalog_get_entity", `{"ref":"component:default/checkout-service","detail":"full"}`},
	{"catalog_get_entity", `{"ref":"component:default/checkout-service"}`},
	{"catalog_search_entities", `{"kind":"component","owner":"team-checkout"}`},
	{"catalog_search_entities", `{"text":"checkout"}`},
	{"catalog_get_relations", `{"ref":"component:default/checkout-service","depth":2}`},
	{"catalog_find_owner", `{"ref":"component:default/checkout-service"}`},
	{"catalog_find_dependents", `{"ref":"component:default/payments-service"}`},
	{"catalog_list_facets", `{"facet":"spec.type"}`},
	{"catalog_list_facets", `{"facet":"metadata.annotations.pagerduty.com/service-id"}`},
	{"catalog_get_api_definition", `{"ref":"api:default/payments-api"}`},
	{"catalog_list_changes", `{}`},
}

// seededResources are resource reads over the seeded catalog.
var seededResources = []string{
	"backstage://catalog/component/default/checkout-service",
	"backstage://catalog/api/default/payments-api/definition",
}

// seededServer is the demo server over the demo catalog with secrets
// seeded where every tool can meet them: annotations, descriptions, a
// link, an API definition; and in fields some tools fetch but do not
// send (find_owner reads the whole entity and answers with its owner).
func seededServer(t *testing.T, extraConfig string) (*Server, string, func()) {
	t.Helper()
	ents, err := demo.Entities()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		md, _ := e["metadata"].(map[string]any)
		name, _ := md["name"].(string)
		switch name {
		case "checkout-service", "payments-service", "cart-service":
			ann, _ := md["annotations"].(map[string]any)
			ann["pagerduty.com/service-id"] = seedGitHubToken
			md["description"] = "Deploys with " + seedAWSKey + " and " + seedGitHubToken + "."
		case "payments-api":
			spec, _ := e["spec"].(map[string]any)
			if def, ok := spec["definition"].(string); ok {
				spec["definition"] = def + "\n# deploy key: " + seedGitHubToken + "\n"
			}
		case "team-checkout":
			md["description"] = "On call: " + seedAWSKey
		}
	}
	cfg, err := ParseConfig([]byte(`rateLimits:
  classes:
    default: {unlimited: true}
    high: {unlimited: true}
  agent: {unlimited: true}
  global: {unlimited: true}
`+extraConfig), "seeded", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "audit.log")
	cfg.Audit.Path = path
	s, closeFn, err := BuildWithSeams(context.Background(), cfg, BuildOptions{Demo: true, LocalUser: "user:default/amelia.hart"}, buildseam.Seams{DemoEntities: ents})
	if err != nil {
		t.Fatal(err)
	}
	return s, path, closeFn
}

// TestRedactionCountsEqualMarkersSent: over every tool on a catalog
// seeded with secrets, each call record's redaction counts equal the
// redaction markers in the bytes the server sent back (the JSON-RPC
// response as encoded), per rule; the per-field rows add up to the same;
// and a call that sent no marker records none, though the tool redacted
// secrets in what it fetched (get_relations: before this, such calls
// recorded every redaction the tool made).
func TestRedactionCountsEqualMarkersSent(t *testing.T) {
	s, path, closeFn := seededServer(t, "")
	initSession(t, s)
	called := map[string]bool{}
	var sent []map[string]int
	for i, c := range seededCalls {
		called[c.tool] = true
		msg := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,"arguments":%s}}`, i+1, c.tool, c.args)
		res := s.MCP().HandleMessage(context.Background(), json.RawMessage(msg))
		out, err := json.Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(out), seedGitHubToken) || strings.Contains(string(out), seedAWSKey) {
			t.Fatalf("%s %s: a seeded secret left unredacted", c.tool, c.args)
		}
		per := map[string]int{}
		eachMarker(string(out), func(rule string) { per[rule]++ })
		sent = append(sent, per)
	}
	for name := range s.tools {
		if !called[name] {
			t.Errorf("tool %s has no seeded call", name)
		}
	}
	// Resource reads run their tool through the same chain, and send the
	// resource contents, not the tool's result.
	for i, uri := range seededResources {
		msg := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"resources/read","params":{"uri":%q}}`, 100+i, uri)
		out, err := json.Marshal(s.MCP().HandleMessage(context.Background(), json.RawMessage(msg)))
		if err != nil {
			t.Fatal(err)
		}
		per := map[string]int{}
		eachMarker(string(out), func(rule string) { per[rule]++ })
		if len(per) == 0 {
			t.Errorf("%s: no marker sent; the seeding does not reach it: %s", uri, out)
		}
		sent = append(sent, per)
	}
	closeFn()
	var calls []audit.Record
	for _, r := range readRecords(t, path) {
		if r.Type == audit.TypeCall {
			calls = append(calls, r)
		}
	}
	if len(calls) != len(seededCalls)+len(seededResources) {
		t.Fatalf("%d call records for %d calls and %d resource reads", len(calls), len(seededCalls), len(seededResources))
	}
	withMarkers, quietRelations := 0, false
	for i, r := range calls {
		c := struct{ tool, args string }{r.Tool, seededResources[max(0, i-len(seededCalls))]}
		if i < len(seededCalls) {
			c = seededCalls[i]
		}
		if r.Tool != c.tool {
			t.Fatalf("record %d is %s, want %s", i, r.Tool, c.tool)
		}
		got := r.Redactions
		if got == nil {
			got = map[string]int{}
		}
		if fmt.Sprint(got) != fmt.Sprint(sent[i]) {
			t.Errorf("%s %s: record counts %v, markers sent %v", c.tool, c.args, got, sent[i])
		}
		rows := 0
		for _, d := range r.Redacted {
			rows += d.Count
		}
		if rows != r.RedactionTotal() {
			t.Errorf("%s: per-field rows add up to %d, record total %d (%+v)", c.tool, rows, r.RedactionTotal(), r.Redacted)
		}
		if r.RedactionTotal() > 0 {
			withMarkers++
		}
		if c.tool == "catalog_get_relations" && r.RedactionTotal() == 0 && r.Entities.Count > 0 {
			quietRelations = true
		}
		t.Logf("%-28s sent %-40v rows %v", c.tool, sent[i], r.Redacted)
	}
	if withMarkers < 4 {
		t.Errorf("only %d calls sent a marker: the seeding does not reach the tools", withMarkers)
	}
	if !quietRelations {
		// get_relations admits (and redacts) checkout-service and its
		// neighbours, secrets included, and sends refs and names only.
		t.Error("get_relations sent markers: the test no longer shows a call that fetched secrets and sent none")
	}
}

// TestRedactedRowsNameEntityAndField: a secret in an annotation is
// recorded against its entity and field path.
func TestRedactedRowsNameEntityAndField(t *testing.T) {
	s, path, closeFn := seededServer(t, "")
	initSession(t, s)
	s.MCP().HandleMessage(context.Background(), json.RawMessage(
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"catalog_get_entity","arguments":{"ref":"component:default/checkout-service","detail":"full"}}}`))
	closeFn()
	var rec *audit.Record
	for _, r := range readRecords(t, path) {
		if r.Type == audit.TypeCall {
			rec = &r
		}
	}
	if rec == nil {
		t.Fatal("no call record")
	}
	i := slices.IndexFunc(rec.Redacted, func(d audit.Redaction) bool {
		return d.Ref == "component:default/checkout-service" && d.Path == "metadata.annotations.pagerduty.com/service-id"
	})
	if i < 0 {
		t.Fatalf("no row for the annotation: %+v", rec.Redacted)
	}
}

// TestEachMarker: markers are counted by rule; text that only looks
// like one is not.
func TestEachMarker(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
	}{
		{"", "[]"},
		{"[REDACTED:github-token] and [REDACTED:aws-key][REDACTED:github-token]", "[github-token aws-key github-token]"},
		{"[REDACTED:] [REDACTED:Upper] [REDACTED:open", "[]"},
		{"[REDACTED:[REDACTED:a-1]]", "[a-1]"},
	} {
		var got []string
		eachMarker(tc.in, func(r string) { got = append(got, r) })
		if s := fmt.Sprint(got); s != tc.want && !(tc.want == "[]" && got == nil) {
			t.Errorf("eachMarker(%q) = %s, want %s", tc.in, s, tc.want)
		}
	}
	plain := strings.Repeat("x", 4096)
	if n := testing.AllocsPerRun(10, func() { eachMarker(plain, func(string) {}) }); n != 0 {
		t.Errorf("eachMarker allocates %v times on text without markers", n)
	}
}

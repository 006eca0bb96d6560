// Package servertest holds the contract every backstage-mcp deployment
// must satisfy, written once and run against the in-memory demo catalog
// (unit tests) and against a real Backstage (e2e), so the fake is proven
// honest by the real thing.
package servertest

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// ToolNames are the public tool names, in the order tools/list returns them.
var ToolNames = []string{
	"catalog_find_dependents", "catalog_find_owner", "catalog_get_api_definition", "catalog_get_entity", "catalog_get_relations",
	"catalog_list_changes", "catalog_list_facets", "catalog_search_entities", "whoami",
}

// Connect initializes an MCP session on c.
func Connect(t testing.TB, c *client.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatalf("start client: %v", err)
	}
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	req.Params.ClientInfo = mcp.Implementation{Name: "servertest", Version: "1.0"}
	if _, err := c.Initialize(ctx, req); err != nil {
		t.Fatalf("initialize: %v", err)
	}
}

// ConnectHTTP opens an MCP session over Streamable HTTP at endpoint (the
// server's /mcp URL), with the bearer token when it is not empty; the
// session closes when the test ends.
func ConnectHTTP(t testing.TB, endpoint, bearer string) *client.Client {
	t.Helper()
	var opts []transport.StreamableHTTPCOption
	if bearer != "" {
		opts = append(opts, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + bearer}))
	}
	c, err := client.NewStreamableHttpClient(endpoint, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	Connect(t, c)
	return c
}

// Call invokes a tool with JSON arguments and returns the result.
func Call(t testing.TB, c *client.Client, tool string, args string) *mcp.CallToolResult {
	t.Helper()
	res, err := callTool(c, tool, args)
	if err != nil {
		t.Fatalf("%s(%s): protocol error: %v", tool, args, err)
	}
	return res
}

// callTool invokes a tool with JSON arguments ("" for none), bounded in
// time.
func callTool(c *client.Client, tool string, args string) (*mcp.CallToolResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name = tool
	if args != "" {
		req.Params.Arguments = json.RawMessage(args)
	}
	return c.CallTool(ctx, req)
}

// Structured decodes the structured content of a successful result.
func Structured(t testing.TB, res *mcp.CallToolResult, out any) {
	t.Helper()
	if res.IsError {
		t.Fatalf("tool error: %s", Text(res))
	}
	b, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("structured content %s: %v", b, err)
	}
}

// Text returns the first text content of a result.
func Text(res *mcp.CallToolResult) string {
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			return tc.Text
		}
	}
	return ""
}

// wantError asserts an IsError result whose text contains every fragment.
func wantError(t *testing.T, res *mcp.CallToolResult, fragments ...string) {
	t.Helper()
	if !res.IsError {
		t.Fatalf("expected a tool error, got %s", Text(res))
	}
	for _, f := range fragments {
		if !strings.Contains(Text(res), f) {
			t.Errorf("error %q does not mention %q", Text(res), f)
		}
	}
}

type summary struct {
	Ref       string   `json:"ref"`
	Title     string   `json:"title"`
	Type      string   `json:"type"`
	Lifecycle string   `json:"lifecycle"`
	Owner     string   `json:"owner"`
	System    string   `json:"system"`
	Tags      []string `json:"tags"`
	Links     []any    `json:"links"`
	Relations []struct {
		Type  string   `json:"type"`
		Refs  []string `json:"refs"`
		Total int      `json:"total"`
	} `json:"relations"`
	Annotations map[string]string `json:"annotations"`
}

// count returns how many relations of type typ the summary counts.
func (s summary) count(typ string) int {
	for _, r := range s.Relations {
		if r.Type == typ {
			return r.Total
		}
	}
	return 0
}

// CheckTools runs every tool against a catalog holding the embedded demo
// catalog (possibly with more entities) and checks the answers.
func CheckTools(t *testing.T, c *client.Client) {
	t.Run("tools/list", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, err := c.ListTools(ctx, mcp.ListToolsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, tl := range res.Tools {
			names = append(names, tl.Name)
			a := tl.Annotations
			if a.ReadOnlyHint == nil || !*a.ReadOnlyHint || a.OpenWorldHint == nil || *a.OpenWorldHint {
				t.Errorf("%s: want readOnlyHint true and openWorldHint false", tl.Name)
			}
			if b, _ := json.Marshal(tl); !strings.Contains(string(b), `"additionalProperties":false`) {
				t.Errorf("%s: input schema does not reject unknown keys", tl.Name)
			}
		}
		if strings.Join(sortStrings(names), ",") != strings.Join(ToolNames, ",") {
			t.Errorf("tools = %v, want %v", names, ToolNames)
		}
	})

	t.Run("get_entity summary", func(t *testing.T) {
		var s summary
		Structured(t, Call(t, c, "catalog_get_entity", `{"ref":"component:default/checkout-service"}`), &s)
		if s.Ref != "component:default/checkout-service" || s.Title != "Checkout Service" || s.Type != "service" ||
			s.Lifecycle != "production" || s.Owner != "group:default/team-checkout" || s.System != "system:default/checkout" {
			t.Errorf("summary = %+v", s)
		}
		if s.count("dependsOn") != 3 || s.count("consumesApi") != 4 || s.count("providesApi") != 1 {
			t.Errorf("relation counts = %v", s.Relations)
		}
		// The text the model reads names the facts an engineer acts on.
		text := Text(Call(t, c, "catalog_get_entity", `{"ref":"component:default/checkout-service"}`))
		for _, f := range []string{"Runbook https://runbooks.acme-retail.example/checkout", "pagerduty.com/service-id=PCHK7Q2",
			"slack.com/channel=checkout-alerts", "github.com/project-slug=acme-retail/checkout-service",
			"providesApi: api:default/checkout-api", "component:default/payments-service", "api:default/orders-api"} {
			if !strings.Contains(text, f) {
				t.Errorf("summary text lacks %q: %s", f, text)
			}
		}
	})
	t.Run("list_changes", func(t *testing.T) {
		r := Call(t, c, "catalog_list_changes", `{"since":"24h"}`)
		if text := Text(r); r.IsError || !strings.Contains(text, "needs catalog mirror mode") && !strings.Contains(text, "since") {
			t.Errorf("list_changes: %s", text)
		}
	})
	t.Run("find_dependents", func(t *testing.T) {
		text := Text(Call(t, c, "catalog_find_dependents", `{"ref":"component:default/orders-service"}`))
		for _, f := range []string{"4 dependents", "component:default/checkout-service", "component:default/shipping-service",
			"component:default/notification-service", "component:default/analytics-pipeline", "consumes api:default/order-events",
			"group:default/team-data", "<identity@acme-retail.example>"} {
			if !strings.Contains(text, f) {
				t.Errorf("dependents text lacks %q: %s", f, text)
			}
		}
		if strings.Contains(text, "orders-db") {
			t.Errorf("a dependency is listed as a dependent: %s", text)
		}
	})
	t.Run("get_entity by kind and name, case-insensitive kind", func(t *testing.T) {
		var s summary
		Structured(t, Call(t, c, "catalog_get_entity", `{"kind":"COMPONENT","name":"checkout-service"}`), &s)
		if s.Ref != "component:default/checkout-service" {
			t.Errorf("ref = %s", s.Ref)
		}
	})
	t.Run("get_entity full and fields", func(t *testing.T) {
		var full map[string]any
		Structured(t, Call(t, c, "catalog_get_entity", `{"ref":"api:default/payments-api","detail":"full"}`), &full)
		if full["kind"] != "API" || full["spec"] == nil || full["relations"] == nil {
			t.Errorf("full entity lacks kind/spec/relations: %v", keys(full))
		}
		var proj map[string]any
		Structured(t, Call(t, c, "catalog_get_entity", `{"ref":"component:checkout-service","fields":["spec.owner","metadata.name"]}`), &proj)
		b, _ := json.Marshal(proj)
		if string(b) != `{"metadata":{"name":"checkout-service"},"spec":{"owner":"team-checkout"}}` {
			t.Errorf("projection = %s", b)
		}
	})
	t.Run("get_entity errors", func(t *testing.T) {
		wantError(t, Call(t, c, "catalog_get_entity", `{"ref":"component:default/no-such-thing"}`), "not found", "kind:namespace/name")
		wantError(t, Call(t, c, "catalog_get_entity", `{"ref":"checkout-service"}`), "no kind", "kind:namespace/name")
		wantError(t, Call(t, c, "catalog_get_entity", `{"ref":"component:default/a,kind=user"}`), "invalid entity ref")
		wantError(t, Call(t, c, "catalog_get_entity", `{"ref":"component:default/x","Kind":"user"}`), `unknown argument "Kind"`)
		wantError(t, Call(t, c, "catalog_get_entity", `{}`), `missing "ref"`)
	})

	t.Run("search by kind, owner and paging", func(t *testing.T) {
		var page struct {
			Items      []summary `json:"items"`
			NextCursor string    `json:"nextCursor"`
			TotalItems *int      `json:"totalItems"`
		}
		Structured(t, Call(t, c, "catalog_search_entities", `{"kind":"Component","owner":"team-checkout","limit":2,"order":"metadata.name"}`), &page)
		// An owner filter is matched on the caller's view (names of hidden
		// owners are pruned), so Backstage's count is not given: only a
		// last page carries totalItems.
		if page.TotalItems != nil || len(page.Items) != 2 || page.NextCursor == "" {
			t.Fatalf("page = %+v", page)
		}
		seen := map[string]bool{}
		for _, it := range page.Items {
			seen[it.Ref] = true
			if it.Owner != "group:default/team-checkout" {
				t.Errorf("%s owner %s", it.Ref, it.Owner)
			}
		}
		if page.Items[0].Ref > page.Items[1].Ref {
			t.Errorf("not ordered by name: %s, %s", page.Items[0].Ref, page.Items[1].Ref)
		}
		var counted struct {
			Items      []summary `json:"items"`
			TotalItems *int      `json:"totalItems"`
		}
		Structured(t, Call(t, c, "catalog_search_entities", `{"kind":"Component","owner":"team-checkout","limit":100}`), &counted)
		if counted.TotalItems == nil || *counted.TotalItems != len(counted.Items) || *counted.TotalItems < 3 {
			t.Fatalf("complete first page: totalItems %v for %d items", counted.TotalItems, len(counted.Items))
		}
		total, cursor := *counted.TotalItems, page.NextCursor
		for i := 0; cursor != "" && i < 10; i++ {
			var next struct {
				Items      []summary `json:"items"`
				NextCursor string    `json:"nextCursor"`
			}
			Structured(t, Call(t, c, "catalog_search_entities", `{"cursor":"`+cursor+`","limit":2}`), &next)
			for _, it := range next.Items {
				if seen[it.Ref] {
					t.Errorf("%s seen twice while paging", it.Ref)
				}
				seen[it.Ref] = true
				if it.Owner != "group:default/team-checkout" || !strings.HasPrefix(it.Ref, "component:") {
					t.Errorf("page item %+v outside the query", it)
				}
			}
			cursor = next.NextCursor
		}
		if len(seen) != total {
			t.Errorf("paged through %d entities, totalItems %d", len(seen), total)
		}
		wantError(t, Call(t, c, "catalog_search_entities", `{"cursor":"eyJxdWVyeSI6eyJraW5kIjoidXNlciJ9fQ"}`), "cursor")
	})
	t.Run("search by type, lifecycle, tags, system, text", func(t *testing.T) {
		var page struct {
			Items []summary `json:"items"`
		}
		Structured(t, Call(t, c, "catalog_search_entities", `{"kind":"api","type":"grpc"}`), &page)
		if len(page.Items) == 0 {
			t.Fatal("no grpc APIs")
		}
		for _, it := range page.Items {
			if it.Type != "grpc" {
				t.Errorf("%s type %s", it.Ref, it.Type)
			}
		}
		Structured(t, Call(t, c, "catalog_search_entities", `{"system":"checkout","kind":"component"}`), &page)
		if !hasRef(page.Items, "component:default/checkout-service") {
			t.Errorf("system search missed checkout-service: %v", refs(page.Items))
		}
		Structured(t, Call(t, c, "catalog_search_entities", `{"tags":["grpc"],"lifecycle":"production","kind":"component"}`), &page)
		if !hasRef(page.Items, "component:default/checkout-service") {
			t.Errorf("tag search missed checkout-service: %v", refs(page.Items))
		}
		Structured(t, Call(t, c, "catalog_search_entities", `{"text":"checkout","kind":"component"}`), &page)
		if !hasRef(page.Items, "component:default/checkout-service") {
			t.Errorf("text search missed checkout-service: %v", refs(page.Items))
		}
		wantError(t, Call(t, c, "catalog_search_entities", `{"kind":"component,kind=user"}`), `"kind"`)
		wantError(t, Call(t, c, "catalog_search_entities", `{"type":"service,kind=user"}`), "may not contain")
		wantError(t, Call(t, c, "catalog_search_entities", `{"limit":1000}`), `"limit"`)
	})

	t.Run("relations outgoing and incoming", func(t *testing.T) {
		var g struct {
			Root  string `json:"root"`
			Nodes []struct {
				Ref string `json:"ref"`
			} `json:"nodes"`
			Edges []struct{ From, Type, To string } `json:"edges"`
		}
		Structured(t, Call(t, c, "catalog_get_relations", `{"ref":"component:default/checkout-service","relations":["dependsOn"]}`), &g)
		if len(g.Edges) != 3 || len(g.Nodes) != 4 {
			t.Fatalf("dependsOn graph = %+v", g)
		}
		for _, e := range g.Edges {
			if e.From != "component:default/checkout-service" || e.Type != "dependsOn" {
				t.Errorf("edge %+v", e)
			}
		}
		Structured(t, Call(t, c, "catalog_get_relations", `{"ref":"component:default/payments-service","relations":["dependsOn"],"direction":"incoming"}`), &g)
		found := false
		for _, e := range g.Edges {
			if e.From == "component:default/checkout-service" && e.Type == "dependsOn" && e.To == "component:default/payments-service" {
				found = true
			}
		}
		if !found {
			t.Errorf("incoming dependsOn edges = %+v", g.Edges)
		}
		Structured(t, Call(t, c, "catalog_get_relations", `{"ref":"api:default/payments-api","relations":["apiConsumedBy","dependencyOf"],"depth":3}`), &g)
		if len(g.Nodes) < 2 {
			t.Errorf("blast radius of payments-api too small: %+v", g.Nodes)
		}
		wantError(t, Call(t, c, "catalog_get_relations", `{"ref":"component:default/checkout-service","depth":4}`), `"depth"`)
		wantError(t, Call(t, c, "catalog_get_relations", `{"ref":"component:default/checkout-service","relations":["friendsWith"]}`), `"relations"`)
	})

	t.Run("find_owner", func(t *testing.T) {
		var o struct {
			Owner       string            `json:"owner"`
			OwnerKind   string            `json:"ownerKind"`
			Email       string            `json:"email"`
			Members     []map[string]any  `json:"members"`
			ParentChain []string          `json:"parentChain"`
			Contacts    map[string]string `json:"contacts"`
		}
		Structured(t, Call(t, c, "catalog_find_owner", `{"ref":"component:default/checkout-service"}`), &o)
		if o.Owner != "group:default/team-checkout" || o.OwnerKind != "Group" || o.Email != "checkout@acme-retail.example" {
			t.Errorf("owner = %+v", o)
		}
		if len(o.Members) == 0 || len(o.ParentChain) == 0 || o.ParentChain[0] != "group:default/engineering" {
			t.Errorf("members %v parents %v", o.Members, o.ParentChain)
		}
		if o.Contacts["slack.com/channel"] != "team-checkout" {
			t.Errorf("contacts = %v", o.Contacts)
		}
	})

	t.Run("api_definition", func(t *testing.T) {
		var d struct {
			Ref        string `json:"ref"`
			Type       string `json:"type"`
			Definition string `json:"definition"`
			Bytes      int    `json:"bytes"`
			Truncated  bool   `json:"truncated"`
			Notice     string `json:"notice"`
		}
		Structured(t, Call(t, c, "catalog_get_api_definition", `{"ref":"payments-api"}`), &d)
		if d.Ref != "api:default/payments-api" || d.Type == "" || len(d.Definition) < 100 || d.Truncated {
			t.Errorf("definition = %+v", d)
		}
		Structured(t, Call(t, c, "catalog_get_api_definition", `{"ref":"payments-api","maxBytes":256}`), &d)
		if !d.Truncated || len(d.Definition) > 256 || !strings.Contains(d.Notice, "256") {
			t.Errorf("truncated definition = %+v", d)
		}
		wantError(t, Call(t, c, "catalog_get_api_definition", `{"ref":"component:default/checkout-service"}`), "not an API")
	})

	t.Run("facets", func(t *testing.T) {
		var f struct {
			Facet  string `json:"facet"`
			Values []struct {
				Value string `json:"value"`
				Count int    `json:"count"`
			} `json:"values"`
		}
		Structured(t, Call(t, c, "catalog_list_facets", `{"facet":"spec.type","kind":"Component"}`), &f)
		counts := map[string]int{}
		for _, v := range f.Values {
			counts[v.Value] = v.Count
		}
		if counts["service"] < 5 || counts["website"] < 1 || counts["library"] < 1 {
			t.Errorf("facet counts = %v", counts)
		}
		wantError(t, Call(t, c, "catalog_list_facets", `{"facet":"spec.type,kind"}`), `"facet"`)
	})

	t.Run("whoami", func(t *testing.T) {
		var id struct {
			User string `json:"user"`
			Mode string `json:"mode"`
		}
		Structured(t, Call(t, c, "whoami", ``), &id)
		if !strings.HasPrefix(id.User, "user:") || id.Mode == "" {
			t.Errorf("whoami = %+v", id)
		}
	})
}

func hasRef(items []summary, ref string) bool {
	for _, it := range items {
		if it.Ref == ref {
			return true
		}
	}
	return false
}

func refs(items []summary) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.Ref
	}
	return out
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return sortStrings(out)
}

func sortStrings(s []string) []string {
	out := append([]string(nil), s...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

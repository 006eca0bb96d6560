package server

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/identity"
	"github.com/backstage-mcp/backstage-mcp/server/internal/servertest"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
)

func completeValues(t *testing.T, c *client.Client, ref any, arg, value string, given map[string]string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := mcp.CompleteRequest{}
	req.Params.Ref = ref
	req.Params.Argument = mcp.CompleteArgument{Name: arg, Value: value}
	req.Params.Context = mcp.CompleteContext{Arguments: given}
	res, err := c.Complete(ctx, req)
	if err != nil {
		t.Fatalf("complete %s=%q: %v", arg, value, err)
	}
	return res.Completion.Values
}

// TestCompletions: refs and template variables complete from what the
// caller may see only: a hidden entity or namespace completes exactly
// like a missing one, and every completion is an audited call.
func TestCompletions(t *testing.T) {
	ents := resourceEntities("x")
	ents = append(ents, map[string]any{"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
		"metadata": map[string]any{"name": "secret-thing", "namespace": "hidden"},
		"spec":     map[string]any{"type": "service", "lifecycle": "production", "owner": "group:default/team-a"}})
	cs := newChainServer(t, ents, defaultNamespacePolicy, "")
	c, err := client.NewInProcessClient(cs.s.MCP())
	if err != nil {
		t.Fatal(err)
	}
	servertest.Connect(t, c)
	who := mcp.PromptReference{Type: "ref/prompt", Name: "who-owns"}
	review := mcp.PromptReference{Type: "ref/prompt", Name: "review-api"}
	entity := mcp.ResourceReference{Type: "ref/resource", URI: entityTemplate}
	cases := []struct {
		name  string
		ref   any
		arg   string
		value string
		given map[string]string
		want  []string // nil: want none
	}{
		{"ref with kind and namespace", who, "ref", "component:default/svc-11", nil,
			[]string{"component:default/svc-110", "component:default/svc-111", "component:default/svc-112", "component:default/svc-113", "component:default/svc-114",
				"component:default/svc-115", "component:default/svc-116", "component:default/svc-117", "component:default/svc-118", "component:default/svc-119"}},
		{"ref of the prompt's kind by name", review, "ref", "pay", nil, []string{"api:default/payments-api"}},
		{"hidden namespace", who, "ref", "component:hidden/svc-11", nil, nil},
		{"missing namespace", who, "ref", "component:nowhere/svc-11", nil, nil},
		{"hidden name", who, "ref", "secret", nil, nil},
		{"missing name", who, "ref", "zzz-nothing", nil, nil},
		{"invalid kind", who, "ref", "no such kind:x", nil, nil},
		{"template kind", entity, "kind", "co", nil, []string{"component"}},
		{"template namespace", entity, "namespace", "", map[string]string{"kind": "component"}, []string{"default"}},
		{"template namespace hidden prefix", entity, "namespace", "hid", map[string]string{"kind": "component"}, nil},
		{"template name", entity, "name", "svc-05", map[string]string{"kind": "component", "namespace": "default"},
			[]string{"svc-050", "svc-051", "svc-052", "svc-053", "svc-054", "svc-055", "svc-056", "svc-057", "svc-058", "svc-059"}},
		{"template name in hidden namespace", entity, "name", "svc-05", map[string]string{"kind": "component", "namespace": "hidden"}, nil},
	}
	before := 0 // nothing was called before
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := completeValues(t, c, tc.ref, tc.arg, tc.value, tc.given)
			if len(got) == 0 && tc.want == nil {
				return
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	// Every completion that reached the catalog is an audited call; the
	// invalid kind is refused before any call.
	if n := len(cs.records(t)) - before; n != len(cases)-1 {
		t.Fatalf("%d audit records for %d completions, want %d", n, len(cases), len(cases)-1)
	}
}

// TestPrompts: prompts are listed only with the tools they name, render
// the parsed ref and name the tools to use, and refuse a bad ref.
func TestPrompts(t *testing.T) {
	cs := newChainServer(t, resourceEntities("x"), defaultNamespacePolicy, "")
	c, err := client.NewInProcessClient(cs.s.MCP())
	if err != nil {
		t.Fatal(err)
	}
	servertest.Connect(t, c)
	ctx := context.Background()
	list, err := c.ListPrompts(ctx, mcp.ListPromptsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range list.Prompts {
		names = append(names, p.Name)
		if p.Title == "" || len(p.Arguments) != 1 || !p.Arguments[0].Required {
			t.Errorf("prompt %+v", p)
		}
	}
	slices.Sort(names)
	if want := []string{"blast-radius", "onboard-system", "review-api", "who-owns"}; !slices.Equal(names, want) {
		t.Fatalf("prompts = %v, want %v", names, want)
	}
	for _, tc := range []struct{ prompt, ref, wantRef, wantTool string }{
		{"review-api", "payments-api", "api:default/payments-api", "catalog_get_api_definition"},
		{"who-owns", "component:default/svc-001", "component:default/svc-001", "catalog_find_owner"},
		{"blast-radius", "component:svc-001", "component:default/svc-001", "catalog_find_dependents"},
		{"onboard-system", "checkout", "system:default/checkout", "catalog_search_entities"},
	} {
		req := mcp.GetPromptRequest{}
		req.Params.Name = tc.prompt
		req.Params.Arguments = map[string]string{"ref": tc.ref}
		res, err := c.GetPrompt(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", tc.prompt, err)
		}
		text := res.Messages[0].Content.(mcp.TextContent).Text
		if !strings.Contains(text, tc.wantRef) || !strings.Contains(text, tc.wantTool) {
			t.Fatalf("%s: %s", tc.prompt, text)
		}
	}
	req := mcp.GetPromptRequest{}
	req.Params.Name = "who-owns"
	req.Params.Arguments = map[string]string{"ref": "svc-001"}
	if _, err := c.GetPrompt(ctx, req); err == nil || !strings.Contains(err.Error(), "kind:namespace/name") {
		t.Fatalf("ref without kind: err = %v", err)
	}

	narrow := newChainServer(t, resourceEntities("x"), oneToolPolicy, "")
	nc, err := client.NewInProcessClient(narrow.s.MCP())
	if err != nil {
		t.Fatal(err)
	}
	servertest.Connect(t, nc)
	list, err = nc.ListPrompts(ctx, mcp.ListPromptsRequest{})
	if err != nil || len(list.Prompts) != 0 {
		t.Fatalf("prompts without their tools: %v, %+v", err, list)
	}
}

// TestCompletionCache: a repeated completion is answered from the cache
// inside the tool stage, so it is still rate limited and audited (with
// the entities it names), and callers never share an entry.
func TestCompletionCache(t *testing.T) {
	cfg := "rateLimits:\n  classes:\n    default: {requests: 3, per: 1h, burst: 3}\n"
	cs := newChainServer(t, resourceEntities("x"), defaultNamespacePolicy, cfg)
	c, err := client.NewInProcessClient(cs.s.MCP())
	if err != nil {
		t.Fatal(err)
	}
	servertest.Connect(t, c)
	who := mcp.PromptReference{Type: "ref/prompt", Name: "who-owns"}
	first := completeValues(t, c, who, "ref", "component:default/svc-00", nil)
	if len(first) != 10 {
		t.Fatalf("first completion: %v", first)
	}
	if got := completeValues(t, c, who, "ref", "component:default/svc-00", nil); !slices.Equal(got, first) {
		t.Fatalf("cached completion %v, want %v", got, first)
	}
	recs := cs.records(t)
	if len(recs) != 2 || recs[1].Entities.Count != 10 || recs[1].Tool != "catalog_search_entities" {
		t.Fatalf("audit records = %+v", recs)
	}
	if got := completeValues(t, c, who, "ref", "component:default/svc-00", nil); len(got) != 10 {
		t.Fatalf("third completion: %v", got)
	}
	// The bucket is spent: the cached answer is not given.
	if got := completeValues(t, c, who, "ref", "component:default/svc-00", nil); len(got) != 0 {
		t.Fatalf("rate-limited completion answered from the cache: %v", got)
	}
}

// TestCompletionCacheKeyedByCaller: the same completion asked by two
// users makes two entries.
func TestCompletionCacheKeyedByCaller(t *testing.T) {
	cs := newChainServer(t, resourceEntities("x"), defaultNamespacePolicy, benchLimits)
	comp := newCompleter(cs.s)
	ask := func(sub string) {
		p := identity.InsecureLocalUser("user:default/" + sub)
		cs.s.opts.LocalPrincipal = func(context.Context) (*identity.Principal, error) { return p, nil }
		got, err := comp.CompletePromptArgument(context.Background(), "who-owns", mcp.CompleteArgument{Name: "ref", Value: "component:default/svc-00"}, mcp.CompleteContext{})
		if err != nil || len(got.Values) != 10 {
			t.Fatalf("%s: %v, %v", sub, got, err)
		}
	}
	ask("amelia.hart")
	ask("amelia.hart")
	if n := len(comp.cache.m); n != 1 {
		t.Fatalf("%d entries after the same caller asked twice, want 1", n)
	}
	ask("ben.okafor")
	if n := len(comp.cache.m); n != 2 {
		t.Fatalf("%d entries after a second caller asked, want 2", n)
	}
}

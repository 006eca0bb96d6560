package server

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/server/demo"
	"github.com/backstage-mcp/backstage-mcp/server/internal/servertest"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
)

const demoReadPolicy = `version: 1
roles:
  - name: everyone
    bind: { anonymous: true }
    tools: ["catalog:read", "catalog:api-definitions", "catalog:read:users"]
    entities:
      allow:
        - IN_NAMESPACE: { namespaces: [default, platform] }
`

// TestPromptsAnswerRight follows each shipped prompt literally on the demo
// catalog: the calls its text names, with the arguments it gives, and
// checks the known answer in the text those calls return. The blast
// radius of orders-service is the four consumers of its two APIs (its
// databases are what it depends on, not dependents).
func TestPromptsAnswerRight(t *testing.T) {
	ents, err := demo.Entities()
	if err != nil {
		t.Fatal(err)
	}
	cs := newChainServer(t, ents, demoReadPolicy, "")
	c, err := client.NewInProcessClient(cs.s.MCP())
	if err != nil {
		t.Fatal(err)
	}
	servertest.Connect(t, c)
	type step struct{ tool, args string }
	var table strings.Builder
	table.WriteString("| prompt | on | answers the suite's | calls | tokens (prompt + answers, resource links included) |\n|---|---|---|---|---|\n")
	for _, tc := range []struct {
		prompt, ref string
		// questions are the question suite's (tools/questions_test.go)
		// this prompt answers.
		questions string
		// steps are the calls the prompt's text tells the agent to make;
		// each tool name and argument must be in the text.
		steps []step
		// facts must be in the text of the calls' results; absent must not.
		facts, absent []string
	}{
		{"who-owns", "component:default/checkout-service", "who owns X, how to reach its team, who is on call, which chat channel",
			[]step{{"catalog_find_owner", `{"ref":"component:default/checkout-service"}`}},
			[]string{"group:default/team-checkout", "<checkout@acme-retail.example>", "slack.com/channel: team-checkout",
				"pagerduty.com/service-id=PCHK7Q2", "user:default/ben.okafor", "group:default/engineering"}, nil},
		{"blast-radius", "component:default/orders-service", "what breaks if X goes down, whom to tell, what depends on R",
			[]step{{"catalog_find_dependents", `{"ref":"component:default/orders-service"}`}},
			[]string{"component:default/checkout-service", "component:default/shipping-service", "component:default/notification-service",
				"component:default/analytics-pipeline", "group:default/team-checkout", "<data@acme-retail.example>"},
			[]string{"orders-db", "orders-queue"}},
		{"onboard-system", "system:default/checkout", "what is in system S, its domain, its APIs, who owns it",
			[]step{{"catalog_get_entity", `{"ref":"system:default/checkout"}`},
				{"catalog_search_entities", `{"system":"system:default/checkout","limit":100}`},
				{"catalog_find_owner", `{"ref":"system:default/checkout"}`}},
			[]string{"domain:default/commerce", "component:default/checkout-service", "component:default/cart-service", "component:default/payments-service",
				"component:default/money-lib", "api:default/payments-api", "resource:default/payments-db", "Runbook https://runbooks.acme-retail.example/checkout",
				"group:default/team-checkout", "<checkout@acme-retail.example>"}, nil},
		{"review-api", "api:default/orders-api", "who consumes API A, who provides and owns it, its operations, which teams must migrate",
			[]step{{"catalog_get_api_definition", `{"ref":"api:default/orders-api"}`},
				{"catalog_find_dependents", `{"ref":"api:default/orders-api","depth":1}`},
				{"catalog_get_entity", `{"ref":"api:default/orders-api"}`},
				{"catalog_find_owner", `{"ref":"api:default/orders-api"}`}},
			[]string{"openapi", "component:default/checkout-service", "group:default/team-checkout", "group:default/team-fulfillment",
				"apiProvidedBy: component:default/orders-service"},
			[]string{"shipping-service"}},
	} {
		t.Run(tc.prompt, func(t *testing.T) {
			req := mcp.GetPromptRequest{}
			req.Params.Name = tc.prompt
			req.Params.Arguments = map[string]string{"ref": tc.ref}
			res, err := c.GetPrompt(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			instr := res.Messages[0].Content.(mcp.TextContent).Text
			tokens := len(instr) / 4
			var got strings.Builder
			for _, s := range tc.steps {
				if !strings.Contains(instr, "Call "+s.tool+" with ref "+tc.ref) && !strings.Contains(instr, "Call "+s.tool+" with system "+tc.ref) {
					t.Errorf("the prompt does not say to call %s on %s:\n%s", s.tool, tc.ref, instr)
				}
				for _, hint := range []string{"depth 1", "limit 100"} {
					if strings.Contains(s.args, strings.ReplaceAll(hint, " ", `":`)) && !strings.Contains(instr, hint) {
						t.Errorf("the prompt does not ask for %s:\n%s", hint, instr)
					}
				}
				r := servertest.Call(t, c, s.tool, s.args)
				if r.IsError {
					t.Fatalf("%s %s: %s", s.tool, s.args, servertest.Text(r))
				}
				got.WriteString(servertest.Text(r))
				got.WriteByte('\n')
				n := len(servertest.Text(r))
				for _, ct := range r.Content {
					if _, ok := ct.(mcp.TextContent); !ok {
						b, _ := json.Marshal(ct) // resource links reach the model too
						n += len(b)
					}
				}
				tokens += n / 4
			}
			fmt.Fprintf(&table, "| `%s` | `%s` | %s | %d | %d |\n", tc.prompt, tc.ref, tc.questions, len(tc.steps), tokens)
			for _, f := range tc.facts {
				if !strings.Contains(got.String(), f) {
					t.Errorf("the answer lacks %q:\n%s", f, got.String())
				}
			}
			for _, f := range tc.absent {
				if strings.Contains(got.String(), f) {
					t.Errorf("the answer holds %q, which is wrong here:\n%s", f, got.String())
				}
			}
		})
	}
	t.Log("\n" + table.String())
	if !t.Failed() {
		checkReadmeBlock(t, promptsBegin, promptsEnd, table.String())
	}
}

// The prompts table's markers in README.md.
const (
	promptsBegin = "<!-- prompts-table:begin (generated by go test ./server -run TestPromptsAnswerRight; -update rewrites it) -->\n"
	promptsEnd   = "<!-- prompts-table:end -->"
)

// checkReadmeBlock fails when what lies between begin and end in
// README.md is not body, and rewrites it with -update.
func checkReadmeBlock(t *testing.T, begin, end, body string) {
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
	if s[i+len(begin):j] == body {
		return
	}
	if !*updateDocs {
		t.Errorf("README.md's block after %q is stale: go test ./server -run %s -update", strings.TrimSpace(begin), t.Name())
		return
	}
	if err := os.WriteFile(path, []byte(s[:i+len(begin)]+body+s[j:]), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestWhatChangedPrompt: the change prompt is listed in catalog mirror mode
// only (passthrough has no feed), takes an optional since, refuses one
// catalog_list_changes would refuse, and names the call an agent follows.
func TestWhatChangedPrompt(t *testing.T) {
	ctx := context.Background()
	listed := func(c *client.Client) bool {
		t.Helper()
		list, err := c.ListPrompts(ctx, mcp.ListPromptsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range list.Prompts {
			if p.Name == "what-changed" {
				if len(p.Arguments) != 1 || p.Arguments[0].Name != "since" || p.Arguments[0].Required {
					t.Errorf("what-changed arguments: %+v", p.Arguments)
				}
				return true
			}
		}
		return false
	}
	if listed(inProcess(t, newDemoServer(t))) {
		t.Error("what-changed listed in passthrough mode, which has no change feed")
	}
	m := inProcess(t, newMirrorServer(t, nil))
	if !listed(m) {
		t.Fatal("what-changed not listed in mirror mode")
	}
	get := func(args map[string]string) (string, error) {
		req := mcp.GetPromptRequest{}
		req.Params.Name = "what-changed"
		req.Params.Arguments = args
		res, err := m.GetPrompt(ctx, req)
		if err != nil {
			return "", err
		}
		return res.Messages[0].Content.(mcp.TextContent).Text, nil
	}
	for args, want := range map[string]string{"": "Call catalog_list_changes with since 7d.", "24h": "Call catalog_list_changes with since 24h."} {
		a := map[string]string{}
		if args != "" {
			a["since"] = args
		}
		text, err := get(a)
		if err != nil || !strings.Contains(text, want) {
			t.Errorf("since %q: %v %q, want %q", args, err, text, want)
		}
	}
	if _, err := get(map[string]string{"since": "last tuesday"}); err == nil || !strings.Contains(err.Error(), "since") {
		t.Errorf("a bad since: %v, want an invalid-params error naming it", err)
	}
	// Followed literally on the mirror: the call answers (no changes yet
	// on a fresh mirror, said plainly).
	res := servertest.Call(t, m, "catalog_list_changes", `{"since":"7d"}`)
	if res.IsError {
		t.Fatalf("catalog_list_changes: %s", servertest.Text(res))
	}
}

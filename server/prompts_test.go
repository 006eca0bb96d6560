package server

import (
	"context"
	"strings"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/server/demo"
	"github.com/backstage-mcp/backstage-mcp/server/servertest"
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
	for _, tc := range []struct {
		prompt, ref string
		// steps are the calls the prompt's text tells the agent to make;
		// each tool name and argument must be in the text.
		steps []step
		// facts must be in the text of the calls' results; absent must not.
		facts, absent []string
	}{
		{"who-owns", "component:default/checkout-service",
			[]step{{"catalog_find_owner", `{"ref":"component:default/checkout-service"}`}},
			[]string{"group:default/team-checkout", "<checkout@acme-retail.example>", "slack.com/channel: team-checkout",
				"pagerduty.com/service-id=PCHK7Q2", "user:default/ben.okafor", "group:default/engineering"}, nil},
		{"blast-radius", "component:default/orders-service",
			[]step{{"catalog_find_dependents", `{"ref":"component:default/orders-service"}`}},
			[]string{"component:default/checkout-service", "component:default/shipping-service", "component:default/notification-service",
				"component:default/analytics-pipeline", "group:default/team-checkout", "<data@acme-retail.example>"},
			[]string{"orders-db", "orders-queue"}},
		{"onboard-system", "system:default/checkout",
			[]step{{"catalog_get_entity", `{"ref":"system:default/checkout"}`},
				{"catalog_search_entities", `{"system":"system:default/checkout","limit":100}`},
				{"catalog_find_owner", `{"ref":"system:default/checkout"}`}},
			[]string{"domain:default/commerce", "component:default/checkout-service", "component:default/cart-service", "component:default/payments-service",
				"component:default/money-lib", "api:default/payments-api", "resource:default/payments-db", "Runbook https://runbooks.acme-retail.example/checkout",
				"group:default/team-checkout", "<checkout@acme-retail.example>"}, nil},
		{"review-api", "api:default/orders-api",
			[]step{{"catalog_get_api_definition", `{"ref":"api:default/orders-api"}`},
				{"catalog_find_dependents", `{"ref":"api:default/orders-api","depth":1}`},
				{"catalog_find_owner", `{"ref":"api:default/orders-api"}`}},
			[]string{"openapi", "component:default/checkout-service", "group:default/team-checkout", "group:default/team-fulfillment"},
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
			}
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
}

package server

import (
	"testing"

	"github.com/mark3labs/mcp-go/client"

	"github.com/backstage-mcp/backstage-mcp/server/internal/servertest"
)

// TestPolicyConditionOnAColonKeySearches: a role whose condition names an
// annotation key with ':' searches like any other (the catalog client used
// to refuse the key the policy pushed down, and every search failed as
// "invalid arguments").
func TestPolicyConditionOnAColonKeySearches(t *testing.T) {
	pol := `version: 1
roles:
  - name: everyone
    bind: { anonymous: true }
    tools: ["catalog_search_entities"]
    entities:
      allow:
        - HAS_ANNOTATION: { annotation: "acme.io:team", value: "x" }
`
	cs := newChainServer(t, chainEntities, pol, "")
	c, err := client.NewInProcessClient(cs.s.MCP())
	if err != nil {
		t.Fatal(err)
	}
	servertest.Connect(t, c)
	if res := servertest.Call(t, c, "catalog_search_entities", `{"kind":"Component"}`); res.IsError {
		t.Fatalf("search failed: %s", servertest.Text(res))
	}
}

package server

import (
	"github.com/backstage-mcp/backstage-mcp/server/servertest"
	"github.com/mark3labs/mcp-go/client"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/policy"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
)

// TestPolicyFiltersEncodeInTheCatalog: every filter the policy pushes down
// (policy.EncodeFilter accepts it) is one the catalog client sends as it
// is (catalog.Filter.Encode accepts it and writes the same text), so a
// policy condition can never make a query fail or change on its way to
// Backstage. The two grammars are checked over every ASCII character and
// the Unicode characters either one treats specially, in keys and values.
func TestPolicyFiltersEncodeInTheCatalog(t *testing.T) {
	var chars []rune
	for r := rune(0); r < 0x80; r++ {
		chars = append(chars, r)
	}
	chars = append(chars, 0x85, 0xA0, 0xAD, 0x200B, 0x2028, 0x2029, 0xFEFF, 0xFE50, 0xFF0C, 0xFF1D, 0x207C, 0xFFFD, 'é', '中')
	check := func(key, value string) {
		t.Helper()
		c := policy.Clause{key: {value}}
		want, perr := policy.EncodeFilter(c)
		if perr != nil {
			return // not pushed down: the policy re-checks after fetch
		}
		got, cerr := catalog.Filter(c).Encode()
		if cerr != nil || got != want {
			t.Errorf("key %q value %q: policy pushes %q, the catalog sends %q (%v)", key, value, want, got, cerr)
		}
	}
	for _, r := range chars {
		check("metadata.annotations.acme.io"+string(r)+"team", "x")
		check("spec.type", "a"+string(r)+"b")
		check("spec.type", string(r)+"b")
	}
	check("metadata.annotations.acme.io:team", "x")
}

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

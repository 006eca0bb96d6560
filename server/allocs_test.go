package server

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
)

// allocBudgets are the allocation budgets of one tool call through the
// whole server (JSON-RPC parsing, middleware, tool, catalog client over the
// in-process demo catalog, projection, masks, redaction, shaping, result
// encoding), about 15% over what the calls measure today under -race
// (which allocates up to 15% more than a plain run). A change that makes
// calls allocate more fails here, not in a benchmark nobody reads; lower a
// budget when a change makes calls cheaper.
var allocBudgets = []struct {
	name, tool, args string
	budget           float64
}{
	{"get summary", "catalog_get_entity", `{"ref":"component:default/checkout-service"}`, 470},
	{"get full", "catalog_get_entity", `{"ref":"component:default/checkout-service","detail":"full"}`, 790},
	{"search 20", "catalog_search_entities", `{"kind":"Component","limit":20}`, 2060},
	{"owner search", "catalog_search_entities", `{"owner":"team-checkout"}`, 1240},
}

// TestAllocBudgets enforces allocBudgets with testing.AllocsPerRun (a
// count, not a timing).
func TestAllocBudgets(t *testing.T) {
	s := newBenchServer(t)
	initSession(t, s)
	for _, c := range allocBudgets {
		msg := json.RawMessage(fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":%q,"arguments":%s}}`, c.tool, c.args))
		n := testing.AllocsPerRun(50, func() {
			res := s.MCP().HandleMessage(context.Background(), msg)
			mustOK(t, res)
			if _, err := json.Marshal(res); err != nil {
				t.Fatal(err)
			}
		})
		t.Logf("%-13s %6.0f allocs/call (budget %.0f)", c.name, n, c.budget)
		if n > c.budget {
			t.Errorf("%s: %.0f allocations per call, budget %.0f", c.name, n, c.budget)
		}
	}
}

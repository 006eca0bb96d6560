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
// encoding), about 8% over what the calls measure today in a plain build
// (make test runs this test once without -race for that); mirror is the
// budget of the same call in catalog mirror mode, where the tool reads the
// mirror in process, with no HTTP and no catalog client. A change that
// makes calls allocate more fails here, not in a benchmark nobody reads;
// lower a budget when a change makes calls cheaper. Under -race the
// budgets get raceAllowance: the race detector drops sync.Pool items at
// random, so pooled buffers are allocated again (measured: 12-16% more).
// Summaries that name a component's domain through its system (one more
// by-refs read) raised get from 401 to 431 and, in mirror mode, where no
// upstream cache absorbs that read, from 428 to 506 and search 20 from
// 3830 to 4282; the budgets follow.
var allocBudgets = []struct {
	name, tool, args string
	budget, mirror   float64
}{
	{"get summary", "catalog_get_entity", `{"ref":"component:default/checkout-service"}`, 465, 545},
	{"get full", "catalog_get_entity", `{"ref":"component:default/checkout-service","detail":"full"}`, 715, 745},
	{"search 20", "catalog_search_entities", `{"kind":"Component","limit":20}`, 2150, 4625},
	{"owner search", "catalog_search_entities", `{"owner":"team-checkout"}`, 1165, 2190},
}

// raceAllowance scales the budgets in a race build (see allocBudgets).
const raceAllowance = 1.2

// TestAllocBudgets enforces allocBudgets with testing.AllocsPerRun (a
// count, not a timing).
func TestAllocBudgets(t *testing.T) {
	for _, mode := range []string{"passthrough", "mirror"} {
		s := newBenchServerMode(t, mode == "mirror")
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
			budget := c.budget
			if mode == "mirror" {
				budget = c.mirror
			}
			if raceOn {
				budget *= raceAllowance
			}
			t.Logf("%-11s %-13s %6.0f allocs/call (budget %.0f)", mode, c.name, n, budget)
			if n > budget {
				t.Errorf("%s %s: %.0f allocations per call, budget %.0f", mode, c.name, n, budget)
			}
		}
	}
}

package server

import (
	"fmt"
	"strings"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/server/internal/servertest"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
)

// TestLimitsKeyedByPerson: tokens of one person under many IdP subjects
// resolve to one Backstage user and share that user's budget; initialize
// and unknown tools spend it too. Each subject opens its own session
// (one token each) before the calls, so the burst is the number of
// subjects plus the calls expected through.
func TestLimitsKeyedByPerson(t *testing.T) {
	cases := []struct {
		name         string
		subjects     int
		unknownFirst int
		wantAllowed  int
	}{
		{name: "20 subjects share one budget", subjects: 20, wantAllowed: 5},
		{name: "unknown tools count", subjects: 10, unknownFirst: 3, wantAllowed: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			burst := tc.subjects + tc.unknownFirst + tc.wantAllowed
			e := startAuthServer(t, newTestIdP(t), authSetup{
				extra: fmt.Sprintf("rateLimits:\n  classes:\n    default: {requests: 1, per: 1h, burst: %d}\n", burst),
			})
			tok := func(i int) string {
				return e.token(idpUser{sub: fmt.Sprintf("00u-amelia-%d", i), email: amelia.email, name: amelia.name}, scopeCatalog)
			}
			clients := make([]*client.Client, tc.subjects)
			for i := range clients {
				clients[i] = e.connectLegacy(tok(i))
			}
			for range tc.unknownFirst {
				res, err := clients[0].CallTool(t.Context(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "catalog_delete_everything"}})
				if err == nil && (res == nil || !res.IsError) {
					t.Fatal("unknown tool answered without an error")
				}
			}
			allowed, limited := 0, 0
			for i, c := range clients {
				res := servertest.Call(t, c, "catalog_get_entity", `{"ref":"component:default/checkout-service"}`)
				switch {
				case !res.IsError:
					allowed++
				case strings.Contains(servertest.Text(res), "rate limited (user limit)"):
					limited++
				default:
					t.Fatalf("subject %d: %s", i, servertest.Text(res))
				}
			}
			if allowed != tc.wantAllowed || limited != tc.subjects-tc.wantAllowed {
				t.Fatalf("allowed %d, limited %d over %d subjects of one person; want %d allowed", allowed, limited, tc.subjects, tc.wantAllowed)
			}
		})
	}
}

package server

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/audit"
	"github.com/backstage-mcp/backstage-mcp/server/demo"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

var updateTrail = flag.Bool("update-trail", false, "rewrite testdata/audit/reviewer-trail.log, the trail the reviewer's guide (docs/reviewing.md) is run on")

// reviewerTrailFile is the committed trail the reviewer's guide is run on
// (cmd/backstage-mcp TestReviewersGuide).
const reviewerTrailFile = "../testdata/audit/reviewer-trail.log"

// reviewerPolicy: everyone reads all but User entities; Noah Fischer, a
// contractor, may not see PCI-labelled entities and has a tight rate
// class.
const reviewerPolicy = `version: 1
scopes:
  "backstage-mcp:catalog": ["catalog:read"]
  "backstage-mcp:catalog.apis": ["catalog:api-definitions"]
roles:
  - name: everyone
    bind: { authenticated: true }
    tools: ["catalog:read", "catalog:api-definitions"]
    entities:
      allow:
        - IS_ENTITY_KIND: { kinds: [component, api, system, domain, resource, group] }
  - name: contractors
    bind:
      claims: { email: [noah.fischer@acme-retail.example] }
    entities:
      deny:
        - HAS_LABEL: { label: "acme-retail.example/pci" }
    rateClass: tight
`

// reviewerAgent is one agent of the trail: who it acts for, what it
// announces and where it calls from (X-Forwarded-For through a trusted
// proxy).
type reviewerAgent struct {
	user            idpUser
	clientID        string
	scopes          []string
	name, version   string
	userAgent, addr string
	client          *client.Client
}

// buildReviewerTrail drives a server over real HTTP as a security team's
// trail looks: two users through two agents from two addresses, secrets
// redacted, a read the policy hides, a typo, a tool outside the token's
// scopes, invalid arguments, a spent rate limit, and failed sign-ins
// from a third address. The audit clock is fixed (2026-12-07 09:00 UTC,
// seven seconds a record) so that the guide's time windows hold.
func buildReviewerTrail(t *testing.T) string {
	t.Helper()
	ents, err := demo.Entities()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		md, _ := e["metadata"].(map[string]any)
		switch md["name"] {
		case "checkout-service", "cart-service":
			ann, _ := md["annotations"].(map[string]any)
			ann["pagerduty.com/service-id"] = seedGitHubToken
		case "payments-api":
			spec, _ := e["spec"].(map[string]any)
			if def, ok := spec["definition"].(string); ok {
				spec["definition"] = def + "\n# sandbox key: " + seedAWSKey + "\n"
			}
		}
	}
	var mu sync.Mutex
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	idp := newTestIdP(t)
	env := startAuthServer(t, idp, authSetup{
		policy:       reviewerPolicy,
		demoEntities: ents,
		serverExtra:  "  trustedProxies: [127.0.0.1]\n",
		extra:        "rateLimits:\n  classes:\n    default: {unlimited: true}\n    tight: {requests: 1, per: 1h, burst: 5}\n",
		configure: func(c *Config) {
			c.Audit.Now = func() time.Time {
				mu.Lock()
				defer mu.Unlock()
				now = now.Add(7 * time.Second)
				return now
			}
		},
	})
	ameliaAgent := &reviewerAgent{user: amelia, clientID: "claude-code-cli", scopes: []string{scopeCatalog, scopeAPIs}, name: "claude-code", version: "2.1.0",
		userAgent: "claude-code/2.1.0 (darwin; arm64)", addr: "198.51.100.10"}
	noahAgent := &reviewerAgent{user: noah, clientID: "cursor-ide", scopes: []string{scopeCatalog}, name: "Cursor", version: "1.7.2",
		userAgent: "Cursor/1.7.2 (linux)", addr: "203.0.113.24"}
	for _, a := range []*reviewerAgent{ameliaAgent, noahAgent} {
		c, err := client.NewStreamableHttpClient(env.base+"/mcp", transport.WithHTTPHeaders(map[string]string{
			"Authorization": "Bearer " + env.mint(withAgent(env.claims(a.user, a.scopes...), a.clientID)), "User-Agent": a.userAgent, "X-Forwarded-For": a.addr}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		req := mcp.InitializeRequest{}
		req.Params.ProtocolVersion = legacyProtocol // with sessions, so records name them
		req.Params.ClientInfo = mcp.Implementation{Name: a.name, Version: a.version}
		if _, err := c.Initialize(ctx, req); err != nil {
			t.Fatal(err)
		}
		cancel()
		a.client = c
	}
	call := func(a *reviewerAgent, tool, args string) {
		t.Helper()
		req := mcp.CallToolRequest{}
		req.Params.Name = tool
		req.Params.Arguments = json.RawMessage(args)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := a.client.CallTool(ctx, req); err != nil && !strings.Contains(err.Error(), "not found") {
			t.Fatalf("%s %s: %v", tool, args, err)
		}
	}
	call(ameliaAgent, "catalog_get_entity", `{"ref":"component:default/checkout-service","detail":"full"}`)
	call(ameliaAgent, "catalog_search_entities", `{"owner":"team-checkout"}`)
	call(ameliaAgent, "catalog_find_owner", `{"ref":"component:default/payments-service"}`)
	call(ameliaAgent, "catalog_get_api_definition", `{"ref":"api:default/payments-api"}`)
	call(ameliaAgent, "catalog_get_relations", `{"ref":"component:default/checkout-service"}`)
	// Noah's bucket holds five: initialize and four calls.
	call(noahAgent, "catalog_get_entity", `{"ref":"component:default/cart-service"}`)
	call(noahAgent, "catalog_get_entity", `{"ref":"component:default/payments-service"}`)       // hidden: PCI
	call(noahAgent, "catalog_get_api_definition", `{"ref":"api:default/payments-api"}`)         // outside his token's scopes
	call(noahAgent, "catalog_get_entity", `{"ref":"component:default/paymnets-service"}`)       // a typo
	call(noahAgent, "catalog_search_entities", `{"kind":"component","lifecycle":"production"}`) // rate limited
	call(ameliaAgent, "catalog_search_entities", `{"limit":"many"}`)                            // invalid arguments
	call(ameliaAgent, "catalog_get_entity", `{"ref":"component:default/checkout-service"}`)
	for _, bad := range []string{"Bearer not-a-jwt", "Bearer " + env.mint(expired(env.claims(noah, scopeCatalog))), "Bearer not-a-jwt"} {
		req, err := http.NewRequest(http.MethodPost, env.base+"/mcp", strings.NewReader(rpcToolsList))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", bad)
		req.Header.Set("User-Agent", "python-requests/2.32")
		req.Header.Set("X-Forwarded-For", "192.0.2.50")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("bad token answered %d", resp.StatusCode)
		}
	}
	for _, a := range []*reviewerAgent{ameliaAgent, noahAgent} {
		_ = a.client.Close()
	}
	env.closeFn()
	return env.auditPath
}

// withAgent returns claims naming the OAuth client clientID (azp).
func withAgent(c map[string]any, clientID string) map[string]any {
	c["azp"] = clientID
	return c
}

// expired returns claims that expired an hour ago.
func expired(c map[string]any) map[string]any {
	c["exp"] = time.Now().Add(-time.Hour).Unix()
	c["iat"] = time.Now().Add(-2 * time.Hour).Unix()
	c["nbf"] = time.Now().Add(-2 * time.Hour).Unix()
	return c
}

// stableRecord is a record without what changes from run to run (ids,
// hashes, token ids, session ids, durations): two trails of the same
// calls compare equal.
func stableRecord(t *testing.T, line []byte) string {
	t.Helper()
	var r audit.Record
	if err := json.Unmarshal(line, &r); err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	r.ID, r.Hash, r.PrevHash, r.SessionID, r.User.TokenID, r.TraceID = "", "", "", "", "", ""
	r.User.Issuer = "" // the test provider listens on a port of its own each run
	r.DurationMs = 0
	if i := strings.Index(r.Reason, "; retry after"); i >= 0 {
		r.Reason = r.Reason[:i] // the wait is measured on the real clock
	}
	r.Time = r.Time.Truncate(time.Second)
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func stableTrail(t *testing.T, data []byte) []string {
	t.Helper()
	var out []string
	for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		out = append(out, stableRecord(t, line))
	}
	return out
}

// TestReviewerTrail: the committed trail the reviewer's guide is run on
// is what the server writes for its calls today (run with -update-trail
// to rewrite it, then go test ./cmd/backstage-mcp -run
// TestReviewersGuide -update to rewrite the guide's outputs). It also
// checks the records a reviewer relies on: every call names its
// issuer, token id, client address and User-Agent; the hidden read, the
// scope denial, the typo, the invalid arguments and the rate limit each
// carry their own decision; the chain verifies.
func TestReviewerTrail(t *testing.T) {
	path := buildReviewerTrail(t)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := audit.Verify(path); err != nil || !res.OK {
		t.Fatalf("verify: %+v %v", res, err)
	}
	got := map[audit.Decision]int{}
	for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		var r audit.Record
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatal(err)
		}
		if r.Type != audit.TypeCall {
			continue
		}
		got[r.Decision]++
		if r.Decision == audit.DecisionHiddenByPolicy && r.Stage == "policy" && !strings.HasSuffix(r.Rule, ":contractors/entities.deny[0]") {
			t.Errorf("a hidden read names rule %q, not the policy rule that hid the entity", r.Rule)
		}
		if r.User.Issuer == "" || r.User.TokenID == "" || r.Source == "" || r.UserAgent == "" || r.Agent.Name == "" {
			t.Errorf("call record lacks who or where: %s", line)
		}
	}
	for _, d := range []audit.Decision{audit.DecisionAllowed, audit.DecisionHiddenByPolicy, audit.DecisionScopeDenied,
		audit.DecisionFailed, audit.DecisionRateLimited, audit.DecisionRefused} {
		if got[d] == 0 {
			t.Errorf("no %s call in the trail (decisions %v)", d, got)
		}
	}
	if *updateTrail {
		if err := os.MkdirAll(filepath.Dir(reviewerTrailFile), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(reviewerTrailFile, data, 0o644); err != nil { //nolint:gosec // a test fixture, read by tests
			t.Fatal(err)
		}
		return
	}
	committed, err := os.ReadFile(reviewerTrailFile)
	if err != nil {
		t.Fatalf("%v (run with -update-trail)", err)
	}
	a, b := stableTrail(t, data), stableTrail(t, committed)
	if len(a) != len(b) {
		t.Fatalf("the server writes %d records for the guide's calls, the committed trail has %d: run with -update-trail", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Errorf("record %d differs from the committed trail (run with -update-trail):\n got %s\nwant %s", i+1, a[i], b[i])
		}
	}
}

//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/policy"
	"github.com/backstage-mcp/backstage-mcp/policy/policyfile"
	"github.com/backstage-mcp/backstage-mcp/server"
	"github.com/backstage-mcp/backstage-mcp/server/e2e/oidcop"
	"github.com/backstage-mcp/backstage-mcp/server/servertest"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// These tests prove the policy against the real Backstage: two users of
// different teams, with tokens from a real OpenID provider, resolved to
// their User entities and groups by the server, each see only what the
// policy gives them through every tool; the pushed-down filters run in
// Backstage's own filter engine.

// policyE2EPolicy gives each team what it owns plus every group; the
// checkout team also reads people (without e-mail) and API definitions.
const policyE2EPolicy = `version: 1
scopes:
  "catalog.read": ["catalog:read"]
  "catalog.apis": ["catalog:api-definitions"]
  "catalog.people": ["catalog:read:users"]
roles:
  - name: checkout
    bind: { backstageGroups: ["group:default/team-checkout"] }
    tools: ["catalog:read", "catalog:api-definitions", "catalog:read:users"]
    entities:
      allow:
        - IS_ENTITY_OWNER: { claims: [$ownershipRefs] }
        - IS_ENTITY_KIND: { kinds: [group, user] }
    fieldMasks:
      - kinds: [user]
        fields: ["spec.profile.email"]
  - name: fulfillment
    bind: { backstageGroups: ["group:default/team-fulfillment"] }
    tools: ["catalog_search_entities", "catalog_get_entity", "catalog_get_relations", "catalog_find_owner", "catalog_list_facets", "whoami"]
    entities:
      allow:
        - IS_ENTITY_OWNER: { claims: [$ownershipRefs] }
        - IS_ENTITY_KIND: { kinds: [group] }
`

var policyE2EScopes = []string{"openid", "email", "catalog.read", "catalog.apis", "catalog.people"}

// policyE2EUsers match demo User entities by their profile e-mail.
func policyE2EUsers() []oidcop.User {
	return []oidcop.User{
		{ID: "id-ben", Username: "ben.okafor", Password: "ben-password-1", FirstName: "Ben", LastName: "Okafor",
			Email: "ben.okafor@acme-retail.example", EmailVerified: true, Groups: []string{"employees"}},
		{ID: "id-farah", Username: "farah.haddad", Password: "farah-password-1", FirstName: "Farah", LastName: "Haddad",
			Email: "farah.haddad@acme-retail.example", EmailVerified: true, Groups: []string{"employees"}},
	}
}

// startPolicyServer serves backstage-mcp over HTTP against the real
// Backstage, trusting a real provider, under policyE2EPolicy.
func startPolicyServer(t *testing.T) (base string, op *oidcop.OP, auditPath string) {
	t.Helper()
	hs := httptest.NewUnstartedServer(nil)
	t.Cleanup(hs.Close)
	base = "http://" + hs.Listener.Addr().String()
	op = oidcop.Start(t, oidcop.Options{Audience: base + "/mcp", Users: policyE2EUsers()})
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(pol, []byte(policyE2EPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	auditPath = filepath.Join(dir, "audit.log")
	fast := "{ requests: 100000, per: 1s, burst: 100000 }"
	cfgText := fmt.Sprintf(`server:
  publicURL: %s
backstage:
  baseUrl: %s
  token: ${E2E_BACKSTAGE_TOKEN}
auth:
  issuers:
    - url: %s
  resolver:
    name: emailMatchingUserEntityProfileEmail
policy:
  file: %s
audit:
  path: %s
rateLimits:
  classes: { default: %s }
  agent: %s
  global: %s
  upstream: { rate: %s }
`, base, bs.BaseURL, op.Issuer, pol, auditPath, fast, fast, fast, fast)
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := server.LoadConfig(cfgPath, func(k string) string {
		if k == "E2E_BACKSTAGE_TOKEN" {
			return bs.Token
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	s, closeFn, err := server.Build(context.Background(), cfg, server.BuildOptions{Version: "e2e"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeFn)
	hs.Config.Handler = s.Handler()
	hs.Start()
	return base, op, auditPath
}

// realCatalog reads every entity straight from the real Backstage.
func realCatalog(t *testing.T) []map[string]any {
	t.Helper()
	c, err := catalog.New(catalog.Config{BaseURL: bs.BaseURL, Token: catalog.StaticToken(bs.Token)})
	if err != nil {
		t.Fatal(err)
	}
	var all []map[string]any
	q := catalog.Query{Limit: 500}
	for i := 0; i < 100; i++ {
		page, err := c.Query(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range page.Items {
			var e map[string]any
			if err := json.Unmarshal(raw, &e); err != nil {
				t.Fatal(err)
			}
			all = append(all, e)
		}
		if page.NextCursor == "" {
			return all
		}
		q = catalog.Query{Cursor: page.NextCursor, Limit: 500}
	}
	t.Fatal("catalog paging did not end")
	return nil
}

func polRef(e map[string]any) string {
	md, _ := e["metadata"].(map[string]any)
	ns, _ := md["namespace"].(string)
	if ns == "" {
		ns = "default"
	}
	return strings.ToLower(e["kind"].(string) + ":" + ns + "/" + md["name"].(string))
}

// polSession is one user's MCP session and what the policy lets them see.
type polSession struct {
	c         *client.Client
	all       []map[string]any
	visible   map[string]bool
	userMails []string
	exact     bool
}

func (ps *polSession) call(t *testing.T, tool, args string) (map[string]any, string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name = tool
	if args != "" {
		req.Params.Arguments = json.RawMessage(args)
	}
	res, err := ps.c.CallTool(ctx, req)
	if err != nil {
		t.Fatalf("%s(%s): protocol error %v", tool, args, err)
	}
	text := servertest.Text(res)
	if res.IsError {
		return nil, text, true
	}
	b, _ := json.Marshal(res.StructuredContent)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m, text, false
}

func (ps *polSession) mustCall(t *testing.T, tool, args string) map[string]any {
	t.Helper()
	m, text, isErr := ps.call(t, tool, args)
	if isErr {
		t.Fatalf("%s(%s): %s", tool, args, text)
	}
	return m
}

// handedOut lists the refs of the entities a result hands out.
func handedOut(m map[string]any) []string {
	var out []string
	var walk func(v any, key string)
	walk = func(v any, key string) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				walk(c, k)
			}
		case []any:
			for _, c := range x {
				walk(c, key)
			}
		case string:
			switch key {
			case "ref", "root", "from", "to", "entity":
				out = append(out, strings.ToLower(x))
			}
		}
	}
	walk(m, "")
	return out
}

// checkResult fails on hidden entities and masked e-mails in a result.
func (ps *polSession) checkResult(t *testing.T, tool, args string, m map[string]any, text string) {
	t.Helper()
	for _, r := range handedOut(m) {
		if !ps.visible[r] {
			t.Errorf("%s(%s) hands out hidden %s", tool, args, r)
		}
	}
	b, _ := json.Marshal(m)
	for _, mail := range ps.userMails {
		if strings.Contains(string(b), mail) || strings.Contains(text, mail) {
			t.Errorf("%s(%s) carries the masked e-mail %s", tool, args, mail)
		}
	}
}

// TestPolicyTwoTeamsRealBackstage: ben (team-checkout) and farah
// (team-fulfillment) each see exactly what the policy gives them.
func TestPolicyTwoTeamsRealBackstage(t *testing.T) {
	base, op, _ := startPolicyServer(t)
	all := realCatalog(t)
	pol, _, err := policyfile.Parse([]byte(policyE2EPolicy), "policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var mails []string
	for _, e := range all {
		if strings.EqualFold(e["kind"].(string), "user") {
			if p, ok := e["spec"].(map[string]any)["profile"].(map[string]any); ok {
				if m, _ := p["email"].(string); m != "" {
					mails = append(mails, m)
				}
			}
		}
	}
	teams := []struct {
		user, ref, team, other string
		tools                  []string
		own, hidden            []string
	}{
		{user: "ben.okafor", ref: "user:default/ben.okafor", team: "group:default/team-checkout", other: "team-fulfillment",
			tools:  []string{"catalog_find_owner", "catalog_get_api_definition", "catalog_get_entity", "catalog_get_relations", "catalog_list_facets", "catalog_search_entities", "whoami"},
			own:    []string{"component:default/checkout-service", "api:default/payments-api", "user:default/farah.haddad", "group:default/team-fulfillment"},
			hidden: []string{"component:default/orders-service", "api:default/orders-api", "resource:default/orders-db", "component:platform/log-shipper"}},
		{user: "farah.haddad", ref: "user:default/farah.haddad", team: "group:default/team-fulfillment", other: "team-checkout",
			tools:  []string{"catalog_find_owner", "catalog_get_entity", "catalog_get_relations", "catalog_list_facets", "catalog_search_entities", "whoami"},
			own:    []string{"component:default/orders-service", "api:default/orders-api", "resource:default/orders-db", "group:default/team-checkout"},
			hidden: []string{"component:default/checkout-service", "api:default/payments-api", "user:default/ben.okafor", "component:platform/log-shipper"}},
	}
	for _, team := range teams {
		t.Run(team.user, func(t *testing.T) {
			tok := op.UserToken(t, team.user, policyE2EScopes...)
			c, err := client.NewStreamableHttpClient(base+"/mcp", transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + tok.AccessToken}))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close() })
			servertest.Connect(t, c)
			ps := &polSession{c: c, all: all, userMails: mails, visible: map[string]bool{}}

			// The server resolved the token to the User entity and its groups.
			var id struct {
				User          string   `json:"user"`
				OwnershipRefs []string `json:"ownershipRefs"`
				Agent         string   `json:"agent"`
				Scopes        []string `json:"scopes"`
			}
			servertest.Structured(t, servertest.Call(t, c, "whoami", ""), &id)
			if id.User != team.ref || !slices.Contains(id.OwnershipRefs, team.team) {
				t.Fatalf("whoami = %+v", id)
			}
			g := pol.Grant(policy.Subject{UserRef: id.User, OwnershipRefs: id.OwnershipRefs, ClientID: id.Agent, Scopes: id.Scopes, Authenticated: true})
			ps.exact = g.Exact()
			for _, e := range all {
				if g.Entity(e).Allowed {
					ps.visible[polRef(e)] = true
				}
			}
			for _, r := range team.own {
				if !ps.visible[r] {
					t.Fatalf("oracle: %s should be visible", r)
				}
			}
			for _, r := range team.hidden {
				if ps.visible[r] {
					t.Fatalf("oracle: %s should be hidden", r)
				}
			}

			t.Run("tools/list", func(t *testing.T) {
				res, err := c.ListTools(context.Background(), mcp.ListToolsRequest{})
				if err != nil {
					t.Fatal(err)
				}
				var names []string
				for _, tl := range res.Tools {
					names = append(names, tl.Name)
				}
				sort.Strings(names)
				if !slices.Equal(names, team.tools) {
					t.Errorf("tools = %v, want %v", names, team.tools)
				}
			})

			t.Run("get_entity on every entity", func(t *testing.T) {
				_, missingText, _ := ps.call(t, "catalog_get_entity", `{"ref":"component:default/zz-no-such-entity"}`)
				for _, e := range all {
					ref := polRef(e)
					args := `{"ref":"` + ref + `","detail":"full"}`
					m, text, isErr := ps.call(t, "catalog_get_entity", args)
					switch {
					case ps.visible[ref] && isErr:
						t.Errorf("visible %s: %s", ref, text)
					case ps.visible[ref]:
						ps.checkResult(t, "catalog_get_entity", args, m, text)
					case !isErr:
						t.Errorf("hidden %s was returned", ref)
					case strings.HasPrefix(ref, "component:default/"):
						if strings.Replace(text, ref, "R", 1) != strings.Replace(missingText, "component:default/zz-no-such-entity", "R", 1) {
							t.Errorf("hidden %s answered %q, missing answers %q", ref, text, missingText)
						}
					case !strings.Contains(text, "not found"):
						t.Errorf("hidden %s answered %q", ref, text)
					}
				}
			})

			t.Run("search pages through exactly the visible set", func(t *testing.T) {
				got := map[string]bool{}
				m := ps.mustCall(t, "catalog_search_entities", `{"limit":9}`)
				total, hasTotal := m["totalItems"]
				firstComplete := m["nextCursor"] == nil
				for i := 0; i < 100; i++ {
					ps.checkResult(t, "catalog_search_entities", "page", m, "")
					for _, it := range m["items"].([]any) {
						got[strings.ToLower(it.(map[string]any)["ref"].(string))] = true
					}
					cur, _ := m["nextCursor"].(string)
					if cur == "" {
						break
					}
					m = ps.mustCall(t, "catalog_search_entities", `{"cursor":"`+cur+`","limit":9}`)
				}
				if len(got) != len(ps.visible) {
					t.Errorf("search returned %d entities, the policy allows %d", len(got), len(ps.visible))
				}
				// Backstage's count when it counts exactly the visible
				// entities; otherwise only a complete first page counts.
				if hasTotal != (ps.exact || firstComplete) {
					t.Errorf("totalItems present = %v, Grant.Exact = %v, complete first page = %v", hasTotal, ps.exact, firstComplete)
				}
				if hasTotal && int(total.(float64)) != len(ps.visible) {
					t.Errorf("totalItems %v, visible %d", total, len(ps.visible))
				}
				for _, args := range []string{
					`{"owner":"` + team.other + `"}`,
					`{"kind":"component","owner":"` + team.other + `"}`,
					`{"namespace":"platform"}`,
				} {
					m := ps.mustCall(t, "catalog_search_entities", args)
					ps.checkResult(t, "catalog_search_entities", args, m, "")
					for _, it := range m["items"].([]any) {
						if r := it.(map[string]any)["ref"].(string); !strings.HasPrefix(r, "group:") {
							t.Errorf("%s returned %s", args, r)
						}
					}
				}
			})

			t.Run("relations never reach hidden entities", func(t *testing.T) {
				for _, e := range all {
					ref := polRef(e)
					if !ps.visible[ref] || strings.HasPrefix(ref, "user:") {
						continue
					}
					args := `{"ref":"` + ref + `","direction":"both","depth":2}`
					m := ps.mustCall(t, "catalog_get_relations", args)
					ps.checkResult(t, "catalog_get_relations", args, m, "")
				}
			})

			t.Run("find_owner", func(t *testing.T) {
				for _, r := range team.own {
					args := `{"ref":"` + r + `"}`
					m, text, isErr := ps.call(t, "catalog_find_owner", args)
					if isErr {
						t.Errorf("%s: %s", r, text)
						continue
					}
					ps.checkResult(t, "catalog_find_owner", args, m, text)
				}
			})

			t.Run("facets count only visible entities", func(t *testing.T) {
				for _, facet := range []string{"kind", "spec.type", "spec.profile.email"} {
					args := `{"facet":"` + facet + `"}`
					m := ps.mustCall(t, "catalog_list_facets", args)
					want := map[string]int{}
					for _, e := range all {
						// User e-mails are masked; groups' are not.
						if !ps.visible[polRef(e)] || (facet == "spec.profile.email" && strings.EqualFold(e["kind"].(string), "user")) {
							continue
						}
						var cur any = e
						for _, p := range strings.Split(facet, ".") {
							mm, _ := cur.(map[string]any)
							cur = mm[p]
						}
						if s, _ := cur.(string); s != "" {
							want[strings.ToLower(s)]++
						}
					}
					got := map[string]int{}
					for _, v := range m["values"].([]any) {
						vm := v.(map[string]any)
						got[strings.ToLower(vm["value"].(string))] += int(vm["count"].(float64))
					}
					if fmt.Sprint(got) != fmt.Sprint(want) {
						t.Errorf("facet %s = %v, want %v", facet, got, want)
					}
				}
			})

			t.Run("api definitions", func(t *testing.T) {
				if !slices.Contains(team.tools, "catalog_get_api_definition") {
					return
				}
				m := ps.mustCall(t, "catalog_get_api_definition", `{"ref":"api:default/payments-api"}`)
				if d, _ := m["definition"].(string); len(d) < 100 {
					t.Errorf("definition = %v", m)
				}
				_, hidden, hErr := ps.call(t, "catalog_get_api_definition", `{"ref":"api:default/orders-api"}`)
				_, missing, mErr := ps.call(t, "catalog_get_api_definition", `{"ref":"api:default/zz-no-such-entity"}`)
				if !hErr || !mErr || strings.Replace(hidden, "orders-api", "R", 1) != strings.Replace(missing, "zz-no-such-entity", "R", 1) {
					t.Errorf("hidden %q vs missing %q", hidden, missing)
				}
			})

			t.Run("filter injection reaches the real filter engine harmlessly", func(t *testing.T) {
				probes := []string{team.other + ",kind=user", "kind=group", team.other + "%2Ckind%3Duser",
					team.other + "\uff0ckind\uff1dcomponent", "\uff54eam-fulfillment", "component:platform/log-shipper", "*", "%"}
				for _, arg := range []string{"owner", "type", "kind", "namespace", "system", "lifecycle", "text"} {
					for _, p := range probes {
						b, _ := json.Marshal(map[string]any{arg: p, "limit": 100})
						m, _, isErr := ps.call(t, "catalog_search_entities", string(b))
						if !isErr {
							ps.checkResult(t, "catalog_search_entities", string(b), m, "")
						}
					}
				}
				for _, p := range probes {
					b, _ := json.Marshal(map[string]any{"tags": []string{p}})
					if m, _, isErr := ps.call(t, "catalog_search_entities", string(b)); !isErr {
						ps.checkResult(t, "catalog_search_entities", string(b), m, "")
					}
					b, _ = json.Marshal(map[string]any{"facet": "metadata.name", "kind": p})
					if m, _, isErr := ps.call(t, "catalog_list_facets", string(b)); !isErr {
						for _, v := range m["values"].([]any) {
							name := strings.ToLower(v.(map[string]any)["value"].(string))
							for _, h := range team.hidden {
								if strings.HasSuffix(h, "/"+name) {
									t.Errorf("%s: facet reveals hidden %s", b, h)
								}
							}
						}
					}
					b, _ = json.Marshal(map[string]any{"ref": p})
					if m, text, isErr := ps.call(t, "catalog_get_entity", string(b)); !isErr {
						ps.checkResult(t, "catalog_get_entity", string(b), m, text)
					}
				}
				for _, args := range []string{
					`{"Owner":"` + team.other + `"}`,
					`{"owner":"` + team.other + `","owner":"` + team.other + `"}`,
				} {
					if _, text, isErr := ps.call(t, "catalog_search_entities", args); !isErr {
						t.Errorf("%s accepted: %s", args, text)
					}
				}
			})
		})
	}
}

// TestPolicyGraphRealBackstage: `policy graph` reads the real catalog and
// its per-role counts match the policy applied to every entity.
func TestPolicyGraphRealBackstage(t *testing.T) {
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(pol, []byte(policyE2EPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "config.yaml")
	cfgText := "backstage:\n  baseUrl: " + bs.BaseURL + "\n  token: ${E2E_BACKSTAGE_TOKEN}\npolicy:\n  file: " + pol + "\naudit:\n  path: " + filepath.Join(dir, "audit.log") + "\n"
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "policy", "graph", "--config", cfgPath, "--json")
	cmd.Env = append(os.Environ(), "E2E_BACKSTAGE_TOKEN="+bs.Token)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("policy graph: %v\n%s", err, out)
	}
	var rep struct {
		Catalog struct {
			Entities int            `json:"entities"`
			Kinds    map[string]int `json:"kinds"`
		} `json:"catalog"`
		Roles []struct {
			Name     string         `json:"name"`
			Entities map[string]int `json:"entities"`
		} `json:"roles"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	all := realCatalog(t)
	if rep.Catalog.Entities != len(all) {
		t.Errorf("graph read %d entities, Backstage serves %d", rep.Catalog.Entities, len(all))
	}
	p, _, err := policyfile.Parse([]byte(policyE2EPolicy), "policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The graph's representative subject for a backstageGroups role is a
	// member of the group owning nothing else: its ownership refs are the
	// group and its parents.
	members := map[string]policy.Subject{
		"checkout": {UserRef: "user:default/~representative", OwnershipRefs: []string{"user:default/~representative", "group:default/team-checkout", "group:default/engineering", "group:default/acme"},
			Scopes: []string{"catalog.read", "catalog.apis", "catalog.people"}, Authenticated: true},
		"fulfillment": {UserRef: "user:default/~representative", OwnershipRefs: []string{"user:default/~representative", "group:default/team-fulfillment", "group:default/engineering", "group:default/acme"},
			Scopes: []string{"catalog.read", "catalog.apis", "catalog.people"}, Authenticated: true},
	}
	for _, r := range rep.Roles {
		g := p.Grant(members[r.Name])
		want := map[string]int{}
		for k := range rep.Catalog.Kinds {
			want[k] = 0
		}
		for _, e := range all {
			if g.Entity(e).Allowed {
				want[strings.ToLower(e["kind"].(string))]++
			}
		}
		if fmt.Sprint(r.Entities) != fmt.Sprint(want) {
			t.Errorf("role %s: graph %v, want %v", r.Name, r.Entities, want)
		}
		if want["component"] == 0 {
			t.Errorf("role %s sees no component: the check proves nothing", r.Name)
		}
	}
}

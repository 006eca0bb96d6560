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
	"strings"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/policy"
	"github.com/backstage-mcp/backstage-mcp/policy/policyfile"
	"github.com/backstage-mcp/backstage-mcp/server"
	"github.com/backstage-mcp/backstage-mcp/server/e2e/oidcop"
	"github.com/backstage-mcp/backstage-mcp/server/internal/servertest"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
)

// These tests prove the policy against the real Backstage: two users of
// different teams, with tokens from a real OpenID provider, resolved to
// their User entities and groups by the server, each see only what the
// policy gives them through every tool; the pushed-down filters run in
// Backstage's own filter engine.

// policyE2EPolicy is the two-teams scenario policy, shared with the unit
// suite.
const policyE2EPolicy = servertest.TwoTeamsPolicy

var policyE2EScopes = append([]string{"openid", "email"}, servertest.TwoTeamsScopes...)

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

// TestPolicyTwoTeamsRealBackstage: ben (team-checkout) and farah
// (team-fulfillment) each see exactly what the policy gives them.
func TestPolicyTwoTeamsRealBackstage(t *testing.T) {
	base, op, _ := startPolicyServer(t)
	all := realCatalog(t)
	pol, _, err := policyfile.Parse([]byte(policyE2EPolicy), "policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, team := range servertest.TwoTeams {
		t.Run(strings.TrimPrefix(team.User, "user:default/"), func(t *testing.T) {
			tok := op.UserToken(t, strings.TrimPrefix(team.User, "user:default/"), policyE2EScopes...)
			c := servertest.ConnectHTTP(t, base+"/mcp", tok.AccessToken)

			// The server resolved the token to the User entity and its groups.
			var id struct {
				User          string   `json:"user"`
				OwnershipRefs []string `json:"ownershipRefs"`
				Agent         string   `json:"agent"`
				Scopes        []string `json:"scopes"`
			}
			servertest.Structured(t, servertest.Call(t, c, "whoami", ""), &id)
			if id.User != team.User || !slices.Contains(id.OwnershipRefs, team.Group) {
				t.Fatalf("whoami = %+v", id)
			}
			ps := servertest.NewSession(c, all, pol.Grant(policy.Subject{UserRef: id.User, OwnershipRefs: id.OwnershipRefs, ClientID: id.Agent, Scopes: id.Scopes, Authenticated: true}))
			servertest.CheckTeam(t, ps, team)

			t.Run("filter injection reaches the real filter engine harmlessly", func(t *testing.T) {
				probes := []string{team.OtherTeam + ",kind=user", "kind=group", team.OtherTeam + "%2Ckind%3Duser",
					team.OtherTeam + "\uff0ckind\uff1dcomponent", "\uff54eam-fulfillment", "component:platform/log-shipper", "*", "%"}
				for _, arg := range []string{"owner", "type", "kind", "namespace", "system", "lifecycle", "text"} {
					for _, p := range probes {
						b, _ := json.Marshal(map[string]any{arg: p, "limit": 100})
						m, _, isErr := ps.Call(t, "catalog_search_entities", string(b))
						if !isErr {
							ps.CheckResult(t, "catalog_search_entities", string(b), m, "")
						}
					}
				}
				for _, p := range probes {
					b, _ := json.Marshal(map[string]any{"tags": []string{p}})
					if m, _, isErr := ps.Call(t, "catalog_search_entities", string(b)); !isErr {
						ps.CheckResult(t, "catalog_search_entities", string(b), m, "")
					}
					b, _ = json.Marshal(map[string]any{"facet": "metadata.name", "kind": p})
					if m, _, isErr := ps.Call(t, "catalog_list_facets", string(b)); !isErr {
						for _, v := range m["values"].([]any) {
							name := strings.ToLower(v.(map[string]any)["value"].(string))
							for _, h := range team.Hidden {
								if strings.HasSuffix(h, "/"+name) {
									t.Errorf("%s: facet reveals hidden %s", b, h)
								}
							}
						}
					}
					b, _ = json.Marshal(map[string]any{"ref": p})
					if m, text, isErr := ps.Call(t, "catalog_get_entity", string(b)); !isErr {
						ps.CheckResult(t, "catalog_get_entity", string(b), m, text)
					}
				}
				for _, args := range []string{
					`{"Owner":"` + team.OtherTeam + `"}`,
					`{"owner":"` + team.OtherTeam + `","owner":"` + team.OtherTeam + `"}`,
				} {
					if _, text, isErr := ps.Call(t, "catalog_search_entities", args); !isErr {
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

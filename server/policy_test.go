package server

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/audit"
	"github.com/backstage-mcp/backstage-mcp/server/chain"
	"github.com/backstage-mcp/backstage-mcp/server/identity"
	"github.com/backstage-mcp/backstage-mcp/server/internal/servertest"
	"github.com/backstage-mcp/backstage-mcp/server/ratelimit"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
)

// twoTeamsPolicy is the scenario policy shared with the e2e suite; the
// token scopes give every tool it maps, and the scope of the inline
// policies below.
const twoTeamsPolicy = servertest.TwoTeamsPolicy

var teamScopes = append([]string{"mcp:catalog"}, servertest.TwoTeamsScopes...)

const (
	ben   = "user:default/ben.okafor"   // team-checkout
	farah = "user:default/farah.haddad" // team-fulfillment
	maya  = "user:default/maya.cohen"   // team-platform: no role
	agent = "policy-test-agent"
)

// policyEnv is one server acting for one authenticated principal.
type policyEnv struct {
	s      *Server
	c      *client.Client
	p      *identity.Principal
	audit  string
	policy string
	// sess is the MCP session with its oracle: every entity as the
	// catalog serves it, and what the policy lets p see.
	sess *servertest.Session
}

// writePolicy writes a policy file atomically enough for Reload.
func writePolicy(t *testing.T, path, body string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// newPolicyEnv builds the demo server under pol, acting for userRef as a
// verified (authenticated) user whose groups are resolved in the catalog
// as the identity resolver does.
func newPolicyEnv(t *testing.T, pol, userRef string, scopes ...string) *policyEnv {
	t.Helper()
	dir := t.TempDir()
	env := &policyEnv{audit: filepath.Join(dir, "audit.log"), policy: filepath.Join(dir, "policy.yaml")}
	writePolicy(t, env.policy, pol)
	cfg, err := ParseConfig(nil, "", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Audit.Path = env.audit
	cfg.Policy.File = env.policy
	cfg.Policy.ReloadInterval = -1 // reload on "SIGHUP" only
	fast := ratelimit.PerSecond(100000, 100000)
	cfg.RateLimits.Classes = map[string]ratelimit.Rate{"default": fast}
	cfg.RateLimits.Agent, cfg.RateLimits.Global, cfg.RateLimits.Upstream.Rate = fast, fast, fast
	s, closeFn, err := BuildWithSeams(context.Background(), cfg, BuildOptions{Demo: true, LocalUser: userRef}, passthroughSeams(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeFn)
	cat, ok := s.opts.Catalog.(*catalog.Client)
	if !ok {
		t.Fatalf("catalog is %T", s.opts.Catalog)
	}
	refs, err := identity.NewResolver(IdentityCatalog(cat)).OwnershipRefs(context.Background(), userRef)
	if err != nil {
		t.Fatal(err)
	}
	env.p = &identity.Principal{
		User:      identity.User{Sub: "sub-" + userRef, Email: strings.TrimPrefix(userRef, "user:default/") + "@acme-retail.example", Ref: userRef, OwnershipRefs: refs},
		Agent:     identity.Agent{ClientID: agent},
		Scopes:    scopes,
		Issuer:    "https://idp.test",
		ExpiresAt: time.Now().Add(time.Hour),
	}
	s.opts.LocalPrincipal = func(context.Context) (*identity.Principal, error) { return env.p, nil }
	env.s = s

	// Every entity as the catalog serves it (with relations), read
	// directly, not through the tools.
	var all []map[string]any
	q := catalog.Query{Limit: 500}
	for {
		page, err := cat.Query(context.Background(), q)
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
			break
		}
		q = catalog.Query{Cursor: page.NextCursor, Limit: 500}
	}
	c, err := client.NewInProcessClient(s.MCP())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	servertest.Connect(t, c)
	env.c = c
	cur, _ := s.opts.Policy.Current()
	env.sess = servertest.NewSession(c, all, cur.Grant(chain.Subject(env.p)))
	return env
}

// call runs a tool and returns its structured content (nil on a tool
// error), its text, and whether it was a tool error. A protocol error is
// returned as err.
func (env *policyEnv) call(_ *testing.T, tool, args string) (map[string]any, string, bool, error) {
	return env.sess.CallErr(tool, args)
}

// mustCall is call for calls that must succeed.
func (env *policyEnv) mustCall(t *testing.T, tool, args string) map[string]any {
	t.Helper()
	return env.sess.MustCall(t, tool, args)
}

// checkErrorText fails when an error names a hidden entity (other than by
// echoing the probe, or in the fixed example of the ref format).
func (env *policyEnv) checkErrorText(t *testing.T, args, text, probe string) {
	t.Helper()
	clean := strings.ReplaceAll(text, catalog.RefFormat, "")
	q, _ := json.Marshal(probe)
	clean = strings.ReplaceAll(clean, strings.Trim(string(q), `"`), "")
	clean = strings.ReplaceAll(clean, probe, "")
	lower := strings.ToLower(clean)
	// "entity X not found" and "X is a component, not an API" only echo
	// the caller's own input, for hidden and missing entities alike.
	echo := strings.HasPrefix(text, "entity ") && strings.Contains(text, " not found.") || strings.Contains(text, ", not an API;")
	for _, e := range env.sess.All {
		r := servertest.Ref(e)
		if env.sess.Visible[r] {
			continue
		}
		if !echo && strings.Contains(lower, r) {
			t.Errorf("%s: error text names hidden %s: %q", args, r, text)
		}
		md := e["metadata"].(map[string]any)
		for _, f := range []string{"title", "description"} {
			if v, _ := md[f].(string); len(v) > 8 && strings.Contains(text, v) {
				t.Errorf("%s: error text carries the %s of hidden %s: %q", args, f, r, text)
			}
		}
	}
}

func (env *policyEnv) listTools(t *testing.T) []string {
	t.Helper()
	res, err := env.c.ListTools(context.Background(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
	}
	sort.Strings(names)
	return names
}

// TestPolicyTwoTeamsEveryTool runs the two-teams scenario (servertest)
// on the demo catalog; the e2e suite runs it on a real Backstage.
func TestPolicyTwoTeamsEveryTool(t *testing.T) {
	for _, team := range servertest.TwoTeams {
		t.Run(strings.TrimPrefix(team.User, "user:default/"), func(t *testing.T) {
			env := newPolicyEnv(t, twoTeamsPolicy, team.User, teamScopes...)
			servertest.CheckTeam(t, env.sess, team)

			t.Run("a tool not granted answers like an unknown tool", func(t *testing.T) {
				_, uText, uIsErr, uErr := env.call(t, "no_such_tool", `{"ref":"component:default/checkout-service"}`)
				for _, name := range []string{"catalog_get_api_definition", "catalog_list_facets", "whoami"} {
					if slices.Contains(team.Tools, name) {
						continue
					}
					_, text, isErr, err := env.call(t, name, `{"ref":"component:default/checkout-service"}`)
					if isErr != uIsErr || (err == nil) != (uErr == nil) ||
						strings.ReplaceAll(text, name, "X") != strings.ReplaceAll(uText, "no_such_tool", "X") ||
						(err != nil && strings.ReplaceAll(err.Error(), name, "X") != strings.ReplaceAll(uErr.Error(), "no_such_tool", "X")) {
						t.Errorf("%s: (%q, %v, %v) differs from an unknown tool: (%q, %v, %v)", name, text, isErr, err, uText, uIsErr, uErr)
					}
				}
			})
		})
	}
}

// TestPolicyFieldMasksEveryTool: the checkout role masks spec.profile.email
// of Users; no tool may hand it out, facets included.
func TestPolicyFieldMasksEveryTool(t *testing.T) {
	env := newPolicyEnv(t, twoTeamsPolicy, ben, teamScopes...)
	calls := []struct{ tool, args string }{
		{"catalog_get_entity", `{"ref":"user:default/chloe.nguyen","detail":"full"}`},
		{"catalog_get_entity", `{"ref":"user:default/chloe.nguyen","fields":["spec.profile.email","spec.profile"]}`},
		{"catalog_get_entity", `{"ref":"user:default/chloe.nguyen"}`},
		{"catalog_search_entities", `{"kind":"user","limit":100,"fields":["spec.profile.email","metadata.name"]}`},
		{"catalog_search_entities", `{"kind":"user","limit":100}`},
		{"catalog_search_entities", `{"kind":"user","text":"acme-retail.example","limit":100}`},
		{"catalog_get_relations", `{"ref":"group:default/team-checkout","relations":["hasMember"]}`},
		{"catalog_find_owner", `{"ref":"component:default/checkout-service"}`},
		{"catalog_list_facets", `{"facet":"spec.profile.email","kind":"User"}`},
		{"catalog_list_facets", `{"facet":"spec.profile.email"}`},
	}
	for _, c := range calls {
		t.Run(c.tool+" "+c.args, func(t *testing.T) {
			m, text, isErr, err := env.call(t, c.tool, c.args)
			if err != nil || isErr {
				t.Fatalf("err %v, %q", err, text)
			}
			env.sess.CheckResult(t, c.tool, c.args, m, text)
			b, _ := json.Marshal(m)
			if strings.Contains(string(b), `"email":"`) && c.tool != "catalog_find_owner" {
				t.Errorf("an email field survived: %s", b)
			}
		})
	}
}

// injectionProbes try to widen a filter or reach another namespace.
var injectionProbes = []string{
	"team-checkout,kind=user",
	"kind=group",
	"a=b",
	"component:default/checkout-service,metadata.name=orders-service",
	"team-checkout%2Ckind%3Duser",
	"team-checkout%252Ckind%253Dgroup",
	"team\u201acheckout",                // single low-9 quotation mark, looks like a comma
	"team-checkout\uff0ckind\uff1duser", // fullwidth comma and equals
	"\uff54eam-fulfillment",             // fullwidth t
	"team-fulfillment\u200b",            // zero-width space
	"component:platform/log-shipper",    // another namespace
	"component:DEFAULT/ORDERS-SERVICE",  // case variant of a hidden ref
	"component:other/checkout-service",  // a visible name in another namespace
	"group:default/team-fulfillment",
	"*",
	"%",
	"orders%",
	"",
	strings.Repeat("a", 300),
}

// stringArgs are the string arguments of every tool, with the other
// arguments a call needs.
var stringArgs = []struct {
	tool, arg string
	base      map[string]any
	list      bool
}{
	{tool: "catalog_get_entity", arg: "ref"},
	{tool: "catalog_get_entity", arg: "kind", base: map[string]any{"name": "orders-service"}},
	{tool: "catalog_get_entity", arg: "name", base: map[string]any{"kind": "component"}},
	{tool: "catalog_get_entity", arg: "namespace", base: map[string]any{"kind": "component", "name": "orders-service"}},
	{tool: "catalog_get_entity", arg: "detail", base: map[string]any{"ref": "component:default/checkout-service"}},
	{tool: "catalog_get_entity", arg: "fields", list: true, base: map[string]any{"ref": "component:default/checkout-service"}},
	{tool: "catalog_search_entities", arg: "kind"},
	{tool: "catalog_search_entities", arg: "type"},
	{tool: "catalog_search_entities", arg: "owner"},
	{tool: "catalog_search_entities", arg: "lifecycle"},
	{tool: "catalog_search_entities", arg: "namespace"},
	{tool: "catalog_search_entities", arg: "system"},
	{tool: "catalog_search_entities", arg: "tags", list: true},
	{tool: "catalog_search_entities", arg: "text"},
	{tool: "catalog_search_entities", arg: "fields", list: true},
	{tool: "catalog_search_entities", arg: "cursor"},
	{tool: "catalog_search_entities", arg: "order"},
	{tool: "catalog_get_relations", arg: "ref"},
	{tool: "catalog_get_relations", arg: "direction", base: map[string]any{"ref": "component:default/checkout-service"}},
	{tool: "catalog_get_relations", arg: "relations", list: true, base: map[string]any{"ref": "component:default/checkout-service"}},
	{tool: "catalog_find_owner", arg: "ref"},
	{tool: "catalog_get_api_definition", arg: "ref"},
	{tool: "catalog_list_facets", arg: "facet"},
	{tool: "catalog_list_facets", arg: "kind", base: map[string]any{"facet": "metadata.name"}},
}

func TestPolicyInjectionProbes(t *testing.T) {
	env := newPolicyEnv(t, twoTeamsPolicy, ben, teamScopes...)
	for _, sa := range stringArgs {
		t.Run(sa.tool+"."+sa.arg, func(t *testing.T) {
			for _, probe := range injectionProbes {
				a := map[string]any{}
				for k, v := range sa.base {
					a[k] = v
				}
				if sa.list {
					a[sa.arg] = []string{probe}
				} else {
					a[sa.arg] = probe
				}
				b, _ := json.Marshal(a)
				m, text, isErr, err := env.call(t, sa.tool, string(b))
				if err != nil {
					t.Errorf("%s: protocol error %v", b, err)
					continue
				}
				if isErr {
					env.checkErrorText(t, string(b), text, probe)
					continue
				}
				env.sess.CheckResult(t, sa.tool, string(b), m, text)
				if sa.tool == "catalog_list_facets" {
					for _, v := range m["values"].([]any) {
						if s := v.(map[string]any)["value"].(string); strings.Contains(s, "orders-service") || strings.Contains(s, "log-shipper") {
							t.Errorf("%s: facet reveals hidden %s", b, s)
						}
					}
				}
			}
		})
	}
}

func TestPolicyArgumentKeyTricks(t *testing.T) {
	env := newPolicyEnv(t, twoTeamsPolicy, ben, teamScopes...)
	cases := []struct {
		name, tool, args string
		wantErr          string
	}{
		{"case variant key", "catalog_get_entity", `{"Ref":"component:default/orders-service"}`, `unknown argument "Ref"`},
		{"case variant beside the real key", "catalog_get_entity", `{"ref":"component:default/checkout-service","REF":"component:default/orders-service"}`, `unknown argument "REF"`},
		{"duplicate key, hidden second", "catalog_get_entity", `{"ref":"component:default/checkout-service","ref":"component:default/orders-service"}`, "more than once"},
		{"duplicate key, hidden first", "catalog_get_entity", `{"ref":"component:default/orders-service","ref":"component:default/checkout-service"}`, "more than once"},
		{"duplicate owner in search", "catalog_search_entities", `{"owner":"team-checkout","owner":"team-fulfillment"}`, "more than once"},
		{"case variant search key", "catalog_search_entities", `{"Owner":"team-fulfillment"}`, `unknown argument "Owner"`},
		{"unicode escape of the key", "catalog_get_entity", `{"r\u0065f":"component:default/checkout-service","ref":"component:default/orders-service"}`, "more than once"},
		{"kind in the facet filter", "catalog_list_facets", `{"facet":"metadata.name","Kind":"component"}`, `unknown argument "Kind"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, text, isErr, err := env.call(t, tc.tool, tc.args)
			if err != nil {
				t.Fatal(err)
			}
			if !isErr || !strings.Contains(text, tc.wantErr) {
				t.Errorf("got (%v, %q), want error %q", m, text, tc.wantErr)
			}
		})
	}
}

// TestPolicyTotalItemsExactness: on a page with more to come, totalItems is
// given exactly when the grant can be pushed down exactly (policy.Grant.Exact),
// and is then right; a complete first page always carries its count.
func TestPolicyTotalItemsExactness(t *testing.T) {
	cases := []struct {
		name, pol, user string
		exact           bool
	}{
		{name: "owner and kind rules with users scope: exact", pol: twoTeamsPolicy, user: ben, exact: true},
		{name: "no users scope: inexact", pol: twoTeamsPolicy, user: farah},
		{name: "deny rule: inexact", user: ben, pol: `version: 1
scopes: { "mcp:catalog": ["catalog:read", "catalog:read:users"] }
roles:
  - name: all
    bind: { authenticated: true }
    tools: ["catalog:read", "catalog:read:users"]
    entities:
      allow: [ { IS_ENTITY_KIND: { kinds: [component] } } ]
      deny: [ { HAS_SPEC: { key: lifecycle, value: experimental } } ]
`},
		{name: "kind and namespace only: exact", user: ben, exact: true, pol: `version: 1
scopes: { "mcp:catalog": ["catalog:read", "catalog:read:users"] }
roles:
  - name: all
    bind: { authenticated: true }
    tools: ["catalog:read", "catalog:read:users"]
    entities:
      allow: [ { allOf: [ { IS_ENTITY_KIND: { kinds: [component, api] } }, { IN_NAMESPACE: { namespaces: [default] } } ] } ]
`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := newPolicyEnv(t, tc.pol, tc.user, teamScopes...)
			pol, _ := env.s.opts.Policy.Current()
			if got := pol.Grant(chain.Subject(env.p)).Exact(); got != tc.exact {
				t.Fatalf("Grant.Exact = %v, want %v", got, tc.exact)
			}
			// A first page with more to come: Backstage's count is given
			// only when it counts exactly what the caller may see.
			m := env.mustCall(t, "catalog_search_entities", `{"limit":2}`)
			total, has := m["totalItems"]
			if has != tc.exact {
				t.Errorf("totalItems present = %v, want %v (%v)", has, tc.exact, m["note"])
			}
			if has && int(total.(float64)) != len(env.sess.Visible) {
				t.Errorf("totalItems %v, visible %d", total, len(env.sess.Visible))
			}
			if !has && m["note"] == nil {
				t.Errorf("no note explains the missing totalItems")
			}
			// A complete first page is its own count, exact or not.
			m = env.mustCall(t, "catalog_search_entities", `{"limit":100}`)
			if total, has := m["totalItems"]; !has || int(total.(float64)) != len(env.sess.Visible) || len(m["items"].([]any)) != len(env.sess.Visible) {
				t.Errorf("complete page: totalItems %v, items %d, visible %d", total, len(m["items"].([]any)), len(env.sess.Visible))
			}
		})
	}
}

// TestPolicyNoRoleNoTools: a user no role binds sees no tools and every
// tool answers like an unknown one.
func TestPolicyNoRoleNoTools(t *testing.T) {
	env := newPolicyEnv(t, twoTeamsPolicy, maya, teamScopes...)
	if got := env.listTools(t); len(got) != 0 {
		t.Errorf("tools/list = %v", got)
	}
	_, _, _, uErr := env.call(t, "no_such_tool", `{}`)
	_, _, _, err := env.call(t, "catalog_search_entities", `{}`)
	if (err == nil) != (uErr == nil) || (err != nil && strings.ReplaceAll(err.Error(), "catalog_search_entities", "X") != strings.ReplaceAll(uErr.Error(), "no_such_tool", "X")) {
		t.Errorf("search: %v; unknown tool: %v", err, uErr)
	}
}

// TestPolicyAgentScopes: a token without the catalog scope sees no tools,
// whatever the user's roles grant.
func TestPolicyAgentScopes(t *testing.T) {
	env := newPolicyEnv(t, twoTeamsPolicy, ben, "openid", "profile")
	if got := env.listTools(t); len(got) != 0 {
		t.Errorf("tools/list = %v", got)
	}
}

// TestPolicyReload: a new file brings new rights; an invalid file keeps the
// old policy; WatchPolicy audits both.
func TestPolicyReload(t *testing.T) {
	env := newPolicyEnv(t, twoTeamsPolicy, ben, teamScopes...)
	canSee := func(ref string) bool {
		_, _, isErr, err := env.call(t, "catalog_get_entity", `{"ref":"`+ref+`"}`)
		if err != nil {
			t.Fatal(err)
		}
		return !isErr
	}
	if canSee("component:default/orders-service") || !canSee("component:default/checkout-service") {
		t.Fatal("initial policy not in force")
	}

	wider := strings.Replace(twoTeamsPolicy, "kinds: [group, user]", "kinds: [group, user, component]", 1)
	writePolicy(t, env.policy, wider)
	changed, err := env.s.opts.Policy.Reload()
	if err != nil || !changed {
		t.Fatalf("reload: changed=%v err=%v", changed, err)
	}
	if !canSee("component:default/orders-service") {
		t.Error("after reload: orders-service still hidden")
	}
	if got := env.listTools(t); len(got) != 9 {
		t.Errorf("tools after reload = %v", got)
	}

	writePolicy(t, env.policy, wider+"  - name: broken\n    bind: { users: [not-a-ref] }\n    tools: [catalog_nope]\n")
	if changed, err := env.s.opts.Policy.Reload(); err == nil || changed {
		t.Fatalf("invalid policy accepted: changed=%v err=%v", changed, err)
	}
	if !canSee("component:default/orders-service") || canSee("api:default/orders-api") {
		t.Error("the previous (wider) policy is not the one in force after a rejected reload")
	}

	// Through WatchPolicy: one reload of a valid file, one of an invalid
	// file; both audited.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hup := make(chan os.Signal)
	done := make(chan struct{})
	go func() { env.s.WatchPolicy(ctx, hup); close(done) }()
	// Watch handles one signal at a time: a send returns once the reload of
	// the previous signal has finished. So the valid file is loaded exactly
	// once (later reloads of the same bytes change nothing); the reload of
	// the second signal may already see the invalid file, so the invalid
	// file is rejected one to three times.
	writePolicy(t, env.policy, twoTeamsPolicy)
	hup <- os.Interrupt
	hup <- os.Interrupt
	writePolicy(t, env.policy, "version: 2\n")
	hup <- os.Interrupt
	hup <- os.Interrupt
	cancel()
	<-done
	if canSee("component:default/orders-service") {
		t.Error("after WatchPolicy reload: orders-service visible again")
	}
	data, err := os.ReadFile(env.audit)
	if err != nil {
		t.Fatal(err)
	}
	var loaded, rejected int
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var r audit.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if r.Type != audit.TypePolicyReload {
			continue
		}
		switch {
		case strings.HasPrefix(r.Reason, "loaded policy "):
			loaded++
		case strings.HasPrefix(r.Reason, "rejected: ") && strings.Contains(r.Reason, "version"):
			rejected++
		default:
			t.Errorf("unexpected reload record %q", r.Reason)
		}
		if testing.Verbose() {
			t.Logf("audit: %s %s", r.Type, r.Reason)
		}
	}
	if loaded != 1 || rejected < 1 || rejected > 3 {
		t.Errorf("audit has %d loaded and %d rejected policy_reload records, want 1 and 1 to 3", loaded, rejected)
	}
}

// TestPolicyRefsIntoOtherNamespaces: a visible name in another namespace,
// or a hidden entity spelt in another case, is "not found".
func TestPolicyRefsIntoOtherNamespaces(t *testing.T) {
	env := newPolicyEnv(t, twoTeamsPolicy, ben, teamScopes...)
	for _, ref := range []string{"component:platform/log-shipper", "component:platform/checkout-service", "Component:Default/Orders-Service", "component:default/ORDERS-SERVICE"} {
		for _, tool := range []string{"catalog_get_entity", "catalog_get_relations", "catalog_find_owner"} {
			_, text, isErr, err := env.call(t, tool, `{"ref":"`+ref+`"}`)
			if err != nil || !isErr || !strings.Contains(text, "not found") {
				t.Errorf("%s(%s) = %q, %v", tool, ref, text, err)
			}
		}
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/policy/review"
	"github.com/backstage-mcp/backstage-mcp/server"
	"github.com/backstage-mcp/backstage-mcp/server/demo"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog/memcatalog"
)

const fakeToken = "graph-test-token-0123456789"

// graphPolicy exercises every kind of binding over the demo catalog.
const graphPolicy = `version: 1
scopes:
  "mcp:catalog": ["catalog:read"]
  "mcp:apis": ["catalog:api-definitions"]
  "mcp:people": ["catalog:read:users"]
roles:
  - name: admins
    bind: { users: ["user:default/maya.cohen"] }
    tools: ["catalog:read", "catalog:api-definitions", "catalog:read:users"]
    entities:
      allow:
        - IN_NAMESPACE: { namespaces: [default, platform] }
  - name: checkout
    bind: { backstageGroups: ["group:default/team-checkout"] }
    tools: ["catalog:read"]
    entities:
      allow:
        - IS_ENTITY_OWNER: { claims: [$ownershipRefs] }
        - IS_ENTITY_KIND: { kinds: [group] }
  - name: everyone
    bind: { authenticated: true }
    tools: ["catalog_search_entities", "catalog:read:users"]
    entities:
      allow:
        - IS_ENTITY_KIND: { kinds: [api, user] }
    fieldMasks:
      - kinds: [user]
        fields: ["spec.profile.email"]
  - name: bots
    bind: { agents: [ci-bot] }
    tools: ["catalog_search_entities", "catalog_get_api_definition"]
    entities:
      allow:
        - IS_ENTITY_KIND: { kinds: [component] }
      deny:
        - HAS_SPEC: { key: lifecycle, value: experimental }
  - name: demo
    bind: { anonymous: true }
    tools: ["whoami"]
`

// fakeBackstage serves the demo catalog over HTTP like Backstage does.
func fakeBackstage(t *testing.T) (string, []map[string]any) {
	t.Helper()
	ents, err := demo.Entities()
	if err != nil {
		t.Fatal(err)
	}
	mc, err := memcatalog.New(ents, memcatalog.WithToken(fakeToken))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(mc.Handler())
	t.Cleanup(hs.Close)
	return hs.URL, ents
}

// writeSetup writes a policy and a config pointing at baseURL.
func writeSetup(t *testing.T, baseURL, pol string) (cfgPath, polPath string) {
	t.Helper()
	dir := t.TempDir()
	polPath = filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(polPath, []byte(pol), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath = filepath.Join(dir, "config.yaml")
	cfg := "policy:\n  file: " + polPath + "\naudit:\n  path: " + filepath.Join(dir, "audit.log") + "\n"
	if baseURL != "" {
		cfg = "backstage:\n  baseUrl: " + baseURL + "\n  token: " + fakeToken + "\n" + cfg
	}
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgPath, polPath
}

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// ownedBy is an oracle independent of the policy engine: the entity's
// spec.owner resolved the way Backstage resolves it (kind group, the
// entity's namespace).
func ownedBy(e map[string]any) string {
	spec, _ := e["spec"].(map[string]any)
	owner, _ := spec["owner"].(string)
	if owner == "" {
		return ""
	}
	md, _ := e["metadata"].(map[string]any)
	ns, _ := md["namespace"].(string)
	if ns == "" {
		ns = "default"
	}
	if !strings.Contains(owner, ":") {
		owner = "group:" + owner
	}
	if !strings.Contains(owner, "/") {
		i := strings.Index(owner, ":")
		owner = owner[:i+1] + ns + "/" + owner[i+1:]
	}
	return strings.ToLower(owner)
}

func kindOf(e map[string]any) string {
	k, _ := e["kind"].(string)
	return strings.ToLower(k)
}

func TestGraphAgainstFakeCatalog(t *testing.T) {
	url, ents := fakeBackstage(t)
	cfg, _ := writeSetup(t, url, graphPolicy)
	code, out, errOut := runCLI(t, "policy", "graph", "--config", cfg, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep review.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, out)
	}
	total := map[string]int{}
	for _, e := range ents {
		total[kindOf(e)]++
	}
	if rep.Catalog.Entities != len(ents) || len(rep.Catalog.Kinds) != len(total) {
		t.Fatalf("catalog = %+v, want %d entities %v", rep.Catalog, len(ents), total)
	}
	for k, n := range total {
		if rep.Catalog.Kinds[k] != n {
			t.Errorf("catalog %s = %d, want %d", k, rep.Catalog.Kinds[k], n)
		}
	}
	roles := map[string]review.Role{}
	for _, r := range rep.Roles {
		roles[r.Name] = r
	}
	checkoutOwners := map[string]bool{"group:default/team-checkout": true, "group:default/engineering": true, "group:default/acme": true}
	want := map[string]map[string]int{"admins": total, "checkout": {}, "everyone": {}, "bots": {}, "demo": {}}
	for _, e := range ents {
		k := kindOf(e)
		if k == "group" || checkoutOwners[ownedBy(e)] {
			want["checkout"][k]++
		}
		if k == "api" || k == "user" {
			want["everyone"][k]++
		}
		spec, _ := e["spec"].(map[string]any)
		if k == "component" && spec["lifecycle"] != "experimental" {
			want["bots"][k]++
		}
	}
	if want["checkout"]["component"] == 0 || want["bots"]["component"] == 0 {
		t.Fatalf("oracle found nothing: %v", want)
	}
	cases := []struct {
		role       string
		tools      []string
		everything bool
		owner      bool
		masks      []string
		subject    string
	}{
		{role: "admins", tools: []string{"catalog_find_dependents", "catalog_find_owner", "catalog_get_api_definition", "catalog_get_entity", "catalog_get_relations", "catalog_list_changes", "catalog_list_facets", "catalog_search_entities", "whoami"},
			everything: true, subject: "user:default/maya.cohen (groups: group:default/acme, group:default/operations, group:default/team-platform)"},
		{role: "checkout", tools: []string{"catalog_find_dependents", "catalog_find_owner", "catalog_get_entity", "catalog_get_relations", "catalog_list_changes", "catalog_list_facets", "catalog_search_entities", "whoami"},
			owner: true, subject: "a member of group:default/team-checkout (ownership: group:default/team-checkout, group:default/acme, group:default/engineering)"},
		{role: "everyone", tools: []string{"catalog_search_entities"}, masks: []string{"user: spec.profile.email"}, subject: "any signed-in user owning nothing"},
		{role: "bots", tools: []string{"catalog_get_api_definition", "catalog_search_entities"}, subject: "any signed-in user owning nothing via agent ci-bot"},
		{role: "demo", tools: []string{"whoami"}, subject: "anonymous caller"},
	}
	for _, tc := range cases {
		t.Run(tc.role, func(t *testing.T) {
			r, ok := roles[tc.role]
			if !ok {
				t.Fatalf("role missing from %v", rep.Roles)
			}
			if strings.Join(r.Tools, ",") != strings.Join(tc.tools, ",") {
				t.Errorf("tools = %v, want %v", r.Tools, tc.tools)
			}
			sum := 0
			for k := range total {
				if r.Entities[k] != want[tc.role][k] {
					t.Errorf("%s = %d, want %d", k, r.Entities[k], want[tc.role][k])
				}
				sum += want[tc.role][k]
			}
			if r.Visible != sum || len(r.Entities) != len(total) {
				t.Errorf("visible = %d over %d kinds, want %d over %d", r.Visible, len(r.Entities), sum, len(total))
			}
			if r.ReachesEverything != tc.everything || r.OwnerScoped != tc.owner {
				t.Errorf("everything=%v owner=%v, want %v %v", r.ReachesEverything, r.OwnerScoped, tc.everything, tc.owner)
			}
			if strings.Join(r.Masks, "|") != strings.Join(tc.masks, "|") {
				t.Errorf("masks = %v, want %v", r.Masks, tc.masks)
			}
			if len(r.Subjects) != 1 || r.Subjects[0] != tc.subject {
				t.Errorf("subjects = %q, want %q", r.Subjects, tc.subject)
			}
		})
	}

	t.Run("stable JSON", func(t *testing.T) {
		_, again, _ := runCLI(t, "policy", "graph", "--config", cfg, "--json")
		if again != out {
			t.Errorf("two runs differ:\n%s\n---\n%s", out, again)
		}
	})
	t.Run("table", func(t *testing.T) {
		code, table, errOut := runCLI(t, "policy", "graph", "--config", cfg)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		lines := strings.Split(table, "\n")
		var head, admins string
		for _, l := range lines {
			if strings.HasPrefix(l, "ROLE ") {
				head = l
			}
			if strings.HasPrefix(l, "admins ") {
				admins = l
			}
		}
		if head == "" || admins == "" {
			t.Fatalf("no table:\n%s", table)
		}
		// Aligned: every column starts at the same offset in both rows.
		if strings.Index(head, "COMPONENT") != strings.Index(admins, "21/21") {
			t.Errorf("columns not aligned:\n%s\n%s", head, admins)
		}
		for _, frag := range []string{"EVERYTHING", "OWNER-SCOPED", "role checkout [OWNER-SCOPED]", "user: spec.profile.email", "anonymous caller"} {
			if !strings.Contains(table, frag) {
				t.Errorf("table lacks %q:\n%s", frag, table)
			}
		}
	})
}

func TestGraphDiff(t *testing.T) {
	url, _ := fakeBackstage(t)
	cfg, polPath := writeSetup(t, url, graphPolicy)
	_, oldJSON, _ := runCLI(t, "policy", "graph", "--config", cfg, "--json")
	oldPath := filepath.Join(t.TempDir(), "old.json")
	if err := os.WriteFile(oldPath, []byte(oldJSON), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("unchanged", func(t *testing.T) {
		code, out, errOut := runCLI(t, "policy", "graph", "--config", cfg, "--diff", oldPath)
		if code != 0 || !strings.Contains(out, "0 widened, 0 narrowed") || !strings.Contains(out, "policy: unchanged") {
			t.Fatalf("exit %d: %s %s", code, out, errOut)
		}
	})

	changed := strings.NewReplacer(
		// everyone gains a tool and components; loses its mask.
		`tools: ["catalog_search_entities", "catalog:read:users"]
    entities:
      allow:
        - IS_ENTITY_KIND: { kinds: [api, user] }
    fieldMasks:
      - kinds: [user]
        fields: ["spec.profile.email"]`,
		`tools: ["catalog_search_entities", "catalog:read:users", "catalog_get_entity"]
    entities:
      allow:
        - IS_ENTITY_KIND: { kinds: [api, user, component] }`,
		// admins narrows to the default namespace and gains a mask.
		`        - IN_NAMESPACE: { namespaces: [default, platform] }`,
		`        - IN_NAMESPACE: { namespaces: [default] }
    fieldMasks:
      - fields: ["metadata.annotations.*"]`,
	).Replace(graphPolicy)
	if changed == graphPolicy {
		t.Fatal("replacement did not apply")
	}
	// bots removed entirely.
	changed = changed[:strings.Index(changed, "  - name: bots")] + changed[strings.Index(changed, "  - name: demo"):]
	if err := os.WriteFile(polPath, []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "policy", "graph", "--config", cfg, "--diff", oldPath)
	if code != 1 {
		t.Fatalf("exit %d (want 1: widened): %s %s", code, out, errOut)
	}
	for _, frag := range []string{
		"WIDENED   role everyone: tool catalog_get_entity added",
		"WIDENED   role everyone: component 0 → 21 (+21)",
		`WIDENED   role everyone: field mask "user: spec.profile.email" removed`,
		"narrowed  role admins: component 21 → 19 (-2)",
		`narrowed  role admins: field mask "*: metadata.annotations.*" added`,
		"narrowed  role admins: no longer reaches everything",
		"narrowed  role bots: removed",
		"policy: sha256 ",
		"catalog: same entity counts",
	} {
		if !strings.Contains(out, frag) {
			t.Errorf("diff lacks %q:\n%s", frag, out)
		}
	}
	code, js, _ := runCLI(t, "policy", "graph", "--config", cfg, "--diff", oldPath, "--json")
	var d review.Diff
	if err := json.Unmarshal([]byte(js), &d); err != nil || code != 1 || len(d.Widened) != 3 || d.OldPolicy == d.NewPolicy {
		t.Errorf("json diff (exit %d, %v): %s", code, err, js)
	}
}

func TestGraphDiffPureFunction(t *testing.T) {
	old := &review.Report{Version: 1, Policy: "a", Catalog: review.Counts{Entities: 3, Kinds: map[string]int{"api": 3}},
		Roles: []review.Role{{Name: "r", Tools: []string{"whoami"}, Entities: map[string]int{"api": 1}, Masks: []string{}}}}
	cur := &review.Report{Version: 1, Policy: "a", Catalog: review.Counts{Entities: 4, Kinds: map[string]int{"api": 4}},
		Roles: []review.Role{
			{Name: "r", Tools: []string{"whoami"}, Entities: map[string]int{"api": 4}, Masks: []string{}, ReachesEverything: true},
			{Name: "n", Tools: []string{}, Entities: map[string]int{"api": 0}, Masks: []string{}},
		}}
	d := review.Compare(old, cur)
	want := []string{"role r: api 1 → 4 (+3)", "role r: now reaches EVERYTHING", "role n: new role (tools (none); 0 entities visible)"}
	if strings.Join(d.Widened, "|") != strings.Join(want, "|") || len(d.Narrowed) != 0 {
		t.Errorf("diff = %+v", d)
	}
	if strings.Join(d.Catalog, "|") != "entities 3 → 4|api 3 → 4" {
		t.Errorf("catalog = %v", d.Catalog)
	}
}

func TestGraphPagingAndBound(t *testing.T) {
	url, ents := fakeBackstage(t)
	cfg, _ := writeSetup(t, url, graphPolicy)
	// The fake serves at most server.ReviewPageSize per page; the demo catalog is
	// smaller, so bound the read below its size to see truncation.
	code, out, errOut := runCLI(t, "policy", "graph", "--config", cfg, "--json", "--max-entities", "10")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep review.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.Catalog.Truncated || rep.Catalog.Entities != 10 || len(ents) <= 10 {
		t.Errorf("catalog = %+v", rep.Catalog)
	}
}

func TestGraphPagesThroughCursors(t *testing.T) {
	ents, err := demo.Entities()
	if err != nil {
		t.Fatal(err)
	}
	// More entities than one page: copies of a component in many namespaces.
	for i := 0; i < server.ReviewPageSize+37; i++ {
		ents = append(ents, map[string]any{
			"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
			"metadata": map[string]any{"name": "bulk", "namespace": "bulk" + itoa(i)},
			"spec":     map[string]any{"type": "service", "lifecycle": "production", "owner": "group:default/team-checkout"},
		})
	}
	mc, err := memcatalog.New(ents, memcatalog.WithToken(fakeToken))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(mc.Handler())
	t.Cleanup(hs.Close)
	cfg, _ := writeSetup(t, hs.URL, graphPolicy)
	code, out, errOut := runCLI(t, "policy", "graph", "--config", cfg, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rep review.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Catalog.Entities != len(ents) || rep.Catalog.Truncated {
		t.Fatalf("read %d of %d entities", rep.Catalog.Entities, len(ents))
	}
	pages := 0
	for _, r := range mc.Requests() {
		if strings.Contains(r.Path, "by-query") && !strings.Contains(r.RawQuery, "spec.profile.email") {
			pages++
		}
	}
	if pages < 2 {
		t.Errorf("read the catalog in %d by-query requests, want paging", pages)
	}
	for _, r := range rep.Roles {
		if r.Name == "checkout" && r.Entities["component"] < server.ReviewPageSize+37 {
			t.Errorf("checkout sees %d components; the bulk ones are owned by team-checkout", r.Entities["component"])
		}
		if r.Name == "admins" && r.ReachesEverything {
			t.Errorf("admins reach only namespaces default and platform, not bulk*")
		}
	}
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

func TestGraphErrors(t *testing.T) {
	url, _ := fakeBackstage(t)
	cfgNoCatalog, _ := writeSetup(t, "", graphPolicy)
	cfg, _ := writeSetup(t, url, graphPolicy)
	badOld := filepath.Join(t.TempDir(), "old.json")
	_ = os.WriteFile(badOld, []byte(`{"roles":[]}`), 0o600)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no config", []string{"policy", "graph"}, "--config FILE is required"},
		{"no backstage", []string{"policy", "graph", "--config", cfgNoCatalog}, "sets no backstage.baseUrl"},
		{"bad old report", []string{"policy", "graph", "--config", cfg, "--diff", badOld}, "is not a policy graph --json report"},
		{"missing old report", []string{"policy", "graph", "--config", cfg, "--diff", badOld + ".nope"}, "no such file"},
		{"bad bound", []string{"policy", "graph", "--config", cfg, "--max-entities", "0"}, "must be positive"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, tc.args...)
			if code != 2 || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, errOut, tc.want)
			}
		})
	}
	t.Run("backstage down", func(t *testing.T) {
		hs := httptest.NewServer(nil)
		down := hs.URL
		hs.Close()
		cfgDown, _ := writeSetup(t, down, graphPolicy)
		code, _, errOut := runCLI(t, "policy", "graph", "--config", cfgDown)
		if code != 2 || !strings.Contains(errOut, "policy graph:") {
			t.Errorf("exit %d: %s", code, errOut)
		}
	})
}

// explainPolicy: team members see what their teams own; people without e-mail.
const explainPolicy = `version: 1
scopes:
  "mcp:catalog": ["catalog:read", "catalog:read:users"]
roles:
  - name: teams
    bind: { authenticated: true }
    tools: ["catalog:read", "catalog:read:users"]
    entities:
      allow:
        - IS_ENTITY_OWNER: { claims: [$ownershipRefs] }
        - IS_ENTITY_KIND: { kinds: [user] }
    fieldMasks:
      - kinds: [user]
        fields: ["spec.profile.email"]
`

func TestExplainWithConfig(t *testing.T) {
	url, _ := fakeBackstage(t)
	cfg, polPath := writeSetup(t, url, explainPolicy)
	cfgOffline, _ := writeSetup(t, "", explainPolicy)
	entityFile := filepath.Join(t.TempDir(), "e.json")
	_ = os.WriteFile(entityFile, []byte(`{"kind":"Component","metadata":{"name":"x"},"relations":[{"type":"ownedBy","targetRef":"group:default/team-checkout"}]}`), 0o600)
	cases := []struct {
		name   string
		args   []string
		code   int
		want   []string
		absent []string
	}{
		{name: "email resolves user and groups; own team's entity allowed",
			args: []string{"--config", cfg, "--email", "ben.okafor@acme-retail.example", "--scopes", "mcp:catalog", "--tool", "catalog_get_entity", "--entity", "component:default/checkout-service"},
			code: 0,
			want: []string{"ben.okafor@acme-retail.example resolved to user:default/ben.okafor", "groups of user:default/ben.okafor resolved in the catalog (memberOf, then childOf): group:default/acme, group:default/engineering, group:default/team-checkout",
				"entity component:default/checkout-service fetched from the catalog", "decision: ALLOW", "entity component:default/checkout-service: allowed"}},
		{name: "other team's entity denied",
			args: []string{"--config", cfg, "--email", "farah.haddad@acme-retail.example", "--scopes", "mcp:catalog", "--entity", "component:default/checkout-service"},
			code: 1, want: []string{"resolved to user:default/farah.haddad", "group:default/team-fulfillment", "decision: DENY"}},
		{name: "user ref resolves groups",
			args: []string{"--config", cfg, "--user", "user:default/noah.fischer", "--scopes", "mcp:catalog", "--entity", "component:platform/log-shipper"},
			code: 0, want: []string{"group:default/operations, group:default/team-platform, group:default/team-sre", "decision: ALLOW"}},
		{name: "explicit ownership is not looked up",
			args: []string{"--config", cfg, "--user", "user:default/noah.fischer", "--ownership", "group:default/team-web", "--scopes", "mcp:catalog", "--entity", "component:platform/log-shipper"},
			code: 1, want: []string{"decision: DENY"}, absent: []string{"resolved in the catalog"}},
		{name: "--policy overrides the config's policy file",
			args: []string{"--config", cfg, "--policy", polPath, "--user", "user:default/ben.okafor", "--scopes", "mcp:catalog", "--tool", "whoami"},
			code: 0, want: []string{"tool whoami: allowed"}},
		{name: "field mask shown for a user entity",
			args: []string{"--config", cfg, "--email", "ben.okafor@acme-retail.example", "--scopes", "mcp:catalog", "--entity", "user:default/chloe.nguyen"},
			code: 0, want: []string{"teams/fieldMasks[0]: spec.profile.email", "fields removed from this entity: 1"}},
		{name: "unknown e-mail said plainly",
			args: []string{"--config", cfg, "--email", "nobody@acme-retail.example", "--scopes", "mcp:catalog", "--entity", "component:default/checkout-service"},
			code: 1, want: []string{"no User entity has spec.profile.email=nobody@acme-retail.example", "decision: DENY"}},
		{name: "config without backstage, entity file: offline explain still works",
			args: []string{"--config", cfgOffline, "--user", "user:default/ben.okafor", "--ownership", "group:default/team-checkout", "--scopes", "mcp:catalog", "--entity-file", entityFile},
			code: 0, want: []string{"decision: ALLOW"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, append([]string{"policy", "explain"}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.code, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, a := range tc.absent {
				if strings.Contains(out, a) {
					t.Errorf("output has %q:\n%s", a, out)
				}
			}
		})
	}
}

func TestExplainErrors(t *testing.T) {
	url, _ := fakeBackstage(t)
	cfg, polPath := writeSetup(t, url, explainPolicy)
	cfgOffline, _ := writeSetup(t, "", explainPolicy)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"entity needs config", []string{"--policy", polPath, "--entity", "component:default/x"}, "--entity REF needs --config"},
		{"entity needs backstage", []string{"--config", cfgOffline, "--entity", "component:default/x"}, "sets no backstage.baseUrl: cannot look up component:default/x"},
		{"email needs backstage", []string{"--config", cfgOffline, "--email", "a@b.example", "--tool", "whoami"}, "cannot look up a@b.example"},
		{"missing entity", []string{"--config", cfg, "--entity", "component:default/no-such-thing"}, "is not in the catalog"},
		{"bad entity ref", []string{"--config", cfg, "--entity", "component:default/a,kind=user"}, "--entity:"},
		{"both entity flags", []string{"--config", cfg, "--entity", "component:default/x", "--entity-file", "x.json"}, "not both"},
		{"email filter injection", []string{"--config", cfg, "--email", "a@b.example,kind=group", "--tool", "whoami"}, "may not contain"},
		{"nothing to decide", []string{"--config", cfg}, "give --tool"},
		{"no policy at all", []string{"--tool", "whoami"}, "--policy FILE or --config FILE is required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, append([]string{"policy", "explain"}, tc.args...)...)
			if code != 2 || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, errOut, tc.want)
			}
		})
	}
}

func TestPolicyCheckAndHelp(t *testing.T) {
	_, polPath := writeSetup(t, "", graphPolicy)
	code, out, _ := runCLI(t, "policy", "check", polPath)
	if code != 0 || !strings.Contains(out, "ok") {
		t.Errorf("check: exit %d %s", code, out)
	}
	code, out, _ = runCLI(t, "policy", "--help")
	if code != 0 || !strings.Contains(out, "policy graph --config FILE") {
		t.Errorf("help: exit %d %s", code, out)
	}
	code, out, _ = runCLI(t, "policy", "graph", "--help")
	if code != 0 || !strings.Contains(out, "synthetic member") {
		t.Errorf("graph help: exit %d %s", code, out)
	}
}

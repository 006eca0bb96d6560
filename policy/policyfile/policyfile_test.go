package policyfile

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/policy"
)

const valid = `version: 1
scopes:
  "backstage-mcp:catalog": ["catalog:read"]
roles:
  - name: engineers
    bind: { idpGroups: [eng], agents: [vscode-copilot] }
    tools: ["catalog:read"]
    entities:
      allow:
        - IS_ENTITY_KIND: { kinds: [component, api] }
        - allOf:
            - IS_ENTITY_OWNER: { claims: [$ownershipRefs] }
            - not: { HAS_LABEL: { label: experimental } }
      deny:
        - HAS_ANNOTATION: { annotation: "acme.io/confidential" }
    fieldMasks:
      - kinds: [user]
        fields: ["spec.profile.email"]
    rateClass: standard
`

func TestParseValid(t *testing.T) {
	p, doc, err := Parse([]byte(valid), "policy.yaml")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	r := doc.Roles[0]
	if r.Name != "engineers" || len(r.Entities.Allow) != 2 || r.Entities.Allow[1].AllOf[1].Not.Rule != "HAS_LABEL" {
		t.Fatalf("decoded role = %+v", r)
	}
	s := policy.Subject{Authenticated: true, IdPGroups: []string{"eng"}, ClientID: "vscode-copilot", Scopes: []string{"backstage-mcp:catalog"}}
	if !p.Grant(s).AllowsTool("catalog_get_entity").Allowed {
		t.Fatal("tool should be allowed")
	}
	if ds := Check([]byte(valid), "policy.yaml"); len(ds) != 0 {
		t.Fatalf("Check on a valid file: %v", ds)
	}
}

func TestDiagnostics(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string // one diagnostic must render exactly like this
	}{
		{"unknown rule", `version: 1
roles:
  - name: a
    bind: { authenticated: true }
    entities:
      allow:
        - IS_OWNER: { claims: [x] }
`, `policy.yaml:7:11: roles[0].entities.allow[0]: unknown rule "IS_OWNER" (expected one of HAS_ANNOTATION, HAS_LABEL, HAS_METADATA, HAS_SPEC, IN_NAMESPACE, IS_ENTITY_KIND, IS_ENTITY_OWNER)`},
		{"unknown top-level key", "version: 1\nrole: []\n", `policy.yaml:2:1: unknown key "role" (expected one of roles, scopes, toolScopes, version)`},
		{"unknown role key", "version: 1\nroles:\n  - name: a\n    bind: {authenticated: true}\n    tool: [x]\n", `policy.yaml:5:5: roles[0]: unknown key "tool" (expected one of bind, entities, fieldMasks, name, rateClass, tools)`},
		{"unknown bind key", "version: 1\nroles:\n  - name: a\n    bind: {groups: [x]}\n", `policy.yaml:4:12: roles[0].bind: unknown key "groups" (expected one of agents, anonymous, authenticated, backstageGroups, claims, idpGroups, users)`},
		{"unknown param", "version: 1\nroles:\n  - name: a\n    bind: {authenticated: true}\n    entities:\n      allow:\n        - IS_ENTITY_KIND:\n            kind: [component]\n", `policy.yaml:8:13: roles[0].entities.allow[0].IS_ENTITY_KIND.kind: unknown parameter "kind" for IS_ENTITY_KIND (expected kinds)`},
		{"duplicate key", "version: 1\nversion: 1\n", `policy.yaml:2:1: version: duplicate key "version"`},
		{"unquoted bool value", "version: 1\nroles:\n  - name: a\n    bind: {authenticated: true}\n    entities:\n      deny:\n        - HAS_ANNOTATION: {annotation: x, value: true}\n", `policy.yaml:7:50: roles[0].entities.deny[0].HAS_ANNOTATION.value: expected a string, got bool (quote it: "true")`},
		{"two keys in a condition", "version: 1\nroles:\n  - name: a\n    bind: {authenticated: true}\n    entities:\n      allow:\n        - IS_ENTITY_KIND: {kinds: [a]}\n          HAS_LABEL: {label: b}\n", `policy.yaml:7:11: roles[0].entities.allow[0]: a condition has exactly one key (allOf, anyOf, not or a rule such as IS_ENTITY_KIND), got 2: IS_ENTITY_KIND, HAS_LABEL`},
		{"bad version", "version: 2\n", `policy.yaml:1:10: version: unsupported version 2 (expected 1)`},
		{"alias", "version: 1\nx: &a [1]\n", `policy.yaml:2:4: YAML anchors and aliases are not allowed in a policy file`},
		{"syntax", "version: 1\nroles: [\n", `policy.yaml:2:1: did not find expected node content`},
		{"unreachable role warning", "version: 1\nscopes: {s: [catalog:read]}\nroles:\n  - name: a\n    bind: {}\n    tools: [catalog:read]\n", `policy.yaml:5:5: warning: roles[0].bind: unreachable role: it binds no subject`},
		{"empty", "", `policy.yaml:1:1: empty policy file`},
		{"two documents", "version: 1\n---\nversion: 1\n", `policy.yaml:2:1: more than one YAML document in the file`},
		{"bad group ref", "version: 1\nroles:\n  - name: a\n    bind:\n      backstageGroups: [team-a]\n", `policy.yaml:5:25: roles[0].bind.backstageGroups[0]: "team-a" is not a full group ref (expected group:<namespace>/<name>, e.g. group:default/team-a)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ds := Check([]byte(tc.yaml), "policy.yaml")
			var got []string
			for _, d := range ds {
				got = append(got, d.String())
				if d.String() == tc.want {
					return
				}
			}
			t.Fatalf("no diagnostic\n  %s\nin\n  %s", tc.want, strings.Join(got, "\n  "))
		})
	}
}

func TestParseReturnsTypedError(t *testing.T) {
	_, _, err := Parse([]byte("version: 1\nroles:\n  - name: a\n    bind: {authenticated: true}\n    tools: [catalog_write]\n"), "p.yaml")
	var fe *Error
	if !errors.As(err, &fe) || len(fe.Diagnostics) != 1 {
		t.Fatalf("err = %v", err)
	}
	if d := fe.Diagnostics[0]; d.Line != 5 || d.Col != 13 || d.Path != "roles[0].tools[0]" {
		t.Fatalf("diagnostic = %+v", d)
	}
	if !strings.HasPrefix(err.Error(), "policyfile: p.yaml:5:13: roles[0].tools[0]: unknown tool or scope") {
		t.Fatalf("message = %q", err.Error())
	}
}

var yamlBlock = regexp.MustCompile("(?s)```yaml\n(.*?)```")

// TestGuideExamples: the three worked examples of doc.md are valid and mean
// what the guide says.
func TestGuideExamples(t *testing.T) {
	md, err := os.ReadFile("../doc.md")
	if err != nil {
		t.Fatal(err)
	}
	var examples []string
	for _, m := range yamlBlock.FindAllStringSubmatch(string(md), -1) {
		if strings.HasPrefix(m[1], "version: 1") {
			examples = append(examples, m[1])
		}
	}
	if len(examples) != 3 {
		t.Fatalf("found %d worked examples, want 3", len(examples))
	}
	pols := make([]*policy.Policy, 3)
	for i, ex := range examples {
		p, _, err := Parse([]byte(ex), "doc.md")
		if err != nil {
			t.Fatalf("example %d: %v", i+1, err)
		}
		for _, d := range Check([]byte(ex), "doc.md") {
			t.Errorf("example %d: %s", i+1, d)
		}
		pols[i] = p
	}
	ent := func(kind, name string, ann map[string]any, owner string) map[string]any {
		md := map[string]any{"name": name, "namespace": "default"}
		if ann != nil {
			md["annotations"] = ann
		}
		e := map[string]any{"kind": kind, "metadata": md, "spec": map[string]any{"profile": map[string]any{"email": "x@example.com"}}}
		if owner != "" {
			e["relations"] = []any{map[string]any{"type": "ownedBy", "targetRef": owner}}
		}
		return e
	}
	anyone := policy.Subject{Authenticated: true, UserRef: "user:default/sam", Scopes: []string{"backstage-mcp:catalog"}}
	g := pols[0].Grant(anyone)
	if !g.Entity(ent("Component", "a", nil, "")).Allowed || g.Entity(ent("Component", "b", map[string]any{"acme.io/confidential": "true"}, "")).Allowed ||
		g.Entity(ent("User", "u", nil, "")).Allowed || g.AllowsTool("catalog_get_api_definition").Allowed || !g.AllowsTool("catalog_search_entities").Allowed {
		t.Error("example 1 does not behave as documented")
	}
	eng := policy.Subject{Authenticated: true, UserRef: "user:default/sam", IdPGroups: []string{"engineering"},
		OwnershipRefs: []string{"group:default/team-a"}, Scopes: []string{"backstage-mcp:catalog"}}
	g = pols[1].Grant(eng)
	if !g.Entity(ent("Component", "mine", nil, "group:default/team-a")).Allowed || g.Entity(ent("Component", "theirs", nil, "group:default/team-b")).Allowed ||
		!g.Entity(ent("API", "api", nil, "group:default/team-b")).Allowed {
		t.Error("example 2: engineers do not see exactly their team's entities and APIs")
	}
	plat := eng
	plat.OwnershipRefs = []string{"group:default/team-a", "group:default/platform"}
	if pols[1].Grant(plat).Entity(ent("Component", "c", map[string]any{"acme.io/confidential": "true"}, "")).Allowed {
		t.Error("example 2: the engineers deny must override the platform allow")
	}
	contractor := policy.Subject{Authenticated: true, Claims: map[string][]string{"employment": {"contractor"}}, ClientID: "other-agent", Scopes: []string{"backstage-mcp:catalog"}}
	if pols[1].Grant(contractor).AllowsTool("catalog_get_entity").Allowed {
		t.Error("example 2: contractors must use the corporate copilot")
	}
	bot := policy.Subject{Authenticated: true, ClientID: "ci-bot", Scopes: []string{"backstage-mcp:catalog", "backstage-mcp:people"}}
	g = pols[2].Grant(bot)
	if g.Entity(ent("User", "u", nil, "")).Allowed || !g.AllowsTool("catalog_search_entities").Allowed || g.AllowsTool("catalog_get_api_definition").Allowed {
		t.Error("example 3: bots must not see people")
	}
	if masked, n := g.MaskFields(ent("Component", "c", map[string]any{"owner-email": "a@b"}, "")); n != 2 || masked["spec"].(map[string]any)["profile"] == nil {
		// spec.profile.* removes profile.email (1) and the annotation (1); spec.profile itself stays.
		t.Errorf("example 3: bot masks removed %d fields: %v", n, masked)
	}
}

// TestSchemaMatchesEngine: the JSON Schema for editors names the same rules,
// tools and scopes as the engine.
func TestSchemaMatchesEngine(t *testing.T) {
	raw, err := os.ReadFile("../policy.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Defs map[string]struct {
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	var conds []string
	for k := range schema.Defs["condition"].Properties {
		conds = append(conds, k)
	}
	sort.Strings(conds)
	want := append(policy.RuleNames(), "allOf", "anyOf", "not")
	sort.Strings(want)
	if !reflect.DeepEqual(conds, want) {
		t.Fatalf("schema conditions %v, engine %v", conds, want)
	}
	for rule := range schema.Defs["condition"].Properties {
		params, ok := policy.RuleParams(rule)
		if !ok {
			continue
		}
		var def struct {
			Properties map[string]json.RawMessage `json:"properties"`
		}
		if err := json.Unmarshal(schema.Defs["condition"].Properties[rule], &def); err != nil {
			t.Fatal(err)
		}
		var got []string
		for k := range def.Properties {
			got = append(got, k)
		}
		sort.Strings(got)
		sort.Strings(params)
		if !reflect.DeepEqual(got, params) {
			t.Errorf("%s: schema params %v, engine %v", rule, got, params)
		}
	}
	var tools struct {
		Items struct {
			AnyOf []struct {
				Enum []string `json:"enum"`
			} `json:"anyOf"`
		} `json:"items"`
	}
	if err := json.Unmarshal(schema.Defs["role"].Properties["tools"], &tools); err != nil {
		t.Fatal(err)
	}
	enum := tools.Items.AnyOf[0].Enum
	sort.Strings(enum)
	var engine []string
	for name, scope := range policy.DefaultToolScopes() {
		engine = append(engine, name, scope)
	}
	engine = append(engine, policy.ScopeReadUsers)
	sort.Strings(engine)
	engine = uniq(engine)
	if !reflect.DeepEqual(enum, engine) {
		t.Fatalf("schema tools %v, engine %v", enum, engine)
	}
}

func uniq(xs []string) []string {
	var out []string
	for i, x := range xs {
		if i == 0 || x != xs[i-1] {
			out = append(out, x)
		}
	}
	return out
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(valid))
	f.Add([]byte("version: 1\nroles: [{name: a, bind: {anonymous: true}, entities: {allow: [{not: {not: {HAS_SPEC: {key: a.b, value: x}}}}]}}]\n"))
	f.Add([]byte("version: 1\nx: &a [*a]\n"))
	f.Add([]byte("version: 1\nroles:\n  - name: a\n    entities:\n      allow:\n        - IS_OWNER: {}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, _, err := Parse(data, "f.yaml")
		if (p == nil) == (err == nil) {
			t.Fatalf("Parse returned policy=%v err=%v", p != nil, err)
		}
		ds := Check(data, "f.yaml")
		if (err != nil) != HasErrors(ds) {
			t.Fatalf("Parse error %v but Check errors %v", err, ds)
		}
		for _, d := range ds {
			if !strings.HasPrefix(d.String(), "f.yaml") {
				t.Fatalf("diagnostic without file: %s", d)
			}
		}
	})
}

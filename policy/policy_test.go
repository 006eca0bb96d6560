package policy

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// ent builds a decoded Backstage entity.
func ent(kind, ns, name string, opts ...func(map[string]any)) map[string]any {
	md := map[string]any{"name": name}
	if ns != "" {
		md["namespace"] = ns
	}
	e := map[string]any{"apiVersion": "backstage.io/v1alpha1", "kind": kind, "metadata": md, "spec": map[string]any{}}
	for _, o := range opts {
		o(e)
	}
	return e
}

func md(e map[string]any) map[string]any { return e["metadata"].(map[string]any) }

func withAnn(k, v string) func(map[string]any) {
	return func(e map[string]any) {
		m, _ := md(e)["annotations"].(map[string]any)
		if m == nil {
			m = map[string]any{}
			md(e)["annotations"] = m
		}
		m[k] = v
	}
}

func withLabel(k, v string) func(map[string]any) {
	return func(e map[string]any) {
		m, _ := md(e)["labels"].(map[string]any)
		if m == nil {
			m = map[string]any{}
			md(e)["labels"] = m
		}
		m[k] = v
	}
}

func withSpec(k string, v any) func(map[string]any) {
	return func(e map[string]any) { e["spec"].(map[string]any)[k] = v }
}

func withMeta(k string, v any) func(map[string]any) {
	return func(e map[string]any) { md(e)[k] = v }
}

func ownedBy(refs ...string) func(map[string]any) {
	return func(e map[string]any) {
		rels, _ := e["relations"].([]any)
		for _, r := range refs {
			rels = append(rels, map[string]any{"type": "ownedBy", "targetRef": r})
		}
		e["relations"] = rels
	}
}

func leaf(rule string, params map[string]any) Condition {
	return Condition{Rule: rule, Params: params}
}

var (
	allScopes = map[string][]string{"backstage-mcp:catalog": {ScopeRead, ScopeAPIDefinitions, ScopeReadUsers}}
	jane      = Subject{
		UserRef: "user:default/jane", Authenticated: true, ClientID: "vscode-copilot",
		Scopes:        []string{"backstage-mcp:catalog"},
		IdPGroups:     []string{"eng"},
		OwnershipRefs: []string{"user:default/jane", "group:default/team-a"},
		Claims:        map[string][]string{"dept": {"eng"}},
	}
)

func mustCompile(t testing.TB, doc Document) *Policy {
	t.Helper()
	p, err := Compile(doc)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return p
}

func oneRole(allow []Condition, deny []Condition) Document {
	return Document{Version: 1, Scopes: allScopes, Roles: []Role{{
		Name: "r", Bind: Binding{Authenticated: true}, Tools: []string{ScopeRead, ScopeReadUsers},
		Entities: EntityRules{Allow: allow, Deny: deny},
	}}}
}

func TestConditions(t *testing.T) {
	comp := ent("Component", "", "svc", withAnn("backstage.io/techdocs-ref", "dir:."), withLabel("tier", "1"),
		withSpec("type", "service"), withSpec("tags", []any{"java", "go"}), withSpec("replicas", float64(3)),
		withSpec("empty", ""), withSpec("nested", map[string]any{"deep": "x"}), withMeta("title", "Svc"),
		ownedBy("group:default/team-a"))
	other := ent("API", "payments", "pay", ownedBy("group:payments/team-b"))
	tests := []struct {
		name string
		cond Condition
		e    map[string]any
		want bool
	}{
		{"kind match case-insensitive", leaf(RuleIsEntityKind, map[string]any{"kinds": []any{"component"}}), comp, true},
		{"kind other", leaf(RuleIsEntityKind, map[string]any{"kinds": []string{"api", "system"}}), comp, false},
		{"kind listed second", leaf(RuleIsEntityKind, map[string]any{"kinds": []string{"system", "API"}}), other, true},
		{"namespace default when absent", leaf(RuleInNamespace, map[string]any{"namespaces": []string{"default"}}), comp, true},
		{"namespace explicit", leaf(RuleInNamespace, map[string]any{"namespaces": []string{"payments"}}), other, true},
		{"namespace other", leaf(RuleInNamespace, map[string]any{"namespaces": []string{"default"}}), other, false},
		{"owner literal", leaf(RuleIsEntityOwner, map[string]any{"claims": []string{"group:default/team-a"}}), comp, true},
		{"owner literal uppercase", leaf(RuleIsEntityOwner, map[string]any{"claims": []string{"Group:default/Team-A"}}), comp, true},
		{"owner ownershipRefs", leaf(RuleIsEntityOwner, map[string]any{"claims": []string{ClaimOwnershipRefs}}), comp, true},
		{"owner ownershipRefs other team", leaf(RuleIsEntityOwner, map[string]any{"claims": []string{ClaimOwnershipRefs}}), other, false},
		{"owner currentUser no", leaf(RuleIsEntityOwner, map[string]any{"claims": []string{ClaimCurrentUser}}), comp, false},
		{"owner currentUser yes", leaf(RuleIsEntityOwner, map[string]any{"claims": []string{ClaimCurrentUser}}), ent("Component", "", "mine", ownedBy("user:default/jane")), true},
		{"annotation exists", leaf(RuleHasAnnotation, map[string]any{"annotation": "backstage.io/techdocs-ref"}), comp, true},
		{"annotation value", leaf(RuleHasAnnotation, map[string]any{"annotation": "backstage.io/techdocs-ref", "value": "dir:."}), comp, true},
		{"annotation wrong value", leaf(RuleHasAnnotation, map[string]any{"annotation": "backstage.io/techdocs-ref", "value": "url:x"}), comp, false},
		{"annotation missing", leaf(RuleHasAnnotation, map[string]any{"annotation": "acme.io/confidential"}), comp, false},
		{"label", leaf(RuleHasLabel, map[string]any{"label": "tier"}), comp, true},
		{"label missing", leaf(RuleHasLabel, map[string]any{"label": "nope"}), comp, false},
		{"spec value", leaf(RuleHasSpec, map[string]any{"key": "type", "value": "service"}), comp, true},
		{"spec exists", leaf(RuleHasSpec, map[string]any{"key": "type"}), comp, true},
		{"spec array includes", leaf(RuleHasSpec, map[string]any{"key": "tags", "value": "go"}), comp, true},
		{"spec array excludes", leaf(RuleHasSpec, map[string]any{"key": "tags", "value": "rust"}), comp, false},
		{"spec number is not the string", leaf(RuleHasSpec, map[string]any{"key": "replicas", "value": "3"}), comp, false},
		{"spec number truthy", leaf(RuleHasSpec, map[string]any{"key": "replicas"}), comp, true},
		{"spec empty string falsy", leaf(RuleHasSpec, map[string]any{"key": "empty"}), comp, false},
		{"spec nested path", leaf(RuleHasSpec, map[string]any{"key": "nested.deep", "value": "x"}), comp, true},
		{"spec object not indexed", leaf(RuleHasSpec, map[string]any{"key": "nested"}), comp, false},
		{"metadata title", leaf(RuleHasMetadata, map[string]any{"key": "title", "value": "Svc"}), comp, true},
		{"metadata missing", leaf(RuleHasMetadata, map[string]any{"key": "description"}), comp, false},
		{"allOf true", Condition{AllOf: []Condition{
			leaf(RuleIsEntityKind, map[string]any{"kinds": []string{"component"}}),
			leaf(RuleHasLabel, map[string]any{"label": "tier"})}}, comp, true},
		{"allOf false", Condition{AllOf: []Condition{
			leaf(RuleIsEntityKind, map[string]any{"kinds": []string{"component"}}),
			leaf(RuleHasLabel, map[string]any{"label": "nope"})}}, comp, false},
		{"anyOf true", Condition{AnyOf: []Condition{
			leaf(RuleIsEntityKind, map[string]any{"kinds": []string{"api"}}),
			leaf(RuleHasLabel, map[string]any{"label": "tier"})}}, comp, true},
		{"anyOf false", Condition{AnyOf: []Condition{
			leaf(RuleIsEntityKind, map[string]any{"kinds": []string{"api"}}),
			leaf(RuleHasLabel, map[string]any{"label": "nope"})}}, comp, false},
		{"not", Condition{Not: &Condition{Rule: RuleIsEntityKind, Params: map[string]any{"kinds": []string{"api"}}}}, comp, true},
		{"not not", Condition{Not: &Condition{Not: &Condition{Rule: RuleIsEntityKind, Params: map[string]any{"kinds": []string{"api"}}}}}, comp, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustCompile(t, oneRole([]Condition{tc.cond}, nil))
			d := p.Grant(jane).Entity(tc.e)
			if d.Allowed != tc.want {
				t.Fatalf("Entity = %+v, want allowed=%v", d, tc.want)
			}
			if tc.want && d.Rule != "r/entities.allow[0]" {
				t.Fatalf("rule = %q", d.Rule)
			}
		})
	}
}

func TestDenyOverridesAndDefaultDeny(t *testing.T) {
	kindAny := leaf(RuleIsEntityKind, map[string]any{"kinds": []string{"component", "api", "user", "group"}})
	confidential := leaf(RuleHasAnnotation, map[string]any{"annotation": "acme.io/confidential"})
	secret := ent("Component", "", "secret", withAnn("acme.io/confidential", "true"))
	plain := ent("Component", "", "plain")
	two := Document{Version: 1, Scopes: allScopes, Roles: []Role{
		{Name: "everyone", Bind: Binding{Authenticated: true}, Tools: []string{ScopeRead}, Entities: EntityRules{Deny: []Condition{confidential}}},
		{Name: "security", Bind: Binding{IdPGroups: []string{"sec"}}, Entities: EntityRules{Allow: []Condition{kindAny}}},
		{Name: "eng", Bind: Binding{IdPGroups: []string{"eng"}}, Entities: EntityRules{Allow: []Condition{kindAny}}},
	}}
	p := mustCompile(t, two)
	sec := jane
	sec.IdPGroups = []string{"sec"}
	nobody := jane
	nobody.IdPGroups = nil
	nobody.OwnershipRefs = nil
	tests := []struct {
		name     string
		s        Subject
		e        map[string]any
		want     bool
		wantRule string
	}{
		{"deny in another role overrides allow", sec, secret, false, "everyone/entities.deny[0]"},
		{"allow when deny does not match", sec, plain, true, "security/entities.allow[0]"},
		{"eng allowed plain", jane, plain, true, "eng/entities.allow[0]"},
		{"no allow rule matched role: default deny", nobody, plain, false, RuleDefaultDeny},
		{"unauthenticated: nothing", Subject{}, plain, false, RuleDefaultDeny},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := p.Grant(tc.s).Entity(tc.e)
			if d.Allowed != tc.want || d.Rule != tc.wantRule {
				t.Fatalf("Entity = %+v, want allowed=%v rule=%s", d, tc.want, tc.wantRule)
			}
		})
	}
	if !p.Grant(nobody).Pushdown().None {
		t.Fatal("a grant without allow rules must push down None")
	}
}

func TestUsersNeedScope(t *testing.T) {
	doc := oneRole([]Condition{leaf(RuleIsEntityKind, map[string]any{"kinds": []string{"user", "component"}})}, nil)
	doc.Roles[0].Tools = []string{ScopeRead}
	p := mustCompile(t, doc)
	g := p.Grant(jane)
	if d := g.Entity(ent("User", "", "bob")); d.Allowed || d.Rule != RuleUsersScope {
		t.Fatalf("user entity without scope: %+v", d)
	}
	if !g.Entity(ent("Component", "", "c")).Allowed {
		t.Fatal("component should be visible")
	}
	pd := g.Pushdown()
	if len(pd.Clauses) != 1 || !reflect.DeepEqual(pd.Clauses[0]["kind"], []string{"component"}) {
		t.Fatalf("pushdown should drop the user kind: %+v", pd)
	}
	// Granted by the role but not by the token: still hidden.
	doc.Roles[0].Tools = []string{ScopeRead, ScopeReadUsers}
	doc.Scopes = map[string][]string{"backstage-mcp:catalog": {ScopeRead}}
	p = mustCompile(t, doc)
	if p.Grant(jane).Entity(ent("User", "", "bob")).Allowed {
		t.Fatal("token without users scope must hide users")
	}
	doc.Scopes = allScopes
	p = mustCompile(t, doc)
	if !p.Grant(jane).Entity(ent("User", "", "bob")).Allowed {
		t.Fatal("role and token with users scope should show users")
	}
}

func TestToolsAndScopeIntersection(t *testing.T) {
	doc := Document{Version: 1,
		Scopes: map[string][]string{
			"backstage-mcp:catalog": {ScopeRead},
			"backstage-mcp:apis":    {ScopeAPIDefinitions},
		},
		Roles: []Role{
			{Name: "eng", Bind: Binding{IdPGroups: []string{"eng"}}, Tools: []string{ScopeRead, "catalog_get_api_definition"}},
			{Name: "bots", Bind: Binding{Agents: []string{"ci-bot"}}, Tools: []string{"catalog_search_entities"}},
			{Name: "copilot-eng", Bind: Binding{IdPGroups: []string{"eng"}, Agents: []string{"copilot"}}, Tools: []string{"whoami"}},
			{Name: "demo", Bind: Binding{Anonymous: true}, Tools: []string{"catalog_get_entity"}},
		}}
	p := mustCompile(t, doc)
	withScopes := func(s Subject, scopes ...string) Subject { s.Scopes = scopes; return s }
	bot := Subject{Authenticated: true, ClientID: "ci-bot", Scopes: []string{"backstage-mcp:catalog", "backstage-mcp:apis"}}
	copilotNonEng := Subject{Authenticated: true, ClientID: "copilot", IdPGroups: []string{"sales"}, Scopes: []string{"backstage-mcp:catalog"}}
	tests := []struct {
		name     string
		s        Subject
		tool     string
		want     bool
		wantRule string
	}{
		{"by scope", withScopes(jane, "backstage-mcp:catalog"), "catalog_search_entities", true, "eng/tools[0]"},
		{"by name", withScopes(jane, "backstage-mcp:catalog", "backstage-mcp:apis"), "catalog_get_api_definition", true, "eng/tools[1]"},
		{"role grants but token lacks scope", withScopes(jane, "backstage-mcp:catalog"), "catalog_get_api_definition", false, RuleAgentScope},
		{"token without catalog scope sees no tools", withScopes(jane), "catalog_get_entity", false, RuleAgentScope},
		{"unmapped token scope", withScopes(jane, "openid", "profile"), "catalog_get_entity", false, RuleAgentScope},
		{"agent cannot gain what user lacks", bot, "catalog_get_api_definition", false, RuleDefaultDeny},
		{"agent-only binding", bot, "catalog_search_entities", true, "bots/tools[0]"},
		{"agent+group needs both: other agent", withScopes(jane, "backstage-mcp:catalog"), "whoami", true, "eng/tools[0]"},
		{"agent+group: agent without group", copilotNonEng, "whoami", false, RuleDefaultDeny},
		{"unknown tool", jane, "catalog_delete_everything", false, RuleUnknownTool},
		{"anonymous role, no token to intersect", Subject{}, "catalog_get_entity", true, "demo/tools[0]"},
		{"anonymous role limited", Subject{}, "catalog_search_entities", false, RuleDefaultDeny},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := p.Grant(tc.s).AllowsTool(tc.tool)
			if d.Allowed != tc.want || d.Rule != tc.wantRule {
				t.Fatalf("AllowsTool(%s) = %+v, want allowed=%v rule=%s", tc.tool, d, tc.want, tc.wantRule)
			}
		})
	}
	g := p.Grant(withScopes(jane, "backstage-mcp:catalog"))
	want := []string{"catalog_find_dependents", "catalog_find_owner", "catalog_get_entity", "catalog_get_relations", "catalog_list_changes", "catalog_list_facets", "catalog_search_entities", "whoami"}
	if got := g.AllowedTools(); !reflect.DeepEqual(got, want) {
		t.Fatalf("AllowedTools = %v, want %v", got, want)
	}
}

func TestBindings(t *testing.T) {
	doc := Document{Version: 1, Scopes: allScopes, Roles: []Role{
		{Name: "idp", Bind: Binding{IdPGroups: []string{"eng"}}, Tools: []string{ScopeRead}},
		{Name: "claims", Bind: Binding{Claims: map[string][]string{"dept": {"eng"}, "site": {"paris", "lyon"}}}, Tools: []string{ScopeRead}},
		{Name: "bsgroup", Bind: Binding{BackstageGroups: []string{"group:default/team-a"}}, Tools: []string{ScopeRead}},
		{Name: "user", Bind: Binding{Users: []string{"User:default/Jane"}}, Tools: []string{ScopeRead}},
		{Name: "all", Bind: Binding{Authenticated: true}, Tools: []string{ScopeRead}},
		{Name: "anon", Bind: Binding{Anonymous: true}, Tools: []string{ScopeRead}},
	}}
	p := mustCompile(t, doc)
	s := jane
	s.Claims = map[string][]string{"dept": {"eng"}, "site": {"lyon"}}
	if got, want := p.Grant(s).Roles(), []string{"idp", "claims", "bsgroup", "user", "all"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("roles = %v, want %v", got, want)
	}
	s2 := Subject{Authenticated: true, Claims: map[string][]string{"dept": {"eng"}}}
	if got, want := p.Grant(s2).Roles(), []string{"all"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("claims need every listed claim: roles = %v, want %v", got, want)
	}
	if got, want := p.Grant(Subject{}).Roles(), []string{"anon"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("anonymous roles = %v, want %v", got, want)
	}
}

func TestMaskFields(t *testing.T) {
	doc := oneRole([]Condition{leaf(RuleIsEntityKind, map[string]any{"kinds": []string{"user", "component"}})}, nil)
	doc.Roles[0].FieldMasks = []FieldMask{
		{Kinds: []string{"User"}, Fields: []string{"spec.profile.email"}},
		{Fields: []string{"metadata.annotations.vault.*"}},
	}
	doc.Roles[0].RateClass = "standard"
	p := mustCompile(t, doc)
	g := p.Grant(jane)
	user := ent("User", "", "bob", withAnn("vault.io/path", "secret/x"), withAnn("vault.token", "t"), withAnn("keep", "k"),
		withSpec("profile", map[string]any{"email": "bob@example.com", "displayName": "Bob"}))
	orig := deepCopy(user)
	got, n := g.MaskFields(user)
	if n != 3 {
		t.Fatalf("removed %d fields, want 3", n)
	}
	if !reflect.DeepEqual(user, orig) {
		t.Fatal("MaskFields mutated its input")
	}
	prof := got["spec"].(map[string]any)["profile"].(map[string]any)
	if _, ok := prof["email"]; ok || prof["displayName"] != "Bob" {
		t.Fatalf("profile = %v", prof)
	}
	ann := got["metadata"].(map[string]any)["annotations"].(map[string]any)
	if len(ann) != 1 || ann["keep"] != "k" {
		t.Fatalf("annotations = %v", ann)
	}
	comp := ent("Component", "", "c", withSpec("profile", map[string]any{"email": "x"}))
	if _, n := g.MaskFields(comp); n != 0 {
		t.Fatalf("kind-limited mask applied to a component: %d", n)
	}
	if g.RateClass() != "standard" {
		t.Fatalf("rate class = %q", g.RateClass())
	}
	if p.Grant(Subject{}).RateClass() != DefaultRateClass {
		t.Fatal("default rate class expected")
	}
}

func deepCopy(v any) map[string]any {
	var cp func(any) any
	cp = func(v any) any {
		switch t := v.(type) {
		case map[string]any:
			m := map[string]any{}
			for k, x := range t {
				m[k] = cp(x)
			}
			return m
		case []any:
			s := make([]any, len(t))
			for i, x := range t {
				s[i] = cp(x)
			}
			return s
		}
		return v
	}
	return cp(v).(map[string]any)
}

func TestGlob(t *testing.T) {
	tests := []struct {
		pat, s string
		want   bool
	}{
		{"a.b", "a.b", true},
		{"a.*", "a.b.c", true},
		{"a.*", "a", false},
		{"*.email", "spec.profile.email", true},
		{"a*c", "abbbc", true},
		{"a*c", "abbbd", false},
		{"*", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.pat+"~"+tc.s, func(t *testing.T) {
			if got := globMatch(tc.pat, tc.s); got != tc.want {
				t.Fatalf("globMatch(%q,%q)=%v", tc.pat, tc.s, got)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name     string
		doc      Document
		wantPath string
		wantMsg  string
	}{
		{"version", Document{Version: 2}, "version", "unsupported version"},
		{"unknown rule", oneRole([]Condition{{Rule: "IS_OWNER"}}, nil), "roles[0].entities.allow[0]", `unknown rule "IS_OWNER" (expected one of HAS_ANNOTATION`},
		{"unknown param", oneRole([]Condition{leaf(RuleIsEntityKind, map[string]any{"kind": []string{"x"}})}, nil), "roles[0].entities.allow[0].IS_ENTITY_KIND.kind", "unknown parameter"},
		{"missing param", oneRole(nil, []Condition{leaf(RuleHasLabel, nil)}), "roles[0].entities.deny[0].HAS_LABEL", `needs parameter "label"`},
		{"two ops", oneRole([]Condition{{Rule: RuleHasLabel, AllOf: []Condition{}}}, nil), "roles[0].entities.allow[0]", "exactly one"},
		{"empty allOf", oneRole([]Condition{{AllOf: []Condition{}}}, nil), "roles[0].entities.allow[0].allOf", "at least one"},
		{"bad owner claim", oneRole([]Condition{leaf(RuleIsEntityOwner, map[string]any{"claims": []string{"team-a"}})}, nil), "roles[0].entities.allow[0].IS_ENTITY_OWNER.claims[0]", "full entity ref"},
		{"bad special claim", oneRole([]Condition{leaf(RuleIsEntityOwner, map[string]any{"claims": []string{"$me"}})}, nil), "roles[0].entities.allow[0].IS_ENTITY_OWNER.claims[0]", "unknown special claim"},
		{"unknown tool", Document{Version: 1, Roles: []Role{{Name: "x", Bind: Binding{Authenticated: true}, Tools: []string{"catalog_write"}}}}, "roles[0].tools[0]", "unknown tool or scope"},
		{"dup role", Document{Version: 1, Roles: []Role{{Name: "x", Bind: Binding{Authenticated: true}, RateClass: "a"}, {Name: "x", Bind: Binding{Authenticated: true}, RateClass: "a"}}}, "roles[1].name", "duplicate"},
		{"bad group ref", Document{Version: 1, Roles: []Role{{Name: "x", Bind: Binding{BackstageGroups: []string{"team-a"}}, RateClass: "a"}}}, "roles[0].bind.backstageGroups[0]", "group ref"},
		{"unknown scope", Document{Version: 1, Scopes: map[string][]string{"s": {"catalog:write"}}}, "scopes.s[0]", "unknown tool scope"},
		{"value not string", oneRole([]Condition{leaf(RuleHasSpec, map[string]any{"key": "a", "value": 3})}, nil), "roles[0].entities.allow[0].HAS_SPEC.value", "expected a string"},
		{"mask without fields", Document{Version: 1, Roles: []Role{{Name: "x", Bind: Binding{Authenticated: true}, FieldMasks: []FieldMask{{}}}}}, "roles[0].fieldMasks[0].fields", "at least one field"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(tc.doc)
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Compile error = %v, want *ValidationError", err)
			}
			for _, p := range ve.Problems {
				if p.Path == tc.wantPath && strings.Contains(p.Message, tc.wantMsg) {
					return
				}
			}
			t.Fatalf("no problem at %s containing %q in:\n%v", tc.wantPath, tc.wantMsg, err)
		})
	}
}

func TestLintWarnings(t *testing.T) {
	doc := Document{Version: 1, Scopes: map[string][]string{"s": {ScopeRead}}, Roles: []Role{
		{Name: "nobody", Tools: []string{ScopeRead}},
		{Name: "empty-claim", Bind: Binding{Claims: map[string][]string{"dept": nil}}, Tools: []string{ScopeRead}},
		{Name: "apis", Bind: Binding{Authenticated: true}, Tools: []string{ScopeAPIDefinitions}},
	}}
	p := mustCompile(t, doc)
	var got []string
	for _, w := range p.Warnings() {
		got = append(got, w.Path)
	}
	want := []string{"roles[0].bind", "roles[1].bind.claims.dept", "roles[1].bind", "roles[2].tools[0]"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("warning paths = %v, want %v", got, want)
	}
}

func TestMalformedEntityHidden(t *testing.T) {
	p := mustCompile(t, oneRole([]Condition{{Not: &Condition{Rule: RuleIsEntityKind, Params: map[string]any{"kinds": []string{"x"}}}}}, nil))
	g := p.Grant(jane)
	for name, e := range map[string]map[string]any{
		"no kind":        {"metadata": map[string]any{"name": "a"}},
		"non-ascii kind": {"kind": "Ｃomponent", "metadata": map[string]any{"name": "a"}},
		"no metadata":    {"kind": "Component"},
	} {
		t.Run(name, func(t *testing.T) {
			if d := g.Entity(e); d.Allowed || d.Rule != RuleMalformedEntity {
				t.Fatalf("Entity = %+v", d)
			}
		})
	}
}

func TestExplain(t *testing.T) {
	doc := Document{Version: 1, Scopes: allScopes, Roles: []Role{
		{Name: "everyone", Bind: Binding{Authenticated: true}, Tools: []string{ScopeRead},
			Entities: EntityRules{
				Allow: []Condition{leaf(RuleIsEntityKind, map[string]any{"kinds": []string{"component"}})},
				Deny:  []Condition{leaf(RuleHasAnnotation, map[string]any{"annotation": "acme.io/confidential"})},
			}},
		{Name: "ops", Bind: Binding{IdPGroups: []string{"ops"}}, Tools: []string{ScopeAPIDefinitions}},
	}}
	p := mustCompile(t, doc)
	x := p.Explain(jane, "catalog_get_entity", ent("Component", "", "vault", withAnn("acme.io/confidential", "yes")))
	if x.Allowed || x.EntityDecision.Rule != "everyone/entities.deny[0]" || !x.ToolDecision.Allowed {
		t.Fatalf("explanation = %+v", x)
	}
	out := x.String()
	for _, want := range []string{"decision: DENY", "+ everyone: authenticated: true", "- ops: no binding matches",
		"tool catalog_get_entity: allowed", "entity component:default/vault: denied", "deny  everyone/entities.deny[0]", "→ MATCH",
		"catalog pushdown: filter=kind=component"} {
		if !strings.Contains(out, want) {
			t.Errorf("explain output lacks %q:\n%s", want, out)
		}
	}
}

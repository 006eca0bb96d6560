package policy

import "testing"

func TestExactAndVisibleByRef(t *testing.T) {
	kinds := leaf(RuleIsEntityKind, map[string]any{"kinds": []any{"component", "api"}})
	ns := leaf(RuleInNamespace, map[string]any{"namespaces": []any{"default"}})
	owner := leaf(RuleIsEntityOwner, map[string]any{"claims": []any{"$ownershipRefs"}})
	ann := leaf(RuleHasAnnotation, map[string]any{"annotation": "acme.io/confidential"})
	cases := []struct {
		name         string
		allow, deny  []Condition
		exact, byRef bool
		ref          [2]string // kind, namespace
		visible      bool
	}{
		{name: "kinds only", allow: []Condition{kinds}, exact: true, byRef: true, ref: [2]string{"Component", "default"}, visible: true},
		{name: "kinds only, other kind", allow: []Condition{kinds}, exact: true, byRef: true, ref: [2]string{"group", "default"}, visible: false},
		{name: "kind and namespace", allow: []Condition{{AllOf: []Condition{kinds, ns}}}, exact: true, byRef: true, ref: [2]string{"api", "platform"}, visible: false},
		{name: "owner is exact but needs the entity", allow: []Condition{owner}, exact: true, byRef: false},
		{name: "annotation is not exact", allow: []Condition{ann}, exact: false, byRef: false},
		{name: "any deny is not exact", allow: []Condition{kinds}, deny: []Condition{ann}, exact: false, byRef: false},
		{name: "not is not exact", allow: []Condition{{Not: &ns}}, exact: false, byRef: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := mustCompile(t, oneRole(tc.allow, tc.deny)).Grant(jane)
			if g.Exact() != tc.exact {
				t.Errorf("Exact() = %v, want %v", g.Exact(), tc.exact)
			}
			vis, decided := g.VisibleByRef(tc.ref[0], tc.ref[1])
			if decided != tc.byRef {
				t.Fatalf("decided = %v, want %v", decided, tc.byRef)
			}
			if decided && vis != tc.visible {
				t.Errorf("visible = %v, want %v", vis, tc.visible)
			}
		})
	}
	// Without the users scope User entities are hidden: never exact.
	noUsers := Document{Version: 1, Scopes: map[string][]string{"backstage-mcp:catalog": {ScopeRead}}, Roles: []Role{{
		Name: "r", Bind: Binding{Authenticated: true}, Tools: []string{ScopeRead}, Entities: EntityRules{Allow: []Condition{kinds}},
	}}}
	if mustCompile(t, noUsers).Grant(jane).Exact() {
		t.Error("a grant hiding User entities must not be exact")
	}
}

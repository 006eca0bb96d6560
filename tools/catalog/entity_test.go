package catalog

import (
	"slices"
	"testing"
)

func TestRefOf(t *testing.T) {
	cases := []struct {
		name     string
		entity   map[string]any
		str, key string
		ok       bool
	}{
		{"namespace defaults", map[string]any{"kind": "Component", "metadata": map[string]any{"name": "Orders"}},
			"component:default/Orders", "component:default/orders", true},
		{"namespace kept", map[string]any{"kind": "API", "metadata": map[string]any{"name": "pay-api", "namespace": "Payments"}},
			"api:payments/pay-api", "api:payments/pay-api", true},
		{"no kind", map[string]any{"metadata": map[string]any{"name": "x"}}, ":default/x", ":default/x", false},
		{"no name", map[string]any{"kind": "Group", "metadata": map[string]any{}}, "group:default/", "group:default/", false},
		{"no metadata", map[string]any{"kind": "User"}, "user:default/", "user:default/", false},
		{"wrong types", map[string]any{"kind": 3, "metadata": map[string]any{"name": true}}, ":default/", ":default/", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := RefOf(tc.entity)
			if ok != tc.ok || r.String() != tc.str || r.Key() != tc.key {
				t.Errorf("RefOf = %q / %q, %v; want %q / %q, %v", r.String(), r.Key(), ok, tc.str, tc.key, tc.ok)
			}
		})
	}
}

func TestRelationTargets(t *testing.T) {
	e := map[string]any{"relations": []any{
		map[string]any{"type": "memberOf", "targetRef": "Group:Default/Team-A"},
		map[string]any{"type": "ownedBy", "targetRef": "group:default/owners"},
		map[string]any{"type": "memberOf", "targetRef": ""},
		"not a relation",
		map[string]any{"type": "memberof", "targetRef": "group:default/case-differs"},
		map[string]any{"type": "memberOf", "targetRef": "group:default/team-b"},
	}}
	cases := []struct {
		typ  string
		want []string
	}{
		{"memberOf", []string{"group:default/team-a", "group:default/team-b"}},
		{"ownedBy", []string{"group:default/owners"}},
		{"childOf", nil},
	}
	for _, tc := range cases {
		t.Run(tc.typ, func(t *testing.T) {
			if got := RelationTargets(e, tc.typ); !slices.Equal(got, tc.want) {
				t.Errorf("RelationTargets(%q) = %v, want %v", tc.typ, got, tc.want)
			}
		})
	}
	if got := RelationTargets(map[string]any{}, "memberOf"); got != nil {
		t.Errorf("no relations: %v", got)
	}
}

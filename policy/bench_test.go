package policy

import (
	"fmt"
	"math/rand"
	"testing"
)

// benchPolicy has 50 entity rules spread over 5 roles.
func benchPolicy(b *testing.B) *Policy {
	r := rand.New(rand.NewSource(7))
	doc := Document{Version: 1, Scopes: allScopes}
	for i := 0; i < 5; i++ {
		role := Role{Name: fmt.Sprintf("role%d", i), Bind: Binding{Authenticated: true}, Tools: []string{ScopeRead}}
		for j := 0; j < 8; j++ {
			role.Entities.Allow = append(role.Entities.Allow, randCond(r, 2))
		}
		for j := 0; j < 2; j++ {
			role.Entities.Deny = append(role.Entities.Deny, randCond(r, 1))
		}
		doc.Roles = append(doc.Roles, role)
	}
	p, err := Compile(doc)
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkAuthorizeAndFilter1000: compute the grant, check the tool, build
// the pushdown and post-filter 1,000 entities against 50 rules.
func BenchmarkAuthorizeAndFilter1000(b *testing.B) {
	p := benchPolicy(b)
	r := rand.New(rand.NewSource(8))
	entities := make([]map[string]any, 1000)
	for i := range entities {
		entities[i] = randEntity(r, i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		g := p.Grant(jane)
		if !g.AllowsTool("catalog_search_entities").Allowed {
			b.Fatal("tool denied")
		}
		clauses, _ := Combine([]Clause{{"spec.type": {"service"}}}, g.Pushdown())
		_ = clauses
		n := 0
		for _, e := range entities {
			if g.Entity(e).Allowed {
				n++
			}
		}
		_ = n
	}
}

// BenchmarkMaskFields: copy and mask one entity.
func BenchmarkMaskFields(b *testing.B) {
	doc := oneRole([]Condition{leaf(RuleIsEntityKind, map[string]any{"kinds": []string{"user"}})}, nil)
	doc.Roles[0].FieldMasks = []FieldMask{{Kinds: []string{"user"}, Fields: []string{"spec.profile.email"}}, {Fields: []string{"metadata.annotations.vault.*"}}}
	g := mustCompile(b, doc).Grant(jane)
	e := ent("User", "", "bob", withAnn("vault.io/path", "x"), withAnn("a", "b"), withSpec("profile", map[string]any{"email": "e", "displayName": "B"}), ownedBy("group:default/a"))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		g.MaskFields(e)
	}
}

package policy_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/policy"
)

func Example() {
	pol, err := policy.Compile(policy.Document{
		Version: 1,
		Scopes:  map[string][]string{"backstage-mcp:catalog": {policy.ScopeRead}},
		Roles: []policy.Role{{
			Name:  "engineers",
			Bind:  policy.Binding{IdPGroups: []string{"eng"}},
			Tools: []string{policy.ScopeRead},
			Entities: policy.EntityRules{
				Allow: []policy.Condition{{Rule: policy.RuleIsEntityOwner, Params: map[string]any{"claims": []string{policy.ClaimOwnershipRefs}}}},
				Deny:  []policy.Condition{{Rule: policy.RuleHasAnnotation, Params: map[string]any{"annotation": "acme.io/confidential"}}},
			},
		}},
	})
	if err != nil {
		panic(err)
	}
	g := pol.Grant(policy.Subject{
		Authenticated: true, UserRef: "user:default/jane", IdPGroups: []string{"eng"},
		OwnershipRefs: []string{"group:default/team-a"}, Scopes: []string{"backstage-mcp:catalog"},
	})
	fmt.Println(g.AllowsTool("catalog_search_entities").Allowed)

	// The user searches for services; the policy is ANDed into the filter.
	clauses, empty := policy.Combine([]policy.Clause{{"spec.type": {"service"}}}, g.Pushdown())
	for _, c := range clauses {
		f, _ := c.Encode()
		fmt.Println("filter=" + f)
	}
	fmt.Println("empty:", empty)

	e := map[string]any{"kind": "Component", "metadata": map[string]any{"name": "svc"},
		"relations": []any{map[string]any{"type": "ownedBy", "targetRef": "group:default/team-a"}}}
	fmt.Println(g.Entity(e).Rule)
	// Output:
	// true
	// filter=relations.ownedby=group:default/team-a,relations.ownedby=user:default/jane,spec.type=service
	// empty: false
	// engineers/entities.allow[0]
}

func TestConcurrentUse(t *testing.T) {
	pol, err := policy.Compile(policy.Document{Version: 1, Scopes: map[string][]string{"s": {policy.ScopeRead}},
		Roles: []policy.Role{{Name: "all", Bind: policy.Binding{Authenticated: true}, Tools: []string{policy.ScopeRead},
			Entities: policy.EntityRules{Allow: []policy.Condition{{Rule: policy.RuleIsEntityKind, Params: map[string]any{"kinds": []string{"component"}}}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	e := map[string]any{"kind": "Component", "metadata": map[string]any{"name": "x"}}
	g := pol.Grant(policy.Subject{Authenticated: true, Scopes: []string{"s"}})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				if !g.Entity(e).Allowed || !pol.Grant(policy.Subject{Authenticated: true, Scopes: []string{"s"}}).AllowsTool("whoami").Allowed {
					t.Error("unexpected deny")
					return
				}
				pd := g.Pushdown()
				pd.Clauses[0]["kind"] = []string{"mutated"} // a caller's copy
				g.MaskFields(e)
			}
		}()
	}
	wg.Wait()
	if got := g.Pushdown().Clauses[0]["kind"][0]; got != "component" {
		t.Fatalf("Pushdown shares state with callers: %q", got)
	}
}

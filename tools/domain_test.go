package tools

import (
	"context"
	"strings"
	"testing"
)

// TestSummaryDomainFromSystem: a component without a domain shows its
// system's, in get and search alike; a hidden domain or a hidden system
// shows none for checkout-service (the system's name is pruned, and so
// is the domain's).
func TestSummaryDomainFromSystem(t *testing.T) {
	d := demoDeps(t)
	const want = "domain=domain:default/commerce"
	get := `{"ref":"component:default/checkout-service"}`
	search := `{"kind":"Component","system":"checkout","limit":100}`
	if got := text(call(t, GetEntity(d), openCtx(), get)); !strings.Contains(got, "system=system:default/checkout "+want) {
		t.Errorf("get: no inherited domain:\n%s", got)
	}
	// Every component of the system shares it: the head says so once.
	got := text(call(t, SearchEntities(d), openCtx(), search))
	lines := strings.Split(got, "\n")
	if len(lines) < 3 || !strings.Contains(lines[0], "each has ") || !strings.Contains(lines[0], want) {
		t.Fatalf("search head without the system's domain: %s", got)
	}
	if got := text(call(t, GetEntity(d), openCtx(), `{"ref":"system:default/checkout"}`)); !strings.Contains(got, want) {
		t.Errorf("the system's own domain: %s", got)
	}

	for name, hidden := range map[string]string{"domain hidden": "domain:default/commerce", "system hidden": "system:default/checkout"} {
		ctx := WithAccess(context.Background(), hideAccess{hidden: map[string]bool{hidden: true}})
		for _, args := range []string{get, `{"kind":"Component","limit":100}`} {
			tl := GetEntity(d)
			if strings.Contains(args, "limit") {
				tl = SearchEntities(d)
			}
			res := call(t, tl, ctx, args)
			if res.IsError {
				t.Fatalf("%s: %s", name, text(res))
			}
			for i, l := range strings.Split(text(res), "\n") {
				if (i == 0 || strings.HasPrefix(l, "component:default/checkout-service ")) && strings.Contains(l, "domain=domain:default/commerce") {
					t.Errorf("%s: %s shows a domain: %s", name, tl.Tool.Name, l)
				}
			}
		}
	}
}

// TestSearchSharedAttributes: attributes every line of a search page
// shares are stated once in the head and left out of the lines; the
// others stay on each line.
func TestSearchSharedAttributes(t *testing.T) {
	d := demoDeps(t)
	got := text(call(t, SearchEntities(d), openCtx(), `{"kind":"Component","owner":"team-checkout","limit":100}`))
	lines := strings.Split(got, "\n")
	if !strings.HasPrefix(lines[0], "4 of 4 entities; each has lifecycle=production owner=group:default/team-checkout system=system:default/checkout") {
		t.Fatalf("head: %s", got)
	}
	for _, l := range lines[1:] {
		if strings.Contains(l, "owner=") || strings.Contains(l, "ownedBy:") || !strings.Contains(l, "type=") {
			t.Errorf("line: %s", l)
		}
	}
	// Owners differ: each line names its own.
	got = text(call(t, SearchEntities(d), openCtx(), `{"kind":"Component","type":"library","limit":100}`))
	lines = strings.Split(got, "\n")
	if !strings.Contains(lines[0], "each has type=library lifecycle=production") || strings.Contains(lines[0], "owner=") {
		t.Fatalf("head: %s", got)
	}
	for _, l := range lines[1:] {
		if !strings.Contains(l, "owner=group:") || strings.Contains(l, "lifecycle=") {
			t.Errorf("line: %s", l)
		}
	}
	// One entity: nothing is hoisted.
	got = text(call(t, SearchEntities(d), openCtx(), `{"kind":"Component","lifecycle":"deprecated"}`))
	if strings.Contains(got, "each has") || !strings.Contains(got, "owner=group:default/team-fulfillment") {
		t.Errorf("one entity: %s", got)
	}
}

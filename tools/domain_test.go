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
	got := text(call(t, SearchEntities(d), openCtx(), search))
	lines := strings.Split(got, "\n")[1:]
	if len(lines) < 2 {
		t.Fatalf("search: %s", got)
	}
	for _, l := range lines {
		if !strings.Contains(l, want) {
			t.Errorf("search line without the system's domain: %s", l)
		}
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
			for _, l := range strings.Split(text(res), "\n") {
				if strings.HasPrefix(l, "component:default/checkout-service ") && strings.Contains(l, "domain=") {
					t.Errorf("%s: %s shows a domain: %s", name, tl.Tool.Name, l)
				}
			}
		}
	}
}

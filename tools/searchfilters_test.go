package tools

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func searchPage(t *testing.T, d *Deps, args string) (SearchEntitiesResult, string) {
	t.Helper()
	res := call(t, SearchEntities(d), openCtx(), args)
	if res.IsError {
		t.Fatalf("%s: %s", args, text(res))
	}
	var p SearchEntitiesResult
	b, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	return p, text(res)
}

func pageRefs(p SearchEntitiesResult) []string {
	var out []string
	for _, it := range p.Items {
		m, _ := it.(map[string]any)
		r, _ := m["ref"].(string)
		if r == "" {
			md, _ := m["metadata"].(map[string]any)
			r, _ = md["name"].(string)
		}
		out = append(out, r)
	}
	return out
}

// TestSearchScopeFilters: labels and annotations (exact and present) and
// relation targets select exactly the demo entities that carry them.
func TestSearchScopeFilters(t *testing.T) {
	d := demoDeps(t)
	for _, tc := range []struct {
		args string
		want []string
	}{
		{`{"labels":["acme-retail.example/pci=true"]}`, []string{"component:default/checkout-service", "component:default/payments-service"}},
		{`{"kind":"Component","labels":["acme-retail.example/pci"]}`, []string{"component:default/checkout-service", "component:default/payments-service"}},
		{`{"labels":["acme-retail.example/data-class=restricted"]}`, []string{"resource:default/identity-db", "resource:default/payments-db"}},
		{`{"annotations":["pagerduty.com/service-id=PORD8T6"]}`, []string{"component:default/orders-service"}},
		{`{"kind":"Component","annotations":["pagerduty.com/service-id"],"labels":["acme-retail.example/pci"]}`, []string{"component:default/checkout-service", "component:default/payments-service"}},
		{`{"relations":["consumesApi=api:default/order-events"]}`, []string{"component:default/analytics-pipeline", "component:default/notification-service", "component:default/shipping-service"}},
		{`{"relations":["consumesApi=api:order-events","consumesApi=identity-api"]}`, nil},
		{`{"relations":["consumesApi=api:order-events","consumesApi=api:identity-api"]}`, []string{"component:default/notification-service"}},
		{`{"relations":["dependsOn=resource:default/analytics-lake"]}`, []string{"component:default/analytics-pipeline", "component:default/recommendations-service"}},
	} {
		res := call(t, SearchEntities(d), openCtx(), tc.args)
		if tc.want == nil {
			if !res.IsError {
				t.Errorf("%s: no error: %s", tc.args, text(res))
			}
			continue
		}
		p, txt := searchPage(t, d, tc.args)
		got := pageRefs(p)
		slices.Sort(got)
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("%s = %s, want %v", tc.args, got, tc.want)
		}
		for _, w := range tc.want {
			if !strings.Contains(txt, w) {
				t.Errorf("%s: text lacks %s", tc.args, w)
			}
		}
	}
}

// TestCursorKeepsArguments: a cursor passed alone pages with the first
// page's limit, fields and filters; passed with the same arguments it
// works too; with a changed argument it is refused with a clear error.
func TestCursorKeepsArguments(t *testing.T) {
	d := demoDeps(t)
	first := `{"kind":"Component","labels":["acme-retail.example/tier=tier-1"],"limit":2,"fields":["metadata.name"]}`
	var all []string
	p, _ := searchPage(t, d, first)
	all = append(all, pageRefs(p)...)
	for p.NextCursor != "" {
		if len(p.Items) != 2 {
			t.Fatalf("page of %d, want 2", len(p.Items))
		}
		for _, it := range p.Items {
			if m := it.(map[string]any); m["ref"] != nil || m["metadata"] == nil {
				t.Fatalf("cursor page lost fields: %v", m)
			}
		}
		bad := call(t, SearchEntities(d), openCtx(), `{"cursor":"`+p.NextCursor+`","limit":5}`)
		if !bad.IsError || !strings.Contains(text(bad), `argument "limit"`) {
			t.Fatalf("changed limit accepted: %s", text(bad))
		}
		for _, changed := range []string{`"kind":"API"`, `"labels":["acme-retail.example/tier=tier-2"]`, `"fields":["metadata.title"]`} {
			bad := call(t, SearchEntities(d), openCtx(), `{"cursor":"`+p.NextCursor+`",`+changed+`}`)
			if !bad.IsError || !strings.Contains(text(bad), "start a new search") {
				t.Fatalf("changed %s accepted: %s", changed, text(bad))
			}
		}
		same := call(t, SearchEntities(d), openCtx(), `{"cursor":"`+p.NextCursor+`","kind":"component","labels":["acme-retail.example/tier=tier-1"],"limit":2}`)
		if same.IsError {
			t.Fatalf("same arguments refused: %s", text(same))
		}
		p, _ = searchPage(t, d, `{"cursor":"`+p.NextCursor+`"}`)
		all = append(all, pageRefs(p)...)
	}
	want := "storefront-web storefront-bff checkout-service payments-service product-catalog-service orders-service identity-service"
	got := map[string]bool{}
	for _, r := range all {
		got[r] = true
	}
	for _, w := range strings.Fields(want) {
		if !got[w] {
			t.Errorf("paging missed %s: %v", w, all)
		}
	}
	if len(all) != len(strings.Fields(want)) {
		t.Errorf("paged %v", all)
	}
}

// TestFacetFilters: facets count only the entities the filters select.
func TestFacetFilters(t *testing.T) {
	d := demoDeps(t)
	for _, tc := range []struct{ args, want string }{
		{`{"facet":"spec.owner","kind":"Component","type":"service","lifecycle":"production"}`,
			"spec.owner: 7 values\nteam-checkout 3\nteam-fulfillment 3\nteam-catalog 2\nteam-identity 2\ngroup:default/team-sre 1\nteam-data 1\nteam-web 1"},
		{`{"facet":"spec.lifecycle","kind":"Component","owner":"team-growth"}`, "spec.lifecycle: 1 values\nexperimental 2"},
		{`{"facet":"kind","labels":["acme-retail.example/tier=tier-1"]}`, "kind: 1 values\nComponent 7"},
		{`{"facet":"spec.owner","relations":["consumesApi=api:default/order-events"]}`, "spec.owner: 3 values\nteam-data 1\nteam-fulfillment 1\nteam-identity 1"},
		{`{"facet":"spec.type","owner":"team-nobody"}`, "spec.type: 0 values"},
	} {
		res := call(t, ListFacets(d), openCtx(), tc.args)
		if got := text(res); got != tc.want {
			t.Errorf("%s:\n%s\nwant:\n%s", tc.args, got, tc.want)
		}
	}
}

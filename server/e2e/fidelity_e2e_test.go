//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/server/demo"
	"github.com/backstage-mcp/backstage-mcp/server/e2e/harness"
	"github.com/backstage-mcp/backstage-mcp/server/internal/buildseam"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog/memcatalog"
)

// TestMemcatalogMatchesBackstage proves the in-memory catalog used by the
// demo and the unit tests honest: the same queries over the same entities
// give the same answers as the real Backstage (Location entities, which
// only the real one creates, are left out).
func TestMemcatalogMatchesBackstage(t *testing.T) {
	ents, err := demo.Entities()
	if err != nil {
		t.Fatal(err)
	}
	fx, err := harness.FixtureEntities(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	mem, err := memcatalog.New(append(ents, fx...), memcatalog.WithToken("mem-token"))
	if err != nil {
		t.Fatal(err)
	}
	fake, err := catalog.New(catalog.Config{BaseURL: "http://mem.invalid", Token: catalog.StaticToken("mem-token"),
		HTTPClient: &http.Client{Transport: buildseam.InProcessTransport{Handler: mem.Handler()}}})
	if err != nil {
		t.Fatal(err)
	}
	real, err := catalog.New(catalog.Config{BaseURL: bs.BaseURL, Token: catalog.StaticToken(bs.Token)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	notLocation := func(f catalog.Filter) catalog.Filter {
		if _, ok := f["kind"]; !ok {
			f["kind"] = []string{"component", "api", "system", "domain", "resource", "group", "user"}
		}
		return f
	}
	queries := []struct {
		name string
		q    catalog.Query
	}{
		{"kind", catalog.Query{Filters: []catalog.Filter{{"kind": {"component"}}}}},
		{"kind upper case", catalog.Query{Filters: []catalog.Filter{{"kind": {"COMPONENT"}}}}},
		{"OR of repeated key", catalog.Query{Filters: []catalog.Filter{{"kind": {"component", "api"}}}}},
		{"OR of filters", catalog.Query{Filters: []catalog.Filter{{"kind": {"system"}}, {"kind": {"domain"}}}}},
		{"AND", catalog.Query{Filters: []catalog.Filter{{"kind": {"component"}, "spec.type": {"service"}, "spec.lifecycle": {"production"}}}}},
		{"owner relation", catalog.Query{Filters: []catalog.Filter{{"relations.ownedBy": {"group:default/team-checkout"}}}}},
		{"raw spec.owner", catalog.Query{Filters: []catalog.Filter{{"spec.owner": {"team-checkout"}}}}},
		{"array tags", catalog.Query{Filters: []catalog.Filter{notLocation(catalog.Filter{"metadata.tags": {"go"}})}}},
		{"annotation exists", catalog.Query{Filters: []catalog.Filter{notLocation(catalog.Filter{"metadata.annotations.pagerduty.com/service-id": nil})}}},
		{"label value", catalog.Query{Filters: []catalog.Filter{notLocation(catalog.Filter{"metadata.labels.acme-retail.example/pci": {"true"}})}}},
		{"namespace", catalog.Query{Filters: []catalog.Filter{notLocation(catalog.Filter{"metadata.namespace": {"platform"}})}}},
		{"partOf system", catalog.Query{Filters: []catalog.Filter{{"relations.partOf": {"system:default/checkout"}}}}},
		{"memberOf", catalog.Query{Filters: []catalog.Filter{{"kind": {"user"}, "relations.memberOf": {"group:default/team-checkout"}}}}},
		{"no match", catalog.Query{Filters: []catalog.Filter{{"kind": {"nosuchkind"}}}}},
		{"full text", catalog.Query{Filters: []catalog.Filter{{"kind": {"component"}}}, FullTextTerm: "checkout", FullTextFields: []string{"metadata.name", "metadata.title", "metadata.description"}}},
		{"ordered page", catalog.Query{Filters: []catalog.Filter{{"kind": {"component"}}}, Order: []catalog.Order{{Field: "metadata.name"}}, Limit: 5}},
		{"ordered desc page", catalog.Query{Filters: []catalog.Filter{{"kind": {"api"}}}, Order: []catalog.Order{{Field: "metadata.name", Descending: true}}, Limit: 4}},
	}
	for _, tc := range queries {
		t.Run(tc.name, func(t *testing.T) {
			want, wantTotal := pageRefs(t, real, ctx, tc.q)
			got, gotTotal := pageRefs(t, fake, ctx, tc.q)
			ordered := len(tc.q.Order) > 0
			if !ordered {
				sort.Strings(want)
				sort.Strings(got)
			}
			if strings.Join(want, " ") != strings.Join(got, " ") || wantTotal != gotTotal {
				t.Errorf("real Backstage: %d %v\nmemcatalog:    %d %v", wantTotal, want, gotTotal, got)
			}
		})
	}
	t.Run("paging with cursors", func(t *testing.T) {
		q := catalog.Query{Filters: []catalog.Filter{{"kind": {"user", "group"}}}, Order: []catalog.Order{{Field: "metadata.name"}}, Limit: 7}
		if a, b := allPages(t, real, ctx, q), allPages(t, fake, ctx, q); a != b {
			t.Errorf("real:\n%s\nmem:\n%s", a, b)
		}
	})
	t.Run("relations of every entity", func(t *testing.T) {
		for _, e := range append(ents, fx...) {
			ref := entityRefOf(e)
			r, err := catalog.ParseRef(ref, "")
			if err != nil {
				t.Fatal(err)
			}
			a, err := real.GetByName(ctx, r)
			if err != nil {
				t.Fatalf("real %s: %v", ref, err)
			}
			b, err := fake.GetByName(ctx, r)
			if err != nil {
				t.Fatalf("mem %s: %v", ref, err)
			}
			if ra, rb := relationsOf(a), relationsOf(b); ra != rb {
				t.Errorf("%s relations differ\nreal: %s\nmem:  %s", ref, ra, rb)
			}
		}
	})
	t.Run("facets", func(t *testing.T) {
		for _, f := range []string{"spec.type", "spec.lifecycle", "metadata.tags"} {
			filters := []catalog.Filter{{"kind": {"component", "api"}}}
			a, err := real.Facets(ctx, []string{f}, filters)
			if err != nil {
				t.Fatal(err)
			}
			b, err := fake.Facets(ctx, []string{f}, filters)
			if err != nil {
				t.Fatal(err)
			}
			if fa, fb := facetString(a[f]), facetString(b[f]); fa != fb {
				t.Errorf("facet %s\nreal: %s\nmem:  %s", f, fa, fb)
			}
		}
	})
	t.Run("by-refs with missing", func(t *testing.T) {
		refs := []string{"component:default/checkout-service", "component:default/nope", "group:default/team-checkout"}
		a, err := real.GetByRefs(ctx, refs, []string{"metadata.name"})
		if err != nil {
			t.Fatal(err)
		}
		b, err := fake.GetByRefs(ctx, refs, []string{"metadata.name"})
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(nils(a)) != fmt.Sprint(nils(b)) || string(a[0]) != string(b[0]) {
			t.Errorf("real %s, mem %s", a, b)
		}
	})
}

func pageRefs(t *testing.T, c *catalog.Client, ctx context.Context, q catalog.Query) ([]string, int) {
	t.Helper()
	p, err := c.Query(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, raw := range p.Items {
		var e map[string]any
		_ = json.Unmarshal(raw, &e)
		out = append(out, entityRefOf(e))
	}
	return out, p.TotalItems
}

func allPages(t *testing.T, c *catalog.Client, ctx context.Context, q catalog.Query) string {
	t.Helper()
	var b strings.Builder
	for i := 0; i < 20; i++ {
		p, err := c.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range p.Items {
			var e map[string]any
			_ = json.Unmarshal(raw, &e)
			b.WriteString(entityRefOf(e) + "\n")
		}
		if p.NextCursor == "" {
			break
		}
		q = catalog.Query{Cursor: p.NextCursor, Limit: q.Limit}
	}
	return b.String()
}

func entityRefOf(e map[string]any) string {
	md, _ := e["metadata"].(map[string]any)
	ns, _ := md["namespace"].(string)
	if ns == "" {
		ns = "default"
	}
	k, _ := e["kind"].(string)
	n, _ := md["name"].(string)
	return strings.ToLower(k) + ":" + strings.ToLower(ns) + "/" + n
}

func relationsOf(raw json.RawMessage) string {
	var e struct {
		Relations []struct {
			Type      string `json:"type"`
			TargetRef string `json:"targetRef"`
		} `json:"relations"`
	}
	_ = json.Unmarshal(raw, &e)
	var out []string
	for _, r := range e.Relations {
		out = append(out, r.Type+"→"+r.TargetRef)
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func facetString(v []catalog.FacetValue) string {
	var out []string
	for _, f := range v {
		out = append(out, fmt.Sprintf("%s=%d", f.Value, f.Count))
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func nils(items []json.RawMessage) []bool {
	out := make([]bool, len(items))
	for i, it := range items {
		out[i] = it == nil
	}
	return out
}

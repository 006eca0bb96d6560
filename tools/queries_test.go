package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/server/demo"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog/memcatalog"
	"github.com/mark3labs/mcp-go/mcp"
)

// nsAccess is a policy-like Access restricted to one namespace, so the
// test can check that its condition is ANDed into every filter clause.
type nsAccess struct{ OpenAccess }

func (nsAccess) Constrain(user []catalog.Filter) ([]catalog.Filter, bool, bool) {
	if len(user) == 0 {
		return []catalog.Filter{{"metadata.namespace": {"default"}}}, false, true
	}
	out := make([]catalog.Filter, len(user))
	for i, f := range user {
		c := catalog.Filter{"metadata.namespace": {"default"}}
		for k, v := range f {
			c[k] = v
		}
		out[i] = c
	}
	return out, false, true
}

func (a nsAccess) ConstrainScan(user []catalog.Filter) ([]catalog.Filter, bool) {
	f, empty, _ := a.Constrain(user)
	return f, empty
}

func (nsAccess) Visible(e map[string]any) bool {
	ns, _ := get(e, "metadata", "namespace").(string)
	return ns == "" || ns == "default"
}

func (nsAccess) VisibleRef(ref string) (bool, bool) {
	r, err := catalog.ParseRef(ref, "")
	return err == nil && r.Namespace == "default", true
}

// TestOutgoingQueries checks what the tools send to the catalog: paths,
// filters (the caller's conditions ANDed into the single user clause),
// fields, cursors and the server's own token.
func TestOutgoingQueries(t *testing.T) {
	ents, err := demo.Entities()
	if err != nil {
		t.Fatal(err)
	}
	mc, err := memcatalog.New(ents, memcatalog.WithToken("svc-token"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mc.Handler())
	defer srv.Close()
	c, err := catalog.New(catalog.Config{BaseURL: srv.URL, Token: catalog.StaticToken("svc-token")})
	if err != nil {
		t.Fatal(err)
	}
	d := &Deps{Catalog: c, Redactor: identityRedactor{}, Cursors: NewCursorCodec(nil)}
	ctx := WithAccess(context.Background(), nsAccess{})
	type recorded struct {
		memcatalog.RecordedRequest
		Query url.Values
	}
	last := func() recorded {
		reqs := mc.Requests()
		r := reqs[len(reqs)-1]
		return recorded{r, url.Values(r.Query)}
	}
	// lastQuery skips the pruning lookups that follow a search.
	lastQuery := func() recorded {
		reqs := mc.Requests()
		for i := len(reqs) - 1; i >= 0; i-- {
			if reqs[i].Path == "/api/catalog/entities/by-query" {
				return recorded{reqs[i], url.Values(reqs[i].Query)}
			}
		}
		t.Fatal("no by-query request")
		return recorded{}
	}

	res := call(t, SearchEntities(d), ctx, `{"kind":"Component","owner":"team-checkout","limit":2,"order":"metadata.name"}`)
	if res.IsError {
		t.Fatal(text(res))
	}
	r := lastQuery()
	if r.Method != "GET" || r.Path != "/api/catalog/entities/by-query" || r.Authorization != "Bearer svc-token" {
		t.Fatalf("search request = %s %s auth %q", r.Method, r.Path, r.Authorization)
	}
	if got := r.Query["filter"]; len(got) != 1 || got[0] != "kind=component,metadata.namespace=default,relations.ownedby=group:default/team-checkout" {
		t.Errorf("filter = %q: the access condition must be ANDed into the one user clause", got)
	}
	// One more than the page, to know whether a next page exists.
	if r.Query["limit"][0] != "3" || r.Query["orderField"][0] != "metadata.name,asc" {
		t.Errorf("query = %v", r.Query)
	}
	var page SearchEntitiesResult
	b, _ := json.Marshal(res.StructuredContent)
	_ = json.Unmarshal(b, &page)
	if page.NextCursor == "" {
		t.Fatal("no next cursor")
	}
	if strings.Contains(page.NextCursor, "team-checkout") {
		t.Error("the cursor handed to the agent is readable")
	}
	res = call(t, SearchEntities(d), ctx, `{"cursor":"`+page.NextCursor+`","limit":2}`)
	if res.IsError {
		t.Fatal(text(res))
	}
	r = lastQuery()
	if _, hasFilter := r.Query["filter"]; hasFilter || r.Query.Get("cursor") == "" || r.Query.Get("limit") != "3" {
		t.Errorf("cursor request = %v: it must carry the cursor and limit only", r.Query)
	}

	res = call(t, SearchEntities(d), ctx, `{"text":"checkout","kind":"api"}`)
	if res.IsError {
		t.Fatal(text(res))
	}
	r = lastQuery()
	// The text is matched on the caller's view, never sent to Backstage
	// (which would match masked fields and secrets, and treat % and _ as
	// wildcards).
	if r.Query.Has("fullTextFilterTerm") || r.Query.Has("fullTextFilterFields") || r.Query.Get("filter") != "kind=api,metadata.namespace=default" {
		t.Errorf("full-text query = %v", r.Query)
	}

	if res := call(t, GetEntity(d), ctx, `{"ref":"component:default/checkout-service"}`); res.IsError {
		t.Fatal(text(res))
	}
	// nsAccess decides visibility by ref alone: no pruning lookup follows,
	// only the lookup of the system's domain.
	reqs := mc.Requests()
	if r := reqs[len(reqs)-2]; r.Path != "/api/catalog/entities/by-name/component/default/checkout-service" {
		t.Errorf("get request = %s", r.Path)
	}
	if r := reqs[len(reqs)-1]; r.Path != "/api/catalog/entities/by-refs" || !strings.Contains(string(r.Body), `"system:default/checkout"`) {
		t.Errorf("domain request = %s %s", r.Path, r.Body)
	}

	if res := call(t, GetRelations(d), ctx, `{"ref":"component:default/checkout-service","relations":["dependsOn"]}`); res.IsError {
		t.Fatal(text(res))
	}
	r = last()
	var body struct {
		EntityRefs []string `json:"entityRefs"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil || r.Method != "POST" || r.Path != "/api/catalog/entities/by-refs" || len(body.EntityRefs) != 3 {
		t.Errorf("relations request = %s %s %s", r.Method, r.Path, r.Body)
	}

	if res := call(t, ListFacets(d), ctx, `{"facet":"spec.type","kind":"Component"}`); res.IsError {
		t.Fatal(text(res))
	}
	r = last()
	if r.Path != "/api/catalog/entity-facets" || r.Query.Get("facet") != "spec.type" ||
		r.Query.Get("filter") != "kind=component,metadata.namespace=default" {
		t.Errorf("facets request = %s %v", r.Path, r.Query)
	}
	for _, rr := range mc.Requests() {
		if rr.Authorization != "Bearer svc-token" {
			t.Errorf("%s %s carried %q", rr.Method, rr.Path, rr.Authorization)
		}
	}
}

// TestPruneKeepsNamesOfEntitiesInTheSameAnswer: pruning a page of
// entities that name each other keeps those names, whether visibility is
// decided by refs alone (nsAccess) or by a lookup.
func TestPruneKeepsNamesOfEntitiesInTheSameAnswer(t *testing.T) {
	ents, err := demo.Entities()
	if err != nil {
		t.Fatal(err)
	}
	mc, err := memcatalog.New(ents, memcatalog.WithToken("svc-token"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mc.Handler())
	defer srv.Close()
	c, err := catalog.New(catalog.Config{BaseURL: srv.URL, Token: catalog.StaticToken("svc-token")})
	if err != nil {
		t.Fatal(err)
	}
	d := &Deps{Catalog: c, Redactor: identityRedactor{}, Cursors: NewCursorCodec(nil)}
	for name, acc := range map[string]Access{"by ref": nsAccess{}, "by lookup": lookupAccess{}} {
		t.Run(name, func(t *testing.T) {
			ctx := WithAccess(context.Background(), acc)
			relCount := func(res map[string]any) float64 {
				rels, _ := res["relations"].([]any)
				for _, r := range rels {
					if rr, _ := r.(map[string]any); rr["type"] == "dependsOn" {
						n, _ := rr["total"].(float64)
						return n
					}
				}
				return 0
			}
			one := call(t, GetEntity(d), ctx, `{"ref":"component:default/checkout-service"}`)
			var alone map[string]any
			b, _ := json.Marshal(one.StructuredContent)
			_ = json.Unmarshal(b, &alone)
			page := call(t, SearchEntities(d), ctx, `{"kind":"Component","limit":100}`)
			var p SearchEntitiesResult
			b, _ = json.Marshal(page.StructuredContent)
			_ = json.Unmarshal(b, &p)
			found := false
			for _, it := range p.Items {
				m := it.(map[string]any)
				if m["ref"] == "component:default/checkout-service" {
					found = true
					if relCount(m) != relCount(alone) || relCount(m) == 0 {
						t.Errorf("dependsOn %v in a page, %v alone", relCount(m), relCount(alone))
					}
				}
			}
			if !found {
				t.Fatal("checkout-service not on the page")
			}
		})
	}
}

// lookupAccess is nsAccess whose refs are never decided by ref alone.
type lookupAccess struct{ nsAccess }

func (lookupAccess) VisibleRef(string) (bool, bool) { return false, false }

// scanAccess is nsAccess whose scan filters leave the namespace condition
// to the post-filter, as policy.Pushdown.ForScan does for broad ones.
type scanAccess struct{ nsAccess }

func (scanAccess) ConstrainScan(user []catalog.Filter) ([]catalog.Filter, bool) { return user, false }

// TestSearchScanFilters checks which filters a search sends: Constrain's
// when Backstage's count is shown (exact rights, kind and namespace
// filters only), ConstrainScan's otherwise, with the same answer.
func TestSearchScanFilters(t *testing.T) {
	ents, err := demo.Entities()
	if err != nil {
		t.Fatal(err)
	}
	mc, err := memcatalog.New(ents, memcatalog.WithToken("svc-token"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mc.Handler())
	defer srv.Close()
	c, err := catalog.New(catalog.Config{BaseURL: srv.URL, Token: catalog.StaticToken("svc-token")})
	if err != nil {
		t.Fatal(err)
	}
	d := &Deps{Catalog: c, Redactor: identityRedactor{}, Cursors: NewCursorCodec(nil)}
	lastFilter := func() []string {
		reqs := mc.Requests()
		for i := len(reqs) - 1; i >= 0; i-- {
			if reqs[i].Path == "/api/catalog/entities/by-query" {
				return url.Values(reqs[i].Query)["filter"]
			}
		}
		t.Fatal("no by-query request")
		return nil
	}
	for _, tc := range []struct {
		args, filter string
		total        bool
	}{
		{`{"kind":"Component","limit":3}`, "kind=component,metadata.namespace=default", true},
		{`{"kind":"Component","owner":"team-checkout","limit":3}`, "kind=component,relations.ownedby=group:default/team-checkout", false},
		{`{"type":"service","limit":3}`, "spec.type=service", false},
	} {
		scan := call(t, SearchEntities(d), WithAccess(context.Background(), scanAccess{}), tc.args)
		if got := lastFilter(); len(got) != 1 || got[0] != tc.filter {
			t.Errorf("%s: filter %q, want %q", tc.args, got, tc.filter)
		}
		exact := call(t, SearchEntities(d), WithAccess(context.Background(), nsAccess{}), tc.args)
		decode := func(res *mcp.CallToolResult) (SearchEntitiesResult, string) {
			var r SearchEntitiesResult
			b, _ := json.Marshal(res.StructuredContent)
			_ = json.Unmarshal(b, &r)
			more := r.NextCursor != ""
			r.NextCursor = ""
			b, _ = json.Marshal(r)
			return r, fmt.Sprintf("%s more=%v", b, more)
		}
		rs, a := decode(scan)
		_, b := decode(exact)
		if scan.IsError || a != b {
			t.Errorf("%s: scan filters answer %s, exact filters %s", tc.args, a, b)
		}
		if (rs.TotalItems != nil) != tc.total {
			t.Errorf("%s: totalItems shown=%v, want %v", tc.args, rs.TotalItems != nil, tc.total)
		}
	}
}

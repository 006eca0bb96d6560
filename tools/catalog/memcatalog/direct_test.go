package memcatalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog/gencatalog"
)

// handlerTransport hands the client's requests to a handler in process.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, req)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

// directAndHTTP returns a catalog of the fixture plus a generated catalog,
// and a catalog client reading the same catalog through its handler.
func directAndHTTP(t *testing.T, opts ...Option) (*Catalog, *catalog.Client) {
	t.Helper()
	gen, err := gencatalog.Generate(400, 7)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(append(fixture(), gen.Entities...), append([]Option{WithToken(testToken)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := catalog.New(catalog.Config{BaseURL: "http://memcatalog.invalid", Token: catalog.StaticToken(testToken),
		HTTPClient: &http.Client{Transport: handlerTransport{c.Handler()}}})
	if err != nil {
		t.Fatal(err)
	}
	return c, cl
}

// sameOutcome fails unless the two paths gave equal values and equal
// errors (message and kind).
func sameOutcome(t *testing.T, what string, direct, viaHTTP any, derr, herr error) {
	t.Helper()
	if (derr == nil) != (herr == nil) || (derr != nil && derr.Error() != herr.Error()) {
		t.Fatalf("%s: errors differ:\ndirect: %v\nhttp:   %v", what, derr, herr)
	}
	for _, kind := range []error{catalog.ErrNotFound, catalog.ErrBadInput, catalog.ErrBadFilter, catalog.ErrInvalidRef,
		catalog.ErrUnavailable, catalog.ErrNotAllowed} {
		if errors.Is(derr, kind) != errors.Is(herr, kind) {
			t.Fatalf("%s: errors.Is(%v) differs: direct %v, http %v", what, kind, derr, herr)
		}
	}
	if !reflect.DeepEqual(direct, viaHTTP) {
		t.Fatalf("%s: answers differ:\ndirect: %s\nhttp:   %s", what, show(direct), show(viaHTTP))
	}
}

func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 2000 {
		return string(b[:2000]) + "…"
	}
	return string(b)
}

// TestDirectMatchesHandler: the Go calls answer exactly what the catalog
// client reads from the HTTP handler (which the e2e fidelity tests hold
// to a real Backstage): items byte for byte, totals, cursors (followed
// both ways), projections, facets, and the same errors for bad filters,
// fields, cursors and refs and for missing entities.
func TestDirectMatchesHandler(t *testing.T) {
	for _, verbatim := range []bool{false, true} {
		t.Run(fmt.Sprint("verbatim=", verbatim), func(t *testing.T) {
			c, cl := directAndHTTP(t)
			if verbatim {
				var raws []json.RawMessage
				p, err := cl.Query(context.Background(), catalog.Query{Limit: 100000})
				if err != nil {
					t.Fatal(err)
				}
				raws = p.Items
				if c, err = NewJSON(raws, Verbatim(), WithToken(testToken)); err != nil {
					t.Fatal(err)
				}
				if cl, err = catalog.New(catalog.Config{BaseURL: "http://memcatalog.invalid", Token: catalog.StaticToken(testToken),
					HTTPClient: &http.Client{Transport: handlerTransport{c.Handler()}}}); err != nil {
					t.Fatal(err)
				}
			}
			checkDirect(t, c, cl)
		})
	}
}

func checkDirect(t *testing.T, c *Catalog, cl *catalog.Client) {
	ctx := context.Background()
	queries := []catalog.Query{
		{},
		{Limit: 7},
		{Limit: 1 << 40},
		{Filters: []catalog.Filter{{"kind": {"component"}}}, Limit: 20},
		{Filters: []catalog.Filter{{"kind": {"Component", "api"}, "spec.lifecycle": {"production"}}}, Limit: 15},
		{Filters: []catalog.Filter{{"kind": {"component"}}, {"kind": {"group"}, "spec.type": {"team"}}}, Limit: 9},
		{Filters: []catalog.Filter{{"metadata.annotations.backstage.io/techdocs-ref": nil}}},
		{Filters: []catalog.Filter{{"spec.owner": {" team-a\u00a0"}}}},
		{Filters: []catalog.Filter{{"relations.ownedBy": {"group:default/team-a"}}, {"metadata.tags": {"java"}}}},
		{Filters: []catalog.Filter{{"kind": {"component"}}}, Order: []catalog.Order{{Field: "metadata.name"}}, Limit: 11},
		{Filters: []catalog.Filter{{"kind": {"component"}}}, Order: []catalog.Order{{Field: "spec.type", Descending: true}, {Field: "metadata.name"}}, Limit: 13},
		{Order: []catalog.Order{{Field: "metadata.title"}}, Limit: 25, Fields: []string{"metadata.name", "metadata.title", "kind"}},
		{FullTextTerm: "svc", Limit: 10},
		{FullTextTerm: "Svc", FullTextFields: []string{"metadata.name", "metadata.title"}, Limit: 10},
		{FullTextTerm: "5_%", FullTextFields: []string{"spec.weird"}},
		{FullTextTerm: "a", Order: []catalog.Order{{Field: "metadata.name", Descending: true}}, Limit: 30},
		{Fields: []string{"kind", "metadata.name", " metadata.namespace", "kind", "spec.providesApis", "relations", "metadata.annotations.backstage.io/techdocs-ref"}, Limit: 40},
		{Fields: []string{"spec.objs.length", "spec.objs.name"}, Filters: []catalog.Filter{{"metadata.name": {"svc-four"}}}},
		// Fields that overlap, reach into arrays and objects already
		// projected whole, and replace them.
		{Fields: []string{"spec.objs", "spec.objs.0.name", "spec.objs.1.v", "metadata.name", "metadata", "spec.num", "spec.flag",
			"spec.empty", "relations.0", "relations.0.type", "metadata.tags.1", "spec.objs.length"}, Filters: []catalog.Filter{{"kind": {"component"}}}},
		{Fields: []string{"metadata.annotations", "metadata.annotations.backstage.io/techdocs-ref", "spec", "spec.owner", "relations"}, Limit: 50},
		// Refused by the client's checks or by the catalog's.
		{Filters: []catalog.Filter{{}}},
		{Filters: []catalog.Filter{{"kind": {"a,b"}}}},
		{Filters: []catalog.Filter{{"bad key": {"x"}}}},
		{Order: []catalog.Order{{Field: "a b"}}},
		{Fields: []string{"spec[0]"}},
		{FullTextTerm: "x", FullTextFields: []string{"a=b"}},
		{Cursor: "not a cursor"},
		{Cursor: "eyJvcmRlckZpZWxkcyI6W119"},
	}
	pages, items, failures := 0, 0, 0
	for i, q := range queries {
		dp, derr := c.Query(ctx, q)
		hp, herr := cl.Query(ctx, q)
		sameOutcome(t, fmt.Sprintf("query #%d", i), dp, hp, derr, herr)
		if derr != nil {
			failures++
		} else {
			items += len(dp.Items)
		}
		// Follow the cursors both ways, a few pages.
		for step := 0; derr == nil && step < 4; step++ {
			next := dp.NextCursor
			if step == 3 || next == "" {
				next = dp.PrevCursor
			}
			if next == "" {
				break
			}
			cq := catalog.Query{Cursor: next, Limit: q.Limit, Fields: q.Fields}
			dp, derr = c.Query(ctx, cq)
			hp, herr = cl.Query(ctx, cq)
			sameOutcome(t, fmt.Sprintf("query #%d page %d", i, step+2), dp, hp, derr, herr)
			pages++
		}
	}
	// The table must exercise what it claims to: pages followed by cursor,
	// entities compared, and refusals.
	if pages < 20 || items < 500 || failures < 6 {
		t.Fatalf("too little compared: %d cursor pages, %d items, %d refused queries", pages, items, failures)
	}

	refs := []catalog.Ref{
		{Kind: "component", Namespace: "default", Name: "svc-one"},
		{Kind: "Component", Namespace: "OTHER", Name: "svc-three"},
		{Kind: "component", Namespace: "default", Name: "nope"},
		{Kind: "component", Namespace: "default", Name: "bad name"},
		{Kind: "", Namespace: "default", Name: "x"},
	}
	for _, r := range refs {
		d, derr := c.GetByName(ctx, r)
		h, herr := cl.GetByName(ctx, r)
		sameOutcome(t, "get "+r.String(), d, h, derr, herr)
	}

	byRefs := []struct {
		refs, fields []string
	}{
		{[]string{"component:default/svc-one", "COMPONENT:default/SVC-TWO", "component:default/missing", "garbage"}, nil},
		{[]string{"component:default/svc-one", "api:default/pay-api"}, []string{"metadata.name", "spec.type", "relations"}},
		{[]string{}, nil},
		{[]string{"component:default/svc-one"}, []string{"bad field!"}},
	}
	for i, br := range byRefs {
		d, derr := c.GetByRefs(ctx, br.refs, br.fields)
		h, herr := cl.GetByRefs(ctx, br.refs, br.fields)
		sameOutcome(t, fmt.Sprintf("by-refs #%d", i), d, h, derr, herr)
	}

	facets := []struct {
		facets  []string
		filters []catalog.Filter
	}{
		{[]string{"kind", "spec.type", "kind", "metadata.tags", "spec.nothing"}, nil},
		{[]string{"spec.lifecycle", "relations.ownedBy"}, []catalog.Filter{{"kind": {"component"}}, {"kind": {"api"}}}},
		{nil, nil},
		{[]string{"a b"}, nil},
		{[]string{"kind"}, []catalog.Filter{{"kind": {"x=y"}}}},
	}
	for i, f := range facets {
		d, derr := c.Facets(ctx, f.facets, f.filters)
		h, herr := cl.Facets(ctx, f.facets, f.filters)
		sameOutcome(t, fmt.Sprintf("facets #%d", i), d, h, derr, herr)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Query(cctx, catalog.Query{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("query with a cancelled context: %v", err)
	}
}

package memcatalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

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

// TestDirectBoundsAnswers: with MaxAnswerBytes, an answer larger than the
// bound is refused with the error the catalog client gives for a response
// body over its MaxResponseBytes (same text, same kinds), for every call;
// an answer within the bound is whole.
func TestDirectBoundsAnswers(t *testing.T) {
	ctx := context.Background()
	const bound = 4096
	c, _ := directAndHTTP(t, MaxAnswerBytes(bound))
	open, _ := directAndHTTP(t)
	bounded, err := catalog.New(catalog.Config{BaseURL: "http://memcatalog.invalid", Token: catalog.StaticToken(testToken),
		MaxResponseBytes: bound, HTTPClient: &http.Client{Transport: handlerTransport{open.Handler()}}})
	if err != nil {
		t.Fatal(err)
	}
	tooLarge := func(what string, derr, herr error) {
		t.Helper()
		if !errors.Is(derr, catalog.ErrResponseTooLarge) || !errors.Is(derr, catalog.ErrUnavailable) {
			t.Fatalf("%s: got %v, want the response-too-large error", what, derr)
		}
		if herr == nil || derr.Error() != herr.Error() {
			t.Fatalf("%s: errors differ:\ndirect: %v\nclient: %v", what, derr, herr)
		}
	}
	q := catalog.Query{Limit: 100}
	_, derr := c.Query(ctx, q)
	_, herr := bounded.Query(ctx, q)
	tooLarge("query", derr, herr)

	refs := make([]string, 0, 50)
	open.Versions(func(v Version) {
		if len(refs) < 50 {
			refs = append(refs, v.Ref)
		}
	})
	_, derr = c.GetByRefs(ctx, refs, nil)
	_, herr = bounded.GetByRefs(ctx, refs, nil)
	tooLarge("by refs", derr, herr)

	// A projection small enough passes; the same page whole does not.
	p, err := c.Query(ctx, catalog.Query{Limit: 20, Fields: []string{"kind"}})
	if err != nil || len(p.Items) != 20 {
		t.Fatalf("a small projected page: %d items, %v", len(p.Items), err)
	}
	// One entity within the bound is served whole, as through the client.
	raw, err := c.GetByName(ctx, catalog.Ref{Kind: "component", Namespace: "default", Name: "svc-four"})
	if err != nil || len(raw) == 0 || len(raw) > bound {
		t.Fatalf("one entity: %d bytes, %v", len(raw), err)
	}
	// Facets whose values exceed the bound are refused too.
	tiny, _ := directAndHTTP(t, MaxAnswerBytes(200))
	if _, err := tiny.Facets(ctx, []string{"metadata.name"}, nil); !errors.Is(err, catalog.ErrResponseTooLarge) {
		t.Fatalf("facets over the bound: %v", err)
	}
	if _, err := tiny.GetByName(ctx, catalog.Ref{Kind: "component", Namespace: "default", Name: "svc-four"}); !errors.Is(err, catalog.ErrResponseTooLarge) {
		t.Fatalf("an entity over the bound: %v", err)
	}
}

// TestDirectDeadlines: a call whose context's deadline has passed, or that
// outlives CallTimeout, fails as the client fails a request that timed
// out; a canceled one as the client fails a canceled request.
func TestDirectDeadlines(t *testing.T) {
	c, _ := directAndHTTP(t)
	// A real HTTP server: the client's transport honours its context.
	hs := httptest.NewServer(c.Handler())
	t.Cleanup(hs.Close)
	cl, err := catalog.New(catalog.Config{BaseURL: hs.URL, Token: catalog.StaticToken(testToken)})
	if err != nil {
		t.Fatal(err)
	}
	past, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	q := catalog.Query{Limit: 5}
	_, derr := c.Query(past, q)
	_, herr := cl.Query(past, q)
	if !errors.Is(derr, catalog.ErrUnavailable) || herr == nil || derr.Error() != herr.Error() {
		t.Fatalf("past deadline:\ndirect: %v\nclient: %v", derr, herr)
	}
	canceled, stop := context.WithCancel(context.Background())
	stop()
	_, derr = c.GetByName(canceled, catalog.Ref{Kind: "component", Namespace: "default", Name: "svc-four"})
	_, herr = cl.GetByName(canceled, catalog.Ref{Kind: "component", Namespace: "default", Name: "svc-four"})
	if !errors.Is(derr, context.Canceled) || herr == nil || derr.Error() != herr.Error() {
		t.Fatalf("canceled:\ndirect: %v\nclient: %v", derr, herr)
	}
	// A call timeout shorter than any call: every call times out.
	quick, _ := directAndHTTP(t, CallTimeout(time.Nanosecond))
	time.Sleep(time.Millisecond)
	for what, call := range map[string]func() error{
		"query": func() error { _, err := quick.Query(context.Background(), q); return err },
		"get": func() error {
			_, err := quick.GetByName(context.Background(), catalog.Ref{Kind: "component", Namespace: "default", Name: "svc-four"})
			return err
		},
		"refs": func() error {
			_, err := quick.GetByRefs(context.Background(), []string{"component:default/svc-four"}, nil)
			return err
		},
		"facets": func() error { _, err := quick.Facets(context.Background(), []string{"kind"}, nil); return err },
	} {
		if err := call(); !errors.Is(err, catalog.ErrUnavailable) || !strings.HasSuffix(err.Error(), ": timed out") {
			t.Errorf("%s past the call timeout: %v", what, err)
		}
	}
	// A generous one leaves calls alone.
	slow, _ := directAndHTTP(t, CallTimeout(time.Minute))
	if p, err := slow.Query(context.Background(), q); err != nil || len(p.Items) != 5 {
		t.Fatalf("within the call timeout: %v", err)
	}
}

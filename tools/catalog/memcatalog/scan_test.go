package memcatalog

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// scanCatalog is a random catalog for the walk tests: names in random
// order (so name order is not uid order), owners from a small or a large
// pool (dense and sparse sets), zero to three tags (several rows per
// entity under one key, or none), and a title on some entities only
// (ordering by it leaves entities out).
func scanCatalog(t *testing.T, r *rand.Rand, n int) *Catalog {
	t.Helper()
	ents := make([]map[string]any, 0, n)
	kinds := []string{"Component", "Component", "Component", "Resource"}
	for i := range n {
		md := map[string]any{"name": fmt.Sprintf("e-%03d-%05d", r.IntN(50), i)}
		if r.IntN(3) > 0 {
			md["title"] = fmt.Sprintf("T%d", r.IntN(20))
		}
		var tags []any
		for range r.IntN(4) {
			tag := fmt.Sprintf("t%d", r.IntN(6))
			dup := false
			for _, x := range tags {
				dup = dup || x == tag
			}
			if !dup {
				tags = append(tags, tag)
			}
		}
		if tags != nil {
			md["tags"] = tags
		}
		owner := fmt.Sprintf("team-%d", r.IntN(4))
		if r.IntN(2) == 0 {
			owner = fmt.Sprintf("rare-%d", r.IntN(max(1, n/3)))
		}
		kind := kinds[r.IntN(len(kinds))]
		spec := map[string]any{"type": "service", "owner": owner}
		if kind == "Component" {
			spec["lifecycle"] = "production"
		}
		ents = append(ents, map[string]any{"apiVersion": "backstage.io/v1alpha1", "kind": kind, "metadata": md, "spec": spec})
	}
	c, err := New(ents)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestScanRoutesAgree: the dense walk (binary-searched start), the sparse
// walk (gathered rows) and the automatic choice answer every page exactly
// as the plain walk over every row does: same items, totals and cursors,
// byte for byte, following next and previous cursors.
func TestScanRoutesAgree(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	routes := []walkRoute{routeAuto, routeDense, routeSparse}
	pages := 0
	queries := 60 // per catalog size; `make test` (-short) asks fewer
	if testing.Short() {
		queries = 20
	}
	for _, n := range []int{0, 1, 2, 63, 64, 65, 130, 700} {
		c := scanCatalog(t, r, n)
		h := c.Handler()
		get := func(route walkRoute, q string) (int, string) {
			c.route = route
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/catalog/entities/by-query?"+q, nil))
			return rec.Code, rec.Body.String()
		}
		for range queries {
			v := url.Values{}
			var filter []string
			if r.IntN(2) == 0 {
				filter = append(filter, "kind="+[]string{"component", "resource"}[r.IntN(2)])
			}
			switch r.IntN(4) {
			case 0:
				filter = append(filter, fmt.Sprintf("spec.owner=team-%d", r.IntN(4)))
			case 1:
				filter = append(filter, fmt.Sprintf("spec.owner=rare-%d", r.IntN(max(1, n/3))))
			case 2:
				filter = append(filter, fmt.Sprintf("metadata.tags=t%d", r.IntN(6)))
			}
			if len(filter) > 0 {
				v.Set("filter", strings.Join(filter, ","))
			}
			if r.IntN(4) > 0 {
				field := []string{"metadata.name", "metadata.title", "metadata.tags", "spec.owner"}[r.IntN(4)]
				v.Set("orderField", field+","+[]string{"asc", "desc"}[r.IntN(2)])
			}
			if r.IntN(4) == 0 {
				v.Set("fullTextFilterTerm", []string{"e-01", "t3", "0", "team", "x_"}[r.IntN(5)])
				if r.IntN(2) == 0 {
					v.Set("fullTextFilterFields", "metadata.name")
				}
			}
			v.Set("limit", fmt.Sprint(r.IntN(12)))
			if r.IntN(4) == 0 {
				v.Set("offset", fmt.Sprint(r.IntN(20)))
			}
			q := v.Encode()
			// Walk forward to the end, then back, comparing every page.
			for step := 0; step < 40 && q != ""; step++ {
				pages++
				code, want := get(routeFull, q)
				for _, route := range routes {
					if gc, got := get(route, q); gc != code || got != want {
						t.Fatalf("n=%d route %d, %s:\n got %d %s\nwant %d %s", n, route, q, gc, got, code, want)
					}
				}
				var page struct {
					PageInfo struct{ NextCursor, PrevCursor string }
				}
				if err := json.Unmarshal([]byte(want), &page); err != nil || code != http.StatusOK {
					t.Fatalf("%s: %d %s", q, code, want)
				}
				next := page.PageInfo.NextCursor
				if step >= 20 || next == "" {
					next = page.PageInfo.PrevCursor
				}
				q = ""
				if next != "" {
					q = url.Values{"cursor": {next}, "limit": {v.Get("limit")}}.Encode()
				}
			}
		}
	}
	if pages < 1000 {
		t.Fatalf("only %d pages compared", pages)
	}
	t.Logf("%d pages compared", pages)
}

// TestListSetsMatchLists: a filter reads a long value range or exists list
// through its cached set; the set holds exactly the list's entities, the
// first time (built) and after (cached), and past the cache's bound.
func TestListSetsMatchLists(t *testing.T) {
	c := scanCatalog(t, rand.New(rand.NewPCG(9, 1)), 2000)
	idx := c.idx
	check := func(name string, l []int32) {
		t.Helper()
		want := newBitset(idx.n)
		idx.fromList(l, want)
		for range 2 {
			got := newBitset(idx.n)
			idx.orList(name, l, got)
			if !slices.Equal(got, want) {
				t.Fatalf("%s: set differs from its list", name)
			}
		}
	}
	long := 0
	for key, rows := range idx.byKey {
		for i := 0; i < len(rows); {
			v := rows[i].value
			vr := idx.valueRows(key, v)
			if len(vr) == 0 || &vr[0] != &rows[i] {
				t.Fatalf("%s=%s: valueRows does not start at the value's first row", key, v)
			}
			var l []int32
			for _, r := range vr {
				if r.value != v {
					t.Fatalf("%s=%s: valueRows holds %s", key, v, r.value)
				}
				l = append(l, r.ent)
			}
			i += len(vr)
			if i < len(rows) && rows[i].value == v {
				t.Fatalf("%s=%s: valueRows stops short", key, v)
			}
			if len(l) >= idx.n/listSetRatio {
				long++
			}
			check("p\x00"+key+"\x00"+v, l)
			// orRows sets the same entities as orList.
			want, got := newBitset(idx.n), newBitset(idx.n)
			idx.fromList(l, want)
			idx.orRows("p\x00"+key+"\x00"+v, vr, got)
			if !slices.Equal(got, want) {
				t.Fatalf("%s=%s: orRows differs from the list", key, v)
			}
		}
	}
	for key, l := range idx.exists {
		check("e\x00"+key, l)
	}
	if long < 5 || len(idx.lists.sets) == 0 {
		t.Fatalf("%d long lists, %d cached sets: the test does not reach the cache", long, len(idx.lists.sets))
	}
	// Past the bound, lists are read directly and answers stay the same.
	for i := len(idx.lists.sets); i < maxListSets; i++ {
		idx.lists.sets[fmt.Sprint("filler", i)] = nil
	}
	var l []int32
	for _, r := range idx.valueRows("kind", "component") {
		l = append(l, r.ent)
	}
	check("p\x00kind\x00component-uncached", l)
	if _, cached := idx.lists.sets["p\x00kind\x00component-uncached"]; cached {
		t.Fatal("a set was cached past maxListSets")
	}
}

// TestIntersectSorted: galloping intersection equals the plain one on
// random ascending lists of very different lengths.
func TestIntersectSorted(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	list := func(n, span int) []int32 {
		seen := map[int32]bool{}
		for len(seen) < min(n, span) {
			seen[int32(r.IntN(span))] = true //nolint:gosec // small test values
		}
		out := make([]int32, 0, len(seen))
		for x := range seen {
			out = append(out, x)
		}
		slices.Sort(out)
		return out
	}
	for range 500 {
		a, b := list(r.IntN(40), 1+r.IntN(5000)), list(r.IntN(3000), 1+r.IntN(5000))
		var want []int32
		for _, x := range a {
			if _, ok := slices.BinarySearch(b, x); ok {
				want = append(want, x)
			}
		}
		got := intersectSorted(slices.Clone(a), b)
		if !slices.Equal(got, want) && (len(got) > 0 || len(want) > 0) {
			t.Fatalf("intersect(%v, %d items) = %v, want %v", a, len(b), got, want)
		}
	}
}

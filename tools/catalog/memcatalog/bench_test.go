package memcatalog

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

func benchCatalog(b *testing.B, n int) *Catalog {
	b.Helper()
	ents := make([]map[string]any, 0, n)
	types := []string{"service", "website", "library"}
	for i := range n {
		ents = append(ents, map[string]any{
			"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
			"metadata": map[string]any{"name": fmt.Sprintf("svc-%05d", i), "tags": []any{"java", fmt.Sprintf("t%d", i%50)},
				"annotations": map[string]any{"backstage.io/techdocs-ref": "dir:."}},
			"spec": map[string]any{"type": types[i%3], "lifecycle": "production", "owner": fmt.Sprintf("team-%d", i%40),
				"system": fmt.Sprintf("sys-%d", i%100)},
		})
	}
	c, err := New(ents)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func benchRequest(b *testing.B, c *Catalog, method, target string) {
	h := c.Handler()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
		if rec.Code != http.StatusOK {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
}

// BenchmarkByQueryFiltered10k: a filtered, ordered, projected page over
// 10,000 entities (about 1,000 match).
func BenchmarkByQueryFiltered10k(b *testing.B) {
	c := benchCatalog(b, 10000)
	benchRequest(b, c, "GET", "/api/catalog/entities/by-query?filter=kind=component,spec.type=service,metadata.tags=t7&filter=relations.ownedBy=group:default/team-3&orderField=metadata.name,asc&limit=50&fields=metadata.name,spec.owner")
}

// BenchmarkByQueryFullText10k: full-text search over names of 10,000 entities.
func BenchmarkByQueryFullText10k(b *testing.B) {
	c := benchCatalog(b, 10000)
	benchRequest(b, c, "GET", "/api/catalog/entities/by-query?fullTextFilterTerm=svc-012&fullTextFilterFields=metadata.name&limit=20")
}

// BenchmarkByName10k: one lookup by name among 10,000 entities.
func BenchmarkByName10k(b *testing.B) {
	c := benchCatalog(b, 10000)
	benchRequest(b, c, "GET", "/api/catalog/entities/by-name/component/default/svc-04242")
}

// BenchmarkFacets10k: one facet over 10,000 entities.
func BenchmarkFacets10k(b *testing.B) {
	c := benchCatalog(b, 10000)
	benchRequest(b, c, "GET", "/api/catalog/entity-facets?facet=spec.type&filter=kind=component")
}

// BenchmarkNew10k: building the catalog and its index.
func BenchmarkNew10k(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		benchCatalog(b, 10000)
	}
}

// BenchmarkByQuerySummaries10k: the page a search tool asks for, 20
// entities projected to the summary fields (subtrees included).
func BenchmarkByQuerySummaries10k(b *testing.B) {
	c := benchCatalog(b, 10000)
	benchRequest(b, c, "GET", "/api/catalog/entities/by-query?filter=kind=component&limit=20&fields="+
		"kind,metadata.name,metadata.namespace,metadata.title,metadata.description,metadata.tags,metadata.links,"+
		"spec.type,spec.lifecycle,spec.owner,spec.system,relations")
}

// BenchmarkByQueryScale: the page a kind+owner search asks for (about 30
// of the catalog's entities match; 20 returned, ordered by name), a kind
// filter that half the catalog matches, and the next page of the latter,
// at 10,000, 30,000 and 100,000 entities. The time should not grow with
// the catalog:
//
//	go test -run '^$' -bench ByQueryScale -benchmem ./tools/catalog/memcatalog/
func BenchmarkByQueryScale(b *testing.B) {
	for _, n := range []int{10_000, 30_000, 100_000} {
		ents := make([]map[string]any, 0, n)
		for i := range n {
			kind, spec := "Component", map[string]any{"type": "service", "lifecycle": "production"}
			if i%2 == 1 {
				kind, spec = "Resource", map[string]any{"type": "database"}
			}
			spec["owner"] = fmt.Sprintf("team-%d", i%(n/60))
			ents = append(ents, map[string]any{"apiVersion": "backstage.io/v1alpha1", "kind": kind,
				"metadata": map[string]any{"name": fmt.Sprintf("e-%d-%05d", i%97, i), "tags": []any{"java", fmt.Sprintf("t%d", i%50)}},
				"spec":     spec})
		}
		c, err := New(ents)
		if err != nil {
			b.Fatal(err)
		}
		const fields = "&fields=kind,metadata.name,metadata.namespace,spec.type,spec.owner"
		b.Run(fmt.Sprintf("kind+owner/%dk", n/1000), func(b *testing.B) {
			benchRequest(b, c, "GET", "/api/catalog/entities/by-query?filter=kind=component,relations.ownedBy=group:default/team-7&orderField=metadata.name,asc&limit=21"+fields)
		})
		b.Run(fmt.Sprintf("kind/%dk", n/1000), func(b *testing.B) {
			benchRequest(b, c, "GET", "/api/catalog/entities/by-query?filter=kind=component&orderField=metadata.name,asc&limit=21"+fields)
		})
		h := c.Handler()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/catalog/entities/by-query?filter=kind=component&orderField=metadata.name,asc&limit=21", nil))
		var page struct{ PageInfo struct{ NextCursor string } }
		if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil || page.PageInfo.NextCursor == "" {
			b.Fatalf("no next page: %v %s", err, rec.Body.String()[:200])
		}
		b.Run(fmt.Sprintf("kind-page2/%dk", n/1000), func(b *testing.B) {
			benchRequest(b, c, "GET", "/api/catalog/entities/by-query?limit=21&cursor="+url.QueryEscape(page.PageInfo.NextCursor)+fields)
		})
	}
}

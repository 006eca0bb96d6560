package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/tools/catalog/gencatalog"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog/memcatalog"
	"github.com/tidwall/gjson"
)

// realServedBytes is the mean size of an entity as a real Backstage serves
// it (by-query items: relations, uid, etag and location annotations
// included), measured on a production catalog.
const realServedBytes = 1654

// TestServedBytesPerEntity: the catalog the bench loads into Backstage, as
// Backstage serves it, is within 10% of a real catalog's mean entity size.
// "As served" is the generated files read back, with what Backstage adds
// when it reads them from the bench's file locations (the database cache's
// catalog directory, as planDB moves them there): the managed-by-location
// annotations (gencatalog.AddLocation), and the uid, etag, namespace and
// relations (memcatalog, whose relations the e2e fidelity tests hold to
// Backstage's).
func TestServedBytesPerEntity(t *testing.T) {
	const n = 10_000
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root, err := findRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	g, err := generate(t.TempDir(), n, 1)
	if err != nil {
		t.Fatal(err)
	}
	cacheDir := filepath.Join(root, ".cache", "bench-backstage", fmt.Sprintf("%d-%016x", n, 0), "catalog")
	var ents []map[string]any
	for _, f := range g.Files {
		for _, e := range readDocs(t, f) {
			gencatalog.AddLocation(e, "file:"+filepath.Join(cacheDir, filepath.Base(f)))
			ents = append(ents, e)
		}
	}
	mc, err := memcatalog.New(ents, memcatalog.WithoutRecording())
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	mc.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/catalog/entities/by-query?limit=1000000", nil))
	total, count := 0, 0
	gjson.GetBytes(rec.Body.Bytes(), "items").ForEach(func(_, v gjson.Result) bool {
		total += len(v.Raw)
		count++
		return true
	})
	if count != n {
		t.Fatalf("served %d entities, want %d", count, n)
	}
	mean := float64(total) / float64(count)
	t.Logf("%d entities served, %.0f bytes each on average (a real catalog: %d)", count, mean, realServedBytes)
	if mean < realServedBytes*0.9 || mean > realServedBytes*1.1 {
		t.Errorf("mean served entity %.0f bytes, want within 10%% of %d", mean, realServedBytes)
	}
}

// TestCatalogKeyFollowsTheFiles: the database cache's key hashes the
// generated files, so a catalog generated differently (another seed here;
// a changed generator alike) gets a cluster of its own instead of booting
// Backstage on the database of the old one.
func TestCatalogKeyFollowsTheFiles(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root, err := findRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	b := &bench{root: root}
	key := func(seed uint64) string {
		g, err := generate(t.TempDir(), 300, seed)
		if err != nil {
			t.Fatal(err)
		}
		k, err := b.catalogKey(g)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	if a, a2, c := key(1), key(1), key(2); a != a2 || a == c {
		t.Errorf("keys: seed 1 %s and %s, seed 2 %s; want equal, then different", a, a2, c)
	}
}

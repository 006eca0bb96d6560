package gencatalog

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/tools/catalog/memcatalog"
	"github.com/tidwall/gjson"
)

// servedTarget is the mean size of an entity as a real Backstage serves
// it (by-query items: relations, uid, etag and location annotations
// included), measured on a production catalog.
const servedTarget = 1654

// served returns the mean bytes per entity of cat as Backstage would serve
// it, with location(e) as each entity's location, and the mean per kind.
func served(t testing.TB, cat *Catalog, location func(i int, e map[string]any) string) (float64, map[string]float64) {
	t.Helper()
	for i, e := range cat.Entities {
		AddLocation(e, location(i, e))
	}
	mc, err := memcatalog.New(cat.Entities, memcatalog.WithoutRecording())
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	mc.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/catalog/entities/by-query?limit=1000000", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("by-query: %d %s", rec.Code, rec.Body)
	}
	sum := map[string][2]int{}
	total, count := 0, 0
	gjson.GetBytes(rec.Body.Bytes(), "items").ForEach(func(_, v gjson.Result) bool {
		k := v.Get("kind").String()
		s := sum[k]
		s[0] += len(v.Raw)
		s[1]++
		sum[k] = s
		total += len(v.Raw)
		count++
		return true
	})
	if count != len(cat.Entities) {
		t.Fatalf("served %d entities of %d", count, len(cat.Entities))
	}
	per := map[string]float64{}
	for k, s := range sum {
		per[k] = float64(s[0]) / float64(s[1])
	}
	return float64(total) / float64(count), per
}

// TestServedBytesPerEntity: as Backstage serves it from locations in
// GitHub, the generated catalog's mean entity is within 10% of a real
// catalog's.
func TestServedBytesPerEntity(t *testing.T) {
	cat, err := Generate(10_000, 1)
	if err != nil {
		t.Fatal(err)
	}
	mean, per := served(t, cat, func(_ int, e map[string]any) string { return RepoLocation(e) })
	t.Logf("mean %.0f bytes per entity served (target %d); per kind: %v", mean, servedTarget, per)
	if mean < servedTarget*0.9 || mean > servedTarget*1.1 {
		t.Errorf("mean served entity %.0f bytes, want within 10%% of %d", mean, servedTarget)
	}
}

func TestGenerate(t *testing.T) {
	for _, n := range []int{100, 1500, 10_000} {
		cat, err := Generate(n, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(cat.Entities) != n || len(cat.Refs) != n {
			t.Errorf("%d: %d entities, %d refs", n, len(cat.Entities), len(cat.Refs))
		}
		// memcatalog validates every entity as Backstage does and
		// resolves every relation-bearing ref.
		if _, err := memcatalog.New(cat.Entities, memcatalog.WithoutRecording()); err != nil {
			t.Errorf("%d: %v", n, err)
		}
		for i, e := range cat.Entities {
			md := e["metadata"].(map[string]any)
			if md["name"] != cat.Refs[i].Name {
				t.Fatalf("%d: entity %d is %v, ref %v", n, i, md["name"], cat.Refs[i])
			}
		}
	}
	if _, err := Generate(99, 1); err == nil {
		t.Error("99 entities: want an error")
	}
}

func TestGenerateIsDeterministic(t *testing.T) {
	a, _ := Generate(500, 9)
	b, _ := Generate(500, 9)
	c, _ := Generate(500, 10)
	ja, _ := json.Marshal(a.Entities)
	jb, _ := json.Marshal(b.Entities)
	jc, _ := json.Marshal(c.Entities)
	if !bytes.Equal(ja, jb) {
		t.Error("same seed, different catalogs")
	}
	if bytes.Equal(ja, jc) {
		t.Error("different seeds, same catalog")
	}
}

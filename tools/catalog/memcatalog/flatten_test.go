package memcatalog

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sort"
	"strings"
	"testing"
	"unsafe"

	"github.com/backstage-mcp/backstage-mcp/tools/catalog/gencatalog"
)

// searchRows flattens a decoded entity the way Backstage's buildEntitySearch
// does: the reference jsonRows, which reads the encoding, is held to.
func searchRows(e map[string]any) ([]searchRow, error) {
	type kv struct {
		key   string
		value any
	}
	var raw []kv
	seenPath := map[string]bool{}
	var visit func(path string, cur any)
	visit = func(path string, cur any) {
		if specialKeys[path] {
			return
		}
		switch t := cur.(type) {
		case nil, string, bool, json.Number, float64:
			raw = append(raw, kv{path, t})
		case []any:
			for _, item := range t {
				visit(path, item)
				if s, ok := item.(string); ok {
					pk := path + "." + s
					if lk := strings.ToLower(pk); !seenPath[lk] {
						seenPath[lk] = true
						raw = append(raw, kv{pk, true})
					}
				}
			}
		case map[string]any:
			keys := make([]string, 0, len(t))
			for k := range t {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				p := k
				if path != "" {
					p = path + "." + k
				}
				visit(p, t[k])
			}
		}
	}
	visit("", e)
	md := e["metadata"].(map[string]any)
	raw = append(raw, kv{"metadata.name", md["name"]}, kv{"metadata.namespace", md["namespace"]}, kv{"metadata.uid", md["uid"]})
	if rels, ok := e["relations"].([]any); ok {
		for _, r := range rels {
			m := r.(map[string]any)
			raw = append(raw, kv{"relations." + m["type"].(string), m["targetRef"]})
		}
	}

	byLower := map[string]string{}
	for _, r := range raw {
		l := strings.ToLower(r.key)
		if prev, ok := byLower[l]; ok && prev != r.key {
			return nil, fmt.Errorf("entity has duplicate keys that vary only in casing, '%s'", l)
		}
		byLower[l] = r.key
	}

	rows := make([]searchRow, 0, len(raw))
	seen := map[string]bool{}
	for _, r := range raw {
		key := strings.ToLower(r.key)
		if jsLen(key) > maxSearchKeyLen {
			continue
		}
		row := searchRow{key: key, null: true}
		if r.value != nil {
			s := jsString(r.value)
			if v := strings.ToLower(s); jsLen(v) <= maxSearchValueLen {
				row = searchRow{key: key, value: v, orig: s}
			}
		}
		dk := key + "\x00" + row.value
		if row.null {
			dk = key + "\x01"
		}
		if seen[dk] {
			continue
		}
		seen[dk] = true
		rows = append(rows, row)
	}
	sort.SliceStable(rows, func(a, b int) bool { return rows[a].key < rows[b].key })
	return rows, nil
}

// TestJSONRowsMatchDecoded: the rows read from an entity's encoding are
// the rows of the decoded entity, for the fixture, a generated catalog of
// real shape and random catalogs, and their unescaped strings are pieces
// of the encoding, not copies.
func TestJSONRowsMatchDecoded(t *testing.T) {
	gen, err := gencatalog.Generate(600, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range gen.Entities {
		gencatalog.AddLocation(e, gencatalog.RepoLocation(e))
	}
	weird := map[string]any{"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
		"metadata": map[string]any{"name": "weird", "description": "Tab\tquote\" \u2028 <b>&amp;</b> é Ω", "title": "MiXeD Case"},
		"spec": map[string]any{"type": "service", "lifecycle": "production", "owner": "team-a",
			"n":    []any{1, 2.5, -0.0000001, 1e21, 123456789012345678, nil, true, false, "x"},
			"deep": map[string]any{"a": []any{map[string]any{"b": "c"}, []any{"d", "D"}}, "long": strings.Repeat("ab", 150)}}}
	cats := [][]map[string]any{fixture(), gen.Entities, {weird}}
	for i, ents := range cats {
		c, err := New(ents)
		if err != nil {
			t.Fatal(i, err)
		}
		checkRows(t, c)
	}
	checkRows(t, scanCatalog(t, rand.New(rand.NewPCG(4, 4)), 300))
}

func checkRows(t *testing.T, c *Catalog) {
	t.Helper()
	shared := 0
	for _, en := range c.entries {
		got, err := jsonRows(en.json)
		if err != nil {
			t.Fatal(en.ref, err)
		}
		want, err := searchRows(en.decoded(t))
		if err != nil {
			t.Fatal(en.ref, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: rows differ:\nfrom JSON    %v\nfrom decoded %v", en.ref, got, want)
		}
		start := uintptr(unsafe.Pointer(unsafe.StringData(en.json)))
		for _, r := range got {
			if p := uintptr(unsafe.Pointer(unsafe.StringData(r.orig))); len(r.orig) > 0 && p >= start && p < start+uintptr(len(en.json)) {
				shared++
			}
		}
	}
	if shared == 0 {
		t.Fatal("no row value is a piece of its entity's encoding")
	}
}

package memcatalog

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// jsonRows flattens an entity the way Backstage's buildEntitySearch does
// (the rows searchRows makes of the decoded entity), reading the entity's
// encoding instead: every string without escapes in a row is a piece of
// that encoding, not a copy, so the index holds no second copy of the
// entity's text (a value is copied only when lower-casing changes it).
// TestJSONRowsMatchDecoded holds it to searchRows.
func jsonRows(js string) ([]searchRow, error) {
	root := gjson.Parse(js)
	if !root.IsObject() {
		return nil, fmt.Errorf("not a JSON object")
	}
	type kv struct {
		key   string
		value gjson.Result // Type gjson.True for the "<path>.<item>" rows
	}
	var raw []kv
	seenPath := map[string]bool{}
	var visit func(path string, cur gjson.Result)
	visit = func(path string, cur gjson.Result) {
		if specialKeys[path] {
			return
		}
		switch {
		case cur.IsArray():
			cur.ForEach(func(_, item gjson.Result) bool {
				visit(path, item)
				if item.Type == gjson.String {
					pk := path + "." + item.Str
					if lk := strings.ToLower(pk); !seenPath[lk] {
						seenPath[lk] = true
						raw = append(raw, kv{pk, gjson.Result{Type: gjson.True}})
					}
				}
				return true
			})
		case cur.IsObject():
			type member struct {
				k string
				v gjson.Result
			}
			var ms []member
			cur.ForEach(func(k, v gjson.Result) bool {
				ms = append(ms, member{k.Str, v})
				return true
			})
			sort.SliceStable(ms, func(a, b int) bool { return ms[a].k < ms[b].k })
			for i, m := range ms {
				if i+1 < len(ms) && ms[i+1].k == m.k {
					continue // a repeated key: the last one counts, as when decoded
				}
				p := m.k
				if path != "" {
					p = path + "." + m.k
				}
				visit(p, m.v)
			}
		default:
			raw = append(raw, kv{path, cur})
		}
	}
	visit("", root)
	md := member(root, "metadata")
	raw = append(raw, kv{"metadata.name", member(md, "name")}, kv{"metadata.namespace", member(md, "namespace")},
		kv{"metadata.uid", member(md, "uid")})
	if rels := member(root, "relations"); rels.IsArray() {
		rels.ForEach(func(_, r gjson.Result) bool {
			raw = append(raw, kv{"relations." + member(r, "type").Str, member(r, "targetRef")})
			return true
		})
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
		if r.value.Exists() && r.value.Type != gjson.Null {
			s := jsonString(r.value)
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

// member is the value of key in object o, the last one when the key is
// repeated (as a decoder keeps it); gjson's Get would read key as a path.
func member(o gjson.Result, key string) gjson.Result {
	var out gjson.Result
	o.ForEach(func(k, v gjson.Result) bool {
		if k.Str == key {
			out = v
		}
		return true
	})
	return out
}

// jsonString is jsString of a JSON scalar.
func jsonString(v gjson.Result) string {
	switch v.Type {
	case gjson.String:
		return v.Str
	case gjson.True:
		return "true"
	case gjson.False:
		return "false"
	case gjson.Number:
		if f, err := strconv.ParseFloat(v.Raw, 64); err == nil {
			return jsNumberString(f)
		}
		return v.Raw
	}
	return "null"
}

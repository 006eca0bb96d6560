package memcatalog

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// flattener makes the search rows of one entity after another, reusing
// its scratch space (its maps and slices) from one to the next: a full
// sync flattens every entity of the catalog. Not safe for concurrent use.
type flattener struct {
	raw      []flatKV
	members  [][]flatMember // per depth
	seenPath map[string]bool
	byLower  map[string]string
	seen     map[rowID]bool
	rows     []searchRow
}

type flatKV struct {
	key   string
	value gjson.Result // Type gjson.True for the "<path>.<item>" rows
}

type flatMember struct {
	k string
	v gjson.Result
}

// rowID identifies a row for deduplication: key and value, or key alone
// for a null row.
type rowID struct {
	key, value string
	null       bool
}

func newFlattener() *flattener {
	return &flattener{seenPath: map[string]bool{}, byLower: map[string]string{}, seen: map[rowID]bool{}}
}

// jsonRows is newFlattener().rows(js) with a result of its own.
func jsonRows(js string) ([]searchRow, error) {
	rows, err := newFlattener().rowsOf(js)
	return rows, err
}

// rowsOf flattens an entity the way Backstage's buildEntitySearch does
// (the rows searchRows makes of the decoded entity), reading the entity's
// encoding instead: every string without escapes in a row is a piece of
// that encoding, not a copy, so the index holds no second copy of the
// entity's text (a value is copied only when lower-casing changes it).
// TestJSONRowsMatchDecoded holds it to searchRows. The rows are valid
// until the next call.
func (f *flattener) rowsOf(js string) ([]searchRow, error) {
	root := gjson.Parse(js)
	if !root.IsObject() {
		return nil, fmt.Errorf("not a JSON object")
	}
	f.raw = f.raw[:0]
	clear(f.seenPath)
	clear(f.byLower)
	clear(f.seen)
	f.visit("", root, 0)
	md := member(root, "metadata")
	f.raw = append(f.raw, flatKV{"metadata.name", member(md, "name")}, flatKV{"metadata.namespace", member(md, "namespace")},
		flatKV{"metadata.uid", member(md, "uid")})
	if rels := member(root, "relations"); rels.IsArray() {
		rels.ForEach(func(_, r gjson.Result) bool {
			f.raw = append(f.raw, flatKV{"relations." + member(r, "type").Str, member(r, "targetRef")})
			return true
		})
	}

	for _, r := range f.raw {
		l := strings.ToLower(r.key)
		if prev, ok := f.byLower[l]; ok && prev != r.key {
			return nil, fmt.Errorf("entity has duplicate keys that vary only in casing, '%s'", l)
		}
		f.byLower[l] = r.key
	}

	rows := f.rows[:0]
	for _, r := range f.raw {
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
		id := rowID{key: key, value: row.value, null: row.null}
		if row.null {
			id.value = ""
		}
		if f.seen[id] {
			continue
		}
		f.seen[id] = true
		rows = append(rows, row)
	}
	sort.SliceStable(rows, func(a, b int) bool { return rows[a].key < rows[b].key })
	f.rows = rows
	return rows, nil
}

func (f *flattener) visit(path string, cur gjson.Result, depth int) {
	if specialKeys[path] {
		return
	}
	switch {
	case cur.IsArray():
		cur.ForEach(func(_, item gjson.Result) bool {
			f.visit(path, item, depth+1)
			if item.Type == gjson.String {
				pk := path + "." + item.Str
				if lk := strings.ToLower(pk); !f.seenPath[lk] {
					f.seenPath[lk] = true
					f.raw = append(f.raw, flatKV{pk, gjson.Result{Type: gjson.True}})
				}
			}
			return true
		})
	case cur.IsObject():
		for len(f.members) <= depth {
			f.members = append(f.members, nil)
		}
		ms := f.members[depth][:0]
		cur.ForEach(func(k, v gjson.Result) bool {
			ms = append(ms, flatMember{k.Str, v})
			return true
		})
		sort.SliceStable(ms, func(a, b int) bool { return ms[a].k < ms[b].k })
		f.members[depth] = ms
		for i, m := range ms {
			if i+1 < len(ms) && ms[i+1].k == m.k {
				continue // a repeated key: the last one counts, as when decoded
			}
			p := m.k
			if path != "" {
				p = path + "." + m.k
			}
			f.visit(p, m.v, depth+1)
		}
	default:
		f.raw = append(f.raw, flatKV{path, cur})
	}
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

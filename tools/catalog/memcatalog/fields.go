package memcatalog

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// parseFields collects the field paths of fields parameters (comma separated,
// repeatable) after extra ones, trimmed, deduplicated, in first-seen order.
// It returns nil when no field is named.
func parseFields(extra []string, params []string) ([]string, error) {
	var fields []string
	seen := map[string]bool{}
	add := func(f string) {
		f = jsTrim(f)
		if f != "" && !seen[f] {
			seen[f] = true
			fields = append(fields, f)
		}
	}
	for _, f := range extra {
		add(f)
	}
	for _, p := range params {
		for _, f := range strings.Split(p, ",") {
			add(f)
		}
	}
	for _, f := range fields {
		if strings.Contains(f, "[") {
			return nil, inputError("Invalid field %q, array type fields are not supported", f)
		}
	}
	return fields, nil
}

// project keeps only the given field paths of an entity, read from its
// JSON encoding. A path part that is not a key is joined with the next
// part, so annotation keys with dots
// ("metadata.annotations.backstage.io/techdocs-ref") resolve as in
// Backstage. Every value kept is decoded afresh, so the result shares
// nothing with the catalog.
func project(entityJSON string, fields []string) map[string]any {
	return newProjector(fields).project(entityJSON)
}

// projector projects entities on one list of fields; it reuses its
// scratch space from one entity to the next (not safe for concurrent use).
type projector struct {
	// raw keeps every value found as its encoding (json.RawMessage)
	// instead of decoding it: a projection that is encoded again at once
	// then copies the encoding instead of decoding and re-encoding it. A
	// raw object or array that a later field reaches into is decoded then
	// (nextContainer), so the result encodes exactly as the decoded one.
	raw     bool
	parts   [][]string // of each field
	scratch []string
	// memo remembers the lookups of the current entity, so that fields
	// sharing a prefix (metadata.name, metadata.title, …) find it once.
	memo []step
}

// step is one lookup: member or element key of the value found by step
// parent (-1: the entity).
type step struct {
	parent int
	key    string
	r      gjson.Result
	n      any // an array's length, when key was "length"
	ok     bool
}

func newProjector(fields []string) *projector {
	p := &projector{parts: make([][]string, len(fields))}
	for i, f := range fields {
		p.parts[i] = strings.Split(f, ".")
	}
	return p
}

func (p *projector) project(entityJSON string) map[string]any {
	root := gjson.Parse(entityJSON)
	p.memo = p.memo[:0]
	var out any = map[string]any{}
	for _, parts := range p.parts {
		path, v, ok := p.lookupPath(root, parts)
		if ok {
			out = setPath(out, path, v)
		}
	}
	m, _ := out.(map[string]any)
	return m
}

// lookupPath finds a field (split at its dots) in an encoded entity and
// returns the keys that lead to it and its value, decoded.
func (p *projector) lookupPath(root gjson.Result, field []string) ([]string, any, bool) {
	parts := append(p.scratch[:0], field...)
	defer func() { p.scratch = parts[:0] }()
	var path []string
	cur, at := root, -1
	var length any // set when the last part read an array's length
	for i := 0; i < len(parts); i++ {
		k := parts[i]
		if length == nil {
			j := p.child(at, cur, k)
			if s := &p.memo[j]; s.ok {
				path = append(path, k)
				cur, length, at = s.r, s.n, j
				continue
			}
		}
		if length != nil {
			return nil, nil, false // a number has no children
		}
		if i+1 < len(parts) {
			parts[i+1] = k + "." + parts[i+1]
			continue
		}
		return nil, nil, false
	}
	if length != nil {
		return path, length, true
	}
	if p.raw && cur.Type != gjson.Null {
		return path, json.RawMessage(cur.Raw), true
	}
	return path, value(cur), true
}

func (p *projector) find(parent int, key string) int {
	for i := range p.memo {
		if p.memo[i].parent == parent && p.memo[i].key == key {
			return i
		}
	}
	return -1
}

// child looks up key in cur (found by step at) through the memo, and
// returns the index of its step.
func (p *projector) child(at int, cur gjson.Result, key string) int {
	if i := p.find(at, key); i >= 0 {
		return i
	}
	s := step{parent: at, key: key}
	s.r, s.n, s.ok = child(cur, key)
	p.memo = append(p.memo, s)
	return len(p.memo) - 1
}

// child returns the member key of an object, or element key of an array;
// "length" of an array is its length (n, a json.Number).
func child(cur gjson.Result, key string) (v gjson.Result, n any, ok bool) {
	switch {
	case cur.IsObject():
		cur.ForEach(func(k, x gjson.Result) bool {
			if k.Str == key {
				v, ok = x, true
				return false // the encoding has no duplicate keys
			}
			return true
		})
		return v, nil, ok
	case cur.IsArray():
		if key == "length" {
			count := 0
			cur.ForEach(func(_, _ gjson.Result) bool { count++; return true })
			return gjson.Result{}, json.Number(strconv.Itoa(count)), true
		}
		i, isIndex := arrayIndex(key)
		if !isIndex {
			return v, nil, false
		}
		cur.ForEach(func(_, x gjson.Result) bool {
			if i == 0 {
				v, ok = x, true
				return false
			}
			i--
			return true
		})
		return v, nil, ok
	}
	return v, nil, false
}

// value decodes one value of an encoding, numbers as json.Number, as the
// catalog decoded its entities (the encoding is the catalog's own, so it
// is valid JSON without duplicate keys).
func value(x gjson.Result) any {
	switch x.Type {
	case gjson.String:
		return x.Str
	case gjson.Number:
		return json.Number(x.Raw)
	case gjson.True:
		return true
	case gjson.False:
		return false
	case gjson.JSON:
		if x.IsArray() {
			a := []any{}
			x.ForEach(func(_, y gjson.Result) bool {
				a = append(a, value(y))
				return true
			})
			return a
		}
		m := map[string]any{}
		x.ForEach(func(k, y gjson.Result) bool {
			m[k.Str] = value(y)
			return true
		})
		return m
	}
	return nil
}

func arrayIndex(key string) (int, bool) {
	if key == "" || (len(key) > 1 && key[0] == '0') {
		return 0, false
	}
	n, err := strconv.Atoi(key)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// setPath sets v at path inside container (creating objects, or arrays when
// the next key is an index, like lodash.set) and returns the container.
func setPath(container any, path []string, v any) any {
	if len(path) == 0 {
		return v
	}
	key := path[0]
	switch t := container.(type) {
	case map[string]any:
		t[key] = setPath(nextContainer(t[key], path), path[1:], v)
		return t
	case []any:
		if i, ok := arrayIndex(key); ok && i < 1<<20 {
			for len(t) <= i {
				t = append(t, nil)
			}
			t[i] = setPath(nextContainer(t[i], path), path[1:], v)
			return t
		}
		return t
	}
	return container
}

func nextContainer(existing any, path []string) any {
	if len(path) < 2 {
		return existing
	}
	if raw, ok := existing.(json.RawMessage); ok {
		existing = value(gjson.Parse(string(raw)))
	}
	switch existing.(type) {
	case map[string]any, []any:
		return existing
	}
	if _, ok := arrayIndex(path[1]); ok {
		return []any{}
	}
	return map[string]any{}
}

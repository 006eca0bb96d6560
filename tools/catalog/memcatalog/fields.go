package memcatalog

import (
	"encoding/json"
	"strconv"
	"strings"
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

// project keeps only the given field paths of an entity. A path part that is
// not a key is joined with the next part, so annotation keys with dots
// ("metadata.annotations.backstage.io/techdocs-ref") resolve as in Backstage.
func project(entity map[string]any, fields []string) map[string]any {
	var out any = map[string]any{}
	for _, f := range fields {
		path, v, ok := lookupPath(entity, f)
		if ok {
			out = setPath(out, path, deepCopy(v))
		}
	}
	m, _ := out.(map[string]any)
	return m
}

func lookupPath(root any, field string) ([]string, any, bool) {
	parts := strings.Split(field, ".")
	var path []string
	cur := root
	for i := 0; i < len(parts); i++ {
		p := parts[i]
		if v, ok := child(cur, p); ok {
			path = append(path, p)
			cur = v
			continue
		}
		if i+1 < len(parts) {
			parts[i+1] = p + "." + parts[i+1]
			continue
		}
		return nil, nil, false
	}
	return path, cur, true
}

func child(cur any, key string) (any, bool) {
	switch t := cur.(type) {
	case map[string]any:
		v, ok := t[key]
		return v, ok
	case []any:
		if key == "length" {
			return json.Number(strconv.Itoa(len(t))), true
		}
		if i, ok := arrayIndex(key); ok && i < len(t) {
			return t[i], true
		}
	}
	return nil, false
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
	switch existing.(type) {
	case map[string]any, []any:
		return existing
	}
	if _, ok := arrayIndex(path[1]); ok {
		return []any{}
	}
	return map[string]any{}
}

func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, x := range t {
			m[k] = deepCopy(x)
		}
		return m
	case []any:
		a := make([]any, len(t))
		for i, x := range t {
			a[i] = deepCopy(x)
		}
		return a
	}
	return v
}

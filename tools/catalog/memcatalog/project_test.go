package memcatalog

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// projectDecoded is the reference projection: the same rules applied to
// the decoded entity (as the catalog did when it kept one).
func projectDecoded(entity map[string]any, fields []string) map[string]any {
	var out any = map[string]any{}
	for _, f := range fields {
		parts := strings.Split(f, ".")
		var path []string
		var cur any = entity
		ok := true
		for i := 0; i < len(parts); i++ {
			p := parts[i]
			if v, found := refChild(cur, p); found {
				path = append(path, p)
				cur = v
				continue
			}
			if i+1 < len(parts) {
				parts[i+1] = p + "." + parts[i+1]
				continue
			}
			ok = false
		}
		if ok {
			b, _ := json.Marshal(cur) // a deep copy
			v, _ := decodeEntityValue(b)
			out = setPath(out, path, v)
		}
	}
	m, _ := out.(map[string]any)
	return m
}

func refChild(cur any, key string) (any, bool) {
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

// TestProjectFromJSONMatchesDecoded: projecting from an entity's encoding
// gives what projecting the decoded entity gives, for every entity of the
// fixture and field lists made of its own paths (parents before and after
// children, array elements and lengths, dotted keys, missing paths).
func TestProjectFromJSONMatchesDecoded(t *testing.T) {
	c, _ := newTestCatalog(t)
	r := rand.New(rand.NewPCG(1, 2))
	extra := []string{"nope", "metadata.nope", "metadata.tags.length", "metadata.tags.length.x", "metadata.tags.0",
		"metadata.tags.7", "metadata.tags.01", "relations.0.type", "relations.length", "spec.x.y.z", "metadata.annotations.backstage.io/techdocs-ref",
		"metadata.annotations.backstage.io", "kind.length", "spec.empty"}
	for _, en := range c.entries {
		e := en.decoded(t)
		var paths []string
		var walk func(prefix string, v any)
		walk = func(prefix string, v any) {
			if prefix != "" {
				paths = append(paths, prefix)
			}
			switch x := v.(type) {
			case map[string]any:
				for k, y := range x {
					walk(strings.TrimPrefix(prefix+"."+k, "."), y)
				}
			case []any:
				for i, y := range x {
					walk(prefix+"."+strconv.Itoa(i), y)
				}
			}
		}
		walk("", e)
		paths = append(paths, extra...)
		for range 40 {
			fields := make([]string, 1+r.IntN(6))
			for i := range fields {
				fields[i] = paths[r.IntN(len(paths))]
			}
			got, want := project(en.json, fields), projectDecoded(e, fields)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s fields %q:\ngot  %v\nwant %v", en.ref, fields, got, want)
			}
		}
	}
}

func decodeEntityValue(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

package catalog

import (
	"encoding/json"
	"strings"

	"github.com/tidwall/gjson"
)

// Project returns raw (one entity as JSON) with only the given fields, as
// Backstage's fields parameter would return it for paths of one or two
// keys ("kind", "relations", "metadata.title", "spec.owner"): the whole
// value under each path is kept, absent paths are left out, and keys keep
// their order. Deeper paths keep their two-key prefix whole. Anything that
// is not a JSON object comes back unchanged, so that the caller's decoding
// reports it as before.
func Project(raw json.RawMessage, fields []string) json.RawMessage {
	root := gjson.ParseBytes(raw)
	if !root.IsObject() || len(fields) == 0 {
		return raw
	}
	whole := make(map[string]bool, len(fields))
	children := map[string]map[string]bool{}
	for _, f := range fields {
		top, rest, nested := strings.Cut(f, ".")
		if !nested {
			whole[top] = true
			continue
		}
		child, _, _ := strings.Cut(rest, ".")
		if children[top] == nil {
			children[top] = map[string]bool{}
		}
		children[top][child] = true
	}
	out := make([]byte, 0, len(raw)/2)
	out = append(out, '{')
	first := true
	sep := func() {
		if !first {
			out = append(out, ',')
		}
		first = false
	}
	root.ForEach(func(k, v gjson.Result) bool {
		name := k.String()
		if whole[name] {
			sep()
			out = append(out, k.Raw...)
			out = append(out, ':')
			out = append(out, v.Raw...)
			return true
		}
		keep := children[name]
		if keep == nil || !v.IsObject() {
			return true
		}
		mark, wasFirst := len(out), first
		sep()
		out = append(out, k.Raw...)
		out = append(out, ':', '{')
		n := 0
		v.ForEach(func(ck, cv gjson.Result) bool {
			if keep[ck.String()] {
				if n > 0 {
					out = append(out, ',')
				}
				n++
				out = append(out, ck.Raw...)
				out = append(out, ':')
				out = append(out, cv.Raw...)
			}
			return true
		})
		if n == 0 {
			// Like Backstage: an object none of whose fields was
			// found is left out.
			out, first = out[:mark], wasFirst
			return true
		}
		out = append(out, '}')
		return true
	})
	out = append(out, '}')
	return out
}

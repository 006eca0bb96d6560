package server

import (
	"bytes"
	"cmp"
	"encoding/json"
	"slices"
	"strings"

	"github.com/backstage-mcp/backstage-mcp/server/audit"
	"github.com/mark3labs/mcp-go/mcp"
)

// Redactions as they left: a call's record counts the redaction markers
// in the result egress hands to the transport, not the redactions a tool
// made on the way (a tool redacts every entity it fetches, and sends only
// some of them, or a few of their fields). Markers are plain ASCII, which
// JSON never escapes, so the count on a result's strings is the count on
// the bytes the transport writes.

// markerPrefix opens every redaction marker, "[REDACTED:<rule id>]".
const markerPrefix = "[REDACTED:"

// eachMarker calls f with the rule id of every redaction marker in b, in
// order. It allocates nothing.
func eachMarker(b string, f func(rule string)) {
	for {
		i := strings.Index(b, markerPrefix)
		if i < 0 {
			return
		}
		b = b[i+len(markerPrefix):]
		n := 0
		for n < len(b) && (b[n] >= 'a' && b[n] <= 'z' || b[n] >= '0' && b[n] <= '9' || n > 0 && b[n] == '-') {
			n++
		}
		if n > 0 && n < len(b) && b[n] == ']' {
			f(b[:n])
			b = b[n+1:]
		}
	}
}

// sentRedactions counts the markers in a result egress produced: per
// rule, and per entity ref and field path (structured content; text
// outside it under path "content"). Both are nil when there is none,
// which costs one scan of the result and no allocation.
func sentRedactions(res *mcp.CallToolResult) (map[string]int, []audit.Redaction) {
	if res == nil {
		return nil, nil
	}
	t := redactionTally{}
	if doc, ok := res.StructuredContent.(json.RawMessage); ok && bytes.Contains(doc, []byte(markerPrefix)) {
		var v any
		if err := json.Unmarshal(doc, &v); err == nil {
			t.walk(v, "", "")
		} else {
			t.text(string(doc), "", "structuredContent")
		}
	}
	if res.Meta != nil {
		for k, v := range res.Meta.AdditionalFields {
			if s, ok := v.(string); ok {
				t.text(s, "", "_meta."+k)
			}
		}
	}
	for _, c := range res.Content {
		switch c := c.(type) {
		case mcp.TextContent:
			t.text(c.Text, "", "content.text")
		case mcp.ResourceLink:
			for _, s := range []string{c.URI, c.Name, c.Title, c.Description, c.MIMEType} {
				t.text(s, "", "content.resource_link")
			}
		case mcp.EmbeddedResource:
			if rc, ok := c.Resource.(mcp.TextResourceContents); ok {
				t.text(rc.URI, "", "content.resource.uri")
				var v any
				if rc.MIMEType == mimeJSON && strings.Contains(rc.Text, markerPrefix) && json.Unmarshal([]byte(rc.Text), &v) == nil {
					t.walk(v, "", "") // an entity as a resource: by entity and field
				} else {
					t.text(rc.Text, resourceRef(rc.URI), "content.resource.text")
				}
				if n, ok := rc.Meta["notice"].(string); ok {
					t.text(n, "", "content.resource._meta.notice")
				}
			}
		}
	}
	return t.rules, t.rows()
}

type redactionKey struct{ rule, ref, path string }

// redactionTally adds up markers by rule and by (rule, ref, path).
type redactionTally struct {
	rules map[string]int
	by    map[redactionKey]int
}

// text counts the markers of one string at ref and path.
func (t *redactionTally) text(s, ref, path string) {
	if !strings.Contains(s, markerPrefix) {
		return
	}
	eachMarker(s, func(rule string) {
		if t.rules == nil {
			t.rules, t.by = map[string]int{}, map[redactionKey]int{}
		}
		t.rules[rule]++
		t.by[redactionKey{rule, ref, path}]++
	})
}

// walk counts the markers in a decoded JSON value: an object that names
// an entity (a "ref" of the form kind:namespace/name, or kind and
// metadata.name) starts that entity's paths.
func (t *redactionTally) walk(v any, ref, path string) {
	switch x := v.(type) {
	case string:
		t.text(x, ref, path)
	case []any:
		p := path + "[]"
		for _, e := range x {
			t.walk(e, ref, p)
		}
	case map[string]any:
		if r := objectRef(x); r != "" {
			ref, path = r, ""
		}
		for k, e := range x {
			// A key can carry a marker too (an annotation key that
			// looks like a secret): it left as well.
			p := k
			if path != "" {
				p = path + "." + k
			}
			t.text(k, ref, p)
			t.walk(e, ref, p)
		}
	}
}

// objectRef is the entity ref an object of a result names, or "".
func objectRef(m map[string]any) string {
	if r, ok := m["ref"].(string); ok && isEntityRef(r) {
		return r
	}
	kind, _ := m["kind"].(string)
	md, _ := m["metadata"].(map[string]any)
	if kind == "" || md == nil {
		return ""
	}
	name, _ := md["name"].(string)
	if name == "" {
		return ""
	}
	ns, _ := md["namespace"].(string)
	if ns == "" {
		ns = "default"
	}
	return strings.ToLower(kind) + ":" + ns + "/" + name
}

// isEntityRef reports whether s has the shape kind:namespace/name.
func isEntityRef(s string) bool {
	c := strings.IndexByte(s, ':')
	return c > 0 && strings.IndexByte(s[c:], '/') > 1 && !strings.Contains(s, "[REDACTED:")
}

// rows is the tally by (rule, ref, path), busiest first, at most
// audit.MaxRedacted rows, the rest summed per rule under ref "(other)".
func (t *redactionTally) rows() []audit.Redaction {
	if len(t.by) == 0 {
		return nil
	}
	out := make([]audit.Redaction, 0, len(t.by))
	for k, n := range t.by {
		out = append(out, audit.Redaction{Rule: k.rule, Ref: k.ref, Path: k.path, Count: n})
	}
	slices.SortFunc(out, func(a, b audit.Redaction) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Ref, b.Ref), cmp.Compare(a.Path, b.Path), cmp.Compare(a.Rule, b.Rule))
	})
	if len(out) <= audit.MaxRedacted {
		return out
	}
	other := map[string]int{}
	for _, r := range out[audit.MaxRedacted-1:] {
		other[r.Rule] += r.Count
	}
	out = out[:audit.MaxRedacted-1]
	rules := make([]string, 0, len(other))
	for r := range other {
		rules = append(rules, r)
	}
	slices.Sort(rules)
	// At most one "(other)" row per rule keeps the cap approximate when
	// many rules overflow; the rule names bound it (a closed set).
	for _, r := range rules {
		out = append(out, audit.Redaction{Rule: r, Ref: "(other)", Count: other[r]})
	}
	return out
}

// resourceRef is the entity a catalog resource URI names
// (backstage://catalog/{kind}/{namespace}/{name}[/…]), or "".
func resourceRef(uri string) string {
	rest, ok := strings.CutPrefix(uri, "backstage://catalog/")
	if !ok {
		return ""
	}
	parts := strings.SplitN(rest, "/", 4)
	if len(parts) < 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return ""
	}
	return parts[0] + ":" + parts[1] + "/" + parts[2]
}

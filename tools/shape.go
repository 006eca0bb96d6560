package tools

import (
	"fmt"
	"sort"
	"strings"

	"github.com/backstage-mcp/backstage-mcp/redact"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
)

// get walks a decoded JSON value along keys.
func get(m map[string]any, path ...string) any {
	var cur any = m
	for _, k := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[k]
	}
	return cur
}

func str(m map[string]any, path ...string) string {
	s, _ := get(m, path...).(string)
	return s
}

func strList(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, it := range l {
		if s, ok := it.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// entityRef renders kind:namespace/name for a decoded entity
// (catalog.RefOf, shown as Backstage writes relation targets).
func entityRef(m map[string]any) string {
	r, _ := catalog.RefOf(m)
	return r.String()
}

// relation is one relation of a decoded entity.
type relation struct{ typ, target string }

func relations(m map[string]any) []relation {
	l, _ := get(m, "relations").([]any)
	out := make([]relation, 0, len(l))
	for _, it := range l {
		r, ok := it.(map[string]any)
		if !ok {
			continue
		}
		t, _ := r["type"].(string)
		ref, _ := r["targetRef"].(string)
		if t != "" && ref != "" {
			out = append(out, relation{t, ref})
		}
	}
	return out
}

// firstRelation returns the first target of relation type t.
func firstRelation(m map[string]any, t string) string {
	for _, r := range relations(m) {
		if r.typ == t {
			return r.target
		}
	}
	return ""
}

// refField resolves a spec field holding a (possibly short) ref, preferring
// the relation Backstage computed from it.
func refField(m map[string]any, rel, field, defKind string) string {
	if r := firstRelation(m, rel); r != "" {
		return r
	}
	s := str(m, "spec", field)
	if s == "" {
		return ""
	}
	ns := str(m, "metadata", "namespace")
	if !strings.Contains(s, "/") && ns != "" && ns != catalog.DefaultNamespace {
		s = ns + "/" + s
	}
	if r, err := catalog.ParseRef(s, defKind); err == nil {
		return r.String()
	}
	return s
}

// Summary is the compact, context-window-friendly form of an entity.
type Summary struct {
	Ref         string         `json:"ref"`
	Title       string         `json:"title,omitempty"`
	Description string         `json:"description,omitempty"`
	Type        string         `json:"type,omitempty"`
	Lifecycle   string         `json:"lifecycle,omitempty"`
	Owner       string         `json:"owner,omitempty"`
	System      string         `json:"system,omitempty"`
	Tags        []string       `json:"tags,omitempty"`
	Links       []Link         `json:"links,omitempty"`
	Relations   map[string]int `json:"relations,omitempty"`
}

// Link is a titled URL.
type Link struct {
	Title string `json:"title,omitempty"`
	URL   string `json:"url"`
}

const maxDescription = 400

func summarize(m map[string]any) Summary {
	s := Summary{
		Ref:         entityRef(m),
		Title:       str(m, "metadata", "title"),
		Description: clip(str(m, "metadata", "description"), maxDescription),
		Type:        str(m, "spec", "type"),
		Lifecycle:   str(m, "spec", "lifecycle"),
		Owner:       refField(m, "ownedBy", "owner", "group"),
		Tags:        strList(get(m, "metadata", "tags")),
	}
	if str(m, "spec", "system") != "" {
		s.System = refField(m, "", "system", "system")
	}
	if links, ok := get(m, "metadata", "links").([]any); ok {
		for _, l := range links {
			lm, ok := l.(map[string]any)
			if !ok {
				continue
			}
			u, _ := lm["url"].(string)
			t, _ := lm["title"].(string)
			if u != "" {
				s.Links = append(s.Links, Link{Title: t, URL: u})
			}
		}
	}
	for _, r := range relations(m) {
		if s.Relations == nil {
			s.Relations = map[string]int{}
		}
		s.Relations[r.typ]++
	}
	if len(s.Tags) == 0 {
		s.Tags = nil
	}
	return s
}

// clip trims s and bounds it to n bytes (redact.Clip), marking a cut
// with an ellipsis.
func clip(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	return redact.Clip(s, n) + "…"
}

// line renders a summary as one compact line of text.
func (s Summary) line() string {
	var b strings.Builder
	b.WriteString(s.Ref)
	if s.Title != "" {
		fmt.Fprintf(&b, " %q", s.Title)
	}
	var attrs []string
	for _, kv := range [][2]string{{"type", s.Type}, {"lifecycle", s.Lifecycle}, {"owner", s.Owner}, {"system", s.System}} {
		if kv[1] != "" {
			attrs = append(attrs, kv[0]+"="+kv[1])
		}
	}
	if len(s.Tags) > 0 {
		attrs = append(attrs, "tags="+strings.Join(s.Tags, ","))
	}
	if len(attrs) > 0 {
		b.WriteString(" [" + strings.Join(attrs, " ") + "]")
	}
	if s.Description != "" {
		b.WriteString(" — " + oneLine(s.Description))
	}
	if len(s.Relations) > 0 {
		keys := make([]string, 0, len(s.Relations))
		for k := range s.Relations {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s:%d", k, s.Relations[k])
		}
		b.WriteString(" (relations " + strings.Join(parts, " ") + ")")
	}
	return b.String()
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// project keeps only the given dot paths of an entity.
func project(m map[string]any, fields []string) map[string]any {
	out := map[string]any{}
	for _, f := range fields {
		parts := strings.Split(f, ".")
		v := get(m, parts...)
		if v == nil {
			continue
		}
		cur := out
		for i, p := range parts {
			if i == len(parts)-1 {
				cur[p] = v
				break
			}
			next, ok := cur[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				cur[p] = next
			}
			cur = next
		}
	}
	return out
}

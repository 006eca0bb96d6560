package tools

import (
	"encoding/json"
	"slices"
	"strconv"
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
	return refFieldOf(m, relations(m), rel, field, defKind)
}

// refFieldOf is refField with the entity's relations already listed.
func refFieldOf(m map[string]any, rels []relation, rel, field, defKind string) string {
	for _, r := range rels {
		if r.typ == rel {
			return r.target
		}
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
	Relations   RelationCounts `json:"relations,omitempty"`
}

// RelationCounts counts an entity's relations by type.
type RelationCounts map[string]int

// MarshalJSON encodes the counts exactly as encoding/json encodes a
// map[string]int (keys in order), without reflection: every summary of
// every answer carries one.
func (c RelationCounts) MarshalJSON() ([]byte, error) {
	if c == nil {
		return []byte("null"), nil
	}
	var arr [16]string
	keys := arr[:0]
	for k := range c {
		for i := 0; i < len(k); i++ {
			if b := k[i]; b < 0x20 || b >= 0x7f || b == '"' || b == '\\' || b == '<' || b == '>' || b == '&' {
				// A key encoding/json would escape: let it.
				return json.Marshal(map[string]int(c))
			}
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]byte, 0, 2+len(keys)*24)
	out = append(out, '{')
	for i, k := range keys {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, '"')
		out = append(out, k...)
		out = append(out, '"', ':')
		out = strconv.AppendInt(out, int64(c[k]), 10)
	}
	return append(out, '}'), nil
}

// Link is a titled URL.
type Link struct {
	Title string `json:"title,omitempty"`
	URL   string `json:"url"`
}

const maxDescription = 400

// summarize shapes an admitted entity; its ref is the one admit rendered
// (entityRef of the same map: pruning changes no kind, namespace or name).
func summarize(e entity) Summary {
	m := e.m
	rels := relations(m)
	md, _ := m["metadata"].(map[string]any)
	spec, _ := m["spec"].(map[string]any)
	field := func(o map[string]any, k string) string {
		v, _ := o[k].(string)
		return v
	}
	s := Summary{
		Ref:         e.ref,
		Title:       field(md, "title"),
		Description: clip(field(md, "description"), maxDescription),
		Type:        field(spec, "type"),
		Lifecycle:   field(spec, "lifecycle"),
		Owner:       refFieldOf(m, rels, "ownedBy", "owner", "group"),
		Tags:        strList(md["tags"]),
	}
	if field(spec, "system") != "" {
		// No relation has an empty type: the spec field decides.
		s.System = refFieldOf(m, nil, "", "system", "system")
	}
	if links, ok := md["links"].([]any); ok {
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
	for _, r := range rels {
		if s.Relations == nil {
			s.Relations = RelationCounts{}
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
	b.Grow(s.lineSize())
	s.writeLine(&b)
	return b.String()
}

// lineSize estimates the length of the summary's line.
func (s Summary) lineSize() int {
	return len(s.Ref) + len(s.Title) + len(s.Description) + 160
}

// writeLine appends the summary's line (see line) to b.
func (s Summary) writeLine(b *strings.Builder) {
	b.WriteString(s.Ref)
	if s.Title != "" {
		b.WriteByte(' ')
		var q [128]byte
		b.Write(strconv.AppendQuote(q[:0], s.Title))
	}
	open := false
	attr := func(k, v string) {
		if v == "" {
			return
		}
		if open {
			b.WriteByte(' ')
		} else {
			b.WriteString(" [")
			open = true
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(v)
	}
	attr("type", s.Type)
	attr("lifecycle", s.Lifecycle)
	attr("owner", s.Owner)
	attr("system", s.System)
	if len(s.Tags) > 0 {
		if !open {
			b.WriteString(" [")
			open = true
		} else {
			b.WriteByte(' ')
		}
		b.WriteString("tags=")
		for i, t := range s.Tags {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(t)
		}
	}
	if open {
		b.WriteByte(']')
	}
	if s.Description != "" {
		b.WriteString(" — ")
		writeOneLine(b, s.Description)
	}
	if len(s.Relations) > 0 {
		var arr [16]string
		keys := arr[:0]
		for k := range s.Relations {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b.WriteString(" (relations ")
		var n [20]byte
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(k)
			b.WriteByte(':')
			b.Write(strconv.AppendInt(n[:0], int64(s.Relations[k]), 10))
		}
		b.WriteByte(')')
	}
}

// writeOneLine appends s with every run of white space (unicode.IsSpace)
// made one blank and none at either end: strings.Fields joined by blanks.
func writeOneLine(b *strings.Builder, s string) {
	first := true
	for f := range strings.FieldsSeq(s) {
		if !first {
			b.WriteByte(' ')
		}
		b.WriteString(f)
		first = false
	}
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

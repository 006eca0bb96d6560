package tools

import (
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
	Ref         string `json:"ref"`
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	Type        string `json:"type,omitempty"`
	Lifecycle   string `json:"lifecycle,omitempty"`
	Owner       string `json:"owner,omitempty"`
	System      string `json:"system,omitempty"`
	Domain      string `json:"domain,omitempty"`
	// Email is a group's or user's spec.profile.email.
	Email string   `json:"email,omitempty"`
	Tags  []string `json:"tags,omitempty"`
	Links []Link   `json:"links,omitempty"`
	// Annotations are the entity's well-known annotations (Deps.Annotations):
	// repository, docs, on-call, chat channel, dashboards, runbooks.
	Annotations map[string]string `json:"annotations,omitempty"`
	// Relations names the targets of each relation type, up to
	// MaxRelatedNames each, and counts them all.
	Relations []RelatedRefs `json:"relations,omitempty"`
	// Operations names what an API offers, read from its definition (up
	// to MaxOperationNames; OperationsTotal counts them all). Only
	// catalog_get_entity fills them: a search line stays short.
	Operations      []string `json:"operations,omitempty"`
	OperationsTotal int      `json:"operationsTotal,omitempty"`
}

// RelatedRefs are the targets of one relation type of an entity: the
// first MaxRelatedNames of Total.
type RelatedRefs struct {
	Type  string   `json:"type"`
	Refs  []string `json:"refs"`
	Total int      `json:"total"`
}

// MaxRelatedNames caps the targets a summary names per relation type;
// the text says how many more there are.
const MaxRelatedNames = 5

// DefaultAnnotations are the annotations a summary shows when the
// configuration names none (catalog.summaryAnnotations): where the code
// and docs live, who is on call, where to talk, what to look at. Every
// other annotation is one call away with fields metadata.annotations.
var DefaultAnnotations = []string{
	"backstage.io/source-location", "github.com/project-slug", "gitlab.com/project-slug",
	"backstage.io/techdocs-ref", "backstage.io/techdocs-entity",
	"pagerduty.com/service-id", "opsgenie.com/team", "opsgenie.com/component-selector",
	"slack.com/channel", "slack.com/channel-id", "teams.microsoft.com/channel",
	"grafana/dashboard-selector", "grafana/overview-dashboard", "datadoghq.com/dashboard-url",
	"backstage.io/runbook-url", "runbook.io/url",
}

// summaryAnnotations is the list of annotations summaries show.
func (d *Deps) summaryAnnotations() []string {
	if d == nil || d.Annotations == nil {
		return DefaultAnnotations
	}
	return d.Annotations
}

// Link is a titled URL.
type Link struct {
	Title string `json:"title,omitempty"`
	URL   string `json:"url"`
}

const maxDescription = 400

// maxAnnotation bounds an annotation value in a summary.
const maxAnnotation = 200

// summarize shapes an admitted entity; its ref is the one admit rendered
// (entityRef of the same map: pruning changes no kind, namespace or name).
// It shows no annotations; (*Deps).summarize does.
func summarize(e entity) Summary { return summarizeWith(e, nil) }

// summarize shapes an admitted entity with the configured annotations.
func (d *Deps) summarize(e entity) Summary { return summarizeWith(e, d.summaryAnnotations()) }

func summarizeWith(e entity, annotations []string) Summary {
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
	if field(spec, "domain") != "" {
		s.Domain = refFieldOf(m, nil, "", "domain", "domain")
	}
	if p, ok := spec["profile"].(map[string]any); ok {
		s.Email = field(p, "email")
	}
	if ann, ok := md["annotations"].(map[string]any); ok && len(annotations) > 0 {
		n := 0
		for _, k := range annotations {
			if v, ok := ann[k].(string); ok && v != "" {
				n++
			}
		}
		if n > 0 {
			s.Annotations = make(map[string]string, n)
			for _, k := range annotations {
				if v, ok := ann[k].(string); ok && v != "" {
					s.Annotations[k] = clip(v, maxAnnotation)
				}
			}
		}
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
	if len(rels) > 0 {
		// The relations are sorted by type (admit), so each type's
		// targets are consecutive: one list per type, all the names in
		// one backing array.
		types, named := 0, 0
		for i, r := range rels {
			if i == 0 || r.typ != rels[i-1].typ {
				types++
				named += min(MaxRelatedNames, countRun(rels[i:]))
			}
		}
		slab := make([]string, 0, named)
		s.Relations = make([]RelatedRefs, 0, types)
		for i := 0; i < len(rels); {
			n := countRun(rels[i:])
			start := len(slab)
			for _, r := range rels[i : i+min(n, MaxRelatedNames)] {
				slab = append(slab, r.target)
			}
			s.Relations = append(s.Relations, RelatedRefs{Type: rels[i].typ, Refs: slab[start:len(slab):len(slab)], Total: n})
			i += n
		}
	}
	if len(s.Tags) == 0 {
		s.Tags = nil
	}
	return s
}

// sortedKeys appends the keys of m to dst (a stack array's slice, so
// that small maps cost no allocation) and sorts them.
func sortedKeys(dst []string, m map[string]string) []string {
	for k := range m {
		dst = append(dst, k)
	}
	slices.Sort(dst)
	return dst
}

// countRun counts the relations at the start of rels of the first one's type.
func countRun(rels []relation) int {
	n := 1
	for n < len(rels) && rels[n].typ == rels[0].typ {
		n++
	}
	return n
}

// named reports whether the summary's text names the targets of rr: not
// the owner or system alone, which it names already.
func (s *Summary) named(rr RelatedRefs) bool {
	if rr.Total == 1 && ((rr.Type == "ownedBy" && strings.EqualFold(rr.Refs[0], s.Owner)) || (rr.Type == "partOf" && strings.EqualFold(rr.Refs[0], s.System))) {
		return false
	}
	return true
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
	n := len(s.Ref) + len(s.Title) + len(s.Email) + len(s.Description) + 160
	for _, l := range s.Links {
		n += len(l.Title) + len(l.URL) + 3
	}
	for k, v := range s.Annotations {
		n += len(k) + len(v) + 2
	}
	for _, rr := range s.Relations {
		n += len(rr.Type) + 16
		for _, t := range rr.Refs {
			n += len(t) + 2
		}
	}
	return n
}

// writeLine appends the summary's line (see line) to b.
func (s Summary) writeLine(b *strings.Builder) { s.writeLineWithout(b, shared{}) }

// shared are the attributes every summary of a list holds with the same
// value: the list's head states them once and its lines leave them out.
type shared struct {
	Type, Lifecycle, Owner, System, Domain string
}

// sharedOf returns the attributes that all of at least two summaries
// hold with one value.
func sharedOf(sums []Summary) shared {
	if len(sums) < 2 {
		return shared{}
	}
	h := shared{Type: sums[0].Type, Lifecycle: sums[0].Lifecycle, Owner: sums[0].Owner, System: sums[0].System, Domain: sums[0].Domain}
	for _, s := range sums[1:] {
		if s.Type != h.Type {
			h.Type = ""
		}
		if s.Lifecycle != h.Lifecycle {
			h.Lifecycle = ""
		}
		if s.Owner != h.Owner {
			h.Owner = ""
		}
		if s.System != h.System {
			h.System = ""
		}
		if s.Domain != h.Domain {
			h.Domain = ""
		}
	}
	return h
}

// head renders the shared attributes for a list's head ("" when none).
func (h shared) head() string {
	if h == (shared{}) {
		return ""
	}
	var b strings.Builder
	b.WriteString("; each has")
	for _, kv := range [...][2]string{{"type", h.Type}, {"lifecycle", h.Lifecycle}, {"owner", h.Owner}, {"system", h.System}, {"domain", h.Domain}} {
		if kv[1] != "" {
			b.WriteString(" " + kv[0] + "=" + kv[1])
		}
	}
	return b.String()
}

// writeLineWithout appends the summary's line without the attributes the
// list's head states for every line.
func (s Summary) writeLineWithout(b *strings.Builder, h shared) {
	orig := s // names the owner and system, stated in the head or not
	if h.Type != "" {
		s.Type = ""
	}
	if h.Lifecycle != "" {
		s.Lifecycle = ""
	}
	if h.Owner != "" {
		s.Owner = ""
	}
	if h.System != "" {
		s.System = ""
	}
	if h.Domain != "" {
		s.Domain = ""
	}
	b.WriteString(s.Ref)
	if s.Title != "" {
		b.WriteByte(' ')
		var q [128]byte
		b.Write(strconv.AppendQuote(q[:0], s.Title))
	}
	if s.Email != "" {
		b.WriteString(" <")
		b.WriteString(s.Email)
		b.WriteByte('>')
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
	attr("domain", s.Domain)
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
	if len(s.Links) > 0 {
		b.WriteString(" | links:")
		for i, l := range s.Links {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteByte(' ')
			if l.Title != "" {
				writeOneLine(b, l.Title)
				b.WriteByte(' ')
			}
			b.WriteString(l.URL)
		}
	}
	if len(s.Annotations) > 0 {
		b.WriteString(" |")
		var arr [16]string
		for _, k := range sortedKeys(arr[:0], s.Annotations) {
			b.WriteByte(' ')
			b.WriteString(k)
			b.WriteByte('=')
			writeOneLine(b, s.Annotations[k])
		}
	}
	var n [20]byte
	if len(s.Operations) > 0 {
		b.WriteString(" | operations: ")
		for i, op := range s.Operations {
			if i > 0 {
				b.WriteString(", ")
			}
			writeOneLine(b, op)
		}
		if more := s.OperationsTotal - len(s.Operations); more > 0 {
			b.WriteString(" and ")
			b.Write(strconv.AppendInt(n[:0], int64(more), 10))
			b.WriteString(" more")
		}
	}
	first := true
	for _, rr := range s.Relations {
		if !orig.named(rr) {
			continue
		}
		if first {
			b.WriteString(" |")
			first = false
		} else {
			b.WriteByte(';')
		}
		b.WriteByte(' ')
		b.WriteString(rr.Type)
		b.WriteByte(':')
		for j, t := range rr.Refs {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteByte(' ')
			b.WriteString(t)
		}
		if more := rr.Total - len(rr.Refs); more > 0 {
			b.WriteString(" and ")
			b.Write(strconv.AppendInt(n[:0], int64(more), 10))
			b.WriteString(" more")
		}
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

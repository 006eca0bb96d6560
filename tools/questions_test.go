package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/server/demo"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog/gencatalog"
	"github.com/mark3labs/mcp-go/mcp"
)

// The question suite: questions engineers ask of a catalog, each answered
// through the tools as an agent would, with the facts of the answer
// checked in the text blocks the model reads (never structuredContent).
// Each question has two paths: the best one (the fewest calls and tokens)
// and the one an agent takes by following the tool descriptions
// literally (default limits, paging with the cursor alone). The expected
// facts come from an oracle that reads the whole catalog directly, so the
// same questions run on the demo catalog and on a generated
// 10,000-entity one. Tokens are estimated as bytes / 4: the text, and any
// other content (resource links) as sent.

// qcall is one tool call of a path; page follows nextCursor (passed alone,
// as the description says) until the last page.
type qcall struct {
	tool, args string
	page       bool
}

// question is one question of the suite; plan picks its subject in the
// catalog and returns both paths and the facts the answer must hold
// (ok=false: the catalog has no subject for it).
type question struct {
	id, area, ask string
	plan          func(o *oracle) (best, literal []qcall, facts []string, ok bool)
}

// oracle is the whole catalog as Backstage serves it (relations
// included), read directly.
type oracle struct {
	ents  []map[string]any
	byRef map[string]map[string]any
	// rels indexes relations: lower-case ref → type → sorted targets.
	rels map[string]map[string][]string
	// skip holds refs find passes over: a question planned again with
	// its subject skipped asks about the next one.
	skip map[string]bool
}

// refKey holds an entity's ref inside the oracle's own decoded copy.
const refKey = "\x00ref"

func newOracle(t testing.TB, d *Deps) *oracle {
	t.Helper()
	o := &oracle{byRef: map[string]map[string]any{}, rels: map[string]map[string][]string{}}
	q := catalog.Query{Limit: 500, Order: []catalog.Order{{Field: "metadata.name"}}}
	for {
		p, err := d.Catalog.Query(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range p.Items {
			m, err := catalog.DecodeObject(raw)
			if err != nil {
				t.Fatal(err)
			}
			ref := entityRef(m)
			m[refKey] = ref
			o.ents = append(o.ents, m)
			o.byRef[strings.ToLower(ref)] = m
			idx := map[string][]string{}
			for _, r := range relations(m) {
				idx[r.typ] = append(idx[r.typ], r.target)
			}
			for _, l := range idx {
				sort.Strings(l)
			}
			o.rels[strings.ToLower(ref)] = idx
		}
		if p.NextCursor == "" {
			return o
		}
		q = catalog.Query{Cursor: p.NextCursor, Limit: 500}
	}
}

func (o *oracle) rel(ref, typ string) []string {
	return o.rels[strings.ToLower(ref)][typ]
}

func (o *oracle) kind(m map[string]any) string { return strings.ToLower(str(m, "kind")) }

// find returns the ref of the first entity (in name order) that pred
// accepts.
func (o *oracle) find(pred func(m map[string]any) bool) (string, bool) {
	for _, m := range o.ents {
		if pred(m) && !o.skip[m[refKey].(string)] {
			return m[refKey].(string), true
		}
	}
	return "", false
}

func (o *oracle) ann(ref, key string) string {
	return str(o.byRef[strings.ToLower(ref)], "metadata", "annotations", key)
}

// walkDependents walks what depends on x hop by hop, as an agent learns it
// from each answer: visit is called for each node of a hop's frontier
// (the agent's calls about it), and the hop's new dependents are the next
// frontier. It returns every dependent found, in the order found.
func (o *oracle) walkDependents(x string, depth int, visit func(f string)) []string {
	seen := map[string]bool{strings.ToLower(x): true}
	frontier := []string{x}
	var all []string
	for range depth {
		var next []string
		for _, f := range frontier {
			visit(f)
			for _, d := range o.dependents(f, 1) {
				if !seen[strings.ToLower(d)] {
					seen[strings.ToLower(d)] = true
					next = append(next, d)
				}
			}
		}
		all = append(all, next...)
		frontier = next
	}
	return all
}

// ownersOf returns the distinct owners of refs, in the order met.
func (o *oracle) ownersOf(refs []string) []string {
	var out []string
	got := map[string]bool{}
	for _, d := range refs {
		for _, ow := range o.rel(d, "ownedBy") {
			if !got[ow] {
				got[ow] = true
				out = append(out, ow)
			}
		}
	}
	return out
}

// dependents is the oracle's answer to "what depends on ref": dependsOn
// and API consumers, transitively, up to depth hops.
func (o *oracle) dependents(ref string, depth int) []string {
	seen := map[string]bool{strings.ToLower(ref): true}
	frontier := []string{ref}
	var out []string
	for range depth {
		var next []string
		add := func(t string) {
			if !seen[strings.ToLower(t)] {
				seen[strings.ToLower(t)] = true
				next = append(next, t)
			}
		}
		for _, f := range frontier {
			for _, t := range o.rel(f, "dependencyOf") {
				add(t)
			}
			for _, t := range o.rel(f, "apiConsumedBy") {
				add(t)
			}
			for _, api := range o.rel(f, "providesApi") {
				if seen[strings.ToLower(api)] {
					continue
				}
				for _, t := range o.rel(api, "apiConsumedBy") {
					add(t)
				}
			}
		}
		out = append(out, next...)
		frontier = next
	}
	sort.Strings(out)
	return out
}

func q(format string, a ...any) string { return fmt.Sprintf(format, a...) }

func one(tool, args string) []qcall { return []qcall{{tool: tool, args: args}} }

func hasAnn(key string) func(m map[string]any) bool {
	return func(m map[string]any) bool { return str(m, "metadata", "annotations", key) != "" }
}

func kindIs(k string) func(m map[string]any) bool {
	return func(m map[string]any) bool { return strings.EqualFold(str(m, "kind"), k) }
}

func and(ps ...func(m map[string]any) bool) func(m map[string]any) bool {
	return func(m map[string]any) bool {
		for _, p := range ps {
			if !p(m) {
				return false
			}
		}
		return true
	}
}

// searchPaths is a list question's paths: the best asks for up to 100 per
// page, the literal one takes the default limit; both page to the end.
func searchPaths(args string) (best, literal []qcall) {
	b := strings.TrimSuffix(args, "}") + `,"limit":100}`
	return []qcall{{tool: "catalog_search_entities", args: b, page: true}}, []qcall{{tool: "catalog_search_entities", args: args, page: true}}
}

// matching lists the refs of the entities pred accepts.
func (o *oracle) matching(pred func(m map[string]any) bool) []string {
	var out []string
	for _, m := range o.ents {
		if pred(m) {
			out = append(out, m[refKey].(string))
		}
	}
	return out
}

func specIs(field, v string) func(m map[string]any) bool {
	return func(m map[string]any) bool { return str(m, "spec", field) == v }
}

func (o *oracle) ownedBy(ref string) func(m map[string]any) bool {
	return func(m map[string]any) bool { return slices.Contains(o.relsOf(m, "ownedBy"), ref) }
}

// relsOf lists the targets of an oracle entity's relations of type typ.
func (o *oracle) relsOf(m map[string]any, typ string) []string {
	return o.rels[strings.ToLower(m[refKey].(string))][typ]
}

// busiestTeam is a group owning between 2 and 40 components.
func (o *oracle) busiestTeam() (string, bool) {
	return o.find(func(m map[string]any) bool {
		if o.kind(m) != "group" {
			return false
		}
		n := 0
		for _, t := range o.relsOf(m, "ownerOf") {
			if strings.HasPrefix(t, "component:") {
				n++
			}
		}
		return n >= 2 && n <= 40
	})
}

var questions = []question{
	{"own-1", "ownership", "Who owns X?", func(o *oracle) ([]qcall, []qcall, []string, bool) {
		x, ok := o.find(and(kindIs("Component"), func(m map[string]any) bool { return len(o.relsOf(m, "ownedBy")) == 1 }))
		c := one("catalog_find_owner", q(`{"ref":%q}`, x))
		return c, c, []string{o.rel(x, "ownedBy")[0]}, ok
	}},
	{"own-2", "contacts", "How do I reach the team that owns X (e-mail, chat channel)?", func(o *oracle) ([]qcall, []qcall, []string, bool) {
		x, ok := o.find(and(kindIs("Component"), func(m map[string]any) bool {
			ow := o.relsOf(m, "ownedBy")
			return len(ow) == 1 && o.ann(ow[0], "slack.com/channel") != ""
		}))
		if !ok {
			return nil, nil, nil, false
		}
		owner := o.rel(x, "ownedBy")[0]
		c := one("catalog_find_owner", q(`{"ref":%q}`, x))
		return c, c, []string{owner, o.ann(owner, "slack.com/channel"), str(o.byRef[strings.ToLower(owner)], "spec", "profile", "email")}, true
	}},
	{"own-3", "contacts", "Who is on call for X (PagerDuty service)?", func(o *oracle) ([]qcall, []qcall, []string, bool) {
		x, ok := o.find(and(kindIs("Component"), hasAnn("pagerduty.com/service-id")))
		c := one("catalog_find_owner", q(`{"ref":%q}`, x))
		return one("catalog_get_entity", q(`{"ref":%q}`, x)), c, []string{o.ann(x, "pagerduty.com/service-id")}, ok
	}},
	{"own-4", "ownership", "Who is in team T?", func(o *oracle) ([]qcall, []qcall, []string, bool) {
		g, ok := o.find(func(m map[string]any) bool {
			n := len(o.relsOf(m, "hasMember"))
			return o.kind(m) == "group" && n >= 2 && n <= 50
		})
		c := one("catalog_find_owner", q(`{"ref":%q}`, g))
		return c, c, o.rel(g, "hasMember"), ok
	}},
	{"own-5", "ownership", "What is team T's parent group?", func(o *oracle) ([]qcall, []qcall, []string, bool) {
		g, ok := o.find(func(m map[string]any) bool { return o.kind(m) == "group" && len(o.relsOf(m, "childOf")) == 1 })
		c := one("catalog_find_owner", q(`{"ref":%q}`, g))
		return c, c, o.rel(g, "childOf"), ok
	}},
	{"own-6", "ownership", "Which teams are under group G?", func(o *oracle) ([]qcall, []qcall, []string, bool) {
		g, ok := o.find(func(m map[string]any) bool {
			n := len(o.relsOf(m, "parentOf"))
			return o.kind(m) == "group" && n >= 2 && n <= 50
		})
		c := one("catalog_find_owner", q(`{"ref":%q}`, g))
		return c, c, o.rel(g, "parentOf"), ok
	}},
	{"own-7", "ownership", "Which teams is user U in?", func(o *oracle) ([]qcall, []qcall, []string, bool) {
		u, ok := o.find(func(m map[string]any) bool { return o.kind(m) == "user" && len(o.relsOf(m, "memberOf")) >= 1 })
		c := one("catalog_find_owner", q(`{"ref":%q}`, u))
		return c, c, o.rel(u, "memberOf"), ok
	}},
	{"own-8", "ownership", "Which components does team T own?", func(o *oracle) ([]qcall, []qcall, []string, bool) {
		g, ok := o.busiestTeam()
		best, lit := searchPaths(q(`{"kind":"Component","owner":%q}`, g))
		return best, lit, o.matching(and(kindIs("Component"), o.ownedBy(g))), ok
	}},
	{"own-9", "ownership", "Which team owns the most production services?", func(o *oracle) ([]qcall, []qcall, []string, bool) {
		counts := map[string]int{}
		for _, m := range o.ents {
			if o.kind(m) == "component" && str(m, "spec", "type") == "service" && str(m, "spec", "lifecycle") == "production" {
				counts[str(m, "spec", "owner")]++
			}
		}
		top, n := "", 0
		for v, c := range counts {
			if c > n || c == n && v < top {
				top, n = v, c
			}
		}
		c := one("catalog_list_facets", `{"facet":"spec.owner","kind":"Component","type":"service","lifecycle":"production"}`)
		return c, c, []string{q("values\n%s %d\n", top, n)}, n > 0
	}},
	{"doc-1", "onboarding", "Where is the code of X?", func(o *oracle) ([]qcall, []qcall, []string, bool) {
		x, ok := o.find(and(kindIs("Component"), hasAnn("github.com/project-slug")))
		c := one("catalog_get_entity", q(`{"ref":%q}`, x))
		return c, c, []string{o.ann(x, "github.com/project-slug")}, ok
	}},
	{"doc-2", "onboarding", "Where is X's runbook?", func(o *oracle) ([]qcall, []qcall, []string, bool) {
		var url string
		x, ok := o.find(linkPred(func(m map[string]any) bool {
			for _, l := range get(m, "metadata", "links").([]any) {
				if lm, _ := l.(map[string]any); strings.Contains(strings.ToLower(fmt.Sprint(lm["title"])), "runbook") {
					url, _ = lm["url"].(string)
					return true
				}
			}
			return false
		}).withLinks())
		c := one("catalog_get_entity", q(`{"ref":%q}`, x))
		return c, c, []string{url}, ok
	}},
	{"doc-3", "onboarding", "Does X have TechDocs, and where?", func(o *oracle) ([]qcall, []qcall, []string, bool) {
		x, ok := o.find(and(kindIs("Component"), hasAnn("backstage.io/techdocs-ref")))
		c := one("catalog_get_entity", q(`{"ref":%q}`, x))
		return c, c, []string{"backstage.io/techdocs-ref=" + o.ann(x, "backstage.io/techdocs-ref")}, ok
	}},
	{"doc-4", "contacts", "Which chat channel do I use for X?", func(o *oracle) ([]qcall, []qcall, []string, bool) {
		// The component's own channel, or its owner's when it has none.
		x, ok := o.find(and(kindIs("Component"), hasAnn("slack.com/channel")))
		if ok {
			return one("catalog_get_entity", q(`{"ref":%q}`, x)), one("catalog_find_owner", q(`{"ref":%q}`, x)), []string{o.ann(x, "slack.com/channel")}, true
		}
		x, ok = o.find(and(kindIs("Component"), func(m map[string]any) bool {
			ow := o.relsOf(m, "ownedBy")
			return len(ow) == 1 && o.ann(ow[0], "slack.com/channel") != ""
		}))
		if !ok {
			return nil, nil, nil, false
		}
		c := one("catalog_find_owner", q(`{"ref":%q}`, x))
		return c, c, []string{o.ann(o.rel(x, "ownedBy")[0], "slack.com/channel")}, true
	}},
	{"imp-1", "impact", "What breaks if X goes down?", func(o *oracle) ([]qcall, []qcall, []string, bool) {
		x, ok := o.find(func(m map[string]any) bool {
			if o.kind(m) != "component" || len(o.relsOf(m, "providesApi")) == 0 {
				return false
			}
			n := len(o.dependents(m[refKey].(string), 3))
			return n >= 2 && n <= 150
		})
		c := one("catalog_find_dependents", q(`{"ref":%q}`, x))
		return c, c, o.dependents(x, 3), ok
	}},
	{"imp-2", "impact", "Whom do I tell before changing X?", func(o *oracle) ([]qcall, []qcall, []string, bool) {
		x, ok := o.find(func(m map[string]any) bool {
			if o.kind(m) != "component" {
				return false
			}
			n := len(o.dependents(m[refKey].(string), 3))
			return n >= 2 && n <= 150
		})
		owners := map[string]bool{}
		for _, d := range o.dependents(x, 3) {
			for _, ow := range o.rel(d, "ownedBy") {
				owners[ow] = true
			}
		}
		var facts []string
		for ow := range owners {
			facts = append(facts, ow)
			if e := str(o.byRef[strings.ToLower(ow)], "spec", "profile", "email"); e != "" {
				facts = append(facts, e)
			}
		}
		c := one("catalog_find_dependents", q(`{"ref":%q}`, x))
		return c, c, facts, ok
	}},
	{"imp-3", "impact", "What depends directly on resource R?", func(o *oracle) ([]qcall, []qcall, []string, bool) {
		r, ok := o.find(func(m map[string]any) bool { return o.kind(m) == "resource" && len(o.relsOf(m, "dependencyOf")) > 0 })
		return one("catalog_find_dependents", q(`{"ref":%q,"depth":1}`, r)), one("catalog_find_dependents", q(`{"ref":%q}`, r)), o.dependents(r, 1), ok
	}},
	{"imp-4", "impact", "What does X depend on?", func(o *oracle) ([]qcall, []qcall, []string, bool) {
		x, ok := o.find(func(m map[string]any) bool {
			n := len(o.relsOf(m, "dependsOn"))
			return o.kind(m) == "component" && n >= 1 && n <= MaxRelatedNames
		})
		return one("catalog_get_entity", q(`{"ref":%q}`, x)), one("catalog_get_relations", q(`{"ref":%q,"relations":["dependsOn","consumesApi"]}`, x)), o.rel(x, "dependsOn"), ok
	}},
	{"api-1", "apis", "Who consumes API A?", func(o *oracle) ([]qcall, []qcall, []string, bool) {
		a, ok := o.find(func(m map[string]any) bool {
			n := len(o.relsOf(m, "apiConsumedBy"))
			return o.kind(m) == "api" && n >= 2 && n <= 100
		})
		_, lit := searchPaths(q(`{"relations":["consumesApi=%s"]}`, a))
		return one("catalog_find_dependents", q(`{"ref":%q,"depth":1}`, a)), lit, o.rel(a, "apiConsumedBy"), ok
	}},
	{"api-2", "apis", "Which APIs does X provide?", func(o *oracle) ([]qcall, []qcall, []string, bool) {
		x, ok := o.find(func(m map[string]any) bool {
			n := len(o.relsOf(m, "providesApi"))
			return o.kind(m) == "component" && n >= 1 && n <= MaxRelatedNames
		})
		c := one("catalog_get_entity", q(`{"ref":%q}`, x))
		return c, c, o.rel(x, "providesApi"), ok
	}},
	{"api-3", "apis", "Which APIs does X consume?", func(o *oracle) ([]qcall, []qcall, []string, bool) {
		x, ok := o.find(func(m map[string]any) bool {
			n := len(o.relsOf(m, "consumesApi"))
			return o.kind(m) == "component" && n >= 2 && n <= MaxRelatedNames
		})
		c := one("catalog_get_entity", q(`{"ref":%q}`, x))
		return c, c, o.rel(x, "consumesApi"), ok
	}},
	{"api-4", "apis", "Who provides API A, and who owns it?", func(o *oracle) ([]qcall, []qcall, []string, bool) {
		a, ok := o.find(func(m map[string]any) bool { return o.kind(m) == "api" && len(o.relsOf(m, "apiProvidedBy")) == 1 })
		c := one("catalog_get_entity", q(`{"ref":%q}`, a))
		return c, c, append(o.rel(a, "apiProvidedBy"), o.rel(a, "ownedBy")...), ok
	}},
	{"api-5", "apis", "What operations does API A offer?", func(o *oracle) ([]qcall, []qcall, []string, bool) {
		// Every path of an OpenAPI API with at most MaxOperationNames
		// operations: its summary names them all; the description of
		// catalog_get_api_definition is what a literal agent follows.
		re := regexp.MustCompile(`(?m)^  (/[^:]+):`)
		ops := regexp.MustCompile(`(?m)^    (get|put|post|delete|patch):`)
		var paths []string
		a, ok := o.find(func(m map[string]any) bool {
			def := str(m, "spec", "definition")
			if o.kind(m) != "api" || str(m, "spec", "type") != "openapi" || len(ops.FindAllString(def, -1)) > MaxOperationNames {
				return false
			}
			paths = nil
			for _, mm := range re.FindAllStringSubmatch(def, -1) {
				paths = append(paths, mm[1])
			}
			return len(paths) > 0
		})
		return one("catalog_get_entity", q(`{"ref":%q}`, a)), one("catalog_get_api_definition", q(`{"ref":%q}`, a)), paths, ok
	}},
	{"api-6", "apis", "What kind of API is A (OpenAPI, gRPC, …)?", func(o *oracle) ([]qcall, []qcall, []string, bool) {
		a, ok := o.find(func(m map[string]any) bool { return o.kind(m) == "api" && str(m, "spec", "type") == "grpc" })
		c := one("catalog_get_entity", q(`{"ref":%q}`, a))
		return c, c, []string{"type=grpc"}, ok
	}},
	{"life-1", "lifecycle", "Which components are deprecated?", func(o *oracle) ([]qcall, []qcall, []string, bool) {
		best, lit := searchPaths(`{"kind":"Component","lifecycle":"deprecated"}`)
		want := o.matching(and(kindIs("Component"), specIs("lifecycle", "deprecated")))
		return best, lit, want, len(want) > 0
	}},
	{"life-2", "lifecycle", "Is X in production?", func(o *oracle) ([]qcall, []qcall, []string, bool) {
		x, ok := o.find(and(kindIs("Component"), specIs("lifecycle", "experimental")))
		c := one("catalog_get_entity", q(`{"ref":%q}`, x))
		return c, c, []string{"lifecycle=experimental"}, ok
	}},
	{"life-3", "lifecycle", "How many services are in production?", func(o *oracle) ([]qcall, []qcall, []string, bool) {
		n := len(o.matching(and(kindIs("Component"), specIs("type", "service"), specIs("lifecycle", "production"))))
		c := one("catalog_list_facets", `{"facet":"spec.lifecycle","kind":"Component","type":"service"}`)
		return c, c, []string{q("production %d", n)}, n > 0
	}},
	{"life-4", "lifecycle", "Which experimental components does team T own?", func(o *oracle) ([]qcall, []qcall, []string, bool) {
		g, ok := o.find(func(m map[string]any) bool {
			if o.kind(m) != "group" {
				return false
			}
			for _, t := range o.relsOf(m, "ownerOf") {
				if str(o.byRef[strings.ToLower(t)], "spec", "lifecycle") == "experimental" && strings.HasPrefix(t, "component:") {
					return true
				}
			}
			return false
		})
		best, lit := searchPaths(q(`{"kind":"Component","owner":%q,"lifecycle":"experimental"}`, g))
		return best, lit, o.matching(and(kindIs("Component"), o.ownedBy(g), specIs("lifecycle", "experimental"))), ok
	}},
	{"onb-1", "onboarding", "What is in system S?", func(o *oracle) ([]qcall, []qcall, []string, bool) {
		s, ok := o.find(func(m map[string]any) bool {
			n := len(o.relsOf(m, "hasPart"))
			return o.kind(m) == "system" && n >= 3 && n <= 100
		})
		best, lit := searchPaths(q(`{"system":%q}`, s))
		return best, lit, o.rel(s, "hasPart"), ok
	}},
	{"onb-2", "onboarding", "Which domain is system S in?", func(o *oracle) ([]qcall, []qcall, []string, bool) {
		s, ok := o.find(func(m map[string]any) bool { return o.kind(m) == "system" && len(o.relsOf(m, "partOf")) == 1 })
		c := one("catalog_get_entity", q(`{"ref":%q}`, s))
		return c, c, o.rel(s, "partOf"), ok
	}},
	{"onb-5", "onboarding", "Which domain is component X in?", func(o *oracle) ([]qcall, []qcall, []string, bool) {
		// A component without a domain of its own takes its system's.
		var dom string
		x, ok := o.find(func(m map[string]any) bool {
			if o.kind(m) != "component" || str(m, "spec", "domain") != "" {
				return false
			}
			sys := o.relsOf(m, "partOf")
			if len(sys) != 1 || !strings.HasPrefix(sys[0], "system:") {
				return false
			}
			d := o.rel(sys[0], "partOf")
			if len(d) != 1 {
				return false
			}
			dom = d[0]
			return true
		})
		c := one("catalog_get_entity", q(`{"ref":%q}`, x))
		return c, c, []string{"domain=" + dom}, ok
	}},
	{"onb-3", "onboarding", "Who owns system S and how do I reach them?", func(o *oracle) ([]qcall, []qcall, []string, bool) {
		s, ok := o.find(func(m map[string]any) bool {
			ow := o.relsOf(m, "ownedBy")
			return o.kind(m) == "system" && len(ow) == 1 && str(o.byRef[strings.ToLower(ow[0])], "spec", "profile", "email") != ""
		})
		if !ok {
			return nil, nil, nil, false
		}
		ow := o.rel(s, "ownedBy")[0]
		c := one("catalog_find_owner", q(`{"ref":%q}`, s))
		return c, c, []string{ow, str(o.byRef[strings.ToLower(ow)], "spec", "profile", "email")}, true
	}},
	{"onb-4", "onboarding", "Which APIs are in system S?", func(o *oracle) ([]qcall, []qcall, []string, bool) {
		s, ok := o.find(func(m map[string]any) bool {
			if o.kind(m) != "system" {
				return false
			}
			for _, t := range o.relsOf(m, "hasPart") {
				if strings.HasPrefix(t, "api:") {
					return true
				}
			}
			return false
		})
		best, lit := searchPaths(q(`{"kind":"API","system":%q}`, s))
		return best, lit, o.matching(and(kindIs("API"), func(a map[string]any) bool { return slices.Contains(o.relsOf(a, "partOf"), s) })), ok
	}},
	{"scope-1", "scope labels", "Which components are in PCI scope / carry label L?", func(o *oracle) ([]qcall, []qcall, []string, bool) {
		// The first label of a component; a catalog without labels is
		// asked for an annotation that scopes the same way.
		for _, m := range o.ents {
			labels, _ := get(m, "metadata", "labels").(map[string]any)
			if o.kind(m) != "component" || len(labels) == 0 {
				continue
			}
			keys := slices.Sorted(func(yield func(string) bool) {
				for k := range labels {
					if !yield(k) {
						return
					}
				}
			})
			k := keys[len(keys)-1]
			v := fmt.Sprint(labels[k])
			want := o.matching(and(kindIs("Component"), func(e map[string]any) bool { return str(e, "metadata", "labels", k) == v }))
			best, lit := searchPaths(q(`{"kind":"Component","labels":[%q]}`, k+"="+v))
			return best, lit, want, true
		}
		best, lit := searchPaths(`{"kind":"API","annotations":["pagerduty.com/service-id"]}`)
		return best, lit, o.matching(and(kindIs("API"), hasAnn("pagerduty.com/service-id"))), true
	}},
	{"scope-2", "scope labels", "Which components have a PagerDuty service in system S?", func(o *oracle) ([]qcall, []qcall, []string, bool) {
		s, ok := o.find(func(m map[string]any) bool {
			if o.kind(m) != "system" {
				return false
			}
			for _, t := range o.relsOf(m, "hasPart") {
				if strings.HasPrefix(t, "component:") && o.ann(t, "pagerduty.com/service-id") != "" {
					return true
				}
			}
			return false
		})
		best, lit := searchPaths(q(`{"kind":"Component","system":%q,"annotations":["pagerduty.com/service-id"]}`, s))
		return best, lit, o.matching(and(kindIs("Component"), hasAnn("pagerduty.com/service-id"), func(c map[string]any) bool { return slices.Contains(o.relsOf(c, "partOf"), s) })), ok
	}},
	{"chg-1", "change", "If I retire API A, which teams must migrate?", func(o *oracle) ([]qcall, []qcall, []string, bool) {
		a, ok := o.find(func(m map[string]any) bool {
			n := len(o.relsOf(m, "apiConsumedBy"))
			return o.kind(m) == "api" && n >= 2 && n <= 100
		})
		owners := map[string]bool{}
		for _, c := range o.rel(a, "apiConsumedBy") {
			for _, ow := range o.rel(c, "ownedBy") {
				owners[ow] = true
			}
		}
		c := one("catalog_find_dependents", q(`{"ref":%q,"depth":1}`, a))
		return c, one("catalog_find_dependents", q(`{"ref":%q}`, a)), slices.Sorted(func(yield func(string) bool) {
			for k := range owners {
				if !yield(k) {
					return
				}
			}
		}), ok
	}},
	{"chg-2", "change", "Which production services depend on resource R, and who runs them?", func(o *oracle) ([]qcall, []qcall, []string, bool) {
		r, ok := o.find(func(m map[string]any) bool { return o.kind(m) == "resource" && len(o.relsOf(m, "dependencyOf")) > 0 })
		var facts []string
		for _, d := range o.dependents(r, 1) {
			facts = append(facts, d)
			facts = append(facts, o.rel(d, "ownedBy")...)
		}
		c := one("catalog_find_dependents", q(`{"ref":%q,"depth":1}`, r))
		return c, c, facts, ok
	}},
}

// addPaths adds one question's calls and tokens on each path (best,
// literal, summaries only, prompt) to a catalog's totals.
func addPaths(tt [8]int, paths ...pathStats) [8]int {
	for i, p := range paths {
		tt[2*i] += p.calls
		tt[2*i+1] += p.bytes / 4
	}
	return tt
}

// summaryOnly is each question's path for an agent that reads summaries
// alone (catalog_get_entity and catalog_search_entities, default detail):
// the best path where it is one already, else the calls below. A counting
// question is answered from the lines it lists, so its facts are the ones
// the agent counts (facts nil: the question's own).
func summaryOnly(o *oracle, id string, best []qcall) (path []qcall, facts []string, ok bool) {
	summaryTools := true
	for _, c := range best {
		summaryTools = summaryTools && (c.tool == "catalog_get_entity" || c.tool == "catalog_search_entities") && !strings.Contains(c.args, `"fields"`)
	}
	var a struct {
		Ref string `json:"ref"`
	}
	_ = json.Unmarshal([]byte(best[0].args), &a)
	x := a.Ref
	get := func(ref string) qcall { return qcall{tool: "catalog_get_entity", args: q(`{"ref":%q}`, ref)} }
	search := func(rel string) qcall {
		return qcall{tool: "catalog_search_entities", args: q(`{"relations":[%q],"limit":100}`, rel), page: true}
	}
	withOwner := func() []qcall {
		out := []qcall{get(x)}
		if ow := o.rel(x, "ownedBy"); len(ow) == 1 {
			out = append(out, get(ow[0]))
		}
		return out
	}
	// impact walks hop by hop: what depends on each node of the frontier
	// and what consumes the APIs it provides, as the agent reads them.
	impact := func(depth int, owners bool) []qcall {
		var out []qcall
		all := o.walkDependents(x, depth, func(f string) {
			out = append(out, search("dependsOn="+f))
			if strings.HasPrefix(f, "api:") {
				out = append(out, search("consumesApi="+f))
			}
			for _, api := range o.rel(f, "providesApi") {
				out = append(out, search("consumesApi="+api))
			}
		})
		if owners {
			for _, ow := range o.ownersOf(all) {
				out = append(out, get(ow))
			}
		}
		return out
	}
	prodServices := `{"kind":"Component","type":"service","lifecycle":"production","limit":100}`
	switch id {
	case "own-9":
		// Every production service, each line naming its owner (or the
		// head, when they share one): the agent counts per owner.
		facts := []string{"each has type=service lifecycle=production"}
		counts := map[string]int{}
		for _, m := range o.ents {
			if o.kind(m) == "component" && str(m, "spec", "type") == "service" && str(m, "spec", "lifecycle") == "production" {
				facts = append(facts, m[refKey].(string))
				for _, ow := range o.relsOf(m, "ownedBy") {
					counts[ow]++
				}
			}
		}
		top, n := "", 0
		for v, c := range counts {
			if c > n || c == n && v < top {
				top, n = v, c
			}
		}
		return []qcall{{tool: "catalog_search_entities", args: prodServices, page: true}}, append(facts, "owner="+top), true
	case "life-3":
		// Every production service: the agent counts the lines (a
		// search filtered on type or lifecycle gives no total, which
		// could count what the caller may not see).
		return []qcall{{tool: "catalog_search_entities", args: prodServices, page: true}},
			o.matching(and(kindIs("Component"), specIs("type", "service"), specIs("lifecycle", "production"))), true
	case "api-5":
		// An API's summary names its operations.
		return []qcall{get(x)}, nil, true
	}
	if p, ok := summaryPath(o, id, x, get, search, withOwner, impact); ok {
		return p, nil, true
	}
	if summaryTools {
		return best, nil, true
	}
	return nil, nil, false
}

// summaryPath is summaryOnly's path for the questions whose facts are the
// suite's own.
func summaryPath(o *oracle, id, x string, get func(string) qcall, search func(string) qcall, withOwner func() []qcall, impact func(int, bool) []qcall) ([]qcall, bool) {
	switch id {
	case "own-1", "own-5":
		return []qcall{get(x)}, true
	case "own-2", "onb-3":
		return withOwner(), true
	case "own-4":
		return []qcall{search("memberOf=" + x)}, true
	case "own-6":
		return []qcall{search("childOf=" + x)}, true
	case "own-7":
		return []qcall{search("hasMember=" + x)}, true
	case "doc-4":
		if o.ann(x, "slack.com/channel") != "" {
			return []qcall{get(x)}, true
		}
		return withOwner(), true
	case "imp-1":
		return impact(3, false), true
	case "imp-2":
		return impact(3, true), true
	case "imp-3", "chg-2":
		return []qcall{search("dependsOn=" + x)}, true
	case "api-1", "chg-1":
		return []qcall{search("consumesApi=" + x)}, true
	}
	return nil, false
}

// promptFor names the shipped prompt (Prompts) that answers a question:
// an agent that picks the prompt for the question and follows its text
// literally.
var promptFor = map[string]string{
	"own-1": "who-owns", "own-2": "who-owns", "own-3": "who-owns", "own-4": "who-owns", "doc-4": "who-owns", "onb-3": "who-owns",
	"imp-1": "blast-radius", "imp-2": "blast-radius", "imp-3": "blast-radius", "chg-2": "blast-radius",
	"onb-1": "onboard-system", "onb-2": "onboard-system", "onb-4": "onboard-system",
	"api-1": "review-api", "api-4": "review-api", "api-5": "review-api", "chg-1": "review-api",
	"chg-3": "what-changed", "chg-4": "what-changed",
}

// promptStep is one numbered step of a prompt that says to call a tool:
// "2. Call catalog_search_entities with system S and limit 100 …". Steps
// that only say when to call something ("If …, call …") are not followed.
var promptStep = regexp.MustCompile(`(?m)^\d+\. Call (catalog_\w+) with (ref|system|since) (\S+?)[:.]?(?: and (depth|limit) (\d+))?[:.]?(?:\s|$)`)

// promptPath is the path of an agent that follows the prompt's text on
// subject: the calls its numbered steps name, with the arguments they
// give; and the prompt's text, which the model reads too. It fails the
// test when the prompt names no call.
func promptPath(t *testing.T, name, subject string) ([]qcall, string) {
	t.Helper()
	var pr *Prompt
	for _, p := range Prompts() {
		if p.Name == name {
			pr = &p
		}
	}
	if pr == nil {
		t.Fatalf("no prompt %q", name)
	}
	var out []qcall
	text := pr.Text(subject)
	for _, m := range promptStep.FindAllStringSubmatch(text, -1) {
		args := map[string]any{m[2]: m[3]}
		if m[4] != "" {
			n := 0
			_, _ = fmt.Sscanf(m[5], "%d", &n)
			args[m[4]] = n
		}
		b, _ := json.Marshal(args)
		out = append(out, qcall{tool: m[1], args: string(b)})
	}
	if len(out) == 0 {
		t.Fatalf("prompt %s names no call:\n%s", name, text)
	}
	return out, text
}

// subjectOf is what a question asks about: the ref, or the system, its
// best path starts from.
func subjectOf(best []qcall) string {
	var a struct {
		Ref    string `json:"ref"`
		System string `json:"system"`
	}
	_ = json.Unmarshal([]byte(best[0].args), &a)
	return firstNonEmpty(a.Ref, a.System)
}

// withLinks guards a predicate on metadata.links against entities that
// have none.
type linkPred func(m map[string]any) bool

func (p linkPred) withLinks() func(m map[string]any) bool {
	return func(m map[string]any) bool {
		if _, ok := get(m, "metadata", "links").([]any); !ok {
			return false
		}
		return p(m)
	}
}

// pathStats is what one path of one question cost.
type pathStats struct {
	calls, bytes int
	missing      []string
}

func runPath(t *testing.T, d *Deps, byName map[string]Tool, path []qcall, facts []string) pathStats {
	t.Helper()
	var st pathStats
	var all strings.Builder
	for _, c := range path {
		args := c.args
		for {
			res := call(t, byName[c.tool], openCtx(), args)
			st.calls++
			txt := text(res)
			st.bytes += len(txt)
			// Other content (resource links to the owner, system or an
			// API's definition) reaches the model too: counted as sent.
			for _, c := range res.Content {
				if _, ok := c.(mcp.TextContent); !ok {
					b, _ := json.Marshal(c)
					st.bytes += len(b)
				}
			}
			all.WriteString(txt)
			all.WriteByte('\n')
			if res.IsError || !c.page {
				break
			}
			var p struct {
				NextCursor string `json:"nextCursor"`
			}
			b, _ := json.Marshal(res.StructuredContent)
			_ = json.Unmarshal(b, &p)
			if p.NextCursor == "" {
				break
			}
			// The cursor is read from the text, where the model reads it.
			if !strings.Contains(txt, "cursor="+p.NextCursor) {
				t.Fatalf("%s: the text does not give the cursor", c.tool)
			}
			args = q(`{"cursor":%q}`, p.NextCursor)
		}
	}
	text := all.String()
	for _, f := range facts {
		if !strings.Contains(text, f) {
			st.missing = append(st.missing, f)
		}
	}
	return st
}

// TestQuestionSuite runs every question on the demo catalog and on a
// generated 10,000-entity catalog, on both paths, and fails when a fact is
// missing from the text. QUESTION_TABLE=file writes the Markdown table.
func TestQuestionSuite(t *testing.T) {
	if len(questions) < 30 {
		t.Fatalf("%d questions, want at least 30", len(questions))
	}
	type catalogCase struct {
		name string
		ents func(t *testing.T) []map[string]any
	}
	cases := []catalogCase{
		{"demo", func(t *testing.T) []map[string]any {
			e, err := demo.Entities()
			if err != nil {
				t.Fatal(err)
			}
			return e
		}},
	}
	if !testing.Short() || os.Getenv("QUESTION_TABLE") != "" || os.Getenv("QUESTIONS_10K") != "" {
		cases = append(cases, catalogCase{"generated 10k", func(t *testing.T) []map[string]any {
			c, err := gencatalog.Generate(10000, 1)
			if err != nil {
				t.Fatal(err)
			}
			return c.Entities
		}})
	}
	var table strings.Builder
	table.WriteString("| question | area | demo: best calls / tokens | demo: literal | demo: summaries only | demo: prompt | 10k: best | 10k: literal | 10k: summaries only | 10k: prompt |\n|---|---|---|---|---|---|---|---|---|---|\n")
	cells := map[string][]string{}
	totals := map[string][8]int{}
	for _, cc := range cases {
		t.Run(cc.name, func(t *testing.T) {
			d := catalogDeps(t, cc.ents(t))
			o := newOracle(t, d)
			byName := map[string]Tool{}
			for _, tl := range All(d) {
				byName[tl.Tool.Name] = tl
			}
			for _, qu := range questions {
				best, literal, facts, ok := qu.plan(o)
				if !ok || len(facts) == 0 {
					t.Errorf("%s (%s): no subject in this catalog", qu.id, qu.ask)
					cells[qu.id] = append(cells[qu.id], "n/a", "n/a", "n/a", "n/a")
					continue
				}
				b := runPath(t, d, byName, best, facts)
				l := runPath(t, d, byName, literal, facts)
				paths := map[string]pathStats{"best": b, "literal": l}
				sumCell := "n/a"
				sp, sumFacts, hasSum := summaryOnly(o, qu.id, best)
				var sm pathStats
				if hasSum {
					if sumFacts == nil {
						sumFacts = facts
					}
					sm = runPath(t, d, byName, sp, sumFacts)
					paths["summaries-only"] = sm
					sumCell = q("%d / %d", sm.calls, sm.bytes/4)
				}
				promptCell := "—"
				var pm pathStats
				if pr, ok := promptFor[qu.id]; ok {
					// The prompt on the question's subject, and on the
					// next one the question would ask about.
					subject := subjectOf(best)
					runs := []struct {
						subject string
						facts   []string
					}{{subject, facts}}
					o.skip = map[string]bool{subject: true}
					if best2, _, facts2, ok := qu.plan(o); ok && len(facts2) > 0 && subjectOf(best2) != subject {
						runs = append(runs, struct {
							subject string
							facts   []string
						}{subjectOf(best2), facts2})
					}
					o.skip = nil
					for i, r := range runs {
						calls, text := promptPath(t, pr, r.subject)
						st := runPath(t, d, byName, calls, r.facts)
						if len(st.missing) > 0 {
							t.Errorf("%s %q, prompt %s on %s: the text lacks %q", qu.id, qu.ask, pr, r.subject, st.missing)
						}
						pm.calls += st.calls
						pm.bytes += st.bytes + len(text)
						if i == 0 {
							paths["prompt "+pr] = st
						}
					}
					promptCell = q("`%s` on %d: %d / %d", pr, len(runs), pm.calls, pm.bytes/4)
				}
				for name, st := range paths {
					if len(st.missing) > 0 {
						t.Errorf("%s %q, %s path: the text lacks %q", qu.id, qu.ask, name, st.missing)
					}
				}
				cells[qu.id] = append(cells[qu.id], q("%d / %d", b.calls, b.bytes/4), q("%d / %d", l.calls, l.bytes/4), sumCell, promptCell)
				totals[cc.name] = addPaths(totals[cc.name], b, l, sm, pm)
			}
			// What changed: on a mirror that saw the catalog change
			// between two syncs.
			sc := newChangeScene(t, cc.ents(t))
			mirrorTools := map[string]Tool{}
			for _, tl := range All(sc.mirror) {
				mirrorTools[tl.Tool.Name] = tl
			}
			for _, cq := range changeQuestions {
				best, literal, facts := cq.plan(sc)
				b := runPath(t, sc.mirror, mirrorTools, best, facts)
				l := runPath(t, sc.mirror, mirrorTools, literal, facts)
				for name, st := range map[string]pathStats{"best": b, "literal": l} {
					if len(st.missing) > 0 {
						t.Errorf("%s %q, %s path: the text lacks %q", cq.id, cq.ask, name, st.missing)
					}
				}
				// Summaries only: the feed has one form, its lines, and
				// the best path asks for no fields and no full detail.
				for _, c := range best {
					if strings.Contains(c.args, `"fields"`) || strings.Contains(c.args, `"detail"`) {
						t.Fatalf("%s: the best path asks for more than summaries: %s", cq.id, c.args)
					}
				}
				sm := runPath(t, sc.mirror, mirrorTools, best, facts)
				promptCell := "—"
				var pm pathStats
				if pr, ok := promptFor[cq.id]; ok {
					calls, ptext := promptPath(t, pr, "24h")
					pm = runPath(t, sc.mirror, mirrorTools, calls, facts)
					if len(pm.missing) > 0 {
						t.Errorf("%s %q, prompt %s: the text lacks %q", cq.id, cq.ask, pr, pm.missing)
					}
					pm.bytes += len(ptext)
					promptCell = q("`%s` on 24h: %d / %d", pr, pm.calls, pm.bytes/4)
				}
				cells[cq.id] = append(cells[cq.id], q("%d / %d", b.calls, b.bytes/4), q("%d / %d", l.calls, l.bytes/4), q("%d / %d", sm.calls, sm.bytes/4), promptCell)
				totals[cc.name] = addPaths(totals[cc.name], b, l, sm, pm)
			}
		})
	}
	rows := make([][3]string, 0, len(questions)+len(changeQuestions))
	for _, qu := range questions {
		rows = append(rows, [3]string{qu.id, qu.ask, qu.area})
	}
	for _, cq := range changeQuestions {
		rows = append(rows, [3]string{cq.id, cq.ask + " (mirror mode)", cq.area})
	}
	for _, r := range rows {
		qu := struct{ id, ask, area string }{r[0], r[1], r[2]}
		row := cells[qu.id]
		for len(row) < 8 {
			row = append(row, "—")
		}
		fmt.Fprintf(&table, "| %s | %s | %s |\n", qu.ask, qu.area, strings.Join(row, " | "))
	}
	dm, gk := totals["demo"], totals["generated 10k"]
	fmt.Fprintf(&table, "| **total** | | %d / %d | %d / %d | %d / %d | %d / %d | %d / %d | %d / %d | %d / %d | %d / %d |\n",
		dm[0], dm[1], dm[2], dm[3], dm[4], dm[5], dm[6], dm[7], gk[0], gk[1], gk[2], gk[3], gk[4], gk[5], gk[6], gk[7])
	t.Log("\n" + table.String())
	if len(cases) == 2 && !t.Failed() {
		checkReadmeTable(t, table.String())
	}
	if f := os.Getenv("QUESTION_TABLE"); f != "" {
		if err := os.WriteFile(f, []byte(table.String()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// checkReadmeTable holds README.md's question table to the one the suite
// measured (rewritten with -update).
func checkReadmeTable(t *testing.T, table string) {
	t.Helper()
	const path = "../README.md"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	start := strings.Index(readme, "| question | area | demo: best")
	if start < 0 {
		t.Fatal("README.md has no question table")
	}
	end := strings.Index(readme[start:], "\n\n")
	if end < 0 {
		t.Fatal("README.md's question table has no end")
	}
	end += start
	if readme[start:end]+"\n" == table {
		return
	}
	if !*update {
		t.Errorf("README.md's question table is stale: go test ./tools -run TestQuestionSuite -update")
		return
	}
	if err := os.WriteFile(path, []byte(readme[:start]+strings.TrimSuffix(table, "\n")+readme[end:]), 0o600); err != nil {
		t.Fatal(err)
	}
}

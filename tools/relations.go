package tools

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
)

// inverse maps each relation type to the one Backstage stores on the other end.
var inverse = map[string]string{
	"dependsOn": "dependencyOf", "dependencyOf": "dependsOn",
	"providesApi": "apiProvidedBy", "apiProvidedBy": "providesApi",
	"consumesApi": "apiConsumedBy", "apiConsumedBy": "consumesApi",
	"partOf": "hasPart", "hasPart": "partOf",
	"ownedBy": "ownerOf", "ownerOf": "ownedBy",
	"memberOf": "hasMember", "hasMember": "memberOf",
	"childOf": "parentOf", "parentOf": "childOf",
}

// RelationTypes lists the relation types catalog_get_relations follows.
var RelationTypes = []string{"dependsOn", "dependencyOf", "providesApi", "consumesApi", "apiProvidedBy", "apiConsumedBy",
	"partOf", "hasPart", "ownedBy", "ownerOf", "memberOf", "hasMember", "childOf", "parentOf"}

// MaxGraphNodes caps the nodes of one relations answer.
const MaxGraphNodes = 200

var relationsParams = []param{
	{name: "ref", typ: tString, desc: "e.g. component:default/orders-service."},
	{name: "relations", typ: tStrings, enum: RelationTypes, max: len(RelationTypes),
		desc: "Types to follow (default all), as stored on each entity: X dependsOn Y: X needs Y; X dependencyOf Y: Y needs X."},
	{name: "direction", typ: tString, enum: []string{"outgoing", "incoming", "both"}, def: "outgoing",
		desc: "incoming: edges of these types pointing at each entity reached ([dependsOn] incoming: what depends on it). outgoing: as stored, on both ends."},
	{name: "depth", typ: tInt, min: 1, max: 3, def: 1, desc: "Hops."},
}

// Edge is one relation between two visible nodes.
type Edge struct {
	From string `json:"from"`
	Type string `json:"type"`
	To   string `json:"to"`
}

// Node is a compact entity in a relation graph.
type Node struct {
	Ref   string `json:"ref"`
	Title string `json:"title,omitempty"`
	Type  string `json:"type,omitempty"`
	Owner string `json:"owner,omitempty"`
	Depth int    `json:"depth"`
}

// RelationsResult is the structured answer of catalog_get_relations.
type RelationsResult struct {
	Root      string `json:"root"`
	Nodes     []Node `json:"nodes"`
	Edges     []Edge `json:"edges"`
	Truncated bool   `json:"truncated,omitempty"`
}

// GetRelations is catalog_get_relations: the relation graph around an entity.
func GetRelations(d *Deps) Tool {
	t := newTool("catalog_get_relations", "Relation edges around a catalog entity, up to 3 hops. For \"what does X need\": relations [dependsOn, consumesApi]. "+
		"For \"what depends on X\" use catalog_find_dependents (it also follows the consumers of X's APIs and names whom to tell); "+
		"here that takes relations [dependencyOf, providesApi, apiConsumedBy] and depth 2-3.", schema(relationsParams, "ref"), "Get entity relations")
	h := func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		a, root, res := d.rootEntity(ctx, req, relationsParams, "", nil)
		if res != nil {
			return res, nil
		}
		types := a.list("relations")
		if len(types) == 0 {
			types = RelationTypes
		}
		dir := a.str("direction")
		if dir == "" {
			dir = "outgoing"
		}
		f := follow{out: map[string]bool{}, in: map[string]bool{}}
		for _, t := range types {
			if dir == "outgoing" || dir == "both" {
				f.out[t] = true
			}
			if dir == "incoming" || dir == "both" {
				f.in[inverse[t]] = true
			}
		}
		g, err := d.walk(ctx, root, f, a.num("depth", 1))
		if err != nil {
			return toolError(err), nil
		}
		return result(g, g.text()), nil
	}
	return Tool{Tool: t, Handler: h, Answer: "A head with the numbers of related entities and edges, then one edge per line: source, relation type, target.", Scope: ScopeRead}
}

// follow says which stored relation types to follow: out as they are
// stored (X dependsOn Y), in reported reversed (X dependencyOf Y is
// reported as Y dependsOn X).
type follow struct{ out, in map[string]bool }

// walk explores breadth-first from a pruned root. Targets are fetched in
// batches by ref, admitted one by one and pruned like the root: a hidden
// entity is neither a node nor an edge end, and no node names one.
func (d *Deps) walk(ctx context.Context, root entity, f follow, depth int) (*RelationsResult, error) {
	g := &RelationsResult{Root: root.ref, Nodes: []Node{nodeOf(root, 0)}, Edges: []Edge{}}
	seen := map[string]bool{strings.ToLower(root.ref): true}
	edgeSeen := map[Edge]bool{}
	frontier := []entity{root}
	for level := 1; level <= depth && len(frontier) > 0; level++ {
		type pending struct{ from, stored, target string }
		var want []pending
		var refs []string
		queued := map[string]bool{}
		for _, e := range frontier {
			for _, r := range relations(e.m) {
				if !f.out[r.typ] && !f.in[r.typ] {
					continue
				}
				want = append(want, pending{e.ref, r.typ, r.target})
				key := strings.ToLower(r.target)
				if !seen[key] && !queued[key] {
					queued[key] = true
					refs = append(refs, r.target)
				}
			}
		}
		// Every target left after pruning is visible, so the node budget is
		// spent on visible entities only.
		if len(refs)+len(g.Nodes) > MaxGraphNodes {
			refs = refs[:max(0, MaxGraphNodes-len(g.Nodes))]
			g.Truncated = true
		}
		visible := map[string]bool{}
		for k := range seen {
			visible[k] = true
		}
		var next []entity
		if len(refs) > 0 {
			raws, err := d.Catalog.GetByRefs(ctx, refs, nil)
			if err != nil {
				return nil, err
			}
			for _, raw := range raws {
				if raw == nil {
					continue
				}
				e, ok, err := d.admit(ctx, raw)
				if err != nil {
					return nil, err
				}
				if !ok {
					continue
				}
				key := strings.ToLower(e.ref)
				if seen[key] {
					continue
				}
				seen[key] = true
				visible[key] = true
				record(ctx, e)
				next = append(next, e)
			}
			if err := d.pruneNames(ctx, next); err != nil {
				return nil, err
			}
			for _, e := range next {
				g.Nodes = append(g.Nodes, nodeOf(e, level))
			}
		}
		for _, p := range want {
			if !visible[strings.ToLower(p.target)] {
				continue
			}
			var eds []Edge
			if f.out[p.stored] {
				eds = append(eds, Edge{From: p.from, Type: p.stored, To: canonical(g, p.target)})
			}
			if f.in[p.stored] {
				eds = append(eds, Edge{From: canonical(g, p.target), Type: inverse[p.stored], To: p.from})
			}
			for _, ed := range eds {
				if !edgeSeen[ed] {
					edgeSeen[ed] = true
					g.Edges = append(g.Edges, ed)
				}
			}
		}
		frontier = next
	}
	sort.SliceStable(g.Edges, func(i, j int) bool {
		a, b := g.Edges[i], g.Edges[j]
		if a.From != b.From {
			return a.From < b.From
		}
		if a.Type != b.Type {
			return a.Type < b.Type
		}
		return a.To < b.To
	})
	return g, nil
}

// canonical returns the node's ref as the graph spells it.
func canonical(g *RelationsResult, ref string) string {
	for _, n := range g.Nodes {
		if strings.EqualFold(n.Ref, ref) {
			return n.Ref
		}
	}
	return ref
}

func nodeOf(e entity, depth int) Node {
	return Node{
		Ref:   e.ref,
		Title: str(e.m, "metadata", "title"),
		Type:  str(e.m, "spec", "type"),
		Owner: refField(e.m, "ownedBy", "owner", "group"),
		Depth: depth,
	}
}

func (g *RelationsResult) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d related entities, %d edges", g.Root, len(g.Nodes)-1, len(g.Edges))
	if g.Truncated {
		fmt.Fprintf(&b, " (truncated at %d nodes)", MaxGraphNodes)
	}
	for _, e := range g.Edges {
		fmt.Fprintf(&b, "\n%s %s %s", e.From, e.Type, e.To)
	}
	return b.String()
}

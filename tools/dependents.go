package tools

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
)

// MaxDependents caps the dependents of one impact answer; MaxDependentOwners
// the owners whose contacts it gives.
const (
	MaxDependents      = 200
	MaxDependentOwners = 50
)

var dependentsParams = []param{
	{name: "ref", typ: tString, desc: "e.g. component:default/orders-service, api:default/orders-api, resource:default/orders-db."},
	{name: "depth", typ: tInt, min: 1, max: 4, def: 3, desc: "Hops; 1: direct dependents only."},
}

// Dependent is one entity that depends on the root, directly or through
// other dependents.
type Dependent struct {
	Ref       string `json:"ref"`
	Title     string `json:"title,omitempty"`
	Type      string `json:"type,omitempty"`
	Lifecycle string `json:"lifecycle,omitempty"`
	// Depth is the hop distance: 1 depends on the root itself.
	Depth int `json:"depth"`
	// On is the entity one hop closer to the root that this one depends on.
	On string `json:"on"`
	// Through is the API this one consumes when it depends on On through
	// an API (On's, or On itself when On is the API) rather than a
	// dependsOn relation.
	Through  string            `json:"through,omitempty"`
	Owner    string            `json:"owner,omitempty"`
	Contacts map[string]string `json:"contacts,omitempty"`
}

// OwnerContact is an owner of dependents and how to reach it.
type OwnerContact struct {
	Ref      string            `json:"ref"`
	Title    string            `json:"title,omitempty"`
	Email    string            `json:"email,omitempty"`
	Contacts map[string]string `json:"contacts,omitempty"`
	Links    []Link            `json:"links,omitempty"`
	// Dependents counts the dependents this owner owns.
	Dependents int `json:"dependents"`
}

// DependentsResult is the structured answer of catalog_find_dependents.
type DependentsResult struct {
	Root       string         `json:"root"`
	Depth      int            `json:"depth"`
	Dependents []Dependent    `json:"dependents"`
	Owners     []OwnerContact `json:"owners"`
	Truncated  bool           `json:"truncated,omitempty"`
}

// FindDependents is catalog_find_dependents: what depends on an entity,
// transitively, and whom to tell.
func FindDependents(d *Deps) Tool {
	t := newTool("catalog_find_dependents", "What depends on a catalog entity, directly and transitively (dependsOn it, or consumes an API it provides), each with its owner; "+
		"and whom to tell: each owning team with e-mail, chat and on-call. For \"what breaks if X goes down\", \"who uses X\".", schema(dependentsParams, "ref"), "Find what depends on an entity")
	h := func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		a, root, res := d.rootEntity(ctx, req, dependentsParams, "", nil)
		if res != nil {
			return res, nil
		}
		out, err := d.dependents(ctx, root, a.num("depth", 3))
		if err != nil {
			return toolError(err), nil
		}
		return result(out, out.text()), nil
	}
	return Tool{Tool: t, Handler: h, Answer: "A head with the number of dependents and owning teams, then each dependent by hop with its type, lifecycle, owner, how it depends (dependsOn X, or consumes API A of X; on hop 1 \"dependsOn it\" or \"consumes A\", the entity asked about) and its on-call and chat annotations; then whom to tell: each owning team with title, e-mail, how many dependents it owns, chat channel and links.", Scope: ScopeRead}
}

// fetchAdmitted fetches entities by ref, admits them and prunes the names
// they hold, skipping those seen already (which it marks). Hidden and
// missing entities are skipped alike.
func (d *Deps) fetchAdmitted(ctx context.Context, refs []string, seen map[string]bool) ([]entity, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	raws, err := d.Catalog.GetByRefs(ctx, refs, nil)
	if err != nil {
		return nil, err
	}
	var out []entity
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
		k := strings.ToLower(e.ref)
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, e)
	}
	if err := d.pruneNames(ctx, out); err != nil {
		return nil, err
	}
	return out, nil
}

// dependents walks dependents breadth-first from a pruned root. Every
// entity is pruned before its relations are read, so only visible
// entities are followed, counted or named.
func (d *Deps) dependents(ctx context.Context, root entity, depth int) (*DependentsResult, error) {
	out := &DependentsResult{Root: root.ref, Depth: depth, Dependents: []Dependent{}, Owners: []OwnerContact{}}
	seen := map[string]bool{strings.ToLower(root.ref): true}
	apiSeen := map[string]bool{}
	frontier := []entity{root}
	type reason struct{ on, through string }
	for level := 1; level <= depth && len(frontier) > 0; level++ {
		why := map[string]reason{}
		var want []string
		add := func(target, on, through string) {
			k := strings.ToLower(target)
			if seen[k] {
				return
			}
			if _, ok := why[k]; ok {
				return
			}
			why[k] = reason{on, through}
			want = append(want, target)
		}
		var apis []string
		apiProvider := map[string]string{}
		for _, e := range frontier {
			for _, r := range relations(e.m) {
				switch r.typ {
				case "dependencyOf":
					add(r.target, e.ref, "")
				case "apiConsumedBy":
					add(r.target, e.ref, e.ref) // the entity is an API: its consumers depend on it
				case "providesApi":
					k := strings.ToLower(r.target)
					if !apiSeen[k] && !seen[k] {
						apiSeen[k] = true
						apis = append(apis, r.target)
						apiProvider[k] = e.ref
					}
				}
			}
		}
		// Consumers of the APIs the frontier provides depend on their
		// provider through the API.
		provided, err := d.fetchAdmitted(ctx, apis, map[string]bool{})
		if err != nil {
			return nil, err
		}
		for _, api := range provided {
			for _, r := range relations(api.m) {
				if r.typ == "apiConsumedBy" {
					add(r.target, apiProvider[strings.ToLower(api.ref)], api.ref)
				}
			}
		}
		if len(want)+len(out.Dependents) > MaxDependents {
			want = want[:max(0, MaxDependents-len(out.Dependents))]
			out.Truncated = true
		}
		next, err := d.fetchAdmitted(ctx, want, seen)
		if err != nil {
			return nil, err
		}
		slices.SortStableFunc(next, func(a, b entity) int { return strings.Compare(a.ref, b.ref) })
		for _, e := range next {
			record(ctx, e)
			w := why[strings.ToLower(e.ref)]
			out.Dependents = append(out.Dependents, Dependent{
				Ref:       e.ref,
				Title:     str(e.m, "metadata", "title"),
				Type:      str(e.m, "spec", "type"),
				Lifecycle: str(e.m, "spec", "lifecycle"),
				Depth:     level,
				On:        w.on,
				Through:   w.through,
				Owner:     firstRelation(e.m, "ownedBy"),
				Contacts:  contacts(e.m),
			})
		}
		frontier = next
	}
	// The APIs the answer names as consumed are entities it hands out.
	named := map[string]bool{strings.ToLower(root.ref): true}
	for _, dep := range out.Dependents {
		if k := strings.ToLower(dep.Through); dep.Through != "" && !named[k] {
			named[k] = true
			callInfo(ctx).addEntity(dep.Through)
		}
	}
	if err := d.dependentOwners(ctx, out); err != nil {
		return nil, err
	}
	return out, nil
}

// dependentOwners fills the owners of the dependents with their contacts.
func (d *Deps) dependentOwners(ctx context.Context, out *DependentsResult) error {
	count := map[string]int{}
	var refs []string
	for _, dep := range out.Dependents {
		if dep.Owner == "" {
			continue
		}
		k := strings.ToLower(dep.Owner)
		if count[k] == 0 {
			refs = append(refs, dep.Owner)
		}
		count[k]++
	}
	slices.Sort(refs)
	if len(refs) > MaxDependentOwners {
		refs = refs[:MaxDependentOwners]
		out.Truncated = true
	}
	owners, err := d.fetchAdmitted(ctx, refs, map[string]bool{})
	if err != nil {
		return err
	}
	for _, o := range owners {
		record(ctx, o)
		out.Owners = append(out.Owners, OwnerContact{
			Ref:        o.ref,
			Title:      firstNonEmpty(str(o.m, "spec", "profile", "displayName"), str(o.m, "metadata", "title")),
			Email:      str(o.m, "spec", "profile", "email"),
			Contacts:   contacts(o.m),
			Links:      summarize(o).Links,
			Dependents: count[strings.ToLower(o.ref)],
		})
	}
	slices.SortStableFunc(out.Owners, func(a, b OwnerContact) int {
		if a.Dependents != b.Dependents {
			return b.Dependents - a.Dependents
		}
		return strings.Compare(a.Ref, b.Ref)
	})
	return nil
}

func writeContacts(b *strings.Builder, c map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(c)) {
		fmt.Fprintf(b, " %s=%s", k, c[k])
	}
}

func (r *DependentsResult) text() string {
	var b strings.Builder
	if len(r.Dependents) == 0 {
		fmt.Fprintf(&b, "nothing in the catalog that you can see depends on %s (followed dependsOn relations and consumers of the APIs it provides, %d hops)", r.Root, r.Depth)
		return b.String()
	}
	fmt.Fprintf(&b, "%s: %d dependents within %d hops, owned by %d teams or people", r.Root, len(r.Dependents), r.Depth, len(r.Owners))
	if r.Truncated {
		fmt.Fprintf(&b, " (truncated at %d dependents / %d owners)", MaxDependents, MaxDependentOwners)
	}
	level := 0
	for _, dep := range r.Dependents {
		if dep.Depth != level {
			level = dep.Depth
			fmt.Fprintf(&b, "\nhop %d:", level)
		}
		fmt.Fprintf(&b, "\n- %s", dep.Ref)
		var attrs []string
		for _, kv := range [][2]string{{"type", dep.Type}, {"lifecycle", dep.Lifecycle}, {"owner", dep.Owner}} {
			if kv[1] != "" {
				attrs = append(attrs, kv[0]+"="+kv[1])
			}
		}
		if len(attrs) > 0 {
			fmt.Fprintf(&b, " [%s]", strings.Join(attrs, " "))
		}
		// The root, named in the head, is "it" on the lines of hop 1.
		on := dep.On
		if strings.EqualFold(on, r.Root) {
			on = "it"
		}
		switch {
		case dep.Through != "" && strings.EqualFold(dep.Through, dep.On):
			fmt.Fprintf(&b, " consumes %s", on)
		case dep.Through != "" && on == "it":
			fmt.Fprintf(&b, " consumes %s", dep.Through) // its API
		case dep.Through != "":
			fmt.Fprintf(&b, " consumes %s of %s", dep.Through, on)
		default:
			fmt.Fprintf(&b, " dependsOn %s", on)
		}
		if len(dep.Contacts) > 0 {
			b.WriteString(";")
			writeContacts(&b, dep.Contacts)
		}
	}
	if len(r.Owners) > 0 {
		b.WriteString("\nwhom to tell:")
		for _, o := range r.Owners {
			fmt.Fprintf(&b, "\n- %s", o.Ref)
			if o.Title != "" {
				fmt.Fprintf(&b, " %q", o.Title)
			}
			if o.Email != "" {
				fmt.Fprintf(&b, " <%s>", o.Email)
			}
			fmt.Fprintf(&b, " owns %d", o.Dependents)
			writeContacts(&b, o.Contacts)
			for _, l := range o.Links {
				fmt.Fprintf(&b, " %s: %s", firstNonEmpty(l.Title, "link"), l.URL)
			}
		}
	}
	return b.String()
}

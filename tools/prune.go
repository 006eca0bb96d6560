package tools

import (
	"context"
	"reflect"
	"sort"
	"strings"

	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
)

// pruneNames applies the one rule for names of other entities inside a
// visible entity: a name is shown only when it names an entity the caller
// may see. Relations and the ref-valued spec fields of catalog.RefFields
// (spec.owner, spec.dependsOn, spec.memberOf, spec.system, …) are pruned
// alike, and a ref naming a hidden entity is treated exactly like one
// naming a missing entity (both are dropped). Callers who see everything
// skip it.
//
// The targets are looked up in one by-refs request that always lists the
// pruned entities themselves too (with a projection no other request
// uses). So the request is made whether or not hidden entities left
// relations on them, and its cache key stands for the set of pruned
// entities alone: it is answered from the upstream cache exactly when the
// same entities were pruned within the window, on either of two catalogs
// that differ only in what the caller may not see.
func (d *Deps) pruneNames(ctx context.Context, ents []entity) error {
	acc := accessFrom(ctx)
	if _, open := acc.(OpenAccess); open || len(ents) == 0 {
		return nil
	}
	lookup := make(map[string]struct{}, 4*len(ents)) // lower-case refs
	visible := make(map[string]bool, 4*len(ents))
	consider := func(target string) {
		k := strings.ToLower(target)
		if _, ok := lookup[k]; ok {
			return
		}
		lookup[k] = struct{}{}
		if vis, decided := acc.VisibleRef(target); decided {
			visible[k] = vis
		}
	}
	for _, e := range ents {
		lookup[strings.ToLower(e.ref)] = struct{}{}
		visible[strings.ToLower(e.ref)] = true // admitted
	}
	// The ref-valued spec fields of each entity, resolved once here and
	// used again below, in the order forRefValues visits them.
	resolved := make([][]resolvedRef, len(ents))
	for i, e := range ents {
		for _, r := range relations(e.m) {
			consider(r.target)
		}
		forRefValues(e.m, func(_ catalog.RefField, _ any, ref string, ok bool) {
			resolved[i] = append(resolved[i], resolvedRef{ref, ok})
			if ok {
				consider(ref)
			}
		})
	}
	// When the caller's rights are decided by refs alone (which depends on
	// the policy only, not on any ref), every target is decided: no lookup.
	if _, byRef := acc.VisibleRef(ents[0].ref); !byRef {
		if err := d.lookupVisible(ctx, acc, ents, lookup, visible); err != nil {
			return err
		}
	}
	for i, e := range ents {
		if repeated(ents, i) {
			continue // pruned already: pruning again changes nothing
		}
		if l, ok := e.m["relations"].([]any); ok {
			kept := make([]any, 0, len(l))
			for _, it := range l {
				r, _ := it.(map[string]any)
				t, _ := r["targetRef"].(string)
				if visible[strings.ToLower(t)] {
					kept = append(kept, it)
				}
			}
			e.m["relations"] = kept
		}
		spec, _ := e.m["spec"].(map[string]any)
		if spec == nil {
			continue
		}
		refs := resolved[i]
		// A value that is no ref names no entity: it is the entity's own
		// text and stays.
		keep := func() bool {
			r := refs[0]
			refs = refs[1:]
			return !r.ok || visible[strings.ToLower(r.ref)]
		}
		for _, f := range catalog.RefFieldsOf(str(e.m, "kind")) {
			switch t := spec[f.Field].(type) {
			case []any:
				kept := make([]any, 0, len(t))
				for _, x := range t {
					if keep() {
						kept = append(kept, x)
					}
				}
				spec[f.Field] = kept
			case nil:
			default:
				if !keep() {
					delete(spec, f.Field)
				}
			}
		}
	}
	return nil
}

// repeated reports whether ents[i] is the same decoded entity (the same
// map) as an earlier one.
func repeated(ents []entity, i int) bool {
	p := reflect.ValueOf(ents[i].m).UnsafePointer()
	for _, e := range ents[:i] {
		if reflect.ValueOf(e.m).UnsafePointer() == p {
			return true
		}
	}
	return false
}

// resolvedRef is a value of a ref-valued spec field resolved to a ref
// (ok=false when it is none).
type resolvedRef struct {
	ref string
	ok  bool
}

// lookupVisible decides the targets in lookup that the caller's rights do
// not decide from the ref alone, with one by-refs request.
//
// The request lists each pruned entity twice, then each other target
// once: the list (and so the cache key) names the pruned set without
// ambiguity, whatever targets hidden entities added.
func (d *Deps) lookupVisible(ctx context.Context, acc Access, ents []entity, lookup map[string]struct{}, visible map[string]bool) error {
	selves := map[string]bool{}
	for _, e := range ents {
		selves[strings.ToLower(e.ref)] = true
	}
	var self, other []string
	for k := range lookup {
		if selves[k] {
			self = append(self, k)
		} else {
			other = append(other, k)
		}
	}
	sort.Strings(self)
	sort.Strings(other)
	refs := make([]string, 0, 2*len(self)+len(other))
	for _, k := range self {
		refs = append(refs, k, k)
	}
	refs = append(refs, other...)
	raws, err := d.Catalog.GetByRefs(ctx, refs, visibilityFields)
	if err != nil {
		return err
	}
	for i, raw := range raws {
		if raw == nil || i >= len(refs) {
			continue
		}
		if _, decided := visible[refs[i]]; decided {
			continue
		}
		if m, err := catalog.DecodeObject(raw); err == nil && m != nil && acc.Visible(m) {
			visible[refs[i]] = true
		}
	}
	return nil
}

// visibilityFields is the projection of the pruning lookup: what the
// policy's conditions read. No other request asks for it, so its cache
// entries are the pruning's own.
var visibilityFields = []string{"kind", "metadata", "spec", "relations"}

// visibleRef reports whether the caller may see the entity a ref names,
// with the same lookup for a hidden and a missing entity.
func (d *Deps) visibleRef(ctx context.Context, ref string) (bool, error) {
	acc := accessFrom(ctx)
	if vis, decided := acc.VisibleRef(ref); decided {
		return vis, nil
	}
	raws, err := d.Catalog.GetByRefs(ctx, []string{strings.ToLower(ref)}, visibilityFields)
	if err != nil {
		return false, err
	}
	if len(raws) != 1 || raws[0] == nil {
		return false, nil
	}
	m, err := catalog.DecodeObject(raws[0])
	return err == nil && m != nil && acc.Visible(m), nil
}

// forRefValues calls fn for every value of the entity's ref-valued spec
// fields, with the value resolved to a ref (ok=false when it is none).
func forRefValues(m map[string]any, fn func(f catalog.RefField, v any, ref string, ok bool)) {
	spec, _ := m["spec"].(map[string]any)
	if spec == nil {
		return
	}
	ns := str(m, "metadata", "namespace")
	for _, f := range catalog.RefFieldsOf(str(m, "kind")) {
		var vals []any
		switch t := spec[f.Field].(type) {
		case nil:
			continue
		case []any:
			vals = t
		default:
			vals = []any{t}
		}
		for _, v := range vals {
			ref, ok := catalog.ResolveRefValue(v, f.DefaultKind, ns)
			fn(f, v, ref, ok)
		}
	}
}

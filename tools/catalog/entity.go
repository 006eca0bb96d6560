package catalog

import "strings"

// RefOf returns the ref of a decoded catalog entity: its kind and
// metadata.name as written, its metadata.namespace or DefaultNamespace. ok
// is false when the entity has no kind or no name; the Ref is filled in
// either case, so its String form of an incomplete entity is still stable.
//
// Render it with String (kind and namespace lowercased, the name as
// written: how Backstage writes relation targets and how tools show refs)
// or Key (all lowercased: for comparing and indexing, as Backstage compares
// refs case-insensitively).
func RefOf(entity map[string]any) (r Ref, ok bool) {
	r.Kind, _ = entity["kind"].(string)
	md, _ := entity["metadata"].(map[string]any)
	r.Name, _ = md["name"].(string)
	r.Namespace, _ = md["namespace"].(string)
	if r.Namespace == "" {
		r.Namespace = DefaultNamespace
	}
	return r, r.Kind != "" && r.Name != ""
}

// Key renders the ref in lower case, kind:namespace/name: the form to
// compare and index by.
func (r Ref) Key() string {
	return strings.ToLower(r.Kind + ":" + r.Namespace + "/" + r.Name)
}

// RelationTargets returns the lowercased targetRefs of a decoded entity's
// relations of type typ (compared exactly, as Backstage writes relation
// types), in the entity's order.
func RelationTargets(entity map[string]any, typ string) []string {
	rels, _ := entity["relations"].([]any)
	var out []string
	for _, rel := range rels {
		m, ok := rel.(map[string]any)
		if !ok || m["type"] != typ {
			continue
		}
		if ref, ok := m["targetRef"].(string); ok && ref != "" {
			out = append(out, strings.ToLower(ref))
		}
	}
	return out
}

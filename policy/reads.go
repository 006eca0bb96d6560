package policy

import "sort"

// ReadFields returns the entity fields that Entity and MaskFields read for
// this grant, as paths of at most two keys ("kind", "relations",
// "metadata.namespace", "metadata.annotations", "spec.type", …), sorted.
// An entity projected onto these fields (whole subtrees kept) gets the
// same decision as the whole entity, and masking commutes with any such
// projection (masks remove fields by their path alone), so callers may
// fetch only the fields they return plus these.
//
// The list always holds kind, metadata.name and metadata.namespace: the
// decision reads the kind and the namespace, and needs a metadata object.
func (g *Grant) ReadFields() []string {
	g.readsOnce.Do(func() { g.reads = g.readFields() })
	return append([]string(nil), g.reads...)
}

func (g *Grant) readFields() []string {
	set := map[string]bool{"kind": true, "metadata.name": true, "metadata.namespace": true}
	var walk func(n *node)
	walk = func(n *node) {
		if n.kind != nodeLeaf {
			for _, k := range n.kids {
				walk(k)
			}
			return
		}
		switch n.rule {
		case RuleIsEntityOwner:
			set["relations"] = true
		case RuleHasAnnotation:
			set["metadata.annotations"] = true
		case RuleHasLabel:
			set["metadata.labels"] = true
		case RuleHasMetadata:
			set["metadata."+n.segs[0]] = true
		case RuleHasSpec:
			set["spec."+n.segs[0]] = true
		}
	}
	for _, r := range g.allow {
		walk(r.node)
	}
	for _, r := range g.deny {
		walk(r.node)
	}
	out := make([]string, 0, len(set))
	for f := range set {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

package memcatalog

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
)

// relation is one entry of an entity's relations array.
type relation struct {
	Type      string
	TargetRef string
}

// relationRule is one spec field that Backstage's BuiltinKindsEntityProcessor
// turns into a relation and its reverse.
type relationRule struct {
	field       string
	defaultKind string // "" means the ref must name its kind
	outgoing    string
	incoming    string
}

// relationRules maps a kind (exact case, as the processor compares it) to its
// relation-bearing spec fields, from the one list in catalog.RefFields.
func relationRules(kind string) []relationRule {
	var out []relationRule
	for _, f := range catalog.RefFields {
		if f.Kind == kind {
			out = append(out, relationRule{f.Field, f.DefaultKind, f.Outgoing, f.Incoming})
		}
	}
	return out
}

// emitRelations reports every relation the entity produces, both the outgoing
// one (source = the entity) and its reverse (source = the target).
func emitRelations(e map[string]any, emit func(source string, r relation)) error {
	kind, _ := e["kind"].(string)
	rules := relationRules(kind)
	if len(rules) == 0 {
		return nil
	}
	spec, _ := e["spec"].(map[string]any)
	md := e["metadata"].(map[string]any)
	ns, _ := md["namespace"].(string)
	self := entityRef(e)
	for _, rule := range rules {
		v, present := spec[rule.field]
		if !present || v == nil {
			continue
		}
		var targets []any
		switch t := v.(type) {
		case []any:
			targets = t
		case string:
			if t == "" {
				continue // falsy: the processor skips it
			}
			targets = []any{t}
		default:
			targets = []any{t}
		}
		for _, t := range targets {
			target, err := resolveRef(t, rule.defaultKind, ns)
			if err != nil {
				return fmt.Errorf("spec.%s: %w", rule.field, err)
			}
			emit(self, relation{Type: rule.outgoing, TargetRef: target})
			emit(target, relation{Type: rule.incoming, TargetRef: self})
		}
	}
	return nil
}

// resolveRef parses an entity reference ("[kind:][namespace/]name" or an
// object with kind/namespace/name) with the given defaults and returns its
// lowercase full form.
func resolveRef(v any, defaultKind, defaultNamespace string) (string, error) {
	if defaultNamespace == "" {
		defaultNamespace = DefaultNamespace
	}
	var kind, ns, name string
	switch t := v.(type) {
	case string:
		if t == "" {
			return "", fmt.Errorf("entity reference must not be empty")
		}
		k, n, nm, err := splitRef(t)
		if err != nil {
			return "", err
		}
		kind, ns, name = k, n, nm
	case map[string]any:
		kind, _ = t["kind"].(string)
		ns, _ = t["namespace"].(string)
		name, _ = t["name"].(string)
	default:
		b, _ := json.Marshal(v)
		return "", fmt.Errorf("entity reference %s is not a string", b)
	}
	if kind == "" {
		kind = defaultKind
	}
	if ns == "" {
		ns = defaultNamespace
	}
	if kind == "" {
		return "", fmt.Errorf("entity reference %q had missing or empty kind", fmt.Sprint(v))
	}
	if name == "" {
		return "", fmt.Errorf("entity reference %q had missing or empty name", fmt.Sprint(v))
	}
	return catalog.Ref{Kind: kind, Namespace: ns, Name: name}.Key(), nil
}

// splitRef splits "[kind:][namespace/]name"; absent parts come back empty.
func splitRef(ref string) (kind, ns, name string, err error) {
	colon := strings.IndexByte(ref, ':')
	slash := strings.IndexByte(ref, '/')
	if slash != -1 && slash < colon {
		colon = -1
	}
	hasKind, hasNS := colon != -1, slash != -1
	if hasKind {
		kind = ref[:colon]
	}
	if hasNS {
		ns = ref[colon+1 : slash]
	}
	start := colon + 1
	if slash+1 > start {
		start = slash + 1
	}
	name = ref[start:]
	if (hasKind && kind == "") || (hasNS && ns == "") || name == "" {
		return "", "", "", fmt.Errorf("entity reference %q was not on the form [<kind>:][<namespace>/]<name>", ref)
	}
	return kind, ns, name, nil
}

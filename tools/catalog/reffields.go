package catalog

import (
	"slices"
	"strings"
)

// RefField is one entity-ref-valued spec field: Backstage's built-in kinds
// processor turns every ref in it into a relation from the entity
// (Outgoing) and the reverse relation on the target (Incoming).
type RefField struct {
	// Kind is the entity kind, spelled as the processor compares it.
	Kind string
	// Field is the key under spec; its value is a ref or a list of refs.
	Field string
	// DefaultKind completes refs without a kind ("" means a kind is required).
	DefaultKind string
	// Outgoing is the relation type stored on the entity.
	Outgoing string
	// Incoming is the relation type stored on the target.
	Incoming string
}

// RefFields is the one list of ref-valued spec fields, written once: the
// in-memory catalog builds relations from it, the tools apply the
// visibility rule for names of other entities through it, and the e2e
// suite checks it against the real Backstage's relation processing.
var RefFields = []RefField{
	{"Component", "owner", "Group", "ownedBy", "ownerOf"},
	{"Component", "subcomponentOf", "Component", "partOf", "hasPart"},
	{"Component", "providesApis", "API", "providesApi", "apiProvidedBy"},
	{"Component", "consumesApis", "API", "consumesApi", "apiConsumedBy"},
	{"Component", "dependsOn", "", "dependsOn", "dependencyOf"},
	{"Component", "dependencyOf", "", "dependencyOf", "dependsOn"},
	{"Component", "system", "System", "partOf", "hasPart"},
	{"API", "owner", "Group", "ownedBy", "ownerOf"},
	{"API", "system", "System", "partOf", "hasPart"},
	{"Resource", "owner", "Group", "ownedBy", "ownerOf"},
	{"Resource", "dependsOn", "", "dependsOn", "dependencyOf"},
	{"Resource", "dependencyOf", "", "dependencyOf", "dependsOn"},
	{"Resource", "system", "System", "partOf", "hasPart"},
	{"User", "memberOf", "Group", "memberOf", "hasMember"},
	{"Group", "parent", "Group", "childOf", "parentOf"},
	{"Group", "children", "Group", "parentOf", "childOf"},
	{"Group", "members", "User", "hasMember", "memberOf"},
	{"System", "owner", "Group", "ownedBy", "ownerOf"},
	{"System", "domain", "Domain", "partOf", "hasPart"},
	{"Domain", "owner", "Group", "ownedBy", "ownerOf"},
	{"Domain", "subdomainOf", "Domain", "partOf", "hasPart"},
}

// RefFieldsOf returns the ref-valued spec fields of a kind (compared
// case-insensitively, as the tools see kinds from agents). The result is
// shared: callers must not change it.
func RefFieldsOf(kind string) []RefField {
	for _, k := range refFieldsByKind {
		if strings.EqualFold(k.kind, kind) {
			return k.fields
		}
	}
	return nil
}

// kindRefFields are the ref-valued spec fields of one kind.
type kindRefFields struct {
	kind   string
	fields []RefField
}

// refFieldsByKind is RefFields grouped by kind, in RefFields' order: every
// tool call looks fields up by kind, for every entity it returns.
var refFieldsByKind = func() []kindRefFields {
	var out []kindRefFields
	for _, f := range RefFields {
		i := slices.IndexFunc(out, func(k kindRefFields) bool { return strings.EqualFold(k.kind, f.Kind) })
		if i < 0 {
			i = len(out)
			out = append(out, kindRefFields{kind: f.Kind})
		}
		out[i].fields = append(out[i].fields, f)
	}
	for i := range out {
		out[i].fields = slices.Clip(out[i].fields)
	}
	return out
}()

// IsRefField reports whether a dot path names a ref-valued spec field of
// some kind (spec.owner, spec.dependsOn, …), or a relation (relations…).
func IsRefField(path string) bool {
	p := strings.ToLower(path)
	if p == "relations" || strings.HasPrefix(p, "relations.") {
		return true
	}
	for _, f := range RefFields {
		if p == "spec."+strings.ToLower(f.Field) || strings.HasPrefix(p, "spec."+strings.ToLower(f.Field)+".") {
			return true
		}
	}
	return false
}

// ResolveRefValue completes a ref found in a spec field the way the
// processor does: defKind when the ref has no kind, the entity's
// namespace when it has none. It returns the ref in relation-target form
// (kind:namespace/name, kind and namespace lower case) and false when the
// value is not a valid ref.
func ResolveRefValue(v any, defKind, entityNamespace string) (string, bool) {
	if entityNamespace == "" {
		entityNamespace = DefaultNamespace
	}
	switch t := v.(type) {
	case string:
		s := t
		if s == "" {
			return "", false
		}
		colon := strings.IndexByte(s, ':')
		slash := strings.IndexByte(s, '/')
		if slash == -1 || (colon != -1 && slash < colon) {
			// no namespace: the entity's own
			if colon != -1 && colon < len(s) {
				s = s[:colon+1] + entityNamespace + "/" + s[colon+1:]
			} else {
				s = entityNamespace + "/" + s
			}
		}
		r, err := ParseRef(s, defKind)
		if err != nil {
			return "", false
		}
		return r.String(), true
	case map[string]any:
		kind, _ := t["kind"].(string)
		ns, _ := t["namespace"].(string)
		name, _ := t["name"].(string)
		if kind == "" {
			kind = defKind
		}
		if ns == "" {
			ns = entityNamespace
		}
		r, err := NewRef(kind, ns, name)
		if err != nil {
			return "", false
		}
		return r.String(), true
	}
	return "", false
}

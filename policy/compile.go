package policy

import (
	"fmt"
	"sort"
	"strings"
)

// Policy is a compiled policy: immutable after Compile and safe for
// concurrent use. Get one from Compile.
type Policy struct {
	toolScopes map[string]string   // tool name → required scope
	scopeMap   map[string][]string // OAuth scope → tool scopes
	roles      []*role
	warnings   []Problem
}

type role struct {
	name      string
	index     int
	bind      binding
	grants    map[string]int // tool name or scope → index in the role's tools list
	allow     []rule
	deny      []rule
	masks     []mask
	rateClass string
}

// rule is one top-level allow or deny condition, with its id for decisions.
type rule struct {
	id     string // e.g. "engineers/entities.allow[0]"
	node   *node
	reason string // precomputed Decision.Reason when this rule decides
}

func newRule(id string, n *node, verb string) rule {
	return rule{id: id, node: n, reason: verb + " by " + id + ": " + n.describe()}
}

type binding struct {
	anonymous, authenticated bool
	idpGroups                map[string]bool
	claims                   map[string]map[string]bool
	claimNames               []string
	groups                   map[string]bool // ascii-lowercased refs
	users                    map[string]bool // ascii-lowercased refs
	agents                   map[string]bool
	userSide                 bool
}

type nodeKind uint8

const (
	nodeAll nodeKind = iota
	nodeAny
	nodeNot
	nodeLeaf
)

type node struct {
	kind nodeKind
	kids []*node
	path string // relative, e.g. "allOf[1]"

	// leaf
	rule        string
	values      []string // kinds / namespaces (lowercased) or literal owner claims (lowercased)
	currentUser bool     // IS_ENTITY_OWNER with $currentUser
	ownership   bool     // IS_ENTITY_OWNER with $ownershipRefs
	key         string   // annotation, label, or metadata/spec key as written
	segs        []string // key split on '.', for HAS_METADATA / HAS_SPEC
	value       string
	hasValue    bool
}

type mask struct {
	roleName string
	index    int
	kinds    []string // lowercased; empty = all kinds
	fields   []string
}

// Compile validates doc and compiles it. On invalid input it returns a
// *ValidationError listing every problem with its field path.
func Compile(doc Document) (*Policy, error) {
	problems := Lint(doc)
	var errs, warns []Problem
	for _, p := range problems {
		if p.Severity == SeverityError {
			errs = append(errs, p)
		} else {
			warns = append(warns, p)
		}
	}
	if len(errs) > 0 {
		return nil, &ValidationError{Problems: errs}
	}
	p := &Policy{
		toolScopes: effectiveToolScopes(doc),
		scopeMap:   map[string][]string{},
		warnings:   warns,
	}
	for k, v := range doc.Scopes {
		p.scopeMap[k] = append([]string(nil), v...)
	}
	for i, r := range doc.Roles {
		cr := &role{name: r.Name, index: i, rateClass: r.RateClass, grants: map[string]int{}}
		cr.bind = compileBinding(r.Bind)
		for j, t := range r.Tools {
			if _, dup := cr.grants[t]; !dup {
				cr.grants[t] = j
			}
		}
		for j, c := range r.Entities.Allow {
			cr.allow = append(cr.allow, newRule(fmt.Sprintf("%s/entities.allow[%d]", r.Name, j), compileNode(c, ""), "allowed"))
		}
		for j, c := range r.Entities.Deny {
			cr.deny = append(cr.deny, newRule(fmt.Sprintf("%s/entities.deny[%d]", r.Name, j), compileNode(c, ""), "denied"))
		}
		for j, m := range r.FieldMasks {
			cm := mask{roleName: r.Name, index: j, fields: append([]string(nil), m.Fields...)}
			for _, k := range m.Kinds {
				cm.kinds = append(cm.kinds, asciiLower(k))
			}
			cr.masks = append(cr.masks, cm)
		}
		p.roles = append(p.roles, cr)
	}
	return p, nil
}

// Warnings returns the non-fatal problems Lint found (unreachable roles,
// scopes no agent can reach, …).
func (p *Policy) Warnings() []Problem {
	return append([]Problem(nil), p.warnings...)
}

// ToolScope returns the scope a tool requires and whether the tool is known.
func (p *Policy) ToolScope(tool string) (string, bool) {
	s, ok := p.toolScopes[tool]
	return s, ok
}

// Tools returns the names of all tools the policy knows, sorted.
func (p *Policy) Tools() []string {
	return sortedKeys(p.toolScopes)
}

// RoleNames returns the role names in document order.
func (p *Policy) RoleNames() []string {
	out := make([]string, len(p.roles))
	for i, r := range p.roles {
		out[i] = r.name
	}
	return out
}

func compileBinding(b Binding) binding {
	cb := binding{
		anonymous:     b.Anonymous,
		authenticated: b.Authenticated,
		idpGroups:     toSet(b.IdPGroups, false),
		groups:        toSet(b.BackstageGroups, true),
		users:         toSet(b.Users, true),
		agents:        toSet(b.Agents, false),
		claims:        map[string]map[string]bool{},
	}
	for k, vs := range b.Claims {
		cb.claims[k] = toSet(vs, false)
		cb.claimNames = append(cb.claimNames, k)
	}
	sort.Strings(cb.claimNames)
	cb.userSide = b.Authenticated || len(b.IdPGroups) > 0 || len(b.Claims) > 0 || len(b.BackstageGroups) > 0 || len(b.Users) > 0
	return cb
}

func toSet(vs []string, fold bool) map[string]bool {
	m := make(map[string]bool, len(vs))
	for _, v := range vs {
		if fold {
			v = asciiLower(v)
		}
		m[v] = true
	}
	return m
}

// compileNode assumes Lint accepted c.
func compileNode(c Condition, path string) *node {
	join := func(s string) string {
		if path == "" {
			return s
		}
		return path + "." + s
	}
	switch {
	case c.AllOf != nil:
		n := &node{kind: nodeAll, path: path}
		for i, k := range c.AllOf {
			n.kids = append(n.kids, compileNode(k, join(fmt.Sprintf("allOf[%d]", i))))
		}
		return n
	case c.AnyOf != nil:
		n := &node{kind: nodeAny, path: path}
		for i, k := range c.AnyOf {
			n.kids = append(n.kids, compileNode(k, join(fmt.Sprintf("anyOf[%d]", i))))
		}
		return n
	case c.Not != nil:
		return &node{kind: nodeNot, path: path, kids: []*node{compileNode(*c.Not, join("not"))}}
	}
	n := &node{kind: nodeLeaf, path: path, rule: c.Rule}
	str := func(name string) (string, bool) {
		v, ok := c.Params[name]
		if !ok {
			return "", false
		}
		s, _ := v.(string)
		return s, true
	}
	list := func(name string) []string {
		vs, _ := stringList(c.Params[name])
		return vs
	}
	switch c.Rule {
	case RuleIsEntityKind:
		for _, k := range list("kinds") {
			n.values = append(n.values, asciiLower(k))
		}
	case RuleInNamespace:
		for _, k := range list("namespaces") {
			n.values = append(n.values, asciiLower(k))
		}
	case RuleIsEntityOwner:
		for _, k := range list("claims") {
			switch k {
			case ClaimCurrentUser:
				n.currentUser = true
			case ClaimOwnershipRefs:
				n.ownership = true
			default:
				n.values = append(n.values, asciiLower(k))
			}
		}
	case RuleHasAnnotation:
		n.key, _ = str("annotation")
		n.value, n.hasValue = str("value")
	case RuleHasLabel:
		n.key, _ = str("label")
	case RuleHasMetadata, RuleHasSpec:
		n.key, _ = str("key")
		n.segs = strings.Split(n.key, ".")
		n.value, n.hasValue = str("value")
	}
	return n
}

// describe renders a node as a short human-readable condition.
func (n *node) describe() string {
	switch n.kind {
	case nodeAll, nodeAny:
		op := "allOf"
		if n.kind == nodeAny {
			op = "anyOf"
		}
		parts := make([]string, len(n.kids))
		for i, k := range n.kids {
			parts[i] = k.describe()
		}
		return op + "(" + strings.Join(parts, ", ") + ")"
	case nodeNot:
		return "not(" + n.kids[0].describe() + ")"
	}
	switch n.rule {
	case RuleIsEntityKind:
		return fmt.Sprintf("IS_ENTITY_KIND{kinds: %v}", n.values)
	case RuleInNamespace:
		return fmt.Sprintf("IN_NAMESPACE{namespaces: %v}", n.values)
	case RuleIsEntityOwner:
		claims := append([]string(nil), n.values...)
		if n.currentUser {
			claims = append(claims, ClaimCurrentUser)
		}
		if n.ownership {
			claims = append(claims, ClaimOwnershipRefs)
		}
		return fmt.Sprintf("IS_ENTITY_OWNER{claims: %v}", claims)
	case RuleHasAnnotation:
		if n.hasValue {
			return fmt.Sprintf("HAS_ANNOTATION{annotation: %q, value: %q}", n.key, n.value)
		}
		return fmt.Sprintf("HAS_ANNOTATION{annotation: %q}", n.key)
	case RuleHasLabel:
		return fmt.Sprintf("HAS_LABEL{label: %q}", n.key)
	default:
		if n.hasValue {
			return fmt.Sprintf("%s{key: %q, value: %q}", n.rule, n.key, n.value)
		}
		return fmt.Sprintf("%s{key: %q}", n.rule, n.key)
	}
}

// asciiLower lowercases ASCII letters only. Two strings equal after
// asciiLower are equal after any Unicode lowercasing too (Backstage's
// included), which keeps the post-filter never wider than Backstage's index.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// foldEq reports whether a and b differ at most in ASCII letter case.
func foldEq(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if x >= 'A' && x <= 'Z' {
			x += 'a' - 'A'
		}
		if y >= 'A' && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

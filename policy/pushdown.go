package policy

import (
	"sort"
	"strings"

	"github.com/backstage-mcp/backstage-mcp/policy/filter"
)

// Clause is one Backstage catalog filter (one `filter=` query parameter):
// its entries are ANDed; the values of one key are ORed; an empty value
// list means "the key exists". Keys are lowercase dot paths. Its grammar
// and encoding (Clause.Encode) are package filter's, shared with the
// catalog client.
type Clause = filter.Clause

// Pushdown is the part of a grant's entity conditions that Backstage's
// catalog filters can express. It is always a superset of the entities the
// grant allows; Grant.Entity must still check every fetched entity.
type Pushdown struct {
	// None means the grant allows no entity at all: answer with nothing and
	// do not call Backstage.
	None bool
	// All means no restriction could be expressed: the user's own filters
	// are used unchanged and the post-filter does all the work.
	All bool
	// Clauses are ORed; meaningful when neither None nor All is set.
	Clauses []Clause
}

// Limits on clause growth. Beyond them the pushdown falls back to a wider
// (still correct) query and the post-filter does the rest.
const (
	maxPolicyClauses   = 64
	maxCombinedClauses = 256
)

// Pushdown returns the grant's entity restriction as Backstage filters.
func (g *Grant) Pushdown() Pushdown {
	out := g.pushdown
	out.Clauses = make([]Clause, len(g.pushdown.Clauses))
	for i, c := range g.pushdown.Clauses {
		out.Clauses[i] = c.Clone()
	}
	return out
}

type dnf struct {
	all bool     // true: no restriction
	cl  []Clause // ORed; empty and !all: nothing matches
}

func (g *Grant) computePushdown() Pushdown {
	if !g.hasAllow {
		return Pushdown{None: true}
	}
	var parts []dnf
	for _, r := range g.allow {
		parts = append(parts, g.toDNF(r.node, false))
	}
	d := orDNF(parts)
	if d.all {
		return Pushdown{All: true}
	}
	// Kinds that are denied outright (top-level IS_ENTITY_KIND deny rules,
	// and User without catalog:read:users) are removed from kind lists: an
	// entity of such a kind is never visible, so this stays a superset.
	denied := map[string]bool{}
	if !g.usersAllowed {
		denied["user"] = true
	}
	for _, r := range g.deny {
		if r.node.kind == nodeLeaf && r.node.rule == RuleIsEntityKind {
			for _, k := range r.node.values {
				denied[k] = true
			}
		}
	}
	var kept []Clause
	for _, c := range d.cl {
		if kinds, ok := c["kind"]; ok && len(kinds) > 0 && len(denied) > 0 {
			var rest []string
			for _, k := range kinds {
				if !denied[asciiLower(k)] {
					rest = append(rest, k)
				}
			}
			if len(rest) == 0 {
				continue
			}
			c = c.Clone()
			c["kind"] = rest
		}
		kept = append(kept, c)
	}
	kept = dedupe(kept)
	if len(kept) == 0 {
		return Pushdown{None: true}
	}
	return Pushdown{Clauses: kept}
}

// toDNF returns an upper approximation of n (or of not n when neg) in
// disjunctive normal form. Negated leaves cannot be expressed (Backstage
// filters have no negation) and become "no restriction".
func (g *Grant) toDNF(n *node, neg bool) dnf {
	switch n.kind {
	case nodeNot:
		return g.toDNF(n.kids[0], !neg)
	case nodeAll, nodeAny:
		parts := make([]dnf, len(n.kids))
		for i, k := range n.kids {
			parts[i] = g.toDNF(k, neg)
		}
		if (n.kind == nodeAll) != neg {
			return andDNF(parts)
		}
		return orDNF(parts)
	}
	if neg {
		return dnf{all: true}
	}
	return g.leafDNF(n)
}

var dnfAll = dnf{all: true}

func (g *Grant) leafDNF(n *node) dnf {
	valuesClause := func(key string, vals []string) dnf {
		if !pushableKey(key) {
			return dnfAll
		}
		var keep []string
		for _, v := range vals {
			if len(v) > maxIndexedLen {
				continue // never matches, here or in Backstage
			}
			if !validValue(v) {
				return dnfAll
			}
			keep = append(keep, v)
		}
		if len(keep) == 0 {
			return dnf{}
		}
		return dnf{cl: []Clause{{key: sortUnique(keep)}}}
	}
	existsClause := func(key string) dnf {
		if !pushableKey(key) {
			return dnfAll
		}
		return dnf{cl: []Clause{{key: nil}}}
	}
	switch n.rule {
	case RuleIsEntityKind:
		return valuesClause("kind", n.values)
	case RuleInNamespace:
		return valuesClause("metadata.namespace", n.values)
	case RuleIsEntityOwner:
		refs := append([]string(nil), n.values...)
		if n.currentUser && g.userRef != "" {
			refs = append(refs, g.userRef)
		}
		if n.ownership {
			refs = append(refs, g.ownList...)
		}
		return valuesClause("relations.ownedby", refs)
	case RuleHasAnnotation, RuleHasLabel:
		prefix := "metadata.annotations."
		if n.rule == RuleHasLabel {
			prefix = "metadata.labels."
		}
		key := prefix + asciiLower(n.key)
		if !isASCII(n.key) {
			return dnfAll
		}
		if n.hasValue {
			if d := valuesClause(key, []string{n.value}); !d.all {
				return d
			}
			return existsClause(key)
		}
		return existsClause(key)
	case RuleHasMetadata, RuleHasSpec:
		prefix := "metadata."
		if n.rule == RuleHasSpec {
			prefix = "spec."
		}
		if !isASCII(n.key) {
			return dnfAll
		}
		key := prefix + asciiLower(n.key)
		if key == "metadata.etag" || strings.HasPrefix(key, "metadata.etag.") {
			return dnfAll // not in Backstage's search index
		}
		if n.hasValue {
			if d := valuesClause(key, []string{n.value}); !d.all {
				return d
			}
		}
		return existsClause(key)
	}
	return dnfAll
}

func orDNF(parts []dnf) dnf {
	var out dnf
	for _, p := range parts {
		if p.all {
			return dnfAll
		}
		out.cl = append(out.cl, p.cl...)
	}
	out.cl = dedupe(out.cl)
	if len(out.cl) > maxPolicyClauses {
		return dnfAll
	}
	return out
}

func andDNF(parts []dnf) dnf {
	acc := dnfAll
	for _, p := range parts {
		if p.all {
			continue
		}
		if acc.all {
			acc = p
			continue
		}
		if len(acc.cl)*len(p.cl) > maxPolicyClauses {
			continue // leaving this conjunct out keeps a superset
		}
		var next []Clause
		for _, a := range acc.cl {
			for _, b := range p.cl {
				if m, ok := mergeClauses(a, b); ok {
					next = append(next, m)
				}
			}
		}
		acc = dnf{cl: dedupe(next)}
		if len(acc.cl) == 0 {
			return acc
		}
	}
	return acc
}

// singleValuedKey reports whether Backstage's index holds at most one value
// per entity for key, so that "key in A and key in B" is "key in A∩B".
func singleValuedKey(key string) bool {
	switch key {
	case "kind", "apiversion", "metadata.name", "metadata.namespace", "metadata.uid":
		return true
	}
	return strings.HasPrefix(key, "metadata.annotations.") || strings.HasPrefix(key, "metadata.labels.")
}

// mergeClauses ANDs b into a. It returns false when the conjunction
// certainly matches nothing. When the conjunction cannot be expressed in
// one clause (a multi-valued key constrained on both sides), a's values are
// kept: the result is wider than the conjunction, never narrower, and a's
// own constraint is kept exactly.
func mergeClauses(a, b Clause) (Clause, bool) {
	out := a.Clone()
	for k, bv := range b {
		av, ok := out[k]
		switch {
		case !ok:
			out[k] = append([]string(nil), bv...)
		case len(av) == 0:
			out[k] = append([]string(nil), bv...)
		case len(bv) == 0:
			// a already requires a value, which implies existence
		case singleValuedKey(k) && allASCII(av) && allASCII(bv):
			var inter []string
			for _, x := range av {
				if containsFold(bv, x) {
					inter = append(inter, x)
				}
			}
			if len(inter) == 0 {
				return nil, false
			}
			out[k] = inter
		default:
			// keep a's values
		}
	}
	return out, true
}

func allASCII(vs []string) bool {
	for _, v := range vs {
		if !isASCII(v) {
			return false
		}
	}
	return true
}

// canonical is a deterministic rendering used to sort and dedupe clauses.
func canonical(c Clause) string {
	keys := sortedKeys(c)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(0)
		}
		b.WriteString(k)
		vs := sortUnique(c[k])
		for _, v := range vs {
			b.WriteByte(1)
			b.WriteString(v)
		}
	}
	return b.String()
}

func dedupe(cs []Clause) []Clause {
	seen := make(map[string]bool, len(cs))
	type kc struct {
		k string
		c Clause
	}
	var keep []kc
	for _, c := range cs {
		k := canonical(c)
		if seen[k] {
			continue
		}
		seen[k] = true
		keep = append(keep, kc{k, c})
	}
	sort.Slice(keep, func(i, j int) bool { return keep[i].k < keep[j].k })
	out := make([]Clause, len(keep))
	for i, x := range keep {
		out[i] = x.c
	}
	return out
}

func sortUnique(vs []string) []string {
	if len(vs) == 0 {
		return vs
	}
	out := append([]string(nil), vs...)
	sort.Strings(out)
	j := 0
	for i := range out {
		if i == 0 || out[i] != out[j-1] {
			out[j] = out[i]
			j++
		}
	}
	return out[:j]
}

// Combine ANDs the policy's pushdown into the user's filter clauses.
// Backstage ORs separate filter parameters, so the policy cannot be added as
// one more parameter; instead every user clause Ui is merged with every
// policy clause Pj and each Ui∧Pj becomes its own parameter. Clauses whose
// conjunction is certainly empty (a single-valued key such as kind with
// disjoint values) are dropped.
//
// User keys are lowercased (ASCII) and keys that collide after lowercasing
// are ANDed, as Backstage would read them.
//
// Results: empty=true means nothing can match: return no entities without
// calling Backstage. Otherwise clauses are the filters to send; nil clauses
// with empty=false means "no filter" (every entity, still post-filtered).
// The order is deterministic. When the product would exceed an internal
// bound, the user's clauses are returned alone (wider, still correct after
// the post-filter).
func Combine(user []Clause, p Pushdown) (clauses []Clause, empty bool) {
	if p.None {
		return nil, true
	}
	var norm []Clause
	for _, u := range user {
		n, ok := normalizeUser(u)
		if !ok {
			continue // this user clause can match nothing
		}
		if len(n) == 0 {
			norm = nil // an empty clause matches everything: the OR is everything
			user = nil
			break
		}
		norm = append(norm, n)
	}
	if len(user) > 0 && len(norm) == 0 {
		return nil, true
	}
	if p.All || len(p.Clauses) == 0 {
		if p.All {
			return dedupe(norm), false
		}
		return nil, true // defensive: a pushdown with no clauses allows nothing
	}
	if len(norm) == 0 {
		out := make([]Clause, len(p.Clauses))
		for i, c := range p.Clauses {
			out[i] = c.Clone()
		}
		return dedupe(out), false
	}
	if len(norm)*len(p.Clauses) > maxCombinedClauses {
		return dedupe(norm), false
	}
	var out []Clause
	for _, u := range norm {
		for _, pc := range p.Clauses {
			if m, ok := mergeClauses(u, pc); ok {
				out = append(out, m)
			}
		}
	}
	if len(out) == 0 {
		return nil, true
	}
	return dedupe(out), false
}

// normalizeUser lowercases keys and ANDs keys that collide.
func normalizeUser(u Clause) (Clause, bool) {
	out := Clause{}
	for _, k := range sortedKeys(u) {
		lk := asciiLower(k)
		part := Clause{lk: u[k]}
		if len(u[k]) == 0 {
			part[lk] = nil
		}
		m, ok := mergeClauses(out, part)
		if !ok {
			return nil, false
		}
		out = m
	}
	return out, true
}

// pushableKey reports whether a condition's key can be sent as a filter
// key as it is: in the filter grammar, and lowercase (the post-filter
// compares keys exactly; Backstage does not).
func pushableKey(k string) bool {
	return filter.CheckKey(k) == nil && k == asciiLower(k)
}

// validValue reports whether v can be sent as a filter value.
func validValue(v string) bool { return filter.CheckValue(v) == nil }

// Exact reports whether Pushdown expresses the grant's entity rights
// completely, so that counts Backstage computes over the pushed-down query
// (totalItems, facets) count only entities the subject may see. It is
// deliberately narrow: no deny rules, User entities allowed, and every
// allow condition built only from IS_ENTITY_KIND, IN_NAMESPACE and
// IS_ENTITY_OWNER with plain ASCII values, combined with allOf/anyOf.
// Anything else (HAS_* value semantics, not, non-ASCII values) is treated
// as inexact. Callers must additionally treat a user filter that
// constrains a key the pushdown also constrains, other than kind and
// metadata.namespace, as inexact (see Combine).
func (g *Grant) Exact() bool { return g.exact }

func (g *Grant) computeExact() bool {
	if !g.hasAllow || len(g.deny) > 0 || !g.usersAllowed {
		return g.pushdown.None
	}
	for _, r := range g.allow {
		if !g.exactNode(r.node) {
			return false
		}
	}
	return true
}

func (g *Grant) exactNode(n *node) bool {
	switch n.kind {
	case nodeAll, nodeAny:
		for _, k := range n.kids {
			if !g.exactNode(k) {
				return false
			}
		}
		return true
	case nodeNot:
		return false
	}
	switch n.rule {
	case RuleIsEntityKind, RuleInNamespace, RuleIsEntityOwner:
		vals := append([]string(nil), n.values...)
		if n.currentUser {
			vals = append(vals, g.userRef)
		}
		if n.ownership {
			vals = append(vals, g.ownList...)
		}
		for _, v := range vals {
			if !isASCII(v) || !validValue(v) || len(v) > maxIndexedLen {
				return false
			}
		}
		return true
	}
	return false
}

// VisibleByRef decides whether an entity of this kind and namespace is
// visible without fetching it, when the grant's rules look at nothing
// else: decided is true only for exact grants whose allow conditions are
// built from IS_ENTITY_KIND and IN_NAMESPACE alone.
func (g *Grant) VisibleByRef(kind, namespace string) (visible, decided bool) {
	if !g.byRef {
		return false, false
	}
	if !validKind(kind) {
		return false, true // malformed: never visible
	}
	if namespace == "" {
		namespace = "default"
	}
	v := entityView{kind: kind, namespace: namespace}
	return g.decide(&v).Allowed, true
}

// computeByRef reports whether VisibleByRef decides: an exact grant whose
// allow conditions read kinds and namespaces only.
func (g *Grant) computeByRef() bool {
	if !g.exact {
		return false
	}
	for _, r := range g.allow {
		if !kindNamespaceOnly(r.node) {
			return false
		}
	}
	return true
}

func kindNamespaceOnly(n *node) bool {
	switch n.kind {
	case nodeAll, nodeAny:
		for _, k := range n.kids {
			if !kindNamespaceOnly(k) {
				return false
			}
		}
		return true
	case nodeNot:
		return false
	}
	return n.rule == RuleIsEntityKind || n.rule == RuleInNamespace
}

// ForScan returns the pushdown with the conditions Backstage evaluates
// slowly and that select most of a catalog left to the post-filter: a
// namespace condition naming several namespaces, "default" among them
// (measured on a real Backstage with 10,000 entities, such a condition
// costs a 20-result search 7–14% of its time, more than one valued
// namespace condition, while "default" holds most entities of most
// catalogs). The result is wider than the grant's pushdown, never
// narrower, so it serves queries whose count is not shown and whose every
// entity is re-checked after fetch; use Pushdown itself wherever
// Backstage's counts are shown (see Exact).
func (p Pushdown) ForScan() Pushdown {
	if p.None || p.All {
		return p
	}
	out := Pushdown{Clauses: make([]Clause, 0, len(p.Clauses))}
	for _, c := range p.Clauses {
		c = c.Clone()
		if ns := c["metadata.namespace"]; len(ns) > 1 && containsFold(ns, "default") {
			delete(c, "metadata.namespace")
		}
		if len(c) == 0 {
			return Pushdown{All: true} // a clause without conditions selects everything
		}
		out.Clauses = append(out.Clauses, c)
	}
	out.Clauses = dedupe(out.Clauses)
	return out
}

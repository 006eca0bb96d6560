package policy

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Subject is who is asking: the user, the agent acting for them, and the
// agent token's scopes. The server fills it from the verified token and the
// resolved Backstage identity.
type Subject struct {
	// UserRef is the user's Backstage entity ref, e.g. user:default/jane.
	UserRef string
	// Email is the user's e-mail (informational here).
	Email string
	// Sub is the token subject (informational here).
	Sub string
	// IdPGroups is the groups claim of the token.
	IdPGroups []string
	// Claims holds other token claims usable in role bindings.
	Claims map[string][]string
	// OwnershipRefs is the user ref plus the user's transitive Backstage
	// groups, as full refs.
	OwnershipRefs []string
	// ClientID is the agent's OAuth client ID (azp / client_id).
	ClientID string
	// Scopes are the OAuth scopes granted to the agent's token.
	Scopes []string
	// FallbackRole, when set, is the one role the subject holds, whatever
	// the bindings say: a verified user who resolved to no Backstage entity
	// and was let in under the configured fallback role.
	FallbackRole string
	// Authenticated is true when the identity was verified. False means
	// anonymous (demo mode): only roles bound with anonymous: true apply.
	Authenticated bool
}

// Decision is the answer to one question, with why.
type Decision struct {
	Allowed bool
	// Reason is a human sentence.
	Reason string
	// Rule identifies the rule behind the decision, e.g.
	// "engineers/tools[0]", "everyone/entities.deny[1]", "default-deny".
	Rule string
}

// Rule ids of decisions not made by a rule of the document.
const (
	RuleDefaultDeny     = "default-deny"
	RuleUnknownTool     = "unknown-tool"
	RuleAgentScope      = "agent-scope"
	RuleUsersScope      = "scope/" + ScopeReadUsers
	RuleMalformedEntity = "malformed-entity"
)

// Grant is the effective right of one subject: the union of what its matched
// roles grant, intersected with its agent token's scopes. Compute it once per
// call with Policy.Grant; it is immutable and safe for concurrent use.
type Grant struct {
	p            *Policy
	roles        []*role
	roleWhy      []string
	tokenScopes  map[string]bool
	intersect    bool // false for anonymous subjects: no token to intersect with
	tools        map[string]Decision
	usersAllowed bool
	usersRule    string
	userRef      string          // ascii-lowercased
	ownership    map[string]bool // ascii-lowercased
	ownList      []string        // sorted ownership refs (for pushdown)
	hasAllow     bool
	allow        []rule
	deny         []rule
	masks        []mask
	rateClass    string
	pushdown     Pushdown
	exact        bool // Exact
	byRef        bool // VisibleByRef decides
	readsOnce    sync.Once
	reads        []string // ReadFields
}

// Grant computes the effective grant of s.
func (p *Policy) Grant(s Subject) *Grant {
	g := &Grant{p: p, tools: map[string]Decision{}, tokenScopes: map[string]bool{}, ownership: map[string]bool{}}
	g.intersect = s.Authenticated
	for _, r := range p.roles {
		if s.FallbackRole != "" {
			if r.name == s.FallbackRole {
				g.roles = append(g.roles, r)
				g.roleWhy = append(g.roleWhy, "fallback role for a user with no Backstage entity")
			}
			continue
		}
		if ok, why := r.bind.match(s); ok {
			g.roles = append(g.roles, r)
			g.roleWhy = append(g.roleWhy, why)
		}
	}
	if s.Authenticated {
		for _, sc := range s.Scopes {
			for _, ts := range p.scopeMap[sc] {
				g.tokenScopes[ts] = true
			}
		}
		g.userRef = asciiLower(s.UserRef)
		for _, o := range s.OwnershipRefs {
			g.ownership[asciiLower(o)] = true
		}
		if s.UserRef != "" {
			g.ownership[g.userRef] = true
		}
		g.ownList = sortedSet(g.ownership)
	}
	for tool, scope := range p.toolScopes {
		g.tools[tool] = g.decideTool(tool, scope)
	}
	g.usersAllowed, g.usersRule = g.decideScope(ScopeReadUsers)
	for _, r := range g.roles {
		g.allow = append(g.allow, r.allow...)
		g.deny = append(g.deny, r.deny...)
		g.masks = append(g.masks, r.masks...)
		if g.rateClass == "" {
			g.rateClass = r.rateClass
		}
	}
	g.hasAllow = len(g.allow) > 0
	if g.rateClass == "" {
		g.rateClass = DefaultRateClass
	}
	g.pushdown = g.computePushdown()
	g.exact = g.computeExact()
	g.byRef = g.computeByRef()
	return g
}

// DefaultRateClass is the rate class of a grant whose roles set none.
const DefaultRateClass = "default"

func (b *binding) match(s Subject) (bool, string) {
	if !s.Authenticated {
		if b.anonymous {
			return true, "anonymous: true"
		}
		return false, "subject is not authenticated"
	}
	userOK, why := false, ""
	switch {
	case b.authenticated:
		userOK, why = true, "authenticated: true"
	default:
		for _, g := range s.IdPGroups {
			if b.idpGroups[g] {
				userOK, why = true, "idpGroups: "+g
				break
			}
		}
		if !userOK && s.UserRef != "" && b.users[asciiLower(s.UserRef)] {
			userOK, why = true, "users: "+s.UserRef
		}
		if !userOK {
			for _, o := range s.OwnershipRefs {
				if b.groups[asciiLower(o)] {
					userOK, why = true, "backstageGroups: "+o
					break
				}
			}
		}
		if !userOK && len(b.claimNames) > 0 {
			all := true
			var parts []string
			for _, name := range b.claimNames {
				hit := ""
				for _, v := range s.Claims[name] {
					if b.claims[name][v] {
						hit = v
						break
					}
				}
				if hit == "" {
					all = false
					break
				}
				parts = append(parts, name+"="+hit)
			}
			if all {
				userOK, why = true, "claims: "+strings.Join(parts, ", ")
			}
		}
	}
	if len(b.agents) == 0 {
		if !userOK {
			return false, "no binding matches"
		}
		return true, why
	}
	if !b.agents[s.ClientID] {
		return false, fmt.Sprintf("agent %q is not listed", s.ClientID)
	}
	if !b.userSide {
		return true, "agents: " + s.ClientID
	}
	if !userOK {
		return false, "agent listed but no user binding matches"
	}
	return true, why + " and agents: " + s.ClientID
}

// decideScope reports whether a matched role grants the scope and the token
// allows it.
func (g *Grant) decideScope(scope string) (bool, string) {
	for _, r := range g.roles {
		if j, ok := r.grants[scope]; ok {
			if g.intersect && !g.tokenScopes[scope] {
				return false, RuleAgentScope
			}
			return true, fmt.Sprintf("%s/tools[%d]", r.name, j)
		}
	}
	return false, RuleDefaultDeny
}

func (g *Grant) decideTool(tool, scope string) Decision {
	if len(g.roles) == 0 {
		return Decision{Reason: "no role matches this subject (default deny)", Rule: RuleDefaultDeny}
	}
	via := ""
	for _, r := range g.roles {
		if j, ok := r.grants[tool]; ok {
			via = fmt.Sprintf("%s/tools[%d]", r.name, j)
			break
		}
		if j, ok := r.grants[scope]; ok {
			via = fmt.Sprintf("%s/tools[%d]", r.name, j)
			break
		}
	}
	if via == "" {
		return Decision{Reason: fmt.Sprintf("no matched role grants tool %s or its scope %s", tool, scope), Rule: RuleDefaultDeny}
	}
	if g.intersect && !g.tokenScopes[scope] {
		return Decision{Reason: fmt.Sprintf("granted by %s, but the agent's token scopes do not include %s", via, scope), Rule: RuleAgentScope}
	}
	return Decision{Allowed: true, Reason: fmt.Sprintf("granted by %s (scope %s)", via, scope), Rule: via}
}

// AllowsTool decides whether the subject may call the named tool.
func (g *Grant) AllowsTool(name string) Decision {
	d, ok := g.tools[name]
	if !ok {
		return Decision{Reason: fmt.Sprintf("unknown tool %q", name), Rule: RuleUnknownTool}
	}
	return d
}

// AllowedTools returns the names of the tools the subject may call, sorted.
func (g *Grant) AllowedTools() []string {
	var out []string
	for name, d := range g.tools {
		if d.Allowed {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// HasScope reports whether the effective grant includes a tool scope
// (granted by a matched role and allowed by the token).
func (g *Grant) HasScope(scope string) bool {
	ok, _ := g.decideScope(scope)
	return ok
}

// Roles returns the names of the matched roles, in document order.
func (g *Grant) Roles() []string {
	out := make([]string, len(g.roles))
	for i, r := range g.roles {
		out[i] = r.name
	}
	return out
}

// RateClass returns the rate class: that of the first matched role that
// sets one, else DefaultRateClass.
func (g *Grant) RateClass() string { return g.rateClass }

// entityView caches the parts of an entity the rules read.
type entityView struct {
	kind      string // as written; compare with foldEq
	namespace string // as written, "default" when absent; compare with foldEq
	metadata  map[string]any
	spec      map[string]any
	relations []any
}

func viewOf(e map[string]any) (entityView, bool) {
	var v entityView
	kind, _ := e["kind"].(string)
	if !validKind(kind) {
		return v, false
	}
	v.kind = kind
	v.metadata, _ = e["metadata"].(map[string]any)
	if v.metadata == nil {
		return v, false
	}
	v.namespace = "default"
	if ns, ok := v.metadata["namespace"].(string); ok && ns != "" {
		v.namespace = ns
	}
	v.spec, _ = e["spec"].(map[string]any)
	v.relations, _ = e["relations"].([]any)
	return v, true
}

// Entity decides whether the subject may see entity e (decoded Backstage
// entity JSON). Deny rules are checked first and override allow rules.
// A malformed entity (no valid kind or no metadata) is never visible.
func (g *Grant) Entity(e map[string]any) Decision {
	v, ok := viewOf(e)
	if !ok {
		return Decision{Reason: "entity has no valid kind or metadata", Rule: RuleMalformedEntity}
	}
	return g.decide(&v)
}

// decide is Entity on the parts of a well-formed entity the rules read.
func (g *Grant) decide(v *entityView) Decision {
	if !g.hasAllow {
		return Decision{Reason: "no matched role has an entity allow rule (default deny)", Rule: RuleDefaultDeny}
	}
	if !g.usersAllowed && foldEq(v.kind, "user") {
		return Decision{Reason: "User entities need scope " + ScopeReadUsers, Rule: RuleUsersScope}
	}
	for _, r := range g.deny {
		if g.eval(r.node, v) {
			return Decision{Reason: r.reason, Rule: r.id}
		}
	}
	for _, r := range g.allow {
		if g.eval(r.node, v) {
			return Decision{Allowed: true, Reason: r.reason, Rule: r.id}
		}
	}
	return Decision{Reason: "no entity allow rule matches (default deny)", Rule: RuleDefaultDeny}
}

func (g *Grant) eval(n *node, v *entityView) bool {
	switch n.kind {
	case nodeAll:
		for _, k := range n.kids {
			if !g.eval(k, v) {
				return false
			}
		}
		return true
	case nodeAny:
		for _, k := range n.kids {
			if g.eval(k, v) {
				return true
			}
		}
		return false
	case nodeNot:
		return !g.eval(n.kids[0], v)
	}
	return g.leaf(n, v)
}

// maxIndexedLen is Backstage's search-index limit on keys and values
// (MAX_KEY_LENGTH / MAX_VALUE_LENGTH, in UTF-16 units; a byte length ≤ 200
// guarantees it). Longer values are stored without a value, so value
// conditions on them never match, here as in Backstage's index.
const maxIndexedLen = 200

func (g *Grant) leaf(n *node, v *entityView) bool {
	switch n.rule {
	case RuleIsEntityKind:
		return containsFold(n.values, v.kind)
	case RuleInNamespace:
		return containsFold(n.values, v.namespace)
	case RuleIsEntityOwner:
		for _, r := range v.relations {
			rel, _ := r.(map[string]any)
			typ, _ := rel["type"].(string)
			target, _ := rel["targetRef"].(string)
			if !foldEq(typ, "ownedBy") || target == "" || len(target) > maxIndexedLen {
				continue
			}
			if containsFold(n.values, target) || (n.currentUser && g.userRef != "" && foldEq(target, g.userRef)) || (n.ownership && containsFold(g.ownList, target)) {
				return true
			}
		}
		return false
	case RuleHasAnnotation, RuleHasLabel:
		field := "annotations"
		if n.rule == RuleHasLabel {
			field = "labels"
		}
		m, _ := v.metadata[field].(map[string]any)
		val, ok := m[n.key]
		if !ok || !indexedScalar(val) {
			return false
		}
		if !n.hasValue {
			return true
		}
		s, isStr := val.(string)
		return isStr && s == n.value && len(s) <= maxIndexedLen
	case RuleHasMetadata:
		return propertyMatch(v.metadata, n)
	case RuleHasSpec:
		return propertyMatch(v.spec, n)
	}
	return false
}

// propertyMatch follows Backstage's HAS_METADATA / HAS_SPEC semantics,
// restricted to what Backstage's search index can also see (so pushdown is
// never narrower than this check).
func propertyMatch(root map[string]any, n *node) bool {
	var cur any = root
	for _, s := range n.segs {
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		cur, ok = m[s]
		if !ok {
			return false
		}
	}
	if arr, ok := cur.([]any); ok {
		for _, el := range arr {
			if n.hasValue {
				if s, ok := el.(string); ok && s == n.value && len(s) <= maxIndexedLen {
					return true
				}
			} else if indexedScalar(el) {
				return true
			}
		}
		return false
	}
	if n.hasValue {
		s, ok := cur.(string)
		return ok && s == n.value && len(s) <= maxIndexedLen
	}
	switch t := cur.(type) {
	case string:
		return t != ""
	case bool:
		return t
	case float64:
		return t != 0
	case int:
		return t != 0
	case int64:
		return t != 0
	}
	return false
}

// indexedScalar reports whether Backstage's index stores a row for v itself.
func indexedScalar(v any) bool {
	switch v.(type) {
	case nil, string, bool, float64, float32, int, int64, int32, uint, uint64:
		return true
	}
	// json.Number and other named string types
	_, ok := v.(interface{ String() string })
	return ok
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if foldEq(x, s) {
			return true
		}
	}
	return false
}

// MaskFields returns a deep copy of e with every field matched by a field
// mask of a matched role removed, and how many fields were removed. The
// input is never modified. When no mask applies to e's kind, nothing is
// removed and e itself is returned, not a copy: a caller that modifies the
// result owns e.
func (g *Grant) MaskFields(e map[string]any) (map[string]any, int) {
	kind, _ := e["kind"].(string)
	kind = asciiLower(kind)
	var pats []string
	for _, m := range g.masks {
		if len(m.kinds) > 0 && !containsFold(m.kinds, kind) {
			continue
		}
		pats = append(pats, m.fields...)
	}
	if len(pats) == 0 {
		return e, 0
	}
	n := 0
	out, _ := maskValue(e, "", pats, &n).(map[string]any)
	return out, n
}

func maskValue(v any, path string, pats []string, n *int) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, child := range t {
			p := k
			if path != "" {
				p = path + "." + k
			}
			if matchAny(pats, p) {
				*n++
				continue
			}
			out[k] = maskValue(child, p, pats, n)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, child := range t {
			out[i] = maskValue(child, path, pats, n)
		}
		return out
	}
	return v
}

func matchAny(pats []string, p string) bool {
	for _, pat := range pats {
		if globMatch(pat, p) {
			return true
		}
	}
	return false
}

// globMatch matches s against pattern where '*' matches any run of
// characters (including '.') and every other character matches itself.
func globMatch(pattern, s string) bool {
	px, sx := 0, 0
	nextPx, nextSx := -1, -1
	for px < len(pattern) || sx < len(s) {
		if px < len(pattern) {
			c := pattern[px]
			if c == '*' {
				nextPx, nextSx = px, sx+1
				px++
				continue
			}
			if sx < len(s) && s[sx] == c {
				px++
				sx++
				continue
			}
		}
		if nextPx >= 0 && nextSx <= len(s) {
			px, sx = nextPx, nextSx
			continue
		}
		return false
	}
	return true
}

// HasFieldMasks reports whether any field mask applies to the subject, so
// callers know that values computed outside MaskFields (such as facet
// counts from Backstage) could reveal masked fields.
func (g *Grant) HasFieldMasks() bool { return len(g.masks) > 0 }

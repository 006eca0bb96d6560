package policy

import (
	"fmt"
	"sort"
	"strings"
)

// Tool scopes known to the policy. A tool is granted by its name or by its
// scope; ScopeReadUsers is not the scope of any tool: it governs whether User
// entities (and their profile fields) are visible at all.
const (
	ScopeRead           = "catalog:read"
	ScopeAPIDefinitions = "catalog:api-definitions"
	ScopeReadUsers      = "catalog:read:users"
)

// DefaultToolScopes returns the public tools of backstage-mcp and the scope
// each requires. The returned map is a fresh copy the caller may modify.
func DefaultToolScopes() map[string]string {
	return map[string]string{
		"catalog_get_entity":         ScopeRead,
		"catalog_search_entities":    ScopeRead,
		"catalog_get_relations":      ScopeRead,
		"catalog_find_owner":         ScopeRead,
		"catalog_find_dependents":    ScopeRead,
		"catalog_get_api_definition": ScopeAPIDefinitions,
		"catalog_list_facets":        ScopeRead,
		"catalog_list_changes":       ScopeRead,
		"whoami":                     ScopeRead,
	}
}

// Document is the decoded policy model: plain data, as written by an admin
// (see doc.md). Compile validates it and turns it into a Policy. The
// policyfile package decodes it from YAML.
type Document struct {
	// Version must be 1.
	Version int `json:"version"`
	// Scopes maps an OAuth scope found in the agent's token to the tool
	// scopes it unlocks. A token scope not listed here unlocks nothing.
	Scopes map[string][]string `json:"scopes,omitempty"`
	// ToolScopes adds or overrides tool → scope entries on top of
	// DefaultToolScopes (for tools added after this package was written).
	ToolScopes map[string]string `json:"toolScopes,omitempty"`
	// Roles are evaluated in order; order matters only for the rate class
	// (the first matched role that sets one wins).
	Roles []Role `json:"roles"`
}

// Role binds subjects to grants.
type Role struct {
	// Name identifies the role in decisions, audit records and explain
	// output. Required, unique, letters, digits, '-', '_' and '.'.
	Name string `json:"name"`
	// Bind says who holds the role.
	Bind Binding `json:"bind"`
	// Tools lists tool names and/or tool scopes the role grants.
	Tools []string `json:"tools,omitempty"`
	// Entities holds the entity allow and deny rules.
	Entities EntityRules `json:"entities,omitempty"`
	// FieldMasks lists fields removed from every entity the role's members see.
	FieldMasks []FieldMask `json:"fieldMasks,omitempty"`
	// RateClass names the rate-limit class of the role's members.
	RateClass string `json:"rateClass,omitempty"`
}

// Binding selects the subjects that hold a role. The user-side selectors
// (Authenticated, IdPGroups, Claims, BackstageGroups, Users) are ORed: any
// one that matches binds the subject. Agents, when set, further restricts
// the role to those agent client IDs; when Agents is the only selector, the
// role binds any authenticated subject acting through those agents.
// Anonymous binds unauthenticated subjects (demo mode) and nothing else.
type Binding struct {
	// Anonymous binds subjects without a verified identity (demo mode only).
	Anonymous bool `json:"anonymous,omitempty"`
	// Authenticated binds every authenticated subject ("everyone").
	Authenticated bool `json:"authenticated,omitempty"`
	// IdPGroups matches the groups claim of the user's token.
	IdPGroups []string `json:"idpGroups,omitempty"`
	// Claims matches token claims: every listed claim must carry one of
	// the listed values.
	Claims map[string][]string `json:"claims,omitempty"`
	// BackstageGroups matches the user's resolved (transitive) Backstage
	// group membership, as full refs like group:default/team-a.
	BackstageGroups []string `json:"backstageGroups,omitempty"`
	// Users matches the user's Backstage entity ref, like user:default/jane.
	Users []string `json:"users,omitempty"`
	// Agents matches the agent's OAuth client ID (azp / client_id).
	Agents []string `json:"agents,omitempty"`
}

// EntityRules holds a role's entity conditions. An entity is visible when
// some allow condition of some matched role matches it and no deny condition
// of any matched role does.
type EntityRules struct {
	Allow []Condition `json:"allow,omitempty"`
	Deny  []Condition `json:"deny,omitempty"`
}

// Condition is one node of a condition tree: exactly one of AllOf, AnyOf,
// Not or Rule is set. Params holds the rule's parameters; values are string
// or []string ([]any holding strings is accepted too).
type Condition struct {
	AllOf  []Condition    `json:"allOf,omitempty"`
	AnyOf  []Condition    `json:"anyOf,omitempty"`
	Not    *Condition     `json:"not,omitempty"`
	Rule   string         `json:"rule,omitempty"`
	Params map[string]any `json:"params,omitempty"`
}

// FieldMask removes fields from entities. Fields are dot paths from the
// entity root; '*' matches any run of characters (dots included), so
// "metadata.annotations.vault.*" masks every annotation whose key starts
// with "vault.". Kinds, when set, limits the mask to entities of those kinds.
type FieldMask struct {
	Kinds  []string `json:"kinds,omitempty"`
	Fields []string `json:"fields"`
}

// Rule names, exactly as Backstage's catalog permission rules spell them
// (IN_NAMESPACE is this project's namespace condition).
const (
	RuleIsEntityKind  = "IS_ENTITY_KIND"
	RuleIsEntityOwner = "IS_ENTITY_OWNER"
	RuleHasAnnotation = "HAS_ANNOTATION"
	RuleHasLabel      = "HAS_LABEL"
	RuleHasMetadata   = "HAS_METADATA"
	RuleHasSpec       = "HAS_SPEC"
	RuleInNamespace   = "IN_NAMESPACE"
)

// Special IS_ENTITY_OWNER claims, resolved per subject.
const (
	ClaimCurrentUser   = "$currentUser"
	ClaimOwnershipRefs = "$ownershipRefs"
)

type paramSpec struct {
	name     string
	list     bool
	required bool
}

var ruleSpecs = map[string][]paramSpec{
	RuleIsEntityKind:  {{name: "kinds", list: true, required: true}},
	RuleIsEntityOwner: {{name: "claims", list: true, required: true}},
	RuleHasAnnotation: {{name: "annotation", required: true}, {name: "value"}},
	RuleHasLabel:      {{name: "label", required: true}},
	RuleHasMetadata:   {{name: "key", required: true}, {name: "value"}},
	RuleHasSpec:       {{name: "key", required: true}, {name: "value"}},
	RuleInNamespace:   {{name: "namespaces", list: true, required: true}},
}

// RuleNames returns the known rule names, sorted.
func RuleNames() []string {
	out := make([]string, 0, len(ruleSpecs))
	for k := range ruleSpecs {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// RuleParams returns the parameter names a rule accepts, and whether the
// rule is known.
func RuleParams(rule string) ([]string, bool) {
	spec, ok := ruleSpecs[rule]
	if !ok {
		return nil, false
	}
	out := make([]string, len(spec))
	for i, s := range spec {
		out[i] = s.name
	}
	return out, true
}

// Severity grades a Problem.
type Severity int

// Severities.
const (
	SeverityError Severity = iota
	SeverityWarning
)

// String returns "error" or "warning".
func (s Severity) String() string {
	if s == SeverityWarning {
		return "warning"
	}
	return "error"
}

// Problem is one finding of Lint: a field path such as
// "roles[1].entities.allow[0]" and a message.
type Problem struct {
	Severity Severity
	Path     string
	Message  string
}

// String formats the problem as "path: message".
func (p Problem) String() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}

// ValidationError is returned by Compile when the document has errors.
// Problems holds every error found (warnings are not included).
type ValidationError struct {
	Problems []Problem
}

// Error lists the problems, one per line, prefixed with "policy: ".
func (e *ValidationError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString("policy: ")
		b.WriteString(p.String())
	}
	return b.String()
}

// maxConditionDepth bounds the nesting of condition trees.
const maxConditionDepth = 32

type linter struct {
	problems   []Problem
	toolScopes map[string]string
	knownScope map[string]bool
}

func (l *linter) errorf(path, format string, args ...any) {
	l.problems = append(l.problems, Problem{Severity: SeverityError, Path: path, Message: fmt.Sprintf(format, args...)})
}

func (l *linter) warnf(path, format string, args ...any) {
	l.problems = append(l.problems, Problem{Severity: SeverityWarning, Path: path, Message: fmt.Sprintf(format, args...)})
}

// effectiveToolScopes merges DefaultToolScopes with doc.ToolScopes.
func effectiveToolScopes(doc Document) map[string]string {
	ts := DefaultToolScopes()
	for k, v := range doc.ToolScopes {
		ts[k] = v
	}
	return ts
}

// Lint validates a document and returns every error and warning, in
// document order. Compile fails exactly when Lint reports an error.
func Lint(doc Document) []Problem {
	l := &linter{toolScopes: effectiveToolScopes(doc), knownScope: map[string]bool{ScopeReadUsers: true}}
	for name, s := range doc.ToolScopes {
		if !validName(name) {
			l.errorf("toolScopes."+name, "tool name %q must use letters, digits, '_', '-', '.'", name)
		}
		if !validScope(s) {
			l.errorf("toolScopes."+name, "scope %q must be non-empty printable ASCII without spaces", s)
		}
	}
	for _, s := range l.toolScopes {
		l.knownScope[s] = true
	}
	if doc.Version != 1 {
		l.errorf("version", "unsupported version %d (expected 1)", doc.Version)
	}
	reachable := map[string]bool{}
	for _, oauth := range sortedKeys(doc.Scopes) {
		path := "scopes." + oauth
		if strings.TrimSpace(oauth) == "" {
			l.errorf("scopes", "empty OAuth scope name")
		}
		if len(doc.Scopes[oauth]) == 0 {
			l.warnf(path, "maps to no tool scope")
		}
		for i, ts := range doc.Scopes[oauth] {
			if !l.knownScope[ts] {
				l.errorf(fmt.Sprintf("%s[%d]", path, i), "unknown tool scope %q (expected one of %s)", ts, strings.Join(sortedSet(l.knownScope), ", "))
			}
			reachable[ts] = true
		}
	}
	if len(doc.Scopes) == 0 {
		l.warnf("scopes", "no OAuth scope is mapped: authenticated agents will see no tools")
	}
	if len(doc.Roles) == 0 {
		l.warnf("roles", "no roles: everything is denied")
	}
	names := map[string]int{}
	for i, r := range doc.Roles {
		l.role(i, r, names, reachable)
	}
	return l.problems
}

func (l *linter) role(i int, r Role, names map[string]int, reachable map[string]bool) {
	path := fmt.Sprintf("roles[%d]", i)
	switch {
	case r.Name == "":
		l.errorf(path+".name", "a role needs a name")
	case !validName(r.Name):
		l.errorf(path+".name", "role name %q must use letters, digits, '_', '-', '.'", r.Name)
	default:
		if j, dup := names[r.Name]; dup {
			l.errorf(path+".name", "duplicate role name %q (also roles[%d])", r.Name, j)
		} else {
			names[r.Name] = i
		}
	}
	l.binding(path+".bind", r.Bind)
	for j, t := range r.Tools {
		tp := fmt.Sprintf("%s.tools[%d]", path, j)
		if _, isTool := l.toolScopes[t]; isTool {
			if !reachable[l.toolScopes[t]] && !r.Bind.isOnlyAnonymous() {
				l.warnf(tp, "tool %q needs scope %q, which no OAuth scope maps to", t, l.toolScopes[t])
			}
			continue
		}
		if l.knownScope[t] {
			if !reachable[t] && !r.Bind.isOnlyAnonymous() {
				l.warnf(tp, "scope %q is mapped from no OAuth scope: no agent can use it", t)
			}
			continue
		}
		l.errorf(tp, "unknown tool or scope %q (expected a tool name: %s; or a scope: %s)", t,
			strings.Join(sortedKeys(l.toolScopes), ", "), strings.Join(sortedSet(l.knownScope), ", "))
	}
	for j, c := range r.Entities.Allow {
		l.condition(fmt.Sprintf("%s.entities.allow[%d]", path, j), c, 0)
	}
	for j, c := range r.Entities.Deny {
		l.condition(fmt.Sprintf("%s.entities.deny[%d]", path, j), c, 0)
	}
	for j, m := range r.FieldMasks {
		mp := fmt.Sprintf("%s.fieldMasks[%d]", path, j)
		if len(m.Fields) == 0 {
			l.errorf(mp+".fields", "a field mask needs at least one field")
		}
		for k, f := range m.Fields {
			if !validFieldPattern(f) {
				l.errorf(fmt.Sprintf("%s.fields[%d]", mp, k), "invalid field path %q (dot path from the entity root, '*' as wildcard, no empty segments)", f)
			}
		}
		for k, kind := range m.Kinds {
			if !validKind(kind) {
				l.errorf(fmt.Sprintf("%s.kinds[%d]", mp, k), "invalid kind %q", kind)
			}
		}
	}
	if r.RateClass != "" && !validName(r.RateClass) {
		l.errorf(path+".rateClass", "rate class %q must use letters, digits, '_', '-', '.'", r.RateClass)
	}
	if len(r.Tools) == 0 && len(r.Entities.Allow) == 0 && len(r.Entities.Deny) == 0 && len(r.FieldMasks) == 0 && r.RateClass == "" {
		l.warnf(path, "role %q grants nothing", r.Name)
	}
}

func (b Binding) isOnlyAnonymous() bool {
	return b.Anonymous && !b.Authenticated && len(b.IdPGroups) == 0 && len(b.Claims) == 0 &&
		len(b.BackstageGroups) == 0 && len(b.Users) == 0 && len(b.Agents) == 0
}

func (l *linter) binding(path string, b Binding) {
	bound := b.Anonymous || b.Authenticated || len(b.IdPGroups) > 0 || len(b.BackstageGroups) > 0 ||
		len(b.Users) > 0 || len(b.Agents) > 0
	for _, k := range sortedKeys(b.Claims) {
		if len(b.Claims[k]) > 0 {
			bound = true
		} else {
			l.warnf(path+".claims."+k, "claim %q lists no value: it matches nobody", k)
		}
		if k == "" {
			l.errorf(path+".claims", "empty claim name")
		}
	}
	if !bound {
		l.warnf(path, "unreachable role: it binds no subject")
	}
	for i, g := range b.BackstageGroups {
		if !validRef(g, "group") {
			l.errorf(fmt.Sprintf("%s.backstageGroups[%d]", path, i), "%q is not a full group ref (expected group:<namespace>/<name>, e.g. group:default/team-a)", g)
		}
	}
	for i, u := range b.Users {
		if !validRef(u, "user") {
			l.errorf(fmt.Sprintf("%s.users[%d]", path, i), "%q is not a full user ref (expected user:<namespace>/<name>, e.g. user:default/jane)", u)
		}
	}
	for i, s := range b.IdPGroups {
		if s == "" {
			l.errorf(fmt.Sprintf("%s.idpGroups[%d]", path, i), "empty group name")
		}
	}
	for i, s := range b.Agents {
		if s == "" {
			l.errorf(fmt.Sprintf("%s.agents[%d]", path, i), "empty agent client ID")
		}
	}
}

func (l *linter) condition(path string, c Condition, depth int) {
	if depth > maxConditionDepth {
		l.errorf(path, "conditions nested deeper than %d", maxConditionDepth)
		return
	}
	set := 0
	if c.AllOf != nil {
		set++
	}
	if c.AnyOf != nil {
		set++
	}
	if c.Not != nil {
		set++
	}
	if c.Rule != "" {
		set++
	}
	if set != 1 {
		l.errorf(path, "a condition needs exactly one of allOf, anyOf, not or a rule (%s)", strings.Join(RuleNames(), ", "))
		return
	}
	switch {
	case c.AllOf != nil:
		if len(c.AllOf) == 0 {
			l.errorf(path+".allOf", "allOf needs at least one condition")
		}
		for i, k := range c.AllOf {
			l.condition(fmt.Sprintf("%s.allOf[%d]", path, i), k, depth+1)
		}
	case c.AnyOf != nil:
		if len(c.AnyOf) == 0 {
			l.errorf(path+".anyOf", "anyOf needs at least one condition")
		}
		for i, k := range c.AnyOf {
			l.condition(fmt.Sprintf("%s.anyOf[%d]", path, i), k, depth+1)
		}
	case c.Not != nil:
		l.condition(path+".not", *c.Not, depth+1)
	default:
		l.rule(path, c)
	}
}

func (l *linter) rule(path string, c Condition) {
	spec, ok := ruleSpecs[c.Rule]
	if !ok {
		l.errorf(path, "unknown rule %q (expected one of %s)", c.Rule, strings.Join(RuleNames(), ", "))
		return
	}
	rp := path + "." + c.Rule
	known := map[string]paramSpec{}
	for _, s := range spec {
		known[s.name] = s
	}
	for _, k := range sortedKeys(c.Params) {
		if _, ok := known[k]; !ok {
			names, _ := RuleParams(c.Rule)
			l.errorf(rp+"."+k, "unknown parameter %q for %s (expected %s)", k, c.Rule, strings.Join(names, ", "))
		}
	}
	for _, s := range spec {
		v, present := c.Params[s.name]
		pp := rp + "." + s.name
		if !present {
			if s.required {
				l.errorf(rp, "%s needs parameter %q", c.Rule, s.name)
			}
			continue
		}
		if s.list {
			vals, ok := stringList(v)
			if !ok {
				l.errorf(pp, "expected a list of strings")
				continue
			}
			if len(vals) == 0 {
				l.errorf(pp, "needs at least one value")
			}
			for i, val := range vals {
				l.ruleValue(fmt.Sprintf("%s[%d]", pp, i), c.Rule, val)
			}
			continue
		}
		str, ok := v.(string)
		if !ok {
			l.errorf(pp, "expected a string")
			continue
		}
		if str == "" && s.name != "value" {
			l.errorf(pp, "must not be empty")
		}
		if s.name == "key" && !validKeyPath(str) {
			l.errorf(pp, "invalid key %q (a dot path with no empty segments)", str)
		}
	}
}

func (l *linter) ruleValue(path, rule, v string) {
	switch rule {
	case RuleIsEntityKind:
		if !validKind(v) {
			l.errorf(path, "invalid kind %q (letters and digits, e.g. component)", v)
		}
	case RuleInNamespace:
		if !validName(v) {
			l.errorf(path, "invalid namespace %q", v)
		}
	case RuleIsEntityOwner:
		if v == ClaimCurrentUser || v == ClaimOwnershipRefs {
			return
		}
		if strings.HasPrefix(v, "$") {
			l.errorf(path, "unknown special claim %q (expected %s or %s)", v, ClaimCurrentUser, ClaimOwnershipRefs)
			return
		}
		if !validRef(v, "") {
			l.errorf(path, "%q is not a full entity ref (expected kind:namespace/name, e.g. group:default/team-a, or %s, %s)", v, ClaimCurrentUser, ClaimOwnershipRefs)
		}
	}
}

// stringList accepts []string or []any of strings.
func stringList(v any) ([]string, bool) {
	switch t := v.(type) {
	case []string:
		return t, true
	case []any:
		out := make([]string, 0, len(t))
		for _, e := range t {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	return nil, false
}

func validName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

func validKind(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i, r := range s {
		letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if !letter && (i == 0 || !(r >= '0' && r <= '9')) {
			return false
		}
	}
	return true
}

func validScope(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r > '~' {
			return false
		}
	}
	return true
}

// validRef checks kind:namespace/name with each part a valid name; kind, if
// given, must match case-insensitively.
func validRef(s, kind string) bool {
	k, rest, ok := strings.Cut(s, ":")
	if !ok {
		return false
	}
	ns, name, ok := strings.Cut(rest, "/")
	if !ok {
		return false
	}
	if !validKind(k) || !validName(ns) || !validName(name) {
		return false
	}
	return kind == "" || strings.EqualFold(k, kind)
}

func validKeyPath(s string) bool {
	if s == "" || len(s) > 1024 {
		return false
	}
	for _, seg := range strings.Split(s, ".") {
		if seg == "" {
			return false
		}
	}
	return true
}

func validFieldPattern(s string) bool {
	if !validKeyPath(s) {
		return false
	}
	for _, r := range s {
		if r < ' ' || r == 0x7f {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		if v {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

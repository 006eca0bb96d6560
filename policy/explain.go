package policy

import (
	"fmt"
	"sort"
	"strings"
)

// Explanation is the full reasoning behind a decision, for admins
// (backstage-mcp policy explain) and audit. String renders it.
type Explanation struct {
	// Allowed is the overall answer: the tool is allowed and, when an
	// entity was given, the entity is visible.
	Allowed bool
	// Roles lists every role of the policy, matched or not, and why.
	Roles []RoleTrace
	// TokenScopes are the OAuth scopes of the token and the tool scopes
	// they map to.
	TokenScopes []string
	ToolScopes  []string
	// Anonymous is true for an unauthenticated subject.
	Anonymous bool
	// CurrentUser and OwnershipRefs are what $currentUser and
	// $ownershipRefs resolve to for this subject.
	CurrentUser   string
	OwnershipRefs []string
	// Tool and ToolDecision answer for the tool (empty Tool: not asked).
	Tool         string
	ToolDecision Decision
	// Entity answers for the entity, when one was given.
	EntityRef      string
	EntityGiven    bool
	EntityDecision Decision
	// EntityRules lists each entity rule of the matched roles, evaluated.
	EntityRules []RuleTrace
	// Masks lists the field masks that apply to the entity (or, without an
	// entity, to any entity).
	Masks []string
	// MaskedFields counts the fields the masks would remove from the entity.
	MaskedFields int
	// RateClass is the grant's rate class.
	RateClass string
	// Pushdown shows the catalog filters the grant pushes to Backstage.
	Pushdown string
}

// RoleTrace says whether one role matched the subject.
type RoleTrace struct {
	Name    string
	Matched bool
	Why     string
}

// RuleTrace is one evaluated entity rule.
type RuleTrace struct {
	Rule      string // e.g. "engineers/entities.deny[0]"
	Effect    string // "allow" or "deny"
	Condition string
	Matched   bool
}

// Explain decides for subject s, tool (may be empty) and entity (may be
// nil) and records the chain of roles and rules behind the answer.
func (p *Policy) Explain(s Subject, tool string, entity map[string]any) Explanation {
	g := p.Grant(s)
	x := Explanation{Anonymous: !s.Authenticated, RateClass: g.RateClass(), Tool: tool}
	for _, r := range p.roles {
		ok, why := r.bind.match(s)
		x.Roles = append(x.Roles, RoleTrace{Name: r.name, Matched: ok, Why: why})
	}
	x.TokenScopes = append([]string(nil), s.Scopes...)
	x.CurrentUser = g.userRef
	x.OwnershipRefs = append([]string(nil), g.ownList...)
	x.ToolScopes = sortedSet(g.tokenScopes)
	allowed := true
	if tool != "" {
		x.ToolDecision = g.AllowsTool(tool)
		allowed = x.ToolDecision.Allowed
	}
	if entity != nil {
		x.EntityGiven = true
		x.EntityRef = entityRef(entity)
		x.EntityDecision = g.Entity(entity)
		allowed = allowed && x.EntityDecision.Allowed
		if v, ok := viewOf(entity); ok {
			for _, r := range g.deny {
				x.EntityRules = append(x.EntityRules, RuleTrace{Rule: r.id, Effect: "deny", Condition: r.node.describe(), Matched: g.eval(r.node, &v)})
			}
			for _, r := range g.allow {
				x.EntityRules = append(x.EntityRules, RuleTrace{Rule: r.id, Effect: "allow", Condition: r.node.describe(), Matched: g.eval(r.node, &v)})
			}
		}
		_, x.MaskedFields = g.MaskFields(entity)
	} else {
		for _, r := range g.deny {
			x.EntityRules = append(x.EntityRules, RuleTrace{Rule: r.id, Effect: "deny", Condition: r.node.describe()})
		}
		for _, r := range g.allow {
			x.EntityRules = append(x.EntityRules, RuleTrace{Rule: r.id, Effect: "allow", Condition: r.node.describe()})
		}
	}
	kind := ""
	if entity != nil {
		kind, _ = entity["kind"].(string)
	}
	for _, m := range g.masks {
		if entity != nil && len(m.kinds) > 0 && !containsFold(m.kinds, asciiLower(kind)) {
			continue
		}
		desc := fmt.Sprintf("%s/fieldMasks[%d]: %s", m.roleName, m.index, strings.Join(m.fields, ", "))
		if len(m.kinds) > 0 {
			desc += " (kinds: " + strings.Join(m.kinds, ", ") + ")"
		}
		x.Masks = append(x.Masks, desc)
	}
	x.Pushdown = describePushdown(g.Pushdown())
	x.Allowed = allowed
	return x
}

func describePushdown(p Pushdown) string {
	switch {
	case p.None:
		return "nothing (no entity can be visible; Backstage is not called)"
	case p.All:
		return "no restriction expressible (the post-filter decides)"
	}
	parts := make([]string, 0, len(p.Clauses))
	for _, c := range p.Clauses {
		s, err := c.Encode()
		if err != nil {
			s = "<" + err.Error() + ">"
		}
		parts = append(parts, "filter="+s)
	}
	return strings.Join(parts, "  OR  ")
}

func entityRef(e map[string]any) string {
	kind, _ := e["kind"].(string)
	md, _ := e["metadata"].(map[string]any)
	ns, _ := md["namespace"].(string)
	name, _ := md["name"].(string)
	if ns == "" {
		ns = "default"
	}
	return strings.ToLower(kind) + ":" + ns + "/" + name
}

// String renders the explanation for a terminal.
func (x Explanation) String() string {
	var b strings.Builder
	verdict := "DENY"
	if x.Allowed {
		verdict = "ALLOW"
	}
	fmt.Fprintf(&b, "decision: %s\n", verdict)
	if x.Anonymous {
		b.WriteString("subject: anonymous (unauthenticated; only anonymous roles apply, no token scopes to intersect)\n")
	}
	b.WriteString("\nroles:\n")
	if len(x.Roles) == 0 {
		b.WriteString("  (none defined)\n")
	}
	for _, r := range x.Roles {
		mark := "  -"
		if r.Matched {
			mark = "  +"
		}
		fmt.Fprintf(&b, "%s %s: %s\n", mark, r.Name, r.Why)
	}
	if !x.Anonymous {
		fmt.Fprintf(&b, "\n$currentUser: %s\n$ownershipRefs: %s\n", orNone(x.CurrentUser), listOrNone(x.OwnershipRefs))
		fmt.Fprintf(&b, "\ntoken scopes: %s\n  map to tool scopes: %s\n", listOrNone(x.TokenScopes), listOrNone(x.ToolScopes))
	}
	if x.Tool != "" {
		fmt.Fprintf(&b, "\ntool %s: %s\n  %s\n  rule: %s\n", x.Tool, verdictWord(x.ToolDecision.Allowed), x.ToolDecision.Reason, x.ToolDecision.Rule)
	}
	if x.EntityGiven {
		fmt.Fprintf(&b, "\nentity %s: %s\n  %s\n  rule: %s\n", x.EntityRef, verdictWord(x.EntityDecision.Allowed), x.EntityDecision.Reason, x.EntityDecision.Rule)
	}
	if len(x.EntityRules) > 0 {
		b.WriteString("\nentity rules of the matched roles (deny first; deny overrides allow):\n")
		for _, r := range x.EntityRules {
			status := ""
			if x.EntityGiven {
				status = " → no match"
				if r.Matched {
					status = " → MATCH"
				}
			}
			fmt.Fprintf(&b, "  %-5s %s: %s%s\n", r.Effect, r.Rule, r.Condition, status)
		}
	} else {
		b.WriteString("\nentity rules: none (no entity is visible)\n")
	}
	if len(x.Masks) > 0 {
		b.WriteString("\nfield masks:\n")
		for _, m := range x.Masks {
			fmt.Fprintf(&b, "  %s\n", m)
		}
		if x.EntityGiven {
			fmt.Fprintf(&b, "  fields removed from this entity: %d\n", x.MaskedFields)
		}
	}
	fmt.Fprintf(&b, "\ncatalog pushdown: %s\n", x.Pushdown)
	fmt.Fprintf(&b, "rate class: %s\n", x.RateClass)
	return b.String()
}

func verdictWord(ok bool) string {
	if ok {
		return "allowed"
	}
	return "denied"
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func listOrNone(xs []string) string {
	if len(xs) == 0 {
		return "(none)"
	}
	ys := append([]string(nil), xs...)
	sort.Strings(ys)
	return strings.Join(ys, ", ")
}

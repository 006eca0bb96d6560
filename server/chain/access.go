package chain

import (
	"fmt"
	"strings"

	"github.com/backstage-mcp/backstage-mcp/policy"
	"github.com/backstage-mcp/backstage-mcp/server/audit"
	"github.com/backstage-mcp/backstage-mcp/server/identity"
	"github.com/backstage-mcp/backstage-mcp/tools"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
)

// Who is the one mapping of a principal to the audit record's user and
// agent: every record that names a caller (calls, sessions, refused
// requests) takes it from here.
func Who(p *identity.Principal) (audit.User, audit.Agent) {
	if p == nil {
		return audit.User{}, audit.Agent{}
	}
	return audit.User{Sub: p.User.Sub, Email: p.User.Email, Ref: p.User.Ref, Issuer: p.Issuer, TokenID: p.TokenID},
		audit.Agent{ClientID: p.Agent.ClientID, Name: p.Agent.ClientName, Version: p.Agent.ClientVersion}
}

// Subject maps a principal to the policy's view of it.
func Subject(p *identity.Principal) policy.Subject {
	claims := map[string][]string{}
	for k, v := range p.User.Claims {
		switch x := v.(type) {
		case string:
			claims[k] = []string{x}
		case []any:
			for _, it := range x {
				if s, ok := it.(string); ok {
					claims[k] = append(claims[k], s)
				}
			}
		case bool:
			claims[k] = []string{fmt.Sprint(x)}
		}
	}
	return policy.Subject{
		UserRef:       p.User.Ref,
		Email:         p.User.Email,
		Sub:           p.User.Sub,
		IdPGroups:     p.User.Groups,
		Claims:        claims,
		OwnershipRefs: p.User.OwnershipRefs,
		ClientID:      p.Agent.ClientID,
		Scopes:        p.Scopes,
		FallbackRole:  p.FallbackRole,
		Authenticated: !p.Insecure,
	}
}

// IdentityOf is what whoami shows.
func IdentityOf(p *identity.Principal, g *policy.Grant) tools.Identity {
	mode := "oidc"
	if p.Insecure {
		mode = "insecure-local-user"
	}
	agent := strings.TrimSpace(p.Agent.ClientName + " " + p.Agent.ClientVersion)
	return tools.Identity{
		User:          p.User.Ref,
		Subject:       p.User.Sub,
		Email:         p.User.Email,
		Name:          p.User.Name,
		Groups:        p.User.Groups,
		OwnershipRefs: p.User.OwnershipRefs,
		Agent:         p.Agent.ClientID,
		AgentName:     agent,
		Scopes:        p.Scopes,
		Tools:         g.AllowedTools(),
		Roles:         g.Roles(),
		ExpiresAt:     p.ExpiresAt,
		Mode:          mode,
	}
}

// Access adapts a policy grant to what the tools need.
type Access struct{ G *policy.Grant }

var _ tools.Access = Access{}

// Constrain ANDs the grant's pushdown into every user clause.
func (a Access) Constrain(user []catalog.Filter) ([]catalog.Filter, bool, bool) {
	pd := a.G.Pushdown()
	exact := a.G.Exact()
	for _, f := range user {
		for k := range f {
			lk := strings.ToLower(k)
			if lk == "kind" || lk == "metadata.namespace" {
				continue
			}
			for _, pc := range pd.Clauses {
				if _, ok := pc[lk]; ok {
					exact = false // Combine keeps only the user's values for this key
				}
			}
		}
	}
	// catalog.Filter and policy.Clause are one type (filter.Clause).
	clauses, empty := policy.Combine(user, pd)
	if empty {
		return nil, true, true
	}
	return clauses, false, exact
}

// ConstrainScan ANDs the grant's scan pushdown (policy.Pushdown.ForScan)
// into every user clause.
func (a Access) ConstrainScan(user []catalog.Filter) ([]catalog.Filter, bool) {
	clauses, empty := policy.Combine(user, a.G.Pushdown().ForScan())
	if empty {
		return nil, true
	}
	return clauses, false
}

// Visible re-checks one entity.
func (a Access) Visible(e map[string]any) bool { return a.G.Entity(e).Allowed }

// Mask removes masked fields.
func (a Access) Mask(e map[string]any) map[string]any {
	m, _ := a.G.MaskFields(e)
	return m
}

// VisibleRef decides from the ref alone when the grant allows it.
func (a Access) VisibleRef(ref string) (bool, bool) {
	r, err := catalog.ParseRef(ref, "")
	if err != nil {
		return false, true
	}
	return a.G.VisibleByRef(r.Kind, r.Namespace)
}

// Masks reports whether the grant masks any field.
func (a Access) Masks() bool { return a.G.HasFieldMasks() }

// Reads returns the fields the grant's conditions and masks read.
func (a Access) Reads() ([]string, bool) { return a.G.ReadFields(), true }

// callAccess is Access for one call: Visible also tells the call's
// CallInfo which rule withheld an entity, for its audit record. It is one
// pointer (to the call's Scope), so handing it to the tools in an
// interface costs no allocation.
type callAccess struct{ sc *Scope }

var _ tools.Access = callAccess{}

func (a callAccess) acc() Access { return Access{G: a.sc.Grant} }

// Constrain is Access.Constrain.
func (a callAccess) Constrain(user []catalog.Filter) ([]catalog.Filter, bool, bool) {
	return a.acc().Constrain(user)
}

// ConstrainScan is Access.ConstrainScan.
func (a callAccess) ConstrainScan(user []catalog.Filter) ([]catalog.Filter, bool) {
	return a.acc().ConstrainScan(user)
}

// Visible is Access.Visible, noting the rule of a refusal.
func (a callAccess) Visible(e map[string]any) bool {
	d := a.sc.Grant.Entity(e)
	if !d.Allowed {
		a.sc.call.NoteHiddenRule(d.Rule)
	}
	return d.Allowed
}

// Mask is Access.Mask.
func (a callAccess) Mask(e map[string]any) map[string]any { return a.acc().Mask(e) }

// VisibleRef is Access.VisibleRef.
func (a callAccess) VisibleRef(ref string) (bool, bool) { return a.acc().VisibleRef(ref) }

// Masks is Access.Masks.
func (a callAccess) Masks() bool { return a.acc().Masks() }

// Reads is Access.Reads.
func (a callAccess) Reads() ([]string, bool) { return a.acc().Reads() }

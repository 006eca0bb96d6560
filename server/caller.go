package server

import (
	"context"
	"errors"
	"fmt"
	"github.com/backstage-mcp/backstage-mcp/redact"
	"strings"

	"github.com/backstage-mcp/backstage-mcp/policy"
	"github.com/backstage-mcp/backstage-mcp/server/identity"
	"github.com/backstage-mcp/backstage-mcp/tools"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	mcpserver "github.com/mark3labs/mcp-go/server"
)

var errNoIdentity = errors.New("server: no verified identity for this call")

// principal returns who the call runs as: the verified bearer token's
// principal on HTTP, else the transport's local principal (the stored
// login on stdio, or the loudly named insecure demo user). The MCP
// clientInfo of the session is added to a copy.
func (s *Server) principal(ctx context.Context) (*identity.Principal, error) {
	var p *identity.Principal
	if hp, ok := identity.FromContext(ctx); ok && hp != nil {
		p = hp
	} else if s.opts.LocalPrincipal != nil {
		lp, err := s.opts.LocalPrincipal(ctx)
		if err != nil {
			return nil, err
		}
		p = lp
	}
	if p == nil {
		return nil, errNoIdentity
	}
	cp := *p
	if sess := mcpserver.ClientSessionFromContext(ctx); sess != nil {
		if ci, ok := sess.(mcpserver.SessionWithClientInfo); ok {
			info := ci.GetClientInfo()
			cp.Agent.ClientName, cp.Agent.ClientVersion = redact.Clip(info.Name, 128), redact.Clip(info.Version, 64)
		}
	}
	return &cp, nil
}

// subject maps a principal to the policy's view of it.
func subject(p *identity.Principal) policy.Subject {
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

// identityOf is what whoami shows.
func identityOf(p *identity.Principal, g *policy.Grant) tools.Identity {
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

// grantAccess adapts a policy grant to what the tools need.
type grantAccess struct{ g *policy.Grant }

var _ tools.Access = grantAccess{}

// Constrain ANDs the grant's pushdown into every user clause.
func (a grantAccess) Constrain(user []catalog.Filter) ([]catalog.Filter, bool, bool) {
	pd := a.g.Pushdown()
	uc := make([]policy.Clause, len(user))
	exact := a.g.Exact()
	for i, f := range user {
		uc[i] = policy.Clause(f)
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
	clauses, empty := policy.Combine(uc, pd)
	if empty {
		return nil, true, true
	}
	out := make([]catalog.Filter, len(clauses))
	for i, c := range clauses {
		out[i] = catalog.Filter(c)
	}
	return out, false, exact
}

// ConstrainScan ANDs the grant's scan pushdown (policy.Pushdown.ForScan)
// into every user clause.
func (a grantAccess) ConstrainScan(user []catalog.Filter) ([]catalog.Filter, bool) {
	uc := make([]policy.Clause, len(user))
	for i, f := range user {
		uc[i] = policy.Clause(f)
	}
	clauses, empty := policy.Combine(uc, a.g.Pushdown().ForScan())
	if empty {
		return nil, true
	}
	out := make([]catalog.Filter, len(clauses))
	for i, c := range clauses {
		out[i] = catalog.Filter(c)
	}
	return out, false
}

// Visible re-checks one entity.
func (a grantAccess) Visible(e map[string]any) bool { return a.g.Entity(e).Allowed }

// Mask removes masked fields.
func (a grantAccess) Mask(e map[string]any) map[string]any {
	m, _ := a.g.MaskFields(e)
	return m
}

// VisibleRef decides from the ref alone when the grant allows it.
func (a grantAccess) VisibleRef(ref string) (bool, bool) {
	r, err := catalog.ParseRef(ref, "")
	if err != nil {
		return false, true
	}
	return a.g.VisibleByRef(r.Kind, r.Namespace)
}

// Masks reports whether the grant masks any field.
func (a grantAccess) Masks() bool { return a.g.HasFieldMasks() }

// Reads returns the fields the grant's conditions and masks read.
func (a grantAccess) Reads() ([]string, bool) { return a.g.ReadFields(), true }

// grantFor computes the grant of a principal under the current policy.
func (s *Server) grantFor(p *identity.Principal) (*policy.Grant, string) {
	pol, ver := s.opts.Policy.Current()
	return pol.Grant(subject(p)), ver
}

package server

import (
	"context"
	"errors"
	"github.com/backstage-mcp/backstage-mcp/redact"

	"github.com/backstage-mcp/backstage-mcp/policy"
	"github.com/backstage-mcp/backstage-mcp/server/chain"
	"github.com/backstage-mcp/backstage-mcp/server/identity"
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

// grantFor computes the grant of a principal under the current policy.
func (s *Server) grantFor(p *identity.Principal) (*policy.Grant, string) {
	pol, ver := s.opts.Policy.Current()
	return pol.Grant(chain.Subject(p)), ver
}

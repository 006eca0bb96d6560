package server

import (
	"context"
	"math"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/chain"
	"github.com/backstage-mcp/backstage-mcp/tools"
	"github.com/mark3labs/mcp-go/mcp"
)

// newChain builds the call chain (package chain) from the server's parts:
// its grant, limiter, tools, egress and audit trail. door.go is where
// calls enter it.
func (s *Server) newChain() *chain.Chain {
	return &chain.Chain{
		Transport: s.opts.Transport,
		Grant:     s.grant,
		Limiter:   s.opts.Limiter,
		Known: func(name string) bool {
			_, ok := s.tools[name]
			return ok
		},
		Arguments: s.redactedArgs,
		Decorate:  s.withCatalogMeta,
		Egress:    s.egressResult,
		Finish:    s.finishCall,
		RateLimited: func(tool, limit string) {
			s.metrics.rateLimited(metricTool(s.tools, tool), limit)
		},
		Log:    s.log,
		Now:    s.opts.Now,
		Tracer: s.opts.Tracing.Tracer(),
	}
}

// grant computes the principal and its grant under the policy in force:
// the call's scope.
func (s *Server) grant(ctx context.Context) *chain.Scope {
	p, err := s.principal(ctx)
	if err != nil {
		return &chain.Scope{Err: err}
	}
	g, ver := s.grantFor(p)
	return &chain.Scope{Principal: p, Grant: g, PolicyVersion: ver}
}

// withCatalogMeta adds, in catalog mirror mode, the mirror's age to the
// result's _meta: catalogSyncedAt (RFC 3339), catalogAgeSeconds and
// catalogStale, so that an agent knows how fresh the answer is. The result
// is copied, never changed in place.
func (s *Server) withCatalogMeta(res *mcp.CallToolResult) *mcp.CallToolResult {
	if res == nil || s.opts.Mirror == nil {
		return res
	}
	st := s.opts.Mirror.Status()
	fields := map[string]any{"catalogMode": CatalogMirror, "catalogStale": st.Stale}
	if st.Synced {
		fields["catalogSyncedAt"] = st.SyncedAt.UTC().Format(time.RFC3339Nano)
		fields["catalogAgeSeconds"] = math.Round(st.Age.Seconds()*1000) / 1000
	}
	out := *res
	meta := &mcp.Meta{AdditionalFields: fields}
	if res.Meta != nil {
		meta.ProgressToken = res.Meta.ProgressToken
		for k, v := range res.Meta.AdditionalFields {
			if _, ours := fields[k]; !ours {
				fields[k] = v
			}
		}
	}
	out.Meta = meta
	return &out
}

// metricTool keeps metric label values to the registered tool names:
// agents choose tool names, and a label must neither grow without bound
// nor carry what an agent typed.
func metricTool(known map[string]tools.Tool, name string) string {
	if _, ok := known[name]; ok {
		return name
	}
	return "(unknown)"
}

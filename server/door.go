package server

// The door: the only file that knows mcp-go's hooks, its tool filter and
// its error hook. Every tools/call enters chain.Chain.Call here, exactly
// once: through the tool middleware when mcp-go dispatches it, or through
// the error hook when mcp-go refused it (an unknown tool, or one the tool
// filter hides from this caller). Resource reads and completions enter
// the same Call through Server.call.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/backstage-mcp/backstage-mcp/redact"
	"github.com/backstage-mcp/backstage-mcp/server/chain"
	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
)

// pending hands a call's scope from mcp-go's BeforeCallTool hook to its
// tool filter and on into Call, which carries it in the call's context
// from there on. mcp-go v1.2.1 gives hooks no way to add a value to the
// request's context (there is no per-message context hook on stdio), but
// hands BeforeCallTool, the tool filter, the middleware and the error
// hook the same context: that context is the key, for no longer than
// mcp-go handles the message.
//
// Nothing in mcp-go v1.2.1 removes the need for it (read in its source):
// BeforeAny, BeforeCallTool, OnError and the tool filter get the context
// and return none; the tool middleware passes a context on only to the
// handler, after the filter ran, and is skipped for an unknown or hidden
// tool (OnError); WithHTTPContextFunc is per HTTP request, but
// WithStdioContextFunc runs once per Listen, so on stdio every message
// (served concurrently) would share whatever it put in the context; and
// the request ID reaches BeforeCallTool and OnError but not the filter or
// the middleware. See docs/architecture.md.
type pending struct {
	mu sync.Mutex
	m  map[context.Context]*chain.Scope
}

func (p *pending) put(ctx context.Context, sc *chain.Scope) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[context.Context]*chain.Scope{}
	}
	p.m[ctx] = sc
}

func (p *pending) get(ctx context.Context) (*chain.Scope, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	sc, ok := p.m[ctx]
	return sc, ok
}

// take returns ctx with the scope mcp-go's hook computed for it, and
// forgets it.
func (p *pending) take(ctx context.Context) context.Context {
	p.mu.Lock()
	defer p.mu.Unlock()
	if sc, ok := p.m[ctx]; ok {
		delete(p.m, ctx)
		return chain.WithScope(ctx, sc)
	}
	return ctx
}

func (p *pending) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.m)
}

// register wires the server into mcp-go: the tool chain, the tool,
// prompt and resource list filters, and the session count.
func (s *Server) register() []mcpserver.ServerOption {
	hooks := &mcpserver.Hooks{}
	hooks.AddBeforeCallTool(func(ctx context.Context, _ any, _ *mcp.CallToolRequest) {
		s.pending.put(ctx, s.grant(ctx))
	})
	hooks.AddOnError(func(ctx context.Context, _ any, method mcp.MCPMethod, message any, err error) {
		if method != mcp.MethodToolsCall {
			return
		}
		callCtx := s.pending.take(ctx)
		// Refused by mcp-go before dispatch: the chain records it. A
		// refusal the chain itself answered is already recorded.
		if !errors.Is(err, mcpserver.ErrToolNotFound) || errors.Is(err, chain.ErrToolNotFound) {
			return
		}
		if req, ok := message.(*mcp.CallToolRequest); ok {
			_, _ = s.enter(callCtx, *req, nil, ingressRedacted(ctx))
		}
	})
	hooks.AddAfterCallTool(func(ctx context.Context, _ any, _ *mcp.CallToolRequest, _ any) {
		_ = s.pending.take(ctx) // normally taken by the middleware already
	})
	hooks.AddAfterListResources(func(ctx context.Context, _ any, req *mcp.ListResourcesRequest, res *mcp.ListResourcesResult) {
		res.Resources, res.NextCursor = s.listResourcesPage(ctx, string(req.Params.Cursor))
	})
	hooks.AddOnRegisterSession(func(context.Context, mcpserver.ClientSession) { s.transportSessions.Add(1) })
	hooks.AddOnUnregisterSession(func(context.Context, mcpserver.ClientSession) { s.transportSessions.Add(-1) })
	return []mcpserver.ServerOption{
		mcpserver.WithHooks(hooks),
		// Outermost: the call's span parents every stage, the audit append included.
		mcpserver.WithToolHandlerMiddleware(s.opts.Tracing.Tool),
		mcpserver.WithToolHandlerMiddleware(func(next mcpserver.ToolHandlerFunc) mcpserver.ToolHandlerFunc {
			return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				return s.enter(s.pending.take(ctx), req, next, ingressRedacted(ctx))
			}
		}),
		mcpserver.WithToolFilter(s.filterTools),
		mcpserver.WithPromptFilter(s.filterPrompts),
		mcpserver.WithResourceCapabilities(offersSubscriptions, offersSubscriptions),
	}
}

// call runs a tools/call the server builds itself (a resource read, a
// completion) through the chain; its arguments are redacted there.
func (s *Server) call(ctx context.Context, req mcp.CallToolRequest, tool mcpserver.ToolHandlerFunc) (*mcp.CallToolResult, error) {
	return s.enter(ctx, req, tool, false)
}

// enter runs one tools/call through the chain. tool is nil when mcp-go
// refused the call before dispatch; redacted says ingress has redacted
// the message that carried it, arguments included (a call mcp-go decoded
// from an HTTP body or a stdio line).
func (s *Server) enter(ctx context.Context, req mcp.CallToolRequest, tool mcpserver.ToolHandlerFunc, redacted bool) (*mcp.CallToolResult, error) {
	r := chain.Request{Call: req, CallerTraceparent: callerTraceparentOf(ctx), InvalidUTF8: invalidUTF8In(ctx),
		Redacted: redacted}
	if sess := mcpserver.ClientSessionFromContext(ctx); sess != nil {
		r.SessionID = sess.SessionID()
	}
	r.Source = clientAddrOf(ctx)
	if req.Header != nil {
		r.UserAgent = req.Header.Get("User-Agent")
	}
	var h chain.Handler
	if tool != nil {
		h = chain.Handler(tool)
	}
	res, err := s.chain.Call(ctx, r, h)
	if errors.Is(err, chain.ErrToolNotFound) {
		err = toolNotFound{name: req.Params.Name}
	}
	return res, err
}

// protocolRevision is the protocol revision of the request ctx carries:
// the _meta version on 2026-07-28, else the one its session negotiated;
// "" when there is no session.
func protocolRevision(ctx context.Context) string {
	return mcpserver.RequestProtocolVersion(ctx)
}

// toolNotFound is the chain's refusal as mcp-go spells it.
type toolNotFound struct{ name string }

func (e toolNotFound) Error() string {
	return fmt.Sprintf("server: tool %q: %s", redact.Clip(e.name, 128), mcpserver.ErrToolNotFound)
}

func (e toolNotFound) Is(target error) bool {
	return target == mcpserver.ErrToolNotFound || target == chain.ErrToolNotFound
}

// filterTools shows only the tools the caller may call. mcp-go also runs it
// at call time, where it reuses the call's scope: a hidden tool is then as
// absent as an unknown one, and the error hook takes the call through the
// chain.
func (s *Server) filterTools(ctx context.Context, in []mcpTool) []mcpTool {
	sc, ok := s.pending.get(ctx)
	if !ok {
		sc = s.grant(ctx)
	}
	if sc.Err != nil {
		// No identity at all (a stored login that expired or was revoked;
		// HTTP callers without one never get here): every tool is listed
		// alike, so that a call reaches the chain and answers "sign in
		// again" instead of mcp-go's "tool not found". The list is the
		// same for everyone and says nothing about any user's grant.
		return in
	}
	allowed := map[string]bool{}
	for _, t := range sc.Grant.AllowedTools() {
		allowed[t] = true
	}
	out := make([]mcpTool, 0, len(in))
	for _, t := range in {
		if allowed[t.Name] {
			out = append(out, t)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

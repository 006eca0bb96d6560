package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"sort"
	"sync"
	"time"

	"github.com/backstage-mcp/backstage-mcp/redact"

	"github.com/backstage-mcp/backstage-mcp/policy"
	"github.com/backstage-mcp/backstage-mcp/server/audit"
	"github.com/backstage-mcp/backstage-mcp/server/identity"
	"github.com/backstage-mcp/backstage-mcp/tools"
	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
)

// The stages of one tools/call, in the order they run. Stages 1 and 2
// belong to the transport (see handler in http.go and ServeStdio); the
// rest run in call, for every tools/call: granted, refused and unknown
// tools alike.
const (
	stageTransport = "transport" // 1. origin check, body limit (HTTP)
	stageAuthn     = "authn"     // 2. bearer token verified (HTTP) or stored login (stdio)
	stageGrant     = "grant"     // 3. principal and grant, once per call
	stageRateLimit = "ratelimit" // 4. user × rate class, agent, global
	stageAuthz     = "authz"     // 5. may this principal call this tool?
	stageAudit     = "audit"     // 6. the record names who, what and the rule
	stageTool      = "tool"      // 7. the tool handler
	stageEgress    = "egress"    // 8. one redaction step over everything returned
	stageFinish    = "finish"    // 9. audit record written; no record, no result
)

// callState is what the chain knows of one tools/call. It is made once,
// in the BeforeCallTool hook, and found again by the tool filter, the
// middleware and the error hook of the same call.
type callState struct {
	p     *identity.Principal
	perr  error
	grant *policy.Grant
	ver   string
}

// inflight carries call state between mcp-go's entry points for one
// tools/call. mcp-go hands the same request context to BeforeCallTool, the
// tool filter, the tool middleware and OnError, but gives hooks no way to
// add a value to it (mark3labs/mcp-go has no per-request context hook for
// stdio), so the state is keyed by that context and removed when the call
// finishes.
type inflight struct {
	mu sync.Mutex
	m  map[context.Context]*callState
}

func (f *inflight) put(ctx context.Context, c *callState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[context.Context]*callState{}
	}
	f.m[ctx] = c
}

func (f *inflight) get(ctx context.Context) (*callState, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.m[ctx]
	return c, ok
}

func (f *inflight) drop(ctx context.Context) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.m, ctx)
}

// register wires the chain into mcp-go. Every tools/call enters call
// exactly once: through the tool middleware when mcp-go dispatches it, or
// through the error hook when mcp-go refused it (unknown tool, or a tool
// the tool filter hides from this caller). Either way the same stages run
// in the same order, and a refused call answers exactly like an unknown
// tool.
func (s *Server) register(hooks *mcpserver.Hooks) []mcpserver.ServerOption {
	hooks.AddBeforeCallTool(func(ctx context.Context, _ any, _ *mcp.CallToolRequest) {
		s.calls.put(ctx, s.grant(ctx))
	})
	hooks.AddOnError(func(ctx context.Context, _ any, method mcp.MCPMethod, message any, err error) {
		if method != mcp.MethodToolsCall {
			return
		}
		if !errors.Is(err, mcpserver.ErrToolNotFound) {
			s.calls.drop(ctx) // a protocol error after dispatch: nothing more to record here
			return
		}
		if req, ok := message.(*mcp.CallToolRequest); ok {
			_, _ = s.call(ctx, *req, nil)
		}
	})
	hooks.AddAfterCallTool(func(ctx context.Context, _ any, _ *mcp.CallToolRequest, _ any) {
		s.calls.drop(ctx) // normally dropped by call already
	})
	hooks.AddOnRegisterSession(func(context.Context, mcpserver.ClientSession) { s.transportSessions.Add(1) })
	hooks.AddOnUnregisterSession(func(context.Context, mcpserver.ClientSession) { s.transportSessions.Add(-1) })
	return []mcpserver.ServerOption{
		mcpserver.WithHooks(hooks),
		// Outermost: the call's span parents every stage, the audit append included.
		mcpserver.WithToolHandlerMiddleware(s.opts.Tracing.Tool),
		mcpserver.WithToolHandlerMiddleware(func(next mcpserver.ToolHandlerFunc) mcpserver.ToolHandlerFunc {
			return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				return s.call(ctx, req, next)
			}
		}),
		mcpserver.WithToolFilter(s.filterTools),
	}
}

// call is one tools/call, top to bottom. tool is nil when mcp-go refused
// the call before dispatch; the caller then gets mcp-go's "tool not found"
// and this records it. Every return passes egress and the audit finish.
func (s *Server) call(ctx context.Context, req mcp.CallToolRequest, tool mcpserver.ToolHandlerFunc) (res *mcp.CallToolResult, err error) {
	start := s.opts.Now()
	rec := s.openRecord(ctx, req)
	if rec.RedactionTotal() > 0 {
		// The tool sees the arguments as redacted: an error that quotes
		// one quotes it redacted, whatever the tool does to it (clip,
		// lowercase), and no secret an agent sends can probe the catalog.
		req.Params.RawArguments = rec.Arguments
		req.Params.Arguments = rec.Arguments
	}
	defer func() {
		if p := recover(); p != nil {
			s.log.ErrorContext(ctx, "tool panicked", "tool", rec.Tool, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			res, err = mcp.NewToolResultError("internal error; the call was not completed"), nil
			rec.Decision, rec.Reason = audit.DecisionError, "internal error"
		}
		s.calls.drop(ctx)
		res = s.egressResult(ctx, rec, res)      // 8
		res = s.finishCall(ctx, rec, start, res) // 9
	}()

	// 3. Principal and grant, computed once per call (BeforeCallTool).
	s.stage(ctx, stageGrant)
	c, ok := s.calls.get(ctx)
	if !ok {
		c = s.grant(ctx)
	}
	if c.perr != nil {
		rec.Decision, rec.Reason, rec.Rule = audit.DecisionDeny, "no verified identity", "identity"
		// Not "tool not found": with no identity every tool is hidden, so
		// naming the missing sign-in reveals nothing about any tool, and
		// an IDE whose stored login expired must say so (issue: expiry was
		// invisible). The cause goes to the log (stderr on stdio).
		s.log.WarnContext(ctx, "a call has no verified identity: sign in again with `backstage-mcp login`", "err", c.perr)
		return mcp.NewToolResultError("no verified identity for this call: the sign-in has expired or was revoked, or there is none. " +
			"Ask the user to run `backstage-mcp login` (or, for a shared server, to sign in again in the IDE), then retry."), nil
	}
	rec.User = audit.User{Sub: c.p.User.Sub, Email: c.p.User.Email, Ref: c.p.User.Ref}
	rec.Agent = audit.Agent{ClientID: c.p.Agent.ClientID, Name: c.p.Agent.ClientName, Version: c.p.Agent.ClientVersion}

	// 4. Rate limit: refused and unknown tools count too.
	s.stage(ctx, stageRateLimit)
	d, lerr := s.opts.Limiter.Allow(ctx, c.p.LimitKey(), c.grant.RateClass(), c.p.Agent.ClientID)
	if lerr != nil {
		rec.Decision, rec.Reason, rec.Rule = audit.DecisionError, "rate limiter failed", "ratelimit"
		s.log.ErrorContext(ctx, "rate limiter failed", "err", lerr)
		return s.refuse(req, tool, "the rate limiter is unavailable; the call was refused")
	}
	if !d.Allowed {
		rec.Decision, rec.Reason, rec.Rule = audit.DecisionRateLimited, d.String(), "ratelimit:"+d.Limit
		s.metrics.rateLimited(metricTool(s.tools, rec.Tool), d.Limit)
		return s.refuse(req, tool, fmt.Sprintf("rate limited (%s limit); retry in %s", d.Limit, roundUp(d.RetryAfter)))
	}

	// 5. Tool authorization. A refused tool answers like an unknown one.
	s.stage(ctx, stageAuthz)
	_, pspan := s.opts.Tracing.Tracer().Start(ctx, "policy.authorize")
	if _, known := s.tools[req.Params.Name]; !known {
		pspan.End()
		rec.Decision, rec.Reason, rec.Rule = audit.DecisionDeny, "unknown tool", "tools"
		return nil, errToolNotFound(req)
	}
	td := c.grant.AllowsTool(req.Params.Name)
	pspan.End()
	if !td.Allowed || tool == nil {
		rec.Decision, rec.Reason, rec.Rule = audit.DecisionDeny, "tool not granted: "+td.Reason, "policy@"+c.ver+":"+td.Rule
		return nil, errToolNotFound(req)
	}

	// 6. Audit: the record names the rule that allowed the call.
	s.stage(ctx, stageAudit)
	rec.Rule = "policy@" + c.ver + ":" + td.Rule

	// 7. The tool, with the caller's identity and access in its context.
	s.stage(ctx, stageTool)
	ctx, ci := tools.WithCallInfo(ctx)
	ctx = tools.WithIdentity(ctx, identityOf(c.p, c.grant))
	ctx = tools.WithAccess(ctx, grantAccess{c.grant})
	res, err = tool(ctx, req)
	res = s.withCatalogMeta(res)
	refs, count, red := ci.Snapshot()
	rec.Entities = audit.Entities{Refs: refs, Count: count}
	for k, v := range rec.Redactions {
		red[k] += v
	}
	rec.Redactions = red
	rec.UpstreamStatus = ci.UpstreamStatus
	switch {
	case err != nil:
		rec.Decision, rec.Reason = audit.DecisionError, "protocol error"
	case res != nil && res.IsError:
		rec.Decision, rec.Reason = audit.DecisionError, firstLine(resultText(res))
	default:
		rec.Decision = audit.DecisionAllow
	}
	return res, err
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

// refuse ends a call before the tool runs: a tool error for a dispatched
// call; for a call mcp-go already refused, its "not found" stands.
func (s *Server) refuse(req mcp.CallToolRequest, tool mcpserver.ToolHandlerFunc, msg string) (*mcp.CallToolResult, error) {
	if tool == nil {
		return nil, errToolNotFound(req)
	}
	return mcp.NewToolResultError(msg), nil
}

func errToolNotFound(req mcp.CallToolRequest) error {
	return fmt.Errorf("server: tool %q: %w", redact.Clip(req.Params.Name, 128), mcpserver.ErrToolNotFound)
}

// openRecord starts the call's audit record with the redacted arguments.
func (s *Server) openRecord(ctx context.Context, req mcp.CallToolRequest) *audit.Record {
	rec := &audit.Record{Type: audit.TypeCall, Tool: redact.Clip(req.Params.Name, 128), Transport: s.opts.Transport,
		CallerTraceparent: callerTraceparentOf(ctx), InvalidUTF8: invalidUTF8In(ctx)}
	if sess := mcpserver.ClientSessionFromContext(ctx); sess != nil {
		rec.SessionID = sess.SessionID()
	}
	rec.Arguments, rec.Redactions = s.redactedArgs(req)
	return rec
}

// grant computes the principal and its grant under the policy in force.
func (s *Server) grant(ctx context.Context) *callState {
	p, err := s.principal(ctx)
	if err != nil {
		return &callState{perr: err}
	}
	g, ver := s.grantFor(p)
	return &callState{p: p, grant: g, ver: ver}
}

// stage reports a stage to the test observer, if any.
func (s *Server) stage(ctx context.Context, name string) {
	if s.onStage != nil {
		s.onStage(ctx, name)
	}
}

// filterTools shows only the tools the caller may call. mcp-go also runs it
// at call time, where it reuses the call's grant: a hidden tool is then as
// absent as an unknown one, and the error hook takes the call through the
// chain.
func (s *Server) filterTools(ctx context.Context, in []mcpTool) []mcpTool {
	c, ok := s.calls.get(ctx)
	if !ok {
		c = s.grant(ctx)
	}
	if c.perr != nil {
		// No identity at all (a stored login that expired or was revoked;
		// HTTP callers without one never get here): every tool is listed
		// alike, so that a call reaches the chain and answers "sign in
		// again" instead of mcp-go's "tool not found". The list is the
		// same for everyone and says nothing about any user's grant.
		return in
	}
	allowed := map[string]bool{}
	for _, t := range c.grant.AllowedTools() {
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

// metricTool keeps metric label values to the registered tool names:
// agents choose tool names, and a label must neither grow without bound
// nor carry what an agent typed.
func metricTool(known map[string]tools.Tool, name string) string {
	if _, ok := known[name]; ok {
		return name
	}
	return "(unknown)"
}

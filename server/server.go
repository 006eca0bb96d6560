// Package server assembles backstage-mcp: configuration, the MCP server
// with its tool middleware chain, and the stdio and Streamable HTTP
// transports with health, readiness, metrics and OAuth resource metadata.
//
// One tool call flows: transport (bearer token verified on HTTP) → tool
// middleware, outermost first: recover → audit (one record per call,
// written before the result returns; no record, no result) → rate limit
// (user × rate class, agent, global) → policy (may this principal call
// this tool?) → tool handler, which queries the catalog with the server's
// own credential and the caller's entity conditions pushed down, re-checks
// every entity, masks fields and redacts secrets.
//
//	cfg, _ := server.LoadConfig("config.yaml", os.Getenv)
//	s, _ := server.New(cfg, server.Options{ /* catalog, redactor, policy, audit, limiter */ })
//	_ = s.ServeHTTP(ctx, "127.0.0.1:8080", nil)
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/audit"
	"github.com/backstage-mcp/backstage-mcp/server/identity"
	"github.com/backstage-mcp/backstage-mcp/server/ratelimit"
	"github.com/backstage-mcp/backstage-mcp/tools"
	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
)

// Name is the MCP server name reported to clients.
const Name = "backstage-mcp"

type mcpTool = mcp.Tool

// Options are the server's collaborators. Catalog, Redactor, Policy and
// Audit are required: the server fails closed without them.
type Options struct {
	// Logger receives operational logs. Nil discards them.
	Logger *slog.Logger
	// Catalog answers catalog queries.
	Catalog tools.Catalog
	// Redactor scrubs every entity and every audited argument.
	Redactor tools.Redactor
	// Ready reports whether Backstage answers; used by /readyz.
	Ready func(ctx context.Context) error
	// ReadyChecks are further /readyz dependencies (e.g. Redis).
	ReadyChecks []ReadyCheck
	// Auth verifies bearer tokens on HTTP. Nil means HTTP has no token
	// check, which is only allowed together with LocalPrincipal (demo).
	Auth *identity.Authenticator
	// LocalPrincipal gives the principal of calls that carry no verified
	// token: the stored login on stdio, or the insecure demo user.
	LocalPrincipal func(ctx context.Context) (*identity.Principal, error)
	// Policy holds the policy in force.
	Policy *PolicyStore
	// Audit receives one record per call; a failed append fails the call.
	Audit *audit.Log
	// Limiter rate-limits calls; nil means the default limits.
	Limiter *ratelimit.Chain
	// Metrics collects Prometheus metrics; nil creates a registry.
	Metrics *Metrics
	// Tracing exports OpenTelemetry spans; nil means off.
	Tracing *Tracing
	// Transport names the transport in audit records ("stdio" or "http").
	Transport string
	// RequiredScope, when set, is an OAuth scope every HTTP token must carry.
	RequiredScope string
	// Version is reported to clients.
	Version string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server is one backstage-mcp instance.
type Server struct {
	cfg     *Config
	opts    Options
	log     *slog.Logger
	mcp     *mcpserver.MCPServer
	tools   map[string]tools.Tool
	metrics *Metrics
}

// New builds the server and registers every tool.
func New(cfg *Config, opts Options) (*Server, error) {
	switch {
	case cfg == nil:
		return nil, errors.New("server: nil config")
	case opts.Catalog == nil:
		return nil, errors.New("server: a catalog is required")
	case opts.Redactor == nil:
		return nil, errors.New("server: a redactor is required")
	case opts.Policy == nil:
		return nil, errors.New("server: a policy is required (default deny)")
	case opts.Audit == nil:
		return nil, errors.New("server: an audit log is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	if opts.Transport == "" {
		opts.Transport = audit.TransportHTTP
	}
	if opts.Limiter == nil {
		mem, err := ratelimit.NewMemory(cfg.RateLimits)
		if err != nil {
			return nil, fmt.Errorf("server: rate limits: %w", err)
		}
		opts.Limiter = ratelimit.NewChain(mem)
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics()
	}
	s := &Server{cfg: cfg, opts: opts, log: opts.Logger, tools: map[string]tools.Tool{}, metrics: opts.Metrics}
	var key []byte
	if cfg.Server.CursorKey != "" {
		key = []byte(cfg.Server.CursorKey)
	}
	deps := &tools.Deps{Catalog: opts.Catalog, Redactor: opts.Redactor, Cursors: tools.NewCursorCodec(key)}
	hooks := &mcpserver.Hooks{}
	hooks.AddOnError(s.auditRefusedCall)
	s.mcp = mcpserver.NewMCPServer(Name, opts.Version,
		mcpserver.WithHooks(hooks),
		mcpserver.WithToolCapabilities(false),
		mcpserver.WithToolHandlerMiddleware(opts.Tracing.Tool), // outermost: the call's span parents the audit append
		mcpserver.WithToolHandlerMiddleware(s.middleware),
		mcpserver.WithToolFilter(s.filterTools),
		mcpserver.WithInstructions(instructions),
	)
	for _, t := range tools.All(deps) {
		s.tools[t.Tool.Name] = t
		s.mcp.AddTool(t.Tool, t.Handler)
	}
	return s, nil
}

const instructions = "Read-only access to the Backstage software catalog, limited to what the signed-in user may see. " +
	"Entity refs are written kind:namespace/name (e.g. component:default/orders-service). Start with catalog_search_entities to find refs; " +
	"use catalog_get_entity, catalog_get_relations, catalog_find_owner and catalog_get_api_definition for details. Secrets are redacted as [REDACTED:<rule>]."

// MCP returns the underlying mcp-go server (for in-process clients).
func (s *Server) MCP() *mcpserver.MCPServer { return s.mcp }

// middleware wraps every tool handler: recover → audit → rate limit →
// policy → handler. The audit record is written before the result is
// returned; if it cannot be written, the caller gets an error instead.
func (s *Server) middleware(next mcpserver.ToolHandlerFunc) mcpserver.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (res *mcp.CallToolResult, err error) {
		start := s.opts.Now()
		tool := req.Params.Name
		rec := &audit.Record{Type: audit.TypeCall, Tool: tool, Transport: s.opts.Transport}
		if sess := mcpserver.ClientSessionFromContext(ctx); sess != nil {
			rec.SessionID = sess.SessionID()
		}
		var argRedactions map[string]int
		rec.Arguments, argRedactions = s.redactedArgs(req)
		rec.Redactions = argRedactions
		defer func() {
			if p := recover(); p != nil {
				s.log.ErrorContext(ctx, "tool panicked", "tool", tool, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				res, err = mcp.NewToolResultError("internal error; the call was not completed"), nil
				rec.Decision, rec.Reason = audit.DecisionError, "internal error"
			}
			res = s.finish(ctx, rec, start, res)
		}()

		p, perr := s.principal(ctx)
		if perr != nil {
			rec.Decision, rec.Reason, rec.Rule = audit.DecisionDeny, "no verified identity", "identity"
			return mcp.NewToolResultError("no verified identity for this call; sign in (backstage-mcp login) or send a bearer token"), nil
		}
		rec.User = audit.User{Sub: p.User.Sub, Email: p.User.Email, Ref: p.User.Ref}
		rec.Agent = audit.Agent{ClientID: p.Agent.ClientID, Name: p.Agent.ClientName, Version: p.Agent.ClientVersion}
		g, ver := s.grantFor(p)

		d, lerr := s.opts.Limiter.Allow(ctx, p.Key(), g.RateClass(), p.Agent.ClientID)
		if lerr != nil {
			rec.Decision, rec.Reason, rec.Rule = audit.DecisionError, "rate limiter failed", "ratelimit"
			s.log.ErrorContext(ctx, "rate limiter failed", "err", lerr)
			return mcp.NewToolResultError("the rate limiter is unavailable; the call was refused"), nil
		}
		if !d.Allowed {
			rec.Decision, rec.Reason, rec.Rule = audit.DecisionRateLimited, d.String(), "ratelimit:"+d.Limit
			s.metrics.rateLimited(tool, d.Limit)
			return mcp.NewToolResultError(fmt.Sprintf("rate limited (%s limit); retry in %s", d.Limit, roundUp(d.RetryAfter))), nil
		}

		td := g.AllowsTool(tool)
		if !td.Allowed {
			rec.Decision, rec.Reason, rec.Rule = audit.DecisionDeny, td.Reason, td.Rule
			return mcp.NewToolResultError(fmt.Sprintf("tool '%s' not found", tool)), nil
		}
		rec.Rule = "policy@" + ver + ":" + td.Rule

		ctx, ci := tools.WithCallInfo(ctx)
		ctx = tools.WithIdentity(ctx, identityOf(p, g))
		ctx = tools.WithAccess(ctx, grantAccess{g})
		res, err = next(ctx, req)
		refs, count, red := ci.Snapshot()
		rec.Entities = audit.Entities{Refs: refs, Count: count}
		for k, v := range argRedactions {
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
}

// auditRefusedCall records tool calls that mcp-go refuses before they
// reach the middleware: unknown tools and tools the caller's policy does
// not grant (the tool filter applies at call time). Every agent call gets
// a record, refused ones included.
func (s *Server) auditRefusedCall(ctx context.Context, _ any, method mcp.MCPMethod, message any, err error) {
	if method != mcp.MethodToolsCall || !errors.Is(err, mcpserver.ErrToolNotFound) {
		return
	}
	rec := &audit.Record{Type: audit.TypeCall, Transport: s.opts.Transport, Decision: audit.DecisionDeny}
	if req, ok := message.(*mcp.CallToolRequest); ok {
		rec.Tool = clip(req.Params.Name, 128)
		rec.Arguments, rec.Redactions = s.redactedArgs(*req)
	}
	if sess := mcpserver.ClientSessionFromContext(ctx); sess != nil {
		rec.SessionID = sess.SessionID()
	}
	rec.Reason, rec.Rule = "unknown tool", "tools"
	if p, perr := s.principal(ctx); perr == nil {
		rec.User = audit.User{Sub: p.User.Sub, Email: p.User.Email, Ref: p.User.Ref}
		rec.Agent = audit.Agent{ClientID: p.Agent.ClientID, Name: p.Agent.ClientName, Version: p.Agent.ClientVersion}
		if _, known := s.tools[rec.Tool]; known {
			g, ver := s.grantFor(p)
			d := g.AllowsTool(rec.Tool)
			rec.Reason, rec.Rule = "tool not granted: "+d.Reason, "policy@"+ver+":"+d.Rule
		}
	}
	label := rec.Tool
	if _, known := s.tools[label]; !known {
		label = "(unknown)" // agents choose tool names: keep metric series bounded
	}
	s.metrics.call(label, string(rec.Decision), 0, nil)
	if aerr := s.opts.Audit.Append(context.WithoutCancel(ctx), rec); aerr != nil {
		s.metrics.auditFailure()
		s.log.ErrorContext(ctx, "audit write failed", "type", "call", "err", aerr)
	}
}

// finish writes the audit record and returns the result only if that
// succeeded (fail closed).
func (s *Server) finish(ctx context.Context, rec *audit.Record, start time.Time, res *mcp.CallToolResult) *mcp.CallToolResult {
	dur := s.opts.Now().Sub(start)
	rec.DurationMs = float64(dur.Microseconds()) / 1000
	if res != nil {
		if b, err := json.Marshal(res); err == nil {
			rec.ResultBytes = len(b)
		}
	}
	s.metrics.call(rec.Tool, string(rec.Decision), dur, rec.Redactions)
	if err := s.opts.Audit.Append(context.WithoutCancel(ctx), rec); err != nil {
		s.metrics.auditFailure()
		s.log.ErrorContext(ctx, "audit write failed; result withheld", "tool", rec.Tool, "err", err)
		return mcp.NewToolResultError("the audit trail is unavailable, so the result was withheld; the operator has been alerted")
	}
	s.log.DebugContext(ctx, "tool call", "tool", rec.Tool, "decision", rec.Decision, "entities", rec.Entities.Count,
		"redactions", rec.RedactionTotal(), "duration", dur)
	return res
}

// redactedArgs keeps the call's arguments for the audit record, redacted,
// with the redaction counts. If they cannot be redacted they are replaced
// by a note.
func (s *Server) redactedArgs(req mcp.CallToolRequest) (json.RawMessage, map[string]int) {
	raw := req.Params.RawArguments
	if len(raw) == 0 {
		return nil, nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return json.RawMessage(`"[unparsable arguments withheld]"`), nil
	}
	out, counts, err := s.opts.Redactor.Redact(v)
	if err != nil {
		return json.RawMessage(`"[arguments withheld: redaction failed]"`), nil
	}
	b, err := json.Marshal(out)
	if err != nil {
		return json.RawMessage(`"[arguments withheld]"`), nil
	}
	return b, counts
}

func resultText(r *mcp.CallToolResult) string {
	for _, c := range r.Content {
		if t, ok := c.(mcp.TextContent); ok {
			return t.Text
		}
	}
	return ""
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return clip(s, 300)
}

func roundUp(d time.Duration) string {
	if d < time.Second {
		return "1s"
	}
	return d.Round(time.Second).String()
}

// AuditEvent writes a non-call record (server start/stop, policy reload).
func (s *Server) AuditEvent(ctx context.Context, typ audit.Type, reason string) error {
	return s.opts.Audit.Append(ctx, &audit.Record{Type: typ, Transport: s.opts.Transport, Reason: reason})
}

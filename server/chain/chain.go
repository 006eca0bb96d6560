// Package chain is the one door of every tools/call: Chain.Call runs the
// stages of a call top to bottom, granted, refused and unknown tools
// alike, and hands the tool its caller's identity and access.
//
// It knows nothing of mcp-go's server, its hooks or its transports: the
// server's adapter (server/door.go) is the only code that turns mcp-go's
// entry points into one Call. A test drives Call with a fake handler.
//
// The stages, in the order Call runs them (stages 1 and 2, transport
// checks and authentication, belong to the transports):
//
//  3. grant       principal and grant, once per call (the Scope)
//  4. ratelimit   user × rate class, agent, global
//  5. authz       may this principal call this tool? a refused tool
//     answers exactly like an unknown one
//  6. audit       the record names who, what and the rule
//  7. tool        the handler, with the caller's identity and access
//  8. egress      one redaction step over everything returned
//  9. finish      the audit record written; no record, no result
package chain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/backstage-mcp/backstage-mcp/policy"
	"github.com/backstage-mcp/backstage-mcp/redact"
	"github.com/backstage-mcp/backstage-mcp/server/audit"
	"github.com/backstage-mcp/backstage-mcp/server/identity"
	"github.com/backstage-mcp/backstage-mcp/server/ratelimit"
	"github.com/backstage-mcp/backstage-mcp/tools"
	"github.com/mark3labs/mcp-go/mcp"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// The stages Call runs, by name, in order (see Chain.Observe).
const (
	StageGrant     = "grant"     // 3. principal and grant, once per call
	StageRateLimit = "ratelimit" // 4. user × rate class, agent, global
	StageAuthz     = "authz"     // 5. may this principal call this tool?
	StageAudit     = "audit"     // 6. the record names who, what and the rule
	StageTool      = "tool"      // 7. the tool handler
	StageEgress    = "egress"    // 8. one redaction step over everything returned
	StageFinish    = "finish"    // 9. audit record written; no record, no result
)

// ErrToolNotFound is the answer to a call of an unknown tool and of a tool
// the caller may not call, alike. The adapter maps it to the transport's
// own "tool not found" error.
var ErrToolNotFound = errors.New("tool not found")

// Scope is what one call knows of itself: its caller's principal and
// grant, computed once at the call's entry, and its audit record. Call
// carries it in the call's context (WithScope, ScopeFrom) to every stage
// and to the tool. Err is set, and the caller's fields empty, when the
// call has no verified identity.
type Scope struct {
	Principal     *identity.Principal
	Grant         *policy.Grant
	PolicyVersion string
	Err           error
	// Record is the call's audit record, filled in as the stages run and
	// written at the finish; set by Call (nil before it).
	Record *audit.Record
	// call is what the tool tells the record (entities, the rule that
	// hid one); set by Call before the tool runs.
	call *tools.CallInfo
}

type scopeKey struct{}

// WithScope returns ctx carrying the call's scope.
func WithScope(ctx context.Context, sc *Scope) context.Context {
	return context.WithValue(ctx, scopeKey{}, sc)
}

// ScopeFrom returns the scope ctx carries, if any.
func ScopeFrom(ctx context.Context) (*Scope, bool) {
	sc, ok := ctx.Value(scopeKey{}).(*Scope)
	return sc, ok && sc != nil
}

// Request is one tools/call as it enters the chain.
type Request struct {
	// Call is the call as the transport decoded it.
	Call mcp.CallToolRequest
	// SessionID is the MCP session, if any.
	SessionID string
	// CallerTraceparent is the W3C traceparent the caller sent, if any.
	CallerTraceparent string
	// InvalidUTF8 counts the invalid UTF-8 bytes ingress replaced in the
	// message that carried the call.
	InvalidUTF8 int
	// Redacted says the transport's ingress has already redacted the
	// message, arguments included.
	Redacted bool
	// Source is the client address (HTTP: the TCP peer, or the address
	// the trusted proxies name); empty on stdio.
	Source string
	// UserAgent is the request's User-Agent header, as sent.
	UserAgent string
}

// Handler is a tool handler. A nil Handler means the transport refused the
// call before dispatch (an unknown or hidden tool): the chain still runs
// and records it, and answers ErrToolNotFound.
type Handler func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error)

// Chain runs tools/calls. Every field but Observe, Tracer and RateLimited
// is required.
type Chain struct {
	// Transport names the transport in audit records.
	Transport string
	// Grant computes the caller's scope (stage 3) when the context does
	// not carry one already.
	Grant func(ctx context.Context) *Scope
	// Limiter rate-limits calls (stage 4).
	Limiter *ratelimit.Chain
	// Known reports whether a tool of that name exists (stage 5).
	Known func(name string) bool
	// Arguments redacts a call's arguments for its audit record (unless
	// redacted: ingress already did) and counts the redactions they hold.
	Arguments func(raw json.RawMessage, redacted bool) (json.RawMessage, map[string]int)
	// Decorate adds to a tool's result what the server knows and the tool
	// does not (the mirror's age); it may be nil.
	Decorate func(res *mcp.CallToolResult) *mcp.CallToolResult
	// Egress redacts a result (stage 8); it returns the result to send and
	// fills the record's redactions and size, or withholds the result.
	Egress func(ctx context.Context, rec *audit.Record, res *mcp.CallToolResult) *mcp.CallToolResult
	// Finish writes the record (stage 9) and returns res, or withholds it
	// when the record could not be written.
	Finish func(ctx context.Context, rec *audit.Record, dur time.Duration, res *mcp.CallToolResult) *mcp.CallToolResult
	// RateLimited, when set, is told of a call refused by a rate limit.
	RateLimited func(tool, limit string)
	// Log receives operational logs.
	Log *slog.Logger
	// Now is the clock.
	Now func() time.Time
	// Tracer, when set, traces the authorization stage.
	Tracer trace.Tracer
	// Observe, when set (tests), sees each stage as it starts.
	Observe func(ctx context.Context, stage string)
}

// Call is one tools/call, top to bottom. Every return passes egress and
// the audit finish.
func (c *Chain) Call(ctx context.Context, r Request, tool Handler) (res *mcp.CallToolResult, err error) {
	start := c.Now()
	req := r.Call
	rec := c.open(r)
	if rec.ArgumentRedactionTotal() > 0 {
		// The tool sees the arguments as redacted: an error that quotes
		// one quotes it redacted, whatever the tool does to it (clip,
		// lowercase), and no secret an agent sends can probe the catalog.
		req.Params.RawArguments = rec.Arguments
		req.Params.Arguments = rec.Arguments
	}
	defer func() {
		if p := recover(); p != nil {
			c.Log.ErrorContext(ctx, "tool panicked", "tool", rec.Tool, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			res, err = mcp.NewToolResultError("internal error; the call was not completed"), nil
			rec.Decision, rec.Reason, rec.Stage = audit.DecisionFailed, "internal error", StageTool
		}
		if res != nil {
			c.observe(ctx, StageEgress)
			res = c.Egress(ctx, rec, res) // 8
		}
		c.observe(ctx, StageFinish)
		res = c.Finish(ctx, rec, c.Now().Sub(start), res) // 9
	}()

	// 3. Principal and grant, once per call.
	c.observe(ctx, StageGrant)
	given, ok := ScopeFrom(ctx)
	if !ok {
		given = c.Grant(ctx)
	}
	scope := *given // the call's own: a scope handed in may serve other calls
	scope.Record = rec
	sc := &scope
	ctx = WithScope(ctx, sc)
	if sc.Err != nil {
		rec.Decision, rec.Reason, rec.Rule, rec.Stage = audit.DecisionRefused, "no verified identity", "identity", "identity"
		// Not "tool not found": with no identity every tool is hidden, so
		// naming the missing sign-in reveals nothing about any tool, and
		// an IDE whose stored login expired must say so. The cause goes
		// to the log (stderr on stdio).
		c.Log.WarnContext(ctx, "a call has no verified identity: sign in again with `backstage-mcp login`", "err", sc.Err)
		return mcp.NewToolResultError("no verified identity for this call: the sign-in has expired or was revoked, or there is none. " +
			"Ask the user to run `backstage-mcp login` (or, for a shared server, to sign in again in the IDE), then retry."), nil
	}
	rec.User, rec.Agent = Who(sc.Principal)

	// 4. Rate limit: refused and unknown tools count too.
	c.observe(ctx, StageRateLimit)
	d, lerr := c.Limiter.Allow(ctx, sc.Principal.LimitKey(), sc.Grant.RateClass(), sc.Principal.Agent.ClientID)
	if lerr != nil {
		rec.Decision, rec.Reason, rec.Rule, rec.Stage, rec.Limiter = audit.DecisionRefused, "rate limiter failed", "ratelimit", StageRateLimit, LimiterStore
		c.Log.ErrorContext(ctx, "rate limiter failed", "err", lerr)
		return refuse(req, tool, "the rate limiter is unavailable; the call was refused")
	}
	if !d.Allowed {
		rec.Decision, rec.Reason, rec.Rule, rec.Stage, rec.Limiter = audit.DecisionRateLimited, d.String(), "ratelimit:"+d.Limit, StageRateLimit, d.Limit
		if c.RateLimited != nil {
			c.RateLimited(rec.Tool, d.Limit)
		}
		return refuse(req, tool, fmt.Sprintf("rate limited (%s limit); retry in %s", d.Limit, roundUp(d.RetryAfter)))
	}

	// 5. Tool authorization. A refused tool answers like an unknown one.
	c.observe(ctx, StageAuthz)
	_, pspan := c.tracer().Start(ctx, "policy.authorize")
	if !c.Known(req.Params.Name) {
		pspan.End()
		rec.Decision, rec.Reason, rec.Rule, rec.Stage = audit.DecisionRefused, "unknown tool", "tools", StageAuthz
		return nil, errToolNotFound(req)
	}
	td := sc.Grant.AllowsTool(req.Params.Name)
	pspan.End()
	if !td.Allowed || tool == nil {
		rec.Decision, rec.Reason, rec.Rule, rec.Stage = audit.DecisionHiddenByPolicy, "tool not granted: "+td.Reason, "policy@"+sc.PolicyVersion+":"+td.Rule, StageAuthz
		if td.Rule == policy.RuleAgentScope {
			rec.Decision = audit.DecisionScopeDenied
		}
		return nil, errToolNotFound(req)
	}

	// 6. Audit: the record names the rule that allowed the call.
	c.observe(ctx, StageAudit)
	rec.Rule = "policy@" + sc.PolicyVersion + ":" + td.Rule

	// 7. The tool, with the caller's identity and access in its context.
	c.observe(ctx, StageTool)
	ctx, ci := tools.WithCallInfo(ctx)
	ctx = tools.WithIdentity(ctx, IdentityOf(sc.Principal, sc.Grant))
	sc.call = ci
	ctx = tools.WithAccess(ctx, callAccess{sc: sc})
	res, err = tool(ctx, req)
	if c.Decorate != nil {
		res = c.Decorate(res)
	}
	// The tool's own redaction counts are not the record's: it redacts
	// what it fetched, sent or not; egress counts what leaves.
	refs, count, _ := ci.Snapshot()
	rec.Entities = audit.Entities{Refs: refs, Count: count}
	rec.UpstreamStatus = ci.UpstreamStatus
	rec.Hidden = ci.HiddenCount()
	switch {
	case err != nil:
		rec.Decision, rec.Reason, rec.Stage = audit.DecisionFailed, "protocol error", StageTool
	case res != nil && res.IsError:
		rec.Reason = firstLine(resultText(res))
		rec.Decision, rec.Stage = errorDecision(tools.ErrorKind(res), rec.Hidden)
		if rec.Decision == audit.DecisionHiddenByPolicy {
			// The agent reads "not found", as for a typo; the record
			// says what it was, and the rule that hid it.
			rec.Reason = firstLine("hidden by the policy (answered as not found): " + rec.Reason)
			if rule := ci.HiddenRule(); rule != "" {
				rec.Rule = "policy@" + sc.PolicyVersion + ":" + rule
			}
		}
	default:
		rec.Decision = audit.DecisionAllowed
	}
	return res, err
}

// Limiter names in records beyond the buckets' own (ratelimit.Decision.Limit).
const (
	// LimiterStore is the rate-limit store (Redis) failing closed.
	LimiterStore = "ratelimit-store"
)

// Stages of a tool's error result in records beyond the chain's own.
const (
	// StageArguments: the tool refused its arguments.
	StageArguments = "arguments"
	// StageUpstream: Backstage failed.
	StageUpstream = "upstream"
	// StagePolicy: the policy hid the entity the call asked for.
	StagePolicy = "policy"
)

// errorDecision is the decision and stage of a tool's error result of
// kind (tools.ErrorKind); hidden counts the entities the caller's access
// withheld from the call.
func errorDecision(kind string, hidden int) (audit.Decision, string) {
	switch kind {
	case tools.ErrNotFound:
		if hidden > 0 {
			return audit.DecisionHiddenByPolicy, StagePolicy
		}
		return audit.DecisionFailed, StageTool
	case tools.ErrArguments:
		return audit.DecisionRefused, StageArguments
	case tools.ErrUpstream:
		return audit.DecisionFailed, StageUpstream
	case tools.ErrRedaction:
		return audit.DecisionFailed, StageEgress
	}
	return audit.DecisionFailed, StageTool
}

// open starts the call's audit record with the redacted arguments.
func (c *Chain) open(r Request) *audit.Record {
	rec := &audit.Record{Type: audit.TypeCall, Tool: redact.Clip(r.Call.Params.Name, 128), Transport: c.Transport,
		SessionID: r.SessionID, CallerTraceparent: r.CallerTraceparent, InvalidUTF8: r.InvalidUTF8,
		Source: r.Source, UserAgent: audit.CleanUserAgent(r.UserAgent)}
	raw := r.Call.Params.RawArguments
	if len(raw) == 0 && r.Call.Params.Arguments != nil {
		b, err := json.Marshal(r.Call.Params.Arguments)
		if err != nil {
			rec.Arguments = json.RawMessage(`"[arguments withheld]"`)
			return rec
		}
		raw = b
	}
	if len(raw) > 0 {
		rec.Arguments, rec.ArgumentRedactions = c.Arguments(raw, r.Redacted && len(r.Call.Params.RawArguments) > 0)
	}
	return rec
}

func (c *Chain) observe(ctx context.Context, stage string) {
	if c.Observe != nil {
		c.Observe(ctx, stage)
	}
}

func (c *Chain) tracer() trace.Tracer {
	if c.Tracer != nil {
		return c.Tracer
	}
	return noop.NewTracerProvider().Tracer("")
}

// refuse ends a call before the tool runs: a tool error for a dispatched
// call; for a call the transport already refused, its "not found" stands.
func refuse(req mcp.CallToolRequest, tool Handler, msg string) (*mcp.CallToolResult, error) {
	if tool == nil {
		return nil, errToolNotFound(req)
	}
	return mcp.NewToolResultError(msg), nil
}

func errToolNotFound(req mcp.CallToolRequest) error {
	return fmt.Errorf("server: tool %q: %w", redact.Clip(req.Params.Name, 128), ErrToolNotFound)
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
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			s = s[:i]
			break
		}
	}
	return redact.Clip(s, 300)
}

func roundUp(d time.Duration) string {
	if d < time.Second {
		return "1s"
	}
	return d.Round(time.Second).String()
}

// Package server assembles backstage-mcp: configuration, the MCP server
// with its call chain, and the stdio and Streamable HTTP transports with
// health, readiness, metrics and OAuth resource metadata.
//
// Every tools/call enters through one door (door.go, the only file that
// knows mcp-go's hooks, tool filter and error hook) and runs one chain,
// granted, refused and unknown tools alike (package chain lists it top to
// bottom in Chain.Call):
//
//  1. transport checks      origin, body size (HTTP; http.go)
//  2. authentication        bearer token verified (HTTP) or stored login (stdio)
//  3. principal and grant   once per call, kept for the whole call
//  4. rate limit            user × rate class, agent, global
//  5. tool authorization    a refused tool answers exactly like an unknown one
//  6. audit                 the record names who, what and the rule
//  7. tool                  catalog query with the caller's conditions pushed
//     down, the server's own credential, every entity
//     re-checked, masked and redacted (package tools)
//  8. egress                one redaction step over the whole result
//  9. audit finish          record written before the result returns;
//     no record, no result
//
// Audit records and log lines pass the same egress step (egress.go).
//
//	cfg, _ := server.LoadConfig("config.yaml", os.Getenv)
//	s, _ := server.New(cfg, server.Options{ /* catalog, redactor, policy, audit, limiter */ })
//	_ = s.ServeHTTP(ctx, "127.0.0.1:8080", nil)
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/backstage-mcp/backstage-mcp/redact"
	"github.com/backstage-mcp/backstage-mcp/server/audit"
	"github.com/backstage-mcp/backstage-mcp/server/chain"
	"github.com/backstage-mcp/backstage-mcp/server/identity"
	"github.com/backstage-mcp/backstage-mcp/server/ratelimit"
	"github.com/backstage-mcp/backstage-mcp/server/state"
	"github.com/backstage-mcp/backstage-mcp/tools"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog/mirror"
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
	// UnauthLimiter holds the unauthenticated requests' address, subnet
	// and global buckets (Redis with state: redis). Nil: in this process.
	UnauthLimiter ratelimit.Limiter
	// Catalog answers catalog queries.
	Catalog tools.Catalog
	// Redactor scrubs every entity, every result, every audit record and
	// every log line (see egress).
	Redactor *redact.Redactor
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
	// Sessions keeps Streamable HTTP session records; nil means in memory
	// with the configured limits.
	Sessions state.SessionStore
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
	// Mirror, in catalog mirror mode, is the mirror Catalog reads: /readyz
	// reports its age and every tool result's _meta carries it. Nil in
	// passthrough mode.
	Mirror *mirror.Mirror
}

// Server is one backstage-mcp instance.
type Server struct {
	cfg     *Config
	opts    Options
	log     *slog.Logger
	mcp     *mcpserver.MCPServer
	tools   map[string]tools.Tool
	metrics *Metrics
	out     egress
	// wire counts reads, decodes and encodes of messages (wirestats.go).
	wire wireStats
	// chain runs every tools/call (package chain); door.go is where
	// calls enter it.
	chain *chain.Chain
	// pending hands a call's scope from mcp-go's hook to the chain
	// (door.go).
	pending pending
	// transportSessions counts the sessions mcp-go holds in this process
	// (registered and not yet unregistered).
	transportSessions atomic.Int64
	// transports end a session in each Streamable HTTP transport this
	// server built (see transportEnder).
	transports struct {
		sync.Mutex
		end []func(sid string)
	}
	// deps are the tools' shared dependencies.
	deps *tools.Deps

	// unauth bounds requests without a valid token per client address;
	// authFailures aggregates their audit records.
	unauth       *unauthGuard
	authFailures *authFailureLog
	// streams bounds the standalone SSE streams (GET /mcp).
	streams *streamGuard
	// budget charges each HTTP message to its user before ingress.
	budget *ingressBudget
	// ready is the readiness prober's state (readiness.go).
	ready readiness
}

// FetchWholeEntities turns the tools' projections off (see
// tools.Deps.WholeEntities): every answer then fetches, decodes, masks and
// redacts whole entities. It is for tests that prove projected answers
// identical to whole ones; call it before the server answers anything.
func (s *Server) FetchWholeEntities() { s.deps.WholeEntities = true }

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
	opts.Logger = redactingLogger(opts.Logger, opts.Redactor)
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
	if opts.Sessions == nil {
		opts.Sessions = state.NewMemorySessions(cfg.Server.Sessions, opts.Now)
	}
	s := &Server{cfg: cfg, opts: opts, log: opts.Logger, tools: map[string]tools.Tool{}, metrics: opts.Metrics}
	s.out = egress{r: opts.Redactor, ws: &s.wire}
	s.streams = newStreamGuard(cfg.Server.Sessions, s.metrics.streamEvicted)
	s.metrics.Gauge("backstage_mcp_streams_open", "Standalone SSE streams (GET /mcp) open in this process.",
		func() float64 { return float64(s.streams.Open()) })
	budget, err := newIngressBudget(cfg.Server.IngressRate, cfg.Server.IngressKiBRate)
	if err != nil {
		return nil, err
	}
	s.budget = budget
	if err := s.initUnauthenticated(); err != nil {
		return nil, err
	}
	key, previous, err := cfg.Server.CursorKeys()
	if err != nil {
		return nil, err
	}
	deps := &tools.Deps{Catalog: opts.Catalog, Redactor: toolRedactor{opts.Redactor}, Cursors: tools.NewCursorCodec(key, previous...),
		Annotations: cfg.Catalog.SummaryAnnotations, Now: opts.Now}
	if opts.Mirror != nil {
		deps.Changes = opts.Mirror.ChangeLog()
	}
	s.deps = deps
	s.chain = s.newChain()
	comp := newCompleter(s)
	mopts := append(s.register(),
		mcpserver.WithPromptCapabilities(offersSubscriptions),
		mcpserver.WithCompletions(),
		mcpserver.WithPromptCompletionProvider(comp),
		mcpserver.WithResourceCompletionProvider(comp),
	)
	mopts = append(mopts,
		mcpserver.WithToolCapabilities(offersSubscriptions),
		mcpserver.WithInstructions(instructions),
	)
	s.mcp = mcpserver.NewMCPServer(Name, opts.Version, mopts...)
	for _, t := range tools.All(deps) {
		s.tools[t.Tool.Name] = t
		s.mcp.AddTool(t.Tool, t.Handler)
	}
	s.addResources()
	s.addPrompts()
	return s, nil
}

const instructions = "Read-only access to the Backstage software catalog, limited to what the signed-in user may see. " +
	"Entity refs are written kind:namespace/name (e.g. component:default/orders-service). Start with catalog_search_entities to find refs; " +
	"use catalog_get_entity, catalog_find_owner and catalog_get_api_definition for details; for \"what depends on X\" or \"what breaks if X goes down\" call catalog_find_dependents " +
	"(it follows dependsOn and API consumers transitively and names whom to tell); catalog_get_relations walks any relation. Secrets are redacted as [REDACTED:<rule>]."

// MCP returns the underlying mcp-go server (for in-process clients).
func (s *Server) MCP() *mcpserver.MCPServer { return s.mcp }

func resultText(r *mcp.CallToolResult) string {
	for _, c := range r.Content {
		if t, ok := c.(mcp.TextContent); ok {
			return t.Text
		}
	}
	return ""
}

func roundUp(d time.Duration) string {
	if d < time.Second {
		return "1s"
	}
	return d.Round(time.Second).String()
}

// AuditEvent writes a non-call record (server start/stop, policy reload).
func (s *Server) AuditEvent(ctx context.Context, typ audit.Type, reason string) error {
	return s.appendAudit(ctx, &audit.Record{Type: typ, Transport: s.opts.Transport, Reason: reason})
}

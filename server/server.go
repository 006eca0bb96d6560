// Package server assembles backstage-mcp: configuration, the MCP server
// with its tool middleware chain, and the stdio and Streamable HTTP
// transports with health and readiness endpoints.
//
// One tool call flows: transport → caller identity → tool middleware
// (recover → call facts → tool handler) → catalog client with the
// server's own credential → per-entity re-check, masking and redaction in
// the tool → result.
//
//	cfg, _ := server.LoadConfig("config.yaml", os.Getenv)
//	s, _ := server.New(cfg, server.Options{Catalog: client, Redactor: r})
//	_ = s.ServeHTTP(ctx, "127.0.0.1:8080")
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/backstage-mcp/backstage-mcp/tools"
	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
)

// Name is the MCP server name reported to clients.
const Name = "backstage-mcp"

// Options are the server's collaborators.
type Options struct {
	// Logger receives operational logs. Nil discards them.
	Logger *slog.Logger
	// Catalog answers catalog queries (required).
	Catalog tools.Catalog
	// Redactor scrubs every entity before it leaves (required).
	Redactor tools.Redactor
	// Ready reports whether Backstage answers; used by /readyz.
	Ready func(ctx context.Context) error
	// LocalIdentity is the fixed identity used when no verified token is
	// present (stdio and demo). Nil means every call needs a verified identity.
	LocalIdentity *tools.Identity
	// Version is reported to clients.
	Version string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server is one backstage-mcp instance.
type Server struct {
	cfg   *Config
	opts  Options
	log   *slog.Logger
	mcp   *mcpserver.MCPServer
	tools map[string]tools.Tool
}

// New builds the server and registers every tool.
func New(cfg *Config, opts Options) (*Server, error) {
	if cfg == nil {
		return nil, errors.New("server: nil config")
	}
	if opts.Catalog == nil {
		return nil, errors.New("server: a catalog is required")
	}
	if opts.Redactor == nil {
		return nil, errors.New("server: a redactor is required")
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
	s := &Server{cfg: cfg, opts: opts, log: opts.Logger, tools: map[string]tools.Tool{}}
	var key []byte
	if cfg.Server.CursorKey != "" {
		key = []byte(cfg.Server.CursorKey)
	}
	deps := &tools.Deps{Catalog: opts.Catalog, Redactor: opts.Redactor, Cursors: tools.NewCursorCodec(key)}
	s.mcp = mcpserver.NewMCPServer(Name, opts.Version,
		mcpserver.WithToolCapabilities(false),
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

// caller derives the identity and access of the caller from ctx.
// It returns ok=false when the call carries no identity (fail closed).
func (s *Server) caller(ctx context.Context) (context.Context, bool) {
	if s.opts.LocalIdentity != nil {
		ctx = tools.WithIdentity(ctx, *s.opts.LocalIdentity)
		return tools.WithAccess(ctx, tools.OpenAccess{}), true
	}
	return ctx, false
}

// filterTools shows only the tools the caller may call; mcp-go applies the
// same filter at call time, so a filtered tool is as absent as an unknown one.
func (s *Server) filterTools(ctx context.Context, in []mcp.Tool) []mcp.Tool {
	if _, ok := s.caller(ctx); !ok {
		return []mcp.Tool{}
	}
	return in
}

// middleware wraps every tool handler: recover from panics, attach the
// caller, collect call facts and log the outcome.
func (s *Server) middleware(next mcpserver.ToolHandlerFunc) mcpserver.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (res *mcp.CallToolResult, err error) {
		start := s.opts.Now()
		tool := req.Params.Name
		defer func() {
			if p := recover(); p != nil {
				s.log.ErrorContext(ctx, "tool panicked", "tool", tool, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				res, err = mcp.NewToolResultError("internal error; the call was not completed"), nil
			}
		}()
		ctx, ci := tools.WithCallInfo(ctx)
		ctx, ok := s.caller(ctx)
		if !ok {
			return mcp.NewToolResultError("no verified identity for this call"), nil
		}
		res, err = next(ctx, req)
		_, count, red := ci.Snapshot()
		s.log.DebugContext(ctx, "tool call", "tool", tool, "entities", count, "redactions", len(red),
			"isError", res != nil && res.IsError, "duration", s.opts.Now().Sub(start))
		return res, err
	}
}

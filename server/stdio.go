package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	mcpserver "github.com/mark3labs/mcp-go/server"
)

// ServeStdio speaks MCP over in/out until ctx is cancelled or in closes.
// Logs never go to out: it carries the protocol.
func (s *Server) ServeStdio(ctx context.Context, in io.Reader, out io.Writer) error {
	std := mcpserver.NewStdioServer(s.mcp)
	std.SetErrorLogger(slog.NewLogLogger(s.log.Handler(), slog.LevelWarn))
	// Every line passes ingress (newIngressReader) before mcp-go reads it.
	// Answers pass the per-revision rules (wire.go) on their way out.
	fix := &stdioAnswers{}
	err := std.Listen(withIngressRedacted(ctx), newIngressReader(in, s.out, s.cfg.Server.IngressRedactionBudget, &s.wire, fix), newStdioOut(out, fix))
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, io.EOF) {
		return nil
	}
	return fmt.Errorf("server: stdio: %w", err)
}

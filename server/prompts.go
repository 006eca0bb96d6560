package server

import (
	"context"
	"fmt"
	"strings"

	"github.com/backstage-mcp/backstage-mcp/tools"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
)

// addPrompts registers the prompts.
func (s *Server) addPrompts() {
	for _, p := range tools.Prompts() {
		if p.Since {
			prompt := mcp.NewPrompt(p.Name, mcp.WithPromptTitle(p.Title), mcp.WithPromptDescription(p.Description),
				mcp.WithArgument("since", mcp.ArgumentDescription("How far back: a duration such as 24h or 7d, or an RFC 3339 time (default 7d).")))
			s.mcp.AddPrompt(prompt, s.promptHandler(p))
			continue
		}
		argDesc := "Entity ref, kind:namespace/name, e.g. component:default/orders-service."
		if p.Kind != "" {
			argDesc = fmt.Sprintf("%s ref, e.g. %s:default/payments (the kind may be left out).", p.Kind, p.Kind)
		}
		prompt := mcp.NewPrompt(p.Name, mcp.WithPromptTitle(p.Title), mcp.WithPromptDescription(p.Description),
			mcp.WithArgument("ref", mcp.ArgumentDescription(argDesc), mcp.RequiredArgument()))
		s.mcp.AddPrompt(prompt, s.promptHandler(p))
	}
}

func (s *Server) promptHandler(p tools.Prompt) mcpserver.PromptHandlerFunc {
	return func(ctx context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		// The argument is redacted before anything else sees it, as a
		// tool's arguments are: a ref parser that lowercases would make a
		// secret in it unrecognisable to egress.
		name := "ref"
		if p.Since {
			name = "since"
		}
		raw, _, err := s.out.text(name, strings.TrimSpace(req.Params.Arguments[name]), nil)
		if err != nil {
			return nil, fmt.Errorf("server: prompt %s: %w", p.Name, err)
		}
		var arg string
		switch {
		case p.Since:
			if raw != "" {
				if err := tools.CheckSince(raw); err != nil {
					return nil, invalidParams(fmt.Sprintf("prompt %s: argument \"since\": expected a duration such as 24h or 7d, or an RFC 3339 time", p.Name))
				}
			}
			arg = raw
		case raw == "":
			return nil, invalidParams(fmt.Sprintf("prompt %s: missing argument \"ref\"", p.Name))
		default:
			ref, err := catalog.ParseRef(raw, p.Kind)
			if err != nil {
				return nil, invalidParams(fmt.Sprintf("prompt %s: argument \"ref\": expected %s", p.Name, catalog.RefFormat))
			}
			arg = ref.String()
		}
		// The argument is the caller's own text, but every byte that
		// leaves passes egress.
		text, _, err := s.out.text("", p.Text(arg), nil)
		if err != nil {
			return nil, fmt.Errorf("server: prompt %s: %w", p.Name, err)
		}
		return mcp.NewGetPromptResult(p.Title, []mcp.PromptMessage{
			mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent(text)),
		}), nil
	}
}

// filterPrompts lists a prompt only when the caller may call every tool it
// names, and a prompt about changes only in catalog mirror mode (the only
// mode with a change feed).
func (s *Server) filterPrompts(ctx context.Context, in []mcp.Prompt) []mcp.Prompt {
	sc := s.grant(ctx)
	if sc.Err != nil {
		return []mcp.Prompt{}
	}
	allowed := map[string]bool{}
	for _, t := range sc.Grant.AllowedTools() {
		allowed[t] = true
	}
	out := make([]mcp.Prompt, 0, len(in))
	for _, pr := range in {
		for _, cp := range tools.Prompts() {
			if cp.Name != pr.Name {
				continue
			}
			ok := !cp.Since || s.opts.Mirror != nil
			for _, t := range cp.Tools {
				ok = ok && allowed[t]
			}
			if ok {
				out = append(out, pr)
			}
		}
	}
	return out
}

package tools

import (
	"context"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
)

// WhoAmI is whoami: the identity the server acts for in this session.
func WhoAmI() Tool {
	t := newTool("whoami", "The identity this server acts for: Backstage user, groups, agent and scopes. "+
		"Answers hold only what this user may see; call it when entities seem missing.", schema(nil), "Who am I")
	h := func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		if _, err := decodeArgs(req.Params.RawArguments, nil); err != nil {
			return toolError(err), nil
		}
		id, ok := ctx.Value(identityKey).(Identity)
		if !ok {
			return mcp.NewToolResultError("no identity is attached to this session"), nil
		}
		var b strings.Builder
		fmt.Fprintf(&b, "user %s", firstNonEmpty(id.User, id.Subject, "(unknown)"))
		if id.Email != "" {
			fmt.Fprintf(&b, " <%s>", id.Email)
		}
		fmt.Fprintf(&b, " (%s)", id.Mode)
		if len(id.OwnershipRefs) > 0 {
			fmt.Fprintf(&b, "\nownership: %s", strings.Join(id.OwnershipRefs, ", "))
		}
		if id.Agent != "" || id.AgentName != "" {
			fmt.Fprintf(&b, "\nagent: %s", strings.TrimSpace(id.Agent+" "+id.AgentName))
		}
		if len(id.Scopes) > 0 {
			fmt.Fprintf(&b, "\nscopes: %s", strings.Join(id.Scopes, " "))
		}
		if !id.ExpiresAt.IsZero() {
			fmt.Fprintf(&b, "\ntoken expires: %s", id.ExpiresAt.UTC().Format("2006-01-02T15:04:05Z"))
		}
		return result(id, b.String()), nil
	}
	return Tool{Tool: t, Handler: h, Answer: "The Backstage user with e-mail and the identity mode, the ownership refs (the user and its groups), the agent, the token's scopes and when it expires; the roles and tools granted are in structuredContent.", Scope: ScopeRead}
}

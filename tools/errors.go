package tools

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"github.com/mark3labs/mcp-go/mcp"
)

// toolError turns a failure into an IsError result with a message for
// the agent. Upstream details never reach the message.
func toolError(err error) *mcp.CallToolResult {
	var ae *argError
	switch {
	case errors.As(err, &ae):
		return mcp.NewToolResultError("invalid arguments: " + ae.msg)
	case errors.Is(err, errRedaction):
		return mcp.NewToolResultError("the result was withheld because secret redaction failed; nothing was returned")
	case errors.Is(err, catalog.ErrInvalidRef):
		return mcp.NewToolResultError(strings.TrimPrefix(err.Error(), "catalog: "))
	case errors.Is(err, catalog.ErrBadFilter):
		return mcp.NewToolResultError("invalid arguments: " + strings.TrimPrefix(err.Error(), "catalog: "))
	case errors.Is(err, catalog.ErrRateLimited):
		return mcp.NewToolResultError("Backstage is rate limiting requests; retry in a few seconds")
	case errors.Is(err, context.Canceled):
		return mcp.NewToolResultError("the call was cancelled")
	case errors.Is(err, catalog.ErrNotAllowed):
		return mcp.NewToolResultError("Backstage refused the server's credential; ask the operator to check the Backstage token")
	case errors.Is(err, catalog.ErrBadInput):
		return mcp.NewToolResultError("Backstage rejected the query as invalid; check the arguments")
	default:
		return mcp.NewToolResultError("Backstage is unavailable right now; try again later")
	}
}

// notFound is the single message for missing and hidden entities alike.
func notFound(ref string) *mcp.CallToolResult {
	return mcp.NewToolResultError(fmt.Sprintf(
		"entity %s not found. Refs are written %s; use catalog_search_entities to find the right one.", ref, catalog.RefFormat))
}

// result builds a structured result with a compact text form.
func result(structured any, text string) *mcp.CallToolResult {
	return mcp.NewToolResultStructured(structured, text)
}

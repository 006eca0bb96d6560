package tools

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"github.com/mark3labs/mcp-go/mcp"
)

// TestErrorKindOfEveryMessage: ErrorKind reads the messages toolError and
// notFound write, so each of them is pinned here to its kind; a message
// changed on one side only fails this test instead of turning a refusal
// into "tool" in the audit trail.
func TestErrorKindOfEveryMessage(t *testing.T) {
	up := func(kind error) error {
		return &catalog.UpstreamError{Kind: kind, Status: 500, Op: "get entity"}
	}
	cases := []struct {
		res  *mcp.CallToolResult
		want string
	}{
		{toolError(badArg("missing \"ref\"")), ErrArguments},
		{toolError(fmt.Errorf("%w: bad", catalog.ErrInvalidRef)), ErrArguments},
		{toolError(fmt.Errorf("x: %w", catalog.ErrBadFilter)), ErrArguments},
		{toolError(errRedaction), ErrRedaction},
		{toolError(up(catalog.ErrRateLimited)), ErrUpstream},
		{toolError(context.Canceled), ErrCancelled},
		{toolError(up(catalog.ErrNotAllowed)), ErrUpstream},
		{toolError(up(catalog.ErrBadInput)), ErrUpstream},
		{toolError(up(catalog.ErrUnavailable)), ErrUpstream},
		{toolError(errors.New("anything else")), ErrUpstream},
		{notFound("component:default/x"), ErrNotFound},
		{mcp.NewToolResultText("fine"), ""},
	}
	for _, c := range cases {
		if got := ErrorKind(c.res); got != c.want {
			t.Errorf("ErrorKind(%q) = %q, want %q", text(c.res), got, c.want)
		}
	}
}

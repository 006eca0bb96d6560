package tools

import (
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
)

// The kinds of a tool's error result (ErrorKind), as the audit record
// tells them apart.
const (
	// ErrArguments: the arguments are invalid (a bad ref, filter or value).
	ErrArguments = "arguments"
	// ErrNotFound: the entity does not exist, or the caller may not see
	// it (CallInfo.HiddenCount tells which).
	ErrNotFound = "not_found"
	// ErrUpstream: Backstage failed, refused the server's credential, or
	// rate-limited the server.
	ErrUpstream = "upstream"
	// ErrRedaction: redaction failed and the result was withheld.
	ErrRedaction = "redaction"
	// ErrCancelled: the caller cancelled the call.
	ErrCancelled = "cancelled"
	// ErrOther: any other error result.
	ErrOther = "tool"
)

// ErrorKind classifies an error result of this package's tools by the
// message toolError and notFound write ("" when res is no error result).
// It reads the first text block only; the messages are this package's
// own, so the two stay together.
func ErrorKind(res *mcp.CallToolResult) string {
	if res == nil || !res.IsError {
		return ""
	}
	text := ""
	for _, c := range res.Content {
		if t, ok := c.(mcp.TextContent); ok {
			text = t.Text
			break
		}
	}
	switch {
	case strings.HasPrefix(text, "invalid arguments: "), strings.HasPrefix(text, "invalid entity ref"):
		return ErrArguments
	case strings.HasPrefix(text, "entity ") && strings.Contains(text, " not found. Refs are written "):
		return ErrNotFound
	case strings.HasPrefix(text, "Backstage "):
		return ErrUpstream
	case strings.HasPrefix(text, "the result was withheld because secret redaction failed"):
		return ErrRedaction
	case text == "the call was cancelled":
		return ErrCancelled
	}
	return ErrOther
}

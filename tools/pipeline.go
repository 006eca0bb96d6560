package tools

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"github.com/mark3labs/mcp-go/mcp"
)

// entity is an admitted entity: visible to the caller, masked and redacted.
type entity struct {
	m   map[string]any
	ref string
}

// admit decodes a raw entity, re-checks it against the caller's Access,
// masks and redacts it. ok=false means the caller may not see it; an
// error means redaction failed and the whole result must be withheld.
func (d *Deps) admit(ctx context.Context, raw json.RawMessage) (entity, bool, error) {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return entity{}, false, fmt.Errorf("tools: %w: malformed entity", catalog.ErrUnavailable)
	}
	acc := accessFrom(ctx)
	if !acc.Visible(m) {
		return entity{}, false, nil
	}
	m = acc.Mask(m)
	if m == nil {
		return entity{}, false, nil
	}
	if d.Redactor == nil {
		return entity{}, false, errRedaction
	}
	v, counts, err := d.Redactor.Redact(m)
	if err != nil {
		return entity{}, false, fmt.Errorf("%w: %w", errRedaction, err)
	}
	rm, ok := v.(map[string]any)
	if !ok {
		return entity{}, false, errRedaction
	}
	callInfo(ctx).addRedactions(counts)
	return entity{m: rm, ref: entityRef(rm)}, true, nil
}

var errRedaction = errors.New("tools: redaction failed")

// record notes an entity returned to the caller (for audit).
func record(ctx context.Context, e entity) { callInfo(ctx).addEntity(e.ref) }

// redactValue scrubs a value built outside an entity (e.g. a ref in an
// error message the agent will read).
func (d *Deps) redactString(ctx context.Context, s string) (string, error) {
	if d.Redactor == nil {
		return "", errRedaction
	}
	v, counts, err := d.Redactor.Redact(s)
	if err != nil {
		return "", fmt.Errorf("%w: %w", errRedaction, err)
	}
	out, ok := v.(string)
	if !ok {
		return "", errRedaction
	}
	callInfo(ctx).addRedactions(counts)
	return out, nil
}

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

// CursorCodec signs the Backstage cursors handed to agents and binds them
// to the caller, so an agent cannot forge a cursor that carries another
// filter, or reuse another caller's.
type CursorCodec struct{ key []byte }

// NewCursorCodec uses key, or a random key when key is empty (cursors then
// stay valid only within this process).
func NewCursorCodec(key []byte) *CursorCodec {
	if len(key) == 0 {
		key = make([]byte, 32)
		_, _ = rand.Read(key)
	}
	return &CursorCodec{key: append([]byte(nil), key...)}
}

func (c *CursorCodec) mac(binding, cursor string) []byte {
	h := hmac.New(sha256.New, c.key)
	h.Write([]byte(binding))
	h.Write([]byte{0})
	h.Write([]byte(cursor))
	return h.Sum(nil)[:18]
}

// Wrap returns an opaque cursor for the agent.
func (c *CursorCodec) Wrap(binding, cursor string) string {
	if cursor == "" {
		return ""
	}
	e := base64.RawURLEncoding
	return e.EncodeToString([]byte(cursor)) + "." + e.EncodeToString(c.mac(binding, cursor))
}

// Unwrap verifies a cursor from the agent and returns Backstage's cursor.
func (c *CursorCodec) Unwrap(binding, s string) (string, error) {
	e := base64.RawURLEncoding
	body, sig, ok := strings.Cut(s, ".")
	if !ok {
		return "", badArg("argument \"cursor\" is not a cursor returned by catalog_search_entities")
	}
	cur, err1 := e.DecodeString(body)
	mac, err2 := e.DecodeString(sig)
	if err1 != nil || err2 != nil || !hmac.Equal(mac, c.mac(binding, string(cur))) {
		return "", badArg("argument \"cursor\" is not a cursor returned by catalog_search_entities for this caller")
	}
	return string(cur), nil
}

// bindingFrom identifies the caller for cursor binding.
func bindingFrom(ctx context.Context) string {
	if id, ok := ctx.Value(identityKey).(Identity); ok {
		return id.Subject + "\x00" + id.User + "\x00" + id.Agent
	}
	return ""
}

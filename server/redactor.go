package server

import (
	"fmt"

	"github.com/backstage-mcp/backstage-mcp/redact"
	"github.com/backstage-mcp/backstage-mcp/tools"
)

// toolRedactor adapts the redaction engine (redact.Redactor) to the
// interface the tools call (tools.Redactor). Three names, three roles: the
// engine, the seam the tools depend on, and this adapter between them.
type toolRedactor struct{ R *redact.Redactor }

var _ tools.Redactor = toolRedactor{}

// Redact scrubs v and returns the per-rule counts (invisible characters
// removed are counted under "invisible-unicode").
func (a toolRedactor) Redact(v any) (any, map[string]int, error) {
	if a.R == nil {
		return nil, nil, fmt.Errorf("server: no redactor")
	}
	out, rep, err := a.R.Value(v)
	if err != nil {
		return nil, nil, fmt.Errorf("server: redact: %w", err)
	}
	return out, counts(nil, rep), nil
}

// RedactKeyed scrubs v judged under key.
func (a toolRedactor) RedactKeyed(key string, v any) (any, map[string]int, error) {
	if a.R == nil {
		return nil, nil, fmt.Errorf("server: no redactor")
	}
	out, rep, err := a.R.KeyedValue(key, v)
	if err != nil {
		return nil, nil, fmt.Errorf("server: redact: %w", err)
	}
	return out, counts(nil, rep), nil
}

package server

import (
	"fmt"

	"github.com/backstage-mcp/backstage-mcp/redact"
)

// toolRedactor adapts redact.Redactor to the tools' interface.
type toolRedactor struct{ R *redact.Redactor }

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
	counts := rep.Counts
	if rep.Invisible > 0 {
		if counts == nil {
			counts = map[string]int{}
		}
		counts["invisible-unicode"] += rep.Invisible
	}
	return out, counts, nil
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

package server

import (
	"fmt"

	"github.com/backstage-mcp/backstage-mcp/redact"
	"github.com/backstage-mcp/backstage-mcp/tools"
)

// ToolRedactor adapts the redaction engine (redact.Redactor) to the
// interface the tools call (tools.Redactor). Three names, three roles: the
// engine, the seam the tools depend on, and this adapter between them.
type ToolRedactor struct{ R *redact.Redactor }

var _ tools.Redactor = ToolRedactor{}

// Redact scrubs v and returns the per-rule counts (invisible characters
// removed are counted under "invisible-unicode").
func (a ToolRedactor) Redact(v any) (any, map[string]int, error) {
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

package main

import (
	"fmt"
	"strings"
)

// oursSettings is what the bench sets in backstage-mcp's configuration.
// Everything it does not set is the shipped default.
type oursSettings struct {
	// backstageURL is the catalog; "" serves the embedded demo catalog.
	backstageURL string
	policy       string
	auditPath    string
	// auditSync is audit.sync; "" keeps the shipped default (every).
	auditSync string
	// catalogMode is catalog.mode (passthrough, mirror); "" keeps the
	// shipped default.
	catalogMode string
	// bucket is every rate-limit bucket.
	bucket string
	// upstreamMax is rateLimits.upstream.maxConcurrent; 0 keeps the
	// shipped default.
	upstreamMax int
}

// oursConfig is backstage-mcp's configuration in the bench: the catalog,
// the policy, an audit file that never rotates, every rate-limit bucket set
// to s.bucket, warn-level JSON logs, and s's variant settings. The rest,
// audit sync included unless s.auditSync says otherwise, is the shipped
// default.
func oursConfig(s oursSettings) string {
	var w strings.Builder
	if s.backstageURL != "" {
		// Every path gets the load generator's patience (callTimeout):
		// REST, the floors and the peer wait that long for an answer, so
		// backstage-mcp's own limits on a request to Backstage (shipped:
		// 10 s per request, 15 s with the wait for a slot) are raised to
		// match, or Backstage's slowest answers would count as our
		// failures and as nobody else's.
		fmt.Fprintf(&w, "backstage:\n  baseUrl: %s\n  token: ${BENCH_BACKSTAGE_TOKEN}\n  timeout: %s\n", s.backstageURL, callTimeout)
		if s.catalogMode != "" {
			fmt.Fprintf(&w, "catalog:\n  mode: %s\n", s.catalogMode)
		}
	}
	// The load generator is one user sending as fast as the server
	// answers: the per-user message budget (server.ingressRate) would
	// measure itself, so it is lifted like every other bucket. The cursor
	// key is required with state: redis.
	fmt.Fprintf(&w, "server:\n  cursorKey: bench-cursor-key-0123456789abcdef0123456789\n  ingressRate: %[1]s\n  ingressKiBRate: { unlimited: true }\n", s.bucket)
	fmt.Fprintf(&w, "policy:\n  file: %s\naudit:\n  path: %s\n  maxBytes: -1\n", s.policy, s.auditPath)
	if s.auditSync != "" {
		fmt.Fprintf(&w, "  sync: %s\n  syncInterval: 1s\n", s.auditSync)
	}
	fmt.Fprintf(&w, `rateLimits:
  defaultClass: default
  classes:
    default: %[1]s
    high: %[1]s
    low: %[1]s
  agent: %[1]s
  global: %[1]s
  upstream:
    rate: { unlimited: true }
    timeout: %[3]s
%[2]slog:
  level: warn
  format: json
`, s.bucket, upstreamMaxLine(s.upstreamMax), callTimeout)
	return w.String()
}

// upstreamMaxLine is the maxConcurrent line of rateLimits.upstream, or ""
// for the shipped default.
func upstreamMaxLine(n int) string {
	if n <= 0 {
		return ""
	}
	return fmt.Sprintf("    maxConcurrent: %d\n", n)
}

// oursVariant is one backstage-mcp configuration measured side by side with
// the others: one process and one column each.
type oursVariant struct {
	// name is the path name in results.json; the first variant is "ours".
	name string
	// label is the column header.
	label string
	// note says how the variant differs from the shipped defaults.
	note string
	// set applies the variant to the bench's settings; nil for the
	// shipped defaults.
	set func(*oursSettings)
}

// oursVariants are the backstage-mcp columns, the shipped defaults first
// (sizes, secrets and the soak use that one). Adding a column is adding an
// entry.
var oursVariants = []oursVariant{
	{name: "ours", label: "ours every", note: "shipped defaults (audit.sync: every, the record synced to disk before each answer)"},
	{name: "ours-interval", label: "ours interval", note: "audit.sync: interval, syncInterval: 1s",
		set: func(s *oursSettings) { s.auditSync = "interval" }},
	{name: pathMirror, label: "ours mirror", note: "catalog.mode: mirror (in-memory copy kept fresh by delta sync), otherwise shipped defaults",
		set: func(s *oursSettings) { s.catalogMode = "mirror" }},
	{name: pathMirrorInterval, label: "mirror interval", note: "catalog.mode: mirror and audit.sync: interval (syncInterval: 1s): the mirror without a disk sync before each answer",
		set: func(s *oursSettings) { s.catalogMode, s.auditSync = "mirror", "interval" }},
}

// settings returns the bench's settings with the variant applied.
func (v oursVariant) settings(base oursSettings) oursSettings {
	if v.set != nil {
		v.set(&base)
	}
	return base
}

// Path names other than backstage-mcp's variants.
const (
	pathRest  = "rest"
	pathFloor = "floor"
	// pathMCPFloor is the MCP floor (mcpfloor.go): REST behind a trivial
	// mcp-go server, over Streamable HTTP.
	pathMCPFloor = "mcp-floor"
	// pathMCPEmpty is the empty-answer floor (mcpfloor.go): mcp-go over
	// Streamable HTTP answering without any work, Backstage not asked.
	pathMCPEmpty = "mcp-empty"
	pathPeer     = "peer"
	// pathMirror and pathMirrorInterval are the mirror variants, the only
	// ones measured above --full-up-to entities.
	pathMirror         = "ours-mirror"
	pathMirrorInterval = "ours-mirror-interval"
)

// pathLabel returns the column header of a path name.
func pathLabel(name string) string {
	switch name {
	case pathRest:
		return "REST"
	case pathFloor:
		return "REST+hop floor"
	case pathMCPFloor:
		return "MCP floor"
	case pathMCPEmpty:
		return "MCP empty answer"
	case pathPeer:
		return "peer"
	}
	for _, v := range oursVariants {
		if v.name == name {
			return v.label
		}
	}
	return name
}

// mirrorOnly reports whether path name is measured above --full-up-to
// entities: REST, the empty-answer floor and the mirror variants.
func mirrorOnly(name string) bool {
	switch name {
	case pathRest, pathMCPEmpty, pathMirror, pathMirrorInterval:
		return true
	}
	return false
}

// isOurs reports whether a path name is one of backstage-mcp's variants.
func isOurs(name string) bool {
	for _, v := range oursVariants {
		if v.name == name {
			return true
		}
	}
	return false
}

// oursNames returns the variants' path names, in order.
func oursNames() []string {
	out := make([]string, 0, len(oursVariants))
	for _, v := range oursVariants {
		out = append(out, v.name)
	}
	return out
}

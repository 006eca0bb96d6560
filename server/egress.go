package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/backstage-mcp/backstage-mcp/redact"
	"github.com/backstage-mcp/backstage-mcp/server/audit"
	"github.com/backstage-mcp/backstage-mcp/server/chain"
	"github.com/mark3labs/mcp-go/mcp"
)

// egress is the one redaction step in front of everything the server
// writes outward: tool results (structured and text, error texts
// included), audit records (every field) and log lines. The tools redact
// entities with their field names as context as they admit them; egress
// is the guarantee that nothing else leaves unredacted, whatever a tool,
// an error path or a new channel produces. Metric labels never carry
// caller text: their values come from closed sets (see metricTool).
type egress struct {
	r  *redact.Redactor
	ws *wireStats // nil: not counted
}

// counts merges a redaction report into per-rule counts.
func counts(dst map[string]int, rep redact.Report) map[string]int {
	if rep.Total() == 0 && rep.Invisible == 0 {
		return dst
	}
	if dst == nil {
		dst = map[string]int{}
	}
	for k, v := range rep.Counts {
		dst[k] += v
	}
	if rep.Invisible > 0 {
		dst["invisible-unicode"] += rep.Invisible
	}
	return dst
}

// text redacts one string judged under key (empty for free text).
func (e egress) text(key, s string, red map[string]int) (string, map[string]int, error) {
	out, rep, err := e.r.KeyedValue(key, s)
	if err != nil {
		return "", red, fmt.Errorf("server: egress: %w", err)
	}
	str, _ := out.(string)
	return str, counts(red, rep), nil
}

// result redacts every string of a tool result: the structured content as
// JSON with its keys as context, and every text block. It returns the
// result's encoded size. Content of any other type is refused: a new kind
// of content must be given its redaction here before it can leave.
func (e egress) result(res *mcp.CallToolResult, red map[string]int) (*mcp.CallToolResult, int, map[string]int, error) {
	size := 0
	out := *res
	if res.StructuredContent != nil {
		e.ws.encode()
		doc, err := encodeStructured(res.StructuredContent)
		if err != nil {
			return nil, 0, red, fmt.Errorf("server: egress: encode structured content: %w", err)
		}
		clean, rep, err := e.r.JSON(doc)
		if err != nil {
			return nil, 0, red, fmt.Errorf("server: egress: %w", err)
		}
		red = counts(red, rep)
		out.StructuredContent = json.RawMessage(clean)
		size += len(clean)
	}
	if res.Meta != nil && len(res.Meta.AdditionalFields) > 0 {
		fields := make(map[string]any, len(res.Meta.AdditionalFields))
		for k, v := range res.Meta.AdditionalFields {
			switch t := v.(type) {
			case string:
				clean, r2, err := e.text(k, t, red)
				if err != nil {
					return nil, 0, red, err
				}
				red, fields[k] = r2, clean
				size += len(k) + len(clean)
			case bool, float64, int, nil:
				fields[k] = t
				size += len(k) + 8
			default:
				return nil, 0, red, fmt.Errorf("server: egress: _meta %q: a %T has no redaction step", redact.Clip(k, 64), v)
			}
		}
		out.Meta = &mcp.Meta{ProgressToken: res.Meta.ProgressToken, AdditionalFields: fields}
	}
	out.Content = make([]mcp.Content, len(res.Content))
	for i, c := range res.Content {
		var (
			n   int
			err error
		)
		out.Content[i], n, red, err = e.content(c, red)
		if err != nil {
			return nil, 0, red, err
		}
		size += n
	}
	return &out, size, red, nil
}

// jsonAppender is structured content that encodes itself, byte for byte
// as json.Marshal would (false: it cannot, and json.Marshal does).
type jsonAppender interface {
	AppendJSON(dst []byte) ([]byte, bool)
}

// encodeStructured encodes a result's structured content for redaction:
// by its own encoder when it has one (the same bytes, without
// reflection), else by json.Marshal.
func encodeStructured(v any) ([]byte, error) {
	if a, ok := v.(jsonAppender); ok {
		if doc, ok := a.AppendJSON(make([]byte, 0, 4096)); ok {
			return doc, nil
		}
	}
	return json.Marshal(v)
}

// content redacts one content block. Text, resource links (every string
// field, with its name as context) and embedded text resources have a
// redaction step; anything else is refused.
func (e egress) content(c mcp.Content, red map[string]int) (mcp.Content, int, map[string]int, error) {
	var err error
	field := func(key string, s *string) int {
		if err != nil || *s == "" {
			return 0
		}
		*s, red, err = e.text(key, *s, red)
		return len(*s)
	}
	switch t := c.(type) {
	case mcp.TextContent:
		n := field("", &t.Text)
		return t, n, red, err
	case mcp.ResourceLink:
		n := field("uri", &t.URI) + field("name", &t.Name) + field("title", &t.Title) +
			field("description", &t.Description) + field("mimeType", &t.MIMEType)
		return t, n, red, err
	case mcp.EmbeddedResource:
		rc, ok := t.Resource.(mcp.TextResourceContents)
		if !ok || len(rc.Meta) > 0 && !plainMeta(rc.Meta) {
			return nil, 0, red, fmt.Errorf("server: egress: embedded resource of type %T has no redaction step", t.Resource)
		}
		n := field("uri", &rc.URI) + field("mimeType", &rc.MIMEType)
		if rc.MIMEType == mimeJSON && json.Valid([]byte(rc.Text)) {
			// JSON documents are judged with their keys as context.
			clean, rep, jerr := e.r.JSON([]byte(rc.Text))
			if jerr != nil {
				return nil, 0, red, fmt.Errorf("server: egress: %w", jerr)
			}
			red = counts(red, rep)
			rc.Text = string(clean)
			n += len(clean)
		} else {
			n += field("", &rc.Text)
		}
		if notice, ok := rc.Meta["notice"].(string); ok {
			meta := map[string]any{}
			for k, v := range rc.Meta {
				meta[k] = v
			}
			field("notice", &notice)
			meta["notice"] = notice
			rc.Meta = meta
		}
		t.Resource = rc
		return t, n, red, err
	default:
		return nil, 0, red, fmt.Errorf("server: egress: content of type %T has no redaction step", c)
	}
}

// plainMeta reports whether resource _meta holds only what egress knows
// how to judge: booleans and a notice string.
func plainMeta(m map[string]any) bool {
	for k, v := range m {
		switch v.(type) {
		case bool:
		case string:
			if k != "notice" {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// record redacts every string field of an audit record, argument keys
// and values included, before it is appended. argsClean says the
// arguments are already redacted (a call's, see redactedArgs).
func (e egress) record(rec *audit.Record, argsClean bool) error {
	var err error
	field := func(key string, s *string) {
		if err != nil || *s == "" {
			return
		}
		*s, _, err = e.text(key, *s, nil)
	}
	field("sessionId", &rec.SessionID)
	field("tool", &rec.Tool)
	field("reason", &rec.Reason)
	field("rule", &rec.Rule)
	field("sub", &rec.User.Sub)
	field("email", &rec.User.Email)
	field("ref", &rec.User.Ref)
	field("clientId", &rec.Agent.ClientID)
	field("name", &rec.Agent.Name)
	field("version", &rec.Agent.Version)
	field("callerTraceparent", &rec.CallerTraceparent)
	// The issuer is one of the configured issuers (verified) and the
	// source an address this server formatted: neither is caller text.
	// The token id and the User-Agent are.
	field("jti", &rec.User.TokenID)
	field("userAgent", &rec.UserAgent)
	for i := range rec.Redacted {
		field("ref", &rec.Redacted[i].Ref)
		field("path", &rec.Redacted[i].Path)
	}
	for i := range rec.Entities.Refs {
		field("ref", &rec.Entities.Refs[i])
	}
	if err != nil {
		return err
	}
	if len(rec.Arguments) > 0 && !argsClean {
		clean, _, jerr := e.r.JSON(rec.Arguments)
		if jerr != nil {
			rec.Arguments = json.RawMessage(`"[arguments withheld: redaction failed]"`)
		} else {
			rec.Arguments = clean
		}
	}
	return nil
}

// appendAudit is the only way the server writes an audit record: the
// record passes egress first. A record that cannot be redacted is not
// written, and the caller treats that as a failed append (fail closed).
func (s *Server) appendAudit(ctx context.Context, rec *audit.Record) error {
	return s.appendRecord(ctx, rec, false)
}

// appendRecord is appendAudit for a record whose arguments may already be
// redacted (argsClean: a call's record, whose arguments the chain took
// from ingress or redacted itself).
func (s *Server) appendRecord(ctx context.Context, rec *audit.Record, argsClean bool) error {
	if err := s.out.record(rec, argsClean); err != nil {
		return err
	}
	return s.opts.Audit.Append(context.WithoutCancel(ctx), rec)
}

// egressResult passes a call's result through egress. A result that
// cannot be redacted is withheld.
func (s *Server) egressResult(ctx context.Context, rec *audit.Record, res *mcp.CallToolResult) *mcp.CallToolResult {
	if res == nil {
		return nil
	}
	_, span := s.opts.Tracing.Tracer().Start(ctx, "redact.egress")
	if !resourceLinks(protocolRevision(ctx)) {
		res = withoutResourceLinks(res)
	}
	out, size, _, err := s.out.result(res, nil)
	span.End()
	if err != nil {
		s.log.ErrorContext(ctx, "result withheld: egress redaction failed", "tool", rec.Tool, "err", err)
		rec.Decision, rec.Reason, rec.Stage = audit.DecisionFailed, "redaction failed", chain.StageEgress
		rec.Redactions, rec.Redacted = nil, nil
		return mcp.NewToolResultError("the result was withheld because secret redaction failed; nothing was returned")
	}
	// What left: the markers in the result as sent (see sentRedactions).
	rec.Redactions, rec.Redacted = sentRedactions(out)
	rec.ResultBytes = size
	return out
}

// resourceLinksSince is the first protocol revision whose tool results may
// hold resource_link content; the schemas of 2024-11-05 and 2025-03-26
// lack it, and their clients (the official TypeScript SDK 1.12.1 among
// them) refuse a whole result that carries one.
const resourceLinksSince = "2025-06-18"

// resourceLinks reports whether a session on revision rev may receive
// resource_link content. Revisions are dates and compare as strings; an
// unknown revision (no session: the server's own in-process calls) gets
// them, as the latest revisions do.
func resourceLinks(rev string) bool {
	return rev == "" || rev >= resourceLinksSince
}

// withoutResourceLinks is res without its resource_link content (a copy;
// res is not changed).
func withoutResourceLinks(res *mcp.CallToolResult) *mcp.CallToolResult {
	keep := make([]mcp.Content, 0, len(res.Content))
	for _, c := range res.Content {
		if _, ok := c.(mcp.ResourceLink); !ok {
			keep = append(keep, c)
		}
	}
	if len(keep) == len(res.Content) {
		return res
	}
	out := *res
	out.Content = keep
	return &out
}

// finishCall writes the call's audit record and returns the result only
// if that succeeded (fail closed).
func (s *Server) finishCall(ctx context.Context, rec *audit.Record, dur time.Duration, res *mcp.CallToolResult) *mcp.CallToolResult {
	rec.DurationMs = float64(dur.Microseconds()) / 1000
	s.metrics.call(metricTool(s.tools, rec.Tool), metricDecision(rec), dur, rec.Redactions)
	if err := s.appendRecord(ctx, rec, true); err != nil {
		s.metrics.auditFailure()
		s.log.ErrorContext(ctx, "audit write failed; result withheld", "tool", rec.Tool, "err", err)
		return mcp.NewToolResultError("the audit trail is unavailable, so the result was withheld; the operator has been alerted")
	}
	s.log.DebugContext(ctx, "tool call", "tool", rec.Tool, "decision", rec.Decision, "entities", rec.Entities.Count,
		"redactions", rec.RedactionTotal(), "duration", dur)
	return res
}

// metricDecision is a call's decision as the metrics label it: allow,
// deny, rate_limited or error, as before the record's finer decisions.
// Metrics are not the audit trail: they must read the same whether an
// entity is hidden or missing (the non-interference rule; see
// metricsoracle_test.go), so a hidden entity and a missing one are both
// "error", and a hidden tool and an unknown one both "deny".
func metricDecision(rec *audit.Record) string {
	switch rec.Decision {
	case audit.DecisionAllowed:
		return "allow"
	case audit.DecisionRateLimited:
		return "rate_limited"
	case audit.DecisionScopeDenied:
		return "deny"
	case audit.DecisionHiddenByPolicy:
		if rec.Stage == chain.StageAuthz {
			return "deny"
		}
		return "error"
	case audit.DecisionRefused:
		if rec.Stage == chain.StageAuthz || rec.Stage == "identity" {
			return "deny"
		}
		return "error"
	}
	return "error"
}

// redactedArgs keeps the call's arguments for the audit record, redacted,
// with the redaction counts. If they cannot be redacted they are replaced
// by a note.
//
// Arguments that came through ingress (every HTTP and stdio message) were
// redacted there, with their keys as context, and decoded by mcp-go: they
// are taken as they are. Only arguments that did not (an in-process
// client, a resource read or completion the server builds) are checked and
// redacted here.
func (s *Server) redactedArgs(raw json.RawMessage, redacted bool) (json.RawMessage, map[string]int) {
	out := []byte(raw)
	var rep redact.Report
	if !redacted {
		s.wire.decode() // json.Valid
		if !json.Valid(raw) {
			return json.RawMessage(`"[unparsable arguments withheld]"`), nil
		}
		var err error
		out, rep, err = s.out.r.JSON(raw)
		if err != nil {
			return json.RawMessage(`"[arguments withheld: redaction failed]"`), nil
		}
	}
	// Count from the markers in the result, not from a pass alone: on
	// HTTP and stdio, ingress has already replaced the secrets. (A marker
	// an agent typed itself is counted too; the arguments field shows it
	// as sent.)
	var red map[string]int
	for _, m := range markerID.FindAllSubmatch(out, -1) {
		if red == nil {
			red = map[string]int{}
		}
		red[string(m[1])]++
	}
	if rep.Invisible > 0 {
		red = counts(red, redact.Report{Invisible: rep.Invisible})
	}
	return out, red
}

// markerID finds redaction markers, "[REDACTED:<rule id>]", and their rule.
var markerID = regexp.MustCompile(`\[REDACTED:([a-z0-9][a-z0-9-]*)\]`)

// redactingHandler is a slog.Handler that passes the message and every
// string attribute through egress, with the attribute's key as context.
// An attribute that cannot be redacted is dropped.
type redactingHandler struct {
	inner slog.Handler
	out   egress
}

// redactingLogger returns log with every line passed through egress.
func redactingLogger(log *slog.Logger, r *redact.Redactor) *slog.Logger {
	if h, ok := log.Handler().(redactingHandler); ok && h.out.r == r {
		return log
	}
	return slog.New(redactingHandler{inner: log.Handler(), out: egress{r: r}})
}

func (h redactingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h redactingHandler) Handle(ctx context.Context, rec slog.Record) error {
	msg, _, err := h.out.text("", rec.Message, nil)
	if err != nil {
		msg = "[log message withheld: redaction failed]"
	}
	clean := slog.NewRecord(rec.Time, rec.Level, msg, rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		if a, ok := h.attr(a); ok {
			clean.AddAttrs(a)
		}
		return true
	})
	return h.inner.Handle(ctx, clean)
}

func (h redactingHandler) attr(a slog.Attr) (slog.Attr, bool) {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		s, _, err := h.out.text(a.Key, v.String(), nil)
		if err != nil {
			return a, false
		}
		return slog.String(a.Key, s), true
	case slog.KindGroup:
		var kept []any
		for _, g := range v.Group() {
			if ga, ok := h.attr(g); ok {
				kept = append(kept, ga)
			}
		}
		return slog.Group(a.Key, kept...), true
	case slog.KindAny:
		// Errors and other values are logged by their text.
		s, _, err := h.out.text(a.Key, fmt.Sprint(v.Any()), nil)
		if err != nil {
			return a, false
		}
		return slog.String(a.Key, s), true
	default:
		return slog.Attr{Key: a.Key, Value: v}, true
	}
}

func (h redactingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	kept := make([]slog.Attr, 0, len(as))
	for _, a := range as {
		if a, ok := h.attr(a); ok {
			kept = append(kept, a)
		}
	}
	return redactingHandler{inner: h.inner.WithAttrs(kept), out: h.out}
}

func (h redactingHandler) WithGroup(name string) slog.Handler {
	return redactingHandler{inner: h.inner.WithGroup(name), out: h.out}
}

package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/backstage-mcp/backstage-mcp/redact"
	"github.com/backstage-mcp/backstage-mcp/server/audit"
)

// Ingress: every JSON-RPC message is redacted as it arrives, before
// mcp-go parses it. mcp-go answers some requests itself, quoting what the
// caller sent ("tool 'x' not found", "handler not found for resource URI
// 'x'"), and those answers never pass through a tool, so without this a
// secret an agent sends would come back in clear. Redaction only ever
// replaces the content of JSON strings, so a message keeps its shape;
// the tools then see their arguments as redacted (see chain.Chain.Call).

// ingress is the one read of every HTTP message: the body of a POST is
// read once, its invalid UTF-8 replaced, redacted once, and handed on as
// bytes to the per-revision rules (interop.go), which decode its top level
// once, and then to mcp-go. A body that is not a JSON object or array is
// answered by interop without being quoted (-32700, or -32600 for other
// JSON); a body that cannot be
// redacted is refused; a body that cannot be read (the body limit's own
// error, or a broken connection) is answered 413.
func (s *Server) ingress(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Body == nil {
			next.ServeHTTP(w, r)
			return
		}
		// Charged before it costs: with a Content-Length (which bounds
		// what Go's server reads) before the body is even read; without
		// one, once it is read and before redaction below, the most
		// expensive step per byte.
		charged := r.ContentLength >= 0
		if charged && !s.chargeIngress(w, r, int(r.ContentLength)) {
			return
		}
		s.wire.read()
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "request body unreadable or too large", http.StatusRequestEntityTooLarge)
			return
		}
		if !charged && !s.chargeIngress(w, r, len(body)) {
			return
		}
		if n := longestJSONString(body); n > s.cfg.Server.MaxRequestStringBytes {
			writeRPCError(w, r, http.StatusRequestEntityTooLarge, nil, -32600, fmt.Sprintf(
				"invalid request: a string of %d bytes; at most %d (server.maxRequestStringBytes) per string", n, s.cfg.Server.MaxRequestStringBytes))
			return
		}
		// Invalid UTF-8 is replaced before anything reads the message;
		// the call's audit record counts it (invalidUTF8), since
		// decoding would otherwise replace it silently in tool names and
		// client info.
		body, bad := audit.ValidJSONText(body)
		ctx := withIngressRedacted(r.Context())
		if bad > 0 {
			ctx = context.WithValue(ctx, invalidUTF8Key{}, bad)
		}
		clean, err := s.out.message(body, s.cfg.Server.IngressRedactionBudget)
		switch {
		case errors.Is(err, redact.ErrStopped):
			s.log.WarnContext(ctx, "message refused: ingress redaction over its budget", "bytes", len(body), "budget", s.cfg.Server.IngressRedactionBudget)
			writeRPCError(w, r, http.StatusRequestEntityTooLarge, nil, -32600, fmt.Sprintf(
				"invalid request: checking the message for secrets took longer than %s (server.ingressRedactionBudget); send fewer or shorter strings", s.cfg.Server.IngressRedactionBudget))
			return
		case err != nil:
			writeRPCError(w, r, http.StatusBadRequest, nil, -32600, "invalid request: the message could not be checked for secrets")
			return
		}
		s.interop(w, r.WithContext(ctx), next, clean)
	})
}

// longestJSONString is the length in bytes of the longest string in b, a
// JSON text, counted as written (escapes included), in one pass; b need
// not be valid JSON. It lets ingress refuse what would be costly to
// redact before redacting it.
func longestJSONString(b []byte) int {
	longest, start, in, esc := 0, 0, false, false
	for i, c := range b {
		switch {
		case !in:
			if c == '"' {
				in, start = true, i+1
			}
		case esc:
			esc = false
		case c == '\\':
			esc = true
		case c == '"':
			in = false
			longest = max(longest, i-start)
		}
	}
	if in {
		longest = max(longest, len(b)-start)
	}
	return longest
}

type invalidUTF8Key struct{}

// invalidUTF8In is the number of invalid UTF-8 bytes ingress replaced in
// the message (or batch) that carried ctx's request.
func invalidUTF8In(ctx context.Context) int {
	n, _ := ctx.Value(invalidUTF8Key{}).(int)
	return n
}

type ingressRedactedKey struct{}

// withIngressRedacted marks ctx as carrying messages that ingress has
// already redacted (every HTTP POST, every stdio line): the chain then
// takes a call's arguments as they are, already redacted, instead of
// redacting them a second time.
func withIngressRedacted(ctx context.Context) context.Context {
	return context.WithValue(ctx, ingressRedactedKey{}, true)
}

// ingressRedacted reports whether ctx's message passed ingress.
func ingressRedacted(ctx context.Context) bool {
	ok, _ := ctx.Value(ingressRedactedKey{}).(bool)
	return ok
}

// message redacts one JSON-RPC message (or batch) within budget: past
// it, redaction stops (before the next string) with redact.ErrStopped and
// the message must be refused.
func (e egress) message(b []byte, budget time.Duration) ([]byte, error) {
	trimmed := bytes.TrimSpace(b)
	if len(trimmed) == 0 || (trimmed[0] != '{' && trimmed[0] != '[') {
		return b, nil
	}
	deadline := time.Now().Add(budget)
	clean, _, err := e.r.JSONUntil(b, func() bool { return time.Now().After(deadline) })
	if err != nil {
		if errors.Is(err, redact.ErrInvalidJSON) {
			return b, nil
		}
		return nil, err
	}
	return clean, nil
}

// ingressReader redacts each line (one JSON-RPC message) of the stdio
// stream before mcp-go reads it. A line that cannot be redacted is
// replaced by an empty object, which mcp-go refuses without quoting.
type ingressReader struct {
	src    *bufio.Reader
	out    egress
	budget time.Duration
	ws     *wireStats
	fix    *stdioAnswers
	buf    []byte
	err    error
}

func newIngressReader(r io.Reader, e egress, budget time.Duration, ws *wireStats, fix *stdioAnswers) *ingressReader {
	return &ingressReader{src: bufio.NewReaderSize(r, 64<<10), out: e, budget: budget, ws: ws, fix: fix}
}

func (ir *ingressReader) Read(p []byte) (int, error) {
	for len(ir.buf) == 0 {
		if ir.err != nil {
			return 0, ir.err
		}
		line, err := ir.src.ReadBytes('\n')
		if len(line) > 0 && ir.ws != nil {
			ir.ws.read()
		}
		ir.err = err
		if len(line) > 0 {
			clean, cerr := ir.out.message(line, ir.budget)
			if cerr != nil {
				clean = []byte("{}\n")
			}
			if ir.fix != nil {
				ir.fix.noteRequest(clean)
			}
			ir.buf = clean
		}
	}
	n := copy(p, ir.buf)
	ir.buf = ir.buf[n:]
	return n, nil
}

package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"

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

// ingress redacts the body of every POST before next sees it. A body
// that is not JSON is passed on unchanged (mcp-go answers it -32700
// without quoting it); a body that cannot be redacted is refused.
func (s *Server) ingress(next http.Handler) http.Handler {
	return postBody(&s.wire, next, func(w http.ResponseWriter, r *http.Request, body []byte) {
		// Invalid UTF-8 is replaced before anything reads the message;
		// the call's audit record counts it (invalidUTF8), since
		// decoding would otherwise replace it silently in tool names and
		// client info.
		body, bad := audit.ValidJSONText(body)
		if bad > 0 {
			r = r.WithContext(context.WithValue(r.Context(), invalidUTF8Key{}, bad))
		}
		clean, err := s.out.message(body)
		if err != nil {
			writeRPCError(w, http.StatusBadRequest, nil, -32600, "invalid request: the message could not be checked for secrets")
			return
		}
		replay(next, w, r, clean)
	})
}

type invalidUTF8Key struct{}

// invalidUTF8In is the number of invalid UTF-8 bytes ingress replaced in
// the message (or batch) that carried ctx's request.
func invalidUTF8In(ctx context.Context) int {
	n, _ := ctx.Value(invalidUTF8Key{}).(int)
	return n
}

// postBody reads the body of a POST and hands it to fn; other requests go
// to next untouched. A body that cannot be read (the body limit's own
// error, or a broken connection) is answered 413.
func postBody(ws *wireStats, next http.Handler, fn func(w http.ResponseWriter, r *http.Request, body []byte)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Body == nil {
			next.ServeHTTP(w, r)
			return
		}
		ws.read()
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "request body unreadable or too large", http.StatusRequestEntityTooLarge)
			return
		}
		fn(w, r, body)
	})
}

// message redacts one JSON-RPC message (or batch).
func (e egress) message(b []byte) ([]byte, error) {
	trimmed := bytes.TrimSpace(b)
	if len(trimmed) == 0 || (trimmed[0] != '{' && trimmed[0] != '[') {
		return b, nil
	}
	clean, _, err := e.r.JSON(b)
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
	src *bufio.Reader
	out egress
	ws  *wireStats
	buf []byte
	err error
}

func newIngressReader(r io.Reader, e egress, ws *wireStats) *ingressReader {
	return &ingressReader{src: bufio.NewReaderSize(r, 64<<10), out: e, ws: ws}
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
			clean, cerr := ir.out.message(line)
			if cerr != nil {
				clean = []byte("{}\n")
			}
			ir.buf = clean
		}
	}
	n := copy(p, ir.buf)
	ir.buf = ir.buf[n:]
	return n, nil
}

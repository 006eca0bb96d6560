package server

// The wire: what each protocol revision prescribes for the answers the
// server sends, in one place. On the way in, ingress (ingress.go) reads
// each message once, redacts it once and decodes its top level once for
// the per-revision request rules (interop.go). On the way out:
//
//   - resource_link content only for sessions on 2025-06-18 or later
//     (resourceLinks, applied in egress before the one redaction step);
//   - the spec's error codes where mcp-go v1.2.1 answers every handler
//     error -32603: a missing or hidden entity read through a resource
//     template is -32002 Resource not found with data.uri (on 2026-07-28,
//     -32602 with data.uri), and a prompt argument that is missing or
//     malformed is -32602 Invalid params (answerRules).

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
)

// invalidParamsPrefix begins the text of a handler error that the wire
// answers -32602 Invalid params (a prompt argument missing or malformed).
const invalidParamsPrefix = "invalid params: "

// invalidParams is a handler error answered -32602 Invalid params.
func invalidParams(msg string) error {
	return errors.New(invalidParamsPrefix + msg)
}

// answerFix is what the wire must change in one answer: the request it
// answers was a resources/read of uri, or a prompts/get; modern is the
// 2026-07-28 revision.
type answerFix struct {
	resource bool
	uri      string
	modern   bool
}

// needsFix reports whether the answers to method can need a fix.
func needsFix(method string) bool {
	return method == string(mcp.MethodResourcesRead) || method == string(mcp.MethodPromptsGet)
}

// fixAnswer rewrites one JSON-RPC answer (a response object) whose error
// mcp-go gave -32603 for what the spec gives its own code. Anything else
// is returned as it is.
func fixAnswer(msg []byte, f answerFix) []byte {
	if !bytes.Contains(msg, []byte(`"error"`)) {
		return msg
	}
	var resp struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   *struct {
			Code    int             `json:"code"`
			Message string          `json:"message"`
			Data    json.RawMessage `json:"data,omitempty"`
		} `json:"error"`
	}
	if json.Unmarshal(msg, &resp) != nil || resp.Error == nil || resp.Error.Code != mcp.INTERNAL_ERROR {
		return msg
	}
	e := resp.Error
	switch {
	case !f.resource && strings.HasPrefix(e.Message, invalidParamsPrefix):
		e.Code = mcp.INVALID_PARAMS
	case f.resource && strings.HasSuffix(e.Message, ": "+mcpserver.ErrResourceNotFound.Error()):
		e.Code = mcp.RESOURCE_NOT_FOUND
		if f.modern {
			e.Code = mcp.INVALID_PARAMS
		}
		e.Data, _ = json.Marshal(map[string]string{"uri": f.uri})
	default:
		return msg
	}
	out, err := json.Marshal(resp)
	if err != nil {
		return msg
	}
	return out
}

// fixAnswers applies fixAnswer to an HTTP answer body: one JSON object, or
// the data lines of an SSE stream.
func fixAnswers(body []byte, f answerFix) []byte {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		fixed := fixAnswer(trimmed, f)
		if bytes.Equal(fixed, trimmed) {
			return body
		}
		return append(fixed, '\n')
	}
	lines := bytes.Split(body, []byte("\n"))
	changed := false
	for i, line := range lines {
		data, ok := bytes.CutPrefix(line, []byte("data:"))
		if !ok {
			continue
		}
		data = bytes.TrimSpace(data)
		if fixed := fixAnswer(data, f); !bytes.Equal(fixed, data) {
			lines[i] = append([]byte("data: "), fixed...)
			changed = true
		}
	}
	if !changed {
		return body
	}
	return bytes.Join(lines, []byte("\n"))
}

// answerWriter holds back an HTTP answer to a resources/read or
// prompts/get until the handler is done, then writes it with its fixes.
// Those answers are one response (a JSON body or a short SSE stream): no
// notification of a long call waits behind it.
type answerWriter struct {
	w      http.ResponseWriter
	status int
	buf    bytes.Buffer
}

func (a *answerWriter) Header() http.Header { return a.w.Header() }

func (a *answerWriter) WriteHeader(status int) {
	if a.status == 0 {
		a.status = status
	}
}

func (a *answerWriter) Write(b []byte) (int, error) {
	if a.status == 0 {
		a.status = http.StatusOK
	}
	return a.buf.Write(b)
}

// Flush is a no-op: the answer leaves when the handler is done.
func (a *answerWriter) Flush() {}

// finish writes the held answer, fixed.
func (a *answerWriter) finish(f answerFix) {
	if a.status == 0 {
		a.status = http.StatusOK
	}
	out := fixAnswers(a.buf.Bytes(), f)
	if len(out) != a.buf.Len() {
		a.w.Header().Del("Content-Length")
	}
	a.w.WriteHeader(a.status)
	_, _ = a.w.Write(out)
}

// serveFixed serves r through next with the answer fixed for method
// (resources/read, prompts/get); params is the request's params,
// already redacted by ingress.
func serveFixed(next http.Handler, w http.ResponseWriter, r *http.Request, body []byte, method string, params json.RawMessage) {
	f := answerFix{resource: method == string(mcp.MethodResourcesRead), modern: mcp.IsModernProtocol(r.Header.Get(mcp.HeaderProtocolVersion))}
	if f.resource {
		var p struct {
			URI string `json:"uri"`
		}
		_ = json.Unmarshal(params, &p)
		f.uri = p.URI
	}
	aw := &answerWriter{w: w}
	replay(next, aw, r, body)
	aw.finish(f)
}

// stdioAnswers remembers, between the stdio ingress reader and the stdio
// output, the resources/read and prompts/get requests in flight, so that
// their answers get the same fixes as on HTTP. It holds at most
// maxPendingFixes requests; past that, answers go out as mcp-go wrote
// them.
type stdioAnswers struct {
	mu      sync.Mutex
	pending map[string]answerFix
}

const maxPendingFixes = 256

// noteRequest looks at one stdio line as it comes in.
func (sa *stdioAnswers) noteRequest(line []byte) {
	if !bytes.Contains(line, []byte(mcp.MethodResourcesRead)) && !bytes.Contains(line, []byte(mcp.MethodPromptsGet)) {
		return
	}
	var req struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params struct {
			URI  string                     `json:"uri"`
			Meta map[string]json.RawMessage `json:"_meta"`
		} `json:"params"`
	}
	if json.Unmarshal(line, &req) != nil || len(req.ID) == 0 || !needsFix(req.Method) {
		return
	}
	var ver string
	_ = json.Unmarshal(req.Params.Meta[mcp.MetaKeyProtocolVersion], &ver)
	sa.mu.Lock()
	defer sa.mu.Unlock()
	if sa.pending == nil {
		sa.pending = map[string]answerFix{}
	}
	if len(sa.pending) < maxPendingFixes {
		sa.pending[string(req.ID)] = answerFix{resource: req.Method == string(mcp.MethodResourcesRead), uri: req.Params.URI,
			modern: mcp.IsModernProtocol(ver)}
	}
}

// fixLine fixes one outgoing stdio line if it answers a noted request.
func (sa *stdioAnswers) fixLine(line []byte) []byte {
	sa.mu.Lock()
	n := len(sa.pending)
	sa.mu.Unlock()
	if n == 0 {
		return line
	}
	var head struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
	}
	if json.Unmarshal(line, &head) != nil || len(head.ID) == 0 || head.Method != "" {
		return line
	}
	sa.mu.Lock()
	f, ok := sa.pending[string(head.ID)]
	delete(sa.pending, string(head.ID))
	sa.mu.Unlock()
	if !ok {
		return line
	}
	return fixAnswer(line, f)
}

// stdioOut is the stdio output: each whole line (one JSON-RPC message)
// passes fixLine. mcp-go writes one message per Write.
type stdioOut struct {
	w   io.Writer
	fix *stdioAnswers
}

func (o stdioOut) Write(p []byte) (int, error) {
	line, ok := bytes.CutSuffix(p, []byte("\n"))
	if !ok || bytes.IndexByte(line, '\n') >= 0 {
		return o.w.Write(p)
	}
	fixed := o.fix.fixLine(line)
	if bytes.Equal(fixed, line) {
		return o.w.Write(p)
	}
	if _, err := o.w.Write(append(fixed, '\n')); err != nil {
		return 0, err
	}
	return len(p), nil
}

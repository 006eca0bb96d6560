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
//     malformed is -32602 Invalid params (answerRules);
//   - on stdio, a subscriptions/listen result never goes out before the
//     notifications/subscriptions/acknowledged of its subscription (the
//     spec's MUST: the acknowledgement is the first message carrying the
//     subscription's ID). mcp-go v1.2.1 writes notifications from another
//     goroutine than results, so the result of a listen that ends at
//     once (the server offers no list_changed subscriptions) often went
//     first; stdioOut holds it until the acknowledgement is out. Over
//     Streamable HTTP mcp-go can lose the acknowledgement outright (its
//     forwarder takes it off the channel, then finds the request done and
//     drops it); as the server offers nothing to subscribe to (no
//     list_changed, no resource subscriptions: offersSubscriptions), a
//     listen ends at once, and serveListen adds the acknowledgement when
//     mcp-go's answer lacks it.

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

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

// offersSubscriptions is false while the server advertises no
// list_changed notifications and no resource subscriptions: every
// subscriptions/listen then establishes nothing and ends at once, so its
// HTTP answer can be held and completed (serveListen). The capabilities
// in server.go and door.go are declared with it.
const offersSubscriptions = false

// ackMethod is the acknowledgement of a subscriptions/listen.
var ackMethod = []byte(`"` + mcp.MethodNotificationSubscriptionsAcknowledged + `"`)

// serveListen serves a 2026-07-28 subscriptions/listen over HTTP and
// makes sure its answer opens with the subscription's acknowledgement:
// when mcp-go's answer is a result without it, the answer goes out as an
// SSE stream of the acknowledgement (of the empty filter: nothing can be
// subscribed) and then that result.
func serveListen(next http.Handler, w http.ResponseWriter, r *http.Request, body []byte, id json.RawMessage) {
	aw := &answerWriter{w: w}
	replay(next, aw, r, body)
	out := aw.buf.Bytes()
	if len(id) == 0 || bytes.Contains(out, ackMethod) || !bytes.Contains(out, []byte(`"result"`)) {
		aw.finish(answerFix{})
		return
	}
	var result []byte
	if trimmed := bytes.TrimSpace(out); len(trimmed) > 0 && trimmed[0] == '{' {
		result = trimmed
	} else {
		for _, line := range bytes.Split(out, []byte("\n")) {
			if data, ok := bytes.CutPrefix(line, []byte("data:")); ok && bytes.Contains(data, []byte(`"result"`)) {
				result = bytes.TrimSpace(data)
			}
		}
	}
	if result == nil {
		aw.finish(answerFix{})
		return
	}
	ack := `{"jsonrpc":"2.0","method":` + string(ackMethod) + `,"params":{"_meta":{"` + mcp.MetaKeySubscriptionID + `":` + string(id) + `},"notifications":{}}}`
	h := w.Header()
	h.Del("Content-Length")
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "event: message\ndata: "+ack+"\n\nevent: message\ndata: "+string(result)+"\n\n")
}

// stdioAnswers remembers, between the stdio ingress reader and the stdio
// output, the resources/read and prompts/get requests in flight, so that
// their answers get the same fixes as on HTTP. It holds at most
// maxPendingFixes requests; past that, answers go out as mcp-go wrote
// them.
type stdioAnswers struct {
	mu      sync.Mutex
	pending map[string]answerFix
	// listens are the subscriptions/listen requests in flight, by id.
	listens map[string]*listenOrder
}

// listenOrder is where one stdio subscriptions/listen stands: whether
// its acknowledgement went out, and its result while it waits for it.
type listenOrder struct {
	acked bool
	held  []byte
}

// listenHoldLimit bounds how long a listen result waits for its
// acknowledgement (which mcp-go queued before returning the result).
const listenHoldLimit = 2 * time.Second

// subscriptionIDKey is the _meta key that carries a subscription's ID on
// every message that belongs to it.
var subscriptionIDKey = []byte(`"` + mcp.MetaKeySubscriptionID + `"`)

const maxPendingFixes = 256

// noteRequest looks at one stdio line as it comes in.
func (sa *stdioAnswers) noteRequest(line []byte) {
	if bytes.Contains(line, []byte(mcp.MethodSubscriptionsListen)) {
		sa.noteListen(line)
	}
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

// noteListen notes a subscriptions/listen request, so that its result
// waits for its acknowledgement.
func (sa *stdioAnswers) noteListen(line []byte) {
	var req struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
	}
	if json.Unmarshal(line, &req) != nil || len(req.ID) == 0 || req.Method != string(mcp.MethodSubscriptionsListen) {
		return
	}
	sa.mu.Lock()
	defer sa.mu.Unlock()
	if sa.listens == nil {
		sa.listens = map[string]*listenOrder{}
	}
	if len(sa.listens) < maxPendingFixes {
		sa.listens[string(req.ID)] = &listenOrder{}
	}
}

// order decides, for one outgoing stdio line, what to write now: the line
// itself, nothing (a listen result held until its acknowledgement), or an
// acknowledgement followed by the result it held back. held reports that
// line was held; write it later with release.
func (sa *stdioAnswers) order(line []byte) (out [][]byte, held string) {
	sa.mu.Lock()
	n := len(sa.listens)
	sa.mu.Unlock()
	if n == 0 || !bytes.Contains(line, subscriptionIDKey) {
		return [][]byte{line}, ""
	}
	var head struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Result json.RawMessage `json:"result"`
		Params struct {
			Meta map[string]json.RawMessage `json:"_meta"`
		} `json:"params"`
	}
	if json.Unmarshal(line, &head) != nil {
		return [][]byte{line}, ""
	}
	sa.mu.Lock()
	defer sa.mu.Unlock()
	switch {
	case head.Method == string(mcp.MethodNotificationSubscriptionsAcknowledged):
		id := string(head.Params.Meta[mcp.MetaKeySubscriptionID])
		lo, ok := sa.listens[id]
		if !ok {
			return [][]byte{line}, ""
		}
		if lo.held != nil {
			delete(sa.listens, id)
			return [][]byte{line, lo.held}, ""
		}
		lo.acked = true
	case head.Method == "" && len(head.ID) > 0:
		id := string(head.ID)
		lo, ok := sa.listens[id]
		if !ok {
			return [][]byte{line}, ""
		}
		if lo.acked || len(head.Result) == 0 {
			delete(sa.listens, id)
			return [][]byte{line}, ""
		}
		lo.held = bytes.Clone(line) // p is the writer's buffer, reused after Write
		return nil, id
	}
	return [][]byte{line}, ""
}

// release gives back the result held for id if its acknowledgement has
// not come (nil when it went out since).
func (sa *stdioAnswers) release(id string) []byte {
	sa.mu.Lock()
	defer sa.mu.Unlock()
	lo, ok := sa.listens[id]
	if !ok || lo.held == nil {
		return nil
	}
	delete(sa.listens, id)
	return lo.held
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
	mu  *sync.Mutex // serialises writes: a held listen result leaves from a timer
	w   io.Writer
	fix *stdioAnswers
}

func newStdioOut(w io.Writer, fix *stdioAnswers) stdioOut {
	return stdioOut{mu: &sync.Mutex{}, w: w, fix: fix}
}

func (o stdioOut) Write(p []byte) (int, error) {
	line, ok := bytes.CutSuffix(p, []byte("\n"))
	if !ok || bytes.IndexByte(line, '\n') >= 0 {
		o.mu.Lock()
		defer o.mu.Unlock()
		return o.w.Write(p)
	}
	fixed := o.fix.fixLine(line)
	out, held := o.fix.order(fixed)
	if held != "" {
		time.AfterFunc(listenHoldLimit, func() {
			if late := o.fix.release(held); late != nil {
				o.mu.Lock()
				defer o.mu.Unlock()
				_, _ = o.w.Write(append(late, '\n'))
			}
		})
		return len(p), nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(out) == 1 && bytes.Equal(out[0], line) {
		return o.w.Write(p)
	}
	for _, m := range out {
		if _, err := o.w.Write(append(m, '\n')); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

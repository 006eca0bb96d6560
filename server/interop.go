package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/backstage-mcp/backstage-mcp/redact"
	"github.com/backstage-mcp/backstage-mcp/server/audit"

	"github.com/mark3labs/mcp-go/mcp"
)

// maxBatch bounds the number of messages in one JSON-RPC batch.
const maxBatch = 32

// interop puts the JSON-RPC rules of each protocol revision this server
// negotiates in front of mcp-go's Streamable HTTP transport, for the
// cases mark3labs/mcp-go v1.2.1 does not handle by itself:
//
//   - "id": null and a message with neither method nor result/error are
//     answered -32600 Invalid Request with HTTP 400 (the base protocol
//     forbids a null id; mcp-go answers both 202 as if they were an empty
//     response).
//   - A JSON-RPC batch is split and each message served in turn on a
//     2025-03-26 session, where receiving batches is a MUST; later
//     revisions removed batching, so there a batch is -32600 (mcp-go
//     answers any batch -32700 "not valid json").
//   - On 2026-07-28, a ping without the _meta envelope is answered with
//     an empty result (resultType "complete") (mcp-go answers it -32601, as that revision dropped
//     ping; a ping with the envelope still gets that answer), and
//     logging/setLevel and notifications that carry
//     the Mcp-Protocol-Version header but no _meta protocol version get the
//     header's version in _meta (with empty client capabilities when
//     absent: the client then declares no optional capability). The official Go SDK client v1.8.0 sends
//     them that way (modelcontextprotocol/go-sdk#1174 and #1249 for ping),
//     and mcp-go rejects them with HTTP 400, after which that client also
//     loses its next call following a cancellation. The header is already
//     required and checked against the supported versions, so taking the
//     version from it changes no decision; no mcp-go issue tracks this
//     leniency yet, so it lives here until one does.
//
// It runs after authentication, so a refused caller learns nothing here,
// on the body ingress read and redacted.
func (s *Server) interop(w http.ResponseWriter, r *http.Request, next http.Handler, body []byte) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		s.batch(w, r, next, trimmed)
		return
	}
	// One decode of the message's top level serves every check below.
	s.wire.decode()
	m, parsed := topLevel(trimmed)
	if !parsed {
		// Answered here rather than by mcp-go (-32700 with a null id), for
		// the id rule of writeRPCError.
		if json.Valid(trimmed) {
			writeRPCError(w, r, http.StatusBadRequest, nil, mcp.INVALID_REQUEST, "invalid request: the message is not a JSON object")
		} else {
			writeRPCError(w, r, http.StatusBadRequest, nil, mcp.PARSE_ERROR, "parse error: the message is not valid JSON")
		}
		return
	}
	s.wire.decode() // the method's string
	method := methodOf(m)
	if msg, ok := invalidFields(m); ok {
		writeRPCError(w, r, http.StatusBadRequest, nil, mcp.INVALID_REQUEST, msg)
		return
	}
	if method == string(mcp.MethodInitialize) && !initializeParams(m["params"]) {
		s.refuseInitialize(w, r, m["id"])
		return
	}
	if v := r.Header.Get(mcp.HeaderProtocolVersion); mcp.IsModernProtocol(v) {
		if id, ok := pingFields(m, method); ok {
			// mcp-go answers ping -32601 on 2026-07-28 ("removed"),
			// but clients in the wild (the official Go SDK v1.8.0
			// among them) still send it as a liveness check; an
			// empty result reveals nothing and keeps them connected.
			// Every result on 2026-07-28 carries its resultType
			// (schema: Result requires it).
			w.Header().Set("Content-Type", "application/json")
			_, _ = fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"resultType":"complete"}}`+"\n", id)
			return
		}
		body = withMetaFields(body, m, method, v)
	}
	if !offersSubscriptions && method == string(mcp.MethodSubscriptionsListen) && mcp.IsModernProtocol(r.Header.Get(mcp.HeaderProtocolVersion)) {
		serveListen(next, w, r, body, m["id"])
		return
	}
	if needsFix(method) {
		serveFixed(next, w, r, body, method, m["params"])
		return
	}
	replay(next, w, r, body)
}

// malformedInitReason is the audit reason of an initialize refused for
// its params.
const malformedInitReason = "initialize refused: params is not a valid initialize params object"

// refuseInitialize answers an initialize whose params is missing, not a
// JSON object (5, "x", [], null) or an object of the wrong shape
// ({"protocolVersion":5}): -32602 Invalid params with HTTP 400, as
// for any invalid request, before mcp-go sees it. mcp-go would otherwise
// hand out a session for it (and keep it until it idles out), past the
// session cap and the initialize rate limit, which only see well-formed
// initializes. The refusal is audited like an authentication failure:
// aggregated per source, so a flood costs one record per interval, and
// charged to the source address's unauthenticated budget.
func (s *Server) refuseInitialize(w http.ResponseWriter, r *http.Request, id json.RawMessage) {
	ctx := r.Context()
	rec := s.authFailureRecord(ctx, malformedInitReason, r)
	rec.Type, rec.Rule, rec.Tool = audit.TypeSession, "session", string(mcp.MethodInitialize)
	s.auditRefusal(ctx, rec)
	writeRPCError(w, r, http.StatusBadRequest, id, mcp.INVALID_PARAMS,
		"invalid params: initialize needs a params object with protocolVersion, capabilities and clientInfo")
}

// initializeParams reports whether raw is a params object that mcp-go can
// decode as initialize params. mcp-go answers anything else with an error
// but still hands out a session.
func initializeParams(raw json.RawMessage) bool {
	var p mcp.InitializeParams
	return isObject(raw) && json.Unmarshal(raw, &p) == nil
}

// isObject reports whether raw is a JSON object.
func isObject(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '{'
}

// topLevel decodes a single JSON-RPC message's top-level members, keeping
// their values raw; ok is false when msg is not a JSON object.
func topLevel(msg []byte) (map[string]json.RawMessage, bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal(msg, &m) != nil || m == nil {
		return nil, false
	}
	return m, true
}

// methodOf is the message's method, or "" when it has none or it is not a
// string.
func methodOf(m map[string]json.RawMessage) string {
	raw, ok := m["method"]
	if !ok {
		return ""
	}
	var method string
	if json.Unmarshal(raw, &method) != nil {
		return ""
	}
	return method
}

// pingFields returns the id of a ping request whose _meta names no
// protocol version: the shape the Go SDK v1.8.0 client sends. A ping that
// carries the 2026-07-28 envelope comes from a client that knows the
// revision, and gets mcp-go's answer for a removed method (404, -32601),
// as that revision prescribes.
func pingFields(m map[string]json.RawMessage, method string) (json.RawMessage, bool) {
	id := m["id"]
	if len(id) == 0 || method != string(mcp.MethodPing) {
		return nil, false
	}
	var params struct {
		Meta map[string]json.RawMessage `json:"_meta"`
	}
	if p, ok := m["params"]; ok && json.Unmarshal(p, &params) != nil {
		return nil, false
	}
	if _, ok := params.Meta[mcp.MetaKeyProtocolVersion]; ok {
		return nil, false
	}
	return id, true
}

// replay serves r with body as its body.
func replay(next http.Handler, w http.ResponseWriter, r *http.Request, body []byte) {
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.ContentLength = int64(len(body))
	next.ServeHTTP(w, r2)
}

// invalidMessage reports a single JSON-RPC message that is structurally
// invalid in a way mcp-go would accept: a null id, or no method on
// something that is not a response. Unparsable JSON is left to mcp-go
// (-32700).
func invalidMessage(msg []byte) (string, bool) {
	m, ok := topLevel(msg)
	if !ok {
		return "", false
	}
	return invalidFields(m)
}

// invalidFields is invalidMessage on decoded top-level members.
func invalidFields(m map[string]json.RawMessage) (string, bool) {
	id, hasID := m["id"]
	_, hasMethod := m["method"]
	_, hasResult := m["result"]
	_, hasError := m["error"]
	switch {
	case hasID && string(bytes.TrimSpace(id)) == "null":
		return "invalid request: id must be a string or an integer, not null", true
	case !hasMethod && !hasResult && !hasError:
		return "invalid request: no method", true
	case hasMethod && string(bytes.TrimSpace(m["method"])) == `""`:
		return "invalid request: empty method", true
	}
	return "", false
}

// lenientMethods are the messages the official Go SDK client sends on a
// 2026-07-28 session without the _meta protocol version.
func lenientMethod(method string) bool {
	return method == string(mcp.MethodPing) || method == string(mcp.MethodSetLogLevel) ||
		strings.HasPrefix(method, "notifications/")
}

// withMetaFields adds _meta["io.modelcontextprotocol/protocolVersion"] =
// version (and empty client capabilities, when absent) to a ping,
// logging/setLevel or notification that lacks it; m is body's decoded top
// level (which it may change) and method its method. Any other message, or one that cannot be
// rewritten, is returned unchanged for mcp-go to judge. Only the lenient
// methods are decoded further, so a tools/call costs nothing more here.
func withMetaFields(body []byte, m map[string]json.RawMessage, method, version string) []byte {
	if !lenientMethod(method) {
		return body
	}
	params := map[string]json.RawMessage{}
	if p, ok := m["params"]; ok && string(bytes.TrimSpace(p)) != "null" {
		if json.Unmarshal(p, &params) != nil {
			return body
		}
	}
	meta := map[string]json.RawMessage{}
	if raw, ok := params["_meta"]; ok && string(bytes.TrimSpace(raw)) != "null" {
		if json.Unmarshal(raw, &meta) != nil {
			return body
		}
	}
	if _, ok := meta[mcp.MetaKeyProtocolVersion]; ok {
		return body
	}
	v, _ := json.Marshal(version)
	meta[mcp.MetaKeyProtocolVersion] = v
	if _, ok := meta[mcp.MetaKeyClientCapabilities]; !ok {
		// Declares no optional capability: nothing more is assumed of the
		// client than it stated.
		meta[mcp.MetaKeyClientCapabilities] = json.RawMessage(`{}`)
	}
	var err error
	if params["_meta"], err = json.Marshal(meta); err != nil {
		return body
	}
	if m["params"], err = json.Marshal(params); err != nil {
		return body
	}
	out, err := json.Marshal(m)
	if err != nil {
		return body
	}
	return out
}

// batchRevision reports whether the request's protocol revision receives
// batches: only 2025-03-26 does. A request without Mcp-Protocol-Version
// is taken as 2025-03-26, as the 2025-06-18 transport prescribes.
func batchRevision(r *http.Request) bool {
	v := r.Header.Get(mcp.HeaderProtocolVersion)
	return v == "" || v == "2025-03-26"
}

// batch serves a JSON-RPC batch message by message, answering with the
// array of responses (202 when it held only notifications and
// responses).
func (s *Server) batch(w http.ResponseWriter, r *http.Request, next http.Handler, body []byte) {
	if !batchRevision(r) {
		writeRPCError(w, r, http.StatusBadRequest, nil, mcp.INVALID_REQUEST,
			fmt.Sprintf("invalid request: protocol revision %s does not accept JSON-RPC batches; send one message per request",
				redact.Clip(r.Header.Get(mcp.HeaderProtocolVersion), 32)))
		return
	}
	var msgs []json.RawMessage
	if err := json.Unmarshal(body, &msgs); err != nil {
		writeRPCError(w, r, http.StatusBadRequest, nil, mcp.PARSE_ERROR, "parse error: the batch is not valid JSON")
		return
	}
	if len(msgs) == 0 {
		writeRPCError(w, r, http.StatusBadRequest, nil, mcp.INVALID_REQUEST, "invalid request: empty batch")
		return
	}
	if len(msgs) > maxBatch {
		writeRPCError(w, r, http.StatusBadRequest, nil, mcp.INVALID_REQUEST, fmt.Sprintf("invalid request: a batch holds at most %d messages", maxBatch))
		return
	}
	var out []json.RawMessage
	for _, m := range msgs {
		out = append(out, s.batchOne(r, next, m)...)
	}
	if len(out) == 0 {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(out)
}

// batchOne serves one message of a batch and returns its responses.
func (s *Server) batchOne(r *http.Request, next http.Handler, m json.RawMessage) []json.RawMessage {
	var head struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
	}
	if err := json.Unmarshal(m, &head); err != nil {
		return []json.RawMessage{rpcError(nil, mcp.INVALID_REQUEST, "invalid request: a batch element must be an object")}
	}
	if msg, bad := invalidMessage(m); bad {
		return []json.RawMessage{rpcError(nil, mcp.INVALID_REQUEST, msg)}
	}
	if head.Method == string(mcp.MethodInitialize) {
		return []json.RawMessage{rpcError(head.ID, mcp.INVALID_REQUEST, "invalid request: initialize must not be part of a batch")}
	}
	rec := httptest.NewRecorder()
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(bytes.NewReader(m))
	r2.ContentLength = int64(len(m))
	r2.Header.Set("Accept", "application/json, text/event-stream")
	next.ServeHTTP(rec, r2)
	res := rec.Result()
	defer func() { _ = res.Body.Close() }()
	b, _ := io.ReadAll(res.Body)
	if len(head.ID) == 0 {
		return nil // a notification or a response: nothing comes back
	}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		return sseResponses(b)
	}
	b = bytes.TrimSpace(b)
	if json.Valid(b) && len(b) > 0 && b[0] == '{' {
		return []json.RawMessage{b}
	}
	return []json.RawMessage{rpcError(head.ID, mcp.INTERNAL_ERROR, fmt.Sprintf("the message was refused (HTTP %d)", res.StatusCode))}
}

// sseResponses takes the JSON-RPC responses out of an SSE body; the
// notifications sent before them are dropped (a batch answers with
// responses only).
func sseResponses(b []byte) []json.RawMessage {
	var out []json.RawMessage
	for _, line := range strings.Split(string(b), "\n") {
		data, ok := strings.CutPrefix(strings.TrimRight(line, "\r"), "data:")
		if !ok {
			continue
		}
		var m struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		raw := []byte(strings.TrimSpace(data))
		if json.Unmarshal(raw, &m) == nil && len(m.ID) > 0 && m.Method == "" {
			out = append(out, raw)
		}
	}
	return out
}

func rpcError(id json.RawMessage, code int, msg string) json.RawMessage {
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	b, _ := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}{JSONRPC: "2.0", ID: id, Error: struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{code, msg}})
	return b
}

// writeRPCError answers r with a JSON-RPC error. An unknown id (the
// message was not read, or could not be parsed, or its id is invalid) is
// null, as JSON-RPC 2.0 prescribes, except on the revisions from
// 2025-11-25 on, whose schema has no null id and makes the id of an error
// response optional for this very case: there the answer carries none.
// (Before 2025-11-25 the schema requires a string or integer id, which
// such an answer cannot have.)
func writeRPCError(w http.ResponseWriter, r *http.Request, status int, id json.RawMessage, code int, msg string) {
	body := rpcError(id, code, msg)
	if len(id) == 0 && idOptional(r.Header.Get(mcp.HeaderProtocolVersion)) {
		body = rpcErrorNoID(code, msg)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n')) //nolint:gosec // G705: a JSON body (application/json) built by json.Marshal, not HTML
}

// idOptional reports whether revision v lets an error response leave its
// id out (2025-11-25 and later).
func idOptional(v string) bool {
	return v >= mcp.ProtocolVersion20251125 && mcp.IsValidProtocolVersion(v) || mcp.IsModernProtocol(v)
}

// rpcErrorNoID is an error response without an id.
func rpcErrorNoID(code int, msg string) json.RawMessage {
	b, _ := json.Marshal(struct {
		JSONRPC string `json:"jsonrpc"`
		Error   struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}{JSONRPC: "2.0", Error: struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{code, msg}})
	return b
}

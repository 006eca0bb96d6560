package connect

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Header names of Streamable HTTP.
const (
	headerSession  = "Mcp-Session-Id"
	headerProtocol = "MCP-Protocol-Version"
	headerLastID   = "Last-Event-ID"
)

// JSON-RPC error codes the bridge answers with.
const (
	codeSignIn      = -32001 // the developer must sign in again
	codeUnreachable = -32002 // the server or the provider could not be reached
	codeTooLarge    = -32600 // invalid request: the message is over the size bound
)

// maxInFlight bounds the requests relayed at the same time.
const maxInFlight = 32

// message is the part of a JSON-RPC message the bridge looks at.
type message struct {
	ID     json.RawMessage `json:"id,omitempty"`
	Method string          `json:"method,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
}

func (m *message) isRequest() bool { return m.Method != "" && len(m.ID) > 0 && string(m.ID) != "null" }

// bridge is one IDE's connection.
type bridge struct {
	ctx  context.Context
	o    *Options
	t    *tokens
	out  *lineWriter
	sem  chan struct{}
	wg   sync.WaitGroup
	stop context.CancelFunc // ends the GET stream

	mu       sync.Mutex
	session  string
	protocol string
	initMsg  []byte // the IDE's initialize, replayed when the server has lost the session
	initDone []byte // its notifications/initialized
	epoch    int    // bumped at each (re)initialization
	streamOn bool
}

func newBridge(ctx context.Context, o *Options, t *tokens, stdout io.Writer) *bridge {
	return &bridge{ctx: ctx, o: o, t: t, out: &lineWriter{w: stdout}, sem: make(chan struct{}, maxInFlight)}
}

// lineWriter writes one message per line to the IDE.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) write(msg []byte) error {
	var buf bytes.Buffer
	if err := json.Compact(&buf, msg); err != nil {
		return fmt.Errorf("connect: the server sent a message that is not JSON: %w", err)
	}
	buf.WriteByte('\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	_, err := l.w.Write(buf.Bytes())
	return err
}

// run reads the IDE's messages until EOF.
func (b *bridge) run(stdin io.Reader) error {
	r := bufio.NewReaderSize(stdin, 64<<10)
	var readErr error
	for {
		line, err := readLine(r, b.o.MaxMessage)
		if errors.Is(err, errTooLong) {
			fmt.Fprintf(b.o.Log, "backstage-mcp connect: a message from the IDE is over %d bytes; dropped\n", b.o.MaxMessage)
			if id := idFromPrefix(line); id != nil {
				b.replyError(id, codeTooLarge, fmt.Sprintf("message over %d bytes: not sent", b.o.MaxMessage))
			}
			continue
		}
		if len(bytes.TrimSpace(line)) > 0 {
			b.handle(line)
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				readErr = fmt.Errorf("connect: reading from the IDE: %w", err)
			}
			break
		}
		if b.ctx.Err() != nil {
			break
		}
	}
	// Let the calls in flight answer, for a while.
	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	case <-b.ctx.Done():
	}
	if b.stop != nil {
		b.stop()
	}
	b.endSession()
	return readErr
}

var errTooLong = errors.New("line too long")

// idFromPrefix finds the id of a JSON-RPC request from the first bytes of
// a message too long to read whole, when the id comes before the cut.
func idFromPrefix(prefix []byte) json.RawMessage {
	dec := json.NewDecoder(bytes.NewReader(prefix))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	var id json.RawMessage
	hasMethod := false
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			break
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			break
		}
		switch k {
		case "id":
			id = v
		case "method":
			hasMethod = true
		}
		if id != nil && hasMethod {
			return id
		}
	}
	return nil
}

// readLine reads one line of at most limit bytes. A longer line is
// consumed to its end and reported with errTooLong and its first bytes.
func readLine(r *bufio.Reader, limit int) ([]byte, error) {
	var line []byte
	tooLong := false
	for {
		chunk, err := r.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(chunk) > limit+1 {
				tooLong = true
				line = append(line, chunk[:min(len(chunk), 4096)]...)
			} else {
				line = append(line, chunk...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if tooLong {
			return line, errTooLong
		}
		return bytes.TrimRight(line, "\r\n"), err
	}
}

// handle relays one message from the IDE. An initialize is relayed before
// the next message is read (the session starts with it); other requests
// run side by side; notifications and responses go in order.
func (b *bridge) handle(raw []byte) {
	raw = bytes.Clone(raw)
	var m message
	if err := json.Unmarshal(raw, &m); err != nil {
		// Not an object (a batch, or not JSON): the server judges it.
		b.post(raw, nil)
		return
	}
	switch {
	case m.Method == "initialize":
		b.mu.Lock()
		b.initMsg = raw
		b.mu.Unlock()
		b.post(raw, &m)
		b.startStream()
	case m.Method == "notifications/initialized":
		b.mu.Lock()
		b.initDone = raw
		b.mu.Unlock()
		b.post(raw, &m)
	case m.isRequest():
		select {
		case b.sem <- struct{}{}:
		case <-b.ctx.Done():
			return
		}
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			defer func() { <-b.sem }()
			b.post(raw, &m)
		}()
	default:
		b.post(raw, &m)
	}
}

// post sends one message and relays the answer; a request that fails gets
// a JSON-RPC error, so the IDE is never left waiting.
func (b *bridge) post(raw []byte, m *message) {
	ctx, cancel := context.WithTimeout(b.ctx, b.o.CallTimeout)
	defer cancel()
	err := b.send(ctx, raw, m)
	if err == nil {
		return
	}
	var se *SignInError
	code := codeUnreachable
	if errors.As(err, &se) {
		code = codeSignIn
	}
	fmt.Fprintf(b.o.Log, "backstage-mcp connect: %v\n", err)
	if m != nil && m.isRequest() {
		b.replyError(m.ID, code, err.Error())
	} else if m == nil {
		b.replyErrorIfRequest(raw, code, err.Error())
	}
}

// send POSTs raw with a token; on 401 it refreshes once and retries; on
// 404 for a known session it re-initializes and retries.
func (b *bridge) send(ctx context.Context, raw []byte, m *message) error {
	force := false
	refused := ""
	for attempt := 0; ; attempt++ {
		tok, err := b.t.token(ctx, force, refused)
		if err != nil {
			return err
		}
		b.mu.Lock()
		session, protocol, epoch := b.session, b.protocol, b.epoch
		b.mu.Unlock()
		resp, err := b.do(ctx, http.MethodPost, raw, tok, session, protocol, "")
		if err != nil {
			return fmt.Errorf("connect: %s unreachable: %w", b.o.ServerURL, err)
		}
		switch {
		case resp.StatusCode == http.StatusUnauthorized && attempt < 2:
			refused = challengeError(resp.Header.Values("WWW-Authenticate"))
			drain(resp)
			force = true
			continue
		case resp.StatusCode == http.StatusNotFound && session != "" && attempt < 2 && (m == nil || m.Method != "initialize"):
			drain(resp)
			if err := b.reinitialize(ctx, epoch); err != nil {
				return err
			}
			continue
		}
		return b.relayAnswer(resp, m)
	}
}

func challengeError(h []string) string {
	for _, v := range h {
		if _, after, ok := strings.Cut(v, `error_description="`); ok {
			d, _, _ := strings.Cut(after, `"`)
			return " (" + oneLine(d) + ")"
		}
	}
	return ""
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}

// do sends one HTTP request to the server.
func (b *bridge) do(ctx context.Context, method string, body []byte, tok, session, protocol, lastID string) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, b.o.ServerURL, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	switch method {
	case http.MethodGet:
		req.Header.Set("Accept", "text/event-stream")
	default:
		req.Header.Set("Accept", "application/json, text/event-stream")
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("User-Agent", b.o.UserAgent)
	if session != "" {
		req.Header.Set(headerSession, session)
	}
	if protocol != "" {
		req.Header.Set(headerProtocol, protocol)
	}
	if lastID != "" {
		req.Header.Set(headerLastID, lastID)
	}
	return b.o.MCPClient.Do(req)
}

// relayAnswer passes the server's answer to a POST to the IDE.
func (b *bridge) relayAnswer(resp *http.Response, m *message) error {
	defer resp.Body.Close()
	isInit := m != nil && m.Method == "initialize"
	if isInit && resp.StatusCode == http.StatusOK {
		if s := resp.Header.Get(headerSession); s != "" {
			b.mu.Lock()
			b.session = s
			b.epoch++
			b.mu.Unlock()
		}
	}
	switch resp.StatusCode {
	case http.StatusAccepted, http.StatusNoContent:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil
	case http.StatusOK:
	default:
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, int64(b.o.MaxMessage)))
		// A JSON-RPC error body is the server's answer: relay it.
		var em struct {
			Error json.RawMessage `json:"error"`
		}
		if json.Unmarshal(raw, &em) == nil && len(em.Error) > 0 {
			return b.out.write(raw)
		}
		if resp.StatusCode == http.StatusUnauthorized {
			return &SignInError{Server: b.o.ServerURL, Reason: "the server refused your token" + challengeError(resp.Header.Values("WWW-Authenticate"))}
		}
		return fmt.Errorf("connect: %s answered %d: %s", b.o.ServerURL, resp.StatusCode, oneLine(string(raw[:min(len(raw), 300)])))
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	onMsg := func(data []byte) error {
		if isInit {
			b.noteProtocol(data)
		}
		return b.out.write(data)
	}
	if ct == "text/event-stream" {
		_, err := readSSE(resp.Body, b.o.MaxMessage, func(ev sseEvent) error { return onMsg(ev.data) })
		if !errors.Is(err, io.EOF) {
			return fmt.Errorf("connect: reading the server's stream: %w", err)
		}
		return nil
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, int64(b.o.MaxMessage)+1))
	if err != nil {
		return fmt.Errorf("connect: reading the server's answer: %w", err)
	}
	if len(raw) > b.o.MaxMessage {
		return fmt.Errorf("connect: the server's answer is over %d bytes", b.o.MaxMessage)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	return onMsg(raw)
}

// noteProtocol keeps the protocol version the server chose, sent on every
// later request as MCP-Protocol-Version.
func (b *bridge) noteProtocol(data []byte) {
	var m message
	if json.Unmarshal(data, &m) != nil || len(m.Result) == 0 {
		return
	}
	var r struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	if json.Unmarshal(m.Result, &r) == nil && r.ProtocolVersion != "" {
		b.mu.Lock()
		b.protocol = r.ProtocolVersion
		b.mu.Unlock()
	}
}

// reinitialize starts a new session with the IDE's own initialize when
// the server no longer knows the old one (it expired or was evicted); the
// answer is not relayed again. epoch is the session generation the caller
// saw: when another call has already re-initialized, nothing is done.
func (b *bridge) reinitialize(ctx context.Context, epoch int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.epoch != epoch {
		return nil
	}
	if b.initMsg == nil {
		return errors.New("connect: the server lost the session and there is no initialize to replay")
	}
	fmt.Fprintf(b.o.Log, "backstage-mcp connect: the server no longer knows session; starting a new one\n")
	var init map[string]json.RawMessage
	if err := json.Unmarshal(b.initMsg, &init); err != nil {
		return fmt.Errorf("connect: replay initialize: %w", err)
	}
	init["id"] = json.RawMessage(fmt.Sprintf(`"backstage-mcp-connect-reinit-%d"`, epoch+1))
	raw, err := json.Marshal(init)
	if err != nil {
		return fmt.Errorf("connect: replay initialize: %w", err)
	}
	tok, err := b.t.token(ctx, false, "")
	if err != nil {
		return err
	}
	resp, err := b.do(ctx, http.MethodPost, raw, tok, "", "", "")
	if err != nil {
		return fmt.Errorf("connect: %s unreachable: %w", b.o.ServerURL, err)
	}
	s := resp.Header.Get(headerSession)
	drain(resp)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("connect: re-initialize: %s answered %d", b.o.ServerURL, resp.StatusCode)
	}
	b.session = s
	b.epoch++
	if b.initDone != nil {
		if resp, err := b.do(ctx, http.MethodPost, b.initDone, tok, s, b.protocol, ""); err == nil {
			drain(resp)
		}
	}
	return nil
}

// replyError answers the IDE's request id with a JSON-RPC error.
func (b *bridge) replyError(id json.RawMessage, code int, msg string) {
	out, err := json.Marshal(map[string]any{
		"jsonrpc": "2.0",
		"id":      id,
		"error":   map[string]any{"code": code, "message": msg},
	})
	if err == nil {
		_ = b.out.write(out)
	}
}

// replyErrorIfRequest answers every request in raw (a message or a batch)
// with a JSON-RPC error.
func (b *bridge) replyErrorIfRequest(raw []byte, code int, msg string) {
	var one message
	if json.Unmarshal(raw, &one) == nil {
		if one.isRequest() {
			b.replyError(one.ID, code, msg)
		}
		return
	}
	var batch []message
	if json.Unmarshal(raw, &batch) == nil {
		for _, m := range batch {
			if m.isRequest() {
				b.replyError(m.ID, code, msg)
			}
		}
	}
}

// startStream opens the standalone GET stream for server-initiated
// messages once a session exists, and keeps it open.
func (b *bridge) startStream() {
	b.mu.Lock()
	if b.streamOn || b.session == "" {
		b.mu.Unlock()
		return
	}
	b.streamOn = true
	ctx, cancel := context.WithCancel(b.ctx)
	b.stop = cancel
	b.mu.Unlock()
	go b.stream(ctx)
}

func (b *bridge) stream(ctx context.Context) {
	backoff := time.Second
	lastID := ""
	force := false
	for ctx.Err() == nil {
		tok, err := b.t.token(ctx, force, "")
		force = false
		if err == nil {
			b.mu.Lock()
			session, protocol := b.session, b.protocol
			b.mu.Unlock()
			var resp *http.Response
			resp, err = b.do(ctx, http.MethodGet, nil, tok, session, protocol, lastID)
			if err == nil {
				ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
				switch {
				case resp.StatusCode == http.StatusMethodNotAllowed:
					drain(resp)
					return // the server offers no stream
				case resp.StatusCode == http.StatusUnauthorized:
					drain(resp)
					force = true
					continue
				case resp.StatusCode == http.StatusOK && ct == "text/event-stream":
					backoff = time.Second
					id, rerr := readSSE(resp.Body, b.o.MaxMessage, func(ev sseEvent) error { return b.out.write(ev.data) })
					resp.Body.Close()
					if id != "" {
						lastID = id
					}
					err = rerr
				default:
					drain(resp)
					err = fmt.Errorf("GET stream: status %d", resp.StatusCode)
				}
			}
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil && !errors.Is(err, io.EOF) {
			fmt.Fprintf(b.o.Log, "backstage-mcp connect: server-to-IDE stream: %v; retrying in %s\n", err, backoff)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

// endSession ends the server's session (DELETE), as a client leaving does.
func (b *bridge) endSession() {
	b.mu.Lock()
	session, protocol := b.session, b.protocol
	b.mu.Unlock()
	if session == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(b.ctx), 5*time.Second)
	defer cancel()
	b.t.mu.Lock()
	var tok string
	if b.t.entry != nil && b.t.entry.Token != nil {
		tok = b.t.entry.Token.AccessToken
	}
	b.t.mu.Unlock()
	if tok == "" {
		return
	}
	if resp, err := b.do(ctx, http.MethodDelete, nil, tok, session, protocol, ""); err == nil {
		drain(resp)
	}
}

// sseEvent is one server-sent event.
type sseEvent struct {
	id    string
	event string
	data  []byte
}

// readSSE reads events from r and calls fn for each message event; it
// returns the last event id seen. Lines and events are bounded by limit.
func readSSE(r io.Reader, limit int, fn func(sseEvent) error) (string, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var ev sseEvent
	var data bytes.Buffer
	lastID := ""
	for {
		line, err := readLine(br, limit)
		if errors.Is(err, errTooLong) {
			return lastID, fmt.Errorf("an event line is over %d bytes", limit)
		}
		if len(line) == 0 && err == nil {
			if data.Len() > 0 && (ev.event == "" || ev.event == "message") {
				ev.data = bytes.Clone(data.Bytes())
				if ferr := fn(ev); ferr != nil {
					return lastID, ferr
				}
			}
			ev = sseEvent{}
			data.Reset()
			continue
		}
		if len(line) > 0 && line[0] != ':' {
			field, value, _ := bytes.Cut(line, []byte(":"))
			value = bytes.TrimPrefix(value, []byte(" "))
			switch string(field) {
			case "data":
				if data.Len()+len(value) > limit {
					return lastID, fmt.Errorf("an event is over %d bytes", limit)
				}
				if data.Len() > 0 {
					data.WriteByte('\n')
				}
				data.Write(value)
			case "event":
				ev.event = string(value)
			case "id":
				ev.id = string(value)
				lastID = ev.id
			}
		}
		if err != nil {
			if data.Len() > 0 && (ev.event == "" || ev.event == "message") {
				ev.data = bytes.Clone(data.Bytes())
				if ferr := fn(ev); ferr != nil {
					return lastID, ferr
				}
			}
			return lastID, err
		}
	}
}

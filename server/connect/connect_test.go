package connect

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/login"
	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
	"golang.org/x/oauth2"
)

// fixture is a real mcp-go Streamable HTTP server behind a bearer check,
// with its protected-resource metadata, and a small OAuth token endpoint
// that refreshes tokens: what connect talks to.
type fixture struct {
	t      *testing.T
	srv    *httptest.Server
	mcp    *mcpserver.MCPServer
	store  *login.Store
	url    string
	issuer string

	mu        sync.Mutex
	valid     map[string]bool // access tokens the server accepts
	refresh   map[string]bool // refresh tokens the provider accepts
	issued    int
	rotate    bool            // the provider issues a new refresh token and forgets the old one
	dead      map[string]bool // sessions the server has forgotten
	seen      []http.Header   // headers of requests to /mcp
	seenToken []string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, valid: map[string]bool{}, refresh: map[string]bool{}, dead: map[string]bool{}}
	f.mcp = mcpserver.NewMCPServer("fake", "1", mcpserver.WithToolCapabilities(false))
	f.mcp.AddTool(mcp.NewTool("echo", mcp.WithString("text")), func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("echo: " + req.GetString("text", "")), nil
	})
	f.mcp.AddTool(mcp.NewTool("ping_me"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		s := mcpserver.ClientSessionFromContext(ctx)
		if err := f.mcp.SendNotificationToSpecificClient(s.SessionID(), "notifications/message", map[string]any{"level": "info", "data": "hello from the server"}); err != nil {
			return nil, err
		}
		return mcp.NewToolResultText("sent"), nil
	})
	streamable := mcpserver.NewStreamableHTTPServer(f.mcp)
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/oauth-protected-resource/mcp", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{
			"resource": f.url, "authorization_servers": []string{f.issuer}, "scopes_supported": []string{"catalog.read"},
		})
	})
	mux.HandleFunc("/as/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": f.issuer, "token_endpoint": f.issuer + "/token", "authorization_endpoint": f.issuer + "/authorize",
			"jwks_uri": f.issuer + "/jwks", "response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("POST /as/token", f.token)
	mux.Handle("/mcp", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		f.mu.Lock()
		f.seen = append(f.seen, r.Header.Clone())
		f.seenToken = append(f.seenToken, tok)
		ok := f.valid[tok]
		dead := f.dead[r.Header.Get(headerSession)]
		f.mu.Unlock()
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="token expired", resource_metadata="`+f.srv.URL+`/.well-known/oauth-protected-resource/mcp"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		if dead {
			http.Error(w, "session not found", http.StatusNotFound)
			return
		}
		streamable.ServeHTTP(w, r)
	}))
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	f.url = f.srv.URL + "/mcp"
	f.issuer = f.srv.URL + "/as"
	f.store = &login.Store{Dir: t.TempDir()}
	return f
}

func (f *fixture) token(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	f.mu.Lock()
	defer f.mu.Unlock()
	rt := r.PostForm.Get("refresh_token")
	if r.PostForm.Get("grant_type") != "refresh_token" || !f.refresh[rt] || r.PostForm.Get("resource") != f.url {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"invalid_grant","error_description":"refresh token revoked"}`)
		return
	}
	f.issued++
	at := fmt.Sprintf("at-%d", f.issued)
	f.valid[at] = true
	w.Header().Set("Content-Type", "application/json")
	if f.rotate {
		delete(f.refresh, rt)
		nrt := fmt.Sprintf("rt-%d", f.issued)
		f.refresh[nrt] = true
		fmt.Fprintf(w, `{"access_token":%q,"refresh_token":%q,"token_type":"Bearer","expires_in":3600}`, at, nrt)
		return
	}
	fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3600}`, at)
}

// signedIn stores a token for the server as a past sign-in would have.
func (f *fixture) signedIn(at, rt string, expiry time.Time) {
	f.t.Helper()
	f.mu.Lock()
	f.refresh[rt] = true
	f.mu.Unlock()
	err := f.store.SaveKey(StoreKey(f.url), &login.Entry{
		Issuer: f.issuer, ClientID: "cli", TokenURL: f.issuer + "/token", Resource: f.url,
		Token: &oauth2.Token{AccessToken: at, RefreshToken: rt, TokenType: "Bearer", Expiry: expiry, ExpiresIn: 3600},
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

// ide is the IDE's end of a running bridge.
type ide struct {
	t      *testing.T
	in     io.WriteCloser
	out    *bufio.Scanner
	log    *syncBuffer
	done   chan error
	nextID int
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (f *fixture) start(mod ...func(*Options)) *ide {
	f.t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	log := &syncBuffer{}
	o := Options{ServerURL: f.url, ClientID: "cli", Store: f.store, Log: log, Device: true, SignInWait: 2 * time.Second, SignInTimeout: 5 * time.Second}
	for _, m := range mod {
		m(&o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, o, inR, outW)
		outW.Close()
	}()
	sc := bufio.NewScanner(outR)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	c := &ide{t: f.t, in: inW, out: sc, log: log, done: done}
	f.t.Cleanup(func() {
		inW.Close()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			f.t.Error("bridge did not stop after stdin closed")
		}
		cancel()
	})
	return c
}

func (c *ide) send(msg string) {
	c.t.Helper()
	if _, err := io.WriteString(c.in, msg+"\n"); err != nil {
		c.t.Fatal(err)
	}
}

// reply is one message from the bridge.
type reply struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Result json.RawMessage `json:"result"`
	Params json.RawMessage `json:"params"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (c *ide) read() reply {
	c.t.Helper()
	lines := make(chan string, 1)
	go func() {
		if c.out.Scan() {
			lines <- c.out.Text()
		}
		close(lines)
	}()
	select {
	case l, ok := <-lines:
		if !ok {
			c.t.Fatalf("bridge closed its output; log:\n%s", c.log.String())
		}
		var r reply
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			c.t.Fatalf("bridge wrote %q: %v", l, err)
		}
		return r
	case <-time.After(20 * time.Second):
		c.t.Fatalf("no message from the bridge in 20s; log:\n%s", c.log.String())
	}
	return reply{}
}

func (c *ide) call(method, params string) reply {
	c.t.Helper()
	c.nextID++
	c.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":%s}`, c.nextID, method, params))
	r := c.read()
	if string(r.ID) != fmt.Sprint(c.nextID) {
		c.t.Fatalf("answer to id %d has id %s: %+v", c.nextID, r.ID, r)
	}
	return r
}

func (c *ide) initialize() {
	c.t.Helper()
	r := c.call("initialize", `{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"test-ide","version":"1"}}`)
	if r.Error != nil || !strings.Contains(string(r.Result), `"protocolVersion":"2025-06-18"`) {
		c.t.Fatalf("initialize: %+v %s", r.Error, r.Result)
	}
	c.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
}

func (c *ide) echo(text string) reply {
	c.t.Helper()
	return c.call("tools/call", fmt.Sprintf(`{"name":"echo","arguments":{"text":%q}}`, text))
}

func wantEcho(t *testing.T, r reply, text string) {
	t.Helper()
	if r.Error != nil || !strings.Contains(string(r.Result), "echo: "+text) {
		t.Fatalf("echo answer: error %+v result %s", r.Error, r.Result)
	}
}

func TestRelaysRequestsNotificationsAndSessionHeaders(t *testing.T) {
	f := newFixture(t)
	f.valid["at-0"] = true
	f.signedIn("at-0", "rt-0", time.Now().Add(time.Hour))
	c := f.start()
	c.initialize()
	r := c.call("tools/list", `{}`)
	if !strings.Contains(string(r.Result), `"echo"`) {
		t.Fatalf("tools/list: %s", r.Result)
	}
	wantEcho(t, c.echo("hi"), "hi")

	// A server-initiated message reaches the IDE (through the answer's SSE
	// stream or the standalone GET stream, as the server chooses).
	c.nextID++
	c.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"ping_me"}}`, c.nextID))
	gotNote, gotAnswer := false, false
	for !gotNote || !gotAnswer {
		m := c.read()
		switch {
		case m.Method == "notifications/message":
			gotNote = strings.Contains(string(m.Params), "hello from the server")
		case string(m.ID) == fmt.Sprint(c.nextID):
			gotAnswer = true
		default:
			t.Fatalf("unexpected message %+v", m)
		}
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	session := ""
	for i, h := range f.seen {
		if f.seenToken[i] != "at-0" {
			t.Errorf("request %d carried token %q", i, f.seenToken[i])
		}
		if i == 0 {
			continue
		}
		if session == "" {
			session = h.Get(headerSession)
		}
		if h.Get(headerSession) == "" || h.Get(headerSession) != session {
			t.Errorf("request %d: session %q, want %q", i, h.Get(headerSession), session)
		}
		if h.Get(headerProtocol) != "2025-06-18" {
			t.Errorf("request %d: protocol header %q", i, h.Get(headerProtocol))
		}
	}
	if session == "" {
		t.Fatal("no session id was relayed")
	}
}

func TestRefreshesWhenTheServerRefusesTheToken(t *testing.T) {
	f := newFixture(t)
	// at-0 looks valid for an hour, but the server no longer takes it.
	f.signedIn("at-0", "rt-0", time.Now().Add(time.Hour))
	c := f.start()
	c.initialize()
	wantEcho(t, c.echo("after refresh"), "after refresh")
	e, err := f.store.LoadKey(StoreKey(f.url))
	if err != nil || e.Token.AccessToken != "at-1" || e.Token.RefreshToken != "rt-0" {
		t.Fatalf("stored token after refresh: %+v %v", e, err)
	}
	fi, err := os.Stat(f.store.Path())
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi.Mode(), err)
	}
}

func TestRefreshesBeforeExpiry(t *testing.T) {
	f := newFixture(t)
	f.valid["at-0"] = true
	// Expires in 5s: inside the refresh margin (a quarter of 60s).
	f.signedIn("at-0", "rt-0", time.Now().Add(5*time.Second))
	e, _ := f.store.LoadKey(StoreKey(f.url))
	e.Token.ExpiresIn = 60
	_ = f.store.SaveKey(StoreKey(f.url), e)
	c := f.start()
	c.initialize()
	wantEcho(t, c.echo("x"), "x")
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, tok := range f.seenToken {
		if tok != "at-1" {
			t.Errorf("request %d sent %q, want the refreshed at-1", i, tok)
		}
	}
}

func TestRefusedRefreshTellsTheIDEToSignInAgain(t *testing.T) {
	f := newFixture(t)
	f.valid["at-0"] = true
	f.signedIn("at-0", "rt-0", time.Now().Add(time.Hour))
	c := f.start()
	c.initialize()
	wantEcho(t, c.echo("ok"), "ok")
	// The token is revoked at the provider and at the server.
	f.mu.Lock()
	f.valid = map[string]bool{}
	f.refresh = map[string]bool{}
	f.mu.Unlock()
	r := c.echo("refused")
	if r.Error == nil || r.Error.Code != codeSignIn {
		t.Fatalf("answer = %+v, want a sign-in error", r)
	}
	for _, want := range []string{"sign in again to " + f.url, "refused to refresh your token (invalid_grant: refresh token revoked)", "backstage-mcp connect --login " + f.url} {
		if !strings.Contains(r.Error.Message, want) {
			t.Errorf("error %q lacks %q", r.Error.Message, want)
		}
	}
	if log := c.log.String(); !strings.Contains(log, "sign in again") || !strings.Contains(log, "sign-in needed") {
		t.Errorf("stderr does not say to sign in again:\n%s", log)
	}
	if strings.Contains(c.log.String(), "rt-0") || strings.Contains(r.Error.Message, "rt-0") {
		t.Error("the refresh token was printed")
	}
	if _, err := f.store.LoadKey(StoreKey(f.url)); err == nil {
		t.Error("the refused token is still stored")
	}
}

func TestLostSessionIsStartedAgain(t *testing.T) {
	f := newFixture(t)
	f.valid["at-0"] = true
	f.signedIn("at-0", "rt-0", time.Now().Add(time.Hour))
	c := f.start()
	c.initialize()
	wantEcho(t, c.echo("one"), "one")
	f.mu.Lock()
	old := f.seen[len(f.seen)-1].Get(headerSession)
	f.dead[old] = true
	f.mu.Unlock()
	// The call goes through on a new session, and the IDE sees only its answer.
	wantEcho(t, c.echo("two"), "two")
	wantEcho(t, c.echo("three"), "three")
	f.mu.Lock()
	last := f.seen[len(f.seen)-1].Get(headerSession)
	f.mu.Unlock()
	if last == "" || last == old {
		t.Fatalf("session after loss = %q (old %q)", last, old)
	}
}

func TestOversizedMessageIsRefusedWithItsID(t *testing.T) {
	f := newFixture(t)
	f.valid["at-0"] = true
	f.signedIn("at-0", "rt-0", time.Now().Add(time.Hour))
	c := f.start(func(o *Options) { o.MaxMessage = 2048 })
	c.initialize()
	c.send(`{"jsonrpc":"2.0","id":77,"method":"tools/call","params":{"name":"echo","arguments":{"text":"` + strings.Repeat("a", 5000) + `"}}}`)
	r := c.read()
	if string(r.ID) != "77" || r.Error == nil || !strings.Contains(r.Error.Message, "over 2048 bytes") {
		t.Fatalf("answer = %+v", r)
	}
	c.nextID = 100
	wantEcho(t, c.echo("still fine"), "still fine")
}

func TestNotSignedInStartsSignInAndSaysSo(t *testing.T) {
	f := newFixture(t)
	// No stored token; the provider offers no device flow, so the sign-in
	// fails, and the IDE hears why.
	c := f.start()
	c.send(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`)
	r := c.read()
	if r.Error == nil || r.Error.Code != codeSignIn || !strings.Contains(r.Error.Message, "you are not signed in") ||
		!strings.Contains(r.Error.Message, "no device authorization endpoint") {
		t.Fatalf("answer = %+v", r)
	}
}

func TestDiscover(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	r, err := Discover(ctx, http.DefaultClient, f.url)
	if err != nil || r.Resource != f.url || r.AuthorizationServers[0] != f.issuer {
		t.Fatalf("Discover = %+v, %v", r, err)
	}

	t.Run("through the 401 challenge", func(t *testing.T) {
		mux := http.NewServeMux()
		var base string
		mux.HandleFunc("/meta", func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintf(w, `{"resource":%q,"authorization_servers":["https://idp.example"]}`, base+"/api/mcp")
		})
		mux.HandleFunc("/api/mcp", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="`+base+`/meta"`)
			w.WriteHeader(http.StatusUnauthorized)
		})
		s := httptest.NewServer(mux)
		defer s.Close()
		base = s.URL
		r, err := Discover(ctx, http.DefaultClient, s.URL+"/api/mcp")
		if err != nil || r.AuthorizationServers[0] != "https://idp.example" {
			t.Fatalf("Discover = %+v, %v", r, err)
		}
	})

	t.Run("a resource on another origin is refused", func(t *testing.T) {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprint(w, `{"resource":"https://evil.example/mcp","authorization_servers":["https://idp.example"]}`)
		}))
		defer s.Close()
		if _, err := Discover(ctx, http.DefaultClient, s.URL+"/mcp"); err == nil || !strings.Contains(err.Error(), "refusing a token for another server") {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("no metadata says what is wrong", func(t *testing.T) {
		s := httptest.NewServer(http.NotFoundHandler())
		defer s.Close()
		if _, err := Discover(ctx, http.DefaultClient, s.URL+"/mcp"); err == nil || !strings.Contains(err.Error(), "publishes no OAuth protected-resource metadata") {
			t.Fatalf("err = %v", err)
		}
	})

	for _, bad := range []string{"http://mcp.example.com/mcp", "ftp://x/mcp", "https://user:pw@mcp.example.com/mcp", "mcp.example.com"} {
		if _, err := CheckServerURL(bad); err == nil {
			t.Errorf("CheckServerURL(%q) accepted", bad)
		}
	}
	for _, good := range []string{"https://mcp.example.com/mcp", "http://127.0.0.1:8080/mcp", "http://localhost:8080/mcp", "http://[::1]:8080/mcp"} {
		if _, err := CheckServerURL(good); err != nil {
			t.Errorf("CheckServerURL(%q): %v", good, err)
		}
	}
}

func TestReadSSE(t *testing.T) {
	in := "id: 1\nevent: message\ndata: {\"a\":\ndata: 1}\n\n: comment\nevent: ping\ndata: x\n\nid: 2\ndata: {\"b\":2}\n\n"
	var got []string
	last, err := readSSE(strings.NewReader(in), 1024, func(ev sseEvent) error {
		got = append(got, string(ev.data))
		return nil
	})
	if !errors.Is(err, io.EOF) || last != "2" || len(got) != 2 || got[0] != "{\"a\":\n1}" || got[1] != `{"b":2}` {
		t.Fatalf("readSSE = %q, last %q, err %v", got, last, err)
	}
	if _, err := readSSE(strings.NewReader("data: "+strings.Repeat("x", 2000)+"\n\n"), 1024, func(sseEvent) error { return nil }); err == nil {
		t.Fatal("an oversized event was accepted")
	}
}

func TestServerInitiatedMessagesOnTheGETStream(t *testing.T) {
	f := newFixture(t)
	f.valid["at-0"] = true
	f.signedIn("at-0", "rt-0", time.Now().Add(time.Hour))
	c := f.start()
	c.initialize()
	f.waitStreams(t, 1)
	f.mcp.SendNotificationToAllClients("notifications/tools/list_changed", nil)
	m := c.read()
	if m.Method != "notifications/tools/list_changed" {
		t.Fatalf("IDE got %+v, want the server's list_changed notification", m)
	}
}

// TestTwoWindowsShareARotatingRefreshToken: two bridges (two IDE windows)
// share the store; the first refreshes and the provider rotates the
// refresh token; the second takes the stored token instead of spending
// the old refresh token and being told to sign in again.
func TestTwoWindowsShareARotatingRefreshToken(t *testing.T) {
	f := newFixture(t)
	f.rotate = true
	f.valid["at-0"] = true
	f.signedIn("at-0", "rt-0", time.Now().Add(time.Hour))
	a, b := f.start(), f.start()
	a.initialize()
	b.initialize()
	f.waitStreams(t, 2)
	f.mu.Lock()
	delete(f.valid, "at-0") // the server stops taking it
	f.mu.Unlock()
	wantEcho(t, a.echo("a"), "a")
	wantEcho(t, b.echo("b"), "b")
	f.mu.Lock()
	issued := f.issued
	f.mu.Unlock()
	if issued != 1 {
		t.Errorf("%d refreshes, want 1 (the second window reuses the first's token)", issued)
	}
	if strings.Contains(a.log.String()+b.log.String(), "sign-in needed") {
		t.Errorf("a window asked to sign in again:\n%s\n%s", a.log.String(), b.log.String())
	}
}

// waitStreams waits until n standalone GET streams have been opened.
func (f *fixture) waitStreams(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.mu.Lock()
		got := 0
		for _, h := range f.seen {
			if h.Get("Accept") == "text/event-stream" {
				got++
			}
		}
		f.mu.Unlock()
		if got >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d GET streams opened, want %d", got, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // the server registers a stream after its headers
}

func TestNoClientIDAndNoTokenFailsAtOnce(t *testing.T) {
	f := newFixture(t)
	err := Run(context.Background(), Options{ServerURL: f.url, Store: f.store}, strings.NewReader(""), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "pass --client-id") {
		t.Fatalf("err = %v", err)
	}
}

// TestBrowserSignInWithPKCE: connect --login in the browser: the
// authorization request carries PKCE S256, the resource and the server's
// scopes; the "browser" follows the redirect to the loopback callback; the
// code is exchanged with the verifier; the token is stored for the server.
func TestBrowserSignInWithPKCE(t *testing.T) {
	f := newFixture(t)
	var mu sync.Mutex
	var challenge, gotScope, gotResource string
	mux := http.NewServeMux()
	as := httptest.NewServer(mux)
	defer as.Close()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": as.URL, "authorization_endpoint": as.URL + "/authorize", "token_endpoint": as.URL + "/token",
			"jwks_uri": as.URL + "/jwks", "response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("/authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		mu.Lock()
		challenge, gotScope, gotResource = q.Get("code_challenge"), q.Get("scope"), q.Get("resource")
		mu.Unlock()
		if q.Get("code_challenge_method") != "S256" || q.Get("client_id") != "cli" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		http.Redirect(w, r, q.Get("redirect_uri")+"?code=the-code&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		mu.Lock()
		ok := base64.RawURLEncoding.EncodeToString(sum[:]) == challenge && r.PostForm.Get("code") == "the-code"
		mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"invalid_grant"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"browser-at","refresh_token":"browser-rt","token_type":"Bearer","expires_in":600}`)
	})
	f.issuer = as.URL
	log := &syncBuffer{}
	e, err := SignIn(context.Background(), Options{
		ServerURL: f.url, ClientID: "cli", Store: f.store, Log: log,
		OpenURL: func(u string) error {
			go func() {
				resp, err := http.Get(u) // the browser: authorize, then the loopback callback
				if err == nil {
					resp.Body.Close()
				}
			}()
			return nil
		},
	})
	if err != nil {
		t.Fatalf("SignIn: %v\n%s", err, log.String())
	}
	if e.Token.AccessToken != "browser-at" || e.Resource != f.url {
		t.Fatalf("entry %+v", e)
	}
	if gotResource != f.url || gotScope != "openid offline_access catalog.read" {
		t.Errorf("authorize request: resource %q scope %q", gotResource, gotScope)
	}
	if stored, err := f.store.LoadKey(StoreKey(f.url)); err != nil || stored.Token.RefreshToken != "browser-rt" {
		t.Errorf("stored %+v %v", stored, err)
	}
}

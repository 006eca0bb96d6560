package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/audit"
	"github.com/backstage-mcp/backstage-mcp/server/demo"
	"github.com/backstage-mcp/backstage-mcp/server/internal/buildseam"
	"github.com/backstage-mcp/backstage-mcp/server/internal/identitytest"
	"github.com/backstage-mcp/backstage-mcp/server/internal/servertest"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog/memcatalog"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// These tests prove delegated identity over real HTTP: an in-process OpenID
// provider (discovery + JWKS, RS256 keys made here) issues access tokens,
// the server built by Build verifies them, and an MCP client speaks
// Streamable HTTP with the bearer token.

// Scopes of the test policy (authPolicy).
const (
	scopeCatalog = "backstage-mcp:catalog"
	scopeAPIs    = "backstage-mcp:catalog.apis"
	agentClient  = "ide-agent"
)

// authPolicy gives every authenticated user read access to all but User
// entities; the agent's token scopes unlock the tools.
const authPolicy = `version: 1
scopes:
  "backstage-mcp:catalog": ["catalog:read"]
  "backstage-mcp:catalog.apis": ["catalog:api-definitions"]
roles:
  - name: everyone
    bind: { authenticated: true }
    tools: ["catalog:read", "catalog:api-definitions"]
    entities:
      allow:
        - IS_ENTITY_KIND: { kinds: [component, api, system, domain, resource, group] }
`

// idpUser is a person known to the test provider.
type idpUser struct{ sub, email, name string }

var (
	amelia = idpUser{sub: "00u-amelia", email: "amelia.hart@acme-retail.example", name: "Amelia Hart"}
	noah   = idpUser{sub: "00u-noah", email: "noah.fischer@acme-retail.example", name: "Noah Fischer"}
	// ghost is a valid user of the provider with no Backstage User entity.
	ghost = idpUser{sub: "00u-ghost", email: "ghost@acme-retail.example", name: "Nobody"}
)

// testIdP is the in-process OpenID provider (identitytest) with the one
// RS256 key that signs its access tokens.
type testIdP struct {
	*identitytest.Provider
	key identitytest.Key
}

func newTestIdP(t *testing.T) *testIdP {
	t.Helper()
	key := identitytest.NewRSAKey(t, "idp-key-1")
	return &testIdP{Provider: identitytest.New(t, key), key: key}
}

// authEnv is a server built from a config file, serving real HTTP, with
// the provider that issues its tokens.
type authEnv struct {
	t         *testing.T
	idp       *testIdP
	base      string // the server's public URL, e.g. http://127.0.0.1:PORT
	s         *Server
	closeFn   func()
	auditPath string

	mu     sync.Mutex
	minted []string // every token issued, to prove none is written anywhere
}

// authSetup varies the server under test.
type authSetup struct {
	// requiredScope is auth.requiredScope.
	requiredScope string
	// backstageURL and backstageToken point at a Backstage; empty means the
	// in-memory demo catalog (BuildOptions.Demo).
	backstageURL, backstageToken string
	// authExtra are more lines of the auth section, indented two spaces.
	authExtra string
	// resolver is auth.resolver.name; default emailMatchingUserEntityProfileEmail.
	resolver string
	// policy replaces authPolicy when set.
	policy string
	// serverExtra are more lines of the server section, indented two spaces.
	serverExtra string
	// extra are more top-level sections.
	extra string
	// demoEntities replace the demo catalog (buildseam.Seams.DemoEntities).
	demoEntities []map[string]any
	// configure, when set, changes the loaded config before Build (for
	// what a file cannot set, such as the audit clock).
	configure func(*Config)
}

func startAuthServer(t *testing.T, idp *testIdP, setup authSetup) *authEnv {
	t.Helper()
	dir := t.TempDir()
	policyFile := filepath.Join(dir, "policy.yaml")
	pol := authPolicy
	if setup.policy != "" {
		pol = setup.policy
	}
	if err := os.WriteFile(policyFile, []byte(pol), 0o600); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(nil)
	t.Cleanup(hs.Close)
	base := "http://" + hs.Listener.Addr().String()

	var b strings.Builder
	fmt.Fprintf(&b, "server:\n  publicURL: %s\n", base)
	b.WriteString(setup.serverExtra)
	if setup.backstageURL != "" {
		fmt.Fprintf(&b, "backstage:\n  baseUrl: %s\n  token: %s\n", setup.backstageURL, setup.backstageToken)
	}
	fmt.Fprintf(&b, "auth:\n  issuers:\n    - url: %s\n", idp.URL())
	resolver := setup.resolver
	if resolver == "" {
		resolver = "emailMatchingUserEntityProfileEmail"
	}
	fmt.Fprintf(&b, "  resolver:\n    name: %s\n", resolver)
	fmt.Fprintf(&b, "  scopesSupported: [%s, %s]\n", scopeCatalog, scopeAPIs)
	b.WriteString(setup.authExtra)
	if setup.requiredScope != "" {
		fmt.Fprintf(&b, "  requiredScope: %s\n", setup.requiredScope)
	}
	fmt.Fprintf(&b, "policy:\n  file: %s\n", policyFile)
	auditPath := filepath.Join(dir, "audit.log")
	fmt.Fprintf(&b, "audit:\n  path: %s\n", auditPath)
	b.WriteString(setup.extra)
	cfgFile := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgFile, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(cfgFile, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if setup.configure != nil {
		setup.configure(cfg)
	}
	// No LocalUser: HTTP requires a bearer token.
	s, closeFn, err := BuildWithSeams(context.Background(), cfg, BuildOptions{Demo: setup.backstageURL == "", Version: "test"}, buildseam.Seams{DemoEntities: setup.demoEntities})
	if err != nil {
		t.Fatalf("Build (demo catalog, auth issuers, no local user): %v", err)
	}
	t.Cleanup(closeFn)
	hs.Config.Handler = s.Handler()
	hs.Start()
	if hs.URL != base {
		t.Fatalf("server URL %s, expected %s", hs.URL, base)
	}
	return &authEnv{t: t, idp: idp, base: base, s: s, closeFn: closeFn, auditPath: auditPath}
}

// claims are those of a valid access token for u, for this server.
func (e *authEnv) claims(u idpUser, scopes ...string) map[string]any {
	now := time.Now()
	jti := make([]byte, 8)
	_, _ = rand.Read(jti)
	return map[string]any{
		"iss":    e.idp.URL(),
		"sub":    u.sub,
		"aud":    []string{e.base + "/mcp", "some-other-api"},
		"exp":    now.Add(time.Hour).Unix(),
		"iat":    now.Add(-time.Minute).Unix(),
		"nbf":    now.Add(-time.Minute).Unix(),
		"azp":    agentClient,
		"scope":  strings.Join(scopes, " "),
		"email":  u.email,
		"name":   u.name,
		"groups": []string{"employees"},
		"jti":    hex.EncodeToString(jti),
	}
}

// mint signs claims with the provider's key and remembers the token.
func (e *authEnv) mint(claims map[string]any) string {
	return e.mintWith(e.idp.key, claims)
}

// mintWith signs claims as an RFC 9068 access token with key.
func (e *authEnv) mintWith(key identitytest.Key, claims map[string]any) string {
	tok := key.SignType(e.t, "at+jwt", claims)
	e.mu.Lock()
	e.minted = append(e.minted, tok)
	e.mu.Unlock()
	return tok
}

// token is a valid access token of u with scopes.
func (e *authEnv) token(u idpUser, scopes ...string) string { return e.mint(e.claims(u, scopes...)) }

// connect opens an MCP session over Streamable HTTP with the bearer token.
func (e *authEnv) connect(tok string) *client.Client {
	e.t.Helper()
	return servertest.ConnectHTTP(e.t, e.base+"/mcp", tok)
}

// legacyProtocol is the last MCP revision with Streamable HTTP sessions
// (Mcp-Session-Id); later revisions serve every request on its own.
const legacyProtocol = "2025-06-18"

// connectLegacy opens an MCP session that negotiates legacyProtocol, so
// the server hands out a session ID.
func (e *authEnv) connectLegacy(tok string) *client.Client {
	e.t.Helper()
	c, err := client.NewStreamableHttpClient(e.base+"/mcp",
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + tok}))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		e.t.Fatal(err)
	}
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = legacyProtocol
	req.Params.ClientInfo = mcp.Implementation{Name: "servertest", Version: "1.0"}
	res, err := c.Initialize(ctx, req)
	if err != nil {
		e.t.Fatalf("initialize: %v", err)
	}
	if res.ProtocolVersion != legacyProtocol {
		e.t.Fatalf("negotiated %s, want %s", res.ProtocolVersion, legacyProtocol)
	}
	if c.GetSessionId() == "" {
		e.t.Fatal("no session id handed out")
	}
	return c
}

const (
	rpcInitialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`
	rpcToolsList  = `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`
)

// do sends one raw request to the server. authz is the whole Authorization
// header ("" for none); sid the Mcp-Session-Id ("" for none).
func (e *authEnv) do(method, path, authz, sid, body string) (*http.Response, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.base+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json, text/event-stream")
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
		req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		e.t.Fatal(err)
	}
	return resp, string(b)
}

// auditRecords stops the server's audit log (flushing it) and reads every
// record. Call it last.
func (e *authEnv) auditRecords() (recs []audit.Record, raw []byte) {
	e.t.Helper()
	e.closeFn()
	raw, err := os.ReadFile(e.auditPath)
	if err != nil {
		e.t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r audit.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			e.t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		recs = append(recs, r)
	}
	return recs, raw
}

// assertNoTokenIn fails if any token minted so far, or any of its parts,
// occurs in data.
func (e *authEnv) assertNoTokenIn(where string, data []byte) {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.minted) == 0 {
		e.t.Fatal("no token was minted: the check would prove nothing")
	}
	for _, tok := range e.minted {
		parts := strings.Split(tok, ".")
		for _, p := range append([]string{tok}, parts[1], parts[2]) {
			if bytes.Contains(data, []byte(p)) {
				e.t.Errorf("%s contains a bearer token (or its payload/signature)", where)
				return
			}
		}
	}
}

func (e *authEnv) metadataURL() string {
	return e.base + "/.well-known/oauth-protected-resource/mcp"
}

// checkChallenge asserts a WWW-Authenticate challenge pointing at the
// resource metadata; wantErr is the error code ("" means none may appear).
func (e *authEnv) checkChallenge(t *testing.T, resp *http.Response, wantErr, wantDesc string) {
	t.Helper()
	h := resp.Header.Get("WWW-Authenticate")
	if !strings.HasPrefix(h, "Bearer ") {
		t.Fatalf("WWW-Authenticate = %q, want a Bearer challenge", h)
	}
	if !strings.Contains(h, `resource_metadata="`+e.metadataURL()+`"`) {
		t.Errorf("WWW-Authenticate = %q, want resource_metadata=%q", h, e.metadataURL())
	}
	if wantErr == "" {
		if strings.Contains(h, "error=") {
			t.Errorf("WWW-Authenticate = %q: no error code expected when no token was sent", h)
		}
	} else if !strings.Contains(h, `error="`+wantErr+`"`) {
		t.Errorf("WWW-Authenticate = %q, want error=%q", h, wantErr)
	}
	if wantDesc != "" && !strings.Contains(h, `error_description="`+wantDesc+`"`) {
		t.Errorf("WWW-Authenticate = %q, want error_description=%q", h, wantDesc)
	}
}

func TestAuthChallengeAndResourceMetadata(t *testing.T) {
	idp := newTestIdP(t)
	e := startAuthServer(t, idp, authSetup{})
	// Another key under the provider's key ID.
	otherKey := identitytest.NewRSAKey(t, idp.key.KID)
	expired := e.claims(amelia, scopeCatalog)
	expired["iat"], expired["exp"] = time.Now().Add(-2*time.Hour).Unix(), time.Now().Add(-time.Hour).Unix()
	expired["nbf"] = expired["iat"]
	wrongAud := e.claims(amelia, scopeCatalog)
	wrongAud["aud"] = []string{"https://other-mcp.example/mcp"}
	foreignIss := e.claims(amelia, scopeCatalog)
	foreignIss["iss"] = "https://evil.example"
	noSub := e.claims(amelia, scopeCatalog)
	delete(noSub, "sub")

	cases := []struct {
		name     string
		method   string
		authz    string
		wantErr  string
		wantDesc string
	}{
		{name: "no token, POST", method: http.MethodPost},
		{name: "no token, GET", method: http.MethodGet},
		{name: "no token, DELETE", method: http.MethodDelete},
		{name: "other scheme", method: http.MethodPost, authz: "Basic YW1lbGlhOnNlY3JldA=="},
		{name: "empty bearer", method: http.MethodPost, authz: "Bearer "},
		{name: "malformed token", method: http.MethodPost, authz: "Bearer not-a-jwt", wantErr: "invalid_token", wantDesc: "malformed token"},
		{name: "expired token", method: http.MethodPost, authz: "Bearer " + e.mint(expired), wantErr: "invalid_token", wantDesc: "token expired"},
		{name: "wrong audience", method: http.MethodPost, authz: "Bearer " + e.mint(wrongAud), wantErr: "invalid_token"},
		{name: "untrusted issuer", method: http.MethodPost, authz: "Bearer " + e.mint(foreignIss), wantErr: "invalid_token", wantDesc: "untrusted issuer"},
		{name: "signed by another key", method: http.MethodPost, authz: "Bearer " + e.mintWith(otherKey, e.claims(amelia, scopeCatalog)), wantErr: "invalid_token"},
		{name: "missing sub", method: http.MethodPost, authz: "Bearer " + e.mint(noSub), wantErr: "invalid_token", wantDesc: "missing sub"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := ""
			if tc.method == http.MethodPost {
				body = rpcInitialize
			}
			resp, got := e.do(tc.method, "/mcp", tc.authz, "", body)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status = %d, want 401; body %s", resp.StatusCode, got)
			}
			e.checkChallenge(t, resp, tc.wantErr, tc.wantDesc)
			if resp.Header.Get("Mcp-Session-Id") != "" {
				t.Error("a rejected request was given a session")
			}
			e.assertNoTokenIn("the 401 response", []byte(got+fmt.Sprint(resp.Header)))
		})
	}

	t.Run("protected resource metadata", func(t *testing.T) {
		for _, path := range []string{"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"} {
			resp, body := e.do(http.MethodGet, path, "", "", "")
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				t.Fatalf("%s: status %d, content type %q", path, resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			var prm struct {
				Resource               string   `json:"resource"`
				AuthorizationServers   []string `json:"authorization_servers"`
				ScopesSupported        []string `json:"scopes_supported"`
				BearerMethodsSupported []string `json:"bearer_methods_supported"`
			}
			if err := json.Unmarshal([]byte(body), &prm); err != nil {
				t.Fatalf("%s: %v: %s", path, err, body)
			}
			if prm.Resource != e.base+"/mcp" {
				t.Errorf("%s: resource = %q, want %q", path, prm.Resource, e.base+"/mcp")
			}
			if !slices.Equal(prm.AuthorizationServers, []string{idp.URL()}) {
				t.Errorf("%s: authorization_servers = %v, want [%s]", path, prm.AuthorizationServers, idp.URL())
			}
			if !slices.Equal(prm.ScopesSupported, []string{scopeCatalog, scopeAPIs}) {
				t.Errorf("%s: scopes_supported = %v", path, prm.ScopesSupported)
			}
			if !slices.Contains(prm.BearerMethodsSupported, "header") {
				t.Errorf("%s: bearer_methods_supported = %v", path, prm.BearerMethodsSupported)
			}
		}
	})
	t.Run("challenge names a document that answers", func(t *testing.T) {
		resp, _ := e.do(http.MethodPost, "/mcp", "", "", rpcInitialize)
		h := resp.Header.Get("WWW-Authenticate")
		_, after, ok := strings.Cut(h, `resource_metadata="`)
		if !ok {
			t.Fatalf("no resource_metadata in %q", h)
		}
		u, _, _ := strings.Cut(after, `"`)
		r, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", u, r.StatusCode)
		}
	})
}

func TestAuthRequiredScope(t *testing.T) {
	e := startAuthServer(t, newTestIdP(t), authSetup{requiredScope: scopeCatalog})
	cases := []struct {
		name   string
		scopes []string
		want   int
	}{
		{name: "no scope", want: http.StatusForbidden},
		{name: "other scopes only", scopes: []string{"openid", "email", scopeAPIs}, want: http.StatusForbidden},
		{name: "required scope", scopes: []string{"openid", scopeCatalog}, want: http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.do(http.MethodPost, "/mcp", "Bearer "+e.token(amelia, tc.scopes...), "", rpcInitialize)
			if resp.StatusCode != tc.want {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tc.want, body)
			}
			if tc.want != http.StatusForbidden {
				return
			}
			h := resp.Header.Get("WWW-Authenticate")
			if !strings.Contains(h, `error="insufficient_scope"`) || !strings.Contains(h, `scope="`+scopeCatalog+`"`) {
				t.Errorf("WWW-Authenticate = %q, want insufficient_scope naming %s", h, scopeCatalog)
			}
			if resp.Header.Get("Mcp-Session-Id") != "" {
				t.Error("a refused request was given a session")
			}
		})
	}
}

// whoamiAnswer is the structured content of whoami.
type whoamiAnswer struct {
	User          string    `json:"user"`
	Subject       string    `json:"subject"`
	Email         string    `json:"email"`
	Name          string    `json:"name"`
	Groups        []string  `json:"groups"`
	OwnershipRefs []string  `json:"ownershipRefs"`
	Agent         string    `json:"agent"`
	AgentName     string    `json:"agentName"`
	Scopes        []string  `json:"scopes"`
	Tools         []string  `json:"tools"`
	Roles         []string  `json:"roles"`
	ExpiresAt     time.Time `json:"expiresAt"`
	Mode          string    `json:"mode"`
}

func TestAuthDelegatedUserReachesTools(t *testing.T) {
	e := startAuthServer(t, newTestIdP(t), authSetup{})
	claims := e.claims(amelia, "openid", scopeCatalog, scopeAPIs)
	exp := time.Unix(claims["exp"].(int64), 0)
	c := e.connect(e.mint(claims))

	t.Run("tools/list", func(t *testing.T) {
		if got := listToolNames(t, c); !slices.Equal(got, servertest.ToolNames) {
			t.Errorf("tools = %v, want %v", got, servertest.ToolNames)
		}
	})
	t.Run("whoami", func(t *testing.T) {
		var id whoamiAnswer
		servertest.Structured(t, servertest.Call(t, c, "whoami", ""), &id)
		if id.User != "user:default/amelia.hart" || id.Subject != amelia.sub || id.Email != amelia.email || id.Mode != "oidc" {
			t.Errorf("user = %q sub %q email %q mode %q", id.User, id.Subject, id.Email, id.Mode)
		}
		// Amelia is a member of engineering, whose parent is acme.
		want := []string{"group:default/acme", "group:default/engineering", "user:default/amelia.hart"}
		if got := slices.Sorted(slices.Values(id.OwnershipRefs)); !slices.Equal(got, want) {
			t.Errorf("ownershipRefs = %v, want %v", got, want)
		}
		if id.Agent != agentClient || !strings.Contains(id.AgentName, "servertest") {
			t.Errorf("agent = %q (%q), want client id %q and the MCP clientInfo", id.Agent, id.AgentName, agentClient)
		}
		if !slices.Contains(id.Scopes, scopeCatalog) || !slices.Contains(id.Scopes, scopeAPIs) {
			t.Errorf("scopes = %v", id.Scopes)
		}
		if !id.ExpiresAt.Equal(exp) {
			t.Errorf("expiresAt = %s, want the token's exp %s", id.ExpiresAt, exp)
		}
		if !slices.Equal(id.Groups, []string{"employees"}) {
			t.Errorf("groups = %v", id.Groups)
		}
	})
	t.Run("catalog answers", func(t *testing.T) {
		var s struct {
			Ref   string `json:"ref"`
			Owner string `json:"owner"`
		}
		servertest.Structured(t, servertest.Call(t, c, "catalog_get_entity", `{"ref":"component:default/checkout-service"}`), &s)
		if s.Ref != "component:default/checkout-service" || s.Owner != "group:default/team-checkout" {
			t.Errorf("get_entity = %+v", s)
		}
		// The policy hides User entities: Amelia's own entity is "not found".
		if res := servertest.Call(t, c, "catalog_get_entity", `{"ref":"user:default/amelia.hart"}`); !res.IsError {
			t.Errorf("a User entity was shown although the policy hides users: %s", servertest.Text(res))
		}
	})
}

func listToolNames(t *testing.T, c *client.Client) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	names := []string{}
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
	}
	slices.Sort(names)
	return names
}

// callErr calls a tool and returns the protocol error (nil if the call
// reached a handler).
func callErr(t *testing.T, c *client.Client, tool string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name = tool
	_, err := c.CallTool(ctx, req)
	return err
}

func TestAuthTokenScopesNarrowTools(t *testing.T) {
	e := startAuthServer(t, newTestIdP(t), authSetup{})
	allButAPIDef := slices.DeleteFunc(slices.Clone(servertest.ToolNames), func(n string) bool { return n == "catalog_get_api_definition" })
	cases := []struct {
		name   string
		scopes []string
		tools  []string
	}{
		{name: "no catalog scope", scopes: []string{"openid", "email", "profile"}, tools: []string{}},
		{name: "only the API scope", scopes: []string{"openid", scopeAPIs}, tools: []string{"catalog_get_api_definition"}},
		{name: "catalog scope without APIs", scopes: []string{"openid", scopeCatalog}, tools: allButAPIDef},
		{name: "both scopes", scopes: []string{scopeCatalog, scopeAPIs}, tools: servertest.ToolNames},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := e.connect(e.token(amelia, tc.scopes...))
			got := listToolNames(t, c)
			if !slices.Equal(got, tc.tools) {
				t.Fatalf("tools = %v, want %v", got, tc.tools)
			}
			unknown := callErr(t, c, "no_such_tool")
			if unknown == nil {
				t.Fatal("an unknown tool was called")
			}
			for _, name := range servertest.ToolNames {
				if slices.Contains(tc.tools, name) {
					continue
				}
				err := callErr(t, c, name)
				if err == nil {
					t.Errorf("%s: called although not listed", name)
					continue
				}
				// Same answer as for a tool that does not exist: no oracle.
				if strings.ReplaceAll(err.Error(), name, "X") != strings.ReplaceAll(unknown.Error(), "no_such_tool", "X") {
					t.Errorf("%s: error %q differs from the unknown tool's %q", name, err, unknown)
				}
			}
		})
	}
}

func TestAuthUnresolvableUserRefused(t *testing.T) {
	e := startAuthServer(t, newTestIdP(t), authSetup{})
	resp, body := e.do(http.MethodPost, "/mcp", "Bearer "+e.token(ghost, scopeCatalog, scopeAPIs), "", rpcInitialize)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status = %d, want 403; body %s", resp.StatusCode, body)
	}
	if resp.Header.Get("Mcp-Session-Id") != "" {
		t.Error("an unresolvable user was given a session")
	}
	if strings.Contains(body, "result") {
		t.Errorf("body %s looks like an MCP answer", body)
	}
	// A known user with the same token shape gets in: the refusal is about
	// the user, not the token.
	if resp, body := e.do(http.MethodPost, "/mcp", "Bearer "+e.token(noah, scopeCatalog), "", rpcInitialize); resp.StatusCode != http.StatusOK {
		t.Fatalf("noah: status = %d; body %s", resp.StatusCode, body)
	}
}

func TestAuthSessionBoundToUser(t *testing.T) {
	e := startAuthServer(t, newTestIdP(t), authSetup{})
	ameliaTok := e.token(amelia, scopeCatalog)
	c := e.connectLegacy(ameliaTok)
	sid := c.GetSessionId()
	other := e.connectLegacy(e.token(amelia, scopeCatalog))
	if other.GetSessionId() == sid {
		t.Fatal("two sessions share one id")
	}

	cases := []struct {
		name  string
		authz string
		sid   string
		want  int
	}{
		{name: "another user's token", authz: "Bearer " + e.token(noah, scopeCatalog), sid: sid, want: http.StatusNotFound},
		{name: "no token", sid: sid, want: http.StatusUnauthorized},
		{name: "invalid token", authz: "Bearer not-a-jwt", sid: sid, want: http.StatusUnauthorized},
		{name: "made-up session id", authz: "Bearer " + ameliaTok, sid: "mcp-session-" + strings.Repeat("0", 36), want: http.StatusNotFound},
		{name: "the owner with a fresh token", authz: "Bearer " + e.token(amelia, scopeCatalog), sid: sid, want: http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.do(http.MethodPost, "/mcp", tc.authz, tc.sid, rpcToolsList)
			if resp.StatusCode != tc.want {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tc.want, body)
			}
			if tc.want != http.StatusOK && strings.Contains(body, "catalog_get_entity") {
				t.Errorf("a refused request got the tool list: %s", body)
			}
		})
	}
	t.Run("the owner's client still works", func(t *testing.T) {
		if got := listToolNames(t, c); len(got) == 0 {
			t.Fatal("no tools")
		}
	})
}

func TestAuthNoTokenPassthrough(t *testing.T) {
	const ownToken = "server-own-token"
	ents, err := demo.Entities()
	if err != nil {
		t.Fatal(err)
	}
	mc, err := memcatalog.New(ents, memcatalog.WithToken(ownToken))
	if err != nil {
		t.Fatal(err)
	}
	rec := &servertest.Recorder{Next: mc.Handler()}
	backstage := httptest.NewServer(rec)
	t.Cleanup(backstage.Close)

	e := startAuthServer(t, newTestIdP(t), authSetup{backstageURL: backstage.URL, backstageToken: ownToken})
	userTok := e.token(amelia, "openid", scopeCatalog, scopeAPIs)
	servertest.CallEveryTool(t, e.connect(userTok))
	// A second user's token, too: resolution requests are made for them.
	e.connect(e.token(noah, scopeCatalog))

	got := mc.Requests()
	if len(got) < 8 {
		t.Fatalf("Backstage received only %d requests: the check would prove little", len(got))
	}
	for i, r := range got {
		if r.Authorization != "Bearer "+ownToken {
			t.Errorf("request %d %s %s carried Authorization %q, want the server's own token", i, r.Method, r.Path, r.Authorization)
		}
		e.assertNoTokenIn(fmt.Sprintf("Backstage request %d (query/body)", i), []byte(r.RawQuery+"\n"+string(r.Body)))
	}
	all := rec.Requests()
	if len(all) != len(got) {
		t.Errorf("recorder saw %d requests, catalog %d", len(all), len(got))
	}
	for i, r := range all {
		e.assertNoTokenIn(fmt.Sprintf("Backstage request %d (headers, query and body)", i), []byte(r.Dump))
	}
}

func TestAuthAuditTrail(t *testing.T) {
	e := startAuthServer(t, newTestIdP(t), authSetup{requiredScope: scopeCatalog})
	expired := e.claims(amelia, scopeCatalog)
	expired["iat"], expired["exp"] = time.Now().Add(-2*time.Hour).Unix(), time.Now().Add(-time.Hour).Unix()
	expired["nbf"] = expired["iat"]

	ameliaTok := e.token(amelia, "openid", scopeCatalog)
	c := e.connectLegacy(ameliaTok)

	// Every refused request, with the reason its audit record must give.
	refusals := []struct {
		name, authz, sid string
		status           int
		reason           string
		user             string // sub expected in the record ("" when unknown)
	}{
		{name: "no token", status: 401, reason: "no token"},
		{name: "malformed", authz: "Bearer not-a-jwt", status: 401, reason: "malformed token"},
		{name: "expired", authz: "Bearer " + e.mint(expired), status: 401, reason: "token expired"},
		{name: "insufficient scope", authz: "Bearer " + e.token(amelia, "openid"), status: 403, reason: "insufficient scope", user: amelia.sub},
		{name: "no Backstage user", authz: "Bearer " + e.token(ghost, scopeCatalog), status: 403, reason: "user not resolvable"},
		{name: "session of another user", authz: "Bearer " + e.token(noah, scopeCatalog), sid: c.GetSessionId(), status: 404, reason: "another user", user: noah.sub},
	}
	for _, r := range refusals {
		resp, body := e.do(http.MethodPost, "/mcp", r.authz, r.sid, rpcInitialize)
		if resp.StatusCode != r.status {
			t.Fatalf("%s: status %d, want %d; body %s", r.name, resp.StatusCode, r.status, body)
		}
	}
	calls := []string{"whoami", "catalog_get_entity", "catalog_search_entities"}
	args := map[string]string{"catalog_get_entity": `{"ref":"component:default/checkout-service"}`, "catalog_search_entities": `{"kind":"api"}`}
	for _, tool := range calls {
		if res := servertest.Call(t, c, tool, args[tool]); res.IsError {
			t.Fatalf("%s: %s", tool, servertest.Text(res))
		}
	}
	// A call to a tool the token's scopes do not unlock is a call too.
	if err := callErr(t, c, "catalog_get_api_definition"); err == nil {
		t.Fatal("catalog_get_api_definition was callable without its scope")
	}

	recs, raw := e.auditRecords()
	e.assertNoTokenIn("the audit file", raw)

	var failures, callRecs []audit.Record
	for _, r := range recs {
		switch r.Type {
		case audit.TypeAuthFailure:
			failures = append(failures, r)
		case audit.TypeCall:
			callRecs = append(callRecs, r)
		}
	}
	// Refusals of nobody in particular after the first of the interval
	// are aggregated into one record that names them in sources.
	counted := 0
	for _, f := range failures {
		counted += max(f.Count, 1)
	}
	if counted != len(refusals) || len(failures) > 4 {
		t.Errorf("%d auth_failure records counting %d refused requests, want at most 4 counting %d: %+v", len(failures), counted, len(refusals), failures)
	}
	for _, want := range refusals {
		found := false
		for _, f := range failures {
			if strings.Contains(f.Reason, want.reason) && f.Decision == audit.DecisionDeny && f.User.Sub == want.user {
				found = true
			}
			for _, sc := range f.Sources {
				if want.user == "" && strings.Contains(sc.Reason, want.reason) && f.Decision == audit.DecisionDeny {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("%s: no auth_failure record with reason %q and user %q", want.name, want.reason, want.user)
		}
	}

	for _, tool := range append(slices.Clone(calls), "catalog_get_api_definition") {
		n := 0
		for _, r := range callRecs {
			if r.Tool == tool {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s: %d call records, want 1", tool, n)
		}
	}
	for _, r := range callRecs {
		if r.User.Sub != amelia.sub || r.User.Email != amelia.email || r.User.Ref != "user:default/amelia.hart" {
			t.Errorf("%s: user %+v", r.Tool, r.User)
		}
		if r.Agent.ClientID != agentClient || r.Agent.Name != "servertest" {
			t.Errorf("%s: agent %+v", r.Tool, r.Agent)
		}
		if r.SessionID != c.GetSessionId() || r.Transport != audit.TransportHTTP {
			t.Errorf("%s: session %q transport %q", r.Tool, r.SessionID, r.Transport)
		}
		wantDecision := audit.DecisionAllowed
		if r.Tool == "catalog_get_api_definition" {
			// The token lacks the scope; the policy would grant the tool.
			wantDecision = audit.DecisionScopeDenied
		}
		if r.Decision != wantDecision {
			t.Errorf("%s: decision %q, want %q", r.Tool, r.Decision, wantDecision)
		}
		// Who and from where: the token's issuer and id, the client
		// address (the loopback peer: no trusted proxy) and User-Agent.
		if r.User.Issuer != e.idp.URL() || r.User.TokenID == "" || r.Source != "127.0.0.1" || r.UserAgent == "" {
			t.Errorf("%s: issuer %q jti %q source %q user agent %q", r.Tool, r.User.Issuer, r.User.TokenID, r.Source, r.UserAgent)
		}
	}
}

// TestAuthProviderShapedTokens checks the claim mappings the README gives
// for each kind of provider, with tokens shaped as those providers issue
// them (only the signing provider is the test one).
func TestAuthProviderShapedTokens(t *testing.T) {
	idp := newTestIdP(t)
	cases := []struct {
		name      string
		setup     authSetup
		claims    func(e *authEnv) map[string]any
		wantAgent string
		wantEmail string
		wantGroup string
	}{
		{
			// Okta custom authorization server: client in cid, scopes in an
			// scp array, sub is the Okta login, email and groups added as
			// custom claims of the access token, aud is one string.
			name: "okta",
			claims: func(e *authEnv) map[string]any {
				now := time.Now()
				return map[string]any{
					"ver": 1, "jti": "AT.okta-1", "iss": e.idp.URL(), "aud": e.base + "/mcp",
					"sub": amelia.email, "uid": "00u1okta", "cid": "0oa-ide-agent",
					"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
					"scp":    []string{"openid", scopeCatalog},
					"email":  amelia.email,
					"groups": []string{"Everyone", "engineering"},
				}
			},
			wantAgent: "0oa-ide-agent", wantEmail: amelia.email, wantGroup: "engineering",
		},
		{
			// Entra ID v1.0 access token (App ID URI = the MCP resource URL):
			// client in appid, user in upn, app roles in roles, scp a string.
			name:  "entra id v1",
			setup: authSetup{authExtra: "  emailClaim: upn\n  groupsClaim: roles\n"},
			claims: func(e *authEnv) map[string]any {
				now := time.Now()
				return map[string]any{
					"ver": "1.0", "iss": e.idp.URL(), "aud": e.base + "/mcp",
					"sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ", "oid": "6e2f0b8c-0000-4000-8000-000000000001",
					"appid": "2f1c7c0e-0000-4000-8000-00000000000a", "upn": amelia.email, "name": amelia.name,
					"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
					"scp":   scopeCatalog + " openid",
					"roles": []string{"Catalog.Reader"},
				}
			},
			wantAgent: "2f1c7c0e-0000-4000-8000-00000000000a", wantEmail: amelia.email, wantGroup: "Catalog.Reader",
		},
		{
			// Keycloak: client in azp, realm roles in realm_access.roles,
			// audience from an audience mapper, username resolver.
			name: "keycloak",
			setup: authSetup{
				resolver:  "usernameMatchingUserEntityName",
				authExtra: "  groupsClaim: realm_access.roles\n",
			},
			claims: func(e *authEnv) map[string]any {
				now := time.Now()
				return map[string]any{
					"iss": e.idp.URL(), "aud": []string{e.base + "/mcp", "account"}, "typ": "Bearer",
					"sub": "f1d7c6a2-0000-4000-8000-000000000002", "azp": "ide-agent",
					"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
					"scope":              "openid email profile " + scopeCatalog,
					"preferred_username": "amelia.hart", "email": amelia.email,
					"realm_access": map[string]any{"roles": []string{"offline_access", "catalog-readers"}},
				}
			},
			wantAgent: "ide-agent", wantEmail: amelia.email, wantGroup: "catalog-readers",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := startAuthServer(t, idp, tc.setup)
			c := e.connect(e.mint(tc.claims(e)))
			var id whoamiAnswer
			servertest.Structured(t, servertest.Call(t, c, "whoami", ""), &id)
			if id.User != "user:default/amelia.hart" {
				t.Errorf("user = %q, want user:default/amelia.hart", id.User)
			}
			if id.Agent != tc.wantAgent {
				t.Errorf("agent = %q, want %q", id.Agent, tc.wantAgent)
			}
			if id.Email != tc.wantEmail {
				t.Errorf("email = %q, want %q", id.Email, tc.wantEmail)
			}
			if !slices.Contains(id.Groups, tc.wantGroup) {
				t.Errorf("groups = %v, want %q among them", id.Groups, tc.wantGroup)
			}
			if !slices.Contains(id.Scopes, scopeCatalog) {
				t.Errorf("scopes = %v", id.Scopes)
			}
		})
	}
}

// TestAuthFallbackRole: with auth.fallbackRole set, a verified user without
// a Backstage entity is let in, holding that role.
func TestAuthFallbackRole(t *testing.T) {
	const policyWithGuests = authPolicy + `  - name: guests
    bind: { idpGroups: [only-through-the-fallback] }
    tools: ["catalog:read"]
    entities:
      allow:
        - IS_ENTITY_KIND: { kinds: [system] }
`
	e := startAuthServer(t, newTestIdP(t), authSetup{policy: policyWithGuests, authExtra: "  fallbackRole: guests\n"})
	c := e.connect(e.token(ghost, scopeCatalog))
	var id whoamiAnswer
	servertest.Structured(t, servertest.Call(t, c, "whoami", ""), &id)
	if id.User != "" || id.Subject != ghost.sub {
		t.Errorf("user %q subject %q: want no user ref and the token's subject", id.User, id.Subject)
	}
	if !slices.Contains(id.Roles, "guests") {
		t.Errorf("roles = %v: the fallback role %q is not held", id.Roles, "guests")
	}
	// A resolvable user does not get the fallback role.
	c2 := e.connect(e.token(amelia, scopeCatalog))
	var id2 whoamiAnswer
	servertest.Structured(t, servertest.Call(t, c2, "whoami", ""), &id2)
	if slices.Contains(id2.Roles, "guests") {
		t.Errorf("amelia holds the fallback role: %v", id2.Roles)
	}
}

// TestAuthInteropAndChallengeScope: with token verification on (Build
// with auth issuers), the 401 challenge names auth.requiredScope and the
// per-revision JSON-RPC rules of interop still apply behind the
// authentication: a null id is -32600, and a 2026-07-28 ping without the
// _meta envelope is answered.
func TestAuthInteropAndChallengeScope(t *testing.T) {
	e := startAuthServer(t, newTestIdP(t), authSetup{requiredScope: scopeCatalog})
	resp, _ := e.do(http.MethodPost, "/mcp", "", "", rpcInitialize)
	if h := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(h, `scope="`+scopeCatalog+`"`) {
		t.Fatalf("token-less: %d, WWW-Authenticate %q; want 401 naming scope %s", resp.StatusCode, h, scopeCatalog)
	}
	tok := "Bearer " + e.token(amelia, "openid", scopeCatalog)
	resp, body := e.do(http.MethodPost, "/mcp", tok, "", `{"jsonrpc":"2.0","id":null,"method":"ping"}`)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "-32600") {
		t.Fatalf("null id with a token: %d %s; want 400 -32600", resp.StatusCode, body)
	}
	req, err := http.NewRequest(http.MethodPost, e.base+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":3,"method":"ping"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", tok)
	req.Header.Set("Mcp-Protocol-Version", "2026-07-28")
	req.Header.Set("Mcp-Method", "ping")
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Body.Close()
	b, _ := io.ReadAll(r2.Body)
	if r2.StatusCode != http.StatusOK || !strings.Contains(string(b), `"result":{"resultType":"complete"}`) {
		t.Fatalf("2026-07-28 ping without _meta, with a token: %d %s", r2.StatusCode, b)
	}
}

//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server"
	"github.com/backstage-mcp/backstage-mcp/server/e2e/oidcop"
	"github.com/backstage-mcp/backstage-mcp/server/internal/servertest"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
)

// These tests prove delegated identity with a real OpenID provider (the
// oidcop harness) and the real Backstage started by TestMain.

// Users of the provider, matching User entities of the demo catalog (which
// the real Backstage serves) by their profile email.
func identityUsers() []oidcop.User {
	return []oidcop.User{
		{ID: "id-amelia", Username: "amelia.hart", Password: "amelia-password-1", FirstName: "Amelia", LastName: "Hart",
			Email: "amelia.hart@acme-retail.example", EmailVerified: true, Groups: []string{"employees", "engineering"}},
		{ID: "id-noah", Username: "noah.fischer", Password: "noah-password-1", FirstName: "Noah", LastName: "Fischer",
			Email: "noah.fischer@acme-retail.example", EmailVerified: true, Groups: []string{"employees", "sre"}},
	}
}

// The provider's scopes for this server, mapped by identityPolicy.
var identityScopes = []string{"catalog.read", "catalog.apis", "catalog.people"}

// identityPolicy lets any signed-in user read the whole catalog, people and
// API definitions included, through an agent whose token carries the
// matching scopes.
const identityPolicy = `version: 1
scopes:
  "catalog.read": ["catalog:read"]
  "catalog.apis": ["catalog:api-definitions"]
  "catalog.people": ["catalog:read:users"]
roles:
  - name: signed-in-readers
    bind: { authenticated: true }
    tools: ["catalog:read", "catalog:api-definitions", "catalog:read:users"]
    entities:
      allow:
        - IN_NAMESPACE: { namespaces: [default, platform] }
    rateClass: high
`

// identityConfig writes a policy and a config file trusting op; backstageURL
// is where the server's catalog client goes (the real Backstage, or a proxy
// in front of it). publicURL and audience may be empty.
func identityConfig(t *testing.T, op *oidcop.OP, backstageURL, publicURL, audience string) (cfgPath, auditPath string) {
	t.Helper()
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(pol, []byte(identityPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	auditPath = filepath.Join(dir, "audit.log")
	var b strings.Builder
	if publicURL != "" {
		fmt.Fprintf(&b, "server:\n  publicURL: %s\n", publicURL)
	}
	fmt.Fprintf(&b, "backstage:\n  baseUrl: %s\n  token: ${E2E_BACKSTAGE_TOKEN}\n", backstageURL)
	fmt.Fprintf(&b, "auth:\n  issuers:\n    - url: %s\n", op.Issuer)
	if audience != "" {
		fmt.Fprintf(&b, "  audience: %s\n", audience)
	}
	fmt.Fprintf(&b, "  resolver:\n    name: emailMatchingUserEntityProfileEmail\n")
	fmt.Fprintf(&b, "  scopesSupported: [%s]\n", strings.Join(identityScopes, ", "))
	fmt.Fprintf(&b, "policy:\n  file: %s\naudit:\n  path: %s\nlog:\n  level: debug\n", pol, auditPath)
	cfgPath = filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgPath, auditPath
}

// identityServer is backstage-mcp over HTTP, trusting a real provider.
type identityServer struct {
	base string
	op   *oidcop.OP
}

// startIdentityServer starts a provider issuing tokens for this server's
// /mcp and the server (no local user: HTTP requires tokens), whose
// catalog client talks to backstageURL.
func startIdentityServer(t *testing.T, backstageURL string) *identityServer {
	t.Helper()
	hs := httptest.NewUnstartedServer(nil)
	t.Cleanup(hs.Close)
	base := "http://" + hs.Listener.Addr().String()
	op := oidcop.Start(t, oidcop.Options{Audience: base + "/mcp", Users: identityUsers()})
	cfgPath, _ := identityConfig(t, op, backstageURL, base, "")
	cfg, err := server.LoadConfig(cfgPath, func(k string) string {
		if k == "E2E_BACKSTAGE_TOKEN" {
			return bs.Token
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	s, closeFn, err := server.Build(context.Background(), cfg, server.BuildOptions{Version: "e2e"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeFn)
	hs.Config.Handler = s.Handler()
	hs.Start()
	return &identityServer{base: base, op: op}
}

// connectWithToken opens a Streamable HTTP session with a bearer token.
func (is *identityServer) connectWithToken(t *testing.T, tok string) *client.Client {
	t.Helper()
	return servertest.ConnectHTTP(t, is.base+"/mcp", tok)
}

// whoami is the part of whoami's answer these tests check.
type whoami struct {
	User          string    `json:"user"`
	Subject       string    `json:"subject"`
	Email         string    `json:"email"`
	OwnershipRefs []string  `json:"ownershipRefs"`
	Agent         string    `json:"agent"`
	Scopes        []string  `json:"scopes"`
	ExpiresAt     time.Time `json:"expiresAt"`
	Mode          string    `json:"mode"`
}

func checkAmelia(t *testing.T, c *client.Client, clientID string) whoami {
	t.Helper()
	var id whoami
	servertest.Structured(t, servertest.Call(t, c, "whoami", ""), &id)
	if id.User != "user:default/amelia.hart" || id.Subject != "id-amelia" || id.Email != "amelia.hart@acme-retail.example" || id.Mode != "oidc" {
		t.Errorf("whoami user %q sub %q email %q mode %q", id.User, id.Subject, id.Email, id.Mode)
	}
	// In the demo catalog Amelia is in engineering, a child of acme.
	for _, g := range []string{"user:default/amelia.hart", "group:default/engineering", "group:default/acme"} {
		if !slices.Contains(id.OwnershipRefs, g) {
			t.Errorf("ownershipRefs %v lack %s", id.OwnershipRefs, g)
		}
	}
	if id.Agent != clientID {
		t.Errorf("agent = %q, want the OAuth client %q", id.Agent, clientID)
	}
	for _, s := range identityScopes {
		if !slices.Contains(id.Scopes, s) {
			t.Errorf("scopes %v lack %s", id.Scopes, s)
		}
	}
	if id.ExpiresAt.IsZero() || !id.ExpiresAt.After(time.Now()) {
		t.Errorf("expiresAt = %s", id.ExpiresAt)
	}
	return id
}

// TestIdentityRealProviderOverHTTP: an agent with a token from a real IdP
// reaches every tool over Streamable HTTP against the real Backstage.
func TestIdentityRealProviderOverHTTP(t *testing.T) {
	is := startIdentityServer(t, bs.BaseURL)
	tok := is.op.UserToken(t, "amelia.hart", append([]string{"openid"}, identityScopes...)...)
	c := is.connectWithToken(t, tok.AccessToken)
	checkAmelia(t, c, is.op.CLIClientID)
	servertest.CheckTools(t, c)

	t.Run("a token without the catalog scopes sees no tools", func(t *testing.T) {
		c := is.connectWithToken(t, is.op.UserToken(t, "noah.fischer", "openid", "email").AccessToken)
		res, err := c.ListTools(context.Background(), mcp.ListToolsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Tools) != 0 {
			t.Errorf("tools = %d, want none", len(res.Tools))
		}
	})
}

// TestIdentityChallengeLeadsToProvider: without a token an agent gets the
// 401 challenge, and the metadata it names leads to the provider.
func TestIdentityChallengeLeadsToProvider(t *testing.T) {
	is := startIdentityServer(t, bs.BaseURL)
	req, _ := http.NewRequest(http.MethodPost, is.base+"/mcp", strings.NewReader(
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e","version":"1"}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status = %d, want 401", resp.StatusCode)
	}
	h := resp.Header.Get("WWW-Authenticate")
	want := `Bearer resource_metadata="` + is.base + `/.well-known/oauth-protected-resource/mcp"`
	if h != want {
		t.Fatalf("WWW-Authenticate = %q, want %q", h, want)
	}
	metaURL := strings.TrimSuffix(strings.TrimPrefix(h, `Bearer resource_metadata="`), `"`)
	var prm struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
		ScopesSupported      []string `json:"scopes_supported"`
	}
	getJSON(t, metaURL, &prm)
	if prm.Resource != is.base+"/mcp" || !slices.Equal(prm.AuthorizationServers, []string{is.op.Issuer}) ||
		!slices.Equal(prm.ScopesSupported, identityScopes) {
		t.Fatalf("protected resource metadata = %+v", prm)
	}
	// The agent can go on to the provider's own metadata.
	var disc struct {
		Issuer      string `json:"issuer"`
		TokenURL    string `json:"token_endpoint"`
		DeviceAuthz string `json:"device_authorization_endpoint"`
	}
	getJSON(t, strings.TrimSuffix(prm.AuthorizationServers[0], "/")+"/.well-known/openid-configuration", &disc)
	if disc.Issuer != is.op.Issuer || disc.TokenURL == "" || disc.DeviceAuthz == "" {
		t.Fatalf("provider discovery = %+v", disc)
	}
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", u, resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

// TestLoginDeviceCodeThenStdio: `backstage-mcp login` runs the device flow
// to the end against the real provider, stores the token 0600, and
// `serve --stdio` then acts as that user, verifying the stored token as
// HTTP does; `logout` removes it.
func TestLoginDeviceCodeThenStdio(t *testing.T) {
	const resource = "https://mcp.e2e.test/mcp"
	op := oidcop.Start(t, oidcop.Options{Audience: resource, Users: identityUsers()})
	cfgPath, _ := identityConfig(t, op, bs.BaseURL, "https://mcp.e2e.test", "")
	home := t.TempDir()
	cfgHome := filepath.Join(home, ".config")
	env := []string{"HOME=" + home, "XDG_CONFIG_HOME=" + cfgHome, "E2E_BACKSTAGE_TOKEN=" + bs.Token}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	login := exec.CommandContext(ctx, binary, "login", "--issuer", op.Issuer, "--client-id", op.CLIClientID,
		"--scopes", strings.Join(append([]string{"openid", "offline_access"}, identityScopes...), " "), "--resource", resource)
	login.Env = append(os.Environ(), env...)
	var stdout bytes.Buffer
	login.Stdout = &stdout
	stderr, err := login.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := login.Start(); err != nil {
		t.Fatal(err)
	}
	var prompt strings.Builder
	code := ""
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		prompt.WriteString(sc.Text() + "\n")
		if c, err := oidcop.UserCodeFrom(prompt.String()); err == nil {
			code = c
			break
		}
	}
	if code == "" {
		_ = login.Wait()
		t.Fatalf("login printed no user code:\n%s", prompt.String())
	}
	go func() { _, _ = io.Copy(&prompt, stderr) }() // keep draining
	if err := op.ApproveDevice(ctx, code, "amelia.hart"); err != nil {
		t.Fatal(err)
	}
	if err := login.Wait(); err != nil {
		t.Fatalf("login: %v\nstdout: %s", err, stdout.String())
	}
	if !strings.Contains(stdout.String(), "Logged in to "+op.Issuer) {
		t.Errorf("login stdout = %q", stdout.String())
	}

	tokenFile := filepath.Join(cfgHome, "backstage-mcp", "token.json")
	fi, err := os.Stat(tokenFile)
	if err != nil {
		t.Fatalf("token not stored where expected: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %o, want 600", fi.Mode().Perm())
	}
	if di, err := os.Stat(filepath.Dir(tokenFile)); err != nil || di.Mode().Perm()&0o077 != 0 {
		t.Errorf("token directory is open to others: %v %v", di.Mode(), err)
	}

	t.Run("serve --stdio acts as the logged-in user", func(t *testing.T) {
		c, err := client.NewStdioMCPClient(binary, env, "serve", "--stdio", "--config", cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		servertest.Connect(t, c)
		checkAmelia(t, c, op.CLIClientID)
		var s struct {
			Ref   string `json:"ref"`
			Owner string `json:"owner"`
		}
		servertest.Structured(t, servertest.Call(t, c, "catalog_get_entity", `{"ref":"component:default/checkout-service"}`), &s)
		if s.Owner != "group:default/team-checkout" {
			t.Errorf("get_entity = %+v", s)
		}
	})

	t.Run("a stored token that fails verification is refused", func(t *testing.T) {
		// A copy of the store whose access token is re-signed badly: the
		// stdio server must verify it like HTTP does and refuse to start.
		home2 := t.TempDir()
		dir2 := filepath.Join(home2, ".config", "backstage-mcp")
		if err := os.MkdirAll(dir2, 0o700); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(tokenFile)
		if err != nil {
			t.Fatal(err)
		}
		var store map[string]any
		if err := json.Unmarshal(raw, &store); err != nil {
			t.Fatal(err)
		}
		entry := store["tokens"].(map[string]any)[op.Issuer].(map[string]any)
		tok := entry["token"].(map[string]any)
		at := tok["access_token"].(string)
		parts := strings.Split(at, ".")
		if len(parts) != 3 {
			t.Fatalf("stored access token is not a JWT")
		}
		sig := []byte(parts[2])
		sig[len(sig)/2] ^= 0x01 // flip one bit of the signature, stay base64url-ish
		if sig[len(sig)/2] == '.' {
			sig[len(sig)/2] = 'A'
		}
		tok["access_token"] = parts[0] + "." + parts[1] + "." + string(sig)
		delete(tok, "refresh_token")
		out, _ := json.Marshal(store)
		if err := os.WriteFile(filepath.Join(dir2, "token.json"), out, 0o600); err != nil {
			t.Fatal(err)
		}
		res := runServeStdio(t, []string{"HOME=" + home2, "XDG_CONFIG_HOME=" + filepath.Join(home2, ".config"), "E2E_BACKSTAGE_TOKEN=" + bs.Token}, cfgPath)
		if res.err == nil {
			t.Fatalf("serve --stdio started with a tampered token; stderr:\n%s", res.stderr)
		}
		if !strings.Contains(res.stderr, "stored login token rejected") || !strings.Contains(res.stderr, "invalid token") {
			t.Errorf("stderr does not say the token was rejected:\n%s", res.stderr)
		}
		if strings.Contains(res.stderr, at) || strings.Contains(res.stderr, parts[1]) {
			t.Error("stderr contains the stored token")
		}
	})

	t.Run("logout, then stdio has no identity", func(t *testing.T) {
		cmd := exec.Command(binary, "logout", "--issuer", op.Issuer)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Logged out of "+op.Issuer) {
			t.Fatalf("logout: %v: %s", err, out)
		}
		res := runServeStdio(t, env, cfgPath)
		if res.err == nil || !strings.Contains(res.stderr, "not logged in") {
			t.Fatalf("serve --stdio after logout: err %v, stderr:\n%s", res.err, res.stderr)
		}
	})
}

type runResult struct {
	err    error
	stderr string
}

// runServeStdio runs `serve --stdio` with an empty stdin and returns how
// it ended.
func runServeStdio(t *testing.T, env []string, cfgPath string) runResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "serve", "--stdio", "--config", cfgPath)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader("")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	return runResult{err: err, stderr: stderr.String()}
}

// TestPassthroughNeverReachesBackstage: every request the real Backstage
// received carried the server's own credential, never the user's token.
func TestPassthroughNeverReachesBackstage(t *testing.T) {
	target, err := url.Parse(bs.BaseURL)
	if err != nil {
		t.Fatal(err)
	}
	rp := &servertest.Recorder{Next: httputil.NewSingleHostReverseProxy(target)}
	proxy := httptest.NewServer(rp)
	t.Cleanup(proxy.Close)

	is := startIdentityServer(t, proxy.URL)
	tok := is.op.UserToken(t, "amelia.hart", append([]string{"openid"}, identityScopes...)...)
	servertest.CallEveryTool(t, is.connectWithToken(t, tok.AccessToken))
	// A second user, so user resolution requests are made again.
	is.connectWithToken(t, is.op.UserToken(t, "noah.fischer", append([]string{"openid"}, identityScopes...)...).AccessToken)

	got := rp.Requests()
	if len(got) < 8 {
		t.Fatalf("Backstage received only %d requests: the check would prove little", len(got))
	}
	parts := strings.Split(tok.AccessToken, ".")
	if len(parts) != 3 {
		t.Fatal("the provider's access token is not a JWT")
	}
	for i, r := range got {
		if r.Authorization != "Bearer "+bs.Token {
			t.Errorf("request %d carried Authorization %q, want the server's own Backstage token", i, clipTok(r.Authorization))
		}
		for _, p := range []string{tok.AccessToken, parts[1], parts[2]} {
			if strings.Contains(r.Dump, p) {
				t.Errorf("request %d carried the user's token:\n%s", i, strings.SplitN(r.Dump, "\n", 2)[0])
			}
		}
	}
}

func clipTok(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}

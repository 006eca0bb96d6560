//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server"
	"github.com/backstage-mcp/backstage-mcp/server/e2e/oidcop"
	"github.com/backstage-mcp/backstage-mcp/server/e2e/oidcprovider"
	"github.com/backstage-mcp/backstage-mcp/server/internal/servertest"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
)

// These tests run `backstage-mcp connect` as an IDE would, against a
// shared server trusting a real OpenID provider, and the real Backstage:
// sign in with the device flow (the test plays the person at the
// browser), call tools through the bridge, let the access token expire
// (refreshed), revoke the refresh token at the provider (the IDE is told
// to sign in again, and a new sign-in gets it going again). Two providers:
// zitadel's example OP (oidcop) and node-oidc-provider (oidcprovider).

// accessTokenLifetime is short so that tokens expire during the test.
const accessTokenLifetime = 10 * time.Second

// connectProvider is what the test needs of a provider.
type connectProvider struct {
	name     string
	issuer   string
	clientID string
	approve  func(ctx context.Context, userCode, username string) error
	revoke   func(ctx context.Context, refreshToken string) error
}

func TestConnectZitadel(t *testing.T) {
	testConnect(t, func(t *testing.T, audience string) connectProvider {
		op := oidcop.Start(t, oidcop.Options{Audience: audience, Users: identityUsers(), AccessTokenLifetime: accessTokenLifetime})
		return connectProvider{name: "zitadel", issuer: op.Issuer, clientID: op.CLIClientID, approve: op.ApproveDevice, revoke: op.RevokeRefreshToken}
	})
}

func TestConnectNodeOIDCProvider(t *testing.T) {
	testConnect(t, func(t *testing.T, audience string) connectProvider {
		p := oidcprovider.Start(t, oidcprovider.Options{
			RepoRoot: repoRoot, Audience: audience, Scopes: identityScopes, AccessTokenLifetime: accessTokenLifetime,
			Users: []oidcprovider.User{
				{ID: "id-amelia", Email: "amelia.hart@acme-retail.example", Name: "Amelia Hart", Groups: []string{"employees", "engineering"}},
			},
		})
		return connectProvider{name: "oidc-provider", issuer: p.Issuer, clientID: p.ClientID, approve: p.ApproveDevice, revoke: p.RevokeRefreshToken}
	})
}

// connectServer starts backstage-mcp over HTTP trusting the provider that
// start returns (given the server's /mcp URL as the token audience).
func connectServer(t *testing.T, start func(*testing.T, string) connectProvider) (string, connectProvider) {
	t.Helper()
	hs := httptest.NewUnstartedServer(nil)
	t.Cleanup(hs.Close)
	base := "http://" + hs.Listener.Addr().String()
	p := start(t, base+"/mcp")
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(pol, []byte(identityPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgText := fmt.Sprintf(`server:
  publicURL: %s
backstage:
  baseUrl: %s
  token: ${E2E_BACKSTAGE_TOKEN}
auth:
  issuers:
    - url: %s
  resolver:
    name: emailMatchingUserEntityProfileEmail
  scopesSupported: [%s]
policy:
  file: %s
audit:
  path: %s
`, base, bs.BaseURL, p.issuer, strings.Join(identityScopes, ", "), pol, filepath.Join(dir, "audit.log"))
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
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
	return base + "/mcp", p
}

// storedConnectToken reads the bridge's entry from the token file.
func storedConnectToken(t *testing.T, tokenFile, serverURL string) (access, refresh string, expiry time.Time) {
	t.Helper()
	raw, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Tokens map[string]struct {
			Token struct {
				AccessToken  string    `json:"access_token"`
				RefreshToken string    `json:"refresh_token"`
				Expiry       time.Time `json:"expiry"`
			} `json:"token"`
		} `json:"tokens"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	e, ok := f.Tokens["connect "+serverURL]
	if !ok {
		t.Fatalf("no connect entry for %s in %s", serverURL, tokenFile)
	}
	return e.Token.AccessToken, e.Token.RefreshToken, e.Token.Expiry
}

// lockedBuffer collects a process's stderr.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func testConnect(t *testing.T, start func(*testing.T, string) connectProvider) {
	serverURL, p := connectServer(t, start)
	home := t.TempDir()
	cfgHome := filepath.Join(home, ".config")
	env := []string{"HOME=" + home, "XDG_CONFIG_HOME=" + cfgHome, "XDG_STATE_HOME=" + filepath.Join(home, ".state"),
		"BACKSTAGE_MCP_CLIENT_ID=" + p.clientID, "DISPLAY=", "WAYLAND_DISPLAY="}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// 1. Sign in from a terminal: `connect --login --device`.
	began := time.Now()
	login := exec.CommandContext(ctx, binary, "connect", "--login", "--device", serverURL)
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
		t.Fatalf("connect --login printed no user code:\n%s", prompt.String())
	}
	go func() { _, _ = io.Copy(&prompt, stderr) }()
	if err := p.approve(ctx, code, "amelia.hart"); err != nil {
		t.Fatal(err)
	}
	if err := login.Wait(); err != nil {
		t.Fatalf("connect --login: %v\nstdout: %s\nstderr: %s", err, stdout.String(), prompt.String())
	}
	if !strings.Contains(stdout.String(), "Signed in to "+serverURL) {
		t.Errorf("stdout = %q", stdout.String())
	}
	tokenFile := filepath.Join(cfgHome, "backstage-mcp", "token.json")
	if fi, err := os.Stat(tokenFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi, err)
	}
	at0, rt0, exp0 := storedConnectToken(t, tokenFile, serverURL)
	if at0 == "" || rt0 == "" || exp0.IsZero() {
		t.Fatalf("stored token lacks an access token, refresh token or expiry (refresh %v)", rt0 != "")
	}

	// 2. The IDE starts the bridge and calls tools as Amelia.
	c, err := client.NewStdioMCPClient(binary, env, "connect", "--device", "--sign-in-wait", "5s", serverURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	bridgeLog := &lockedBuffer{}
	if r, ok := client.GetStderr(c); ok {
		go func() { _, _ = io.Copy(bridgeLog, r) }()
	}
	servertest.Connect(t, c)
	checkAmelia(t, c, p.clientID)
	getCheckout := func() error {
		res, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "catalog_get_entity", Arguments: map[string]any{"ref": "component:default/checkout-service"}}})
		if err != nil {
			return err
		}
		if res.IsError || !strings.Contains(servertest.Text(res), "team-checkout") {
			return fmt.Errorf("get_entity: error %v: %s", res.IsError, servertest.Text(res))
		}
		return nil
	}
	if err := getCheckout(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: from `connect --login` to the first answer through the bridge: %s (sign-in driven by the test)", p.name, time.Since(began).Round(100*time.Millisecond))

	// doctor, on the developer's side, sees the same: the server, the
	// provider, the stored token, and what the server gives Amelia.
	doc := exec.CommandContext(ctx, binary, "doctor", "--server", serverURL)
	doc.Env = append(os.Environ(), env...)
	out, err := doc.CombinedOutput()
	if err != nil {
		t.Errorf("doctor --server: %v\n%s", err, out)
	}
	for _, want := range []string{"ok    server", "ok    identity provider " + p.issuer, "device flow: yes",
		"ok    your token", "user: amelia.hart@acme-retail.example", "signature: verified",
		"ok    what the server lets you do", "catalog_get_entity", "you are user:default/amelia.hart"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("doctor --server output lacks %q:\n%s", want, out)
		}
	}

	// 3. The access token expires: the bridge refreshes it.
	time.Sleep(time.Until(exp0) + time.Second)
	if err := getCheckout(); err != nil {
		t.Fatalf("after expiry: %v\nbridge log:\n%s", err, bridgeLog.String())
	}
	at1, rt1, exp1 := storedConnectToken(t, tokenFile, serverURL)
	if at1 == at0 || !exp1.After(exp0) {
		t.Fatalf("the token was not refreshed (same access token %v, expiry %s → %s)", at1 == at0, exp0, exp1)
	}

	// 4. The refresh token is revoked at the provider: once the access
	// token expires, the call says to sign in again, and a new sign-in starts.
	if err := p.revoke(ctx, rt1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(exp1) + time.Second)
	err = getCheckout()
	if err == nil {
		t.Fatal("a call succeeded after the refresh token was revoked and the access token expired")
	}
	msg := err.Error()
	for _, want := range []string{"sign in again to " + serverURL, "refused to refresh your token", "backstage-mcp connect --login " + serverURL} {
		if !strings.Contains(msg, want) {
			t.Errorf("the IDE's error %q lacks %q", msg, want)
		}
	}
	if !strings.Contains(bridgeLog.String(), "sign-in needed for "+serverURL) {
		t.Errorf("stderr does not say a sign-in is needed:\n%s", bridgeLog.String())
	}
	for _, secret := range []string{at0, rt0, at1, rt1} {
		if strings.Contains(bridgeLog.String(), secret) || strings.Contains(msg, secret) {
			t.Error("a token was printed")
		}
	}

	// 5. The new sign-in's code is in the message: the person completes
	// it and the IDE goes on without a restart.
	_, after, ok := strings.Cut(msg, "enter the code: ")
	if !ok {
		t.Fatalf("the IDE's error has no device code: %s", msg)
	}
	code2 := strings.Fields(after)[0]
	if err := p.approve(ctx, code2, "amelia.hart"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := getCheckout()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after signing in again: %v\nbridge log:\n%s", err, bridgeLog.String())
		}
		time.Sleep(500 * time.Millisecond)
	}

	// Nothing but the token is on the laptop: no Backstage token, policy or audit file.
	_ = filepath.WalkDir(home, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && path != tokenFile {
			t.Errorf("connect left %s on the developer's machine", path)
		}
		return nil
	})
	raw, _ := os.ReadFile(tokenFile)
	if strings.Contains(string(raw), bs.Token) {
		t.Error("the Backstage token is in the developer's token file")
	}
}

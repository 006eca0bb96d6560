// Package oidcop starts a real OpenID provider for end-to-end tests: the
// opserver command in this directory, built from zitadel's OIDC library and
// its example provider (discovery, JWKS, device authorization, auth code +
// PKCE, refresh, client credentials, login and device pages), listening on
// loopback only and issuing JWT access tokens with the audience a test asks
// for.
//
// Start builds the provider into <repo>/.cache/bin/oidcop-server when it is
// not there yet (the OIDCOP_SERVER environment variable may name a prebuilt
// binary), starts it with a set of test users and stops it when the test ends.
// Tests drive its sign-in pages with plain HTTP, like a person with a browser.
package oidcop

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// User is a test user of the provider.
type User struct {
	// ID is the user's ID in the provider: the sub of their tokens.
	ID string `json:"ID"`
	// Username is what is typed on the sign-in page.
	Username string `json:"Username"`
	// Password is what is typed on the sign-in page.
	Password string `json:"Password"`
	// FirstName and LastName make the name claim.
	FirstName string `json:"FirstName"`
	LastName  string `json:"LastName"`
	// Email is the email claim.
	Email string `json:"Email"`
	// EmailVerified is the email_verified claim.
	EmailVerified bool `json:"EmailVerified"`
	// Groups is the groups claim.
	Groups []string `json:"Groups"`
}

// DefaultUsers are the users Start creates: jane and bob, matching Backstage
// User entities of the same names (email <name>@example.com).
func DefaultUsers() []User {
	return []User{
		{ID: "id-jane", Username: "jane", Password: "jane-password-1", FirstName: "Jane", LastName: "Doe",
			Email: "jane@example.com", EmailVerified: true, Groups: []string{"engineering", "team-a"}},
		{ID: "id-bob", Username: "bob", Password: "bob-password-1", FirstName: "Bob", LastName: "Roe",
			Email: "bob@example.com", EmailVerified: true, Groups: []string{"sales"}},
	}
}

// Options configure Start.
type Options struct {
	// Audience is added to the aud claim of every access token, e.g. the
	// MCP server's resource URL. Default "https://mcp.test/mcp".
	Audience string
	// Users replace DefaultUsers when set.
	Users []User
	// AccessTokenLifetime, when set, shortens access tokens (default 5
	// minutes), for expiry and refresh tests.
	AccessTokenLifetime time.Duration
}

// OP is a running provider.
type OP struct {
	// Issuer is the issuer URL (with a trailing slash, as the provider
	// writes it in iss).
	Issuer string
	// Audience is the resource every access token is issued for.
	Audience string
	// CLIClientID is a public client allowed the device and auth code grants.
	CLIClientID string
	// ServiceClientID and ServiceSecret are a confidential client allowed
	// client credentials.
	ServiceClientID string
	ServiceSecret   string
	// Users are the provider's users, by username.
	Users map[string]User

	endpoint      oauth2.Endpoint
	deviceURL     string
	revocationURL string
	httpClient    *http.Client
}

// Start builds (if needed) and starts the provider; it stops with the test.
func Start(tb testing.TB, opts ...Options) *OP {
	tb.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Audience == "" {
		o.Audience = "https://mcp.test/mcp"
	}
	if len(o.Users) == 0 {
		o.Users = DefaultUsers()
	}
	bin := Binary(tb)

	dir := tb.TempDir()
	users := map[string]User{}
	byName := map[string]User{}
	for _, u := range o.Users {
		users[u.ID] = u
		byName[u.Username] = u
	}
	raw, err := json.Marshal(users)
	if err != nil {
		tb.Fatal(err)
	}
	usersFile := filepath.Join(dir, "users.json")
	if err := os.WriteFile(usersFile, raw, 0o600); err != nil {
		tb.Fatal(err)
	}
	secret := randomHex(tb)

	ctx, cancel := context.WithCancel(context.Background())
	args := []string{
		"-addr", "127.0.0.1:0",
		"-audience", o.Audience,
		"-users", usersFile,
		"-cli-client", "cli",
		"-service-client", "svc",
		"-service-secret", secret,
	}
	if o.AccessTokenLifetime > 0 {
		args = append(args, "-access-token-lifetime", o.AccessTokenLifetime.String())
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 5 * time.Second
	logFile, err := os.Create(filepath.Join(dir, "op.log"))
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = logFile
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("oidcop: start %s: %v", bin, err)
	}
	tb.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		logFile.Close()
		if tb.Failed() {
			if b, err := os.ReadFile(logFile.Name()); err == nil {
				tb.Logf("oidcop: provider log:\n%s", tail(string(b), 4000))
			}
		}
	})

	issuerCh := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "ISSUER="); ok {
				issuerCh <- v
			}
		}
	}()
	var issuer string
	select {
	case issuer = <-issuerCh:
	case <-time.After(30 * time.Second):
		tb.Fatal("oidcop: provider did not print its issuer within 30s")
	}

	op := &OP{
		Issuer:          issuer,
		Audience:        o.Audience,
		CLIClientID:     "cli",
		ServiceClientID: "svc",
		ServiceSecret:   secret,
		Users:           byName,
		httpClient:      &http.Client{Timeout: 15 * time.Second},
	}
	if err := op.discover(tb); err != nil {
		tb.Fatal(err)
	}
	return op
}

func (op *OP) discover(tb testing.TB) error {
	tb.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var meta struct {
			Issuer    string `json:"issuer"`
			Auth      string `json:"authorization_endpoint"`
			Token     string `json:"token_endpoint"`
			DeviceURL string `json:"device_authorization_endpoint"`
			Revoke    string `json:"revocation_endpoint"`
		}
		resp, err := op.httpClient.Get(op.Issuer + ".well-known/openid-configuration")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&meta)
			resp.Body.Close()
		}
		if err == nil && meta.Issuer == op.Issuer {
			op.endpoint = oauth2.Endpoint{AuthURL: meta.Auth, TokenURL: meta.Token, DeviceAuthURL: meta.DeviceURL}
			op.deviceURL = meta.DeviceURL
			op.revocationURL = meta.Revoke
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("oidcop: discovery not ready: %w (issuer %q)", err, meta.Issuer)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Binary returns the provider binary, building it on first use.
func Binary(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv("OIDCOP_SERVER"); p != "" {
		return p
	}
	src := sourceDir(tb)
	bin := filepath.Join(src, "..", "..", "..", "..", ".cache", "bin", "oidcop-server")
	bin = filepath.Clean(bin)
	buildMu.Lock()
	defer buildMu.Unlock()
	if built {
		return bin
	}
	// Always build once per test binary, so a changed opserver is picked up;
	// Go's build cache makes this quick after the first time.
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("oidcop: build provider: %v\n%s", err, out)
	}
	built = true
	return bin
}

var (
	buildMu sync.Mutex
	built   bool
)

// sourceDir is the opserver directory next to this file.
func sourceDir(tb testing.TB) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		tb.Fatal("oidcop: cannot locate source")
	}
	return filepath.Join(filepath.Dir(file), "opserver")
}

// OAuthConfig is the CLI client's configuration.
func (op *OP) OAuthConfig(scopes ...string) *oauth2.Config {
	return &oauth2.Config{ClientID: op.CLIClientID, Endpoint: op.endpoint, Scopes: scopes}
}

// ClientCredentialsToken returns an access token of the service client.
func (op *OP) ClientCredentialsToken(tb testing.TB, scopes ...string) *oauth2.Token {
	tb.Helper()
	cc := clientcredentials.Config{ClientID: op.ServiceClientID, ClientSecret: op.ServiceSecret, TokenURL: op.endpoint.TokenURL, Scopes: scopes}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, op.httpClient)
	tok, err := cc.Token(ctx)
	if err != nil {
		tb.Fatalf("oidcop: client credentials: %v", err)
	}
	return tok
}

// RevokeRefreshToken revokes a refresh token of the CLI client at the
// provider's revocation endpoint (RFC 7009), as an administrator ending a
// person's sessions would.
func (op *OP) RevokeRefreshToken(ctx context.Context, refreshToken string) error {
	if op.revocationURL == "" {
		return errors.New("oidcop: the provider has no revocation endpoint")
	}
	form := url.Values{"token": {refreshToken}, "token_type_hint": {"refresh_token"}, "client_id": {op.CLIClientID}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, op.revocationURL, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := op.httpClient.Do(req)
	if err != nil {
		return fmt.Errorf("oidcop: revoke: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("oidcop: revoke: status %d: %s", resp.StatusCode, b)
	}
	return nil
}

// UserToken runs the device flow for the named user, signing in on the
// provider's pages, and returns the token.
func (op *OP) UserToken(tb testing.TB, username string, scopes ...string) *oauth2.Token {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, op.httpClient)
	cfg := op.OAuthConfig(scopes...)
	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		tb.Fatalf("oidcop: device authorization: %v", err)
	}
	if err := op.ApproveDevice(ctx, da.UserCode, username); err != nil {
		tb.Fatal(err)
	}
	tok, err := cfg.DeviceAccessToken(ctx, da)
	if err != nil {
		tb.Fatalf("oidcop: device token: %v", err)
	}
	return tok
}

// ApproveDevice signs in as username on the provider's device pages, enters
// userCode and approves it — what a person does in a browser.
func (op *OP) ApproveDevice(ctx context.Context, userCode, username string) error {
	u, ok := op.Users[username]
	if !ok {
		return fmt.Errorf("oidcop: no user %q", username)
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		return err
	}
	browser := &http.Client{Jar: jar, Timeout: 15 * time.Second}
	base := strings.TrimSuffix(op.Issuer, "/")
	// The page asking for the code, then the sign-in form.
	if _, err := page(ctx, browser, http.MethodGet, base+"/device?user_code="+url.QueryEscape(userCode), nil); err != nil {
		return err
	}
	body, err := page(ctx, browser, http.MethodPost, base+"/device/login", url.Values{
		"user_code": {userCode}, "username": {u.Username}, "password": {u.Password},
	})
	if err != nil {
		return err
	}
	if !strings.Contains(body, "allowed") {
		return fmt.Errorf("oidcop: sign-in rejected: %s", tail(body, 400))
	}
	// The "Allow" button.
	body, err = page(ctx, browser, http.MethodGet, base+"/device/confirm?action=allowed", nil)
	if err != nil {
		return err
	}
	if !strings.Contains(body, "Device authorization allowed") {
		return fmt.Errorf("oidcop: confirmation failed: %s", tail(body, 400))
	}
	return nil
}

func page(ctx context.Context, c *http.Client, method, target string, form url.Values) (string, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return "", err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", fmt.Errorf("oidcop: %s %s: %w", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode >= 400 {
		return "", fmt.Errorf("oidcop: %s %s: status %d: %s", method, target, resp.StatusCode, tail(string(b), 400))
	}
	return string(b), nil
}

func randomHex(tb testing.TB) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

var errNoCode = errors.New("oidcop: no user code in the login prompt")

// UserCodeFrom extracts the user code from the device-flow prompt that
// login prints ("… enter the code: XXXX-XXXX").
func UserCodeFrom(prompt string) (string, error) {
	_, after, ok := strings.Cut(prompt, "enter the code: ")
	if !ok {
		return "", errNoCode
	}
	code, _, _ := strings.Cut(after, "\n")
	code = strings.TrimSpace(code)
	if code == "" {
		return "", errNoCode
	}
	return code, nil
}

// Package oidcprovider starts a second real OpenID provider for end-to-end
// tests: node-oidc-provider from npm, pinned by testdata/oidcprovider's
// lockfile, run by testdata/oidcprovider/server.mjs on loopback with the
// device flow, refresh tokens, revocation and resource indicators (JWT
// access tokens for the MCP server's resource).
//
// Start installs the Node package on first use (`npm ci` under a file lock,
// so concurrent test binaries install once), starts the provider with a
// set of test users and stops it when the test ends. ApproveDevice fills in
// its pages with plain HTTP, like a person with a browser.
package oidcprovider

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/internal/testtools"
)

// User is a test user of the provider.
type User struct {
	ID       string   `json:"id"`
	Username string   `json:"username"`
	Password string   `json:"password"`
	Email    string   `json:"email"`
	Name     string   `json:"name"`
	Groups   []string `json:"groups"`
}

// Options configure Start.
type Options struct {
	// RepoRoot is the repository root (testdata/oidcprovider is under it).
	// Default: found from this file's place in the repository.
	RepoRoot string
	// Audience is the MCP server's resource: the audience of every access
	// token.
	Audience string
	// Scopes are the resource's scopes, granted at sign-in.
	Scopes []string
	// AccessTokenLifetime of access tokens. Default 5 minutes.
	AccessTokenLifetime time.Duration
	// Users of the provider; a user without a Username or Password gets
	// the part of the e-mail before the @ and "<username>-password-1".
	Users []User
}

// Provider is a running provider.
type Provider struct {
	// Issuer is the issuer URL (no trailing slash).
	Issuer string
	// ClientID is a public client allowed the device, auth code and
	// refresh grants.
	ClientID string
	users    map[string]User
	client   *http.Client
}

// Start installs (if needed) and starts the provider; it stops with the test.
func Start(tb testing.TB, o Options) *Provider {
	tb.Helper()
	node := testtools.Need(tb, "node", "nodejs")
	testtools.Need(tb, "npm", "npm")
	if o.RepoRoot == "" {
		_, file, _, ok := runtime.Caller(0)
		if !ok {
			tb.Fatal("oidcprovider: cannot locate the repository")
		}
		o.RepoRoot = filepath.Join(filepath.Dir(file), "..", "..", "..")
	}
	dir := filepath.Join(o.RepoRoot, "testdata", "oidcprovider")
	if err := ensureInstalled(dir); err != nil {
		tb.Fatal(err)
	}
	if o.AccessTokenLifetime <= 0 {
		o.AccessTokenLifetime = 5 * time.Minute
	}
	p := &Provider{ClientID: "cli", users: map[string]User{}, client: &http.Client{Timeout: 15 * time.Second}}
	for i, u := range o.Users {
		if u.Username == "" {
			u.Username, _, _ = strings.Cut(u.Email, "@")
		}
		if u.Password == "" {
			u.Password = u.Username + "-password-1"
		}
		o.Users[i] = u
		p.users[u.Username] = u
	}
	cfg, err := json.Marshal(map[string]any{
		"audience": o.Audience, "scopes": o.Scopes, "accessTokenTTL": int(o.AccessTokenLifetime / time.Second),
		"clientId": p.ClientID, "users": o.Users,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tmp := tb.TempDir()
	cfgFile := filepath.Join(tmp, "config.json")
	if err := os.WriteFile(cfgFile, cfg, 0o600); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "server.mjs"), cfgFile)
	cmd.Dir = dir
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 5 * time.Second
	logFile, err := os.Create(filepath.Join(tmp, "provider.log"))
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = logFile
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("oidcprovider: start: %v", err)
	}
	tb.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		logFile.Close()
		if tb.Failed() {
			if b, err := os.ReadFile(logFile.Name()); err == nil {
				tb.Logf("oidcprovider: provider log:\n%s", tail(string(b), 4000))
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
	select {
	case p.Issuer = <-issuerCh:
	case <-time.After(30 * time.Second):
		tb.Fatal("oidcprovider: the provider did not print its issuer within 30s")
	}
	return p
}

var install struct {
	mu   sync.Mutex
	done bool
}

// ensureInstalled runs `npm ci` in dir unless node_modules was installed
// from the current lockfile, under an exclusive flock on dir/.install.lock.
func ensureInstalled(dir string) error {
	install.mu.Lock()
	defer install.mu.Unlock()
	if install.done {
		return nil
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".install.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("oidcprovider: install lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("oidcprovider: install lock: %w", err)
	}
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()
	if !installed(dir) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("oidcprovider: npm ci in %s: %w\n%s", dir, err, tail(string(out), 2000))
		}
		if !installed(dir) {
			return fmt.Errorf("oidcprovider: npm ci in %s left no oidc-provider", dir)
		}
	}
	install.done = true
	return nil
}

func installed(dir string) bool {
	lockInfo, err := os.Stat(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return false
	}
	hidden, err := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json"))
	if err != nil || hidden.ModTime().Before(lockInfo.ModTime()) {
		return false
	}
	_, err = os.Stat(filepath.Join(dir, "node_modules", "oidc-provider", "package.json"))
	return err == nil
}

// ApproveDevice does what a person does in a browser: opens the device
// page, enters userCode, confirms it, signs in as username and is sent back
// to the success page.
func (p *Provider) ApproveDevice(ctx context.Context, userCode, username string) error {
	u, ok := p.users[username]
	if !ok {
		return fmt.Errorf("oidcprovider: no user %q", username)
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		return err
	}
	browser := &http.Client{Jar: jar, Timeout: 15 * time.Second}
	body, base, err := get(ctx, browser, p.Issuer+"/device")
	if err != nil {
		return err
	}
	steps := []url.Values{
		{"user_code": {userCode}}, // the code page
		{},                        // the confirmation page
		{"username": {u.Username}, "password": {u.Password}}, // sign in
	}
	for i, fill := range steps {
		body, base, err = submit(ctx, browser, base, body, fill)
		if err != nil {
			return fmt.Errorf("oidcprovider: device step %d: %w", i+1, err)
		}
	}
	if !strings.Contains(body, "Sign-in complete") {
		return fmt.Errorf("oidcprovider: device sign-in did not complete: %s", tail(body, 600))
	}
	return nil
}

var (
	formRe   = regexp.MustCompile(`(?s)<form[^>]*\baction="([^"]*)"[^>]*>(.*?)</form>`)
	hiddenRe = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)"`)
)

// submit posts the page's first form with its hidden fields and fill.
func submit(ctx context.Context, c *http.Client, base *url.URL, body string, fill url.Values) (string, *url.URL, error) {
	m := formRe.FindStringSubmatch(body)
	if m == nil {
		return "", nil, fmt.Errorf("no form on the page: %s", tail(body, 600))
	}
	action, err := base.Parse(html.UnescapeString(m[1]))
	if err != nil {
		return "", nil, err
	}
	form := url.Values{}
	for _, h := range hiddenRe.FindAllStringSubmatch(m[2], -1) {
		form.Set(h[1], html.UnescapeString(h[2]))
	}
	for k, v := range fill {
		form[k] = v
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, action.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return "", nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(c, req)
}

func get(ctx context.Context, c *http.Client, u string) (string, *url.URL, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", nil, err
	}
	return do(c, req)
}

func do(c *http.Client, req *http.Request) (string, *url.URL, error) {
	resp, err := c.Do(req)
	if err != nil {
		return "", nil, fmt.Errorf("%s %s: %w", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", nil, err
	}
	if resp.StatusCode >= 400 {
		return "", nil, fmt.Errorf("%s %s: status %d: %s", req.Method, resp.Request.URL, resp.StatusCode, tail(string(b), 600))
	}
	return string(b), resp.Request.URL, nil
}

// RevokeRefreshToken revokes a refresh token at the provider (RFC 7009).
func (p *Provider) RevokeRefreshToken(ctx context.Context, refreshToken string) error {
	form := url.Values{"token": {refreshToken}, "token_type_hint": {"refresh_token"}, "client_id": {p.ClientID}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.Issuer+"/token/revocation", strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("oidcprovider: revoke: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("oidcprovider: revoke: status %d: %s", resp.StatusCode, b)
	}
	return nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

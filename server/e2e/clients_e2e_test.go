//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/e2e/oidcop"
	"github.com/backstage-mcp/backstage-mcp/server/internal/servertest"
)

// The MCP clients nobody here wrote live in testdata/mcpclients: the
// official TypeScript SDK client (driven by client.mjs), the inspector CLI
// and the conformance suite, pinned by its package-lock.json.

// e2eUser is the OP user of the HTTP tests: the demo catalog's Amelia Hart,
// found in Backstage by the e-mail claim (emailMatchingUserEntityProfileEmail).
var e2eUser = oidcop.User{
	ID: "id-amelia", Username: "amelia", Password: "amelia-password-1",
	FirstName: "Amelia", LastName: "Hart", Email: "amelia.hart@acme-retail.example", EmailVerified: true,
	Groups: []string{"engineering"},
}

// tokenScope is the OAuth scope the tests' tokens carry; the test policy
// maps it to every tool scope.
const tokenScope = "catalog.read"

// clientsPolicy binds one role to signed-in users (through the scope
// table) and one to the insecure local user; both read the demo namespaces.
const clientsPolicy = `version: 1
scopes:
  "` + tokenScope + `": ["catalog:read", "catalog:api-definitions", "catalog:read:users"]
roles:
  - name: e2e-signed-in
    bind: { authenticated: true }
    tools: ["catalog:read", "catalog:api-definitions", "catalog:read:users"]
    entities:
      allow:
        - IN_NAMESPACE: { namespaces: [default, platform] }
  - name: e2e-local-user
    bind: { anonymous: true }
    tools: ["catalog:read", "catalog:api-definitions", "catalog:read:users"]
    entities:
      allow:
        - IN_NAMESPACE: { namespaces: [default, platform] }
`

// clientConfig says what goes in a config file written by writeClientConfig.
type clientConfig struct {
	// Backstage points the server at the real Backstage (token from
	// E2E_BACKSTAGE_TOKEN); otherwise the config has no backstage section
	// (for --demo).
	Backstage bool
	// PublicURL is server.publicURL (and so the token audience).
	PublicURL string
	// Issuer, when set, turns bearer-token verification on.
	Issuer string
	// Policy puts the test policy in the config without Backstage (with
	// --demo): the demo catalog under clientsPolicy.
	Policy bool
	// UnlimitedIngress lifts the per-user message budget
	// (server.ingressRate, ingressKiBRate), for tests that reconnect or
	// call in a tight loop as one user.
	UnlimitedIngress bool
	// SessionsPerUser raises server.sessions.maxPerUser: a conformance
	// suite opens a session per scenario, all as the one demo user, and
	// never ends them.
	SessionsPerUser int
	// Extra is raw YAML appended to the file (top-level keys the fields
	// above do not write, e.g. rateLimits).
	Extra string
}

// writeClientConfig writes a config file and the test policy into a
// temporary directory; the audit trail goes there too.
func writeClientConfig(t *testing.T, cc clientConfig) string {
	t.Helper()
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(pol, []byte(clientsPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if cc.PublicURL != "" || cc.SessionsPerUser > 0 || cc.UnlimitedIngress {
		b.WriteString("server:\n")
	}
	if cc.UnlimitedIngress {
		b.WriteString("  ingressRate: {unlimited: true}\n  ingressKiBRate: {unlimited: true}\n")
	}
	if cc.PublicURL != "" {
		fmt.Fprintf(&b, "  publicURL: %s\n", cc.PublicURL)
	}
	if cc.SessionsPerUser > 0 {
		fmt.Fprintf(&b, "  sessions:\n    maxPerUser: %d\n", cc.SessionsPerUser)
	}
	if cc.Backstage {
		fmt.Fprintf(&b, "backstage:\n  baseUrl: %s\n  token: ${E2E_BACKSTAGE_TOKEN}\n", bs.BaseURL)
	}
	if cc.Backstage || cc.Policy {
		fmt.Fprintf(&b, "policy:\n  file: %s\n", pol)
	}
	if cc.Issuer != "" {
		fmt.Fprintf(&b, "auth:\n  issuers:\n    - url: %s\n  scopesSupported: [%s]\n", cc.Issuer, tokenScope)
	}
	fmt.Fprintf(&b, "audit:\n  path: %s\nlog:\n  level: debug\n  format: json\n", filepath.Join(dir, "audit.log"))
	b.WriteString(cc.Extra)
	p := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// clientsDir is the Node project of the real clients.
func clientsDir() string { return filepath.Join(repoRoot, "testdata", "mcpclients") }

// clientsInstall runs npm ci at most once per test binary.
var clientsInstall struct {
	once sync.Once
	err  error
}

// ensureClients installs testdata/mcpclients/node_modules from the
// lockfile unless it is already installed from the current lockfile, and
// returns the directory.
func ensureClients(t *testing.T) string {
	t.Helper()
	dir := clientsDir()
	clientsInstall.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		clientsInstall.err = installClients(ctx, dir, os.Stderr)
	})
	if clientsInstall.err != nil {
		t.Fatal(clientsInstall.err)
	}
	return dir
}

// installClients installs testdata/mcpclients.
func installClients(ctx context.Context, dir string, log io.Writer) error {
	return npmCI(ctx, dir, log, clientsInstalled)
}

// npmCI is `npm ci` in dir under an exclusive flock on dir/.install.lock,
// so that concurrent test binaries install once, unless installed says
// it is done already.
func npmCI(ctx context.Context, dir string, log io.Writer, installed func(string) bool) error {
	lock, err := os.OpenFile(filepath.Join(dir, ".install.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("e2e: install lock: %w", err)
	}
	defer lock.Close()
	for {
		err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			return fmt.Errorf("e2e: install lock: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("e2e: waiting for the install lock: %w", ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()
	if installed(dir) {
		return nil
	}
	fmt.Fprintf(log, "e2e: running npm ci in %s\n", dir)
	start := time.Now()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = log, log
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("e2e: npm ci in %s: %w", dir, err)
	}
	fmt.Fprintf(log, "e2e: npm ci in %s took %s\n", dir, time.Since(start).Round(100*time.Millisecond))
	if !installed(dir) {
		return fmt.Errorf("e2e: npm ci in %s finished but node_modules is incomplete", dir)
	}
	return nil
}

// clientsInstalled reports whether node_modules was installed from the
// current package-lock.json (npm's hidden lockfile is at least as new) and
// holds the packages the tests run.
func clientsInstalled(dir string) bool {
	lockInfo, err := os.Stat(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return false
	}
	hidden, err := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json"))
	if err != nil || hidden.ModTime().Before(lockInfo.ModTime()) {
		return false
	}
	for _, p := range []string{"@modelcontextprotocol/sdk", "@modelcontextprotocol/inspector-cli", "@modelcontextprotocol/conformance", "mcp-remote"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", p, "package.json")); err != nil {
			return false
		}
	}
	return true
}

// nodeRun is the outcome of one Node process.
type nodeRun struct {
	Stdout []byte
	Stderr string
	Code   int
}

// runNode runs `node args...` in dir with extra environment variables and
// a deadline; a process that cannot start fails the test.
func runNode(t *testing.T, dir string, env []string, timeout time.Duration, args ...string) nodeRun {
	t.Helper()
	return runNodeBin(t, "node", dir, env, timeout, args...)
}

// runNodeBin is runNode with the given node binary.
func runNodeBin(t *testing.T, node, dir string, env []string, timeout time.Duration, args ...string) nodeRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	var ee *exec.ExitError
	code := 0
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("node %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	if ctx.Err() != nil {
		t.Fatalf("node %s: timed out after %s\n%s", strings.Join(args, " "), timeout, tailString(stderr.String(), 4000))
	}
	return nodeRun{Stdout: stdout.Bytes(), Stderr: stderr.String(), Code: code}
}

// sdkReport is what client.mjs prints.
type sdkReport struct {
	Mode   string `json:"mode"`
	Client struct {
		Name       string `json:"name"`
		SDKVersion string `json:"sdkVersion"`
	} `json:"client"`
	Failures        []string `json:"failures"`
	ProtocolVersion string   `json:"protocolVersion"`
	ServerInfo      struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	} `json:"serverInfo"`
	Tools []struct {
		Name            string `json:"name"`
		ReadOnlyHint    bool   `json:"readOnlyHint"`
		HasInputSchema  bool   `json:"hasInputSchema"`
		HasOutputSchema bool   `json:"hasOutputSchema"`
	} `json:"tools"`
	Calls []struct {
		Tool                 string          `json:"tool"`
		Args                 json.RawMessage `json:"args"`
		Problems             []string        `json:"problems"`
		IsError              bool            `json:"isError"`
		HasStructuredContent bool            `json:"hasStructuredContent"`
		StructuredBytes      int             `json:"structuredBytes"`
		StructuredContent    json.RawMessage `json:"structuredContent"`
	} `json:"calls"`

	// challenge mode
	Status                    int    `json:"status"`
	WWWAuthenticate           string `json:"wwwAuthenticate"`
	ResourceMetadataURL       string `json:"resourceMetadataUrl"`
	ProtectedResourceMetadata struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
		ScopesSupported      []string `json:"scopes_supported"`
	} `json:"protectedResourceMetadata"`
	SDKError        string `json:"sdkError"`
	SDKUnauthorized bool   `json:"sdkUnauthorized"`
	Authorization   struct {
		Endpoint            string `json:"endpoint"`
		ClientID            string `json:"clientId"`
		Resource            string `json:"resource"`
		CodeChallengeMethod string `json:"codeChallengeMethod"`
		ResponseType        string `json:"responseType"`
		Scope               string `json:"scope"`
	} `json:"authorization"`
}

// runSDKClient runs client.mjs and decodes its report.
func runSDKClient(t *testing.T, dir string, env []string, args ...string) sdkReport {
	t.Helper()
	start := time.Now()
	run := runNode(t, dir, env, 3*time.Minute, append([]string{"client.mjs"}, args...)...)
	var r sdkReport
	if err := json.Unmarshal(run.Stdout, &r); err != nil {
		t.Fatalf("client.mjs %s exited %d without a report (%v):\n%s", args[0], run.Code, err, tailString(run.Stderr, 6000))
	}
	t.Logf("client.mjs %s: exit %d in %s (SDK %s)", args[0], run.Code, time.Since(start).Round(time.Millisecond), r.Client.SDKVersion)
	for _, f := range r.Failures {
		t.Errorf("SDK client (%s): %s", r.Mode, f)
	}
	if (run.Code == 0) != (len(r.Failures) == 0) {
		t.Errorf("client.mjs exit code %d disagrees with its %d failures", run.Code, len(r.Failures))
	}
	if t.Failed() {
		t.Logf("client.mjs stderr:\n%s", tailString(run.Stderr, 6000))
	}
	return r
}

// identityView is the part of whoami the tests check.
type identityView struct {
	User          string   `json:"user"`
	Subject       string   `json:"subject"`
	Email         string   `json:"email"`
	OwnershipRefs []string `json:"ownershipRefs"`
	Agent         string   `json:"agent"`
	AgentName     string   `json:"agentName"`
	Scopes        []string `json:"scopes"`
	Tools         []string `json:"tools"`
	Roles         []string `json:"roles"`
	Mode          string   `json:"mode"`
}

// checkSDKReport asserts what every transport must give a real client:
// the protocol version it asked for, every read-only tool, a
// well-formed structured answer from every one, and whoami naming who the
// server acts for.
func checkSDKReport(t *testing.T, r sdkReport, want identityView) {
	t.Helper()
	if r.ProtocolVersion == "" {
		t.Error("no protocol version negotiated")
	}
	if r.ServerInfo.Name != "backstage-mcp" {
		t.Errorf("serverInfo.name = %q", r.ServerInfo.Name)
	}
	var names []string
	for _, tl := range r.Tools {
		names = append(names, tl.Name)
		if !tl.ReadOnlyHint || !tl.HasInputSchema {
			t.Errorf("tool %s: readOnlyHint %v, object input schema %v", tl.Name, tl.ReadOnlyHint, tl.HasInputSchema)
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, servertest.ToolNames) {
		t.Errorf("tools = %v, want %v", names, servertest.ToolNames)
	}
	called := map[string]bool{}
	for _, c := range r.Calls {
		if len(c.Problems) == 0 && c.HasStructuredContent && !c.IsError && c.StructuredBytes > 2 {
			called[c.Tool] = true
		}
	}
	for _, n := range servertest.ToolNames {
		if !called[n] {
			t.Errorf("tool %s: no successful call with structured content", n)
		}
	}
	for _, c := range r.Calls {
		if c.Tool != "whoami" {
			continue
		}
		var id identityView
		if err := json.Unmarshal(c.StructuredContent, &id); err != nil {
			t.Fatalf("whoami: %v", err)
		}
		wantAgentName := r.Client.Name + " " + r.Client.SDKVersion
		if id.User != want.User || id.Mode != want.Mode || id.Agent != want.Agent || id.AgentName != wantAgentName {
			t.Errorf("whoami = user %q mode %q agent %q (%q), want user %q mode %q agent %q (%q)",
				id.User, id.Mode, id.Agent, id.AgentName, want.User, want.Mode, want.Agent, wantAgentName)
		}
		if !slices.Equal(id.Roles, want.Roles) {
			t.Errorf("whoami roles = %v, want %v", id.Roles, want.Roles)
		}
		if !slices.Contains(id.OwnershipRefs, "group:default/engineering") {
			t.Errorf("whoami ownership %v lacks the user's Backstage group", id.OwnershipRefs)
		}
		if want.Email != "" && id.Email != want.Email {
			t.Errorf("whoami email = %q, want %q", id.Email, want.Email)
		}
		slices.Sort(id.Scopes)
		if len(want.Scopes) > 0 && !slices.Equal(id.Scopes, want.Scopes) {
			t.Errorf("whoami scopes = %v, want %v", id.Scopes, want.Scopes)
		}
		slices.Sort(id.Tools)
		if !slices.Equal(id.Tools, servertest.ToolNames) {
			t.Errorf("whoami tools = %v, want all of %v", id.Tools, servertest.ToolNames)
		}
	}
	var sizes []string
	for _, c := range r.Calls {
		sizes = append(sizes, fmt.Sprintf("%s=%dB", c.Tool, c.StructuredBytes))
	}
	t.Logf("%s: protocol %s, %d tools, %d calls: %s", r.Mode, r.ProtocolVersion, len(r.Tools), len(r.Calls), strings.Join(sizes, " "))
}

// inspector runs the inspector CLI (its own entry point, as
// `mcp-inspector-cli --cli` does) and decodes the JSON it prints.
//
// The working directory is node_modules: inspector-cli 1.0.3 checks
// "../package.json" relative to the working directory but imports it
// relative to its own file, so it only finds its package.json (for its
// clientInfo) when the working directory has a package.json one level up.
func inspector(t *testing.T, dir string, env []string, args ...string) map[string]any {
	t.Helper()
	entry := filepath.Join(dir, "node_modules", "@modelcontextprotocol", "inspector-cli", "build", "index.js")
	run := runNode(t, filepath.Join(dir, "node_modules"), env, 2*time.Minute, append([]string{entry}, args...)...)
	if run.Code != 0 {
		t.Fatalf("inspector %s: exit %d\n%s", redactArgs(args), run.Code, tailString(run.Stderr, 4000))
	}
	var out map[string]any
	if err := json.Unmarshal(run.Stdout, &out); err != nil {
		t.Fatalf("inspector %s: output is not JSON (%v): %s", redactArgs(args), err, tailString(string(run.Stdout), 2000))
	}
	return out
}

// redactArgs hides a bearer token in logged inspector arguments.
func redactArgs(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.HasPrefix(a, "Authorization:") {
			a = "Authorization: Bearer [hidden]"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

// checkInspector lists the tools and calls catalog_get_entity through the
// inspector CLI. target is the stdio command line or the URL, extra the
// transport flags.
func checkInspector(t *testing.T, dir string, env, target, extra []string) {
	t.Helper()
	args := append(append(slices.Clone(target), extra...), "--method", "tools/list")
	list := inspector(t, dir, env, args...)
	tools, _ := list["tools"].([]any)
	var names []string
	for _, tl := range tools {
		m, _ := tl.(map[string]any)
		n, _ := m["name"].(string)
		names = append(names, n)
	}
	slices.Sort(names)
	if !slices.Equal(names, servertest.ToolNames) {
		t.Errorf("inspector tools/list = %v, want %v", names, servertest.ToolNames)
	}
	args = append(append(slices.Clone(target), extra...), "--method", "tools/call",
		"--tool-name", "catalog_get_entity", "--tool-arg", "ref=component:default/checkout-service")
	res := inspector(t, dir, env, args...)
	if isErr, _ := res["isError"].(bool); isErr {
		t.Fatalf("inspector tools/call: tool error %v", res["content"])
	}
	sc, _ := res["structuredContent"].(map[string]any)
	if sc["ref"] != "component:default/checkout-service" || sc["owner"] != "group:default/team-checkout" {
		t.Errorf("inspector tools/call structuredContent = %v", sc)
	}
	content, _ := res["content"].([]any)
	if len(content) == 0 {
		t.Error("inspector tools/call: no content blocks")
	}
}

// serverProc is a backstage-mcp process serving Streamable HTTP.
type serverProc struct {
	// Base is http://ADDR; the MCP endpoint is Base + "/mcp".
	Base string
	// Admin is the operators' listener (/metrics, /readyz details).
	Admin string
	// Pid is the server process.
	Pid int
	// Log is the file that receives the server's stderr.
	Log string
}

// freeAddr returns a loopback address with a port free at the time of the call.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// startServer runs the binary with `serve --http addr` plus args and
// waits until /healthz answers; it is interrupted when the test ends and
// its log is shown if the test failed.
func startServer(t *testing.T, addr string, env []string, args ...string) *serverProc {
	t.Helper()
	return startServerBinary(t, binary, addr, env, args...)
}

// goBuild builds the package at pkg (relative to the repository root)
// without the race detector and returns the program's path.
func goBuild(t *testing.T, pkg string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = repoRoot
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// startServerBinary is startServer with another build of the server
// (plainBuild: without the race detector).
func startServerBinary(t *testing.T, binary, addr string, env []string, args ...string) *serverProc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "server.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	admin := freeAddr(t)
	cmd := exec.Command(binary, append([]string{"serve", "--http", addr, "--admin-http", admin}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		_ = logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("backstage-mcp log:\n%s", tailString(string(b), 6000))
		}
	})
	sp := &serverProc{Base: "http://" + addr, Admin: "http://" + admin, Log: logPath, Pid: cmd.Process.Pid}
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-exited:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("backstage-mcp exited before serving (%v):\n%s", err, tailString(string(b), 4000))
		default:
		}
		resp, err := hc.Get(sp.Base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return sp
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("backstage-mcp at %s not healthy after 60s: %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tailString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// TestClientsOverStdio drives the built binary over stdio, against the real
// Backstage, with the SDK client and the inspector CLI.
func TestClientsOverStdio(t *testing.T) {
	dir := ensureClients(t)
	cfg := writeClientConfig(t, clientConfig{Backstage: true})
	env := []string{"E2E_BACKSTAGE_TOKEN=" + bs.Token}
	serverCmd := []string{binary, "serve", "--stdio", "--config", cfg, "--insecure-local-user", localUser}

	t.Run("sdk", func(t *testing.T) {
		r := runSDKClient(t, dir, env, append([]string{"stdio"}, serverCmd...)...)
		checkSDKReport(t, r, identityView{
			User: localUser, Mode: "insecure-local-user", Agent: "insecure-local-user",
			Roles: []string{"e2e-local-user"},
		})
	})
	t.Run("inspector", func(t *testing.T) {
		checkInspector(t, dir, env, serverCmd, nil)
	})
}

// TestClientsOverStreamableHTTP drives the built binary over Streamable
// HTTP, against the real Backstage, with tokens from the real OpenID
// provider: the SDK client and the inspector CLI with a bearer token, and
// a token-less SDK client that follows the 401 challenge.
func TestClientsOverStreamableHTTP(t *testing.T) {
	dir := ensureClients(t)
	addr := freeAddr(t)
	base := "http://" + addr
	op := oidcop.Start(t, oidcop.Options{Audience: base + "/mcp", Users: []oidcop.User{e2eUser}})
	cfg := writeClientConfig(t, clientConfig{Backstage: true, PublicURL: base, Issuer: op.Issuer})
	srv := startServer(t, addr, []string{"E2E_BACKSTAGE_TOKEN=" + bs.Token}, "--config", cfg)
	mcpURL := srv.Base + "/mcp"
	tok := op.UserToken(t, e2eUser.Username, "openid", tokenScope)

	t.Run("sdk", func(t *testing.T) {
		r := runSDKClient(t, dir, []string{"MCP_BEARER_TOKEN=" + tok.AccessToken}, "http", mcpURL)
		checkSDKReport(t, r, identityView{
			User: "user:default/amelia.hart", Mode: "oidc", Agent: op.CLIClientID,
			Email: e2eUser.Email, Scopes: []string{tokenScope, "openid"}, Roles: []string{"e2e-signed-in"},
		})
	})
	t.Run("inspector", func(t *testing.T) {
		checkInspector(t, dir, nil, []string{mcpURL}, []string{"--transport", "http", "--header", "Authorization: Bearer " + tok.AccessToken})
	})
	t.Run("token-less client follows the challenge", func(t *testing.T) {
		r := runSDKClient(t, dir, []string{"MCP_OAUTH_CLIENT_ID=" + op.CLIClientID}, "challenge", mcpURL)
		checkChallenge(t, r, op, srv.Base)
	})
}

// checkChallenge asserts the 401 challenge, the Protected Resource
// Metadata and the SDK's authorization redirect towards the real OP.
func checkChallenge(t *testing.T, r sdkReport, op *oidcop.OP, base string) {
	t.Helper()
	if r.Status != http.StatusUnauthorized || !strings.HasPrefix(r.WWWAuthenticate, "Bearer ") {
		t.Errorf("token-less initialize: %d, WWW-Authenticate %q; want 401 Bearer", r.Status, r.WWWAuthenticate)
	}
	if want := base + "/.well-known/oauth-protected-resource/mcp"; r.ResourceMetadataURL != want {
		t.Errorf("resource_metadata = %q, want %q", r.ResourceMetadataURL, want)
	}
	prm := r.ProtectedResourceMetadata
	if prm.Resource != base+"/mcp" {
		t.Errorf("PRM resource = %q, want %q", prm.Resource, base+"/mcp")
	}
	if !slices.Contains(prm.AuthorizationServers, op.Issuer) {
		t.Errorf("PRM authorization_servers = %v, want the OP %s", prm.AuthorizationServers, op.Issuer)
	}
	if !slices.Contains(prm.ScopesSupported, tokenScope) {
		t.Errorf("PRM scopes_supported = %v, want %s", prm.ScopesSupported, tokenScope)
	}
	if !r.SDKUnauthorized {
		t.Errorf("the token-less SDK client should stop with UnauthorizedError, got %q", r.SDKError)
	}
	// The SDK found the OP's authorization endpoint on its own, from the PRM.
	var meta struct {
		AuthorizationEndpoint string `json:"authorization_endpoint"`
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(strings.TrimSuffix(op.Issuer, "/") + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&meta); err != nil {
		t.Fatal(err)
	}
	a := r.Authorization
	if a.Endpoint != meta.AuthorizationEndpoint || a.ClientID != op.CLIClientID || a.Resource != base+"/mcp" ||
		a.CodeChallengeMethod != "S256" || a.ResponseType != "code" {
		t.Errorf("SDK authorization redirect = %+v; want endpoint %s, client %s, resource %s, PKCE S256, response_type code",
			a, meta.AuthorizationEndpoint, op.CLIClientID, base+"/mcp")
	}
	t.Logf("401 → %s → authorization server %v → SDK redirect to %s (scope %q)", r.ResourceMetadataURL, prm.AuthorizationServers, a.Endpoint, a.Scope)
}

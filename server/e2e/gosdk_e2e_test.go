//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/e2e/oidcop"
	"github.com/backstage-mcp/backstage-mcp/server/internal/servertest"
)

// goSDKReport is what server/e2e/gosdkclient prints.
type goSDKReport struct {
	ProtocolVersion string            `json:"protocolVersion"`
	Tools           []string          `json:"tools"`
	OutputSchemas   int               `json:"outputSchemas"`
	EntityRef       string            `json:"entityRef"`
	Resources       int               `json:"resources"`
	ResourceNext    bool              `json:"resourceNext"`
	Templates       []string          `json:"templates"`
	ReadMIME        string            `json:"readMime"`
	ReadHasKind     bool              `json:"readHasKind"`
	Completions     []string          `json:"completions"`
	Prompts         []string          `json:"prompts"`
	PromptText      string            `json:"promptText"`
	Ping            bool              `json:"ping"`
	CancelledErr    string            `json:"cancelledErr"`
	AfterCancel     string            `json:"afterCancel"`
	Errors          map[string]string `json:"errors"`
}

// buildGoSDKClient builds the Go SDK driver, a module of its own (the Go
// toolchain fetches github.com/modelcontextprotocol/go-sdk v1.8.0 on the
// first build).
func buildGoSDKClient(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "gosdkclient")
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Dir = filepath.Join(repoRoot, "server", "e2e", "gosdkclient")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the Go SDK client: %v\n%s", err, b)
	}
	return out
}

func runGoSDKClient(t *testing.T, bin string, env []string, args ...string) goSDKReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("gosdkclient %s: %v\n%s", redactArgs(args), err, tailString(stderr.String(), 4000))
	}
	var r goSDKReport
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("gosdkclient report: %v\n%s", err, stdout.String())
	}
	return r
}

// checkGoSDKReport: every step worked, including ping and a call after a
// cancelled one, on the protocol revision the SDK negotiated.
func checkGoSDKReport(t *testing.T, r goSDKReport, wantUser string) {
	t.Helper()
	for step, err := range r.Errors {
		t.Errorf("%s: %s", step, err)
	}
	if r.ProtocolVersion == "" {
		t.Error("no protocol version negotiated")
	}
	if n := len(servertest.ToolNames); len(r.Tools) != n || r.OutputSchemas != n {
		t.Errorf("tools %v with %d output schemas, want %d and %d", r.Tools, r.OutputSchemas, n, n)
	}
	if r.EntityRef != "component:default/checkout-service" {
		t.Errorf("tools/call ref = %q", r.EntityRef)
	}
	if r.Resources == 0 || len(r.Templates) != 2 || r.ReadMIME != "application/json" || !r.ReadHasKind {
		t.Errorf("resources: %d listed, templates %v, read %q (kind %v)", r.Resources, r.Templates, r.ReadMIME, r.ReadHasKind)
	}
	if !slices.Contains(r.Completions, "component:default/checkout-service") {
		t.Errorf("completions = %v", r.Completions)
	}
	if len(r.Prompts) != 4 || !strings.Contains(r.PromptText, "catalog_find_owner") {
		t.Errorf("prompts %v, text %q", r.Prompts, r.PromptText)
	}
	if !r.Ping {
		t.Error("ping failed")
	}
	if !strings.Contains(r.AfterCancel, wantUser) {
		t.Errorf("the call after a cancelled one: %q, want it to name %s", r.AfterCancel, wantUser)
	}
	t.Logf("Go SDK v1.8.0 on %s: %d tools, %d resources on the first page, completions %v, prompts %v, ping ok, cancelled call (%s) then whoami ok",
		r.ProtocolVersion, len(r.Tools), r.Resources, r.Completions, r.Prompts, r.CancelledErr)
}

// TestGoSDKClient drives the binary with the official MCP Go SDK client
// (v1.8.0) over stdio and over Streamable HTTP with a token from the real
// OpenID provider, on the demo catalog.
func TestGoSDKClient(t *testing.T) {
	bin := buildGoSDKClient(t)
	t.Run("stdio", func(t *testing.T) {
		r := runGoSDKClient(t, bin, nil, "stdio", binary, "serve", "--stdio", "--demo", "--insecure-local-user", localUser)
		checkGoSDKReport(t, r, localUser)
	})
	t.Run("streamable http with a token", func(t *testing.T) {
		addr := freeAddr(t)
		base := "http://" + addr
		op := oidcop.Start(t, oidcop.Options{Audience: base + "/mcp", Users: []oidcop.User{e2eUser}})
		cfg := writeClientConfig(t, clientConfig{PublicURL: base, Issuer: op.Issuer, Policy: true})
		srv := startServer(t, addr, nil, "--demo", "--config", cfg)
		tok := op.UserToken(t, e2eUser.Username, "openid", tokenScope)
		r := runGoSDKClient(t, bin, []string{"MCP_BEARER_TOKEN=" + tok.AccessToken}, "http", srv.Base+"/mcp")
		checkGoSDKReport(t, r, "user:default/amelia.hart")
	})
	// One full sign-in by a client library's own OAuth support: the SDK
	// gets the 401, reads the protected resource metadata and the
	// provider's metadata, runs the authorization code flow with PKCE
	// and the resource indicator for the pre-registered public client,
	// and retries with the token. The driver only signs in on the
	// provider's login page, as the person at the browser would.
	t.Run("streamable http, the SDK's own OAuth flow", func(t *testing.T) {
		addr := freeAddr(t)
		base := "http://" + addr
		op := oidcop.Start(t, oidcop.Options{Audience: base + "/mcp", Users: []oidcop.User{e2eUser}})
		cfg := writeClientConfig(t, clientConfig{PublicURL: base, Issuer: op.Issuer, Policy: true})
		srv := startServer(t, addr, nil, "--demo", "--config", cfg)
		r := runGoSDKClient(t, bin, []string{"MCP_OAUTH_CLIENT_ID=" + op.CLIClientID,
			"MCP_OAUTH_USERNAME=" + e2eUser.Username, "MCP_OAUTH_PASSWORD=" + e2eUser.Password}, "oauth", srv.Base+"/mcp")
		checkGoSDKReport(t, r, "user:default/amelia.hart")
	})
}

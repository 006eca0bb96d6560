package server

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/client"

	"github.com/backstage-mcp/backstage-mcp/redact"
	"github.com/backstage-mcp/backstage-mcp/server/audit"
	"github.com/backstage-mcp/backstage-mcp/server/demo"
	"github.com/backstage-mcp/backstage-mcp/server/identity"
	"github.com/backstage-mcp/backstage-mcp/server/internal/servertest"
)

// TestExpiredLoginSaysSignInAgain: when the stored login of a stdio server
// expires and cannot be refreshed, the agent used to be told "tool
// 'catalog_find_owner' not found", with nothing on stderr. Now every call
// answers a tool error that says to sign in again, the log says why, and
// the record is a denial for want of an identity.
func TestExpiredLoginSaysSignInAgain(t *testing.T) {
	cfg, _ := ParseConfig(nil, "", func(string) string { return "" })
	var trail bytes.Buffer
	alog, err := audit.OpenWriter(&trail, audit.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	cat, err := NewDemoCatalog()
	if err != nil {
		t.Fatal(err)
	}
	r, _ := redact.New()
	pols, err := NewStaticPolicyStore(demo.Policy(), "demo")
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	expired := errors.New(`server: refresh stored login: oauth2: "invalid_grant" (run backstage-mcp login again)`)
	s, err := New(cfg, Options{Catalog: cat, Redactor: r, Policy: pols, Audit: alog,
		Logger:         slog.New(slog.NewTextHandler(&logs, nil)),
		LocalPrincipal: func(context.Context) (*identity.Principal, error) { return nil, expired }})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := client.NewInProcessClient(s.MCP())
	servertest.Connect(t, c)
	res := servertest.Call(t, c, "catalog_find_owner", `{"ref":"component:default/checkout-service"}`)
	if !res.IsError || !strings.Contains(servertest.Text(res), "backstage-mcp login") {
		t.Fatalf("call with an expired login answered %+v, want a tool error naming backstage-mcp login", res)
	}
	if strings.Contains(servertest.Text(res), "not found") {
		t.Errorf("the answer still reads like a missing tool: %s", servertest.Text(res))
	}
	if !strings.Contains(logs.String(), "invalid_grant") || !strings.Contains(logs.String(), "backstage-mcp login") {
		t.Errorf("the log does not say why and what to do:\n%s", logs.String())
	}
	if !strings.Contains(trail.String(), `"no verified identity"`) {
		t.Errorf("no denial record for the call:\n%s", trail.String())
	}
}

//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/server"
	"github.com/backstage-mcp/backstage-mcp/server/e2e/harness"
	"github.com/backstage-mcp/backstage-mcp/server/internal/servertest"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"github.com/mark3labs/mcp-go/client"
)

const localUser = "user:default/amelia.hart"

// writeConfig writes a config file pointing at the real Backstage; the
// token comes from the environment, as an operator would do it.
func writeConfig(t *testing.T, policyFile string) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "config.yaml")
	cfg := "backstage:\n  baseUrl: " + bs.BaseURL + "\n  token: ${E2E_BACKSTAGE_TOKEN}\n" +
		"policy:\n  file: " + filepath.Join(repoRoot, policyFile) + "\n" +
		"audit:\n  path: " + filepath.Join(dir, "audit.log") + "\n" +
		"log:\n  level: debug\n"
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// newServer builds an in-test server against the real Backstage, acting
// for the insecure local user under the development policy.
func newServer(t *testing.T) (*server.Server, *catalog.Client) {
	t.Helper()
	path := writeConfig(t, "testdata/policies/anonymous-read.yaml")
	cfg, err := server.LoadConfig(path, func(k string) string {
		if k == "E2E_BACKSTAGE_TOKEN" {
			return bs.Token
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	s, closeFn, err := server.Build(context.Background(), cfg, server.BuildOptions{LocalUser: localUser, Version: "e2e"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeFn)
	c, err := catalog.New(catalog.Config{BaseURL: bs.BaseURL, Token: catalog.StaticToken(bs.Token)})
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

// TestToolsOverStreamableHTTP runs the tool contract against the real
// Backstage through the HTTP transport.
func TestToolsOverStreamableHTTP(t *testing.T) {
	s, _ := newServer(t)
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	servertest.CheckTools(t, servertest.ConnectHTTP(t, hs.URL+"/mcp", ""))
}

// TestToolsOverStdio runs the tool contract against the real Backstage
// through the built binary speaking stdio, configured by file and env.
func TestToolsOverStdio(t *testing.T) {
	env := append(os.Environ(), "E2E_BACKSTAGE_TOKEN="+bs.Token)
	c, err := client.NewStdioMCPClient(binary, env, "serve", "--stdio", "--config", writeConfig(t, "testdata/policies/anonymous-read.yaml"), "--insecure-local-user", localUser)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	servertest.Connect(t, c)
	servertest.CheckTools(t, c)
}

// TestSeededSecretsNeverLeave calls every tool on the entities that carry
// seeded secrets and checks that no secret value appears in any answer,
// while Backstage itself serves them verbatim.
func TestSeededSecretsNeverLeave(t *testing.T) {
	secrets, err := harness.LoadSecrets(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	s, c := newServer(t)
	mc, err := client.NewInProcessClient(s.MCP())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mc.Close() })
	servertest.Connect(t, mc)

	entities := map[string]bool{}
	for _, sec := range secrets {
		entities[sec.Entity] = true
	}
	var outputs []string
	call := func(tool, args string) {
		res := servertest.Call(t, mc, tool, args)
		b, _ := json.Marshal(res)
		outputs = append(outputs, string(b))
	}
	for ref := range entities {
		r, err := catalog.ParseRef(ref, "")
		if err != nil {
			t.Fatalf("fixture ref %q: %v", ref, err)
		}
		raw, err := c.GetByName(context.Background(), r)
		if err != nil {
			t.Fatalf("Backstage does not serve %s: %v", ref, err)
		}
		leaked := 0
		for _, sec := range secrets {
			if sec.Entity == ref && strings.Contains(string(raw), jsonEscaped(sec.Value)) {
				leaked++
			}
		}
		if leaked == 0 {
			t.Errorf("Backstage should serve the seeded secrets of %s verbatim (the test would prove nothing)", ref)
		}
		q, _ := json.Marshal(r.String())
		call("catalog_get_entity", `{"ref":`+string(q)+`,"detail":"full"}`)
		call("catalog_get_entity", `{"ref":`+string(q)+`}`)
		call("catalog_get_relations", `{"ref":`+string(q)+`,"depth":2,"direction":"both"}`)
		call("catalog_find_owner", `{"ref":`+string(q)+`}`)
		if strings.EqualFold(r.Kind, "api") {
			call("catalog_get_api_definition", `{"ref":`+string(q)+`,"maxBytes":200000}`)
		}
		call("catalog_search_entities", `{"text":`+mustJSON(r.Name)+`,"limit":100}`)
	}
	call("catalog_search_entities", `{"owner":"team-platform","limit":100}`)
	for _, f := range []string{"metadata.annotations", "metadata.links.url", "spec.type", "metadata.description", "metadata.name"} {
		call("catalog_list_facets", `{"facet":`+mustJSON(f)+`}`)
	}
	all := strings.Join(outputs, "\n")
	if !strings.Contains(all, "[REDACTED:") {
		t.Error("no redaction marker in any answer")
	}
	for _, sec := range secrets {
		for _, form := range []string{sec.Value, jsonEscaped(sec.Value)} {
			if len(form) >= 8 && strings.Contains(all, form) {
				t.Errorf("seeded %s secret of %s (%s) appears in a tool answer", sec.Type, sec.Entity, sec.Where)
			}
		}
	}
}

func jsonEscaped(s string) string {
	b, _ := json.Marshal(s)
	return strings.Trim(string(b), `"`)
}

func mustJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

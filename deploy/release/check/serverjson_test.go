package check

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"

	apiv0 "github.com/modelcontextprotocol/registry/pkg/api/v0"
	"github.com/modelcontextprotocol/registry/pkg/model"
)

// loadServerJSON validates a server.json document against the registry's
// schema, decodes it with the registry's types (no unknown fields) and
// applies the publish-time rules below.
func loadServerJSON(t *testing.T, doc []byte) (apiv0.ServerJSON, error) {
	t.Helper()
	if err := validate(registrySchema(t), doc); err != nil {
		return apiv0.ServerJSON{}, fmt.Errorf("against %s: %w", model.CurrentSchemaURL, err)
	}
	s, err := roundTrip[apiv0.ServerJSON](doc)
	if err != nil {
		return s, err
	}
	return s, errors.Join(publishRules(s)...)
}

var templateVar = regexp.MustCompile(`\{([^{}]+)\}`)

// publishRules are the registry's semantic checks on publish that its
// schema does not express (internal/validators in the registry module),
// plus this project's own: the name, the repository, a version in every
// OCI tag, and variables that are declared where they are used.
func publishRules(s apiv0.ServerJSON) []error {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if s.Schema != model.CurrentSchemaURL {
		fail("$schema %q, want the registry's current %q", s.Schema, model.CurrentSchemaURL)
	}
	if s.Name != serverName {
		fail("name %q, want %q (the GitHub namespace the registry verifies)", s.Name, serverName)
	}
	if s.Repository == nil || s.Repository.URL != projectURL || s.Repository.Source != "github" {
		fail("repository %+v, want %s on github", s.Repository, projectURL)
	}
	if s.Version == "" || s.Version == "latest" || strings.ContainsAny(s.Version, "^~<>=*x ") {
		fail("version %q is not one specific version", s.Version)
	}
	transports := map[string]bool{}
	for i, p := range s.Packages {
		at := fmt.Sprintf("packages[%d] (%s %s)", i, p.RegistryType, p.Transport.Type)
		transports[p.Transport.Type] = true
		if strings.ContainsAny(p.Identifier, " \t") {
			fail("%s: identifier %q has spaces", at, p.Identifier)
		}
		switch p.RegistryType {
		case model.RegistryTypeOCI:
			if p.Version != "" || p.RegistryBaseURL != "" {
				fail("%s: OCI packages carry the version in the identifier, without version or registryBaseUrl", at)
			}
			if repo, tag, _ := strings.Cut(p.Identifier, ":"); tag != s.Version || !strings.Contains(repo, "/") {
				fail("%s: identifier %q, want <registry>/<namespace>/<image>:%s", at, p.Identifier, s.Version)
			}
			if p.RunTimeHint != "docker" {
				fail("%s: runtimeHint %q, want docker", at, p.RunTimeHint)
			}
		case model.RegistryTypeMCPB:
			if len(p.FileSHA256) != 64 {
				fail("%s: MCPB packages need fileSha256", at)
			}
			if !strings.Contains(p.Identifier, "mcp") || !strings.HasPrefix(p.Identifier, projectURL+"/releases/download/") {
				fail("%s: identifier %q is not a release asset of %s", at, p.Identifier, projectURL)
			}
		default:
			fail("%s: unexpected registryType", at)
		}
		vars := map[string]bool{}
		for _, e := range p.EnvironmentVariables {
			vars[e.Name] = true
		}
		for j, a := range append(append([]model.Argument{}, p.RuntimeArguments...), p.PackageArguments...) {
			aat := fmt.Sprintf("%s argument %d", at, j)
			switch a.Type {
			case model.ArgumentTypeNamed:
				if a.Name == "" || strings.ContainsAny(a.Name, "<>$ ") {
					fail("%s: named argument name %q", aat, a.Name)
				}
				if a.Value != "" && strings.HasPrefix(a.Value, a.Name) {
					fail("%s: value %q repeats the name", aat, a.Value)
				}
				vars[a.Name] = true
			case model.ArgumentTypePositional:
				if !a.HasValueOrHint() {
					fail("%s: a positional argument needs value or valueHint", aat)
				}
			default:
				fail("%s: argument type %q", aat, a.Type)
			}
			if a.ValueHint != "" {
				vars[a.ValueHint] = true
			}
			// Every {variable} in a value is declared beside it, so a
			// client can ask for it.
			for _, m := range templateVar.FindAllStringSubmatch(a.Value, -1) {
				if _, ok := a.Variables[m[1]]; !ok {
					fail("%s: value %q uses {%s}, which its variables do not declare", aat, a.Value, m[1])
				}
			}
			for name := range a.Variables {
				if !strings.Contains(a.Value, "{"+name+"}") {
					fail("%s: variable %s is declared but %q does not use it", aat, name, a.Value)
				}
			}
		}
		switch p.Transport.Type {
		case model.TransportTypeStdio:
			if p.Transport.URL != "" {
				fail("%s: a stdio transport has no url", at)
			}
		case model.TransportTypeStreamableHTTP:
			for _, m := range templateVar.FindAllStringSubmatch(p.Transport.URL, -1) {
				if !vars[m[1]] {
					fail("%s: url %q uses {%s}, which no argument or environment variable names", at, p.Transport.URL, m[1])
				}
			}
			u, err := url.Parse(templateVar.ReplaceAllString(p.Transport.URL, "x"))
			if err != nil || u.Scheme == "" || u.Path != "/mcp" {
				fail("%s: url %q, want http(s)://HOST/mcp", at, p.Transport.URL)
			}
		default:
			fail("%s: transport %q, want stdio or streamable-http", at, p.Transport.Type)
		}
	}
	if !transports[model.TransportTypeStdio] || !transports[model.TransportTypeStreamableHTTP] {
		fail("packages offer transports %v, want stdio and streamable-http", transports)
	}
	return errs
}

// TestServerJSON: the registry entry at the repository root passes the
// registry's schema and publish rules.
func TestServerJSON(t *testing.T) {
	s, err := loadServerJSON(t, readFile(t, serverJSONPath))
	if err != nil {
		t.Fatalf("server.json: %v", err)
	}
	if len(s.Packages) < 2 {
		t.Errorf("server.json lists %d packages, want the image over stdio and over Streamable HTTP", len(s.Packages))
	}
	t.Logf("server.json: %s %s, %d packages, valid against %s", s.Name, s.Version, len(s.Packages), model.CurrentSchemaURL)
}

// TestServerJSONRejects: the checks above catch the mistakes they are
// there for, each with a message that names it.
func TestServerJSONRejects(t *testing.T) {
	good := string(readFile(t, serverJSONPath))
	tests := []struct{ name, from, to, want string }{
		{"description over 100 characters", `"description": "Read`, `"description": "` + strings.Repeat("x", 100), "maxLength"},
		{"misspelt package field", `"runtimeHint"`, `"runtimeHnt"`, "registry's types do not know"},
		{"version latest", `"version": "0.1.0"`, `"version": "latest"`, "one specific version"},
		{"OCI tag not the version", `backstage-mcp:0.1.0",
      "runtimeHint": "docker",
      "transport": {
        "type": "streamable-http"`, `backstage-mcp:9.9.9",
      "runtimeHint": "docker",
      "transport": {
        "type": "streamable-http"`, "want <registry>/<namespace>/<image>:0.1.0"},
		{"undeclared variable", `src={config_file},dst=/etc/backstage-mcp/config.yaml,readonly",
          "description": "The server configuration, read`, `src={config_path},dst=/etc/backstage-mcp/config.yaml,readonly",
          "description": "The server configuration, read`, "do not declare"},
		{"unknown transport", `"type": "stdio"`, `"type": "websocket"`, "anyOf"},
		{"wrong name", serverName, "io.github.someone/else", "want " + `"` + serverName},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(good, tc.from) {
				t.Fatalf("server.json no longer contains %q; update the case", tc.from)
			}
			_, err := loadServerJSON(t, []byte(strings.Replace(good, tc.from, tc.to, 1)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			t.Logf("rejected: %v", err)
		})
	}
}

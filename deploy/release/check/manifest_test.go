package check

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/tools"
)

// bundleManifest is the part of an MCPB manifest these checks read.
type bundleManifest struct {
	ManifestVersion string `json:"manifest_version"`
	Name            string `json:"name"`
	Version         string `json:"version"`
	License         string `json:"license"`
	Server          struct {
		Type       string `json:"type"`
		EntryPoint string `json:"entry_point"`
		MCPConfig  struct {
			Command string            `json:"command"`
			Args    []string          `json:"args"`
			Env     map[string]string `json:"env"`
		} `json:"mcp_config"`
	} `json:"server"`
	Tools []struct {
		Name        string `json:"name"`
		Description string `json:"description"`
	} `json:"tools"`
	Compatibility struct {
		Platforms []string `json:"platforms"`
	} `json:"compatibility"`
	UserConfig map[string]struct {
		Type      string `json:"type"`
		Required  bool   `json:"required"`
		Sensitive bool   `json:"sensitive"`
	} `json:"user_config"`
}

func readManifest(t *testing.T, path string) bundleManifest {
	t.Helper()
	var m bundleManifest
	if err := json.Unmarshal(readFile(t, path), &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

// mcpbValidate runs the pinned `mcpb validate` on a manifest file.
func mcpbValidate(t *testing.T, path string) (string, error) {
	t.Helper()
	out, err := exec.Command(mcpbCLI(t), "validate", path).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

var userConfigRef = regexp.MustCompile(`\$\{user_config\.([A-Za-z0-9_]+)\}`)

// TestBundleManifest: deploy/mcpb/manifest.json passes `mcpb validate`,
// runs the binary over stdio with the config file the user picks, and
// lists exactly the server's tools.
func TestBundleManifest(t *testing.T) {
	out, err := mcpbValidate(t, manifestPath)
	if err != nil {
		t.Fatalf("mcpb validate %s: %v\n%s", manifestPath, err, out)
	}
	t.Logf("mcpb validate: %s", out)
	m := readManifest(t, manifestPath)
	if m.ManifestVersion != "0.3" || m.Name != "backstage-mcp" || m.License != "Apache-2.0" {
		t.Errorf("manifest_version %q, name %q, license %q", m.ManifestVersion, m.Name, m.License)
	}
	if m.Server.Type != "binary" || m.Server.EntryPoint != "server/backstage-mcp" ||
		m.Server.MCPConfig.Command != "${__dirname}/server/backstage-mcp" {
		t.Errorf("server %+v, want the bundled binary server/backstage-mcp", m.Server)
	}
	if got := strings.Join(m.Server.MCPConfig.Args, " "); got != "serve --stdio --config ${user_config.config_file}" {
		t.Errorf("args %q, want serve --stdio --config ${user_config.config_file}", got)
	}
	// Every ${user_config.X} used is declared, and every declared one used.
	used := map[string]bool{}
	for _, s := range append(append([]string{m.Server.MCPConfig.Command}, m.Server.MCPConfig.Args...), mapValues(m.Server.MCPConfig.Env)...) {
		for _, r := range userConfigRef.FindAllStringSubmatch(s, -1) {
			used[r[1]] = true
		}
	}
	for k := range used {
		if _, ok := m.UserConfig[k]; !ok {
			t.Errorf("mcp_config uses ${user_config.%s}, which user_config does not declare", k)
		}
	}
	for k, c := range m.UserConfig {
		if !used[k] {
			t.Errorf("user_config.%s is never used in mcp_config", k)
		}
		if strings.Contains(strings.ToLower(k), "token") && !c.Sensitive {
			t.Errorf("user_config.%s holds a credential but is not sensitive", k)
		}
	}
	if c := m.UserConfig["config_file"]; c.Type != "file" || !c.Required {
		t.Errorf("user_config.config_file = %+v, want a required file", c)
	}
	var want, got []string
	for _, tl := range tools.All(&tools.Deps{}) {
		want = append(want, tl.Tool.Name+": "+tl.Tool.Title)
	}
	for _, tl := range m.Tools {
		got = append(got, tl.Name+": "+tl.Description)
	}
	if !slices.Equal(got, want) {
		t.Errorf("manifest tools\n  %q\nwant the server's tools and titles\n  %q", got, want)
	}
	if plats := m.Compatibility.Platforms; !slices.Equal(plats, []string{"darwin", "win32", "linux"}) {
		t.Errorf("platforms %v, want darwin, win32, linux (the release packs one bundle per platform)", plats)
	}
}

// TestBundleManifestRejects: `mcpb validate` fails on the mistakes a hand
// edit makes (the check above is only as good as this).
func TestBundleManifestRejects(t *testing.T) {
	good := string(readFile(t, manifestPath))
	tests := []struct{ name, from, to, want string }{
		{"misspelt field", `"tools_generated"`, `"tools_generatd"`, "tools_generatd"},
		{"unknown server type", `"type": "binary"`, `"type": "go"`, "server"},
		{"user_config without title", `"title": "Configuration file",`, ``, "title"},
	}
	dir := t.TempDir()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(good, tc.from) {
				t.Fatalf("manifest.json no longer contains %q; update the case", tc.from)
			}
			path := filepath.Join(dir, "manifest.json")
			if err := os.WriteFile(path, []byte(strings.Replace(good, tc.from, tc.to, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := mcpbValidate(t, path)
			if err == nil || !strings.Contains(out, tc.want) {
				t.Fatalf("mcpb validate: err %v, output %q, want a failure naming %q", err, out, tc.want)
			}
			t.Logf("rejected: %s", strings.Join(strings.Fields(out), " "))
		})
	}
}

func mapValues(m map[string]string) []string {
	var v []string
	for _, s := range m {
		v = append(v, s)
	}
	return v
}

package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadConfigResolvesPathsAgainstItsFolder: an IDE starts the server in
// the developer's repository, so relative paths in the config file are read
// from the file's folder; paths from the environment stay as given.
func TestLoadConfigResolvesPathsAgainstItsFolder(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte("backstage:\n  baseUrl: http://localhost:7007\n  tokenFile: secrets/token\npolicy:\n  file: policy.yaml\naudit:\n  path: logs/audit.log\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	cfg, err := LoadConfig(path, getenv)
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]string{
		"policy.file":         cfg.Policy.File,
		"backstage.tokenFile": cfg.Backstage.TokenFile,
		"audit.path":          cfg.Audit.Path,
	} {
		if !strings.HasPrefix(got, dir+string(filepath.Separator)) {
			t.Errorf("%s = %q, want it under %s", name, got, dir)
		}
	}
	env["BACKSTAGE_MCP_POLICY_FILE"] = "other.yaml"
	if cfg, err = LoadConfig(path, getenv); err != nil {
		t.Fatal(err)
	}
	if cfg.Policy.File != "other.yaml" {
		t.Errorf("policy.file from the environment = %q, want it as given", cfg.Policy.File)
	}
}

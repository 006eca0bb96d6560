package harness

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/backstage-mcp/backstage-mcp/server/demo"
	"go.yaml.in/yaml/v3"
)

// Secret is one fake secret seeded into testdata/catalog/secrets.yaml.
type Secret struct {
	// Type names the kind of secret, e.g. "github-classic-token", "jwt",
	// "aws-access-key-id", "pem-rsa-private-key".
	Type string `json:"type"`
	// Entity is the ref of the entity holding it, e.g. "component:default/deploy-bot".
	Entity string `json:"entity"`
	// Where says which field holds it, e.g. "spec.definition".
	Where string `json:"where"`
	// Value is the exact secret string.
	Value string `json:"value"`
}

// SecretsFixture is the path of the fake-secrets catalog file.
func SecretsFixture(repoRoot string) string {
	return filepath.Join(repoRoot, "testdata", "catalog", "secrets.yaml")
}

// LoadSecrets reads testdata/catalog/secrets.manifest.json: every fake secret
// seeded into the fixture, which no output of backstage-mcp may contain.
func LoadSecrets(repoRoot string) ([]Secret, error) {
	data, err := os.ReadFile(filepath.Join(repoRoot, "testdata", "catalog", "secrets.manifest.json"))
	if err != nil {
		return nil, fmt.Errorf("harness: read secrets manifest: %w", err)
	}
	var m struct {
		Secrets []Secret `json:"secrets"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("harness: parse secrets manifest: %w", err)
	}
	if len(m.Secrets) == 0 {
		return nil, errors.New("harness: secrets manifest lists no secrets")
	}
	return m.Secrets, nil
}

// FixtureEntities parses testdata/catalog/secrets.yaml into JSON-compatible
// entities.
func FixtureEntities(repoRoot string) ([]map[string]any, error) {
	data, err := os.ReadFile(SecretsFixture(repoRoot))
	if err != nil {
		return nil, fmt.Errorf("harness: read fixture: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []map[string]any
	for {
		var e map[string]any
		err := dec.Decode(&e)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("harness: parse fixture: %w", err)
		}
		if e != nil {
			out = append(out, e)
		}
	}
	// Round-trip through JSON so nested values have JSON types.
	raw, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("harness: fixture is not JSON-compatible: %w", err)
	}
	out = nil
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("harness: fixture round trip: %w", err)
	}
	return out, nil
}

// ExpectedTotal is how many entities the test backend holds once everything
// is ingested: the demo catalog, the fixtures, and one Location entity per
// entry of catalog.locations in testdata/backstage/app-config.yaml.
func ExpectedTotal(repoRoot string) (int, error) {
	d, err := demo.Entities()
	if err != nil {
		return 0, fmt.Errorf("harness: %w", err)
	}
	f, err := FixtureEntities(repoRoot)
	if err != nil {
		return 0, err
	}
	l, err := configLocations(repoRoot)
	if err != nil {
		return 0, err
	}
	return len(d) + len(f) + l, nil
}

// configLocations counts catalog.locations in the backend's app-config.yaml.
func configLocations(repoRoot string) (int, error) {
	data, err := os.ReadFile(filepath.Join(BackendDir(repoRoot), "app-config.yaml"))
	if err != nil {
		return 0, fmt.Errorf("harness: read app-config: %w", err)
	}
	var cfg struct {
		Catalog struct {
			Locations []map[string]any `yaml:"locations"`
		} `yaml:"catalog"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		return 0, fmt.Errorf("harness: parse app-config: %w", err)
	}
	return len(cfg.Catalog.Locations), nil
}

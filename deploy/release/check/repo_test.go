package check

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/registry/pkg/model"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

const (
	root            = "../../.."
	registryModule  = "github.com/modelcontextprotocol/registry"
	projectURL      = "https://github.com/backstage-mcp/backstage-mcp"
	serverName      = "io.github.backstage-mcp/backstage-mcp"
	manifestPath    = root + "/deploy/mcpb/manifest.json"
	chartPath       = root + "/deploy/helm/backstage-mcp/Chart.yaml"
	valuesPath      = root + "/deploy/helm/backstage-mcp/values.yaml"
	goreleaserPath  = root + "/.goreleaser.yaml"
	serverJSONPath  = root + "/server.json"
	changelogPath   = root + "/CHANGELOG.md"
	defaultMCPBPath = "../mcpb-cli/node_modules/.bin/mcpb"
)

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// registrySchema compiles the registry's published server.json schema,
// model.CurrentSchemaURL, from the registry module that go.mod pins: the
// registry embeds every published schema in its validators, named by date.
func registrySchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", registryModule)
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -m %s: %v (run `go mod download` in deploy/release/check)", registryModule, err)
	}
	path := filepath.Join(strings.TrimSpace(string(out)), "internal/validators/schemas", model.CurrentSchemaVersion+".json")
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("the registry module no longer ships its %s schema: %v", model.CurrentSchemaVersion, err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if id, _ := doc.(map[string]any)["$id"].(string); id != model.CurrentSchemaURL {
		t.Fatalf("%s has $id %q, want %q", path, id, model.CurrentSchemaURL)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(model.CurrentSchemaURL, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(model.CurrentSchemaURL)
	if err != nil {
		t.Fatalf("compile %s: %v", model.CurrentSchemaURL, err)
	}
	return s
}

// validate checks a JSON document against a compiled schema.
func validate(s *jsonschema.Schema, doc []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return err
	}
	return s.Validate(inst)
}

// roundTrip decodes doc into v's type and encodes it again: a field the
// type does not know (a typo, a field from another schema version) is lost
// on the way, and the two documents differ. It returns the decoded value.
func roundTrip[T any](doc []byte) (T, error) {
	var v T
	if err := json.Unmarshal(doc, &v); err != nil {
		return v, err
	}
	again, err := json.Marshal(v)
	if err != nil {
		return v, err
	}
	var a, b any
	if err := json.Unmarshal(doc, &a); err != nil {
		return v, err
	}
	if err := json.Unmarshal(again, &b); err != nil {
		return v, err
	}
	if !reflect.DeepEqual(a, b) {
		return v, fmt.Errorf("fields the registry's types do not know (or defaults spelt out): %s", diffJSON("", a, b))
	}
	return v, nil
}

// diffJSON names the first path where two decoded JSON trees differ.
func diffJSON(path string, a, b any) string {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok {
			return path
		}
		for k := range x {
			if _, ok := y[k]; !ok {
				return path + "." + k
			}
			if d := diffJSON(path+"."+k, x[k], y[k]); d != "" {
				return d
			}
		}
		for k := range y {
			if _, ok := x[k]; !ok {
				return path + "." + k + " (added)"
			}
		}
		return ""
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return path
		}
		for i := range x {
			if d := diffJSON(fmt.Sprintf("%s[%d]", path, i), x[i], y[i]); d != "" {
				return d
			}
		}
		return ""
	}
	if !reflect.DeepEqual(a, b) {
		return path
	}
	return ""
}

func mcpbCLI(t *testing.T) string {
	t.Helper()
	p := os.Getenv("MCPB")
	if p == "" {
		p = defaultMCPBPath
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("the mcpb CLI is missing at %s: run `make mcpb-cli` (npm ci in deploy/release/mcpb-cli)", p)
	}
	return p
}

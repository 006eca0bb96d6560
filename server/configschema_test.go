package server

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	sjs "github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

const schemaPath = "../docs/config.schema.json"

// TestConfigSchemaGolden keeps docs/config.schema.json equal to
// ConfigJSONSchema (`go test ./server/ -run TestConfigSchemaGolden -update`
// rewrites it).
func TestConfigSchemaGolden(t *testing.T) {
	want, err := ConfigJSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(schemaPath)
	if !bytes.Equal(got, want) {
		if *updateDocs {
			if err := os.WriteFile(schemaPath, want, 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Fatalf("%s is stale: run `make docs`", schemaPath)
	}
}

// compileConfigSchema compiles ConfigJSONSchema with a real validator.
func compileConfigSchema(t *testing.T) *sjs.Schema {
	t.Helper()
	data, err := ConfigJSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := sjs.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	c := sjs.NewCompiler()
	c.DefaultDraft(sjs.Draft2020)
	c.AssertFormat()
	if err := c.AddResource("config.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("config.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// yamlToJSON turns a YAML document into the value a JSON decoder gives.
func yamlToJSON(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := sjs.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// configFiles lists the configuration files under testdata: by
// convention, the YAML files whose name starts with "config".
func configFiles(t *testing.T) []string {
	var out []string
	err := filepath.WalkDir("../testdata", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "node_modules" {
			return filepath.SkipDir
		}
		ext := filepath.Ext(path)
		if !d.IsDir() && strings.HasPrefix(d.Name(), "config") && (ext == ".yaml" || ext == ".yml") {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestConfigFilesMatchSchema: the example configuration, every other
// configuration file under testdata and the Helm chart's config values
// validate against the schema, and the server reads them too.
func TestConfigFilesMatchSchema(t *testing.T) {
	s := compileConfigSchema(t)
	files := configFiles(t)
	if !slices.Contains(files, "../testdata/config.example.yaml") {
		t.Fatalf("config files found: %v, want testdata/config.example.yaml among them", files)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(yamlToJSON(t, data)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		if _, err := ParseConfig(data, f, env(map[string]string{"BACKSTAGE_TOKEN": "t"})); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		t.Logf("%s: valid", f)
	}
	// The chart's config value (the chart adds only ${VAR} references).
	for _, f := range []string{"../deploy/helm/backstage-mcp/values.yaml", "../deploy/helm/backstage-mcp/ci/values-ci.yaml"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var values struct {
			Config yaml.Node `yaml:"config"`
		}
		if err := yaml.Unmarshal(data, &values); err != nil {
			t.Fatal(err)
		}
		if values.Config.Kind == 0 {
			continue
		}
		cfg, err := yaml.Marshal(&values.Config)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(yamlToJSON(t, cfg)); err != nil {
			t.Errorf("%s config: %v", f, err)
		}
	}
}

// TestConfigSchemaRefuses: what the server refuses, the schema refuses
// too: a misspelt key, a key at the wrong level, a value of the wrong
// type, an unknown value of a known set.
func TestConfigSchemaRefuses(t *testing.T) {
	s := compileConfigSchema(t)
	for _, doc := range []string{
		"backstage:\n  baseURL: http://x\n",
		"baseUrl: http://x\n",
		"server:\n  shutdownTimeout: 10\n",
		"server:\n  shutdownTimeout: soon\n",
		"server:\n  pprof: maybe\n",
		"server:\n  allowedOrigins: https://x\n",
		"catalog:\n  pageSize: lots\n",
		"catalog:\n  mode: cache\n",
		"audit:\n  sink: syslog\n",
		"state: etcd\n",
		"log:\n  level: loud\n",
		"rateLimits:\n  classes:\n    low: {requests: 1, per: 1s, brust: 2}\n",
		"auth:\n  issuers:\n    - url: https://idp\n      jwksUrl: https://idp/keys\n",
	} {
		if err := s.Validate(yamlToJSON(t, []byte(doc))); err == nil {
			t.Errorf("schema accepts %q", doc)
		}
		if _, err := ParseConfig([]byte(doc), "config.yaml", env(nil)); err == nil {
			t.Errorf("server accepts %q", doc)
		}
	}
	for _, doc := range []string{
		"catalog:\n  pageSize: ${PAGE}\n  syncInterval: ${SYNC}\n  mode: ${MODE}\n",
		"server:\n  pprof: true\n  adminAddr: 127.0.0.1:9090\n  shutdownTimeout: 1m30s\n",
		"rateLimits:\n  classes:\n    low: {requests: 0.5, per: 1s}\n    high: {unlimited: true}\n",
	} {
		if err := s.Validate(yamlToJSON(t, []byte(doc))); err != nil {
			t.Errorf("schema refuses %q: %v", doc, err)
		}
	}
}

// TestConfigSchemaEnumsMatchServer: every value the schema lists for a
// key is one the server accepts, and the server refuses the others.
func TestConfigSchemaEnumsMatchServer(t *testing.T) {
	paths := map[string]string{ // Go field → key path
		"server.LogConfig.Level":       "log.level",
		"server.LogConfig.Format":      "log.format",
		"server.CatalogConfig.Mode":    "catalog.mode",
		"server.Config.State":          "state",
		"identity.ResolverConfig.Name": "auth.resolver.name",
		"audit.Config.Sink":            "audit.sink",
		"audit.Config.Sync":            "audit.sync",
		"server.AuditConfig.Format":    "audit.format",
		"ship.SinkConfig.Format":       "audit.export.sinks[].format",
		"ship.SinkConfig.Type":         "audit.export.sinks[].type",
	}
	if len(paths) != len(configEnums) {
		t.Fatalf("configEnums has %d keys, this test knows %d", len(configEnums), len(paths))
	}
	doc := func(path, value string) string {
		if key, ok := strings.CutPrefix(path, "audit.export.sinks[]."); ok {
			// A sink with what every type needs, and the key under test.
			sink := map[string]string{"type": "stdout", "address": "h:514", "url": "http://h:1", "tokenFile": "t"}
			sink[key] = value
			return fmt.Sprintf("audit:\n  export:\n    sinks:\n      - type: %s\n        address: %s\n        url: %s\n        tokenFile: %s\n        format: %s\n",
				sink["type"], sink["address"], sink["url"], sink["tokenFile"], cmp.Or(sink["format"], "native"))
		}
		parts := strings.Split(path, ".")
		var b strings.Builder
		for i, p := range parts {
			b.WriteString(strings.Repeat("  ", i) + p + ":")
			if i < len(parts)-1 {
				b.WriteString("\n")
			}
		}
		extra := ""
		if path == "state" && value == "redis" {
			extra = "redis:\n  url: redis://127.0.0.1:6379/0\nserver:\n  cursorKey: 0123456789abcdef0123456789abcdef\n"
		}
		return b.String() + " " + value + "\n" + extra
	}
	for goField, path := range paths {
		values, ok := configEnums[goField]
		if !ok {
			t.Fatalf("no enum for %s", goField)
		}
		for _, v := range values {
			if _, err := ParseConfig([]byte(doc(path, v)), "config.yaml", env(nil)); err != nil {
				t.Errorf("%s: %s: %v", path, v, err)
			}
		}
		if _, err := ParseConfig([]byte(doc(path, "bogus")), "config.yaml", env(nil)); err == nil {
			t.Errorf("%s: bogus accepted", path)
		}
	}
}

// TestDurationPattern: the schema's duration pattern accepts what
// time.ParseDuration accepts, among the usual forms.
func TestDurationPattern(t *testing.T) {
	re := regexp.MustCompile(durationPattern)
	for _, s := range []string{"0", "10s", "1m30s", "1.5h", "500ms", "-1s", "+2m", "1h2m3s4ms5us6ns", ".5s", "2µs", "10x", "s", "10", "1 m", "", "1e3s", "${T}", "x${T}y"} {
		_, err := time.ParseDuration(s)
		isRef := strings.Contains(s, "${")
		if got, want := re.MatchString(s), err == nil || isRef; got != want {
			t.Errorf("%q: pattern match %v, ParseDuration ok %v", s, got, err == nil)
		}
	}
}

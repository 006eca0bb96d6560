package check

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"sigs.k8s.io/yaml"
)

const (
	// baseSchema is the hand-written schema of the chart's own values.
	baseSchema = "chart-values.schema.json"
	// configSchema is the server's configuration schema; while it does not
	// exist, config is a plain object.
	configSchema = "../../../docs/config.schema.json"
	valuesSchema = chartDir + "/values.schema.json"
)

// chartFilled are the config sections the chart fills in itself, through
// environment variables (the Backstage URL and token file, the public URL)
// or a mount (the policy file): keys the server requires there are not
// required in values.
var chartFilled = []string{"server", "backstage", "policy"}

// buildValuesSchema returns values.schema.json: the chart's own schema with
// the config schema, when given, under properties.config. The config
// schema's definitions move to the root as "config.<name>" and its local
// references follow them; the root takes its draft when it names one.
func buildValuesSchema(base, config []byte) ([]byte, error) {
	root, err := decodeJSON(base)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", baseSchema, err)
	}
	props, _ := root["properties"].(map[string]any)
	if props == nil || props["config"] == nil {
		return nil, fmt.Errorf("%s: no properties.config to fill", baseSchema)
	}
	if config != nil {
		cfg, err := decodeJSON(config)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", configSchema, err)
		}
		if draft, ok := cfg["$schema"].(string); ok {
			root["$schema"] = draft
		}
		delete(cfg, "$schema")
		delete(cfg, "$id")
		defs, _ := root["definitions"].(map[string]any)
		if defs == nil {
			defs = map[string]any{}
			root["definitions"] = defs
		}
		moved := map[string]any{}
		for _, k := range []string{"$defs", "definitions"} {
			if d, ok := cfg[k].(map[string]any); ok {
				for name, s := range d {
					moved["#/"+k+"/"+name] = "#/definitions/config." + name
					defs["config."+name] = s
				}
				delete(cfg, k)
			}
		}
		rewriteRefs(cfg, moved)
		for name := range defs {
			if strings.HasPrefix(name, "config.") {
				rewriteRefs(defs[name], moved)
			}
		}
		delete(cfg, "required")
		cfgProps, _ := cfg["properties"].(map[string]any)
		for _, k := range chartFilled {
			if s := resolve(cfgProps[k], defs); s != nil {
				delete(s, "required")
			}
		}
		desc, _ := props["config"].(map[string]any)["description"].(string)
		cfg["description"] = strings.TrimSpace(desc + " Schema: docs/config.schema.json.")
		props["config"] = cfg
	}
	out, err := json.MarshalIndent(root, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

func decodeJSON(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}

// rewriteRefs replaces every local $ref found in moved, or pointing inside
// one of them, throughout a schema.
func rewriteRefs(v any, moved map[string]any) {
	switch x := v.(type) {
	case map[string]any:
		if ref, ok := x["$ref"].(string); ok {
			for from, to := range moved {
				if ref == from || strings.HasPrefix(ref, from+"/") {
					x["$ref"] = to.(string) + strings.TrimPrefix(ref, from)
				}
			}
		}
		for _, c := range x {
			rewriteRefs(c, moved)
		}
	case []any:
		for _, c := range x {
			rewriteRefs(c, moved)
		}
	}
}

// resolve follows one local #/definitions/ reference.
func resolve(v any, defs map[string]any) map[string]any {
	s, _ := v.(map[string]any)
	if ref, ok := s["$ref"].(string); ok {
		if d, ok := defs[strings.TrimPrefix(ref, "#/definitions/")].(map[string]any); ok {
			return d
		}
	}
	return s
}

func readConfigSchema(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(configSchema)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestValuesSchemaCurrent fails when the chart's values.schema.json differs
// from what chart-values.schema.json and docs/config.schema.json give;
// -update (make chart-schema) rewrites it.
func TestValuesSchemaCurrent(t *testing.T) {
	base, err := os.ReadFile(baseSchema)
	if err != nil {
		t.Fatal(err)
	}
	cfg := readConfigSchema(t)
	want, err := buildValuesSchema(base, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if cfg == nil {
		t.Logf("%s does not exist yet: config is any object in values.schema.json", configSchema)
	}
	got, err := os.ReadFile(valuesSchema)
	if err == nil && bytes.Equal(got, want) {
		return
	}
	if !*update {
		t.Fatalf("%s is stale: run `make chart-schema`", valuesSchema)
	}
	if err := os.WriteFile(valuesSchema, want, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestValuesSchemaAcceptsChartValues: the chart's defaults and the CI
// values pass the generated schema.
func TestValuesSchemaAcceptsChartValues(t *testing.T) {
	s := compileSchema(t, readFile(t, valuesSchema))
	for _, f := range []string{"values.yaml", "ci/values-ci.yaml"} {
		if err := validateYAML(s, readFile(t, filepath.Join(chartDir, f))); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestValuesSchemaEmbedsConfig proves the embedding on a config schema of
// the shape the server's will have (definitions, references, required
// keys): a typo under config fails, a section the chart fills may be left
// out, and references into moved definitions still resolve.
func TestValuesSchemaEmbedsConfig(t *testing.T) {
	cfg := []byte(`{
	  "$schema": "https://json-schema.org/draft/2020-12/schema",
	  "$id": "https://example.com/config.schema.json",
	  "type": "object", "additionalProperties": false, "required": ["backstage"],
	  "properties": {
	    "backstage": {"$ref": "#/$defs/Backstage"},
	    "audit": {"type": "object", "additionalProperties": false, "properties": {"sink": {"enum": ["stdout", "file"]}}},
	    "auth": {"type": "object", "additionalProperties": false, "properties": {"issuers": {"type": "array", "items": {"$ref": "#/$defs/Issuer"}}}}
	  },
	  "$defs": {
	    "Backstage": {"type": "object", "additionalProperties": false, "required": ["baseUrl"], "properties": {"baseUrl": {"type": "string"}}},
	    "Issuer": {"type": "object", "additionalProperties": false, "required": ["url"], "properties": {"url": {"type": "string"}}}
	  }
	}`)
	out, err := buildValuesSchema(readFile(t, baseSchema), cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := compileSchema(t, out)
	tests := []struct{ name, values, want string }{
		{"chart-filled section left out", "config: {audit: {sink: stdout}}", ""},
		{"typo under config", "config: {audit: {snk: stdout}}", "snk"},
		{"typo in a referenced definition", "config: {auth: {issuers: [{ur: x}]}}", "ur"},
		{"required key in a referenced definition", "config: {auth: {issuers: [{}]}}", "url"},
		{"typo in the chart's own values", "replicaCont: 2", "replicaCont"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := validateYAML(s, []byte(tc.values))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err = %v, want one naming %q", err, tc.want)
			}
		})
	}
}

// TestHelmRefusesValueTypos: the real helm, given a typo or a wrong type
// anywhere in values, fails `helm template` with a message that names it,
// before any manifest is rendered.
func TestHelmRefusesValueTypos(t *testing.T) {
	base := []string{"--values", filepath.Join(chartDir, "ci/values-ci.yaml")}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"misspelt top-level key", []string{"--set", "replicaCont=2"}, []string{"values don't meet the specifications of the schema", "additional properties 'replicaCont' not allowed"}},
		{"misspelt nested key", []string{"--set", "image.repositry=x"}, []string{"/image", "additional properties 'repositry' not allowed"}},
		{"wrong type", []string{"--set-string", "replicaCount=two"}, []string{"/replicaCount", "want integer"}},
		{"unknown enum value", []string{"--set", "service.type=Loadbalancer"}, []string{"/service/type", "value must be one of 'ClusterIP', 'NodePort', 'LoadBalancer'"}},
		{"port out of range", []string{"--set", "metrics.port=90900"}, []string{"/metrics/port", "maximum"}},
		{"publicURL with a path", []string{"--set", "publicURL=https://mcp.example.com/mcp"}, []string{"/publicURL", "does not match pattern"}},
	}
	if readConfigSchema(t) != nil {
		tests = append(tests, struct {
			name string
			args []string
			want []string
		}{"misspelt key under config", []string{"--set", "config.audit.snk=stdout"}, []string{"/config/audit", "snk"}})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(t, append(append([]string{}, base...), tc.args...)...)
			if err == nil {
				t.Fatalf("helm template accepted %v", tc.args)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("helm template %v: %v\nwant a message containing %q", tc.args, err, w)
				}
			}
			t.Logf("helm template %s: %s", strings.Join(tc.args, " "), lastLines(err.Error(), 3))
		})
	}
}

func compileSchema(t *testing.T, doc []byte) *jsonschema.Schema {
	t.Helper()
	d, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("values.schema.json", d); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("values.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func validateYAML(s *jsonschema.Schema, doc []byte) error {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return err
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		return err
	}
	return s.Validate(v)
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

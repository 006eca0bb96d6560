// Package demo ships a realistic, fictional Backstage catalog ("Acme Retail")
// for demos, documentation and tests.
//
// The catalog lives in catalog/*.yaml as ordinary Backstage entity files: the
// real Backstage backend under testdata/backstage ingests the same files, and
// Go code can read them through Entities or Files without touching the disk.
// The data holds no secrets.
package demo

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"

	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"go.yaml.in/yaml/v3"
)

// catalogFS holds the demo catalog files.
//
//go:embed catalog/*.yaml
var catalogFS embed.FS

// Files returns the demo catalog as a read-only file system whose root holds
// the YAML files (org.yaml, systems.yaml, …).
func Files() fs.FS {
	sub, err := fs.Sub(catalogFS, "catalog")
	if err != nil {
		// fs.Sub only fails on an invalid path, and "catalog" is valid.
		panic(fmt.Sprintf("demo: %v", err))
	}
	return sub
}

// Entities parses every YAML document of every catalog file and returns the
// entities as JSON-compatible values (map[string]any, []any, string, int,
// float64, bool, nil), so each one survives json.Marshal. They are sorted by
// kind, namespace and name (namespace "default" when metadata.namespace is
// absent), each comparison case-insensitive as in Backstage's entity refs.
func Entities() ([]map[string]any, error) {
	files := Files()
	names, err := fs.Glob(files, "*.yaml")
	if err != nil {
		return nil, fmt.Errorf("demo: list catalog files: %w", err)
	}
	var out []map[string]any
	for _, name := range names {
		data, err := fs.ReadFile(files, name)
		if err != nil {
			return nil, fmt.Errorf("demo: read %s: %w", name, err)
		}
		docs, err := parseDocuments(name, data)
		if err != nil {
			return nil, err
		}
		out = append(out, docs...)
	}
	sort.SliceStable(out, func(i, j int) bool {
		return sortKey(out[i]) < sortKey(out[j])
	})
	return out, nil
}

// parseDocuments decodes every non-empty YAML document in data.
func parseDocuments(name string, data []byte) ([]map[string]any, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []map[string]any
	for i := 0; ; i++ {
		var raw any
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("demo: parse %s document %d: %w", name, i, err)
		}
		if raw == nil {
			continue // an empty document, e.g. a trailing "---"
		}
		v, err := jsonCompatible(raw)
		if err != nil {
			return nil, fmt.Errorf("demo: %s document %d: %w", path.Base(name), i, err)
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("demo: %s document %d: want a mapping, got %T", name, i, v)
		}
		out = append(out, m)
	}
}

// jsonCompatible converts decoded YAML into values encoding/json accepts:
// mappings must have string keys.
func jsonCompatible(v any) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			c, err := jsonCompatible(e)
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("non-string mapping key %v (%T)", k, k)
			}
			c, err := jsonCompatible(e)
			if err != nil {
				return nil, err
			}
			out[ks] = c
		}
		return out, nil
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			c, err := jsonCompatible(e)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case string, bool, int, int64, uint64, float64, nil:
		return t, nil
	default:
		return nil, fmt.Errorf("unsupported YAML value %v (%T)", v, v)
	}
}

// sortKey is "kind:namespace/name" in lower case.
func sortKey(e map[string]any) string {
	r, _ := catalog.RefOf(e)
	return r.Key()
}

//go:embed policy.yaml
var policyYAML []byte

// Policy returns the demo's policy file (anonymous read-only access to the
// whole demo catalog).
func Policy() []byte { return append([]byte(nil), policyYAML...) }

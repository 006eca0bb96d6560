package tools

import (
	"bytes"
	"encoding/json"
	"testing"

	sjs "github.com/santhosh-tekuri/jsonschema/v6"
)

// compileOutput compiles a tool's output schema as JSON Schema 2020-12.
func compileOutput(t *testing.T, name string, raw json.RawMessage) *sjs.Schema {
	t.Helper()
	doc, err := sjs.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("%s: output schema is not JSON: %v", name, err)
	}
	c := sjs.NewCompiler()
	c.DefaultDraft(sjs.Draft2020)
	url := "mem:///" + name + ".output.json"
	if err := c.AddResource(url, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(url)
	if err != nil {
		t.Fatalf("%s: output schema does not compile: %v", name, err)
	}
	return s
}

// TestOutputSchemas: every tool declares an object output schema that
// compiles as JSON Schema 2020-12, and the schemas judge real shapes:
// what the tools build passes, what they never build fails.
func TestOutputSchemas(t *testing.T) {
	schemas := map[string]*sjs.Schema{}
	for _, tl := range All(&Deps{}) {
		if len(tl.Tool.RawOutputSchema) == 0 {
			t.Fatalf("%s declares no output schema", tl.Tool.Name)
		}
		var top struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(tl.Tool.RawOutputSchema, &top); err != nil || top.Type != "object" {
			t.Fatalf("%s: output schema type %q, want object", tl.Tool.Name, top.Type)
		}
		if tl.Tool.Title == "" {
			t.Errorf("%s has no title", tl.Tool.Name)
		}
		schemas[tl.Tool.Name] = compileOutput(t, tl.Tool.Name, tl.Tool.RawOutputSchema)
	}
	total := 3
	cases := []struct {
		name, tool string
		value      any
		ok         bool
	}{
		{"summary", "catalog_get_entity", Summary{Ref: "component:default/a", Relations: []RelatedRefs{{Type: "ownedBy", Refs: []string{"group:default/t"}, Total: 1}}}, true},
		{"full entity", "catalog_get_entity", map[string]any{"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
			"metadata": map[string]any{"name": "a"}, "spec": map[string]any{"type": "service"}, "relations": []any{}}, true},
		{"projection", "catalog_get_entity", map[string]any{"spec": map[string]any{"owner": "x"}}, true},
		{"summary without ref", "catalog_get_entity", map[string]any{"title": "A"}, false},
		{"unknown key", "catalog_get_entity", map[string]any{"ref": "a", "secret": "x"}, false},
		{"search page", "catalog_search_entities", SearchEntitiesResult{Items: []any{Summary{Ref: "api:default/a"}}, TotalItems: &total, NextCursor: "c"}, true},
		{"search item not an entity", "catalog_search_entities", map[string]any{"items": []any{"api:default/a"}}, false},
		{"relations", "catalog_get_relations", RelationsResult{Root: "a", Nodes: []Node{{Ref: "a"}}, Edges: []Edge{{From: "a", Type: "ownedBy", To: "b"}}}, true},
		{"relations edge without type", "catalog_get_relations", map[string]any{"root": "a", "nodes": []any{}, "edges": []any{map[string]any{"from": "a", "to": "b"}}}, false},
		{"owner", "catalog_find_owner", OwnerResult{Entity: "a", Owner: "group:default/t", Members: []Person{{Ref: "user:default/u"}}}, true},
		{"api", "catalog_get_api_definition", APIDefinitionResult{Ref: "api:default/a", Type: "openapi", Definition: "x", Bytes: 1}, true},
		{"api bytes as text", "catalog_get_api_definition", map[string]any{"ref": "a", "type": "openapi", "definition": "x", "bytes": "1"}, false},
		{"facets", "catalog_list_facets", FacetsResult{Facet: "spec.type", Values: nil}, true},
		{"whoami", "whoami", Identity{User: "user:default/u", Mode: "oidc"}, true},
		{"whoami without mode", "whoami", map[string]any{"user": "u"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.value)
			if err != nil {
				t.Fatal(err)
			}
			inst, err := sjs.UnmarshalJSON(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			err = schemas[tc.tool].Validate(inst)
			if (err == nil) != tc.ok {
				t.Fatalf("valid=%v, want %v: %s: %v", err == nil, tc.ok, b, err)
			}
		})
	}
}

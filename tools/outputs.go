package tools

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"

	"github.com/google/jsonschema-go/jsonschema"
)

// EntityDocument is a catalog entity as stored (catalog_get_entity with
// detail "full"), or the part of one that the requested fields select.
// It documents the shape for the output schema; the tools pass the
// decoded entity itself.
type EntityDocument struct {
	APIVersion string           `json:"apiVersion,omitempty"`
	Kind       string           `json:"kind,omitempty"`
	Metadata   map[string]any   `json:"metadata,omitempty"`
	Spec       map[string]any   `json:"spec,omitempty"`
	Relations  []map[string]any `json:"relations,omitempty"`
	Status     map[string]any   `json:"status,omitempty"`
}

// outputTypes are the Go types each tool builds its structuredContent
// from. catalog_get_entity and the items of catalog_search_entities are
// a Summary or an EntityDocument, depending on detail and fields.
var outputTypes = map[string]reflect.Type{
	"catalog_get_entity":         nil, // Summary or EntityDocument
	"catalog_search_entities":    reflect.TypeFor[SearchEntitiesResult](),
	"catalog_get_relations":      reflect.TypeFor[RelationsResult](),
	"catalog_find_owner":         reflect.TypeFor[OwnerResult](),
	"catalog_find_dependents":    reflect.TypeFor[DependentsResult](),
	"catalog_get_api_definition": reflect.TypeFor[APIDefinitionResult](),
	"catalog_list_facets":        reflect.TypeFor[FacetsResult](),
	"catalog_list_changes":       reflect.TypeFor[ChangesResult](),
	"whoami":                     reflect.TypeFor[Identity](),
}

// OutputSchema returns the JSON Schema (2020-12) of a tool's
// structuredContent, generated from the Go types that build it.
func OutputSchema(tool string) (json.RawMessage, error) {
	t, ok := outputTypes[tool]
	if !ok {
		return nil, fmt.Errorf("tools: no output type for %q", tool)
	}
	var s *jsonschema.Schema
	var err error
	switch tool {
	case "catalog_get_entity":
		s, err = entityShape()
	case "catalog_search_entities":
		s, err = jsonschema.ForType(t, nil)
		if err == nil {
			var item *jsonschema.Schema
			if item, err = entityShape(); err == nil {
				s.Properties["items"].Items = item
			}
		}
	default:
		s, err = jsonschema.ForType(t, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("tools: output schema of %s: %w", tool, err)
	}
	compact(s, true)
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("tools: output schema of %s: %w", tool, err)
	}
	return b, nil
}

// entityShape is "a Summary, or an EntityDocument".
func entityShape() (*jsonschema.Schema, error) {
	sum, err := jsonschema.For[Summary](nil)
	if err != nil {
		return nil, err
	}
	doc, err := jsonschema.For[EntityDocument](nil)
	if err != nil {
		return nil, err
	}
	// The branches are objects: the type is said once, around them.
	sum.Type, doc.Type = "", ""
	return &jsonschema.Schema{Type: "object", AnyOf: []*jsonschema.Schema{sum, doc}}, nil
}

// compact removes what a reader of the schema learns nothing from, since
// output schemas go to clients and may reach the model (each byte counts
// against the tokens of tools/list): no $schema (2020-12 is MCP's
// default dialect), "additionalProperties": true (the default), "null" in
// the type of an optional list (omitempty never writes null), and
// "additionalProperties": false below the top of each shape (the top
// keeps it, so an unknown key at the level a client reads is refused).
// top is true for the schema of a tool, or for a branch of its anyOf.
func compact(s *jsonschema.Schema, top bool) {
	if s == nil {
		return
	}
	if ap := s.AdditionalProperties; ap != nil {
		switch {
		case ap.Not == nil && ap.Type == "" && ap.Types == nil && ap.Properties == nil && ap.Items == nil:
			s.AdditionalProperties = nil // true
		case ap.Not != nil && !top:
			s.AdditionalProperties = nil // false, nested
		default:
			compact(ap, false)
		}
	}
	for name, p := range s.Properties {
		if len(p.Types) == 2 && p.Types[0] == "null" && !slices.Contains(s.Required, name) {
			p.Type, p.Types = p.Types[1], nil
		}
		compact(p, false)
	}
	compact(s.Items, false)
	for _, b := range s.AnyOf {
		compact(b, top)
	}
}

// withOutputSchema sets the tool's output schema; a tool without one is a
// programming error caught by the schema tests.
func withOutputSchema(t Tool) Tool {
	if s, err := OutputSchema(t.Tool.Name); err == nil {
		t.Tool.RawOutputSchema = s
	}
	return t
}

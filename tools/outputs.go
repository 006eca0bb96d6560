package tools

import (
	"encoding/json"
	"fmt"
	"reflect"

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
	s.Schema = "https://json-schema.org/draft/2020-12/schema"
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
	sum.Description = "compact summary (detail summary, the default)"
	doc, err := jsonschema.For[EntityDocument](nil)
	if err != nil {
		return nil, err
	}
	doc.Description = "the entity as stored (detail full), or the requested fields of it"
	return &jsonschema.Schema{Type: "object", AnyOf: []*jsonschema.Schema{sum, doc}}, nil
}

// withOutputSchema sets the tool's output schema; a tool without one is a
// programming error caught by the schema tests.
func withOutputSchema(t Tool) Tool {
	if s, err := OutputSchema(t.Tool.Name); err == nil {
		t.Tool.RawOutputSchema = s
	}
	return t
}

package tools

import (
	"context"
	"fmt"
	"strings"

	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"github.com/mark3labs/mcp-go/mcp"
)

// Default and maximum bytes of an API definition returned.
const (
	DefaultDefinitionBytes = 20000
	MaxDefinitionBytes     = 200000
)

var apiParams = []param{
	{name: "ref", typ: tString, desc: "e.g. payments-api (kind defaults to api)."},
	{name: "maxBytes", typ: tInt, min: 256, max: MaxDefinitionBytes, def: DefaultDefinitionBytes,
		desc: "Cut the definition here, with a notice."},
}

// APIDefinitionResult is the structured answer of catalog_get_api_definition.
type APIDefinitionResult struct {
	Ref        string `json:"ref"`
	Type       string `json:"type"`
	Lifecycle  string `json:"lifecycle,omitempty"`
	Owner      string `json:"owner,omitempty"`
	Definition string `json:"definition"`
	Bytes      int    `json:"bytes"`
	Truncated  bool   `json:"truncated,omitempty"`
	Notice     string `json:"notice,omitempty"`
}

// GetAPIDefinition is catalog_get_api_definition: the spec text of an API.
func GetAPIDefinition(d *Deps) Tool {
	t := newTool("catalog_get_api_definition", "An API entity's definition (OpenAPI, AsyncAPI, GraphQL, gRPC, …) and type: its operations, messages and schemas.", schema(apiParams, "ref"), "Get API definition")
	h := func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		a, e, res := d.rootEntity(ctx, req, apiParams, "api", func(ref catalog.Ref) error {
			if !strings.EqualFold(ref.Kind, "api") {
				return badArg("%s is a %s, not an API; catalog_get_api_definition takes API refs such as api:default/payments-api (use catalog_get_relations with providesApi to find a component's APIs)", ref.String(), ref.Kind)
			}
			return nil
		})
		if res != nil {
			return res, nil
		}
		def := str(e.m, "spec", "definition")
		out := APIDefinitionResult{
			Ref:       e.ref,
			Type:      str(e.m, "spec", "type"),
			Lifecycle: str(e.m, "spec", "lifecycle"),
			Owner:     refField(e.m, "ownedBy", "owner", "group"),
			Bytes:     len(def),
		}
		limit := a.num("maxBytes", DefaultDefinitionBytes)
		if len(def) > limit {
			cut := limit
			for cut > 0 && (def[cut]&0xC0) == 0x80 {
				cut--
			}
			def = def[:cut]
			out.Truncated = true
			out.Notice = fmt.Sprintf("definition cut to the first %d of %d bytes; call again with a larger maxBytes (up to %d) for more", cut, out.Bytes, MaxDefinitionBytes)
		}
		out.Definition = def
		head := fmt.Sprintf("%s (%s API, %d bytes)", out.Ref, out.Type, out.Bytes)
		if out.Truncated {
			head += "\nNOTICE: " + out.Notice
		}
		return result(out, head+"\n"+def), nil
	}
	return Tool{Tool: t, Handler: h, Answer: "A head with the API's ref, type and size, then the definition as stored (secrets redacted), cut to maxBytes with a notice saying how to get more.", Scope: ScopeAPIDefinitions}
}

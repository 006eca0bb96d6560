package tools

import (
	"net/url"
	"strings"

	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"github.com/mark3labs/mcp-go/mcp"
)

// ResourceScheme is the prefix of the catalog's resource URIs: an entity
// is ResourceScheme + kind/namespace/name, and an API's definition is that
// URI + DefinitionSuffix.
const (
	ResourceScheme   = "backstage://catalog/"
	DefinitionSuffix = "/definition"
)

// EntityURI is the resource URI of an entity ref, or "" for an invalid one.
func EntityURI(ref string) string {
	r, err := catalog.ParseRef(ref, "")
	if err != nil {
		return ""
	}
	return ResourceScheme + url.PathEscape(strings.ToLower(r.Kind)) + "/" + url.PathEscape(strings.ToLower(r.Namespace)) + "/" + url.PathEscape(r.Name)
}

// DefinitionMIME maps an API's spec.type to the media type of its
// definition.
func DefinitionMIME(typ string) string {
	switch strings.ToLower(typ) {
	case "openapi":
		return "application/vnd.oai.openapi"
	case "asyncapi":
		return "application/vnd.aai.asyncapi"
	case "graphql":
		return "application/graphql"
	case "grpc":
		return "text/x-protobuf"
	default:
		return "text/plain"
	}
}

// withLinks appends a resource link for each entity ref (owner, system,
// the API's definition), so that a client can attach them as context
// without another tool call. The refs are ones the result already names;
// reading a link goes through the same checks as the tools. The links
// reach the model with the text (about 40 tokens each), so a result
// links only what an engineer acts on or the text lacks.
func withLinks(res *mcp.CallToolResult, links ...link) *mcp.CallToolResult {
	seen := map[string]bool{}
	for _, l := range links {
		uri := EntityURI(l.ref)
		if uri == "" {
			continue
		}
		mime := "application/json"
		if l.definition {
			uri += DefinitionSuffix
			mime = DefinitionMIME(l.apiType)
		}
		if seen[uri] {
			continue
		}
		seen[uri] = true
		res.Content = append(res.Content, mcp.NewResourceLink(uri, l.ref, l.description, mime))
	}
	return res
}

// link is one resource link of a tool result.
type link struct {
	ref, description string
	// definition links the API's definition, of spec.type apiType.
	definition bool
	apiType    string
}

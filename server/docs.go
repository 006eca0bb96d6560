package server

import (
	"fmt"
	"strings"

	"github.com/backstage-mcp/backstage-mcp/tools"
)

// CatalogReference renders the README's reference of the resources,
// prompts and completions from their definitions; a test keeps it fresh.
func CatalogReference() string {
	var b strings.Builder
	b.WriteString("| resource template | media type | what it reads | needs the tool |\n|---|---|---|---|\n")
	fmt.Fprintf(&b, "| `%s` | `%s` | the entity as stored, masked and redacted | `%s` |\n", entityTemplate, mimeJSON, resourceEntityTool)
	fmt.Fprintf(&b, "| `%s` | by `spec.type`: %s | the API's definition, up to 256 KiB | `%s` |\n",
		definitionTemplate, strings.Join([]string{"`" + definitionMIME("openapi") + "`", "`" + definitionMIME("asyncapi") + "`",
			"`" + definitionMIME("graphql") + "`", "`" + definitionMIME("grpc") + "`", "`" + definitionMIME("other") + "`"}, ", "), resourceAPITool)
	fmt.Fprintf(&b, "\n`resources/list` pages (%d a page) over the entities the caller may see, through `%s`.\n", resourcePageSize, resourceListTool)
	b.WriteString("\n| prompt | argument | tools it names (listed only when all are granted) |\n|---|---|---|\n")
	for _, p := range tools.Prompts() {
		arg := "`ref`"
		switch {
		case p.Since:
			arg = "`since`, optional (24h, 7d or an RFC 3339 time; 7d); listed in catalog mirror mode only"
		case p.Kind != "":
			arg += " (" + p.Kind + ")"
		}
		names := make([]string, len(p.Tools))
		for i, t := range p.Tools {
			names[i] = "`" + t + "`"
		}
		fmt.Fprintf(&b, "| `%s`: %s | %s | %s |\n", p.Name, p.Title, arg, strings.Join(names, ", "))
	}
	b.WriteString("\n| completion | completes from | call made |\n|---|---|---|\n")
	b.WriteString("| prompt argument `ref` | entity refs as typed (`orders`, `component:ord`, `component:default/ord`) | `catalog_search_entities` |\n")
	b.WriteString("| template variable `kind` | kinds of entities the caller may see | `catalog_list_facets` (kind) |\n")
	b.WriteString("| template variable `namespace` | namespaces of those entities (of `kind` when given) | `catalog_list_facets` (metadata.namespace) |\n")
	b.WriteString("| template variable `name` | names (of `kind` and `namespace` when given) | `catalog_search_entities` |\n")
	return b.String()
}

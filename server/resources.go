package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/backstage-mcp/backstage-mcp/redact"
	"strings"

	"github.com/backstage-mcp/backstage-mcp/tools"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
)

// Resource URIs. An entity is backstage://catalog/{kind}/{namespace}/{name}
// (its whole stored form, as JSON); an API's definition is the same URI
// with /definition, in the definition's own media type.
const (
	entityTemplate       = tools.ResourceScheme + "{kind}/{namespace}/{name}"
	definitionTemplate   = tools.ResourceScheme + "api/{namespace}/{name}" + tools.DefinitionSuffix
	resourcePageSize     = 50
	resourceListTool     = "catalog_search_entities"
	resourceEntityTool   = "catalog_get_entity"
	resourceAPITool      = "catalog_get_api_definition"
	mimeJSON             = "application/json"
	maxResourceURILength = 1024
)

// EntityURI is the resource URI of an entity ref (kind:namespace/name).
func EntityURI(ref string) string { return tools.EntityURI(ref) }

// definitionMIME maps an API's spec.type to the media type of its
// definition.
func definitionMIME(typ string) string { return tools.DefinitionMIME(typ) }

// listResourcesPage is one page of resources/list, put through the chain
// (see register). It fails closed: on error nothing is listed (the call is
// audited).
func (s *Server) listResourcesPage(ctx context.Context, cursor string) ([]mcp.Resource, mcp.Cursor) {
	items, next, err := s.listResources(ctx, cursor)
	if err != nil {
		s.log.WarnContext(ctx, "resources/list refused", "err", err)
		return []mcp.Resource{}, ""
	}
	return items, mcp.Cursor(next)
}

// addResources registers the templates on the mcp-go server.
func (s *Server) addResources() {
	s.mcp.AddResourceTemplate(mcp.NewResourceTemplate(entityTemplate, "catalog-entity",
		mcp.WithTemplateDescription("A Backstage catalog entity as stored (JSON), limited to what you may see and with secrets redacted. kind, namespace and name are lower case, e.g. backstage://catalog/component/default/orders-service."),
		mcp.WithTemplateMIMEType(mimeJSON)), s.readEntityResource)
	s.mcp.AddResourceTemplate(mcp.NewResourceTemplate(definitionTemplate, "api-definition",
		mcp.WithTemplateDescription("The definition of a Backstage API entity (OpenAPI, AsyncAPI, GraphQL, gRPC), in its own media type, up to 256 KiB.")),
		s.readDefinitionResource)
}

// resourceCall runs one tools/call through the chain on behalf of a
// resource or completion request. convert runs inside the tool stage and
// turns the tool's own result into the content the request returns; what
// it builds is egressed like any tool result.
func (s *Server) resourceCall(ctx context.Context, tool string, args map[string]any,
	convert func(*mcp.CallToolResult) (*mcp.CallToolResult, error)) (*mcp.CallToolResult, error) {
	return s.cachedCall(ctx, tool, args, nil, convert)
}

// cachedCall is resourceCall with a cache in the tool stage: hit, when
// not nil, may answer in place of the tool handler (its answer is still
// audited and egressed like the tool's). It runs inside the tool stage,
// after grant, rate limit and authorization, so a cached answer is never
// given to a caller the chain refused.
func (s *Server) cachedCall(ctx context.Context, tool string, args map[string]any,
	hit func(context.Context) *mcp.CallToolResult,
	convert func(*mcp.CallToolResult) (*mcp.CallToolResult, error)) (*mcp.CallToolResult, error) {
	t, ok := s.tools[tool]
	if !ok {
		return nil, fmt.Errorf("server: no tool %q", tool)
	}
	raw, err := json.Marshal(args)
	if err != nil {
		return nil, fmt.Errorf("server: encode arguments: %w", err)
	}
	req := mcp.CallToolRequest{}
	req.Params.Name = tool
	req.Params.RawArguments = raw
	req.Params.Arguments = json.RawMessage(raw)
	inner := func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		if hit != nil {
			if res := hit(ctx); res != nil {
				return res, nil
			}
		}
		res, err := t.Handler(ctx, req)
		if err != nil || res == nil || res.IsError {
			return res, err
		}
		return convert(res)
	}
	return s.call(ctx, req, inner)
}

// readEntityResource reads backstage://catalog/{kind}/{namespace}/{name}.
func (s *Server) readEntityResource(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
	uri := req.Params.URI
	ref, err := refFromVars(req.Params.Arguments, "")
	if err != nil {
		return nil, s.notFound(uri)
	}
	res, err := s.resourceCall(ctx, resourceEntityTool, map[string]any{"ref": ref, "detail": "full"},
		func(r *mcp.CallToolResult) (*mcp.CallToolResult, error) {
			b, err := json.Marshal(r.StructuredContent)
			if err != nil {
				return nil, fmt.Errorf("server: encode entity: %w", err)
			}
			return &mcp.CallToolResult{Content: []mcp.Content{mcp.NewEmbeddedResource(mcp.TextResourceContents{
				URI: uri, MIMEType: mimeJSON, Text: string(b)})}}, nil
		})
	return s.resourceContents(uri, res, err)
}

// readDefinitionResource reads backstage://catalog/api/{namespace}/{name}/definition.
func (s *Server) readDefinitionResource(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
	uri := req.Params.URI
	vars := map[string]any{"kind": "api"}
	for k, v := range req.Params.Arguments {
		vars[k] = v
	}
	ref, err := refFromVars(vars, "api")
	if err != nil {
		return nil, s.notFound(uri)
	}
	res, err := s.resourceCall(ctx, resourceAPITool, map[string]any{"ref": ref, "maxBytes": tools.MaxDefinitionBytes},
		func(r *mcp.CallToolResult) (*mcp.CallToolResult, error) {
			b, err := json.Marshal(r.StructuredContent)
			if err != nil {
				return nil, fmt.Errorf("server: encode definition: %w", err)
			}
			var def tools.APIDefinitionResult
			if err := json.Unmarshal(b, &def); err != nil {
				return nil, fmt.Errorf("server: decode definition: %w", err)
			}
			c := mcp.TextResourceContents{URI: uri, MIMEType: definitionMIME(def.Type), Text: def.Definition}
			if def.Truncated {
				c.Meta = map[string]any{"truncated": true, "notice": def.Notice}
			}
			return &mcp.CallToolResult{Content: []mcp.Content{mcp.NewEmbeddedResource(c)}}, nil
		})
	return s.resourceContents(uri, res, err)
}

// refFromVars builds a ref from the template variables. mcp-go hands them
// over as strings or, for exploded variables, lists; anything else is no
// entity.
func refFromVars(vars map[string]any, defKind string) (string, error) {
	get := func(k string) string {
		switch v := vars[k].(type) {
		case string:
			return v
		case []string:
			if len(v) == 1 {
				return v[0]
			}
		}
		return ""
	}
	kind, ns, name := get("kind"), get("namespace"), get("name")
	if kind == "" {
		kind = defKind
	}
	if kind == "" || ns == "" || name == "" {
		return "", errors.New("server: incomplete entity URI")
	}
	r, err := catalog.NewRef(kind, ns, name)
	if err != nil {
		return "", fmt.Errorf("server: %w", err)
	}
	return r.String(), nil
}

// resourceContents takes the egressed contents out of a chain result. A
// tool error (hidden and missing entities alike) is "resource not found";
// any other refusal keeps its (egressed) message.
func (s *Server) resourceContents(uri string, res *mcp.CallToolResult, err error) ([]mcp.ResourceContents, error) {
	if errors.Is(err, mcpserver.ErrToolNotFound) {
		return nil, s.notFound(uri)
	}
	if err != nil {
		return nil, err
	}
	if res == nil {
		return nil, s.notFound(uri)
	}
	if res.IsError {
		msg := resultText(res)
		if strings.Contains(msg, "not found") {
			return nil, s.notFound(uri)
		}
		return nil, errors.New(msg)
	}
	out := make([]mcp.ResourceContents, 0, len(res.Content))
	for _, c := range res.Content {
		if e, ok := c.(mcp.EmbeddedResource); ok {
			out = append(out, e.Resource)
		}
	}
	return out, nil
}

// notFoundResource is the one answer for a hidden and a missing entity.
// mcp-go v1.2.1 answers every error of a resource template handler with
// -32603 (handlerError in its server/handler_errors.go), so the spec's
// -32002 cannot be sent from here; the message says "not found".
func notFoundResource(uri string) error {
	return fmt.Errorf("resource %s not found: %w", redact.Clip(uri, maxResourceURILength), mcpserver.ErrResourceNotFound)
}

// notFound is notFoundResource with the URI passed through egress first:
// mcp-go writes the error text back to the caller, so the URI the caller
// sent is quoted only as redacted (a URI that cannot be redacted is not
// quoted at all).
func (s *Server) notFound(uri string) error {
	clean, _, err := s.out.text("uri", uri, nil)
	if err != nil {
		clean = "(withheld)"
	}
	return notFoundResource(clean)
}

// listResources is one page of resources/list: the entities the caller
// may see, through the search tool and so through the chain. The cursor
// is the search tool's sealed cursor in standard base64 (mcp-go decodes
// it before this runs).
func (s *Server) listResources(ctx context.Context, cursor string) ([]mcp.Resource, string, error) {
	args := map[string]any{"limit": resourcePageSize, "order": "metadata.name"}
	if cursor != "" {
		b, err := base64.StdEncoding.DecodeString(cursor)
		if err != nil {
			return nil, "", fmt.Errorf("server: resources/list cursor: %w", err)
		}
		args = map[string]any{"limit": resourcePageSize, "cursor": string(b)}
	}
	var items []mcp.Resource
	next := ""
	res, err := s.resourceCall(ctx, resourceListTool, args, func(r *mcp.CallToolResult) (*mcp.CallToolResult, error) {
		b, err := json.Marshal(r.StructuredContent)
		if err != nil {
			return nil, fmt.Errorf("server: encode page: %w", err)
		}
		var page struct {
			Items      []tools.Summary `json:"items"`
			NextCursor string          `json:"nextCursor"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			return nil, fmt.Errorf("server: decode page: %w", err)
		}
		out := &mcp.CallToolResult{StructuredContent: map[string]any{"nextCursor": page.NextCursor}}
		for _, it := range page.Items {
			uri := EntityURI(it.Ref)
			if uri == "" {
				continue
			}
			l := mcp.NewResourceLink(uri, it.Ref, it.Description, mimeJSON)
			l.Title = it.Title
			out.Content = append(out.Content, l)
		}
		return out, nil
	})
	if err != nil {
		return nil, "", err
	}
	if res == nil {
		return nil, "", errors.New("server: resources/list: no result")
	}
	if res.IsError {
		return nil, "", errors.New("server: resources/list: " + resultText(res))
	}
	for _, c := range res.Content {
		if l, ok := c.(mcp.ResourceLink); ok {
			items = append(items, mcp.Resource{URI: l.URI, Name: l.Name, Title: l.Title, Description: l.Description, MIMEType: l.MIMEType})
		}
	}
	if m, ok := res.StructuredContent.(json.RawMessage); ok {
		var sc struct {
			NextCursor string `json:"nextCursor"`
		}
		if json.Unmarshal(m, &sc) == nil && sc.NextCursor != "" {
			next = base64.StdEncoding.EncodeToString([]byte(sc.NextCursor))
		}
	}
	if items == nil {
		items = []mcp.Resource{}
	}
	return items, next, nil
}

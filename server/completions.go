package server

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/backstage-mcp/backstage-mcp/tools"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"github.com/mark3labs/mcp-go/mcp"
)

// maxCompletions is the MCP limit on values in one completion.
const maxCompletions = 100

// completer answers completion/complete for the prompts' ref argument and
// the resource templates' variables. Every answer is a catalog call made
// through the chain (resourceCall): the caller's grant decides what can
// be completed, the call spends rate limit, leaves an audit record and
// passes egress. Values come only from entities the caller may see, so a
// hidden entity completes exactly like a missing one: not at all.
type completer struct{ s *Server }

// CompletePromptArgument completes the ref argument of a prompt.
func (c completer) CompletePromptArgument(ctx context.Context, prompt string, arg mcp.CompleteArgument, _ mcp.CompleteContext) (*mcp.Completion, error) {
	if arg.Name != "ref" {
		return emptyCompletion(), nil
	}
	kind := ""
	for _, p := range catalogPrompts {
		if p.name == prompt {
			kind = p.kind
		}
	}
	return c.refs(ctx, kind, arg.Value)
}

// CompleteResourceArgument completes {kind}, {namespace} and {name} of the
// resource templates; the variables already given narrow the others.
func (c completer) CompleteResourceArgument(ctx context.Context, uri string, arg mcp.CompleteArgument, cc mcp.CompleteContext) (*mcp.Completion, error) {
	kind := cc.Arguments["kind"]
	if uri == definitionTemplate {
		kind = "api"
	}
	switch arg.Name {
	case "kind":
		return c.facet(ctx, "kind", "", arg.Value, strings.ToLower)
	case "namespace":
		return c.facet(ctx, "metadata.namespace", kind, arg.Value, nil)
	case "name":
		return c.names(ctx, kind, cc.Arguments["namespace"], arg.Value, func(s tools.Summary) string {
			r, err := catalog.ParseRef(s.Ref, "")
			if err != nil {
				return ""
			}
			return r.Name
		})
	default:
		return emptyCompletion(), nil
	}
}

// refs completes an entity ref as typed: "orders" (a name prefix, of
// kind when given), "component:orders", "component:default/ord".
func (c completer) refs(ctx context.Context, kind, typed string) (*mcp.Completion, error) {
	typed = strings.TrimSpace(typed)
	ns, prefix := "", typed
	if k, rest, ok := strings.Cut(typed, ":"); ok {
		kind, prefix = k, rest
	}
	if n, rest, ok := strings.Cut(prefix, "/"); ok {
		ns, prefix = n, rest
	}
	return c.names(ctx, kind, ns, prefix, func(s tools.Summary) string { return s.Ref })
}

// names completes entity names starting with prefix (case-insensitive),
// rendered by show, from a search made through the chain.
func (c completer) names(ctx context.Context, kind, ns, prefix string, show func(tools.Summary) string) (*mcp.Completion, error) {
	args := map[string]any{"limit": maxCompletions, "order": "metadata.name"}
	if kind != "" {
		if catalog.ValidateKind(kind) != nil {
			return emptyCompletion(), nil
		}
		args["kind"] = kind
	}
	if ns != "" {
		if catalog.ValidateNamespace(ns) != nil {
			return emptyCompletion(), nil
		}
		args["namespace"] = ns
	}
	if prefix != "" {
		if len(prefix) > 128 {
			return emptyCompletion(), nil
		}
		args["text"] = prefix
	}
	lower := strings.ToLower(prefix)
	res, err := c.s.resourceCall(ctx, "catalog_search_entities", args, func(r *mcp.CallToolResult) (*mcp.CallToolResult, error) {
		var values []string
		var page struct {
			Items []tools.Summary `json:"items"`
		}
		if err := remarshal(r.StructuredContent, &page); err != nil {
			return nil, err
		}
		for _, it := range page.Items {
			r, err := catalog.ParseRef(it.Ref, "")
			if err != nil || !strings.HasPrefix(strings.ToLower(r.Name), lower) {
				continue
			}
			if v := show(it); v != "" {
				values = append(values, v)
			}
		}
		return completionResult(values), nil
	})
	return completion(res, err), nil
}

// facet completes the values of a facet starting with prefix.
func (c completer) facet(ctx context.Context, facet, kind, prefix string, norm func(string) string) (*mcp.Completion, error) {
	args := map[string]any{"facet": facet}
	if kind != "" {
		if catalog.ValidateKind(kind) != nil {
			return emptyCompletion(), nil
		}
		args["kind"] = kind
	}
	lower := strings.ToLower(prefix)
	res, err := c.s.resourceCall(ctx, "catalog_list_facets", args, func(r *mcp.CallToolResult) (*mcp.CallToolResult, error) {
		var values []string
		var out tools.FacetsResult
		if err := remarshal(r.StructuredContent, &out); err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		for _, v := range out.Values {
			s := v.Value
			if norm != nil {
				s = norm(s)
			}
			if strings.HasPrefix(strings.ToLower(s), lower) && !seen[s] {
				seen[s] = true
				values = append(values, s)
			}
		}
		sort.Strings(values)
		return completionResult(values), nil
	})
	return completion(res, err), nil
}

// completion takes the values out of the egressed chain result. A
// refused call (no grant, rate limited, Backstage down) completes
// nothing, like a hidden entity; a value that egress redacted is dropped,
// since a redaction marker is no value to complete.
func completion(res *mcp.CallToolResult, err error) *mcp.Completion {
	if err != nil || res == nil || res.IsError || len(res.Content) != 1 {
		return emptyCompletion()
	}
	t, ok := res.Content[0].(mcp.TextContent)
	if !ok || t.Text == "" {
		return emptyCompletion()
	}
	out := []string{}
	for _, v := range strings.Split(t.Text, "\n") {
		if v != "" && !strings.Contains(v, "[REDACTED:") {
			out = append(out, v)
		}
	}
	if len(out) > maxCompletions {
		return &mcp.Completion{Values: out[:maxCompletions], HasMore: true}
	}
	return &mcp.Completion{Values: out}
}

// completionResult is the tool-shaped result egress sees: the values as
// text, one a line.
func completionResult(values []string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{mcp.NewTextContent(strings.Join(values, "\n"))}}
}

func emptyCompletion() *mcp.Completion { return &mcp.Completion{Values: []string{}} }

func remarshal(in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("server: completion: %w", err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("server: completion: %w", err)
	}
	return nil
}

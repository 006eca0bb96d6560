package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// The MCP floor is what any MCP server in front of Backstage costs at
// least on this machine: the same two tools as backstage-mcp's
// (catalog_get_entity, catalog_search_entities, with the same arguments),
// served by mcp-go over Streamable HTTP with its defaults, each forwarding
// one REST request to Backstage and returning Backstage's body as the text
// content. No policy, no redaction, no audit, no rate limit, no
// projection: the MCP transport (server and the bench's mcp-go client) on
// top of the REST floor. It runs in the floor proxy's process, under /mcp.

// mcpFloorTimeout bounds each forwarded request.
const mcpFloorTimeout = 60 * time.Second

// newMCPFloor returns the MCP floor's handler forwarding to target with
// token.
func newMCPFloor(target *url.URL, token string) http.Handler {
	hc := &http.Client{Transport: newRESTTransport(false), Timeout: mcpFloorTimeout}
	get := func(ctx context.Context, path string) (*mcp.CallToolResult, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(target.String(), "/")+path, nil)
		if err != nil {
			return nil, fmt.Errorf("mcp floor: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("mcp floor: %w", err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		if err != nil {
			return nil, fmt.Errorf("mcp floor: %w", err)
		}
		if resp.StatusCode/100 != 2 {
			return mcp.NewToolResultError(fmt.Sprintf("Backstage answered %d", resp.StatusCode)), nil
		}
		return mcp.NewToolResultText(string(body)), nil
	}
	s := server.NewMCPServer("bench-mcp-floor", "1.0", server.WithToolCapabilities(false))
	s.AddTool(mcp.NewTool("catalog_get_entity", mcp.WithString("ref", mcp.Required())),
		func(ctx context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			ref, err := r.RequireString("ref")
			if err != nil {
				return mcp.NewToolResultError(err.Error()), nil
			}
			kind, rest, ok := strings.Cut(ref, ":")
			ns, name, ok2 := strings.Cut(rest, "/")
			if !ok || !ok2 {
				return mcp.NewToolResultError("ref must be kind:namespace/name"), nil
			}
			return get(ctx, "/api/catalog/entities/by-name/"+url.PathEscape(kind)+"/"+url.PathEscape(ns)+"/"+url.PathEscape(name))
		})
	s.AddTool(mcp.NewTool("catalog_search_entities",
		mcp.WithString("kind", mcp.Required()), mcp.WithString("owner", mcp.Required()), mcp.WithNumber("limit")),
		func(ctx context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			kind, err := r.RequireString("kind")
			if err != nil {
				return mcp.NewToolResultError(err.Error()), nil
			}
			owner, err := r.RequireString("owner")
			if err != nil {
				return mcp.NewToolResultError(err.Error()), nil
			}
			v := url.Values{}
			v.Set("filter", "kind="+strings.ToLower(kind)+",relations.ownedBy=group:default/"+owner)
			v.Set("limit", fmt.Sprint(r.GetInt("limit", 20)))
			return get(ctx, "/api/catalog/entities/by-query?"+v.Encode())
		})
	return server.NewStreamableHTTPServer(s)
}

// The empty-answer floor is the MCP transport alone: the same two tools,
// served by mcp-go over Streamable HTTP with its defaults, answering every
// call at once with the same tiny text and asking nothing of Backstage. No
// MCP answer costs less on this machine; it is the floor of the mirror,
// which answers without Backstage too. Served under /mcp-empty.

// emptyAnswer is the text every empty-floor call returns.
const emptyAnswer = `{"ok":true}`

// newMCPEmpty returns the empty-answer floor's handler.
func newMCPEmpty() http.Handler {
	s := server.NewMCPServer("bench-mcp-empty", "1.0", server.WithToolCapabilities(false))
	answer := func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText(emptyAnswer), nil
	}
	s.AddTool(mcp.NewTool("catalog_get_entity", mcp.WithString("ref", mcp.Required())), answer)
	s.AddTool(mcp.NewTool("catalog_search_entities",
		mcp.WithString("kind", mcp.Required()), mcp.WithString("owner", mcp.Required()), mcp.WithNumber("limit")), answer)
	return server.NewStreamableHTTPServer(s)
}

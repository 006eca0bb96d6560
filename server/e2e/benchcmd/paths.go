package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// Question kinds.
const (
	qGet       = "get"       // one entity by ref
	qSearch    = "search"    // entities of a kind owned by a team
	qRelations = "relations" // outgoing relations, depth 1 (ours only)
	qOwner     = "owner"     // who owns it (ours only)
)

// question is one question asked the same way of every path.
type question struct {
	Kind string
	Ref  entityRef // get, relations, owner
	Team string    // search: owner team name
	Of   string    // search: entity kind, e.g. Component
	Full bool      // ours: detail=full instead of the default summary
}

// answer is what a path returned.
type answer struct {
	// Text is what an MCP client passes its model: the concatenated text
	// content (for REST, the body).
	Text string
	// Raw is the whole result as sent: for MCP, the JSON of the
	// CallToolResult (content and structuredContent); for REST, the body.
	Raw []byte
	// ToolError is true for an MCP result with isError, or a non-2xx REST
	// status.
	ToolError bool
}

// caller asks questions of one path. A caller is used by one goroutine.
type caller interface {
	call(ctx context.Context, q question, keepRaw bool) (answer, error)
	close()
}

// errUnsupported is returned for a question a path cannot answer.
var errUnsupported = errors.New("benchcmd: question not supported by this path")

// newTransport returns an HTTP transport that keeps enough idle
// connections for the highest concurrency, so no path pays for new TCP
// connections during a phase.
func newTransport() *http.Transport {
	return &http.Transport{
		MaxIdleConns:        512,
		MaxIdleConnsPerHost: 512,
		IdleConnTimeout:     90 * time.Second,
	}
}

// newRESTTransport is newTransport for the REST and floor clients. Go's
// transport asks for gzip unless told not to; Backstage then compresses
// every answer on its single Node thread. Without gzip the baseline is the
// cheaper and stricter one.
func newRESTTransport(gzip bool) *http.Transport {
	t := newTransport()
	t.DisableCompression = !gzip
	return t
}

// mcpCaller is an MCP client over Streamable HTTP, one session.
type mcpCaller struct {
	c       *client.Client
	ours    bool
	getTool string
	qryTool string
}

// dialMCP connects and initializes one MCP session.
func dialMCP(ctx context.Context, endpoint string, hc *http.Client, headers map[string]string, ours bool) (*mcpCaller, error) {
	opts := []transport.StreamableHTTPCOption{transport.WithHTTPBasicClient(hc)}
	if len(headers) > 0 {
		opts = append(opts, transport.WithHTTPHeaders(headers))
	}
	c, err := client.NewStreamableHttpClient(endpoint, opts...)
	if err != nil {
		return nil, fmt.Errorf("benchcmd: mcp client: %w", err)
	}
	if err := c.Start(ctx); err != nil {
		return nil, fmt.Errorf("benchcmd: mcp start: %w", err)
	}
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	req.Params.ClientInfo = mcp.Implementation{Name: "backstage-mcp-bench", Version: "1.0"}
	if _, err := c.Initialize(ctx, req); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("benchcmd: mcp initialize %s: %w", endpoint, err)
	}
	m := &mcpCaller{c: c, ours: ours, getTool: "catalog_get_entity", qryTool: "catalog_search_entities"}
	if !ours {
		m.getTool, m.qryTool = "", ""
		tl, err := c.ListTools(ctx, mcp.ListToolsRequest{})
		if err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("benchcmd: peer tools/list: %w", err)
		}
		for _, t := range tl.Tools {
			switch {
			case strings.HasSuffix(t.Name, "get-catalog-entity"):
				m.getTool = t.Name
			case strings.HasSuffix(t.Name, "query-catalog-entities"):
				m.qryTool = t.Name
			}
		}
		if m.getTool == "" || m.qryTool == "" {
			_ = c.Close()
			return nil, fmt.Errorf("benchcmd: the peer lists no get-catalog-entity/query-catalog-entities tools (is backend.actions.pluginSources set?)")
		}
	}
	return m, nil
}

func (m *mcpCaller) close() { _ = m.c.Close() }

func (m *mcpCaller) call(ctx context.Context, q question, keepRaw bool) (answer, error) {
	var name string
	var args map[string]any
	switch {
	case m.ours && q.Kind == qGet:
		name, args = m.getTool, map[string]any{"ref": q.Ref.String()}
		if q.Full {
			args["detail"] = "full"
		}
	case m.ours && q.Kind == qSearch:
		name, args = m.qryTool, map[string]any{"kind": q.Of, "owner": q.Team, "limit": 20}
	case m.ours && q.Kind == qRelations:
		name, args = "catalog_get_relations", map[string]any{"ref": q.Ref.String()}
	case m.ours && q.Kind == qOwner:
		name, args = "catalog_find_owner", map[string]any{"ref": q.Ref.String()}
	case !m.ours && q.Kind == qGet:
		name, args = m.getTool, map[string]any{"kind": q.Ref.Kind, "namespace": q.Ref.Namespace, "name": q.Ref.Name}
	case !m.ours && q.Kind == qSearch:
		name, args = m.qryTool, map[string]any{
			"query": map[string]any{"kind": q.Of, "relations.ownedby": "group:default/" + q.Team},
			"limit": 20,
		}
	default:
		return answer{}, errUnsupported
	}
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	res, err := m.c.CallTool(ctx, req)
	if err != nil {
		return answer{}, fmt.Errorf("benchcmd: %s: %w", name, err)
	}
	var a answer
	a.ToolError = res.IsError
	var b strings.Builder
	for _, c := range res.Content {
		if t, ok := c.(mcp.TextContent); ok {
			b.WriteString(t.Text)
		}
	}
	a.Text = b.String()
	if keepRaw {
		a.Raw, err = json.Marshal(res)
		if err != nil {
			return answer{}, fmt.Errorf("benchcmd: encode result: %w", err)
		}
	}
	return a, nil
}

// restCaller calls Backstage's catalog REST API directly.
type restCaller struct {
	base  string
	token string
	hc    *http.Client
}

func (r *restCaller) close() {}

func (r *restCaller) call(ctx context.Context, q question, keepRaw bool) (answer, error) {
	var path string
	switch q.Kind {
	case qGet:
		path = "/api/catalog/entities/by-name/" + url.PathEscape(q.Ref.Kind) + "/" + url.PathEscape(q.Ref.Namespace) + "/" + url.PathEscape(q.Ref.Name)
	case qSearch:
		v := url.Values{}
		v.Set("filter", "kind="+strings.ToLower(q.Of)+",relations.ownedBy=group:default/"+q.Team)
		v.Set("limit", "20")
		path = "/api/catalog/entities/by-query?" + v.Encode()
	default:
		return answer{}, errUnsupported
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.base+path, nil)
	if err != nil {
		return answer{}, fmt.Errorf("benchcmd: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	resp, err := r.hc.Do(req)
	if err != nil {
		return answer{}, fmt.Errorf("benchcmd: GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return answer{}, fmt.Errorf("benchcmd: GET %s: %w", path, err)
	}
	a := answer{Text: string(body), ToolError: resp.StatusCode/100 != 2}
	if keepRaw {
		a.Raw = body
	}
	return a, nil
}

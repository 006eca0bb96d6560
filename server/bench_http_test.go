package server

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/server/internal/servertest"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
)

// BenchmarkHTTPToolCall is one tools/call through the whole handler the
// server listens with (origin check, body limit, session lifecycle, ingress
// redaction, the JSON-RPC interop rules, mcp-go's Streamable HTTP, the tool
// and its audit record), without a network: the server's own CPU per call
// over Streamable HTTP, which BenchmarkGetEntity (JSON-RPC straight into
// mcp-go) leaves out. The request replayed is the one mcp-go's client
// sends (its latest protocol revision, headers and _meta included),
// captured once. floor/get is mcp-go's Streamable HTTP server alone with
// the same tool definition, answering the same bytes without doing
// anything: the least any server built on mcp-go spends on that call.
func BenchmarkHTTPToolCall(b *testing.B) {
	s := newBenchServer(b)
	get := `{"ref":"component:default/checkout-service"}`
	cases := []struct{ name, tool, args string }{
		{"get/summary", "catalog_get_entity", get},
		{"search/kind=component,limit=20", "catalog_search_entities", `{"kind":"Component","limit":20}`},
	}
	h := s.Handler()
	for _, tc := range cases {
		req := captureCall(b, h, tc.tool, tc.args)
		b.Run(tc.name, func(b *testing.B) { replayCall(b, h, req) })
	}

	floor := mcpserver.NewMCPServer("floor", "1")
	answer := callText(b, s, "catalog_get_entity", get)
	floor.AddTool(s.MCP().GetTool("catalog_get_entity").Tool, func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText(answer), nil
	})
	fh := mcpserver.NewStreamableHTTPServer(floor, mcpserver.WithEndpointPath("/mcp"))
	req := captureCall(b, fh, "catalog_get_entity", get)
	b.Run("floor/get", func(b *testing.B) { replayCall(b, fh, req) })
}

// sentRequest is an HTTP request as a client sent it.
type sentRequest struct {
	header http.Header
	body   []byte
}

// captureCall connects mcp-go's client to h over a loopback listener, makes
// one tools/call and returns that request as sent.
func captureCall(b *testing.B, h http.Handler, tool, args string) sentRequest {
	b.Helper()
	var (
		mu   sync.Mutex
		got  sentRequest
		want = []byte(`"method":"tools/call"`)
	)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if bytes.Contains(body, want) {
			mu.Lock()
			got = sentRequest{header: r.Header.Clone(), body: body}
			mu.Unlock()
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		h.ServeHTTP(w, r)
	}))
	defer hs.Close()
	c := servertest.ConnectHTTP(b, hs.URL+"/mcp", "")
	if res := servertest.Call(b, c, tool, args); res.IsError {
		b.Fatalf("%s: tool error: %+v", tool, res.Content)
	}
	_ = c.Close()
	mu.Lock()
	defer mu.Unlock()
	if got.body == nil {
		b.Fatal("no tools/call request seen")
	}
	return got
}

// replayCall sends req to h once per iteration and checks the answer.
func replayCall(b *testing.B, h http.Handler, req sentRequest) {
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, "/mcp", bytes.NewReader(req.body))
		r.Header = req.header.Clone()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if out := rec.Body.String(); rec.Code != http.StatusOK || !strings.Contains(out, `"result"`) || strings.Contains(out, `"isError":true`) {
			b.Fatalf("HTTP %d: %s", rec.Code, out)
		}
	}
}

// callText is the text of a tool's answer, asked in process.
func callText(b testing.TB, s *Server, tool, args string) string {
	b.Helper()
	initSession(b, s)
	msg := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + tool + `","arguments":` + args + `}}`
	res := s.MCP().HandleMessage(context.Background(), []byte(msg))
	mustOK(b, res)
	ctr := res.(mcp.JSONRPCResponse).Result.(*mcp.CallToolResult)
	tc, ok := ctr.Content[0].(mcp.TextContent)
	if !ok {
		b.Fatalf("not text: %+v", ctr.Content)
	}
	return tc.Text
}

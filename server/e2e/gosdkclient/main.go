// Command gosdkclient drives backstage-mcp with the official MCP Go SDK
// client (github.com/modelcontextprotocol/go-sdk), for the e2e tests. It is
// a module of its own so that the SDK and its dependencies stay out of the
// server's go.mod.
//
//	gosdkclient stdio <server command> [args…]
//	gosdkclient http <MCP URL>          (MCP_BEARER_TOKEN, when set, is sent)
//	gosdkclient oauth <MCP URL>         (the SDK's own OAuth flow; see oauth.go)
//
// It runs tools, resources, completions, prompts, ping, a cancelled call
// and a call after it, and prints one JSON report on stdout; each step's
// error is reported, not fatal, so the test sees every failure at once.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// report is what the e2e test reads.
type report struct {
	ProtocolVersion string            `json:"protocolVersion"`
	Tools           []string          `json:"tools"`
	OutputSchemas   int               `json:"outputSchemas"`
	EntityRef       string            `json:"entityRef"`
	Resources       int               `json:"resources"`
	ResourceNext    bool              `json:"resourceNext"`
	Templates       []string          `json:"templates"`
	ReadMIME        string            `json:"readMime"`
	ReadHasKind     bool              `json:"readHasKind"`
	Completions     []string          `json:"completions"`
	Prompts         []string          `json:"prompts"`
	PromptText      string            `json:"promptText"`
	Ping            bool              `json:"ping"`
	CancelledErr    string            `json:"cancelledErr"`
	AfterCancel     string            `json:"afterCancel"`
	Errors          map[string]string `json:"errors"`
}

// bearer adds the token to every request.
type bearer struct {
	tok  string
	next http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.tok)
	return b.next.RoundTrip(r)
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gosdkclient:", err)
		os.Exit(1)
	}
}

func run() error {
	if len(os.Args) < 3 {
		return errors.New("usage: gosdkclient stdio <command> [args…] | gosdkclient http|oauth <url>")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var t mcp.Transport
	switch os.Args[1] {
	case "stdio":
		cmd := exec.Command(os.Args[2], os.Args[3:]...)
		cmd.Stderr = os.Stderr
		t = &mcp.CommandTransport{Command: cmd}
	case "oauth":
		h, err := oauthHandler()
		if err != nil {
			return err
		}
		t = &mcp.StreamableClientTransport{Endpoint: os.Args[2], HTTPClient: &http.Client{Timeout: time.Minute}, MaxRetries: -1, OAuthHandler: h}
	case "http":
		hc := &http.Client{Timeout: time.Minute}
		if tok := os.Getenv("MCP_BEARER_TOKEN"); tok != "" {
			hc.Transport = bearer{tok: tok, next: http.DefaultTransport}
		}
		t = &mcp.StreamableClientTransport{Endpoint: os.Args[2], HTTPClient: hc, MaxRetries: -1}
	default:
		return fmt.Errorf("unknown transport %q", os.Args[1])
	}
	c := mcp.NewClient(&mcp.Implementation{Name: "gosdkclient", Version: "1.0.0"}, nil)
	cs, err := c.Connect(ctx, t, nil)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer func() { _ = cs.Close() }()
	r := report{Errors: map[string]string{}}
	fail := func(step string, err error) bool {
		if err != nil {
			r.Errors[step] = err.Error()
			return true
		}
		return false
	}
	if ir := cs.InitializeResult(); ir != nil {
		r.ProtocolVersion = ir.ProtocolVersion
	}

	if tl, err := cs.ListTools(ctx, nil); !fail("tools/list", err) {
		for _, tool := range tl.Tools {
			r.Tools = append(r.Tools, tool.Name)
			if tool.OutputSchema != nil {
				r.OutputSchemas++
			}
		}
	}
	if res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "catalog_get_entity",
		Arguments: map[string]any{"ref": "component:default/checkout-service"}}); !fail("tools/call", err) {
		var s struct {
			Ref string `json:"ref"`
		}
		b, _ := json.Marshal(res.StructuredContent)
		_ = json.Unmarshal(b, &s)
		r.EntityRef = s.Ref
	}
	if rl, err := cs.ListResources(ctx, nil); !fail("resources/list", err) {
		r.Resources, r.ResourceNext = len(rl.Resources), rl.NextCursor != ""
	}
	if tl, err := cs.ListResourceTemplates(ctx, nil); !fail("resources/templates/list", err) {
		for _, rt := range tl.ResourceTemplates {
			r.Templates = append(r.Templates, rt.URITemplate)
		}
	}
	if rr, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "backstage://catalog/component/default/checkout-service"}); !fail("resources/read", err) && len(rr.Contents) > 0 {
		r.ReadMIME = rr.Contents[0].MIMEType
		var e struct {
			Kind string `json:"kind"`
		}
		r.ReadHasKind = json.Unmarshal([]byte(rr.Contents[0].Text), &e) == nil && e.Kind != ""
	}
	if cr, err := cs.Complete(ctx, &mcp.CompleteParams{Ref: &mcp.CompleteReference{Type: "ref/prompt", Name: "who-owns"},
		Argument: mcp.CompleteParamsArgument{Name: "ref", Value: "component:default/check"}}); !fail("completion/complete", err) {
		r.Completions = cr.Completion.Values
	}
	if pl, err := cs.ListPrompts(ctx, nil); !fail("prompts/list", err) {
		for _, p := range pl.Prompts {
			r.Prompts = append(r.Prompts, p.Name)
		}
	}
	if gp, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "who-owns", Arguments: map[string]string{"ref": "component:default/checkout-service"}}); !fail("prompts/get", err) && len(gp.Messages) > 0 {
		if tc, ok := gp.Messages[0].Content.(*mcp.TextContent); ok {
			r.PromptText = tc.Text
		}
	}
	r.Ping = !fail("ping", cs.Ping(ctx, nil))

	// Cancellation, then another call on the same session.
	cctx, ccancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := cs.CallTool(cctx, &mcp.CallToolParams{Name: "catalog_search_entities", Arguments: map[string]any{"limit": 100}})
		done <- err
	}()
	time.Sleep(time.Millisecond)
	ccancel()
	if err := <-done; err != nil {
		r.CancelledErr = err.Error()
	}
	if res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "whoami", Arguments: map[string]any{}}); !fail("call after cancel", err) {
		if res.IsError {
			r.Errors["call after cancel"] = "tool error"
		} else if len(res.Content) > 0 {
			if tc, ok := res.Content[0].(*mcp.TextContent); ok {
				r.AfterCancel = tc.Text
			}
		}
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}

package tools

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"github.com/mark3labs/mcp-go/mcp"
)

type identityRedactor struct{}

func (identityRedactor) Redact(v any) (any, map[string]int, error) { return v, nil, nil }

func (identityRedactor) RedactKeyed(_ string, v any) (any, map[string]int, error) { return v, nil, nil }

type failingRedactor struct{}

func (failingRedactor) Redact(any) (any, map[string]int, error) {
	return nil, nil, context.DeadlineExceeded
}

func (failingRedactor) RedactKeyed(string, any) (any, map[string]int, error) {
	return nil, nil, context.DeadlineExceeded
}

func call(t *testing.T, tl Tool, ctx context.Context, args string) *mcp.CallToolResult {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name = tl.Tool.Name
	req.Params.RawArguments = json.RawMessage(args)
	res, err := tl.Handler(ctx, req)
	if err != nil {
		t.Fatalf("protocol error: %v", err)
	}
	return res
}

func text(r *mcp.CallToolResult) string {
	for _, c := range r.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			return tc.Text
		}
	}
	return ""
}

// TestBackstageFailuresBecomeToolErrors: down, slow, 5xx, garbage and
// oversized answers all become the same plain tool error, with no
// upstream detail, and the next call still works.
func TestBackstageFailuresBecomeToolErrors(t *testing.T) {
	entity := `{"apiVersion":"backstage.io/v1alpha1","kind":"Component","metadata":{"name":"x","namespace":"default"},"spec":{"type":"service"}}`
	var mode atomic.Value
	mode.Store("")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch mode.Load().(string) {
		case "5xx":
			w.WriteHeader(500)
			_, _ = w.Write([]byte(`{"error":{"name":"Error","message":"stack at /srv/secret-path.js:12"}}`))
		case "garbage":
			_, _ = w.Write([]byte(`<html>proxy error</html>`))
		case "slow":
			select {
			case <-time.After(2 * time.Second):
			case <-r.Context().Done():
			}
		case "huge":
			_, _ = w.Write([]byte(`{"kind":"Component","pad":"` + strings.Repeat("x", 8192) + `"}`))
		default:
			_, _ = w.Write([]byte(entity))
		}
	}))
	defer srv.Close()
	c, err := catalog.New(catalog.Config{BaseURL: srv.URL, Token: catalog.StaticToken("t"), Timeout: 200 * time.Millisecond, MaxResponseBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	d := &Deps{Catalog: c, Redactor: identityRedactor{}, Cursors: NewCursorCodec(nil)}
	tl := GetEntity(d)
	ctx := WithAccess(context.Background(), OpenAccess{})
	for _, m := range []string{"5xx", "garbage", "slow", "huge"} {
		mode.Store(m)
		res := call(t, tl, ctx, `{"ref":"component:default/x"}`)
		if !res.IsError || !strings.Contains(text(res), "Backstage is unavailable") {
			t.Fatalf("%s: %+v", m, res)
		}
		for _, leak := range []string{"stack", "secret-path", "proxy error", srv.URL} {
			if strings.Contains(text(res), leak) {
				t.Errorf("%s: error leaks %q", m, leak)
			}
		}
	}
	mode.Store("")
	if res := call(t, tl, ctx, `{"ref":"component:default/x"}`); res.IsError {
		t.Fatalf("after failures: %s", text(res))
	}
	srv.Close()
	if res := call(t, tl, ctx, `{"ref":"component:default/x"}`); !res.IsError || !strings.Contains(text(res), "Backstage is unavailable") {
		t.Fatalf("Backstage down: %+v", res)
	}
}

// TestFailClosed: no Access attached means nothing is visible, and a
// failing redactor withholds the result.
func TestFailClosed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"kind":"Component","metadata":{"name":"x","namespace":"default","description":"secret stuff"}}`))
	}))
	defer srv.Close()
	c, _ := catalog.New(catalog.Config{BaseURL: srv.URL, Token: catalog.StaticToken("t")})
	d := &Deps{Catalog: c, Redactor: identityRedactor{}, Cursors: NewCursorCodec(nil)}
	res := call(t, GetEntity(d), context.Background(), `{"ref":"component:default/x"}`)
	if !res.IsError || !strings.Contains(text(res), "not found") {
		t.Fatalf("no access attached: %+v", res)
	}
	d.Redactor = failingRedactor{}
	res = call(t, GetEntity(d), WithAccess(context.Background(), OpenAccess{}), `{"ref":"component:default/x"}`)
	if !res.IsError || !strings.Contains(text(res), "withheld") || strings.Contains(text(res), "secret stuff") {
		t.Fatalf("failing redactor: %+v", res)
	}
}

package server

import (
	"strings"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/redact"
	"github.com/mark3labs/mcp-go/mcp"
)

// TestEgressContentTypes: resource links and embedded text resources are
// redacted field by field; content egress has no step for is refused.
func TestEgressContentTypes(t *testing.T) {
	r, err := redact.New()
	if err != nil {
		t.Fatal(err)
	}
	e := egress{r: r}
	var secret string
	for _, sd := range corpusSeeds(t, 1) {
		if sd.standalone && !strings.ContainsAny(sd.value, "\n\"\\ ") {
			secret = sd.value
			break
		}
	}
	cases := []struct {
		name    string
		in      mcp.Content
		wantErr bool
	}{
		{"text", mcp.NewTextContent("token " + secret), false},
		{"resource link", mcp.ResourceLink{Type: "resource_link", URI: "backstage://catalog/component/default/a", Name: "a",
			Title: secret, Description: "use " + secret, MIMEType: mimeJSON}, false},
		{"embedded json", mcp.NewEmbeddedResource(mcp.TextResourceContents{URI: "backstage://catalog/component/default/a",
			MIMEType: mimeJSON, Text: `{"metadata":{"description":"use ` + secret + `"}}`}), false},
		{"embedded text with notice", mcp.NewEmbeddedResource(mcp.TextResourceContents{URI: "u", MIMEType: "text/plain",
			Text: "key " + secret, Meta: map[string]any{"truncated": true, "notice": "see " + secret}}), false},
		{"embedded blob", mcp.NewEmbeddedResource(mcp.BlobResourceContents{URI: "u", Blob: "AAAA"}), true},
		{"embedded with unknown meta", mcp.NewEmbeddedResource(mcp.TextResourceContents{URI: "u", Text: "x", Meta: map[string]any{"x": "y"}}), true},
		{"image", mcp.NewImageContent("AAAA", "image/png"), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, _, red, err := e.result(&mcp.CallToolResult{Content: []mcp.Content{tc.in}}, nil)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			out := strings.Join(contentStrings(res.Content[0]), "\n")
			if strings.Contains(out, secret) || len(red) == 0 {
				t.Fatalf("secret survived egress (redactions %v): %s", red, out)
			}
		})
	}
}

func contentStrings(c mcp.Content) []string {
	switch t := c.(type) {
	case mcp.TextContent:
		return []string{t.Text}
	case mcp.ResourceLink:
		return []string{t.URI, t.Name, t.Title, t.Description}
	case mcp.EmbeddedResource:
		rc := t.Resource.(mcp.TextResourceContents)
		n, _ := rc.Meta["notice"].(string)
		return []string{rc.URI, rc.Text, n}
	}
	return nil
}

package server

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/audit"
	"github.com/backstage-mcp/backstage-mcp/server/internal/servertest"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
)

const defaultNamespacePolicy = `version: 1
roles:
  - name: everyone
    bind: { anonymous: true }
    tools: ["catalog:read", "catalog:api-definitions"]
    entities:
      allow:
        - IN_NAMESPACE: { namespaces: [default] }
`

// resourceEntities: 120 visible components (three pages of
// resources/list), one API whose definition carries a secret, the same
// names again in a namespace the caller may not see, and their owner.
func resourceEntities(secret string) []map[string]any {
	var out []map[string]any
	for _, ns := range []string{"default", "hidden"} {
		for i := range 120 {
			out = append(out, map[string]any{"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
				"metadata": map[string]any{"name": fmt.Sprintf("svc-%03d", i), "namespace": ns, "title": fmt.Sprintf("Service %d", i)},
				"spec":     map[string]any{"type": "service", "lifecycle": "production", "owner": "group:default/team-a"}})
		}
		out = append(out, map[string]any{"apiVersion": "backstage.io/v1alpha1", "kind": "API",
			"metadata": map[string]any{"name": "payments-api", "namespace": ns},
			"spec": map[string]any{"type": "openapi", "lifecycle": "production", "owner": "group:default/team-a",
				"definition": "openapi: 3.0.0\ninfo:\n  title: Payments\n  description: call it with " + secret + "\npaths: {}\n"}})
	}
	// The owner exists: a ref to a missing entity is dropped like one to a
	// hidden entity (one rule for names), and would get no link.
	out = append(out, map[string]any{"apiVersion": "backstage.io/v1alpha1", "kind": "Group",
		"metadata": map[string]any{"name": "team-a", "namespace": "default"},
		"spec":     map[string]any{"type": "team", "children": []any{}}})
	return out
}

// TestResources: templates are listed, resources/list pages over exactly
// the entities the caller may see, and resources/read answers through the
// chain: granted reads are audited as the tool they equal, secrets are
// redacted, and a hidden entity reads exactly like a missing one.
func TestResources(t *testing.T) {
	seeds := corpusSeeds(t, 1)
	var secret string
	for _, sd := range seeds {
		if sd.standalone && !strings.ContainsAny(sd.value, "\n\"\\") {
			secret = sd.value
			break
		}
	}
	if secret == "" {
		t.Fatal("no standalone secret in the corpus")
	}
	cs := newChainServer(t, resourceEntities(secret), defaultNamespacePolicy, "")
	c, err := client.NewInProcessClient(cs.s.MCP())
	if err != nil {
		t.Fatal(err)
	}
	servertest.Connect(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	tl, err := c.ListResourceTemplates(ctx, mcp.ListResourceTemplatesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var templates []string
	for _, rt := range tl.ResourceTemplates {
		templates = append(templates, rt.URITemplate.Raw())
	}
	slices.Sort(templates)
	if want := []string{definitionTemplate, entityTemplate}; !slices.Equal(templates, want) {
		t.Fatalf("templates = %v, want %v", templates, want)
	}

	t.Run("list pages over what the caller may see", func(t *testing.T) {
		var uris []string
		var cursor mcp.Cursor
		pages := 0
		for {
			req := mcp.ListResourcesRequest{}
			req.Params.Cursor = cursor
			res, err := c.ListResourcesByPage(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, r := range res.Resources {
				uris = append(uris, r.URI)
				if r.MIMEType != mimeJSON || r.Name == "" {
					t.Fatalf("resource %+v", r)
				}
			}
			if res.NextCursor == "" || pages > 10 {
				break
			}
			cursor = res.NextCursor
		}
		if len(uris) != 122 || pages != 3 {
			t.Fatalf("%d resources in %d pages, want 122 (120 components, the API, the group) in 3", len(uris), pages)
		}
		for _, u := range uris {
			if strings.Contains(u, "/hidden/") {
				t.Fatalf("hidden entity listed: %s", u)
			}
		}
		if !slices.Contains(uris, "backstage://catalog/component/default/svc-042") || !slices.Contains(uris, "backstage://catalog/api/default/payments-api") {
			t.Fatalf("listing lacks expected URIs: %v", uris[:5])
		}
	})

	read := func(uri string) (*mcp.ReadResourceResult, error) {
		req := mcp.ReadResourceRequest{}
		req.Params.URI = uri
		return c.ReadResource(ctx, req)
	}
	t.Run("read entity", func(t *testing.T) {
		res, err := read("backstage://catalog/component/default/svc-007")
		if err != nil {
			t.Fatal(err)
		}
		tc, ok := res.Contents[0].(mcp.TextResourceContents)
		if len(res.Contents) != 1 || !ok || tc.MIMEType != mimeJSON || !strings.Contains(tc.Text, `"name":"svc-007"`) {
			t.Fatalf("contents = %+v", res.Contents)
		}
	})
	t.Run("read API definition in its media type, redacted", func(t *testing.T) {
		res, err := read("backstage://catalog/api/default/payments-api/definition")
		if err != nil {
			t.Fatal(err)
		}
		tc, ok := res.Contents[0].(mcp.TextResourceContents)
		if !ok || tc.MIMEType != "application/vnd.oai.openapi" || !strings.HasPrefix(tc.Text, "openapi: 3.0.0") {
			t.Fatalf("contents = %+v", res.Contents)
		}
		if strings.Contains(tc.Text, secret) || !strings.Contains(tc.Text, "[REDACTED:") {
			t.Fatalf("definition not redacted: %s", tc.Text)
		}
	})
	t.Run("hidden reads like missing", func(t *testing.T) {
		_, errHidden := read("backstage://catalog/component/hidden/svc-007")
		_, errMissing := read("backstage://catalog/component/nowhere/svc-007")
		if errHidden == nil || errMissing == nil {
			t.Fatalf("hidden: %v, missing: %v", errHidden, errMissing)
		}
		if !strings.Contains(errHidden.Error(), "not found") {
			t.Fatalf("hidden: %v, want resource not found", errHidden)
		}
		norm := func(err error) string {
			return strings.ReplaceAll(strings.ReplaceAll(err.Error(), "hidden", "X"), "nowhere", "X")
		}
		if norm(errHidden) != norm(errMissing) {
			t.Fatalf("hidden and missing differ:\n%v\n%v", errHidden, errMissing)
		}
		_, errDefHidden := read("backstage://catalog/api/hidden/payments-api/definition")
		if errDefHidden == nil || !strings.Contains(errDefHidden.Error(), "not found") {
			t.Fatalf("hidden definition: %v", errDefHidden)
		}
	})
	t.Run("tool results link the owner and the API definition", func(t *testing.T) {
		res := servertest.Call(t, c, "catalog_get_entity", `{"ref":"api:default/payments-api"}`)
		links := map[string]mcp.ResourceLink{}
		for _, ct := range res.Content {
			if l, ok := ct.(mcp.ResourceLink); ok {
				links[l.URI] = l
			}
		}
		def, ok := links["backstage://catalog/api/default/payments-api/definition"]
		if !ok || def.MIMEType != "application/vnd.oai.openapi" {
			t.Fatalf("no definition link in %+v", res.Content)
		}
		if _, ok := links["backstage://catalog/group/default/team-a"]; !ok {
			t.Fatalf("no owner link in %+v", res.Content)
		}
		if servertest.Text(res) == "" {
			t.Fatal("the text block must stay first")
		}
		got, err := read(def.URI)
		if err != nil || len(got.Contents) != 1 {
			t.Fatalf("reading the linked definition: %v", err)
		}
	})
	t.Run("every request is audited as its tool", func(t *testing.T) {
		recs := cs.records(t)
		count := map[string]int{}
		for _, r := range recs {
			count[r.Tool+"/"+string(r.Decision)]++
		}
		// 3 list pages, 2+2 granted reads and calls, refused reads: a
		// hidden entity and a missing one, told apart.
		if count["catalog_search_entities/allowed"] != 3 || count["catalog_get_entity/allowed"] != 2 ||
			count["catalog_get_api_definition/allowed"] != 2 || count["catalog_get_entity/"+string(audit.DecisionHiddenByPolicy)] != 1 ||
			count["catalog_get_entity/"+string(audit.DecisionFailed)] != 1 {
			t.Fatalf("audit records by tool/decision = %v", count)
		}
	})
}

// TestResourceReadNeedsTheToolGrant: a caller without
// catalog_get_api_definition cannot read definitions as resources, and
// the refusal is audited like the refused tool call.
func TestResourceReadNeedsTheToolGrant(t *testing.T) {
	cs := newChainServer(t, resourceEntities("x"), oneToolPolicy, "")
	c, err := client.NewInProcessClient(cs.s.MCP())
	if err != nil {
		t.Fatal(err)
	}
	servertest.Connect(t, c)
	req := mcp.ReadResourceRequest{}
	req.Params.URI = "backstage://catalog/api/default/payments-api/definition"
	_, err = c.ReadResource(context.Background(), req)
	if err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("err = %v, want resource not found", err)
	}
	list, err := c.ListResourcesByPage(context.Background(), mcp.ListResourcesRequest{})
	if err != nil || len(list.Resources) != 0 {
		t.Fatalf("list without the search grant: %v, %d resources", err, len(list.Resources))
	}
	recs := cs.records(t)
	if len(recs) != 2 || recs[0].Decision != audit.DecisionHiddenByPolicy || recs[0].Tool != "catalog_get_api_definition" {
		t.Fatalf("records = %+v", recs)
	}
}

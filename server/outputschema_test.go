package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/internal/servertest"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	sjs "github.com/santhosh-tekuri/jsonschema/v6"
)

// outputCalls exercise every shape each tool answers with.
var outputCalls = []struct{ tool, args string }{
	{"catalog_get_entity", `{"ref":"component:default/checkout-service"}`},
	{"catalog_get_entity", `{"ref":"api:default/payments-api","detail":"full"}`},
	{"catalog_get_entity", `{"ref":"component:checkout-service","fields":["spec.owner","metadata.name"]}`},
	{"catalog_search_entities", `{"kind":"Component","owner":"team-checkout","limit":5}`},
	{"catalog_search_entities", `{"kind":"API","fields":["metadata.name","spec.type"]}`},
	{"catalog_search_entities", `{"kind":"Component","text":"no-such-text-anywhere"}`},
	{"catalog_get_relations", `{"ref":"component:default/checkout-service","depth":2}`},
	{"catalog_find_owner", `{"ref":"component:default/checkout-service"}`},
	{"catalog_get_api_definition", `{"ref":"api:default/payments-api","maxBytes":512}`},
	{"catalog_list_facets", `{"facet":"spec.type","kind":"Component"}`},
	{"whoami", `{}`},
}

// TestStructuredContentMatchesOutputSchema: over the wire, after egress,
// every tool's structuredContent validates against the outputSchema it
// advertises in tools/list (JSON Schema 2020-12), and its text block is
// present. With MEASURE_TEXT=path it also writes each call's text block
// and serialized JSON there, for the token measurement in the README.
func TestStructuredContentMatchesOutputSchema(t *testing.T) {
	s := newDemoServer(t)
	c, err := client.NewInProcessClient(s.MCP())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	servertest.Connect(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	schemas := map[string]*sjs.Schema{}
	for _, tl := range list.Tools {
		b, err := json.Marshal(tl)
		if err != nil {
			t.Fatal(err)
		}
		var wire struct {
			Title        string          `json:"title"`
			OutputSchema json.RawMessage `json:"outputSchema"`
		}
		if err := json.Unmarshal(b, &wire); err != nil || len(wire.OutputSchema) == 0 {
			t.Fatalf("%s advertises no outputSchema: %s", tl.Name, b)
		}
		doc, err := sjs.UnmarshalJSON(bytes.NewReader(wire.OutputSchema))
		if err != nil {
			t.Fatal(err)
		}
		comp := sjs.NewCompiler()
		comp.DefaultDraft(sjs.Draft2020)
		url := "mem:///" + tl.Name + ".json"
		if err := comp.AddResource(url, doc); err != nil {
			t.Fatal(err)
		}
		if schemas[tl.Name], err = comp.Compile(url); err != nil {
			t.Fatalf("%s: %v", tl.Name, err)
		}
	}
	var measure []map[string]string
	for _, oc := range outputCalls {
		t.Run(oc.tool+" "+oc.args, func(t *testing.T) {
			res := servertest.Call(t, c, oc.tool, oc.args)
			if res.IsError {
				t.Fatalf("tool error: %s", servertest.Text(res))
			}
			b, err := json.Marshal(res.StructuredContent)
			if err != nil {
				t.Fatal(err)
			}
			inst, err := sjs.UnmarshalJSON(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if err := schemas[oc.tool].Validate(inst); err != nil {
				t.Fatalf("structuredContent does not match the output schema: %v\n%s", err, b)
			}
			if servertest.Text(res) == "" {
				t.Fatal("no text block")
			}
			measure = append(measure, map[string]string{"call": oc.tool + " " + oc.args, "text": servertest.Text(res), "json": string(b)})
		})
	}
	if path := os.Getenv("MEASURE_TEXT"); path != "" {
		b, _ := json.MarshalIndent(measure, "", " ")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(fmt.Errorf("write %s: %w", path, err))
		}
	}
}

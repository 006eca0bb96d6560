//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"reflect"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/server"
	"github.com/backstage-mcp/backstage-mcp/server/internal/servertest"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog/mirror"
	"github.com/mark3labs/mcp-go/client"
)

// newModeServer is newServer with catalog.mode set.
func newModeServer(t *testing.T, mode string) *server.Server {
	t.Helper()
	path := writeConfig(t, "testdata/policies/anonymous-read.yaml")
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString("catalog:\n  mode: " + mode + "\n  pageSize: 50\n")
	_ = f.Close()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := server.LoadConfig(path, func(k string) string {
		if k == "E2E_BACKSTAGE_TOKEN" {
			return bs.Token
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	s, closeFn, err := server.Build(context.Background(), cfg, server.BuildOptions{LocalUser: localUser, Version: "e2e"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeFn)
	return s
}

// TestMirrorFidelity: a mirror filled from the real Backstage answers
// catalog reads with the same entities, in the same order, as Backstage.
func TestMirrorFidelity(t *testing.T) {
	ctx := context.Background()
	rest, err := catalog.New(catalog.Config{BaseURL: bs.BaseURL, Token: catalog.StaticToken(bs.Token)})
	if err != nil {
		t.Fatal(err)
	}
	m, err := mirror.New(mirror.Config{Upstream: rest, PageSize: 7, BatchSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := m.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Entities != bs.Entities {
		t.Errorf("mirrored %d entities, Backstage holds %d", rep.Entities, bs.Entities)
	}
	// A delta against an unchanged Backstage changes nothing.
	rep, err = m.Sync(ctx)
	if err != nil || rep.Added+rep.Changed+rep.Removed != 0 || rep.Entities != bs.Entities {
		t.Errorf("idle delta sync: %+v %v", rep, err)
	}
	local := m // the tools read the mirror in process
	decode := func(items []json.RawMessage) []any {
		out := make([]any, len(items))
		for i, it := range items {
			if err := json.Unmarshal(it, &out[i]); err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	for _, q := range []catalog.Query{
		{Limit: 1000},
		{Filters: []catalog.Filter{{"kind": {"component"}}}, Order: []catalog.Order{{Field: "metadata.name", Descending: true}}, Limit: 15},
		{Filters: []catalog.Filter{{"relations.ownedBy": {"group:default/team-platform"}}}, Fields: []string{"metadata.name", "kind", "metadata.etag"}},
		{FullTextTerm: "pay", FullTextFields: []string{"metadata.name", "metadata.description"}, Limit: 50},
	} {
		want, err := rest.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		got, err := local.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(want.Items) == 0 || !reflect.DeepEqual(decode(want.Items), decode(got.Items)) {
			t.Errorf("query %+v: mirror and Backstage differ (%d vs %d items)", q, len(got.Items), len(want.Items))
		}
	}
	wf, err := rest.Facets(ctx, []string{"kind", "spec.type", "relations.ownedBy"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	gf, err := local.Facets(ctx, []string{"kind", "spec.type", "relations.ownedBy"}, nil)
	if err != nil || !reflect.DeepEqual(wf, gf) {
		t.Errorf("facets differ: %v\nBackstage %v\nmirror    %v", err, wf, gf)
	}
}

// TestMirrorModeToolsMatchPassthrough runs the tool contract in mirror mode
// against the real Backstage's data, and compares a few answers with
// passthrough mode for the same caller.
func TestMirrorModeToolsMatchPassthrough(t *testing.T) {
	ms := newModeServer(t, "mirror")
	ps := newModeServer(t, "passthrough")
	hs := httptest.NewServer(ms.Handler())
	t.Cleanup(hs.Close)
	t.Run("contract", func(t *testing.T) {
		servertest.CheckTools(t, servertest.ConnectHTTP(t, hs.URL+"/mcp", ""))
	})

	connect := func(s *server.Server) *client.Client {
		c, err := client.NewInProcessClient(s.MCP())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		servertest.Connect(t, c)
		return c
	}
	mc, pc := connect(ms), connect(ps)
	for _, call := range [][2]string{
		{"catalog_get_entity", `{"ref":"component:default/checkout-service"}`},
		{"catalog_get_entity", `{"ref":"api:default/payments-api","detail":"full"}`},
		{"catalog_search_entities", `{"kind":"component","owner":"team-platform","limit":10}`},
		{"catalog_search_entities", `{"text":"payment","limit":20}`},
		{"catalog_get_relations", `{"ref":"component:default/checkout-service","depth":2,"direction":"both"}`},
		{"catalog_find_owner", `{"ref":"component:default/checkout-service"}`},
		{"catalog_list_facets", `{"facet":"spec.type"}`},
		{"catalog_find_dependents", `{"ref":"component:default/orders-service"}`},
		{"catalog_find_owner", `{"ref":"group:default/team-checkout"}`},
		{"catalog_search_entities", `{"labels":["acme-retail.example/pci=true"],"limit":50}`},
		{"catalog_search_entities", `{"kind":"Component","annotations":["pagerduty.com/service-id"],"limit":50}`},
		{"catalog_search_entities", `{"relations":["consumesApi=api:default/order-events"],"limit":50}`},
		{"catalog_list_facets", `{"facet":"spec.owner","kind":"Component","lifecycle":"production","labels":["acme-retail.example/tier"]}`},
	} {
		mr := servertest.Call(t, mc, call[0], call[1])
		pr := servertest.Call(t, pc, call[0], call[1])
		var a, b any
		servertest.Structured(t, mr, &a)
		servertest.Structured(t, pr, &b)
		if !servertest.SameAnswer(a, b) {
			ja, _ := json.Marshal(a)
			jb, _ := json.Marshal(b)
			t.Errorf("%s %s:\nmirror      %s\npassthrough %s", call[0], call[1], ja, jb)
		}
		if mr.Meta == nil || mr.Meta.AdditionalFields["catalogMode"] != "mirror" || mr.Meta.AdditionalFields["catalogSyncedAt"] == nil {
			t.Errorf("%s: mirror result _meta = %+v", call[0], mr.Meta)
		}
	}
}

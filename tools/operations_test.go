package tools

import (
	"slices"
	"strings"
	"testing"
)

// TestOperations: each definition type yields its operations in the
// definition's order, the first MaxOperationNames named and all counted;
// what cannot be read yields none.
func TestOperations(t *testing.T) {
	openapi := "openapi: 3.0.3\ninfo:\n  title: T\npaths:\n  /baskets/{id}:\n    parameters:\n      - name: id\n    get:\n      summary: Get.\n      responses:\n        \"200\":\n          description: ok\n" +
		"    delete:\n      summary: Drop.\n  \"/baskets/{id}/items\":\n    post:\n      requestBody:\n        content: {}\ncomponents:\n  schemas:\n    get:\n      type: object\n"
	many := "openapi: 3.0.3\npaths:\n"
	for _, p := range []string{"/a", "/b", "/c", "/d", "/e", "/f", "/g"} {
		many += "  " + p + ":\n    get:\n      summary: x\n"
	}
	for _, tc := range []struct {
		name, typ, def string
		want           []string
		total          int
	}{
		{"openapi yaml", "openapi", openapi, []string{"GET /baskets/{id}", "DELETE /baskets/{id}", "POST /baskets/{id}/items"}, 3},
		{"openapi json", "openapi", `{"openapi":"3.0.0","paths":{"/b":{"post":{},"parameters":[]},"/a":{"get":{},"put":{}}}}`, []string{"GET /a", "PUT /a", "POST /b"}, 3},
		{"capped", "openapi", many, []string{"GET /a", "GET /b", "GET /c", "GET /d", "GET /e"}, 7},
		{"asyncapi", "asyncapi", "asyncapi: 2.6.0\nchannels:\n  orders.placed:\n    subscribe:\n      message: {}\n  orders.shipped:\n    publish:\n      message: {}\n", []string{"orders.placed", "orders.shipped"}, 2},
		{"graphql", "graphql", "type Query {\n  order(id: ID!): Order\n  orders: [Order!]!\n}\n\ntype Order {\n  id: ID!\n}\n\ntype Mutation {\n  cancel(id: ID!): Order\n}\n", []string{"query order", "query orders", "mutation cancel"}, 3},
		{"grpc", "grpc", "service S {\n  rpc Get(GetRequest) returns (Item);\n  rpc List (ListRequest) returns (ListResponse);\n}\nmessage Item {}\n", []string{"rpc Get", "rpc List"}, 2},
		{"unknown type", "wsdl", "<definitions/>", nil, 0},
		{"broken json", "openapi", `{"paths":`, nil, 0},
		{"no paths", "openapi", "openapi: 3.0.3\ninfo:\n  title: x\n", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, total := operations(tc.typ, tc.def)
			if !slices.Equal(got, tc.want) || total != tc.total {
				t.Errorf("operations = %q, %d; want %q, %d", got, total, tc.want, tc.total)
			}
		})
	}
	// A definition past the scan bound is read up to it.
	big := "openapi: 3.0.3\npaths:\n  /first:\n    get:\n      x: y\n" + strings.Repeat("# padding\n", maxOperationScan/10) + "  /late:\n    get:\n      x: y\n"
	if got, total := operations("openapi", big); total != 1 || got[0] != "GET /first" {
		t.Errorf("past the bound: %q, %d", got, total)
	}
}

// TestAPISummaryNamesOperations: catalog_get_entity on an API names its
// operations in the text; on a component it reads no definition.
func TestAPISummaryNamesOperations(t *testing.T) {
	d := demoDeps(t)
	got := text(call(t, GetEntity(d), openCtx(), `{"ref":"api:default/cart-api"}`))
	if !strings.Contains(got, "| operations: GET /baskets/{basketId}, POST /baskets/{basketId}/items |") {
		t.Errorf("cart-api:\n%s", got)
	}
	got = text(call(t, GetEntity(d), openCtx(), `{"ref":"component:default/cart-service"}`))
	if strings.Contains(got, "operations:") {
		t.Errorf("a component with operations:\n%s", got)
	}
	got = text(call(t, SearchEntities(d), openCtx(), `{"kind":"API","limit":100}`))
	if strings.Contains(got, "operations:") {
		t.Errorf("search lines name operations:\n%s", got)
	}
}

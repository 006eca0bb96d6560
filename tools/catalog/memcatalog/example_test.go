package memcatalog_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/backstage-mcp/backstage-mcp/tools/catalog/memcatalog"
)

func Example() {
	cat, err := memcatalog.New([]map[string]any{
		{
			"apiVersion": "backstage.io/v1alpha1", "kind": "Group",
			"metadata": map[string]any{"name": "team-a"},
			"spec":     map[string]any{"type": "team", "children": []any{}},
		},
		{
			"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
			"metadata": map[string]any{"name": "web", "tags": []any{"go"}},
			"spec":     map[string]any{"type": "website", "lifecycle": "production", "owner": "team-a"},
		},
	}, memcatalog.WithToken("s3cret"))
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := httptest.NewServer(cat.Handler())
	defer srv.Close()

	req, _ := http.NewRequest("GET", srv.URL+"/api/catalog/entities/by-query?filter=relations.ownedBy=group:default/team-a&fields=metadata.name,relations", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	res, err := srv.Client().Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer res.Body.Close()
	var page struct {
		Items      []json.RawMessage `json:"items"`
		TotalItems int               `json:"totalItems"`
	}
	if err := json.NewDecoder(res.Body).Decode(&page); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.StatusCode, page.TotalItems, string(page.Items[0]))
	fmt.Println(cat.Requests()[0].Authorization)
	// Output:
	// 200 1 {"metadata":{"name":"web"},"relations":[{"targetRef":"group:default/team-a","type":"ownedBy"}]}
	// Bearer s3cret
}

package memcatalog

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
)

const testToken = "test-token-0123456789"

func fixture() []map[string]any {
	return []map[string]any{
		{"apiVersion": "backstage.io/v1alpha1", "kind": "Group", "metadata": map[string]any{"name": "team-a", "description": "Team A"},
			"spec": map[string]any{"type": "team", "children": []any{"team-b"}, "members": []any{"alice"}}},
		{"apiVersion": "backstage.io/v1alpha1", "kind": "Group", "metadata": map[string]any{"name": "team-b"},
			"spec": map[string]any{"type": "team", "parent": "team-a", "children": []any{}}},
		{"apiVersion": "backstage.io/v1alpha1", "kind": "User", "metadata": map[string]any{"name": "alice"},
			"spec": map[string]any{"memberOf": []any{"team-a", "group:other/ops"}}},
		{"apiVersion": "backstage.io/v1alpha1", "kind": "Domain", "metadata": map[string]any{"name": "payments"},
			"spec": map[string]any{"owner": "team-a"}},
		{"apiVersion": "backstage.io/v1alpha1", "kind": "System", "metadata": map[string]any{"name": "billing"},
			"spec": map[string]any{"owner": "team-a", "domain": "payments"}},
		{"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
			"metadata": map[string]any{"name": "svc-one", "title": "Service One", "tags": []any{"java", "backend"},
				"annotations": map[string]any{"backstage.io/techdocs-ref": "dir:."}},
			"spec": map[string]any{"type": "service", "lifecycle": "production", "owner": "team-a", "system": "billing",
				"providesApis": []any{"pay-api", "api:other/zeta"}, "consumesApis": []any{"pay-api"},
				"dependsOn": []any{"resource:db-one", "component:svc-two"}, "empty": nil, "num": 3, "flag": true}},
		{"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": map[string]any{"name": "svc-two", "tags": []any{"python"}},
			"spec": map[string]any{"type": "website", "lifecycle": "experimental", "owner": "user:alice", "subcomponentOf": "svc-one",
				"dependencyOf": []any{"component:svc-one"}}},
		{"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": map[string]any{"name": "Svc-Three", "namespace": "other"},
			"spec": map[string]any{"type": "service", "lifecycle": "production", "owner": "group:default/team-b"}},
		{"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
			"metadata": map[string]any{"name": "svc-four", "tags": []any{"go", "java"}},
			"spec": map[string]any{"type": "Service", "lifecycle": "production", "owner": "team-b", "weird": "50%_off",
				"objs": []any{map[string]any{"name": "a", "v": 1}, map[string]any{"name": "b"}}}},
		{"apiVersion": "backstage.io/v1alpha1", "kind": "API", "metadata": map[string]any{"name": "pay-api"},
			"spec": map[string]any{"type": "openapi", "lifecycle": "production", "owner": "team-a", "system": "billing", "definition": "openapi: 3.0.0"}},
		{"apiVersion": "backstage.io/v1alpha1", "kind": "Resource", "metadata": map[string]any{"name": "db-one"},
			"spec": map[string]any{"type": "database", "owner": "team-b", "system": "billing", "dependencyOf": []any{"component:svc-two"}}},
	}
}

func newTestCatalog(t testing.TB, opts ...Option) (*Catalog, *httptest.Server) {
	t.Helper()
	c, err := New(fixture(), opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(srv.Close)
	return c, srv
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func do(t testing.TB, srv *httptest.Server, method, path, body string, hdr map[string]string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{res.StatusCode, res.Header, b}
}

type page struct {
	Items      []map[string]any `json:"items"`
	TotalItems int              `json:"totalItems"`
	PageInfo   struct {
		NextCursor string `json:"nextCursor"`
		PrevCursor string `json:"prevCursor"`
	} `json:"pageInfo"`
}

func getPage(t testing.TB, srv *httptest.Server, path string) page {
	t.Helper()
	r := do(t, srv, "GET", path, "", nil)
	if r.status != 200 {
		t.Fatalf("GET %s: %d %s", path, r.status, r.body)
	}
	var p page
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return p
}

func names(items []map[string]any) []string {
	out := make([]string, 0, len(items))
	for _, it := range items {
		md, _ := it["metadata"].(map[string]any)
		n, _ := md["name"].(string)
		out = append(out, n)
	}
	return out
}

func sortedNames(items []map[string]any) []string {
	n := names(items)
	sort.Strings(n)
	return n
}

func TestByQueryFilters(t *testing.T) {
	_, srv := newTestCatalog(t)
	tests := []struct {
		name   string
		filter string // raw query after "?"
		want   []string
	}{
		{"and within one filter", "filter=kind=component,spec.type=service", []string{"Svc-Three", "svc-four", "svc-one"}},
		{"repeated key ORs values", "filter=kind=component,kind=api,spec.lifecycle=experimental", []string{"svc-two"}},
		{"repeated key alone", "filter=kind=api,kind=resource", []string{"db-one", "pay-api"}},
		{"separate filters OR", "filter=kind=api&filter=kind=resource", []string{"db-one", "pay-api"}},
		{"or of ands", "filter=kind=group,metadata.name=team-b&filter=kind=user", []string{"alice", "team-b"}},
		{"case-insensitive key and value", "filter=KIND=COMPONENT,Metadata.Namespace=OTHER", []string{"Svc-Three"}},
		{"array value", "filter=metadata.tags=JAVA", []string{"svc-four", "svc-one"}},
		{"array item as key", "filter=metadata.tags.java", []string{"svc-four", "svc-one"}},
		{"array item as key with true", "filter=metadata.tags.java=true", []string{"svc-four", "svc-one"}},
		{"existence", "filter=spec.subcomponentOf", []string{"svc-two"}},
		{"existence matches null", "filter=spec.empty", []string{"svc-one"}},
		{"null value is not the empty string", "filter=spec.empty=", nil},
		{"number", "filter=spec.num=3", []string{"svc-one"}},
		{"boolean", "filter=spec.flag=TRUE", []string{"svc-one"}},
		{"objects inside arrays", "filter=spec.objs.v=1", []string{"svc-four"}},
		{"relation", "filter=relations.ownedBy=group:default/TEAM-B", []string{"Svc-Three", "db-one", "svc-four"}},
		{"reverse relation", "filter=relations.hasMember=user:default/alice", []string{"team-a"}},
		{"annotation key with dots", "filter=metadata.annotations.backstage.io/techdocs-ref=DIR:.", []string{"svc-one"}},
		{"etag is not indexed", "filter=metadata.etag", nil},
		{"objects are not leaves", "filter=spec", nil},
		{"whitespace trimmed", "filter=" + url.QueryEscape(" kind = User "), []string{"alice"}},
		{"empty statements ignored", "filter=" + url.QueryEscape(",kind=user,"), []string{"alice"}},
		{"filter of only commas means no filter", "filter=,", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := getPage(t, srv, "/api/catalog/entities/by-query?fields=metadata.name&"+tt.filter)
			got := sortedNames(p.Items)
			want := tt.want
			if tt.filter == "filter=," {
				want = sortedNames(getPage(t, srv, "/api/catalog/entities/by-query?fields=metadata.name").Items)
			}
			if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Fatalf("got %v, want %v", got, want)
			}
			if p.TotalItems != len(got) {
				t.Fatalf("totalItems %d, want %d", p.TotalItems, len(got))
			}
		})
	}
}

func TestFieldsProjection(t *testing.T) {
	_, srv := newTestCatalog(t)
	tests := []struct {
		name   string
		fields string
		want   string
	}{
		{"simple paths", "kind,metadata.name", `{"kind":"Component","metadata":{"name":"svc-one"}}`},
		{"repeated parameter", "kind&fields=metadata.name", `{"kind":"Component","metadata":{"name":"svc-one"}}`},
		{"dotted annotation key", "metadata.annotations.backstage.io/techdocs-ref", `{"metadata":{"annotations":{"backstage.io/techdocs-ref":"dir:."}}}`},
		{"missing path dropped", "metadata.nope,kind", `{"kind":"Component"}`},
		{"null kept", "spec.empty", `{"spec":{"empty":null}}`},
		{"subtree", "metadata.tags", `{"metadata":{"tags":["java","backend"]}}`},
		{"array index", "metadata.tags.1", `{"metadata":{"tags":[null,"backend"]}}`},
		{"nothing matches", "nope", `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := getPage(t, srv, "/api/catalog/entities/by-query?filter=metadata.name=svc-one&fields="+tt.fields)
			if len(p.Items) != 1 {
				t.Fatalf("items %v", p.Items)
			}
			var want map[string]any
			if err := json.Unmarshal([]byte(tt.want), &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p.Items[0], want) {
				t.Fatalf("got %v, want %v", p.Items[0], want)
			}
		})
	}
	r := do(t, srv, "GET", "/api/catalog/entities/by-query?fields=metadata.tags%5B0%5D", "", nil)
	assertError(t, r, 400, NameInputError, `Invalid field "metadata.tags[0]", array type fields are not supported`)
}

func TestOrderAndCursorPaging(t *testing.T) {
	_, srv := newTestCatalog(t)
	all := getPage(t, srv, "/api/catalog/entities/by-query?fields=metadata.name&orderField=metadata.name,desc")
	wantAll := []string{"team-b", "team-a", "svc-two", "Svc-Three", "svc-one", "svc-four", "payments", "pay-api", "db-one", "billing", "alice"}
	if got := names(all.Items); !slices.Equal(got, wantAll) {
		t.Fatalf("desc order: got %v want %v", got, wantAll)
	}

	// Forward through pages of 3: a cursor carries filter, order and total, so
	// a conflicting filter on later requests is ignored.
	var got []string
	path := "/api/catalog/entities/by-query?limit=3&fields=metadata.name&orderField=metadata.name,desc"
	p := getPage(t, srv, path)
	var pages []page
	for {
		pages = append(pages, p)
		if p.TotalItems != len(wantAll) {
			t.Fatalf("totalItems %d", p.TotalItems)
		}
		got = append(got, names(p.Items)...)
		if p.PageInfo.NextCursor == "" {
			break
		}
		p = getPage(t, srv, "/api/catalog/entities/by-query?limit=3&fields=metadata.name&filter=kind=api&cursor="+url.QueryEscape(p.PageInfo.NextCursor))
	}
	if !slices.Equal(got, wantAll) {
		t.Fatalf("paged: got %v want %v", got, wantAll)
	}
	if len(pages) != 4 || pages[0].PageInfo.PrevCursor != "" || pages[1].PageInfo.PrevCursor == "" {
		t.Fatalf("unexpected cursors on pages: %+v", pages)
	}
	// Backwards from the last page gives the third page, with both cursors.
	back := getPage(t, srv, "/api/catalog/entities/by-query?limit=3&fields=metadata.name&cursor="+url.QueryEscape(pages[3].PageInfo.PrevCursor))
	if !slices.Equal(names(back.Items), names(pages[2].Items)) || back.PageInfo.NextCursor == "" || back.PageInfo.PrevCursor == "" {
		t.Fatalf("back page: %+v", back)
	}
	// Back to the first page: no prevCursor there.
	first := getPage(t, srv, "/api/catalog/entities/by-query?limit=3&fields=metadata.name&cursor="+url.QueryEscape(pages[1].PageInfo.PrevCursor))
	if !slices.Equal(names(first.Items), names(pages[0].Items)) || first.PageInfo.PrevCursor != "" {
		t.Fatalf("first page: %+v", first)
	}

	// The cursor is Backstage's base64 JSON with the query inside.
	p = getPage(t, srv, "/api/catalog/entities/by-query?limit=1&fields=metadata.name&orderField=metadata.name,asc&filter=kind=group&filter=kind=user,spec.memberOf")
	raw, err := base64.StdEncoding.DecodeString(p.PageInfo.NextCursor)
	if err != nil {
		t.Fatal(err)
	}
	wantPrefix := `{"orderFields":[{"field":"metadata.name","order":"asc"}],"isPrevious":false,"query":{"$any":[{"kind":"group"},{"$all":[{"kind":"user"},{"spec.memberOf":{"$exists":true}}]}]},"fullTextFilter":{"term":""},"orderFieldValues":["alice",`
	if !strings.HasPrefix(string(raw), wantPrefix) || !strings.HasSuffix(string(raw), `,"totalItems":3}`) {
		t.Fatalf("cursor JSON %s", raw)
	}
}

func TestByQueryDetails(t *testing.T) {
	_, srv := newTestCatalog(t)
	tests := []struct {
		name      string
		query     string
		want      []string // in order
		wantTotal int
		sorted    bool
	}{
		{"entities without the order field are left out", "orderField=spec.system,asc", []string{"db-one", "pay-api", "svc-one"}, 3, true},
		{"multi-valued order field repeats entities", "orderField=metadata.tags,asc", []string{"svc-one", "svc-four", "svc-one", "svc-four", "svc-two"}, 3, false},
		{"full text on the order field by default", "orderField=metadata.tags,asc&fullTextFilterTerm=JA", []string{"svc-one", "svc-four"}, 2, false},
		{"full text on named fields", "fullTextFilterTerm=svc-t&fullTextFilterFields=metadata.name,spec.type", []string{"Svc-Three", "svc-two"}, 2, true},
		{"full text LIKE wildcards", "fullTextFilterTerm=5__&fullTextFilterFields=spec.weird", []string{"svc-four"}, 1, true},
		{"offset", "orderField=metadata.name,asc&filter=kind=group&offset=1", []string{"team-b"}, 2, false},
		{"limit zero still counts", "limit=0&filter=kind=group", nil, 2, false},
		{"totalItems exclude", "totalItems=exclude&filter=kind=group", []string{"team-a", "team-b"}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := getPage(t, srv, "/api/catalog/entities/by-query?fields=metadata.name&"+tt.query)
			got := names(p.Items)
			if tt.sorted {
				sort.Strings(got)
			}
			if !slices.Equal(got, tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
				t.Fatalf("got %v want %v", got, tt.want)
			}
			if p.TotalItems != tt.wantTotal {
				t.Fatalf("totalItems %d want %d", p.TotalItems, tt.wantTotal)
			}
		})
	}
}

func TestDefaultLimit(t *testing.T) {
	var ents []map[string]any
	for i := range 250 {
		ents = append(ents, map[string]any{"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
			"metadata": map[string]any{"name": fmt.Sprintf("c%03d", i)},
			"spec":     map[string]any{"type": "service", "lifecycle": "production", "owner": "team-a"}})
	}
	c, err := New(ents)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()
	p := getPage(t, srv, "/api/catalog/entities/by-query?fields=kind")
	if len(p.Items) != DefaultLimit || p.TotalItems != 250 || p.PageInfo.NextCursor == "" {
		t.Fatalf("items %d total %d next %q", len(p.Items), p.TotalItems, p.PageInfo.NextCursor)
	}
	p = getPage(t, srv, "/api/catalog/entities/by-query?fields=kind&limit=100000")
	if len(p.Items) != 250 || p.PageInfo.NextCursor != "" {
		t.Fatalf("big limit: items %d", len(p.Items))
	}
}

func assertError(t *testing.T, r response, status int, name, message string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d want %d (%s)", r.status, status, r.body)
	}
	var body struct {
		Error struct {
			Name    string `json:"name"`
			Message string `json:"message"`
		} `json:"error"`
		Request struct {
			Method string `json:"method"`
			URL    string `json:"url"`
		} `json:"request"`
		Response struct {
			StatusCode int `json:"statusCode"`
		} `json:"response"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
	if body.Error.Name != name || (message != "" && body.Error.Message != message) || body.Response.StatusCode != status || body.Request.Method == "" || body.Request.URL == "" {
		t.Fatalf("error body %s; want %s %q", r.body, name, message)
	}
}

func TestErrors(t *testing.T) {
	_, srv := newTestCatalog(t)
	tests := []struct {
		name, method, path, body string
		status                   int
		errName, message         string
	}{
		{"bad limit", "GET", "/entities/by-query?limit=abc", "", 400, NameInputError, "request/query/limit must be integer"},
		{"negative limit", "GET", "/entities/by-query?limit=-1", "", 400, NameInputError, "request/query/limit must be >= 0"},
		{"repeated limit", "GET", "/entities/by-query?limit=1&limit=2", "", 400, NameInputError, "request/query/limit must be integer"},
		{"unknown parameter", "GET", "/entities/by-query?foo=1", "", 400, NameInputError, "Unknown query parameter 'foo'"},
		{"empty parameter", "GET", "/entities/by-query?filter=", "", 400, NameInputError, "Empty value found for query parameter 'filter'"},
		{"bad filter", "GET", "/entities/by-query?filter=kind=user,=x", "", 400, NameInputError, "Invalid filter, '=x' is not a valid statement (expected a string on the form a=b or a= or a)"},
		{"bad order", "GET", "/entities/by-query?orderField=metadata.name,up", "", 400, NameInputError, "Invalid order field order, must be asc or desc"},
		{"bad totalItems", "GET", "/entities/by-query?totalItems=x", "", 400, NameInputError, "request/query/totalItems must be equal to one of the allowed values: include, exclude"},
		{"bad cursor", "GET", "/entities/by-query?cursor=zzz", "", 400, NameInputError, ""},
		{"missing facet", "GET", "/entity-facets", "", 400, NameInputError, "request/query must have required property 'facet'"},
		{"not found", "GET", "/entities/by-name/component/default/nope", "", 404, NameNotFoundError, "No entity named 'nope' found, with kind 'component' in namespace 'default'"},
		{"by-name takes no parameters", "GET", "/entities/by-name/component/default/svc-one?fields=kind", "", 400, NameInputError, "Unknown query parameter 'fields'"},
		{"by-refs entityRefs type", "POST", "/entities/by-refs", `{"entityRefs":"x"}`, 400, NameInputError, "request/body/entityRefs must be array"},
		{"by-refs missing entityRefs", "POST", "/entities/by-refs", `{}`, 400, NameInputError, "request/body must have required property 'entityRefs'"},
		{"by-refs not an object", "POST", "/entities/by-refs", `[1]`, 400, NameInputError, "request/body must be object"},
		{"by-refs item type", "POST", "/entities/by-refs", `{"entityRefs":[1]}`, 400, NameInputError, "request/body/entityRefs/0 must be string"},
		{"by-refs bad JSON", "POST", "/entities/by-refs", `nope`, 400, NameInputError, ""},
		{"by-refs body too large", "POST", "/entities/by-refs", `{"entityRefs":["` + strings.Repeat("x", MaxBodyBytes) + `"]}`, 400, NameInputError, "request entity too large"},
		{"legacy bad order", "GET", "/entities?order=foo", "", 400, NameInputError, `Invalid order parameter "foo", expected "<asc or desc>:<field name>"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, srv, tt.method, "/api/catalog"+tt.path, tt.body, nil)
			assertError(t, r, tt.status, tt.errName, tt.message)
		})
	}
	for _, p := range []string{"/api/catalog/nope", "/api/catalog/entities/by-name/component/default", "/other"} {
		r := do(t, srv, "GET", p, "", nil)
		if r.status != 404 || len(r.body) != 0 && p != "/other" {
			t.Fatalf("%s: %d %q", p, r.status, r.body)
		}
	}
	if r := do(t, srv, "DELETE", "/api/catalog/entities/by-query", "", nil); r.status != 404 {
		t.Fatalf("DELETE: %d", r.status)
	}
}

func TestByName(t *testing.T) {
	_, srv := newTestCatalog(t)
	for _, p := range []string{"/entities/by-name/component/other/svc-three", "/entities/by-name/Component/OTHER/SVC-THREE", "/entities/by-name/component/other/svc-three/"} {
		r := do(t, srv, "GET", "/api/catalog"+p, "", nil)
		if r.status != 200 {
			t.Fatalf("%s: %d", p, r.status)
		}
		var e map[string]any
		if err := json.Unmarshal(r.body, &e); err != nil {
			t.Fatal(err)
		}
		if names([]map[string]any{e})[0] != "Svc-Three" {
			t.Fatalf("%s: %s", p, r.body)
		}
	}
}

func TestByRefs(t *testing.T) {
	_, srv := newTestCatalog(t)
	tests := []struct {
		name, query, body string
		want              []string // "" for null
	}{
		{"order, case and nulls", "", `{"entityRefs":["Component:default/SVC-ONE","component:nope/x","component:svc-one","user:default/alice"],"fields":["metadata.name"]}`,
			[]string{"svc-one", "", "", "alice"}},
		{"filter parameter", "?filter=kind=user", `{"entityRefs":["component:default/svc-one","user:default/alice"],"fields":["metadata.name"]}`, []string{"", "alice"}},
		{"query predicate", "", `{"entityRefs":["group:default/team-a","group:default/team-b"],"query":{"relations":{"$contains":{"type":"hasMember","targetRef":"user:default/alice"}}},"fields":["metadata.name"]}`, []string{"team-a", ""}},
		{"empty", "", `{"entityRefs":[]}`, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, srv, "POST", "/api/catalog/entities/by-refs"+tt.query, tt.body, nil)
			if r.status != 200 {
				t.Fatalf("%d %s", r.status, r.body)
			}
			var out struct {
				Items []map[string]any `json:"items"`
			}
			if err := json.Unmarshal(r.body, &out); err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for _, it := range out.Items {
				if it == nil {
					got = append(got, "")
				} else {
					got = append(got, names([]map[string]any{it})[0])
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %q want %q", got, tt.want)
			}
		})
	}
	// Backstage's by-refs has no fields query parameter.
	r := do(t, srv, "POST", "/api/catalog/entities/by-refs?fields=kind", `{"entityRefs":[]}`, nil)
	assertError(t, r, 400, NameInputError, "Unknown query parameter 'fields'")
}

func TestFacets(t *testing.T) {
	_, srv := newTestCatalog(t)
	r := do(t, srv, "GET", "/api/catalog/entity-facets?facet=spec.type&facet=Kind&facet=metadata.tags&facet=relations.ownedBy&facet=nope&filter=kind=component&filter=kind=group", "", nil)
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	want := `{"facets":{"spec.type":[{"value":"Service","count":1},{"value":"service","count":2},{"value":"team","count":2},{"value":"website","count":1}],` +
		`"Kind":[{"value":"Component","count":4},{"value":"Group","count":2}],` +
		`"metadata.tags":[{"value":"backend","count":1},{"value":"go","count":1},{"value":"java","count":2},{"value":"python","count":1}],` +
		`"relations.ownedBy":[{"value":"group:default/team-a","count":1},{"value":"group:default/team-b","count":2},{"value":"user:default/alice","count":1}],` +
		`"nope":[]}}`
	if string(r.body) != want {
		t.Fatalf("got  %s\nwant %s", r.body, want)
	}
}

func TestLegacyEntities(t *testing.T) {
	_, srv := newTestCatalog(t)
	r := do(t, srv, "GET", "/api/catalog/entities?fields=metadata.name&limit=3&filter=kind=component&filter=kind=api", "", nil)
	var items []map[string]any
	if err := json.Unmarshal(r.body, &items); err != nil {
		t.Fatal(err)
	}
	// Paginated legacy lists are ordered by entity ref.
	if got := names(items); !slices.Equal(got, []string{"pay-api", "svc-four", "svc-one"}) {
		t.Fatalf("got %v", got)
	}
	link := r.header.Get("Link")
	if !strings.HasPrefix(link, "</entities?fields=metadata.name&limit=3&filter=kind%3Dcomponent&filter=kind%3Dapi&after=") || !strings.HasSuffix(link, `>; rel="next"`) {
		t.Fatalf("link %q", link)
	}
	next := strings.TrimSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`)
	r = do(t, srv, "GET", "/api/catalog"+next, "", nil)
	if err := json.Unmarshal(r.body, &items); err != nil {
		t.Fatal(err)
	}
	if got := names(items); !slices.Equal(got, []string{"svc-two", "Svc-Three"}) || r.header.Get("Link") != "" {
		t.Fatalf("page 2: %v %q", got, r.header.Get("Link"))
	}
	r = do(t, srv, "GET", "/api/catalog/entities?fields=metadata.name&order=desc:metadata.name&limit=3&offset=1", "", nil)
	if err := json.Unmarshal(r.body, &items); err != nil {
		t.Fatal(err)
	}
	if got := names(items); !slices.Equal(got, []string{"team-a", "svc-two", "Svc-Three"}) {
		t.Fatalf("ordered: %v", got)
	}
}

func TestAuth(t *testing.T) {
	c, srv := newTestCatalog(t, WithToken(testToken))
	tests := []struct {
		name, auth, path string
		status           int
		message          string
	}{
		{"missing", "", "/api/catalog/entities/by-query", 401, "Missing credentials"},
		{"wrong scheme", "Basic " + testToken, "/api/catalog/entities/by-query", 401, "Missing credentials"},
		{"wrong token", "Bearer nope", "/api/catalog/entities/by-query", 401, "Illegal token"},
		{"unknown path still needs auth", "", "/api/catalog/nope", 401, "Missing credentials"},
		{"ok", "Bearer " + testToken, "/api/catalog/entities/by-query?limit=1", 200, ""},
		{"scheme case-insensitive", "bearer  " + testToken, "/api/catalog/entities/by-query?limit=1", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tt.auth != "" {
				hdr["Authorization"] = tt.auth
			}
			r := do(t, srv, "GET", tt.path, "", hdr)
			if tt.status == 200 {
				if r.status != 200 {
					t.Fatalf("%d %s", r.status, r.body)
				}
				return
			}
			assertError(t, r, tt.status, NameAuthenticationError, tt.message)
		})
	}
	reqs := c.Requests()
	if len(reqs) != len(tests) {
		t.Fatalf("recorded %d requests", len(reqs))
	}
	last := reqs[len(reqs)-1]
	if last.Authorization != "bearer  "+testToken || last.Query["limit"][0] != "1" || last.Path != "/api/catalog/entities/by-query" || last.RawQuery != "limit=1" {
		t.Fatalf("recorded %+v", last)
	}
}

func TestRequestsBounded(t *testing.T) {
	c, srv := newTestCatalog(t, WithMaxRecorded(2))
	for i := range 3 {
		do(t, srv, "POST", "/api/catalog/entities/by-refs", fmt.Sprintf(`{"entityRefs":["x%d"]}`, i), nil)
	}
	reqs := c.Requests()
	if len(reqs) != 2 || !bytes.Contains(reqs[1].Body, []byte("x2")) || !bytes.Contains(reqs[0].Body, []byte("x1")) {
		t.Fatalf("recorded %+v", reqs)
	}
}

func TestRelations(t *testing.T) {
	c, err := New(fixture())
	if err != nil {
		t.Fatal(err)
	}
	rel := func(ref string) []string {
		en := c.byRef[ref]
		if en == nil {
			t.Fatalf("no %s", ref)
		}
		var out []string
		for _, r := range en.decoded(t)["relations"].([]any) {
			m := r.(map[string]any)
			if len(m) != 2 {
				t.Fatalf("relation shape %v", m)
			}
			out = append(out, m["type"].(string)+" "+m["targetRef"].(string))
		}
		return out
	}
	tests := []struct {
		ref  string
		want []string
	}{
		{"component:default/svc-one", []string{
			"consumesApi api:default/pay-api", "dependsOn component:default/svc-two", "dependsOn resource:default/db-one",
			"hasPart component:default/svc-two", "ownedBy group:default/team-a", "partOf system:default/billing",
			"providesApi api:default/pay-api", "providesApi api:other/zeta"}},
		{"component:default/svc-two", []string{
			"dependencyOf component:default/svc-one", "dependsOn resource:default/db-one", "ownedBy user:default/alice", "partOf component:default/svc-one"}},
		{"group:default/team-a", []string{
			"hasMember user:default/alice", "ownerOf api:default/pay-api", "ownerOf component:default/svc-one",
			"ownerOf domain:default/payments", "ownerOf system:default/billing", "parentOf group:default/team-b"}},
		{"group:default/team-b", []string{
			"childOf group:default/team-a", "ownerOf component:default/svc-four", "ownerOf component:other/svc-three", "ownerOf resource:default/db-one"}},
		{"user:default/alice", []string{"memberOf group:default/team-a", "memberOf group:other/ops", "ownerOf component:default/svc-two"}},
		{"system:default/billing", []string{
			"hasPart api:default/pay-api", "hasPart component:default/svc-one", "hasPart resource:default/db-one",
			"ownedBy group:default/team-a", "partOf domain:default/payments"}},
		{"domain:default/payments", []string{"hasPart system:default/billing", "ownedBy group:default/team-a"}},
		{"api:default/pay-api", []string{"apiConsumedBy component:default/svc-one", "apiProvidedBy component:default/svc-one", "ownedBy group:default/team-a", "partOf system:default/billing"}},
		{"resource:default/db-one", []string{"dependencyOf component:default/svc-one", "dependencyOf component:default/svc-two", "ownedBy group:default/team-b", "partOf system:default/billing"}},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			if got := rel(tt.ref); !slices.Equal(got, tt.want) {
				t.Fatalf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
	md := c.byRef["user:default/alice"].decoded(t)["metadata"].(map[string]any)
	if md["namespace"] != "default" || len(md["uid"].(string)) != 36 || len(md["etag"].(string)) != 40 {
		t.Fatalf("metadata %v", md)
	}
	spec := c.byRef["user:default/alice"].decoded(t)["spec"].(map[string]any)
	if !reflect.DeepEqual(spec["memberOf"], []any{"group:other/ops", "team-a"}) {
		t.Fatalf("memberOf not sorted as Backstage does: %v", spec["memberOf"])
	}
	c2, err := New(fixture())
	if err != nil {
		t.Fatal(err)
	}
	if c.byRef["user:default/alice"].json != c2.byRef["user:default/alice"].json {
		t.Fatal("uid/etag not deterministic")
	}
	if c.Len() != len(fixture()) {
		t.Fatalf("Len %d", c.Len())
	}
}

func TestNewRejects(t *testing.T) {
	base := func(mut func(e map[string]any)) []map[string]any {
		e := map[string]any{"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
			"metadata": map[string]any{"name": "x"},
			"spec":     map[string]any{"type": "service", "lifecycle": "production", "owner": "team-a"}}
		mut(e)
		return []map[string]any{e}
	}
	tests := []struct {
		name     string
		entities []map[string]any
	}{
		{"bad name", base(func(e map[string]any) { e["metadata"].(map[string]any)["name"] = "-x" })},
		{"bad namespace", base(func(e map[string]any) { e["metadata"].(map[string]any)["namespace"] = "Other" })},
		{"uppercase tag", base(func(e map[string]any) { e["metadata"].(map[string]any)["tags"] = []any{"Java"} })},
		{"missing required spec field", base(func(e map[string]any) { delete(e["spec"].(map[string]any), "owner") })},
		{"dependsOn without kind", base(func(e map[string]any) { e["spec"].(map[string]any)["dependsOn"] = []any{"x"} })},
		{"foreign root field", base(func(e map[string]any) { e["extra"] = 1 })},
		{"keys differing only in case", base(func(e map[string]any) { e["spec"].(map[string]any)["Type"] = "x" })},
		{"duplicate ref", append(base(func(map[string]any) {}), base(func(e map[string]any) { e["metadata"].(map[string]any)["name"] = "X" })...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.entities)
			if !errors.Is(err, ErrInvalidEntity) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestInputNotModified(t *testing.T) {
	in := fixture()
	before, _ := json.Marshal(in)
	if _, err := New(in); err != nil {
		t.Fatal(err)
	}
	after, _ := json.Marshal(in)
	if !bytes.Equal(before, after) {
		t.Fatal("New modified its input")
	}
}

func TestConcurrentRequests(t *testing.T) {
	c, srv := newTestCatalog(t)
	done := make(chan struct{})
	for range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 20 {
				do(t, srv, "GET", "/api/catalog/entities/by-query?fields=metadata.name,metadata.annotations&filter=kind=component", "", nil)
				do(t, srv, "POST", "/api/catalog/entities/by-refs", `{"entityRefs":["component:default/svc-one"],"fields":["metadata","metadata.name"]}`, nil)
			}
		}()
	}
	for range 8 {
		<-done
	}
	if len(c.Requests()) != 320 {
		t.Fatalf("recorded %d", len(c.Requests()))
	}
}

// decoded decodes an entry's JSON (the catalog keeps no decoded copy).
func (en *entry) decoded(t *testing.T) map[string]any {
	t.Helper()
	e, err := decodeEntity([]byte(en.json))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

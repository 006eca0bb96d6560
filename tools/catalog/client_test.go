package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fake records requests and answers with a canned status and body.
type fake struct {
	mu     sync.Mutex
	reqs   []*http.Request
	bodies []string
	status int
	body   string
	delay  time.Duration
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.reqs = append(f.reqs, r)
	f.bodies = append(f.bodies, string(b))
	status, body, delay := f.status, f.body, f.delay
	f.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if status == 0 {
		status = 200
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func newClient(t *testing.T, f http.Handler, mod ...func(*Config)) *Client {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	cfg := Config{BaseURL: srv.URL, Token: StaticToken("svc-token")}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestQueryBuildsBackstageRequest(t *testing.T) {
	f := &fake{body: `{"items":[{"kind":"Component","metadata":{"name":"a"}},{"kind":"API","metadata":{"name":"b"}}],"totalItems":7,"pageInfo":{"nextCursor":"abc"}}`}
	c := newClient(t, f)
	page, err := c.Query(context.Background(), Query{
		Filters:        []Filter{{"kind": {"component"}, "spec.type": {"service", "website"}}, {"kind": {"api"}}},
		Fields:         []string{"metadata.name", "kind"},
		Limit:          5,
		Order:          []Order{{Field: "metadata.name"}, {Field: "metadata.title", Descending: true}},
		FullTextTerm:   "orders",
		FullTextFields: []string{"metadata.name"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 2 || page.TotalItems != 7 || page.NextCursor != "abc" {
		t.Fatalf("page = %+v", page)
	}
	r := f.reqs[0]
	if r.URL.Path != "/api/catalog/entities/by-query" {
		t.Errorf("path = %s", r.URL.Path)
	}
	q := r.URL.Query()
	wantFilters := []string{"kind=component,spec.type=service,spec.type=website", "kind=api"}
	if got := q["filter"]; fmt.Sprint(got) != fmt.Sprint(wantFilters) {
		t.Errorf("filter = %q, want %q", got, wantFilters)
	}
	checks := map[string]string{"fields": "metadata.name,kind", "limit": "5", "fullTextFilterTerm": "orders", "fullTextFilterFields": "metadata.name"}
	for k, want := range checks {
		if got := q.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if got := q["orderField"]; fmt.Sprint(got) != "[metadata.name,asc metadata.title,desc]" {
		t.Errorf("orderField = %q", got)
	}
	if got := r.Header.Get("Authorization"); got != "Bearer svc-token" {
		t.Errorf("Authorization = %q", got)
	}
}

func TestQueryWithCursorSendsOnlyCursor(t *testing.T) {
	f := &fake{body: `{"items":[],"totalItems":0,"pageInfo":{}}`}
	c := newClient(t, f)
	_, err := c.Query(context.Background(), Query{Cursor: "cur1", Filters: []Filter{{"kind": {"x"}}}, Order: []Order{{Field: "metadata.name"}}, Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	q := f.reqs[0].URL.Query()
	if q.Get("cursor") != "cur1" || q.Has("filter") || q.Has("orderField") || q.Get("limit") != "3" {
		t.Errorf("query = %v", q)
	}
}

func TestFilterRejectsInjection(t *testing.T) {
	cases := map[string]Filter{
		"comma in value":      {"kind": {"component,kind=user"}},
		"equals in value":     {"metadata.name": {"a=b"}},
		"newline":             {"kind": {"a\nb"}},
		"zero width":          {"kind": {"com\u200bponent"}},
		"comma in key":        {"kind,spec.type": {"x"}},
		"equals in key":       {"kind=api": nil},
		"space in key":        {"kind ": {"x"}},
		"empty value":         {"kind": {""}},
		"non-ascii key":       {"kınd": {"x"}},
		"percent encoded key": {"kind%3D": {"x"}},
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			if s, err := f.Encode(); !errors.Is(err, ErrBadFilter) {
				t.Fatalf("Encode() = %q, %v; want ErrBadFilter", s, err)
			}
		})
	}
	ok, err := Filter{"metadata.annotations.backstage.io/techdocs-ref": nil, "kind": {"Component"}}.Encode()
	if err != nil || ok != "kind=Component,metadata.annotations.backstage.io/techdocs-ref" {
		t.Fatalf("Encode() = %q, %v", ok, err)
	}
}

func TestGetByNameAndErrors(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		want   error
		wantIn string
	}{
		{"found", 200, `{"kind":"Component","metadata":{"name":"x"}}`, nil, ""},
		{"not found", 404, `{"error":{"name":"NotFoundError","message":"secret detail /etc/passwd"}}`, ErrNotFound, "NotFoundError"},
		{"unauthorized", 401, `{"error":{"name":"AuthenticationError","message":"bad token xyz"}}`, ErrNotAllowed, "401"},
		{"forbidden", 403, `{}`, ErrNotAllowed, "403"},
		{"bad input", 400, `{"error":{"name":"InputError","message":"m"}}`, ErrBadInput, "InputError"},
		{"rate limited", 429, `slow down`, ErrRateLimited, "429"},
		{"server error", 500, `<html>stack trace</html>`, ErrUnavailable, "500"},
		{"bad gateway", 502, ``, ErrUnavailable, "502"},
		{"garbage 200", 200, `not json`, ErrUnavailable, "unexpected"},
		{"array 200", 200, `[1,2]`, ErrUnavailable, "unexpected"},
		{"weird error name", 404, `{"error":{"name":"<script>","message":"m"}}`, ErrNotFound, "404"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fake{status: tc.status, body: tc.body}
			c := newClient(t, f)
			_, err := c.GetByName(context.Background(), Ref{Kind: "Component", Namespace: "default", Name: "x"})
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if p := f.reqs[0].URL.Path; p != "/api/catalog/entities/by-name/Component/default/x" {
					t.Errorf("path = %s", p)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.wantIn) {
				t.Errorf("err %q does not contain %q", msg, tc.wantIn)
			}
			for _, leak := range []string{"secret detail", "bad token", "stack trace", "<script>", "slow down", "127.0.0.1"} {
				if strings.Contains(msg, leak) {
					t.Errorf("error %q echoes upstream text %q", msg, leak)
				}
			}
		})
	}
}

func TestTimeoutAndCancel(t *testing.T) {
	f := &fake{delay: 2 * time.Second, body: `{}`}
	c := newClient(t, f, func(c *Config) { c.Timeout = 50 * time.Millisecond })
	_, err := c.GetByName(context.Background(), Ref{Kind: "api", Namespace: "default", Name: "x"})
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("err = %v, want unavailable/timed out", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = c.GetByName(ctx, Ref{Kind: "api", Namespace: "default", Name: "x"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestResponseSizeCap(t *testing.T) {
	f := &fake{body: `{"items":[],"pad":"` + strings.Repeat("x", 4096) + `"}`}
	c := newClient(t, f, func(c *Config) { c.MaxResponseBytes = 1024 })
	_, err := c.Query(context.Background(), Query{})
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err = %v", err)
	}
}

func TestGetByRefsBatchesAndNulls(t *testing.T) {
	var mu sync.Mutex
	var batches [][]string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/catalog/entities/by-refs" {
			w.WriteHeader(404)
			return
		}
		var req struct {
			EntityRefs []string `json:"entityRefs"`
			Fields     []string `json:"fields"`
		}
		body, _ := io.ReadAll(r.Body)
		if len(body) > MaxRefsBodyBytes {
			w.WriteHeader(413)
			return
		}
		_ = json.Unmarshal(body, &req)
		mu.Lock()
		batches = append(batches, req.EntityRefs)
		mu.Unlock()
		items := make([]any, len(req.EntityRefs))
		for i, ref := range req.EntityRefs {
			if !strings.HasSuffix(ref, "-missing") {
				items[i] = map[string]any{"kind": "Component", "metadata": map[string]any{"name": ref}}
			}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"items": items})
	})
	c := newClient(t, h)
	refs := make([]string, 2500)
	for i := range refs {
		refs[i] = fmt.Sprintf("component:default/c%04d", i)
		if i%100 == 0 {
			refs[i] += "-missing"
		}
	}
	got, err := c.GetByRefs(context.Background(), refs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(refs) {
		t.Fatalf("got %d items", len(got))
	}
	for i, it := range got {
		if (it == nil) != (i%100 == 0) {
			t.Fatalf("item %d nil=%v", i, it == nil)
		}
	}
	if len(batches) != 3 || len(batches[0]) != 1000 {
		t.Fatalf("batches = %d (first %d)", len(batches), len(batches[0]))
	}
	// Long refs: the 90 KiB body bound splits batches earlier.
	batches = nil
	long := make([]string, 1000)
	for i := range long {
		long[i] = "component:" + strings.Repeat("s", 60) + "/" + strings.Repeat("n", 58) + fmt.Sprintf("%04d", i)
	}
	if _, err := c.GetByRefs(context.Background(), long, nil); err != nil {
		t.Fatal(err)
	}
	if len(batches) < 2 {
		t.Fatalf("expected the body bound to split 1000 long refs, got %d batch(es)", len(batches))
	}
}

func TestFacets(t *testing.T) {
	f := &fake{body: `{"facets":{"spec.type":[{"value":"service","count":3},{"value":"website","count":1}]}}`}
	c := newClient(t, f)
	res, err := c.Facets(context.Background(), []string{"spec.type"}, []Filter{{"kind": {"component"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res["spec.type"]) != 2 || res["spec.type"][0].Count != 3 {
		t.Fatalf("facets = %+v", res)
	}
	q := f.reqs[0].URL.Query()
	if f.reqs[0].URL.Path != "/api/catalog/entity-facets" || q.Get("facet") != "spec.type" || q.Get("filter") != "kind=component" {
		t.Errorf("request = %s %v", f.reqs[0].URL.Path, q)
	}
}

func TestFileTokenRotation(t *testing.T) {
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte("first\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ft, err := NewFileToken(p)
	if err != nil {
		t.Fatal(err)
	}
	f := &fake{body: `{"kind":"API","metadata":{"name":"x"}}`}
	c := newClient(t, f, func(c *Config) { c.Token = ft })
	ref := Ref{Kind: "api", Namespace: "default", Name: "x"}
	if _, err := c.GetByName(context.Background(), ref); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("second-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Minute)
	if err := os.Chtimes(p, future, future); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetByName(context.Background(), ref); err != nil {
		t.Fatal(err)
	}
	if a, b := f.reqs[0].Header.Get("Authorization"), f.reqs[1].Header.Get("Authorization"); a != "Bearer first" || b != "Bearer second-token" {
		t.Fatalf("tokens = %q, %q", a, b)
	}
	if _, err := NewFileToken(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("missing token file accepted")
	}
}

func TestNewValidates(t *testing.T) {
	for _, u := range []string{"", "localhost:7007", "ftp://x", "http://"} {
		if _, err := New(Config{BaseURL: u, Token: StaticToken("t")}); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
	if _, err := New(Config{BaseURL: "http://x"}); err == nil {
		t.Error("New without token accepted")
	}
}

// TestCompressionIsOffByDefault: the client does not ask Backstage for
// gzip unless told to, so Backstage's one thread does not compress
// answers on a loopback or LAN hop.
func TestCompressionIsOffByDefault(t *testing.T) {
	for _, tc := range []struct {
		name        string
		compression bool
		want        string
	}{{"default", false, ""}, {"on", true, "gzip"}} {
		t.Run(tc.name, func(t *testing.T) {
			var got string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = r.Header.Get("Accept-Encoding")
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, `{"items":[],"pageInfo":{}}`)
			}))
			defer srv.Close()
			c, err := New(Config{BaseURL: srv.URL, Token: StaticToken("t"), Compression: tc.compression})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Query(context.Background(), Query{Limit: 1}); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("Accept-Encoding = %q, want %q", got, tc.want)
			}
		})
	}
}

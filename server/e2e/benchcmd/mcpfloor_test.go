package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
)

// TestMCPFloorForwards checks that the MCP floor answers ours' questions
// over Streamable HTTP with Backstage's body, having asked Backstage the
// REST question with the token.
func TestMCPFloorForwards(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	bs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization")+" "+r.URL.RequestURI())
		mu.Unlock()
		_, _ = w.Write([]byte(`{"from":"backstage"}`))
	}))
	defer bs.Close()
	u, _ := url.Parse(bs.URL)
	floor := httptest.NewServer(newMCPFloor(u, "tok"))
	t.Cleanup(floor.Close) // after the session dialTest closes

	askBoth(t, dialTest(t, floor), `{"from":"backstage"}`)
	want := []string{
		"Bearer tok /api/catalog/entities/by-name/component/default/a-b",
		"Bearer tok /api/catalog/entities/by-query?filter=kind%3Dapi%2Crelations.ownedBy%3Dgroup%3Adefault%2Fteam-x&limit=20",
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != len(want) {
		t.Fatalf("Backstage saw %q, want %q", seen, want)
	}
	for i := range want {
		if seen[i] != want[i] {
			t.Errorf("request %d: %q, want %q", i, seen[i], want[i])
		}
	}
}

// TestMCPEmptyAnswers checks that the empty-answer floor answers both
// questions over Streamable HTTP with its fixed text.
func TestMCPEmptyAnswers(t *testing.T) {
	srv := httptest.NewServer(newMCPEmpty())
	t.Cleanup(srv.Close) // after the session dialTest closes
	askBoth(t, dialTest(t, srv), emptyAnswer)
}

// dialTest opens one MCP session to srv, closed when the test ends.
func dialTest(t *testing.T, srv *httptest.Server) *mcpCaller {
	t.Helper()
	c, err := dialMCP(context.Background(), srv.URL, srv.Client(), nil, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	return c
}

// askBoth asks a floor both of ours' questions and checks each answer's
// text.
func askBoth(t *testing.T, c *mcpCaller, want string) {
	t.Helper()
	for _, q := range []question{
		{Kind: qGet, Ref: entityRef{Kind: "component", Namespace: "default", Name: "a-b"}},
		{Kind: qSearch, Of: "API", Team: "team-x"},
	} {
		a, err := c.call(context.Background(), q, false)
		if err != nil || a.ToolError || a.Text != want {
			t.Errorf("%s: answer %+v, err %v", q.Kind, a, err)
		}
	}
}

//go:build e2e

package harness

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/demo"
)

// entityKey is "kind:namespace/name" in lower case.
func entityKey(e map[string]any) string {
	md, _ := e["metadata"].(map[string]any)
	ns, _ := md["namespace"].(string)
	if ns == "" {
		ns = "default"
	}
	kind, _ := e["kind"].(string)
	name, _ := md["name"].(string)
	return strings.ToLower(kind + ":" + ns + "/" + name)
}

func TestBackstageIngestsEverything(t *testing.T) {
	start := time.Now()
	bs := Start(t, 0)
	t.Logf("Backstage ready at %s with %d entities after %s", bs.BaseURL, bs.Entities, time.Since(start).Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	root := RepoRoot(t)

	demoEntities, err := demo.Entities()
	if err != nil {
		t.Fatal(err)
	}
	fixtures, err := FixtureEntities(root)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{} // kind (lower case) -> sorted keys
	for _, e := range append(append([]map[string]any{}, demoEntities...), fixtures...) {
		kind := strings.ToLower(e["kind"].(string))
		want[kind] = append(want[kind], entityKey(e))
	}

	t.Run("every entity ingested, per kind", func(t *testing.T) {
		for kind, keys := range want {
			sort.Strings(keys)
			var page struct {
				Items      []map[string]any `json:"items"`
				TotalItems int              `json:"totalItems"`
			}
			q := url.Values{"filter": {"kind=" + kind}, "fields": {"kind,metadata.name,metadata.namespace"}}
			if err := bs.GetJSON(ctx, "/api/catalog/entities/by-query?"+q.Encode(), &page); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range page.Items {
				got = append(got, entityKey(e))
			}
			sort.Strings(got)
			if strings.Join(got, " ") != strings.Join(keys, " ") {
				t.Errorf("kind %s:\n got %v\nwant %v", kind, got, keys)
			}
			if page.TotalItems != len(keys) {
				t.Errorf("kind %s: totalItems %d, want %d", kind, page.TotalItems, len(keys))
			}
		}
	})

	t.Run("total matches ExpectedTotal", func(t *testing.T) {
		total, err := ExpectedTotal(root)
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			TotalItems int `json:"totalItems"`
		}
		if err := bs.GetJSON(ctx, "/api/catalog/entities/by-query?limit=0", &page); err != nil {
			t.Fatal(err)
		}
		if page.TotalItems != total {
			t.Errorf("totalItems %d, want %d", page.TotalItems, total)
		}
	})

	t.Run("no processing errors", func(t *testing.T) {
		var page struct {
			Items []map[string]any `json:"items"`
		}
		if err := bs.GetJSON(ctx, "/api/catalog/entities/by-query?fields=kind,metadata.name,metadata.namespace,status", &page); err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Items {
			if st, ok := e["status"]; ok {
				t.Errorf("%s has status %v", entityKey(e), st)
			}
		}
		// Processing errors of entities that never made it are only logged.
		log, err := os.ReadFile(bs.LogFile)
		if err != nil {
			t.Fatal(err)
		}
		ansi := regexp.MustCompile("\x1b\\[[0-9;]*m")
		bad := regexp.MustCompile(`(?i)\b(warn|error)\b`)
		for _, line := range strings.Split(ansi.ReplaceAllString(string(log), ""), "\n") {
			// The harness polls readiness while Backstage boots; on a
			// loaded machine a poll can land before the catalog router
			// is up, which Backstage logs as a 503 error. That is not an
			// entity processing error.
			if strings.Contains(line, "Service has not started up yet") {
				continue
			}
			if strings.Contains(line, "catalog") && bad.MatchString(line) {
				t.Errorf("catalog log line: %s", line)
			}
		}
	})

	t.Run("token required", func(t *testing.T) {
		tests := []struct {
			name   string
			header string
			want   int
		}{
			{name: "no header", want: http.StatusUnauthorized},
			{name: "wrong token", header: "Bearer not-the-token-at-all", want: http.StatusUnauthorized},
			{name: "token without Bearer", header: bs.Token, want: http.StatusUnauthorized},
			{name: "right token", header: "Bearer " + bs.Token, want: http.StatusOK},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, bs.BaseURL+"/api/catalog/entities/by-query?limit=1", nil)
				if err != nil {
					t.Fatal(err)
				}
				if tc.header != "" {
					req.Header.Set("Authorization", tc.header)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.want {
					t.Errorf("status %d, want %d: %s", resp.StatusCode, tc.want, body)
				}
				if tc.want == http.StatusUnauthorized {
					var e struct {
						Error struct{ Name, Message string } `json:"error"`
					}
					if err := json.Unmarshal(body, &e); err != nil || e.Error.Name != "AuthenticationError" {
						t.Errorf("error body %s (%v), want an AuthenticationError", body, err)
					}
				}
			})
		}
	})

	t.Run("relations of a component", func(t *testing.T) {
		var e struct {
			Relations []struct {
				Type      string `json:"type"`
				TargetRef string `json:"targetRef"`
			} `json:"relations"`
		}
		if err := bs.GetJSON(ctx, "/api/catalog/entities/by-name/component/default/checkout-service", &e); err != nil {
			t.Fatal(err)
		}
		pretty, _ := json.MarshalIndent(e.Relations, "", "  ")
		t.Logf("relations of component:default/checkout-service:\n%s", pretty)
		have := map[string]bool{}
		for _, r := range e.Relations {
			have[r.Type+" "+r.TargetRef] = true
		}
		for _, w := range []string{
			"ownedBy group:default/team-checkout",
			"partOf system:default/checkout",
			"providesApi api:default/checkout-api",
			"consumesApi api:default/payments-api",
			"dependsOn component:default/payments-service",
		} {
			if !have[w] {
				t.Errorf("missing relation %q", w)
			}
		}
	})

	t.Run("fixture secrets are served verbatim by Backstage", func(t *testing.T) {
		secrets, err := LoadSecrets(root)
		if err != nil {
			t.Fatal(err)
		}
		var all json.RawMessage
		if err := bs.GetJSON(ctx, "/api/catalog/entities/by-query?filter=metadata.annotations.backstage.io/managed-by-location=file:"+url.QueryEscape(SecretsFixture(root)), &all); err != nil {
			t.Fatal(err)
		}
		var decoded any
		if err := json.Unmarshal(all, &decoded); err != nil {
			t.Fatal(err)
		}
		var flat []string
		collectStrings(decoded, &flat)
		for _, s := range secrets {
			if !containsIn(flat, s.Value) {
				t.Errorf("%s from %s not served by Backstage", s.Type, s.Entity)
			}
		}
	})

	t.Run("MCP actions endpoint accepts the static token", func(t *testing.T) {
		init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"harness","version":"0"}}}`
		for _, withToken := range []bool{false, true} {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, bs.BaseURL+"/api/mcp-actions/v1", strings.NewReader(init))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			if withToken {
				req.Header.Set("Authorization", "Bearer "+bs.Token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			want := http.StatusUnauthorized
			if withToken {
				want = http.StatusOK
			}
			if resp.StatusCode != want {
				t.Errorf("token=%v: status %d, want %d: %s", withToken, resp.StatusCode, want, body)
			}
			if withToken && !strings.Contains(string(body), `"serverInfo"`) {
				t.Errorf("initialize result lacks serverInfo: %s", body)
			}
		}
	})
}

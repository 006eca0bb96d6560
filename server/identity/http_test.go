package identity

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

func TestMiddleware(t *testing.T) {
	var (
		mu       sync.Mutex
		failures []string
	)
	f := newFixture(t, nil)
	f.auth.onFailure = func(_ context.Context, reason string, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		failures = append(failures, reason)
	}
	var seen *Principal
	h := f.auth.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen, _ = FromContext(r.Context())
		w.WriteHeader(http.StatusNoContent)
	}))
	valid := sign(t, f.key, f.claims(nil))
	expired := sign(t, f.key, f.claims(map[string]any{"exp": f.clock.Now().Unix() - 600}))
	meta := `resource_metadata="` + testPublicURL + `/.well-known/oauth-protected-resource/mcp"`
	tests := []struct {
		name       string
		headers    []string
		wantStatus int
		wantWWW    string // exact
		wantReason string
	}{
		{"valid", []string{"Bearer " + valid}, http.StatusNoContent, "", ""},
		{"lowercase scheme", []string{"bearer " + valid}, http.StatusNoContent, "", ""},
		{"missing", nil, http.StatusUnauthorized, "Bearer " + meta, "no token"},
		{"other scheme", []string{"Basic dTpw"}, http.StatusUnauthorized, "Bearer " + meta, "no token"},
		{"expired", []string{"Bearer " + expired}, http.StatusUnauthorized,
			`Bearer error="invalid_token", error_description="token expired", ` + meta, "token expired"},
		{"garbage", []string{"Bearer not-a-jwt"}, http.StatusUnauthorized,
			`Bearer error="invalid_token", error_description="malformed token", ` + meta, "malformed token"},
		{"two headers", []string{"Bearer " + valid, "Bearer " + valid}, http.StatusBadRequest,
			`Bearer error="invalid_request", error_description="several Authorization headers", ` + meta, "several authorization headers"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			failures = nil
			mu.Unlock()
			seen = nil
			req := httptest.NewRequest(http.MethodPost, "/mcp", nil)
			for _, v := range tc.headers {
				req.Header.Add("Authorization", v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d", rec.Code, tc.wantStatus)
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != tc.wantWWW {
				t.Fatalf("WWW-Authenticate = %s\nwant %s", got, tc.wantWWW)
			}
			if strings.Contains(rec.Body.String(), valid) || strings.Contains(rec.Body.String(), expired) {
				t.Fatal("response echoes the token")
			}
			if tc.wantStatus == http.StatusNoContent {
				if seen == nil || seen.User.Ref != "user:default/jane" {
					t.Fatalf("principal not in context: %+v", seen)
				}
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if len(failures) != 1 || failures[0] != tc.wantReason {
				t.Fatalf("OnFailure reasons %q, want %q", failures, tc.wantReason)
			}
		})
	}
}

func TestMiddlewareUnknownUserIsForbidden(t *testing.T) {
	f := newFixture(t, nil)
	h := f.auth.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { t.Fatal("reached handler") }))
	req := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	req.Header.Set("Authorization", "Bearer "+sign(t, f.key, f.claims(map[string]any{"email": "x@nowhere"})))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Fatalf("status %d", rec.Code)
	}
}

func TestInsufficientScope(t *testing.T) {
	f := newFixture(t, nil)
	tests := []struct {
		name  string
		write func(http.ResponseWriter)
		want  string
	}{
		{"package function", func(w http.ResponseWriter) { InsufficientScope(w, "catalog.read") },
			`Bearer error="insufficient_scope", scope="catalog.read"`},
		{"method with metadata", func(w http.ResponseWriter) { f.auth.InsufficientScope(w, "catalog.read catalog.search") },
			`Bearer error="insufficient_scope", scope="catalog.read catalog.search", resource_metadata="` + testPublicURL + `/.well-known/oauth-protected-resource/mcp"`},
		{"quote cannot escape", func(w http.ResponseWriter) { InsufficientScope(w, `a" error="x`) },
			`Bearer error="insufficient_scope", scope="a error=x"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tc.write(rec)
			if rec.Code != http.StatusForbidden {
				t.Fatalf("status %d", rec.Code)
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestProtectedResourceMetadata(t *testing.T) {
	f := newFixture(t, nil)
	h := f.auth.ProtectedResourceMetadata()
	for _, path := range []string{"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"} {
		t.Run(path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("status %d type %q", rec.Code, rec.Header().Get("Content-Type"))
			}
			var got map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			want := map[string]any{
				"resource":                 testAudience,
				"authorization_servers":    []any{f.iss.URL()},
				"scopes_supported":         []any{"catalog.read"},
				"bearer_methods_supported": []any{"header"},
				"resource_name":            DefaultResourceName,
			}
			gotJSON, _ := json.Marshal(got)
			wantJSON, _ := json.Marshal(want)
			if string(gotJSON) != string(wantJSON) {
				t.Fatalf("got  %s\nwant %s", gotJSON, wantJSON)
			}
		})
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/.well-known/oauth-protected-resource", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST status %d", rec.Code)
	}
}

// TestChallengeNamesRequiredScope: with a required scope, the 401
// challenge names it (and only sanitized scope characters), for a missing
// and for an invalid token alike; without one, it carries no scope.
func TestChallengeNamesRequiredScope(t *testing.T) {
	meta := `resource_metadata="` + testPublicURL + `/.well-known/oauth-protected-resource/mcp"`
	tests := []struct {
		name, scope, auth, want string
	}{
		{"no token", "catalog.read", "", `Bearer ` + meta + `, scope="catalog.read"`},
		{"invalid token", "catalog.read", "Bearer not-a-jwt",
			`Bearer error="invalid_token", error_description="malformed token", ` + meta + `, scope="catalog.read"`},
		{"two scopes", "catalog.read  openid", "", `Bearer ` + meta + `, scope="catalog.read openid"`},
		{"quote cannot escape", `x" error="y`, "", `Bearer ` + meta + `, scope="x error=y"`},
		{"no required scope", "", "", `Bearer ` + meta},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			auth, err := New(Options{Config: f.auth.cfg, PublicURL: testPublicURL, Catalog: f.catalog, Now: f.clock.Now,
				HTTPClient: f.iss.Client(), ChallengeScope: tc.scope})
			if err != nil {
				t.Fatal(err)
			}
			h := auth.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Fatal("reached handler") }))
			req := httptest.NewRequest(http.MethodPost, "/mcp", nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusUnauthorized {
				t.Fatalf("status %d", rec.Code)
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

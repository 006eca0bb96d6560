package doctor

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/connect"
	"github.com/backstage-mcp/backstage-mcp/server/login"
	"github.com/go-jose/go-jose/v4"
	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
	"golang.org/x/oauth2"
)

// idp is a fake OpenID provider: discovery, keys, and tokens it signs.
type idp struct {
	srv      *httptest.Server
	key      *rsa.PrivateKey
	issuer   string // what its discovery document says
	noDevice bool
}

func newIDP(t *testing.T) *idp {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &idp{key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		d := map[string]any{
			"issuer": p.issuer, "jwks_uri": p.srv.URL + "/jwks", "token_endpoint": p.srv.URL + "/token",
			"authorization_endpoint": p.srv.URL + "/authorize", "code_challenge_methods_supported": []string{"S256"},
			"response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
		}
		if !p.noDevice {
			d["device_authorization_endpoint"] = p.srv.URL + "/device"
		}
		_ = json.NewEncoder(w).Encode(d)
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	p.issuer = p.srv.URL
	return p
}

// token signs an access token with claims over the defaults.
func (p *idp) token(t *testing.T, claims map[string]any) string {
	t.Helper()
	c := map[string]any{
		"iss": p.srv.URL, "sub": "id-jane", "email": "jane@example.com", "azp": "cli",
		"scope": "catalog.read", "aud": "https://mcp.example.com/mcp", "groups": []string{"engineering"},
		"exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(),
	}
	for k, v := range claims {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: p.key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(c)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// backstage is a fake catalog: one user in team-a, a component team-a owns.
func backstage(t *testing.T, status int) *httptest.Server {
	t.Helper()
	user := map[string]any{"apiVersion": "backstage.io/v1alpha1", "kind": "User", "metadata": map[string]any{"name": "jane", "namespace": "default"},
		"spec":      map[string]any{"profile": map[string]any{"email": "jane@example.com"}, "memberOf": []string{"team-a"}},
		"relations": []any{map[string]any{"type": "memberOf", "targetRef": "group:default/team-a"}}}
	group := map[string]any{"apiVersion": "backstage.io/v1alpha1", "kind": "Group", "metadata": map[string]any{"name": "team-a", "namespace": "default"},
		"spec": map[string]any{"type": "team", "children": []string{}}}
	comp := map[string]any{"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": map[string]any{"name": "svc", "namespace": "default"},
		"spec": map[string]any{"type": "service", "lifecycle": "production", "owner": "group:default/team-a"}}
	all := []map[string]any{user, group, comp}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer svc-token" || status != http.StatusOK {
			code := status
			if code == http.StatusOK {
				code = http.StatusUnauthorized
			}
			http.Error(w, `{"error":{"name":"AuthenticationError"}}`, code)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/api/catalog/entities/by-query":
			items := all
			if strings.Contains(r.URL.RawQuery, "spec.profile.email") {
				items = all[:1]
				if !strings.Contains(r.URL.Query().Get("filter"), "jane@example.com") {
					items = nil
				}
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"items": items, "totalItems": len(items), "pageInfo": map[string]any{}})
		case strings.HasPrefix(r.URL.Path, "/api/catalog/entities/by-name/"):
			parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/api/catalog/entities/by-name/"), "/")
			for _, e := range all {
				md := e["metadata"].(map[string]any)
				if strings.EqualFold(e["kind"].(string), parts[0]) && md["name"] == parts[2] {
					_ = json.NewEncoder(w).Encode(e)
					return
				}
			}
			http.NotFound(w, r)
		case r.URL.Path == "/api/catalog/entities/by-refs":
			var body struct {
				EntityRefs []string `json:"entityRefs"`
			}
			_ = json.NewDecoder(r.Body).Decode(&body)
			items := []any{}
			for _, ref := range body.EntityRefs {
				var found any
				for _, e := range all {
					md := e["metadata"].(map[string]any)
					if strings.EqualFold(ref, fmt.Sprintf("%s:default/%s", e["kind"], md["name"])) {
						found = e
					}
				}
				items = append(items, found)
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"items": items})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

const testPolicy = `version: 1
scopes:
  "catalog.read": ["catalog:read"]
roles:
  - name: engineers
    bind: { idpGroups: [engineering] }
    tools: ["catalog:read"]
    entities:
      allow:
        - IS_ENTITY_KIND: { kinds: [component, group] }
    rateClass: default
`

// setup writes a config for bsURL and issuer, and a store.
func setup(t *testing.T, bsURL, issuer string) (cfgPath string, store *login.Store) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(testPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`server:
  publicURL: https://mcp.example.com
backstage:
  baseUrl: %s
  token: svc-token
auth:
  issuers:
    - url: %s
policy:
  file: policy.yaml
audit:
  path: %s
`, bsURL, issuer, filepath.Join(dir, "audit.log"))
	cfgPath = filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgPath, &login.Store{Dir: filepath.Join(dir, "store")}
}

func save(t *testing.T, s *login.Store, key, access, refresh string) {
	t.Helper()
	if err := s.SaveKey(key, &login.Entry{Issuer: key, ClientID: "cli", Token: &oauth2.Token{AccessToken: access, RefreshToken: refresh}}); err != nil {
		t.Fatal(err)
	}
}

// find returns the result whose check starts with name.
func find(t *testing.T, rs []Result, name string) Result {
	t.Helper()
	for _, r := range rs {
		if strings.HasPrefix(r.Check, name) {
			return r
		}
	}
	t.Fatalf("no %q check in %+v", name, rs)
	return Result{}
}

func want(t *testing.T, r Result, st Status, fragments ...string) {
	t.Helper()
	text := strings.Join(r.Lines, "\n") + "\nfix: " + r.Fix
	if r.Status != st {
		t.Errorf("%s: status %s, want %s\n%s", r.Check, r.Status, st, text)
	}
	for _, f := range fragments {
		if !strings.Contains(text, f) {
			t.Errorf("%s: %q not in\n%s", r.Check, f, text)
		}
	}
}

func run(cfgPath string, store *login.Store) []Result {
	return Run(context.Background(), Options{ConfigFile: cfgPath, Store: store, Getenv: func(string) string { return "" }})
}

func TestAllGood(t *testing.T) {
	p := newIDP(t)
	bs := backstage(t, http.StatusOK)
	cfg, store := setup(t, bs.URL, p.issuer)
	save(t, store, p.issuer, p.token(t, nil), "")
	rs := run(cfg, store)
	want(t, find(t, rs, "config"), OK, "policy", "1 role(s)")
	want(t, find(t, rs, "backstage"), OK, "3 entities")
	want(t, find(t, rs, "identity provider"), OK, "device flow: yes", "PKCE S256: yes", "dynamic client registration: no")
	want(t, find(t, rs, "your token"), OK, "user: jane@example.com (sub id-jane)", "scopes: catalog.read", "signature: verified", "expires:")
	want(t, find(t, rs, "policy for you"), OK, "Backstage user: user:default/jane; groups: group:default/team-a", "roles: engineers",
		"catalog_get_entity", "entities visible of 3 read: component 1, group 1")
	if Failed(rs) {
		t.Error("Failed() on all-good results")
	}
	var b strings.Builder
	Write(&b, rs)
	if !strings.Contains(b.String(), "All checks passed.") {
		t.Errorf("output:\n%s", b.String())
	}
}

func TestBadConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte("backstage:\n  baseUrl: [oops\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rs := run(cfg, &login.Store{Dir: dir})
	want(t, find(t, rs, "config"), Fail, "config check")
	want(t, find(t, rs, "backstage"), Skipped)
	if !Failed(rs) {
		t.Error("not Failed()")
	}
}

func TestBadPolicy(t *testing.T) {
	p := newIDP(t)
	cfg, store := setup(t, "http://127.0.0.1:1", p.issuer)
	if err := os.WriteFile(filepath.Join(filepath.Dir(cfg), "policy.yaml"), []byte("version: 1\nroles:\n  - name: x\n    bind: { nobody: true }\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	want(t, find(t, run(cfg, store), "config"), Fail, "policy check")
}

func TestBackstageRefusesTheServiceToken(t *testing.T) {
	p := newIDP(t)
	cfg, store := setup(t, backstage(t, http.StatusUnauthorized).URL, p.issuer)
	want(t, find(t, run(cfg, store), "backstage"), Fail, "401", "externalAccess")
}

func TestBackstageUnreachable(t *testing.T) {
	p := newIDP(t)
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	cfg, store := setup(t, dead.URL, p.issuer)
	want(t, find(t, run(cfg, store), "backstage"), Fail, "reachable from here")
}

func TestBackstageIsNotBackstage(t *testing.T) {
	p := newIDP(t)
	cfg, store := setup(t, backstage(t, http.StatusNotFound).URL, p.issuer)
	want(t, find(t, run(cfg, store), "backstage"), Fail, "404", "backend (not the frontend)")
}

func TestProviderChecks(t *testing.T) {
	bs := backstage(t, http.StatusOK)
	t.Run("discovery missing", func(t *testing.T) {
		dead := httptest.NewServer(http.NotFoundHandler())
		defer dead.Close()
		cfg, store := setup(t, bs.URL, dead.URL)
		want(t, find(t, run(cfg, store), "identity provider"), Fail, "status 404", "check the issuer URL")
	})
	t.Run("issuer mismatch", func(t *testing.T) {
		p := newIDP(t)
		p.issuer = p.srv.URL + "/"
		cfg, store := setup(t, bs.URL, p.srv.URL)
		want(t, find(t, run(cfg, store), "identity provider"), Fail, "names issuer", `set the issuer URL to "`+p.srv.URL+`/"`)
	})
	t.Run("no device flow", func(t *testing.T) {
		p := newIDP(t)
		p.noDevice = true
		cfg, store := setup(t, bs.URL, p.issuer)
		want(t, find(t, run(cfg, store), "identity provider"), Warn, "device flow: no", "enable the device flow")
	})
}

func TestTokenChecks(t *testing.T) {
	bs := backstage(t, http.StatusOK)
	p := newIDP(t)
	cases := []struct {
		name    string
		access  string
		refresh string
		status  Status
		has     []string
	}{
		{"none stored", "", "", Warn, []string{"no stored token", "backstage-mcp login --issuer " + p.issuer}},
		{"expired without refresh", p.token(t, map[string]any{"exp": time.Now().Add(-time.Hour).Unix()}), "", Fail, []string{"expired", "no refresh token", "sign in again"}},
		{"expired with refresh", p.token(t, map[string]any{"exp": time.Now().Add(-time.Hour).Unix()}), "rt", OK, []string{"refreshed on next use"}},
		{"for another server", p.token(t, map[string]any{"aud": "https://other.example.com/mcp"}), "", Fail, []string{"not for https://mcp.example.com/mcp", "resource parameter"}},
		{"not a JWT", "opaque-token", "", Fail, []string{"not a JWT", "JWT access tokens"}},
		{"bad signature", p.token(t, nil)[:len(p.token(t, nil))-4] + "AAAA", "", Fail, []string{"signature:", "do not verify"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, store := setup(t, bs.URL, p.issuer)
			if c.access != "" {
				save(t, store, p.issuer, c.access, c.refresh)
			}
			r := find(t, run(cfg, store), "your token")
			want(t, r, c.status, c.has...)
			if c.access != "" && strings.Contains(strings.Join(r.Lines, " ")+r.Fix, c.access) {
				t.Error("the token was printed")
			}
		})
	}
	t.Run("the store is open to others", func(t *testing.T) {
		cfg, store := setup(t, bs.URL, p.issuer)
		save(t, store, p.issuer, p.token(t, nil), "")
		if err := os.Chmod(store.Path(), 0o644); err != nil {
			t.Fatal(err)
		}
		want(t, find(t, run(cfg, store), "your token"), Fail, "permissions", "chmod 600")
	})
}

func TestPolicyGrantsNothing(t *testing.T) {
	bs := backstage(t, http.StatusOK)
	p := newIDP(t)
	cfg, store := setup(t, bs.URL, p.issuer)
	save(t, store, p.issuer, p.token(t, map[string]any{"groups": []string{"sales"}}), "")
	want(t, find(t, run(cfg, store), "policy for you"), Fail, "roles: (none)", "tools: (none)", "policy explain")
}

// mcpServer is a shared server: metadata, a bearer check (the token in
// *accept), whoami when tools is set.
func mcpServer(t *testing.T, p *idp, accept *string, tools bool) string {
	t.Helper()
	s := mcpserver.NewMCPServer("fake", "1", mcpserver.WithToolCapabilities(false))
	if tools {
		s.AddTool(mcp.NewTool("whoami"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultStructured(map[string]any{"user": "user:default/jane", "ownershipRefs": []string{"user:default/jane", "group:default/team-a"}}, "jane"), nil
		})
	}
	h := mcpserver.NewStreamableHTTPServer(s)
	var base string
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/oauth-protected-resource/mcp", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"resource":%q,"authorization_servers":[%q],"scopes_supported":["catalog.read"]}`, base+"/mcp", p.issuer)
	})
	mux.HandleFunc("/mcp", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+*accept {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	base = srv.URL
	return base + "/mcp"
}

func TestServerView(t *testing.T) {
	p := newIDP(t)
	view := func(t *testing.T, tools bool) []Result {
		t.Helper()
		var accept string
		u := mcpServer(t, p, &accept, tools)
		accept = p.token(t, map[string]any{"aud": u})
		store := &login.Store{Dir: t.TempDir()}
		save(t, store, connect.StoreKey(u), accept, "rt")
		return Run(context.Background(), Options{ServerURL: u, Store: store})
	}
	t.Run("all good", func(t *testing.T) {
		rs := view(t, true)
		want(t, find(t, rs, "server"), OK, "identity providers: "+p.issuer)
		want(t, find(t, rs, "identity provider"), OK)
		want(t, find(t, rs, "your token"), OK, "user: jane@example.com", "signature: verified")
		want(t, find(t, rs, "what the server lets you do"), OK, "tools: whoami", "you are user:default/jane; groups: group:default/team-a")
	})
	t.Run("no tools granted", func(t *testing.T) {
		want(t, find(t, view(t, false), "what the server lets you do"), Fail, "tools: (none)", "grants you no tool")
	})
	t.Run("not signed in", func(t *testing.T) {
		var accept string
		u := mcpServer(t, p, &accept, true)
		rs := Run(context.Background(), Options{ServerURL: u, Store: &login.Store{Dir: t.TempDir()}})
		want(t, find(t, rs, "your token"), Warn, "backstage-mcp connect --login --client-id ID "+u)
	})
	t.Run("no metadata", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		defer srv.Close()
		rs := Run(context.Background(), Options{ServerURL: srv.URL + "/mcp", Store: &login.Store{Dir: t.TempDir()}})
		want(t, find(t, rs, "server"), Fail, "no OAuth protected-resource metadata", "auth.issuers")
	})
}

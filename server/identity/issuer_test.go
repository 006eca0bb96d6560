package identity

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/internal/identitytest"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
)

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *testClock { return &testClock{t: time.Unix(1_800_000_000, 0)} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// The in-process OpenID provider of these tests is identitytest's.
type signingKey = identitytest.Key

func newRSAKey(tb testing.TB, kid string) signingKey { return identitytest.NewRSAKey(tb, kid) }

func newECKey(tb testing.TB, kid string) signingKey { return identitytest.NewECKey(tb, kid) }

func newTestIssuer(tb testing.TB, keys ...signingKey) *identitytest.Provider {
	return identitytest.New(tb, keys...)
}

// sign makes a compact JWS of claims with k.
func sign(tb testing.TB, k signingKey, claims map[string]any) string {
	tb.Helper()
	return k.Sign(tb, claims)
}

// unsigned makes an alg=none token.
func unsigned(claims map[string]any) string {
	h, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT"})
	p, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p) + "."
}

// fakeCatalog is an in-memory Catalog counting its calls.
type fakeCatalog struct {
	mu       sync.Mutex
	users    []map[string]any
	entities map[string]map[string]any
	finds    int
	gets     int
	filters  []string
}

func (f *fakeCatalog) FindUsers(_ context.Context, filter catalog.Filter) ([]map[string]any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.finds++
	enc, err := filter.Encode()
	if err != nil {
		return nil, err
	}
	f.filters = append(f.filters, enc)
	var field, value string
	for k, vs := range filter {
		if k != "kind" && len(vs) == 1 {
			field, value = k, vs[0]
		}
	}
	var out []map[string]any
	for _, u := range f.users {
		switch field {
		case "spec.profile.email":
			spec, _ := u["spec"].(map[string]any)
			prof, _ := spec["profile"].(map[string]any)
			if prof["email"] == value {
				out = append(out, u)
			}
		case "metadata.name":
			meta, _ := u["metadata"].(map[string]any)
			if meta["name"] == value {
				out = append(out, u)
			}
		}
	}
	return out, nil
}

func (f *fakeCatalog) GetEntity(_ context.Context, ref string) (map[string]any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets++
	e, ok := f.entities[ref]
	if !ok {
		return nil, ErrEntityNotFound
	}
	return e, nil
}

func rel(typ, target string) any {
	return map[string]any{"type": typ, "targetRef": target}
}

func userEntity(name, email string, rels ...any) map[string]any {
	return map[string]any{
		"kind":      "User",
		"metadata":  map[string]any{"name": name, "namespace": "default"},
		"spec":      map[string]any{"profile": map[string]any{"email": email}},
		"relations": rels,
	}
}

func groupEntity(name string, rels ...any) map[string]any {
	return map[string]any{
		"kind":      "Group",
		"metadata":  map[string]any{"name": name},
		"relations": rels,
	}
}

// orgCatalog: jane ∈ team-a ⊂ dept ⊂ org ⊂ dept (cycle); bob ∈ team-b.
func orgCatalog() *fakeCatalog {
	jane := userEntity("jane", "jane@example.com", rel("memberOf", "group:default/team-a"))
	bob := userEntity("bob", "bob@example.com", rel("memberOf", "group:default/team-b"))
	return &fakeCatalog{
		users: []map[string]any{jane, bob},
		entities: map[string]map[string]any{
			"user:default/jane":    jane,
			"user:default/bob":     bob,
			"group:default/team-a": groupEntity("team-a", rel("childOf", "group:default/dept")),
			"group:default/dept":   groupEntity("dept", rel("childOf", "group:default/org")),
			"group:default/org":    groupEntity("org", rel("childOf", "group:default/dept")),
			"group:default/team-b": groupEntity("team-b"),
		},
	}
}

const testPublicURL = "https://mcp.example.com"
const testAudience = testPublicURL + "/mcp"

// fixture is an Authenticator wired to one in-process issuer.
type fixture struct {
	iss     *identitytest.Provider
	key     signingKey
	clock   *testClock
	auth    *Authenticator
	catalog *fakeCatalog
}

func newFixture(tb testing.TB, mutate func(*Config)) *fixture {
	tb.Helper()
	key := newRSAKey(tb, "k1")
	iss := newTestIssuer(tb, key)
	clock := newClock()
	cat := orgCatalog()
	cfg := Config{
		Issuers:         []IssuerConfig{{URL: iss.URL()}},
		ScopesSupported: []string{"catalog.read"},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	auth, err := New(Options{Config: cfg, PublicURL: testPublicURL, Catalog: cat, Now: clock.Now, HTTPClient: iss.Client()})
	if err != nil {
		tb.Fatal(err)
	}
	return &fixture{iss: iss, key: key, clock: clock, auth: auth, catalog: cat}
}

// claims returns valid claims for jane, with overrides (nil value deletes).
func (f *fixture) claims(over map[string]any) map[string]any {
	now := f.clock.Now().Unix()
	c := map[string]any{
		"iss":   f.iss.URL(),
		"sub":   "sub-jane",
		"aud":   []string{testAudience, "other"},
		"exp":   now + 300,
		"iat":   now - 10,
		"nbf":   now - 10,
		"jti":   "tok-1",
		"azp":   "vscode",
		"scope": "catalog.read openid",
		"email": "jane@example.com",
		"name":  "Jane Doe",
	}
	for k, v := range over {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

package identity

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/backstage-mcp/backstage-mcp/server/internal/identitytest"
)

func TestVerifyToken(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxTokenAge = time.Hour })
	now := f.clock.Now().Unix()
	pubDER, err := x509.MarshalPKIXPublicKey(f.key.Signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	stranger := newRSAKey(t, "k1") // same kid, different key

	tests := []struct {
		name   string
		token  func() string
		reason string // "" = valid
	}{
		{"valid", func() string { return sign(t, f.key, f.claims(nil)) }, ""},
		{"valid aud as string", func() string { return sign(t, f.key, f.claims(map[string]any{"aud": testAudience})) }, ""},
		{"expired", func() string { return sign(t, f.key, f.claims(map[string]any{"exp": now - 60})) }, "token expired"},
		{"expired within skew", func() string { return sign(t, f.key, f.claims(map[string]any{"exp": now - 20})) }, ""},
		{"missing exp", func() string { return sign(t, f.key, f.claims(map[string]any{"exp": nil})) }, "missing exp"},
		{"not yet valid", func() string { return sign(t, f.key, f.claims(map[string]any{"nbf": now + 120})) }, "token not yet valid"},
		{"nbf within skew", func() string { return sign(t, f.key, f.claims(map[string]any{"nbf": now + 20})) }, ""},
		{"iat in the future", func() string { return sign(t, f.key, f.claims(map[string]any{"iat": now + 120})) }, "token issued in the future"},
		{"untrusted issuer", func() string {
			return sign(t, f.key, f.claims(map[string]any{"iss": "https://evil.example.com"}))
		}, "untrusted issuer"},
		{"wrong aud", func() string { return sign(t, f.key, f.claims(map[string]any{"aud": []string{"https://other/mcp"}})) }, "wrong audience"},
		{"missing aud", func() string { return sign(t, f.key, f.claims(map[string]any{"aud": nil})) }, "wrong audience"},
		{"alg none", func() string { return unsigned(f.claims(nil)) }, "malformed token"},
		{"alg none with a dummy signature", func() string { return unsigned(f.claims(nil)) + "c2ln" }, "malformed token or disallowed algorithm"},
		{"HS256 signed with the public key", func() string {
			return signHMAC(t, pubPEM, f.claims(nil))
		}, "malformed token or disallowed algorithm"},
		{"signed by an unknown key with a known kid", func() string { return sign(t, stranger, f.claims(nil)) }, "unknown signing key"},
		{"missing sub", func() string { return sign(t, f.key, f.claims(map[string]any{"sub": nil})) }, "missing sub"},
		{"empty", func() string { return "" }, "no token"},
		{"one segment", func() string { return "abc" }, "malformed token"},
		{"two segments", func() string { return "abc.def" }, "malformed token"},
		{"four segments", func() string { return "a.b.c.d" }, "malformed token"},
		{"bad base64", func() string { return "eyJh.!!!.sig" }, "malformed token"},
		{"payload not json", func() string { return "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln" }, "malformed token"},
		{"oversized", func() string {
			return sign(t, f.key, f.claims(map[string]any{"pad": strings.Repeat("x", DefaultMaxTokenBytes)}))
		}, "token too large"},
		{"older than maxTokenAge", func() string {
			return sign(t, f.key, f.claims(map[string]any{"iat": now - 7200, "nbf": now - 7200}))
		}, "token too old"},
		{"no iat with maxTokenAge", func() string { return sign(t, f.key, f.claims(map[string]any{"iat": nil})) }, "missing iat"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := f.auth.VerifyToken(context.Background(), tc.token())
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("VerifyToken: %v", err)
				}
				if p.User.Sub != "sub-jane" || p.User.Ref != "user:default/jane" {
					t.Fatalf("principal = %+v", p.User)
				}
				return
			}
			if err == nil {
				t.Fatalf("VerifyToken accepted a token that should fail with %q", tc.reason)
			}
			if tc.reason == "no token" {
				if !errors.Is(err, ErrNoToken) {
					t.Fatalf("err = %v, want ErrNoToken", err)
				}
				return
			}
			var te *TokenError
			if !errors.As(err, &te) || !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("err = %v, want *TokenError", err)
			}
			if te.Reason != tc.reason {
				t.Fatalf("reason = %q, want %q (err %v)", te.Reason, tc.reason, err)
			}
		})
	}
}

func signHMAC(t *testing.T, secret []byte, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: secret}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	return identitytest.SignWith(t, signer, claims)
}

func TestVerifyPrincipalClaims(t *testing.T) {
	tests := []struct {
		name        string
		groupsClaim string
		over        map[string]any
		wantScopes  []string
		wantGroups  []string
		wantClient  string
	}{
		{"scope string", "", map[string]any{"scope": "b a"}, []string{"a", "b"}, nil, "vscode"},
		{"scp array", "", map[string]any{"scope": nil, "scp": []string{"catalog.read", "x"}}, []string{"catalog.read", "x"}, nil, "vscode"},
		{"scp string (Entra ID)", "", map[string]any{"scope": nil, "scp": "catalog.read x"}, []string{"catalog.read", "x"}, nil, "vscode"},
		{"groups array", "groups", map[string]any{"groups": []string{"g1", "g2"}}, []string{"catalog.read", "openid"}, []string{"g1", "g2"}, "vscode"},
		{"groups single string", "groups", map[string]any{"groups": "g1"}, []string{"catalog.read", "openid"}, []string{"g1"}, "vscode"},
		{"roles claim", "roles", map[string]any{"roles": []string{"Catalog.Reader"}}, []string{"catalog.read", "openid"}, []string{"Catalog.Reader"}, "vscode"},
		{"nested keycloak roles", "realm_access.roles", map[string]any{"realm_access": map[string]any{"roles": []string{"dev"}}}, []string{"catalog.read", "openid"}, []string{"dev"}, "vscode"},
		{"client_id when no azp", "", map[string]any{"azp": nil, "client_id": "cursor"}, []string{"catalog.read", "openid"}, nil, "cursor"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) { c.GroupsClaim = tc.groupsClaim })
			p, err := f.auth.VerifyToken(context.Background(), sign(t, f.key, f.claims(tc.over)))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(p.Scopes, tc.wantScopes) {
				t.Errorf("scopes = %v, want %v", p.Scopes, tc.wantScopes)
			}
			if !slices.Equal(p.User.Groups, tc.wantGroups) {
				t.Errorf("groups = %v, want %v", p.User.Groups, tc.wantGroups)
			}
			if p.Agent.ClientID != tc.wantClient {
				t.Errorf("client = %q, want %q", p.Agent.ClientID, tc.wantClient)
			}
			if p.TokenID != "tok-1" || p.User.Email != "jane@example.com" || p.User.Name != "Jane Doe" || p.Issuer != f.iss.URL() {
				t.Errorf("principal = %+v", p)
			}
			if !p.ExpiresAt.Equal(f.clock.Now().Add(300 * time.Second)) {
				t.Errorf("expires = %v", p.ExpiresAt)
			}
		})
	}
}

func TestAllowedClientIDs(t *testing.T) {
	f := newFixture(t, nil)
	f2, err := New(Options{
		Config:     Config{Issuers: []IssuerConfig{{URL: f.iss.URL(), AllowedClientIDs: []string{"claude"}}}},
		PublicURL:  testPublicURL,
		Catalog:    f.catalog,
		Now:        f.clock.Now,
		HTTPClient: f.iss.Client(),
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f2.VerifyToken(context.Background(), sign(t, f.key, f.claims(nil)))
	var te *TokenError
	if !errors.As(err, &te) || te.Reason != "client not allowed" {
		t.Fatalf("err = %v", err)
	}
	if _, err := f2.VerifyToken(context.Background(), sign(t, f.key, f.claims(map[string]any{"azp": "claude"}))); err != nil {
		t.Fatal(err)
	}
}

func TestKeyRotationAndRefetchBound(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	if _, err := f.auth.VerifyToken(ctx, sign(t, f.key, f.claims(nil))); err != nil {
		t.Fatal(err)
	}
	if got := f.iss.JWKSHits(); got != 1 {
		t.Fatalf("jwks fetched %d times, want 1", got)
	}
	// Warm cache: no fetch.
	if _, err := f.auth.VerifyToken(ctx, sign(t, f.key, f.claims(nil))); err != nil {
		t.Fatal(err)
	}
	if got := f.iss.JWKSHits(); got != 1 {
		t.Fatalf("jwks fetched %d times with a warm cache, want 1", got)
	}

	// The issuer rotates to k2: a token with kid k2 triggers a refetch, but
	// only once the refetch interval since the last fetch has passed.
	k2 := newECKey(t, "k2")
	f.iss.Publish(f.key, k2)
	_, err := f.auth.VerifyToken(ctx, sign(t, k2, f.claims(nil)))
	var te *TokenError
	if !errors.As(err, &te) || te.Reason != "unknown signing key" {
		t.Fatalf("within the refetch interval: err = %v, want unknown signing key", err)
	}
	if got := f.iss.JWKSHits(); got != 1 {
		t.Fatalf("refetch not bounded: %d fetches", got)
	}
	f.clock.Advance(DefaultKeyRefetchInterval)
	if _, err := f.auth.VerifyToken(ctx, sign(t, k2, f.claims(nil))); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	if got := f.iss.JWKSHits(); got != 2 {
		t.Fatalf("jwks fetched %d times, want 2", got)
	}

	// A flood of unknown kids costs at most one fetch per interval.
	bogus := newRSAKey(t, "bogus")
	f.clock.Advance(DefaultKeyRefetchInterval)
	for range 20 {
		if _, err := f.auth.VerifyToken(ctx, sign(t, bogus, f.claims(nil))); err == nil {
			t.Fatal("token signed with an unpublished key accepted")
		}
	}
	if got := f.iss.JWKSHits(); got != 3 {
		t.Fatalf("20 unknown-kid tokens caused %d fetches in total, want 3", got)
	}
	// The old key was removed by the issuer: after the next refetch it is gone.
	f.iss.Publish(k2)
	f.clock.Advance(DefaultKeyRefetchInterval)
	_, _ = f.auth.VerifyToken(ctx, sign(t, bogus, f.claims(nil)))
	if _, err := f.auth.VerifyToken(ctx, sign(t, f.key, f.claims(nil))); err == nil {
		t.Fatal("token signed with a retired key accepted")
	}
}

func TestMultipleIssuers(t *testing.T) {
	keyA, keyB := newRSAKey(t, "a"), newECKey(t, "b")
	issA, issB := newTestIssuer(t, keyA), newTestIssuer(t, keyB)
	clock := newClock()
	auth, err := New(Options{
		Config: Config{Issuers: []IssuerConfig{
			{URL: issA.URL()},
			{URL: issB.URL(), JWKSURL: issB.URL() + "/jwks"},
		}},
		PublicURL:  testPublicURL,
		Catalog:    orgCatalog(),
		Now:        clock.Now,
		HTTPClient: issA.Client(),
	})
	if err != nil {
		t.Fatal(err)
	}
	base := func(iss string) map[string]any {
		now := clock.Now().Unix()
		return map[string]any{"iss": iss, "sub": "s", "aud": testAudience, "exp": now + 60, "email": "bob@example.com"}
	}
	tests := []struct {
		name string
		key  signingKey
		iss  string
		ok   bool
	}{
		{"issuer A with its key", keyA, issA.URL(), true},
		{"issuer B with its key", keyB, issB.URL(), true},
		{"issuer A claimed, signed by B's key", keyB, issA.URL(), false},
		{"issuer B claimed, signed by A's key", keyA, issB.URL(), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := auth.VerifyToken(context.Background(), sign(t, tc.key, base(tc.iss)))
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				if p.Issuer != tc.iss || p.User.Ref != "user:default/bob" {
					t.Fatalf("principal %+v", p)
				}
			} else if err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if issB.JWKSHits() == 0 {
		t.Fatal("issuer B's JWKS override not used")
	}
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		url  string
		ok   bool
	}{
		{"minimal", Config{Issuers: []IssuerConfig{{URL: "https://idp.example.com"}}}, testPublicURL, true},
		{"no issuer", Config{}, testPublicURL, false},
		{"http non-loopback issuer", Config{Issuers: []IssuerConfig{{URL: "http://idp.example.com"}}}, testPublicURL, false},
		{"http loopback issuer", Config{Issuers: []IssuerConfig{{URL: "http://127.0.0.1:9998/"}}}, testPublicURL, true},
		{"unknown resolver", Config{Issuers: []IssuerConfig{{URL: "https://idp"}}, Resolver: ResolverConfig{Name: "guess"}}, testPublicURL, false},
		{"duplicate issuer", Config{Issuers: []IssuerConfig{{URL: "https://idp"}, {URL: "https://idp"}}}, testPublicURL, false},
		{"no public url", Config{Issuers: []IssuerConfig{{URL: "https://idp"}}}, "", false},
		{"huge skew", Config{Issuers: []IssuerConfig{{URL: "https://idp"}}, ClockSkew: time.Hour}, testPublicURL, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := New(Options{Config: tc.cfg, PublicURL: tc.url, Catalog: orgCatalog()})
			if tc.ok != (err == nil) {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && a.Resource() != testAudience {
				t.Fatalf("resource = %q", a.Resource())
			}
		})
	}
}

func TestIssuerDown(t *testing.T) {
	f := newFixture(t, nil)
	f.iss.Close()
	_, err := f.auth.VerifyToken(context.Background(), sign(t, f.key, f.claims(nil)))
	var te *TokenError
	if !errors.As(err, &te) || te.Reason != "issuer unavailable" {
		t.Fatalf("err = %v", err)
	}
}

// TestIssuerAudiences: an issuer with its own audiences (Entra ID v2 puts
// the API's client ID in aud) accepts exactly those, and only from itself.
func TestIssuerAudiences(t *testing.T) {
	const apiClientID = "6f1b2c3d-0000-4000-8000-00000000abcd"
	f := newFixture(t, func(c *Config) { c.Issuers[0].Audiences = []string{apiClientID} })
	ctx := context.Background()
	if _, err := f.auth.VerifyToken(ctx, sign(t, f.key, f.claims(map[string]any{"aud": []string{apiClientID}}))); err != nil {
		t.Fatalf("token for the issuer's audience refused: %v", err)
	}
	for name, aud := range map[string][]string{
		"server resource only": {testAudience},
		"other client id":      {"11111111-2222-4333-8444-555555555555"},
		"none":                 {},
	} {
		_, err := f.auth.VerifyToken(ctx, sign(t, f.key, f.claims(map[string]any{"aud": aud})))
		var te *TokenError
		if !errors.As(err, &te) || te.Reason != "wrong audience" {
			t.Errorf("%s: err = %v, want wrong audience", name, err)
		}
	}
	// Another issuer without the override still needs the resource URL.
	g := newFixture(t, nil)
	if _, err := g.auth.VerifyToken(ctx, sign(t, g.key, g.claims(map[string]any{"aud": []string{apiClientID}}))); err == nil {
		t.Error("an issuer without audiences accepted a token for the client ID")
	}
}

// Package identitytest is an in-process OpenID provider for tests: OpenID
// discovery and a JWKS endpoint served by httptest, signing keys made on
// the spot, and tokens signed with them on demand. It is the one fake
// identity provider of the unit tests; the e2e suite runs a real one
// (server/e2e/oidcop).
//
//	key := identitytest.NewRSAKey(t, "k1")
//	op := identitytest.New(t, key)
//	tok := key.Sign(t, map[string]any{"iss": op.URL(), "sub": "jane", …})
//
// Keys can be rotated (Publish) and JWKS fetches are counted (JWKSHits),
// for tests of key caching.
package identitytest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// Key is a private signing key with its key ID and algorithm.
type Key struct {
	// KID is the key ID, written into the JWKS and the token header ("" for none).
	KID string
	// Alg is the JWS algorithm, e.g. jose.RS256.
	Alg jose.SignatureAlgorithm
	// Signer is the private key.
	Signer crypto.Signer
}

// NewRSAKey returns a fresh 2048-bit RS256 key.
func NewRSAKey(tb testing.TB, kid string) Key {
	tb.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	return Key{KID: kid, Alg: jose.RS256, Signer: k}
}

// NewECKey returns a fresh P-256 ES256 key.
func NewECKey(tb testing.TB, kid string) Key {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return Key{KID: kid, Alg: jose.ES256, Signer: k}
}

// Sign returns claims as a compact JWS signed with k, header typ "JWT".
func (k Key) Sign(tb testing.TB, claims map[string]any) string {
	tb.Helper()
	return k.SignType(tb, "JWT", claims)
}

// SignType is Sign with header typ typ, e.g. "at+jwt" (RFC 9068).
func (k Key) SignType(tb testing.TB, typ string, claims map[string]any) string {
	tb.Helper()
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ))
	if k.KID != "" {
		opts = opts.WithHeader("kid", k.KID)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.Alg, Key: k.Signer}, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return SignWith(tb, signer, claims)
}

// SignWith returns claims as a compact JWS made by signer, for tests that
// need headers Sign does not write.
func SignWith(tb testing.TB, signer jose.Signer, claims map[string]any) string {
	tb.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		tb.Fatal(err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// Provider is the in-process OpenID provider. Its issuer identifier is URL.
type Provider struct {
	srv       *httptest.Server
	mu        sync.Mutex
	published []Key
	jwksHits  atomic.Int64
}

// New starts a provider publishing keys; it stops when the test ends.
func New(tb testing.TB, keys ...Key) *Provider {
	tb.Helper()
	p := &Provider{published: keys}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                p.URL(),
			"authorization_endpoint":                p.URL() + "/authorize",
			"token_endpoint":                        p.URL() + "/token",
			"jwks_uri":                              p.URL() + "/jwks",
			"response_types_supported":              []string{"code"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		p.jwksHits.Add(1)
		p.mu.Lock()
		set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
		for _, k := range p.published {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Signer.Public(), KeyID: k.KID, Algorithm: string(k.Alg), Use: "sig"})
		}
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	})
	p.srv = httptest.NewServer(mux)
	tb.Cleanup(p.srv.Close)
	return p
}

// URL is the issuer identifier (and the base of discovery).
func (p *Provider) URL() string { return p.srv.URL }

// Client is an HTTP client for the provider.
func (p *Provider) Client() *http.Client { return p.srv.Client() }

// Close stops the provider early, to test an unreachable provider.
func (p *Provider) Close() { p.srv.Close() }

// Publish replaces the keys the JWKS endpoint serves (rotation).
func (p *Provider) Publish(keys ...Key) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.published = keys
}

// JWKSHits counts the JWKS fetches so far.
func (p *Provider) JWKSHits() int64 { return p.jwksHits.Load() }

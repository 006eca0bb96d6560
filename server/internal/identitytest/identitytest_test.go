package identitytest

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

func getJSON(t *testing.T, c *http.Client, url string, v any) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func TestProvider(t *testing.T) {
	rsaKey, ecKey := NewRSAKey(t, "r1"), NewECKey(t, "e1")
	p := New(t, rsaKey)
	var disc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	getJSON(t, p.Client(), p.URL()+"/.well-known/openid-configuration", &disc)
	if disc.Issuer != p.URL() || disc.JWKSURI != p.URL()+"/jwks" {
		t.Fatalf("discovery = %+v", disc)
	}
	cases := []struct {
		name      string
		publish   []Key
		sign      Key
		typ       string
		verifies  bool
		wantKIDs  int
		wantHits  int64
		wantAlg   jose.SignatureAlgorithm
		wantTyped string
	}{
		{"RSA key published", nil, rsaKey, "JWT", true, 1, 1, jose.RS256, "JWT"},
		{"EC key after rotation", []Key{ecKey}, ecKey, "at+jwt", true, 1, 2, jose.ES256, "at+jwt"},
		{"retired key does not verify", []Key{ecKey}, rsaKey, "JWT", false, 1, 3, jose.RS256, "JWT"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.publish != nil {
				p.Publish(tc.publish...)
			}
			var set jose.JSONWebKeySet
			getJSON(t, p.Client(), p.URL()+"/jwks", &set)
			if len(set.Keys) != tc.wantKIDs || p.JWKSHits() != tc.wantHits {
				t.Fatalf("jwks has %d keys after %d hits", len(set.Keys), p.JWKSHits())
			}
			tok := tc.sign.SignType(t, tc.typ, map[string]any{"sub": "jane"})
			jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
			if err != nil {
				t.Fatal(err)
			}
			h := jws.Signatures[0].Header
			if h.KeyID != tc.sign.KID || jose.SignatureAlgorithm(h.Algorithm) != tc.wantAlg || h.ExtraHeaders[jose.HeaderType] != tc.wantTyped {
				t.Errorf("header = %+v", h)
			}
			keys := set.Key(h.KeyID)
			_, verr := jws.Verify(func() any {
				if len(keys) == 0 {
					return nil
				}
				return keys[0].Key
			}())
			if (verr == nil) != tc.verifies {
				t.Errorf("verify err = %v, want success %v", verr, tc.verifies)
			}
		})
	}
}

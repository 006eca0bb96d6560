package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// allowedAlgs are the only JWS algorithms accepted: asymmetric ones. "none"
// and the HMAC family are never accepted, whatever a token's header says.
var allowedAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512,
	jose.EdDSA,
}

func allowedAlgNames() []string {
	out := make([]string, len(allowedAlgs))
	for i, a := range allowedAlgs {
		out[i] = string(a)
	}
	return out
}

const maxJWKSBytes = 1 << 20

var (
	errUnknownKey      = errors.New("no signing key matches the token")
	errRefetchLimited  = errors.New("signing key unknown and key refetch is rate limited")
	errNoSignature     = errors.New("token must carry exactly one signature")
	errBadJWKSResponse = errors.New("bad JWKS response")
)

// boundedKeySet is an oidc.KeySet that fetches an issuer's JWKS and refetches
// it when a token names an unknown key ID, at most once per minInterval. It
// keeps only public asymmetric signing keys.
type boundedKeySet struct {
	url         string
	client      *http.Client
	minInterval time.Duration
	now         func() time.Time

	mu          sync.Mutex
	keys        []jose.JSONWebKey
	lastAttempt time.Time
	inflight    chan struct{}
	fetches     int // number of fetches started, for tests
}

func newBoundedKeySet(url string, client *http.Client, minInterval time.Duration, now func() time.Time) *boundedKeySet {
	return &boundedKeySet{url: url, client: client, minInterval: minInterval, now: now}
}

// VerifySignature implements oidc.KeySet.
func (k *boundedKeySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(raw, allowedAlgs)
	if err != nil {
		return nil, fmt.Errorf("identity: parse jws: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errNoSignature
	}
	kid := jws.Signatures[0].Header.KeyID
	if payload, ok := verifyWith(jws, k.cached(), kid); ok {
		return payload, nil
	}
	if err := k.refresh(ctx); err != nil {
		return nil, err
	}
	if payload, ok := verifyWith(jws, k.cached(), kid); ok {
		return payload, nil
	}
	return nil, errUnknownKey
}

func verifyWith(jws *jose.JSONWebSignature, keys []jose.JSONWebKey, kid string) ([]byte, bool) {
	for i := range keys {
		if kid != "" && keys[i].KeyID != kid {
			continue
		}
		if payload, err := jws.Verify(keys[i].Key); err == nil {
			return payload, true
		}
	}
	return nil, false
}

func (k *boundedKeySet) cached() []jose.JSONWebKey {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.keys
}

// refresh fetches the JWKS unless another fetch is running (then it waits for
// that one) or the last attempt was less than minInterval ago.
func (k *boundedKeySet) refresh(ctx context.Context) error {
	k.mu.Lock()
	if ch := k.inflight; ch != nil {
		k.mu.Unlock()
		select {
		case <-ch:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	now := k.now()
	if !k.lastAttempt.IsZero() && now.Sub(k.lastAttempt) < k.minInterval {
		k.mu.Unlock()
		return errRefetchLimited
	}
	ch := make(chan struct{})
	k.inflight = ch
	k.lastAttempt = now
	k.fetches++
	k.mu.Unlock()

	keys, err := k.fetch(ctx)

	k.mu.Lock()
	if err == nil {
		k.keys = keys
	}
	k.inflight = nil
	close(ch)
	k.mu.Unlock()
	return err
}

func (k *boundedKeySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, fmt.Errorf("identity: jwks request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("identity: fetch jwks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("identity: fetch jwks: %w: status %d", errBadJWKSResponse, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("identity: read jwks: %w", err)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("identity: jwks: %w: larger than %d bytes", errBadJWKSResponse, maxJWKSBytes)
	}
	return parseJWKS(body)
}

// parseJWKS keeps the public asymmetric signing keys of a JWKS document and
// skips keys it cannot use (unknown types, symmetric keys, encryption keys).
func parseJWKS(body []byte) ([]jose.JSONWebKey, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("identity: jwks: %w: %w", errBadJWKSResponse, err)
	}
	keys := make([]jose.JSONWebKey, 0, len(doc.Keys))
	for _, rawKey := range doc.Keys {
		var key jose.JSONWebKey
		if err := key.UnmarshalJSON(rawKey); err != nil {
			continue
		}
		if key.Use != "" && key.Use != "sig" {
			continue
		}
		switch key.Key.(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
			keys = append(keys, key)
		}
	}
	return keys, nil
}

package redact

import (
	"strings"
	"testing"
)

// credNameRef is credNameOK written with nameSegments, as contextAfter read
// names before it stopped allocating: the two must agree.
func credNameRef(name []byte) bool {
	segs := nameSegments(name)
	if len(segs) == 0 {
		return false
	}
	if last := segs[len(segs)-1]; nonCredSuffixes[last] || nonCredSuffixes[strings.Join(segs[max(0, len(segs)-2):], "")] {
		return false
	}
	for _, s := range segs {
		switch s {
		case "public", "pub", "page", "next", "cursor", "continuation", "pagination":
			return false
		}
	}
	return true
}

func TestCredNameOKEqualsSegments(t *testing.T) {
	names := []string{"", "_", "--", "key", "apiKey", "api_key", "ACME_TOKEN", "tokenUrl", "token_url", "secretName", "keyId", "KeyID",
		"public_key", "PUB-KEY", "page_token", "nextPageToken", "pagination.token", "acme.io/zorbit-key", "x-acme-key", "acmeSECRET",
		"zorbit access token", "key:value", "secret_key_ref", "secretKeyRef", "aws_secret_access_key", "client_secret", "token-service",
		"acme.secret.name", "vault-secret-reader", "SECRET", "secret ", " secret", "verylongwordthatgoesonandonandonforeverandever_key",
		"a_verylongwordthatgoesonandonandonforeverandeverkeyid", "passwordPolicy", "password_policy", "bindDN", "tokenEndpoint"}
	for _, n := range names {
		if got, want := credNameOK([]byte(n)), credNameRef([]byte(n)); got != want {
			t.Errorf("credNameOK(%q) = %v, nameSegments say %v", n, got, want)
		}
	}
	// Every pair of the list's words and suffixes, joined every way.
	words := []string{"acme", "key", "token", "secret", "id", "url", "name", "public", "page", "ref", "Key", "ID", "Url"}
	for k := range nonCredSuffixes {
		words = append(words, k)
	}
	for _, a := range words {
		for _, b := range words {
			for _, sep := range []string{"", "_", "-", ".", "/", " ", ":"} {
				n := a + sep + b
				if got, want := credNameOK([]byte(n)), credNameRef([]byte(n)); got != want {
					t.Errorf("credNameOK(%q) = %v, nameSegments say %v", n, got, want)
				}
			}
		}
	}
}

package tools

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
)

// cursorEncoding writes sealed cursors in lower-case base32: letters and
// digits only, so a cursor has no word boundary inside it and no capital
// letters. Every answer passes egress redaction, and a base64url cursor
// (random bytes, with '-' and '_') can hold a token prefix right after a
// '-': rare, but seen once in CI, where "…-fo1_" and 43 more characters were
// redacted as a Fly.io token. That cursor was cut, so paging broke, and the
// answer depended on random bytes (the non-interference test caught it).
// TestCursorsSurviveRedaction holds the property.
var cursorEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// CursorCodec seals the Backstage cursors handed to agents: encrypted
// and authenticated (AES-GCM) and bound to the caller. Backstage's cursor
// is plain base64 JSON carrying the whole query and the sort value of the
// last item, and Backstage obeys an edited one; sealing keeps agents from
// forging a wider query, reusing another caller's cursor or reading
// values out of it.
type CursorCodec struct {
	aead cipher.AEAD
	// previous open cursors sealed under earlier keys (rotation); new
	// cursors are always sealed with aead.
	previous []cipher.AEAD
}

// NewCursorCodec derives the key from key material, or uses a random key
// when key is empty (cursors then stay valid only within this process).
// Cursors sealed under a previous key are still accepted, so that a key can
// be rotated without breaking the pages agents hold.
func NewCursorCodec(key []byte, previous ...[]byte) *CursorCodec {
	if len(key) == 0 {
		key = make([]byte, 32)
		_, _ = rand.Read(key)
	}
	c := &CursorCodec{aead: cursorAEAD(key)}
	for _, p := range previous {
		if len(p) > 0 {
			c.previous = append(c.previous, cursorAEAD(p))
		}
	}
	return c
}

// cursorAEAD is AES-256-GCM under a key derived from key material.
func cursorAEAD(key []byte) cipher.AEAD {
	k := sha256.Sum256(append([]byte("backstage-mcp cursor v1\x00"), key...))
	block, err := aes.NewCipher(k[:])
	if err != nil {
		panic(fmt.Sprintf("tools: cursor cipher: %v", err)) // a 32-byte key cannot fail
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(fmt.Sprintf("tools: cursor cipher: %v", err))
	}
	return aead
}

// Wrap returns an opaque cursor for the agent.
func (c *CursorCodec) Wrap(binding, cursor string) string {
	if cursor == "" {
		return ""
	}
	nonce := make([]byte, c.aead.NonceSize())
	_, _ = rand.Read(nonce)
	sealed := c.aead.Seal(nonce, nonce, []byte(cursor), []byte(binding))
	return cursorEncoding.EncodeToString(sealed)
}

// Unwrap verifies a cursor from the agent and returns Backstage's cursor.
func (c *CursorCodec) Unwrap(binding, s string) (string, error) {
	raw, err := cursorEncoding.DecodeString(s)
	if err != nil || len(raw) < c.aead.NonceSize()+c.aead.Overhead() {
		return "", badArg("argument \"cursor\" is not a cursor returned by catalog_search_entities")
	}
	n := c.aead.NonceSize()
	plain, err := c.aead.Open(nil, raw[:n], raw[n:], []byte(binding))
	for _, old := range c.previous {
		if err == nil {
			break
		}
		plain, err = old.Open(nil, raw[:n], raw[n:], []byte(binding))
	}
	if err != nil {
		return "", badArg("argument \"cursor\" is not a cursor returned by catalog_search_entities for this caller")
	}
	return string(plain), nil
}

// bindingFrom identifies the caller for cursor binding.
func bindingFrom(ctx context.Context) string {
	if id, ok := ctx.Value(identityKey).(Identity); ok {
		return id.Subject + "\x00" + id.User + "\x00" + id.Agent
	}
	return ""
}

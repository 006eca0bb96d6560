package identity

import (
	"context"
	"errors"
	"testing"
)

// TestVerifiedTokenReuse checks what reusing a verification may and may
// not skip: the same token within verifiedTTL is not checked against the
// key set again, but its expiry is; a token that differs in one byte is
// verified in full; a retired key stops being honoured once the reuse
// window has passed; each caller gets its own principal.
func TestVerifiedTokenReuse(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	tok := sign(t, f.key, f.claims(nil))
	p1, err := f.auth.VerifyToken(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := f.auth.VerifyToken(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if p1 == p2 || p2.User.Ref != "user:default/jane" || p2.TokenID != "tok-1" || p2.Agent.ClientID != "vscode" {
		t.Fatalf("reused verification: %p %p %+v", p1, p2, p2)
	}
	if len(p1.Scopes) > 0 {
		p1.Scopes[0] = "admin"
		p1.User.Groups = append(p1.User.Groups, "admins")
	}
	p3, err := f.auth.VerifyToken(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if p3.HasScope("admin") || len(p3.User.Groups) != len(p2.User.Groups) {
		t.Fatalf("a caller's change to its principal leaked into the next one: %+v", p3)
	}

	// One byte of the signature changed: not the remembered token.
	forged := []byte(tok)
	i := len(forged) - 2
	if forged[i] == 'A' {
		forged[i] = 'B'
	} else {
		forged[i] = 'A'
	}
	if _, err := f.auth.VerifyToken(ctx, string(forged)); err == nil {
		t.Fatal("a token with a changed signature was accepted from the remembered verification")
	}

	// Expiry is checked on every use: exp is 300 s away, skew 30 s.
	f.clock.Advance(verifiedTTL - 1)
	if _, err := f.auth.VerifyToken(ctx, tok); err != nil {
		t.Fatalf("within the reuse window: %v", err)
	}
	short := sign(t, f.key, f.claims(map[string]any{"exp": f.clock.Now().Unix() + 5}))
	if _, err := f.auth.VerifyToken(ctx, short); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(40e9) // 40 s: past exp + skew, within the reuse window
	var te *TokenError
	if _, err := f.auth.VerifyToken(ctx, short); !errors.As(err, &te) || te.Reason != "token expired" {
		t.Fatalf("remembered token past its expiry: err = %v, want token expired", err)
	}

	// The issuer retires the key; past the reuse window and the refetch
	// interval, the token is verified again and refused.
	f.iss.Publish(newECKey(t, "k2"))
	fresh := sign(t, f.key, f.claims(nil))
	if _, err := f.auth.VerifyToken(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(verifiedTTL + DefaultKeyRefetchInterval)
	_, _ = f.auth.VerifyToken(ctx, sign(t, newRSAKey(t, "bogus"), f.claims(nil))) // triggers the refetch
	if _, err := f.auth.VerifyToken(ctx, fresh); err == nil {
		t.Fatal("a token signed with a retired key was honoured past the reuse window")
	}
}

// TestVerifiedTokensBounded checks that the remembered set never grows
// past verifiedMax, whatever tokens are presented.
func TestVerifiedTokensBounded(t *testing.T) {
	v := newVerifiedTokens()
	f := newFixture(t, nil)
	p := &Principal{User: User{Sub: "s"}}
	now := f.clock.Now()
	for i := range verifiedMax + 100 {
		var sum [32]byte
		sum[0], sum[1], sum[2] = byte(i), byte(i>>8), byte(i>>16)
		v.put(sum, p, now, now)
	}
	if len(v.m) != verifiedMax || len(v.order) != verifiedMax {
		t.Fatalf("remembered %d (order %d), want %d", len(v.m), len(v.order), verifiedMax)
	}
	var first [32]byte
	if _, _, ok := v.get(first, now); ok {
		t.Fatal("the oldest entry was not evicted")
	}
}

package identity

import (
	"context"
	"testing"
)

// BenchmarkVerifyWarm measures signature and claim verification of a
// token seen for the first time, with the issuer's keys already cached
// (no resolution).
func BenchmarkVerifyWarm(b *testing.B) {
	f := newFixture(b, nil)
	tok := sign(b, f.key, f.claims(nil))
	ctx := context.Background()
	if _, err := f.auth.verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		f.auth.verified = newVerifiedTokens()
		if _, err := f.auth.verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyRemembered measures verification of a token verified
// within the last verifiedTTL (a client's second and later requests).
func BenchmarkVerifyRemembered(b *testing.B) {
	f := newFixture(b, nil)
	tok := sign(b, f.key, f.claims(nil))
	ctx := context.Background()
	if _, err := f.auth.verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.auth.verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyTokenWarm is the whole VerifyToken: verification plus
// principal resolution on a cache hit.
func BenchmarkVerifyTokenWarm(b *testing.B) {
	f := newFixture(b, nil)
	tok := sign(b, f.key, f.claims(nil))
	ctx := context.Background()
	if _, err := f.auth.VerifyToken(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.auth.VerifyToken(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkResolveCacheHit measures principal resolution on a cache hit.
func BenchmarkResolveCacheHit(b *testing.B) {
	f := newFixture(b, nil)
	ctx := context.Background()
	p, err := f.auth.verify(ctx, sign(b, f.key, f.claims(nil)))
	if err != nil {
		b.Fatal(err)
	}
	if err := f.auth.resolver.resolve(ctx, p); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := f.auth.resolver.resolve(ctx, p); err != nil {
			b.Fatal(err)
		}
	}
}

package ratelimit

import (
	"context"
	"strconv"
	"testing"
	"time"
)

func benchConfig() Config {
	cfg := DefaultConfig()
	cfg.Classes = map[string]Rate{"default": PerSecond(1e9, 1e9)}
	cfg.Agent = PerSecond(1e9, 1e9)
	cfg.Global = PerSecond(1e9, 1e9)
	return cfg
}

func BenchmarkMemoryAllow(b *testing.B) {
	m := newMemory(b, benchConfig())
	ctx := context.Background()
	k := UserKey("user:default/jane", "default")
	b.ReportAllocs()
	for b.Loop() {
		if d, err := m.Allow(ctx, k, 1); err != nil || !d.Allowed {
			b.Fatal(d, err)
		}
	}
}

func BenchmarkChainAllow(b *testing.B) {
	chain := NewChain(newMemory(b, benchConfig()))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if d, err := chain.Allow(ctx, "user:default/jane", "default", "copilot"); err != nil || !d.Allowed {
			b.Fatal(d, err)
		}
	}
}

func BenchmarkChainAllowParallel(b *testing.B) {
	chain := NewChain(newMemory(b, benchConfig()))
	ctx := context.Background()
	users := make([]string, 1000)
	for i := range users {
		users[i] = "user:default/u" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			if d, err := chain.Allow(ctx, users[i%len(users)], "default", "copilot"); err != nil || !d.Allowed {
				b.Error(d, err)
				return
			}
		}
	})
}

func BenchmarkUpstreamCacheHit(b *testing.B) {
	u, err := NewUpstream(UpstreamConfig{CacheTTL: time.Hour, Rate: Rate{Unlimited: true}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	fn := func(ctx context.Context) ([]byte, int, error) { return []byte("{}"), 200, nil }
	if _, _, err := u.Do(ctx, "k", fn); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := u.Do(ctx, "k", fn); err != nil {
			b.Fatal(err)
		}
	}
}

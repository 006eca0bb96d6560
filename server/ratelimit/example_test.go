package ratelimit_test

import (
	"context"
	"fmt"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/ratelimit"
)

func ExampleChain() {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	cfg := ratelimit.DefaultConfig()
	cfg.Classes = map[string]ratelimit.Rate{"default": ratelimit.PerMinute(60, 2)}
	cfg.Now = func() time.Time { return now }
	lim, err := ratelimit.NewMemory(cfg)
	if err != nil {
		panic(err)
	}
	chain := ratelimit.NewChain(lim)
	for range 3 {
		d, err := chain.Allow(context.Background(), "user:default/jane", "default", "copilot")
		if err != nil {
			panic(err) // fail closed
		}
		fmt.Println(d)
	}
	// Output:
	// allowed
	// allowed
	// rate limited by the user limit; retry after 1s
}

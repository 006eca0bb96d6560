package main

import (
	"testing"

	"github.com/backstage-mcp/backstage-mcp/server"
)

// TestStateConfig checks that both sides of the --state redis comparison
// get a configuration the server accepts, differing only in state, with
// every bucket finite (so every call charges it).
func TestStateConfig(t *testing.T) {
	env := func(k string) string {
		if k == "BENCH_BACKSTAGE_TOKEN" {
			return "token"
		}
		return ""
	}
	tests := []struct {
		name, mode, backstage string
	}{
		{"memory on Backstage", "memory", "http://127.0.0.1:7007"},
		{"redis on Backstage", "redis", "http://127.0.0.1:7007"},
		{"memory on the demo catalog", "memory", ""},
		{"redis on the demo catalog", "redis", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := stateConfig(tc.mode, tc.backstage, "/p.yaml", "/a/audit.log", "redis://127.0.0.1:6379/0")
			cfg, err := server.ParseConfig([]byte(data), "bench.yaml", env)
			if err != nil {
				t.Fatalf("%v\n%s", err, data)
			}
			if cfg.State != tc.mode {
				t.Fatalf("state = %q, want %q", cfg.State, tc.mode)
			}
			if tc.mode == "redis" && (cfg.Redis.URL == "" || cfg.Redis.KeyPrefix != "bench:") {
				t.Fatalf("redis = %+v", cfg.Redis)
			}
			rl := cfg.RateLimits
			for name, r := range rl.Classes {
				if r.Unlimited || r.Requests <= 0 {
					t.Errorf("class %s is not a finite bucket: %+v", name, r)
				}
			}
			if rl.Agent.Unlimited || rl.Global.Unlimited {
				t.Error("agent or global bucket unlimited: calls would not charge it")
			}
		})
	}
}

func TestDemoRefs(t *testing.T) {
	refs, err := demoRefs()
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) < 10 {
		t.Fatalf("%d demo entities, want at least 10", len(refs))
	}
	for _, r := range refs {
		if r.Namespace != "default" || (r.Kind != "component" && r.Kind != "api" && r.Kind != "system") {
			t.Fatalf("unexpected ref %+v", r)
		}
	}
}

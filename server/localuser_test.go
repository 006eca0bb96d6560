package server

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLocalUserGrantedNothingIsExplained: with --insecure-local-user, a
// policy whose roles bind only verified identities (authenticated: true)
// grants the local user nothing. Every call then answers "tool not found";
// the log says why at start and how to bind the user instead. The demo
// policy, which grants the demo user tools, logs no such warning.
func TestLocalUserGrantedNothingIsExplained(t *testing.T) {
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(pol, []byte(`version: 1
roles:
  - name: everyone
    bind: { authenticated: true }
    tools: ["catalog:read"]
    entities:
      allow:
        - IS_ENTITY_KIND: { kinds: [component] }
`), 0o600); err != nil {
		t.Fatal(err)
	}
	const warning = "grants the local user no tool"
	for _, tc := range []struct {
		name   string
		policy string
		warn   bool
	}{
		{"authenticated only", pol, true},
		{"demo policy", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseConfig(nil, "", func(string) string { return "" })
			if err != nil {
				t.Fatal(err)
			}
			cfg.Audit.Path = filepath.Join(t.TempDir(), "audit.log")
			cfg.Policy.File = tc.policy
			var logs bytes.Buffer
			_, closeFn, err := Build(context.Background(), cfg, BuildOptions{
				Demo: true, LocalUser: "user:default/amelia.hart",
				Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			})
			if err != nil {
				t.Fatal(err)
			}
			closeFn()
			if got := strings.Contains(logs.String(), warning); got != tc.warn {
				t.Errorf("warning logged = %v, want %v; log:\n%s", got, tc.warn, logs.String())
			}
			if tc.warn && !strings.Contains(logs.String(), "users: [user:default/amelia.hart]") {
				t.Errorf("the warning does not say how to bind the local user:\n%s", logs.String())
			}
		})
	}
}

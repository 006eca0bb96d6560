package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigCheckRunsServesPolicyChecks: config check used to pass a
// policy that serve refuses (a rate class the config does not define, a
// fallback role the policy lacks), because that check lived only inside
// serve's start. Both now run the same server.Config.CheckPolicy.
func TestConfigCheckRunsServesPolicyChecks(t *testing.T) {
	const policyText = `version: 1
roles:
  - name: everyone
    bind: { authenticated: true }
    tools: ["catalog:read"]
    entities:
      allow:
        - IS_ENTITY_KIND: { kinds: [component] }
    rateClass: %s
`
	for _, tc := range []struct {
		name, rateClass, extra, want string
		code                         int
	}{
		{"valid", "default", "", "ok", 0},
		{"unknown rate class", "nosuchclass", "", `rate class "nosuchclass" is not configured`, 1},
		{"fallback role missing", "default", "auth:\n  fallbackRole: guests\n", `auth.fallbackRole "guests" names no role`, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(strings.Replace(policyText, "%s", tc.rateClass, 1)), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := filepath.Join(dir, "config.yaml")
			if err := os.WriteFile(cfg, []byte("backstage:\n  baseUrl: http://localhost:7007\n  token: t\npolicy:\n  file: policy.yaml\n"+tc.extra), 0o600); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), []string{"config", "check", cfg}, strings.NewReader(""), &stdout, &stderr)
			if code != tc.code || !strings.Contains(stdout.String()+stderr.String(), tc.want) {
				t.Errorf("config check: exit %d, want %d; stdout %q stderr %q; want %q in them", code, tc.code, stdout.String(), stderr.String(), tc.want)
			}
		})
	}
}

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

// TestConfigCheckReadsRedisFiles: config check reads the Redis password
// and TLS files as serve would, relative to the config file, and names
// the key of the one that is missing or malformed.
func TestConfigCheckReadsRedisFiles(t *testing.T) {
	base := "server:\n  cursorKey: 0123456789abcdef0123456789abcdef\nstate: redis\n"
	for _, tc := range []struct {
		name, redis, want string
		code              int
	}{
		{"files present", "redis:\n  url: rediss://r:6379/0\n  username: mcp\n  passwordFile: redis-password\n  tls:\n    caFile: ca.pem\n", "ok", 0},
		{"password file missing", "redis:\n  url: redis://r:6379/0\n  username: mcp\n  passwordFile: nope\n", "config.yaml: redis.passwordFile: open ", 1},
		{"ca not a certificate", "redis:\n  cluster:\n    addrs: [n0:6379]\n  tls:\n    enabled: true\n    caFile: redis-password\n", "redis.tls.caFile: ", 1},
		{"sentinel password file missing", "redis:\n  sentinel:\n    masterName: m\n    addrs: [s0:26379]\n    passwordFile: nope\n", "redis.sentinel.passwordFile: open ", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			files := map[string]string{
				"redis-password": "pw-0123456789\n",
				"ca.pem":         testCAPEM,
				"config.yaml":    base + tc.redis,
			}
			for name, content := range files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), []string{"config", "check", filepath.Join(dir, "config.yaml")}, strings.NewReader(""), &stdout, &stderr)
			out := stdout.String() + stderr.String()
			if code != tc.code || !strings.Contains(out, tc.want) || strings.Contains(out, "pw-0123456789") {
				t.Errorf("config check: exit %d, want %d; output %q; want %q in it (and no password)", code, tc.code, out, tc.want)
			}
		})
	}
}

// testCAPEM is a self-signed certificate (openssl req -x509, its key
// thrown away), only parsed.
const testCAPEM = `-----BEGIN CERTIFICATE-----
MIIBkzCCATmgAwIBAgIUJ69tsTlRuFSZtFSVML/ZYZwfr4wwCgYIKoZIzj0EAwIw
HzEdMBsGA1UEAwwUY29uZmlnIGNoZWNrIHRlc3QgQ0EwHhcNMjYxMjA3MjEyOTE1
WhcNMzYxMjA0MjEyOTE1WjAfMR0wGwYDVQQDDBRjb25maWcgY2hlY2sgdGVzdCBD
QTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABPGeXHaIEGfF/3PEdRfSMt6fjQWM
0XY85RotosqM4H87TCrnF8JZ3odkAYS9FVTUBVQvju+fFDQLD8isGN4FRBSjUzBR
MB0GA1UdDgQWBBRtdqt8nQ3MTjEB3tT3OhelGMDAEzAfBgNVHSMEGDAWgBRtdqt8
nQ3MTjEB3tT3OhelGMDAEzAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gA
MEUCIQDc2tJ6tSzh67G7kmKz68aHahksmFQZsf+Du98LHGxTZgIgQtzeSQV3BKKG
Fn8EvQaqzR/ssSE5r98UMXTbSCEsV8c=
-----END CERTIFICATE-----
`

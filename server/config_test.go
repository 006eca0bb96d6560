package server

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseConfig(t *testing.T) {
	cases := []struct {
		name    string
		yaml    string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, c *Config)
	}{
		{name: "empty gives defaults", yaml: ``, check: func(t *testing.T, c *Config) {
			if c.Server.MaxRequestBytes != 1<<20 || c.Backstage.Timeout != 10*time.Second || c.Log.Level != "info" {
				t.Errorf("defaults = %+v", c)
			}
		}},
		{name: "env substitution", yaml: "backstage:\n  baseUrl: http://bs:7007\n  token: ${BS_TOKEN}\n", env: map[string]string{"BS_TOKEN": "s3cret-token"},
			check: func(t *testing.T, c *Config) {
				if c.Backstage.Token != "s3cret-token" {
					t.Errorf("token = %q", c.Backstage.Token)
				}
			}},
		{name: "escaped substitution", yaml: "server:\n  cursorKey: \"$${NOT_A_VAR}-0123456789012345678901234567\"\n", check: func(t *testing.T, c *Config) {
			if !strings.HasPrefix(c.Server.CursorKey, "${NOT_A_VAR}") {
				t.Errorf("cursorKey = %q", c.Server.CursorKey)
			}
		}},
		{name: "missing env var", yaml: "backstage:\n  baseUrl: http://bs:7007\n  token: ${NOPE}\n", wantErr: "cfg.yaml:3: backstage.token: environment variable NOPE is not set"},
		{name: "env override", yaml: "backstage:\n  baseUrl: http://bs:7007\n  token: t\n", env: map[string]string{"BACKSTAGE_MCP_BACKSTAGE_URL": "https://other:7007"},
			check: func(t *testing.T, c *Config) {
				if c.Backstage.BaseURL != "https://other:7007" {
					t.Errorf("baseUrl = %q", c.Backstage.BaseURL)
				}
			}},
		{name: "unknown key", yaml: "backstage:\n  baseURL: http://x\n", wantErr: "cfg.yaml:2: unknown key backstage.baseURL (did you mean backstage.baseUrl?)"},
		{name: "bad yaml", yaml: "backstage: [", wantErr: "not valid YAML"},
		{name: "bad url", yaml: "backstage:\n  baseUrl: localhost:7007\n  token: t\n", wantErr: "backstage.baseUrl"},
		{name: "token required", yaml: "backstage:\n  baseUrl: http://x\n", wantErr: "backstage.token: a Backstage credential is required"},
		{name: "token and file", yaml: "backstage:\n  baseUrl: http://x\n  token: a\n  tokenFile: /f\n", wantErr: "backstage.tokenFile"},
		{name: "bad duration", yaml: "backstage:\n  timeout: soon\n", wantErr: "soon"},
		{name: "bad level", yaml: "log:\n  level: loud\n", wantErr: "log.level"},
		{name: "public url with path", yaml: "server:\n  publicURL: https://x/mcp\n", wantErr: "server.publicURL"},
		{name: "bad origin", yaml: "server:\n  allowedOrigins: [nope]\n", wantErr: "server.allowedOrigins[0]"},
		{name: "short cursor key", yaml: "server:\n  cursorKey: short\n", wantErr: "server.cursorKey"},
		{name: "state defaults to memory", yaml: ``, check: func(t *testing.T, c *Config) {
			if c.State != "memory" {
				t.Errorf("state = %q, want memory", c.State)
			}
		}},
		{name: "state redis", yaml: "server:\n  cursorKey: 0123456789abcdef0123456789abcdef\nstate: redis\nredis:\n  url: redis://127.0.0.1:6379/0\n", check: func(t *testing.T, c *Config) {
			if c.State != "redis" || c.Redis.URL != "redis://127.0.0.1:6379/0" {
				t.Errorf("state = %q, redis = %+v", c.State, c.Redis)
			}
		}},
		{name: "redis url from env", yaml: "server:\n  cursorKey: 0123456789abcdef0123456789abcdef\nstate: redis\n", env: map[string]string{"BACKSTAGE_MCP_REDIS_URL": "redis://:pw@r:6379/1"},
			check: func(t *testing.T, c *Config) {
				if c.Redis.URL != "redis://:pw@r:6379/1" {
					t.Errorf("redis.url = %q", c.Redis.URL)
				}
			}},
		{name: "unknown state", yaml: "state: etcd\n", wantErr: "state: \"etcd\" must be memory"},
		{name: "redis needs a url", yaml: "server:\n  cursorKey: 0123456789abcdef0123456789abcdef\nstate: redis\n", wantErr: "redis: say how to reach Redis with state: redis: redis.url"},
		{name: "redis sentinel", yaml: "server:\n  cursorKey: 0123456789abcdef0123456789abcdef\nstate: redis\nredis:\n  sentinel:\n    masterName: mymaster\n    addrs: [s0:26379, s1:26379]\n  username: mcp\n  passwordFile: /run/secrets/redis\n  tls:\n    enabled: true\n    caFile: /etc/redis/ca.pem\n",
			check: func(t *testing.T, c *Config) {
				if c.Redis.Mode() != "sentinel" || c.Redis.Sentinel.MasterName != "mymaster" || len(c.Redis.Sentinel.Addrs) != 2 || !c.Redis.UsesTLS() {
					t.Errorf("redis = %+v", c.Redis)
				}
			}},
		{name: "redis cluster", yaml: "server:\n  cursorKey: 0123456789abcdef0123456789abcdef\nstate: redis\nredis:\n  cluster:\n    addrs: [n0:6379, n1:6379, n2:6379]\n",
			check: func(t *testing.T, c *Config) {
				if c.Redis.Mode() != "cluster" || len(c.Redis.Cluster.Addrs) != 3 {
					t.Errorf("redis = %+v", c.Redis)
				}
			}},
		{name: "redis password file from env", yaml: "server:\n  cursorKey: 0123456789abcdef0123456789abcdef\nstate: redis\nredis:\n  url: redis://r:6379\n  username: mcp\n", env: map[string]string{"BACKSTAGE_MCP_REDIS_PASSWORD_FILE": "/run/secrets/pw"},
			check: func(t *testing.T, c *Config) {
				if c.Redis.PasswordFile != "/run/secrets/pw" {
					t.Errorf("redis.passwordFile = %q", c.Redis.PasswordFile)
				}
			}},
		{name: "redis password never inline", yaml: "server:\n  cursorKey: 0123456789abcdef0123456789abcdef\nstate: redis\nredis:\n  url: redis://r:6379\n  password: hunter2\n", wantErr: "cfg.yaml:6: unknown key redis.password"},
		{name: "redis two modes", yaml: "server:\n  cursorKey: 0123456789abcdef0123456789abcdef\nstate: redis\nredis:\n  url: redis://r:6379\n  cluster:\n    addrs: [n0:6379]\n", wantErr: "redis: set only one of redis.url, redis.sentinel and redis.cluster"},
		{name: "redis sentinel needs master", yaml: "server:\n  cursorKey: 0123456789abcdef0123456789abcdef\nstate: redis\nredis:\n  sentinel:\n    addrs: [s0:26379]\n", wantErr: "cfg.yaml:5: redis.sentinel.masterName: is required"},
		{name: "redis ca without tls", yaml: "server:\n  cursorKey: 0123456789abcdef0123456789abcdef\nstate: redis\nredis:\n  cluster:\n    addrs: [n0:6379]\n  tls:\n    caFile: ca.pem\n", wantErr: "cfg.yaml:8: redis.tls.caFile: is set but TLS is off"},
		{name: "redis bad cluster addr", yaml: "server:\n  cursorKey: 0123456789abcdef0123456789abcdef\nstate: redis\nredis:\n  cluster:\n    addrs: [n0:6379, n1]\n", wantErr: "redis.cluster.addrs[1]: \"n1\" must be host:port"},
		{name: "redis url scheme", yaml: "server:\n  cursorKey: 0123456789abcdef0123456789abcdef\nstate: redis\nredis:\n  url: http://user:hunter2@r:6379\n", wantErr: "cfg.yaml:5: redis.url: must be redis://"},
		{name: "redis timeout", yaml: "server:\n  cursorKey: 0123456789abcdef0123456789abcdef\nstate: redis\nredis:\n  url: redis://r:6379\n  timeout: 1m\n", wantErr: "redis.timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tc.yaml), "cfg.yaml", env(tc.env))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

func TestExampleConfigIsValid(t *testing.T) {
	c, err := LoadConfig("../testdata/config.example.yaml", env(map[string]string{"BACKSTAGE_TOKEN": "example-token"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Backstage.BaseURL == "" {
		t.Fatal("example config has no baseUrl")
	}
	// Its relative paths resolve against its own folder, and name files
	// that exist there.
	if _, err := os.Stat(c.Policy.File); err != nil {
		t.Fatalf("example config's policy.file: %v", err)
	}
	var ce *ConfigError
	_, err = LoadConfig("../testdata/config.example.yaml", env(nil))
	if !errors.As(err, &ce) || ce.Key != "backstage.token" {
		t.Fatalf("without BACKSTAGE_TOKEN: %v", err)
	}
}

func TestRedisURLNeverEchoed(t *testing.T) {
	_, err := ParseConfig([]byte("server:\n  cursorKey: 0123456789abcdef0123456789abcdef\nstate: redis\nredis:\n  url: http://user:hunter2@r:6379\n"), "cfg.yaml", env(nil))
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("err = %v: want an error that does not contain the password", err)
	}
}

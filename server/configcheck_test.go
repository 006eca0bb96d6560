package server

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigErrorMessages: every mistake is reported in the file's terms:
// file, line, key path, what the key wants and what it got.
func TestConfigErrorMessages(t *testing.T) {
	cases := []struct {
		name, yaml string
		env        map[string]string
		want       string // the whole error text
	}{
		{"unknown key, case", "server:\n  publicURL: http://127.0.0.1:8080\nbackstage:\n  baseURL: http://x\n",
			nil, "config.yaml:4: unknown key backstage.baseURL (did you mean backstage.baseUrl?)"},
		{"unknown key, typo", "backstage:\n  baseUrl: http://x\n  tokne: t\n",
			nil, "config.yaml:3: unknown key backstage.tokne (did you mean backstage.token?)"},
		{"unknown top-level key, typo", "servre:\n  pprof: true\n",
			nil, "config.yaml:1: unknown key servre (did you mean server?)"},
		{"key at the wrong level", "baseUrl: http://x\n",
			nil, "config.yaml:1: unknown key baseUrl (did you mean backstage.baseUrl?)"},
		{"key in the wrong section", "backstage:\n  publicUrl: http://x\n",
			nil, "config.yaml:2: unknown key backstage.publicUrl (did you mean server.publicURL?)"},
		{"key in the wrong section, several places", "log:\n  timeout: 1s\n",
			nil, "config.yaml:2: unknown key log.timeout (did you mean backstage.timeout, redis.timeout or rateLimits.upstream.timeout?)"},
		{"unknown key, no near miss", "log:\n  colour: blue\n",
			nil, "config.yaml:2: unknown key log.colour (the keys of log are level, format)"},
		{"unknown key in a list item", "auth:\n  issuers:\n    - url: https://idp\n      jwksUrl: https://idp/keys\n",
			nil, "config.yaml:4: unknown key auth.issuers[0].jwksUrl (did you mean auth.issuers[0].jwksURL?)"},
		{"unknown key in a map value", "rateLimits:\n  classes:\n    low: {requests: 1, per: 1s, brust: 2}\n",
			nil, "config.yaml:3: unknown key rateLimits.classes.low.brust (did you mean rateLimits.classes.low.burst?)"},
		{"inlined section", "auth:\n  requiredscope: x\n",
			nil, "config.yaml:2: unknown key auth.requiredscope (did you mean auth.requiredScope?)"},
		{"duration given a number", "server:\n  shutdownTimeout: 10\n",
			nil, `config.yaml:2: server.shutdownTimeout: want a duration such as "10s" or "1m30s", got 10`},
		{"duration given a word", "backstage:\n  timeout: soon\n",
			nil, `config.yaml:2: backstage.timeout: want a duration such as "10s" or "1m30s", got "soon"`},
		{"boolean", "server:\n  pprof: maybe\n",
			nil, `config.yaml:2: server.pprof: want true or false, got "maybe"`},
		{"integer given a word", "catalog:\n  pageSize: lots\n",
			nil, `config.yaml:2: catalog.pageSize: want a whole number, got "lots"`},
		{"integer given a fraction", "catalog:\n  pageSize: 1.5\n",
			nil, `config.yaml:2: catalog.pageSize: want a whole number, got 1.5`},
		{"number", "rateLimits:\n  agent: {requests: many, per: 1s}\n",
			nil, `config.yaml:2: rateLimits.agent.requests: want a number, got "many"`},
		{"list given a string", "server:\n  allowedOrigins: https://app.example.com\n",
			nil, `config.yaml:2: server.allowedOrigins: want a list of strings such as [a, b], got "https://app.example.com" (for a list of one, write [https://app.example.com])`},
		{"list of objects given a map", "auth:\n  issuers:\n    url: https://idp\n",
			nil, `config.yaml:3: auth.issuers: want a list of maps, each with the keys url, jwksURL, audiences, allowedClientIDs, got a map`},
		{"map given a list", "rateLimits:\n  classes: [low]\n",
			nil, `config.yaml:2: rateLimits.classes: want a map from names to rate such as {requests: 60, per: 1m, burst: 10} or {unlimited: true}, got a list`},
		{"section given a scalar", "log: debug\n",
			nil, `config.yaml:1: log: want a map with the keys level, format, got "debug"`},
		{"string given a map", "backstage:\n  token: {a: b}\n",
			nil, `config.yaml:2: backstage.token: want a string, got a map`},
		{"rate given a number", "rateLimits:\n  global: 100\n",
			nil, `config.yaml:2: rateLimits.global: want a rate such as {requests: 60, per: 1m, burst: 10} or {unlimited: true}, got 100`},
		{"not a map at all", "- server\n",
			nil, `config.yaml:1: the file must be a map of keys (server, backstage, catalog, auth, policy, audit, rateLimits, log, state, redis), got a list`},
		{"key set twice", "log:\n  level: info\n  level: debug\n",
			nil, `config.yaml:3: log.level: set twice (first on line 2)`},
		{"value from the environment is not echoed", "catalog:\n  pageSize: ${PAGE}\n", map[string]string{"PAGE": "s3cret"},
			`config.yaml:2: catalog.pageSize: want a whole number, got the value of ${PAGE} (not shown)`},
		{"validation error has its line", "log:\n  format: json\n  level: loud\n",
			nil, `config.yaml:3: log.level: "loud" must be one of debug, info, warn, error`},
		{"validation error from the environment names it", "log:\n  level: info\n", map[string]string{"BACKSTAGE_MCP_LOG_LEVEL": "loud"},
			`config: log.level: "loud" must be one of debug, info, warn, error (set by BACKSTAGE_MCP_LOG_LEVEL)`},
		{"yaml syntax error has its line", "log:\n  level: info\n bad: [\n",
			nil, `config.yaml:2: not valid YAML: did not find expected key`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.yaml), "config.yaml", env(tc.env))
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if err.Error() != tc.want {
				t.Fatalf("error\n  %s\nwant\n  %s", err, tc.want)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("%T is not a *ConfigError", err)
			}
		})
	}
}

// TestConfigValuesFromEnvironment: a ${VAR} in a number, boolean or
// duration key is read as the value written there unquoted.
func TestConfigValuesFromEnvironment(t *testing.T) {
	c, err := ParseConfig([]byte("catalog:\n  pageSize: ${PAGE}\n  syncInterval: ${SYNC}\nbackstage:\n  compression: ${GZIP}\n"), "config.yaml",
		env(map[string]string{"PAGE": "250", "SYNC": "45s", "GZIP": "true"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Catalog.PageSize != 250 || c.Catalog.SyncInterval.String() != "45s" || !c.Backstage.Compression {
		t.Fatalf("catalog = %+v, compression = %v", c.Catalog, c.Backstage.Compression)
	}
	// A string key keeps the text as it is, even when it looks like a number.
	c, err = ParseConfig([]byte("audit:\n  replica: ${R}\n"), "config.yaml", env(map[string]string{"R": "0012"}))
	if err != nil || c.Audit.Replica != "0012" {
		t.Fatalf("replica = %q, %v", c.Audit.Replica, err)
	}
}

// TestConfigYAMLFeatures: anchors, aliases and merge keys are checked
// like any other value.
func TestConfigYAMLFeatures(t *testing.T) {
	good := "rateLimits:\n  classes:\n    low: &r {requests: 1, per: 1s}\n    default: *r\n    high:\n      <<: *r\n      burst: 5\n"
	c, err := ParseConfig([]byte(good), "config.yaml", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.RateLimits.Classes["high"].Burst != 5 || c.RateLimits.Classes["default"].Requests != 1 {
		t.Fatalf("classes = %+v", c.RateLimits.Classes)
	}
	bad := "x: &r {requests: 1, pre: 1s}\nrateLimits:\n  agent: *r\n"
	if _, err := ParseConfig([]byte(bad), "config.yaml", env(nil)); err == nil || !strings.Contains(err.Error(), "unknown key x") {
		t.Fatalf("err = %v", err)
	}
	bad = "rateLimits:\n  classes:\n    low: &r {requests: 1, pre: 1s}\n"
	if _, err := ParseConfig([]byte(bad), "config.yaml", env(nil)); err == nil || !strings.Contains(err.Error(), "rateLimits.classes.low.pre (did you mean rateLimits.classes.low.per?)") {
		t.Fatalf("err = %v", err)
	}
}

// TestEmptyConfigRefused: a config file that sets nothing says what a
// minimal configuration needs and where the example and the reference are.
func TestEmptyConfigRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	load := func(data string, e map[string]string) (*Config, error) {
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return LoadConfig(path, env(e))
	}
	for _, data := range []string{"", "\n\n", "# only a comment\n", "{}\n", "---\n", "null\n", "~\n"} {
		_, err := load(data, nil)
		if err == nil {
			t.Fatalf("%q: accepted", data)
		}
		for _, want := range []string{path + ": the file sets nothing", "backstage:", "baseUrl:", "token:", "policy:", "file:", "auth.issuers",
			"testdata/config.example.yaml", "docs/configuration.md", "serve --demo"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%q: error lacks %q:\n%s", data, want, err)
			}
		}
	}
	// The environment may configure everything (the Helm chart does).
	c, err := load("{}\n", map[string]string{"BACKSTAGE_MCP_BACKSTAGE_URL": "http://bs:7007", "BACKSTAGE_MCP_BACKSTAGE_TOKEN": "t"})
	if err != nil || c.Backstage.BaseURL != "http://bs:7007" {
		t.Fatalf("env-only config: %v", err)
	}
	// No configuration at all (serve --demo without --config) is not a mistake.
	if _, err := ParseConfig(nil, "", env(nil)); err != nil {
		t.Fatalf("no file: %v", err)
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"abc", "", 3}, {"kitten", "sitting", 3}, {"tokne", "token", 1}, {"pre", "per", 1}, {"baseurl", "baseurl", 0}} {
		if got := editDistance(tc.a, tc.b); got != tc.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.d)
		}
	}
}

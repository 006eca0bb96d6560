package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/backstage-mcp/backstage-mcp/policy"
	"github.com/backstage-mcp/backstage-mcp/server/audit"
	"github.com/backstage-mcp/backstage-mcp/server/audit/ship"
	"github.com/backstage-mcp/backstage-mcp/server/identity"
	"github.com/backstage-mcp/backstage-mcp/server/ratelimit"
	"github.com/backstage-mcp/backstage-mcp/server/state"
	"go.yaml.in/yaml/v3"
)

// Config is the whole server configuration, read from one YAML file.
// Every string value may use ${ENV_VAR} substitution as in Backstage's
// app-config ($${…} for a literal ${…}).
type Config struct {
	// Server holds the listener settings.
	Server ServerConfig `yaml:"server"`
	// Backstage says how to reach the catalog with the server's own credential.
	Backstage BackstageConfig `yaml:"backstage"`
	// Catalog says whether every call reads Backstage (passthrough) or an
	// in-memory mirror of it kept fresh by periodic delta sync (mirror).
	Catalog CatalogConfig `yaml:"catalog"`
	// Auth configures bearer-token verification and user resolution.
	Auth AuthConfig `yaml:"auth"`
	// Policy names the policy file: who may call which tools and see which
	// entities and fields.
	Policy PolicyConfig `yaml:"policy"`
	// Audit configures the tamper-evident audit trail and its export to a
	// SIEM.
	Audit AuditConfig `yaml:"audit"`
	// RateLimits configures the per-user, per-agent, global and upstream limits.
	RateLimits ratelimit.Config `yaml:"rateLimits"`
	// Log configures operational logs (not the audit trail).
	Log LogConfig `yaml:"log"`
	// State is where rate limits, session records and the cursor key live:
	// "memory" (default; one process) or "redis" (several replicas).
	State string `yaml:"state"`
	// Redis says how to reach Redis when State is "redis".
	Redis state.RedisConfig `yaml:"redis"`
}

// AuditConfig is the audit trail (package audit) plus its export to SIEM
// sinks (package audit/ship).
type AuditConfig struct {
	audit.Config `yaml:",inline"`
	// Format is what the export sinks receive for each record: native (the
	// file's own JSON line, hash chain included; the default), ocsf (OCSF
	// API Activity, class 6003) or ecs (Elastic Common Schema). The file
	// itself is always native.
	Format ship.Format `yaml:"format"`
	// Export sends every record, after it is in the file, to the sinks
	// listed here, at least once and in the background (docs/observing.md).
	Export ship.Config `yaml:"export"`
}

// AuthConfig is the identity configuration plus the HTTP-level scope check.
type AuthConfig struct {
	identity.Config `yaml:",inline"`
	// RequiredScope, when set, is an OAuth scope every token must carry to
	// reach /mcp at all; tokens without it get 403 insufficient_scope.
	RequiredScope string `yaml:"requiredScope"`
	// Stdio names the issuer and client used by `backstage-mcp login` and
	// by `serve --stdio` to find the stored token.
	Stdio StdioAuthConfig `yaml:"stdio"`
}

// StdioAuthConfig says which stored login `serve --stdio` uses.
type StdioAuthConfig struct {
	// Issuer is the issuer URL given to `backstage-mcp login --issuer`.
	// Default: the first of auth.issuers.
	Issuer string `yaml:"issuer"`
}

// PolicyConfig locates the policy file.
type PolicyConfig struct {
	// File is the policy YAML (see policy/doc.md). Required against a real
	// Backstage: without a policy nothing is allowed.
	File string `yaml:"file"`
	// ReloadInterval is how often the file is checked for changes
	// (SIGHUP reloads at once). Default 5s; negative disables polling.
	ReloadInterval time.Duration `yaml:"reloadInterval"`
}

// ServerConfig holds the listener settings.
type ServerConfig struct {
	// PublicURL is the externally visible base URL of this server, e.g.
	// https://mcp.example.com. It defines the MCP endpoint <PublicURL>/mcp,
	// the default token audience and the Protected Resource Metadata.
	// Default: http://<listen address>.
	PublicURL string `yaml:"publicURL"`
	// AllowedOrigins lists the browser Origins accepted on /mcp, besides the
	// PublicURL's own origin. Requests without an Origin header (non-browser
	// clients) are accepted; any other Origin gets 403 (DNS-rebinding guard).
	AllowedOrigins []string `yaml:"allowedOrigins"`
	// MaxRequestBytes caps a request body on /mcp. Default 1 MiB.
	MaxRequestBytes int64 `yaml:"maxRequestBytes"`
	// MaxRequestStringBytes caps one JSON string in a request (a tool
	// argument, a client name…): a message holding a longer one is refused
	// before ingress redaction, whose cost on a long string without line
	// breaks grows faster than its length. Default 65536 (the tools refuse
	// larger arguments anyway).
	MaxRequestStringBytes int `yaml:"maxRequestStringBytes"`
	// IngressRedactionBudget bounds the time ingress redaction may spend on
	// one message (checked before each string; one string is bounded by
	// maxRequestStringBytes): a message that takes longer is refused, as
	// unchecked input never goes further. Default 250ms: about eight times
	// what 1 MiB of ordinary catalog text takes on one core, and about what
	// the worst message within the caps (1 MiB of "password=" pairs) takes,
	// so such a message is refused on a busy machine.
	IngressRedactionBudget time.Duration `yaml:"ingressRedactionBudget"`
	// ShutdownTimeout bounds graceful shutdown. Default 10s.
	ShutdownTimeout time.Duration `yaml:"shutdownTimeout"`
	// AdminAddr is the operators' listener: /metrics, /readyz with each
	// check's details, and /debug/pprof with Pprof. None of them is ever
	// served on the agents' listener. Default (empty): 127.0.0.1:9090 when
	// serving Streamable HTTP, and if that port is taken the server logs a
	// warning and runs without it; "off" turns it off. An address that is
	// not loopback needs adminTokenFile.
	AdminAddr string `yaml:"adminAddr"`
	// AdminTokenFile holds the bearer token (at least 32 bytes) that every
	// request to the admin listener must carry (Authorization: Bearer …).
	// Required when adminAddr is not a loopback address; read at start.
	AdminTokenFile string `yaml:"adminTokenFile"`
	// Pprof serves Go's profiling endpoints under /debug/pprof on the admin
	// listener. Off by default.
	Pprof bool `yaml:"pprof"`
	// CursorKey seals pagination cursors (any string of at least 32
	// bytes). Required, or cursorKeyFile, with state: redis: every replica
	// must seal and open cursors with the same key, and a key kept only in
	// Redis would be lost with Redis's data. Default with state: memory: a
	// random key per process.
	CursorKey string `yaml:"cursorKey"`
	// CursorKeyFile holds the cursor keys, one per line (at least 32 bytes
	// each; blank lines and lines starting with # are skipped): the first
	// seals new cursors, the others still open cursors sealed under them,
	// so a key can be rotated without breaking the pages agents hold.
	// Read at start; at most 8 keys.
	CursorKeyFile string `yaml:"cursorKeyFile"`
	// Sessions bound Streamable HTTP sessions: idle TTL, and caps per user
	// and for the service (kept in Redis with state: redis).
	Sessions state.SessionLimits `yaml:"sessions"`
	// UnauthenticatedRate is the token bucket per client address for
	// requests without a valid token: each request without a bearer token
	// (except a DELETE of a session, which mcp-go's client sends without
	// its token) and each failed verification takes a token; a request
	// whose token verifies never does. While an address's bucket is empty,
	// requests from it without a token get 429 at once, and requests with
	// one are verified within unauthenticatedVerifyRate. Default 10/s,
	// burst 20. In Redis with state: redis (fleet-wide), else per replica.
	UnauthenticatedRate ratelimit.Rate `yaml:"unauthenticatedRate"`
	// UnauthenticatedSubnetRate is the same bucket per subnet (IPv4 /24,
	// IPv6 /48), for floods spread over many addresses. Default 50/s,
	// burst 100.
	UnauthenticatedSubnetRate ratelimit.Rate `yaml:"unauthenticatedSubnetRate"`
	// UnauthenticatedGlobalRate is the same bucket for all addresses
	// together. Default 200/s, burst 400.
	UnauthenticatedGlobalRate ratelimit.Rate `yaml:"unauthenticatedGlobalRate"`
	// UnauthenticatedVerifyRate bounds, per replica, the token
	// verifications spent on requests from addresses whose bucket is empty
	// (so that signed-in users behind a flooded address are still served,
	// while bogus tokens from it cannot buy unbounded signature checks).
	// Default 50/s, burst 100.
	UnauthenticatedVerifyRate ratelimit.Rate `yaml:"unauthenticatedVerifyRate"`
	// IngressRate is the bucket of messages (every HTTP POST: calls,
	// pings, notifications) per signed-in user, charged before the message
	// is redacted, decoded or opens a session. Default 50/s, burst 200.
	// Per replica.
	IngressRate ratelimit.Rate `yaml:"ingressRate"`
	// IngressKiBRate is the bucket of message bytes per signed-in user, one
	// token per KiB started, charged with IngressRate. Its burst must hold
	// the largest body (maxRequestBytes). Default 256 KiB/s, burst 1024
	// (1 MiB). Per replica.
	IngressKiBRate ratelimit.Rate `yaml:"ingressKiBRate"`
	// AuthFailureInterval aggregates refused unauthenticated requests in
	// the audit trail: the first refusal after a quiet interval is recorded
	// at once, the rest of each interval as one record (per type) with the
	// total count and the busiest sources and reasons. Default 10s.
	AuthFailureInterval time.Duration `yaml:"authFailureInterval"`
	// TrustedProxies are the addresses or CIDR ranges of load balancers
	// whose X-Forwarded-For is believed when finding a client's address.
	// Default none: the TCP peer is the client.
	TrustedProxies []string `yaml:"trustedProxies"`
	// ForwardCallerTracestate sends the caller's W3C tracestate header
	// (when well-formed, with a well-formed traceparent) to Backstage
	// along with this server's own traceparent, when tracing is on.
	// Default false: caller-chosen vendor data does not travel upstream.
	// The caller's traceparent never chooses this server's trace either
	// way; it is recorded as callerTraceparent.
	ForwardCallerTracestate bool `yaml:"forwardCallerTracestate"`
}

// readLimited reads at most limit+1 bytes of the file that config key
// names, so that the caller can refuse a file larger than limit with its
// own words; errors name the key and the path.
func readLimited(path, key string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("server: %s: %w", key, err)
	}
	defer func() { _ = f.Close() }()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("server: %s %s: %w", key, path, err)
	}
	return data, nil
}

// maxCursorKeys bounds the keys of server.cursorKeyFile.
const maxCursorKeys = 8

// CursorKeys returns the cursor keys: the one that seals, then the ones
// that still open older cursors. None: a random key per process.
func (c ServerConfig) CursorKeys() (current []byte, previous [][]byte, err error) {
	if c.CursorKey != "" {
		return []byte(c.CursorKey), nil, nil
	}
	if c.CursorKeyFile == "" {
		return nil, nil, nil
	}
	data, err := readLimited(c.CursorKeyFile, "server.cursorKeyFile", 64<<10)
	if err != nil {
		return nil, nil, err
	}
	if len(data) > 64<<10 {
		return nil, nil, fmt.Errorf("server: server.cursorKeyFile %s: larger than 64 KiB; it holds at most %d keys, one per line", c.CursorKeyFile, maxCursorKeys)
	}
	var keys [][]byte
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if len(line) < 32 {
			return nil, nil, fmt.Errorf("server: server.cursorKeyFile %s line %d: a key must be at least 32 bytes (openssl rand -hex 32)", c.CursorKeyFile, i+1)
		}
		keys = append(keys, []byte(line))
	}
	switch {
	case len(keys) == 0:
		return nil, nil, fmt.Errorf("server: server.cursorKeyFile %s: no key; put one per line, the current one first (openssl rand -hex 32)", c.CursorKeyFile)
	case len(keys) > maxCursorKeys:
		return nil, nil, fmt.Errorf("server: server.cursorKeyFile %s: %d keys, at most %d", c.CursorKeyFile, len(keys), maxCursorKeys)
	}
	return keys[0], keys[1:], nil
}

func (c ServerConfig) unauthRates() unauthRates {
	return unauthRates{address: c.UnauthenticatedRate, subnet: c.UnauthenticatedSubnetRate,
		global: c.UnauthenticatedGlobalRate, verify: c.UnauthenticatedVerifyRate}
}

// trustedPrefixes parses TrustedProxies (validated by Config.Validate).
func (c ServerConfig) trustedPrefixes() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(c.TrustedProxies))
	for _, s := range c.TrustedProxies {
		if p, err := parsePrefix(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// parsePrefix reads a CIDR range or a single address.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// BackstageConfig says how to reach Backstage.
type BackstageConfig struct {
	// BaseURL of the Backstage backend, e.g. http://localhost:7007.
	BaseURL string `yaml:"baseUrl"`
	// Token is the server's own Backstage credential: a static token from
	// backend.auth.externalAccess. Prefer TokenFile or ${ENV} substitution.
	Token string `yaml:"token"`
	// TokenFile holds the credential; it is re-read when it changes, so the
	// credential can be rotated without a restart. Exclusive with Token.
	TokenFile string `yaml:"tokenFile"`
	// Timeout bounds every request to Backstage. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
	// MaxResponseBytes caps a response from Backstage. Default 16 MiB.
	MaxResponseBytes int64 `yaml:"maxResponseBytes"`
	// Compression asks Backstage for gzip answers. Default false: on a
	// loopback or LAN hop compression costs Backstage's one Node thread
	// more than it saves; turn it on when Backstage is across a slow link.
	Compression bool `yaml:"compression"`
}

// Catalog modes (catalog.mode).
const (
	// CatalogPassthrough sends every catalog read to Backstage.
	CatalogPassthrough = "passthrough"
	// CatalogMirror answers catalog reads from an in-memory copy of
	// Backstage's catalog, kept fresh by periodic delta sync.
	CatalogMirror = "mirror"
)

// CatalogConfig chooses where catalog reads are answered.
type CatalogConfig struct {
	// Mode is passthrough (default: every call reads Backstage) or mirror:
	// the server keeps the whole catalog in memory, filled by paging
	// through Backstage at start and kept fresh by delta sync (only uids
	// and etags are listed; new and changed entities are fetched by ref).
	// Calls then never wait for Backstage. Until the first full sync
	// completes the server is not ready and catalog calls fail. The copy's
	// age is the time since the start of the last completed sync; when it
	// passes MaxStaleness (Backstage down, or syncs slower than the bound
	// allows) the copy is stale and calls fail closed. /readyz and every
	// tool result's _meta (catalogSyncedAt, catalogAgeSeconds,
	// catalogStale) report the copy's age.
	Mode string `yaml:"mode"`
	// SyncInterval is the time between two delta syncs in mirror mode.
	// Default 30s; between 1s and 1h.
	SyncInterval time.Duration `yaml:"syncInterval"`
	// MaxStaleness is how old the mirror may be (time since the start of
	// its last completed sync) before it is stale: catalog calls fail
	// closed and the admin /readyz reports the catalog check failing (a shared
	// check: it does not make /readyz 503). A healthy mirror's age peaks at
	// syncInterval plus one sync's duration (a full sync's, hourly), so
	// keep it above that; the log warns when a sync shows it is not.
	// Default 5m; at least twice syncInterval, at most 24h.
	MaxStaleness time.Duration `yaml:"maxStaleness"`
	// PageSize is the number of entities per request when the mirror reads
	// Backstage (full sync pages, delta listings). Default 500; 1 to 1000.
	PageSize int `yaml:"pageSize"`
	// BatchSize is the number of changed entities fetched per by-refs
	// request in a delta sync. Default 500; 1 to 1000.
	BatchSize int `yaml:"batchSize"`
	// MaxEntities bounds the mirror's size: a sync that finds more fails
	// and the previous copy stays. Default 500000.
	MaxEntities int `yaml:"maxEntities"`
	// FullSyncInterval is how often the mirror reads every entity again
	// instead of a delta: delta syncs trust metadata.etag, which an entity
	// provider with its own etags keeps when only relations change.
	// Default 1h; at least syncInterval, at most 168h; negative: never.
	FullSyncInterval time.Duration `yaml:"fullSyncInterval"`
	// ChangeRetention is how long the change feed (catalog_list_changes)
	// keeps a change, at most the last 10000: in Redis with state: redis
	// (kept across restarts), else in this process. Default 720h (30
	// days); 1h to 8760h.
	ChangeRetention time.Duration `yaml:"changeRetention"`
	// SummaryAnnotations are the annotation keys that entity summaries
	// (catalog_get_entity, catalog_search_entities) show: where the code and
	// docs live, who is on call, where to talk, what to look at. Unset: the
	// built-in list (docs/tools.md); [] shows none. At most 64 keys.
	SummaryAnnotations []string `yaml:"summaryAnnotations"`
}

// LogConfig configures operational logs.
type LogConfig struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// Format is auto (tint on a terminal, JSON otherwise), json or text.
	Format string `yaml:"format"`
}

// Environment variables that override the file (applied after it), with
// the key each one sets.
var envOverrides = []struct {
	name, key string
	set       func(*Config, string)
}{
	{"BACKSTAGE_MCP_BACKSTAGE_URL", "backstage.baseUrl", func(c *Config, v string) { c.Backstage.BaseURL = v }},
	{"BACKSTAGE_MCP_BACKSTAGE_TOKEN", "backstage.token", func(c *Config, v string) { c.Backstage.Token = v }},
	{"BACKSTAGE_MCP_BACKSTAGE_TOKEN_FILE", "backstage.tokenFile", func(c *Config, v string) { c.Backstage.TokenFile = v }},
	{"BACKSTAGE_MCP_ADMIN_TOKEN_FILE", "server.adminTokenFile", func(c *Config, v string) { c.Server.AdminTokenFile = v }},
	{"BACKSTAGE_MCP_PUBLIC_URL", "server.publicURL", func(c *Config, v string) { c.Server.PublicURL = v }},
	{"BACKSTAGE_MCP_LOG_LEVEL", "log.level", func(c *Config, v string) { c.Log.Level = v }},
	{"BACKSTAGE_MCP_POLICY_FILE", "policy.file", func(c *Config, v string) { c.Policy.File = v }},
	{"BACKSTAGE_MCP_AUDIT_PATH", "audit.path", func(c *Config, v string) { c.Audit.Path = v }},
	{"BACKSTAGE_MCP_AUDIT_REPLICA", "audit.replica", func(c *Config, v string) { c.Audit.Replica = v }},
	{"BACKSTAGE_MCP_STATE", "state", func(c *Config, v string) { c.State = v }},
	{"BACKSTAGE_MCP_CATALOG_MODE", "catalog.mode", func(c *Config, v string) { c.Catalog.Mode = v }},
	{"BACKSTAGE_MCP_REDIS_URL", "redis.url", func(c *Config, v string) { c.Redis.URL = v }},
	{"BACKSTAGE_MCP_REDIS_PASSWORD_FILE", "redis.passwordFile", func(c *Config, v string) { c.Redis.PasswordFile = v }},
	{"BACKSTAGE_MCP_CURSOR_KEY", "server.cursorKey", func(c *Config, v string) { c.Server.CursorKey = v }},
	{"BACKSTAGE_MCP_CURSOR_KEY_FILE", "server.cursorKeyFile", func(c *Config, v string) { c.Server.CursorKeyFile = v }},
}

// EnvOverrideNames lists the environment variables that override the file.
func EnvOverrideNames() []string {
	n := make([]string, len(envOverrides))
	for i, e := range envOverrides {
		n[i] = e.name
	}
	return n
}

// ConfigError names the key that is wrong and why, and where: the file
// and line when the key is in the file.
type ConfigError struct {
	File string
	Line int
	Key  string
	Msg  string
	// keyInMsg: Msg names the key itself (unknown keys), so Error does
	// not put it in front.
	keyInMsg bool
}

// Error reads "FILE:LINE: KEY: MESSAGE", as compilers report, or
// "config: KEY: MESSAGE" when there is no file.
func (e *ConfigError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	} else {
		b.WriteString("config: ")
	}
	if e.Key != "" && !e.keyInMsg {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// LoadConfig reads, substitutes, checks (unknown keys and values of the
// wrong type are errors, reported with their line), decodes, applies
// environment overrides and defaults, and validates a config file. A file
// that sets no key (empty, only comments, {}) is refused with what a
// minimal configuration needs, unless environment overrides configure the
// server (as the Helm chart does).
func LoadConfig(path string, getenv func(string) string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := parseConfig(data, path, getenv, true)
	if err != nil {
		return nil, err
	}
	cfg.resolvePaths(filepath.Dir(path), getenv)
	return cfg, nil
}

// resolvePaths makes the relative file paths written in the config file
// relative to the file's folder, not to the working directory of whoever
// starts the server (an IDE starts it in the developer's repository). Paths
// from the environment overrides stay as given, and so does the default
// audit path (audit.log in the working directory).
func (c *Config) resolvePaths(dir string, getenv func(string) string) {
	if getenv == nil {
		getenv = os.Getenv
	}
	resolve := func(p *string, env string) {
		if *p == "" || filepath.IsAbs(*p) || getenv(env) != "" {
			return
		}
		*p = filepath.Join(dir, *p)
	}
	resolve(&c.Policy.File, "BACKSTAGE_MCP_POLICY_FILE")
	resolve(&c.Backstage.TokenFile, "BACKSTAGE_MCP_BACKSTAGE_TOKEN_FILE")
	resolve(&c.Server.AdminTokenFile, "BACKSTAGE_MCP_ADMIN_TOKEN_FILE")
	resolve(&c.Server.CursorKeyFile, "BACKSTAGE_MCP_CURSOR_KEY_FILE")
	resolve(&c.Redis.PasswordFile, "BACKSTAGE_MCP_REDIS_PASSWORD_FILE")
	resolve(&c.Redis.Sentinel.PasswordFile, "")
	resolve(&c.Redis.TLS.CAFile, "")
	resolve(&c.Redis.TLS.CertFile, "")
	resolve(&c.Redis.TLS.KeyFile, "")
	if c.Audit.Path != audit.DefaultPath {
		resolve(&c.Audit.Path, "BACKSTAGE_MCP_AUDIT_PATH")
	}
	for i := range c.Audit.Export.Sinks {
		sk := &c.Audit.Export.Sinks[i]
		for _, p := range []*string{&sk.TokenFile, &sk.TLS.CAFile, &sk.TLS.CertFile, &sk.TLS.KeyFile} {
			resolve(p, "")
		}
		for k, v := range sk.HeaderFiles {
			resolve(&v, "")
			sk.HeaderFiles[k] = v
		}
	}
	resolve(&c.Audit.Checkpoint.KeyFile, "")
	resolve(&c.Audit.Checkpoint.File, "")
}

// ParseConfig is LoadConfig for bytes already read, file naming them in
// errors. Empty data is no configuration at all: defaults and environment
// overrides only (serve --demo without --config).
func ParseConfig(data []byte, file string, getenv func(string) string) (*Config, error) {
	return parseConfig(data, file, getenv, false)
}

func parseConfig(data []byte, file string, getenv func(string) string, refuseEmpty bool) (*Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	cfg := &Config{}
	lines := map[string]int{}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlSyntaxError(file, err)
	}
	if emptyDocument(&root) {
		if refuseEmpty && !envOverridden(getenv) {
			return nil, &ConfigError{File: file, Msg: emptyConfigMsg}
		}
	} else {
		subst := map[*yaml.Node]string{}
		if err := substitute(&root, "", file, getenv, subst); err != nil {
			return nil, err
		}
		ck := &nodeChecker{file: file, subst: subst, lines: lines}
		if err := ck.check(root.Content[0], reflect.TypeFor[Config](), ""); err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		enc := yaml.NewEncoder(&buf)
		if err := enc.Encode(&root); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		dec := yaml.NewDecoder(&buf)
		dec.KnownFields(true)
		if err := dec.Decode(cfg); err != nil {
			// The checker above reports every mistake the decoder
			// knows of; this is a backstop.
			return nil, &ConfigError{File: file, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
		}
	}
	fromEnv := map[string]string{}
	for _, e := range envOverrides {
		if v := getenv(e.name); v != "" {
			e.set(cfg, v)
			fromEnv[e.key] = e.name
		}
	}
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) && ce.File == "" {
			if name, ok := fromEnv[ce.Key]; ok {
				ce.Msg += " (set by " + name + ")"
			} else {
				ce.File, ce.Line = file, keyLine(lines, ce.Key)
			}
		}
		return nil, err
	}
	return cfg, nil
}

// keyLine finds the line of key, or of the nearest section that holds it.
func keyLine(lines map[string]int, key string) int {
	for key != "" {
		if l, ok := lines[key]; ok {
			return l
		}
		i := strings.LastIndexAny(key, ".[")
		if i < 0 {
			break
		}
		key = key[:i]
	}
	return 0
}

// emptyDocument: the file sets no key (empty, only comments, {} or null).
func emptyDocument(root *yaml.Node) bool {
	if root.Kind == 0 || len(root.Content) == 0 {
		return true
	}
	n := root.Content[0]
	switch n.Kind {
	case yaml.MappingNode:
		return len(n.Content) == 0
	case yaml.ScalarNode:
		return n.ShortTag() == "!!null"
	}
	return false
}

func envOverridden(getenv func(string) string) bool {
	for _, e := range envOverrides {
		if getenv(e.name) != "" {
			return true
		}
	}
	return false
}

// emptyConfigMsg says what a minimal configuration needs.
const emptyConfigMsg = `the file sets nothing. A minimal configuration names your Backstage, the server's own credential for it, and a policy:

  backstage:
    baseUrl: http://localhost:7007   # your Backstage backend
    token: ${BACKSTAGE_TOKEN}        # a static token from Backstage's backend.auth.externalAccess (or tokenFile)
  policy:
    file: policy.yaml                # who may call which tools and see what (default deny)

and, to serve over HTTP, auth.issuers: the OpenID providers whose tokens are accepted.
See the annotated example testdata/config.example.yaml and the reference docs/configuration.md.
To try the server without a Backstage: backstage-mcp serve --demo --http 127.0.0.1:8080`

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlSyntaxError reports a YAML syntax error at its line.
func yamlSyntaxError(file string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	return &ConfigError{File: file, Line: line, Msg: "not valid YAML: " + msg}
}

var envRef = regexp.MustCompile(`\$?\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// substitute replaces ${VAR} in every scalar; $${VAR} stays literal ${VAR}.
// The scalars it changes go into subst with their text before.
func substitute(n *yaml.Node, path, file string, getenv func(string) string, subst map[*yaml.Node]string) error {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for i, c := range n.Content {
			p := path
			if n.Kind == yaml.SequenceNode {
				p = fmt.Sprintf("%s[%d]", path, i)
			}
			if err := substitute(c, p, file, getenv, subst); err != nil {
				return err
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := n.Content[i].Value
			if path != "" {
				p = path + "." + p
			}
			if err := substitute(n.Content[i+1], p, file, getenv, subst); err != nil {
				return err
			}
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "${") {
			return nil
		}
		var missing string
		before := n.Value
		n.Value = envRef.ReplaceAllStringFunc(n.Value, func(m string) string {
			if strings.HasPrefix(m, "$$") {
				return m[1:]
			}
			name := m[2 : len(m)-1]
			v := getenv(name)
			if v == "" && missing == "" {
				missing = name
			}
			return v
		})
		if missing != "" {
			return &ConfigError{File: file, Line: n.Line, Key: path, Msg: fmt.Sprintf("environment variable %s is not set", missing)}
		}
		if n.Value != before {
			subst[n] = before
		}
		n.Tag = "!!str"
		if n.Style == 0 {
			n.Style = yaml.DoubleQuotedStyle
		}
	}
	return nil
}

func (c *Config) applyDefaults() {
	if c.Server.MaxRequestBytes == 0 {
		c.Server.MaxRequestBytes = 1 << 20
	}
	if c.Server.IngressRedactionBudget == 0 {
		c.Server.IngressRedactionBudget = 250 * time.Millisecond
	}
	if c.Server.MaxRequestStringBytes == 0 {
		c.Server.MaxRequestStringBytes = int(min(64<<10, c.Server.MaxRequestBytes))
	}
	if c.Server.ShutdownTimeout == 0 {
		c.Server.ShutdownTimeout = 10 * time.Second
	}
	if c.Backstage.Timeout == 0 {
		c.Backstage.Timeout = 10 * time.Second
	}
	if c.Backstage.MaxResponseBytes == 0 {
		c.Backstage.MaxResponseBytes = 16 << 20
	}
	if c.Catalog.Mode == "" {
		c.Catalog.Mode = CatalogPassthrough
	}
	if c.Catalog.SyncInterval == 0 {
		c.Catalog.SyncInterval = 30 * time.Second
	}
	if c.Catalog.MaxStaleness == 0 {
		c.Catalog.MaxStaleness = 5 * time.Minute
	}
	if c.Catalog.PageSize == 0 {
		c.Catalog.PageSize = 500
	}
	if c.Catalog.BatchSize == 0 {
		c.Catalog.BatchSize = 500
	}
	if c.Catalog.MaxEntities == 0 {
		c.Catalog.MaxEntities = 500_000
	}
	if c.Catalog.FullSyncInterval == 0 {
		c.Catalog.FullSyncInterval = time.Hour
	}
	if c.Catalog.ChangeRetention == 0 {
		c.Catalog.ChangeRetention = 720 * time.Hour
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "auto"
	}
	if c.Policy.ReloadInterval == 0 {
		c.Policy.ReloadInterval = 5 * time.Second
	}
	ad := audit.DefaultConfig()
	if c.Audit.Sink == "" {
		c.Audit.Sink = ad.Sink
	}
	if c.Audit.Path == "" {
		c.Audit.Path = ad.Path
	}
	if c.State == "" {
		c.State = state.Memory
	}
	if c.Server.UnauthenticatedRate == (ratelimit.Rate{}) {
		c.Server.UnauthenticatedRate = ratelimit.PerSecond(10, 20)
	}
	if c.Server.UnauthenticatedSubnetRate == (ratelimit.Rate{}) {
		c.Server.UnauthenticatedSubnetRate = ratelimit.PerSecond(50, 100)
	}
	if c.Server.UnauthenticatedGlobalRate == (ratelimit.Rate{}) {
		c.Server.UnauthenticatedGlobalRate = ratelimit.PerSecond(200, 400)
	}
	if c.Server.IngressRate == (ratelimit.Rate{}) {
		c.Server.IngressRate = ratelimit.PerSecond(50, 200)
	}
	if c.Server.IngressKiBRate == (ratelimit.Rate{}) {
		c.Server.IngressKiBRate = ratelimit.PerSecond(256, 1024)
	}
	if c.Server.UnauthenticatedVerifyRate == (ratelimit.Rate{}) {
		c.Server.UnauthenticatedVerifyRate = ratelimit.PerSecond(50, 100)
	}
	if c.Server.AuthFailureInterval == 0 {
		c.Server.AuthFailureInterval = 10 * time.Second
	}
	if c.Auth.Stdio.Issuer == "" && len(c.Auth.Issuers) > 0 {
		c.Auth.Stdio.Issuer = c.Auth.Issuers[0].URL
	}
}

// Validate checks every field and names the first bad key.
func (c *Config) Validate() error {
	bad := func(key, format string, a ...any) error {
		return &ConfigError{Key: key, Msg: fmt.Sprintf(format, a...)}
	}
	if c.Server.PublicURL != "" {
		u, err := url.Parse(c.Server.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return bad("server.publicURL", "%q must be an absolute http(s) URL without a path, e.g. https://mcp.example.com", c.Server.PublicURL)
		}
	}
	for i, o := range c.Server.AllowedOrigins {
		u, err := url.Parse(o)
		if err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return bad(fmt.Sprintf("server.allowedOrigins[%d]", i), "%q must be an origin such as https://app.example.com", o)
		}
	}
	if c.Server.MaxRequestBytes < 1024 || c.Server.MaxRequestBytes > 64<<20 {
		return bad("server.maxRequestBytes", "must be between 1024 and 67108864 bytes (got %d)", c.Server.MaxRequestBytes)
	}
	if c.Server.IngressRedactionBudget < 10*time.Millisecond || c.Server.IngressRedactionBudget > time.Minute {
		return bad("server.ingressRedactionBudget", "must be between 10ms and 1m (got %s)", c.Server.IngressRedactionBudget)
	}
	if c.Server.MaxRequestStringBytes < 1024 || int64(c.Server.MaxRequestStringBytes) > c.Server.MaxRequestBytes {
		return bad("server.maxRequestStringBytes", "must be between 1024 and server.maxRequestBytes (%d) (got %d)", c.Server.MaxRequestBytes, c.Server.MaxRequestStringBytes)
	}
	if c.Server.ShutdownTimeout < 0 {
		return bad("server.shutdownTimeout", "must be positive")
	}
	if a := c.Server.AdminAddr; a != "" && a != AdminOff {
		host, port, err := net.SplitHostPort(a)
		if err != nil || port == "" {
			return bad("server.adminAddr", "%q must be host:port, e.g. 127.0.0.1:9090, or \"off\"", a)
		}
		if !isLoopbackHost(host) && c.Server.AdminTokenFile == "" {
			return bad("server.adminTokenFile", "is required because server.adminAddr %q is not a loopback address: metrics, readiness details and profiles must not be open to the network; "+
				"put a random token of at least 32 bytes in a file (openssl rand -hex 32 > admin.token) and name it here, or bind the admin listener to 127.0.0.1", a)
		}
	}
	if c.Server.Pprof && c.Server.AdminAddr == AdminOff {
		return bad("server.pprof", "needs the admin listener, but server.adminAddr is \"off\": profiling is never served on the agents' listener")
	}
	if c.Server.CursorKey != "" && len(c.Server.CursorKey) < 32 {
		return bad("server.cursorKey", "must be at least 32 bytes")
	}
	if c.Server.CursorKey != "" && c.Server.CursorKeyFile != "" {
		return bad("server.cursorKeyFile", "and server.cursorKey are both set: keep one (the file, to rotate keys)")
	}
	if c.State == state.RedisStore && c.Server.CursorKey == "" && c.Server.CursorKeyFile == "" {
		return bad("server.cursorKey", "or server.cursorKeyFile is required with state: redis: every replica must seal pagination cursors with the same key, "+
			"and one kept only in Redis would change when Redis loses its data; make one with openssl rand -hex 32")
	}
	if c.Backstage.BaseURL != "" {
		u, err := url.Parse(c.Backstage.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("backstage.baseUrl", "%q must be an absolute http(s) URL, e.g. http://localhost:7007", c.Backstage.BaseURL)
		}
		if c.Backstage.Token == "" && c.Backstage.TokenFile == "" {
			return bad("backstage.token", "a Backstage credential is required: set backstage.token (e.g. ${BACKSTAGE_TOKEN}) or backstage.tokenFile")
		}
	}
	if c.Backstage.Token != "" && c.Backstage.TokenFile != "" {
		return bad("backstage.tokenFile", "set either backstage.token or backstage.tokenFile, not both")
	}
	if c.Backstage.Timeout < 0 || c.Backstage.Timeout > 5*time.Minute {
		return bad("backstage.timeout", "must be between 0 and 5m (got %s)", c.Backstage.Timeout)
	}
	if c.Backstage.MaxResponseBytes < 1024 {
		return bad("backstage.maxResponseBytes", "must be at least 1024 bytes")
	}
	if err := c.Catalog.validate(bad); err != nil {
		return err
	}
	for i, is := range c.Auth.Issuers {
		u, err := url.Parse(is.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return bad(fmt.Sprintf("auth.issuers[%d].url", i), "%q must be the issuer URL exactly as in the tokens' iss claim, e.g. https://login.example.com", is.URL)
		}
	}
	if c.Auth.Audience != "" {
		if u, err := url.Parse(c.Auth.Audience); err != nil || u.Scheme == "" {
			return bad("auth.audience", "%q must be a URL naming this server, e.g. https://mcp.example.com/mcp", c.Auth.Audience)
		}
	}
	if c.Auth.ClockSkew < 0 || c.Auth.ClockSkew > 5*time.Minute {
		return bad("auth.clockSkew", "must be between 0 and 5m")
	}
	if c.Auth.MaxTokenAge < 0 {
		return bad("auth.maxTokenAge", "must be positive")
	}
	if c.Auth.Resolver.Name != "" && !slices.Contains(resolverNames, c.Auth.Resolver.Name) {
		return bad("auth.resolver.name", "%q must be one of %s", c.Auth.Resolver.Name, strings.Join(resolverNames, ", "))
	}
	if err := c.Audit.Validate(); err != nil {
		return bad("audit", "%s", strings.TrimPrefix(err.Error(), "audit: "))
	}
	if err := ship.ValidFormat(c.Audit.Format); err != nil {
		return bad("audit.format", "%s", strings.TrimPrefix(err.Error(), "ship: "))
	}
	if err := c.Audit.Export.Validate(); err != nil {
		return bad("audit.export", "%s", strings.TrimPrefix(err.Error(), "ship: "))
	}
	if len(c.Audit.Export.Sinks) > 0 && c.Audit.Sink != audit.SinkFile {
		return bad("audit.export", "needs audit.sink file: the sinks are fed from the file, the durable record")
	}
	if err := c.RateLimits.Validate(); err != nil {
		return bad("rateLimits", "%s", strings.TrimPrefix(err.Error(), "ratelimit: "))
	}
	for i, p := range c.Server.TrustedProxies {
		if _, err := parsePrefix(p); err != nil {
			return bad(fmt.Sprintf("server.trustedProxies[%d]", i), "%q must be an IP address or a CIDR range such as 10.0.0.0/8", p)
		}
	}
	for _, ur := range []struct {
		key string
		r   ratelimit.Rate
	}{
		{"server.unauthenticatedRate", c.Server.UnauthenticatedRate},
		{"server.unauthenticatedSubnetRate", c.Server.UnauthenticatedSubnetRate},
		{"server.unauthenticatedGlobalRate", c.Server.UnauthenticatedGlobalRate},
		{"server.unauthenticatedVerifyRate", c.Server.UnauthenticatedVerifyRate},
	} {
		if ur.r.Unlimited {
			return bad(ur.key, "cannot be unlimited: requests without a valid token must stay bounded")
		}
		if err := (ratelimit.Config{Global: ur.r}).Validate(); err != nil {
			return bad(ur.key, "%s", strings.TrimPrefix(err.Error(), "ratelimit: global: "))
		}
	}
	for key, r := range map[string]ratelimit.Rate{"server.ingressRate": c.Server.IngressRate, "server.ingressKiBRate": c.Server.IngressKiBRate} {
		if err := (ratelimit.Config{Global: r}).Validate(); err != nil {
			return bad(key, "%s", strings.TrimPrefix(err.Error(), "ratelimit: global: "))
		}
	}
	if burst := c.Server.IngressKiBRate.BurstSize(); !c.Server.IngressKiBRate.Unlimited && int64(burst)*1024 < c.Server.MaxRequestBytes {
		return bad("server.ingressKiBRate", "burst (%d KiB) must hold the largest request body, server.maxRequestBytes (%d bytes)", burst, c.Server.MaxRequestBytes)
	}
	if c.Server.AuthFailureInterval < time.Second || c.Server.AuthFailureInterval > time.Hour {
		return bad("server.authFailureInterval", "must be between 1s and 1h (got %s)", c.Server.AuthFailureInterval)
	}
	if err := c.Server.Sessions.Validate(); err != nil {
		return bad("server.sessions", "%s", strings.TrimPrefix(err.Error(), "state: sessions: "))
	}
	switch c.State {
	case state.Memory:
	case state.RedisStore:
		if err := c.Redis.Validate(); err != nil {
			return redisConfigError(err, bad)
		}
	default:
		return bad("state", "%q must be memory (one process) or redis (several replicas)", c.State)
	}
	if !slices.Contains(logLevels, c.Log.Level) {
		return bad("log.level", "%q must be one of %s", c.Log.Level, strings.Join(logLevels, ", "))
	}
	if !slices.Contains(logFormats, c.Log.Format) {
		return bad("log.format", "%q must be one of %s", c.Log.Format, strings.Join(logFormats, ", "))
	}
	return nil
}

// redisConfigError reports a state.ConfigError under its own key
// ("redis.tls.caFile"), so that `config check` points at the right line.
func redisConfigError(err error, bad func(key, format string, a ...any) error) error {
	var ce *state.ConfigError
	if errors.As(err, &ce) {
		return bad(ce.Key, "%s", ce.Msg)
	}
	return bad("redis", "%s", strings.TrimPrefix(err.Error(), "state: "))
}

// CheckFiles reads the files the configuration names for a connection
// (with state: redis: the Redis password files, CA, client certificate
// and key) as serve would, so that `config check` reports a missing or
// malformed one with its key instead of serve failing at start.
func (c *Config) CheckFiles() error {
	if c.State != state.RedisStore {
		return nil
	}
	if err := c.Redis.Check(); err != nil {
		return redisConfigError(err, func(key, format string, a ...any) error {
			return &ConfigError{Key: key, Msg: fmt.Sprintf(format, a...)}
		})
	}
	return nil
}

func (c CatalogConfig) validate(bad func(key, format string, a ...any) error) error {
	switch c.Mode {
	case CatalogPassthrough, CatalogMirror:
	default:
		return bad("catalog.mode", "%q must be passthrough (every call reads Backstage) or mirror (an in-memory copy kept fresh by delta sync)", c.Mode)
	}
	if c.SyncInterval < time.Second || c.SyncInterval > time.Hour {
		return bad("catalog.syncInterval", "must be between 1s and 1h (got %s)", c.SyncInterval)
	}
	if c.MaxStaleness < 2*c.SyncInterval || c.MaxStaleness > 24*time.Hour {
		return bad("catalog.maxStaleness", "must be at least twice catalog.syncInterval (%s), room for one sync, and at most 24h (got %s)", c.SyncInterval, c.MaxStaleness)
	}
	if c.PageSize < 1 || c.PageSize > 1000 {
		return bad("catalog.pageSize", "must be between 1 and 1000 (got %d)", c.PageSize)
	}
	if c.BatchSize < 1 || c.BatchSize > 1000 {
		return bad("catalog.batchSize", "must be between 1 and 1000 (got %d)", c.BatchSize)
	}
	if c.MaxEntities < 1 || c.MaxEntities > 10_000_000 {
		return bad("catalog.maxEntities", "must be between 1 and 10000000 (got %d)", c.MaxEntities)
	}
	if c.FullSyncInterval > 0 && (c.FullSyncInterval < c.SyncInterval || c.FullSyncInterval > 168*time.Hour) {
		return bad("catalog.fullSyncInterval", "must be between catalog.syncInterval (%s) and 168h, or negative for never (got %s)", c.SyncInterval, c.FullSyncInterval)
	}
	if c.ChangeRetention < time.Hour || c.ChangeRetention > 8760*time.Hour {
		return bad("catalog.changeRetention", "must be between 1h and 8760h (got %s)", c.ChangeRetention)
	}
	if len(c.SummaryAnnotations) > 64 {
		return bad("catalog.summaryAnnotations", "takes at most 64 keys (got %d)", len(c.SummaryAnnotations))
	}
	for _, k := range c.SummaryAnnotations {
		if k == "" || len(k) > 253 || strings.ContainsAny(k, " \t\n") {
			return bad("catalog.summaryAnnotations", "%q is not an annotation key", k)
		}
	}
	return nil
}

// CheckPolicy reports what in a policy this configuration cannot serve: a
// fallback role the policy does not define, or a rate class the config does
// not configure. serve refuses such a policy (and keeps the old one on a
// reload); `config check` runs the same check, so it never passes a policy
// that serve would refuse.
func (c *Config) CheckPolicy(doc policy.Document) error {
	if fr := c.Auth.FallbackRole; fr != "" {
		found := false
		for _, role := range doc.Roles {
			found = found || role.Name == fr
		}
		if !found {
			return fmt.Errorf("auth.fallbackRole %q names no role of the policy", fr)
		}
	}
	for i, role := range doc.Roles {
		if role.RateClass != "" && !c.RateLimits.HasClass(role.RateClass) {
			return fmt.Errorf("roles[%d] (%s): rate class %q is not configured in rateLimits.classes (have: %s)",
				i, role.Name, role.RateClass, strings.Join(c.RateLimits.ClassNames(), ", "))
		}
	}
	return nil
}

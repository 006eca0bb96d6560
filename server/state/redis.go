package state

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Store names.
const (
	// Memory keeps state in this process (default).
	Memory = "memory"
	// RedisStore keeps state in Redis, shared by every replica.
	RedisStore = "redis"
)

// ErrUnavailable is returned (wrapped) when Redis cannot answer.
var ErrUnavailable = errors.New("state: shared store (Redis) unavailable")

// Bounds on what the Redis configuration names.
const (
	maxRedisAddrs        = 64
	maxSecretFileBytes   = 4 << 10
	maxTLSFileBytes      = 1 << 20
	maxRedisKeyPrefixLen = 128
)

// RedisConfig says how to reach Redis: one server (url), a primary watched
// by Sentinel (sentinel) or a Redis Cluster (cluster); exactly one of the
// three. Passwords are never written in the file: they are read from
// files (a mounted Secret), or, for the url form only, from the URL.
type RedisConfig struct {
	// URL is one Redis server: redis://[user:password@]host:port/db, or
	// rediss:// for TLS. Prefer username and passwordFile to a password in
	// the URL; if the URL carries one, give it through ${ENV} substitution
	// or BACKSTAGE_MCP_REDIS_URL.
	URL string `yaml:"url"`
	// Sentinel is a primary with replicas watched by Redis Sentinel: the
	// client asks the sentinels for the current primary and follows a
	// failover by itself. Every command goes to the primary.
	Sentinel RedisSentinelConfig `yaml:"sentinel"`
	// Cluster is a Redis Cluster: the client learns the slot map from
	// the nodes listed and follows MOVED/ASK redirections and failovers.
	Cluster RedisClusterConfig `yaml:"cluster"`
	// Username is the ACL user (Redis 6 and later) for the data nodes
	// (the url's server, the sentinels' primary, the cluster's nodes).
	// Needs passwordFile. Not with a user in the url.
	Username string `yaml:"username"`
	// PasswordFile holds the password of username (or of the default
	// user, when username is empty): the whole file, a trailing newline
	// dropped, at most 4 KiB. It is read again for every new connection,
	// so a rotated Secret applies without a restart. Not with a password
	// in the url.
	PasswordFile string `yaml:"passwordFile"`
	// TLS configures TLS towards Redis (and the sentinels).
	TLS RedisTLSConfig `yaml:"tls"`
	// KeyPrefix starts every key, so several deployments can share one
	// Redis. Default "backstage-mcp:". At most 128 bytes.
	KeyPrefix string `yaml:"keyPrefix"`
	// Timeout bounds every Redis operation (dial, TLS handshake, read,
	// write, wait for a pooled connection). Default 500ms.
	Timeout time.Duration `yaml:"timeout"`
	// PoolSize caps connections per replica (with cluster: per node).
	// Default 10 per CPU (go-redis).
	PoolSize int `yaml:"poolSize"`
}

// RedisSentinelConfig names the sentinels and the primary they watch.
type RedisSentinelConfig struct {
	// MasterName is the name the sentinels know the primary by (the
	// name in `sentinel monitor NAME host port quorum`).
	MasterName string `yaml:"masterName"`
	// Addrs are the sentinels' host:port (usually port 26379); one that
	// answers is enough, list them all.
	Addrs []string `yaml:"addrs"`
	// Username is the sentinels' ACL user, when they require one. Needs
	// passwordFile.
	Username string `yaml:"username"`
	// PasswordFile holds the sentinels' password (sentinel
	// requirepass), when they require one: read once at start, a
	// trailing newline dropped, at most 4 KiB.
	PasswordFile string `yaml:"passwordFile"`
}

// RedisClusterConfig names the nodes of a Redis Cluster.
type RedisClusterConfig struct {
	// Addrs are host:port of cluster nodes; the client learns the others
	// from them. List several, so that one node down does not stop a
	// start.
	Addrs []string `yaml:"addrs"`
}

// RedisTLSConfig is TLS towards Redis.
type RedisTLSConfig struct {
	// Enabled turns TLS on for sentinel and cluster (and for a url, which
	// must then be rediss://). A rediss:// url turns it on by itself.
	Enabled bool `yaml:"enabled"`
	// CAFile is the PEM bundle of the certificate authorities that sign
	// the Redis servers' certificates; when set, only these are trusted.
	// Default: the system's roots.
	CAFile string `yaml:"caFile"`
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// servers that require one (tls-auth-clients yes). Both or neither.
	CertFile string `yaml:"certFile"`
	// KeyFile is the client certificate's private key (PEM).
	KeyFile string `yaml:"keyFile"`
	// ServerName is the name the server certificates must carry. Default:
	// the host of each address dialled (for sentinel and cluster: as the
	// sentinels and nodes announce them, often IP addresses).
	ServerName string `yaml:"serverName"`
}

// clusterReloadInterval bounds how stale the cluster client's slot map
// can get while calls flow.
const clusterReloadInterval = time.Second

// Redis modes, as RedisConfig.Mode names them.
const (
	RedisModeServer   = "server"
	RedisModeSentinel = "sentinel"
	RedisModeCluster  = "cluster"
)

// ConfigError is a mistake in the Redis configuration: Key is the
// configuration key at fault ("redis.tls.caFile"), Msg what is expected.
// It never holds a password or a URL.
type ConfigError struct {
	Key string
	Msg string
}

func (e *ConfigError) Error() string { return "state: " + e.Key + ": " + e.Msg }

func cfgErr(key, format string, a ...any) error {
	return &ConfigError{Key: key, Msg: fmt.Sprintf(format, a...)}
}

// WithDefaults fills zero fields.
func (c RedisConfig) WithDefaults() RedisConfig {
	if c.KeyPrefix == "" {
		c.KeyPrefix = "backstage-mcp:"
	}
	if c.Timeout <= 0 {
		c.Timeout = 500 * time.Millisecond
	}
	return c
}

func (c RedisConfig) sentinelSet() bool {
	s := c.Sentinel
	return s.MasterName != "" || len(s.Addrs) > 0 || s.Username != "" || s.PasswordFile != ""
}

// Mode is RedisModeServer, RedisModeSentinel or RedisModeCluster, by the
// part of the configuration that is set ("" when none is).
func (c RedisConfig) Mode() string {
	switch {
	case c.URL != "":
		return RedisModeServer
	case c.sentinelSet():
		return RedisModeSentinel
	case len(c.Cluster.Addrs) > 0:
		return RedisModeCluster
	}
	return ""
}

// UsesTLS reports whether connections use TLS (tls.enabled or a rediss:// url).
func (c RedisConfig) UsesTLS() bool {
	if c.URL != "" {
		if u, err := url.Parse(c.URL); err == nil && u.Scheme == "rediss" {
			return true
		}
	}
	return c.TLS.Enabled
}

// Validate reports a configuration error as a *ConfigError naming the
// key. It reads no file; Check does.
func (c RedisConfig) Validate() error {
	n := 0
	for _, set := range []bool{c.URL != "", c.sentinelSet(), len(c.Cluster.Addrs) > 0} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		return cfgErr("redis", "say how to reach Redis with state: redis: redis.url (one server, e.g. redis://redis.internal:6379/0), "+
			"redis.sentinel (masterName and addrs) or redis.cluster.addrs")
	case n > 1:
		return cfgErr("redis", "set only one of redis.url, redis.sentinel and redis.cluster")
	}
	var urlUser, urlPassword bool
	switch c.Mode() {
	case RedisModeServer:
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			// Never echo the URL: it may carry a password.
			return cfgErr("redis.url", "must be redis://host:port/db or rediss://host:port/db")
		}
		if _, err := redis.ParseURL(c.URL); err != nil {
			return cfgErr("redis.url", "is not a valid Redis URL (redis://host:port/db)")
		}
		if u.User != nil {
			_, urlPassword = u.User.Password()
			urlUser = u.User.Username() != ""
		}
		if u.Scheme == "redis" && c.TLS.Enabled {
			return cfgErr("redis.tls.enabled", "is true but redis.url is redis://: use rediss:// for TLS")
		}
	case RedisModeSentinel:
		s := c.Sentinel
		if s.MasterName == "" {
			return cfgErr("redis.sentinel.masterName", "is required with redis.sentinel: the name the sentinels monitor the primary by, e.g. mymaster")
		}
		if err := checkAddrs("redis.sentinel.addrs", s.Addrs, "the sentinels, e.g. [sentinel-0.redis:26379, sentinel-1.redis:26379]"); err != nil {
			return err
		}
		if s.Username != "" && s.PasswordFile == "" {
			return cfgErr("redis.sentinel.username", "needs redis.sentinel.passwordFile: the file holding that user's password")
		}
	case RedisModeCluster:
		if err := checkAddrs("redis.cluster.addrs", c.Cluster.Addrs, "cluster nodes, e.g. [redis-0.redis:6379, redis-1.redis:6379]"); err != nil {
			return err
		}
	}
	if c.Username != "" && urlUser {
		return cfgErr("redis.username", "and a user in redis.url are both set: keep one")
	}
	if c.PasswordFile != "" && urlPassword {
		return cfgErr("redis.passwordFile", "and a password in redis.url are both set: keep one (the file)")
	}
	if c.Username != "" && c.PasswordFile == "" {
		return cfgErr("redis.username", "needs redis.passwordFile: the file holding that ACL user's password (never the password itself in the configuration)")
	}
	t := c.TLS
	if !c.UsesTLS() {
		for _, f := range []struct{ key, v string }{
			{"redis.tls.caFile", t.CAFile}, {"redis.tls.certFile", t.CertFile},
			{"redis.tls.keyFile", t.KeyFile}, {"redis.tls.serverName", t.ServerName},
		} {
			if f.v != "" {
				return cfgErr(f.key, "is set but TLS is off: set redis.tls.enabled: true (or use a rediss:// url)")
			}
		}
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return cfgErr("redis.tls.certFile", "and redis.tls.keyFile go together: a client certificate needs its key")
	}
	if len(c.KeyPrefix) > maxRedisKeyPrefixLen {
		return cfgErr("redis.keyPrefix", "must be at most %d bytes (got %d)", maxRedisKeyPrefixLen, len(c.KeyPrefix))
	}
	if c.Timeout < 0 || c.Timeout > 10*time.Second {
		return cfgErr("redis.timeout", "must be between 0 and 10s (got %s)", c.Timeout)
	}
	if c.PoolSize < 0 || c.PoolSize > 10000 {
		return cfgErr("redis.poolSize", "must be between 0 (the default) and 10000 (got %d)", c.PoolSize)
	}
	return nil
}

func checkAddrs(key string, addrs []string, example string) error {
	if len(addrs) == 0 {
		return cfgErr(key, "is required: host:port of %s", example)
	}
	if len(addrs) > maxRedisAddrs {
		return cfgErr(key, "lists %d addresses, at most %d", len(addrs), maxRedisAddrs)
	}
	for i, a := range addrs {
		host, port, err := net.SplitHostPort(a)
		p, perr := strconv.Atoi(port)
		if err != nil || host == "" || perr != nil || p < 1 || p > 65535 {
			return cfgErr(fmt.Sprintf("%s[%d]", key, i), "%q must be host:port, e.g. %s", a, example)
		}
	}
	return nil
}

// Check validates c and reads every file it names (passwords, CA,
// client certificate and key) as NewRedisClient would, so that `config
// check` finds a missing or malformed file before serve does.
func (c RedisConfig) Check() error {
	_, _, err := c.load()
	return err
}

// readSecretFile reads a password file: at most maxSecretFileBytes, one
// trailing newline (\n or \r\n) dropped, not empty. Errors name key and
// path, never the content.
func readSecretFile(key, path string) (string, error) {
	b, err := readBounded(key, path, maxSecretFileBytes)
	if err != nil {
		return "", err
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) == 0 {
		return "", cfgErr(key, "%s is empty: it must hold the password", path)
	}
	return string(b), nil
}

func readBounded(key, path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &ConfigError{Key: key, Msg: err.Error()}
	}
	defer func() { _ = f.Close() }()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, cfgErr(key, "%s: %v", path, err)
	}
	if int64(len(b)) > limit {
		return nil, cfgErr(key, "%s is larger than %d bytes", path, limit)
	}
	return b, nil
}

// tlsConfig builds the client TLS configuration, or nil when TLS is off.
func (c RedisConfig) tlsConfig() (*tls.Config, error) {
	if !c.UsesTLS() {
		return nil, nil
	}
	t := c.TLS
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := readBounded("redis.tls.caFile", t.CAFile, maxTLSFileBytes)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, cfgErr("redis.tls.caFile", "%s holds no PEM certificate", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		certPEM, err := readBounded("redis.tls.certFile", t.CertFile, maxTLSFileBytes)
		if err != nil {
			return nil, err
		}
		keyPEM, err := readBounded("redis.tls.keyFile", t.KeyFile, maxTLSFileBytes)
		if err != nil {
			return nil, err
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, cfgErr("redis.tls.certFile", "%s with redis.tls.keyFile %s is not a PEM certificate and its private key: %v", t.CertFile, t.KeyFile, err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}

// loaded is what a client is built from, files read.
type loaded struct {
	tls              *tls.Config
	sentinelPassword string
	// creds supplies the data nodes' user and password for each new
	// connection (nil: none, or the url's).
	creds func(ctx context.Context) (string, string, error)
}

func (c RedisConfig) load() (RedisConfig, loaded, error) {
	if err := c.Validate(); err != nil {
		return c, loaded{}, err
	}
	c = c.WithDefaults()
	var l loaded
	var err error
	if l.tls, err = c.tlsConfig(); err != nil {
		return c, loaded{}, err
	}
	if f := c.Sentinel.PasswordFile; f != "" {
		if l.sentinelPassword, err = readSecretFile("redis.sentinel.passwordFile", f); err != nil {
			return c, loaded{}, err
		}
	}
	if f := c.PasswordFile; f != "" {
		if _, err := readSecretFile("redis.passwordFile", f); err != nil {
			return c, loaded{}, err
		}
		l.creds = passwordFromFile(c.Username, f)
	}
	return c, l, nil
}

// passwordFromFile supplies user and the password in file f to each new
// connection, so that a rotated Secret applies without a restart.
func passwordFromFile(user, f string) func(context.Context) (string, string, error) {
	return func(context.Context) (string, string, error) {
		pw, err := readSecretFile("redis.passwordFile", f)
		if err != nil {
			return "", "", err
		}
		return user, pw, nil
	}
}

// NewRedisClient returns a client for cfg: a *redis.Client for url, a
// failover client that follows Sentinel for sentinel, a
// *redis.ClusterClient for cluster. Every operation is bounded by
// cfg.Timeout (dial and TLS handshake, read, write, pool wait), and a
// failed command is not retried: the caller fails closed and the next
// call tries again, on a new primary after a failover. It does not
// connect; use Ping.
func NewRedisClient(cfg RedisConfig) (redis.UniversalClient, error) {
	cfg, l, err := cfg.load()
	if err != nil {
		return nil, err
	}
	switch cfg.Mode() {
	case RedisModeSentinel:
		o := &redis.FailoverOptions{
			MasterName: cfg.Sentinel.MasterName, SentinelAddrs: cfg.Sentinel.Addrs,
			SentinelUsername: cfg.Sentinel.Username, SentinelPassword: l.sentinelPassword,
			CredentialsProviderContext: l.creds, TLSConfig: l.tls,
			DialTimeout: cfg.Timeout, ReadTimeout: cfg.Timeout, WriteTimeout: cfg.Timeout, PoolTimeout: cfg.Timeout,
			ContextTimeoutEnabled: true, MaxRetries: -1, PoolSize: cfg.PoolSize,
		}
		return redis.NewFailoverClient(o), nil
	case RedisModeCluster:
		o := &redis.ClusterOptions{
			Addrs: cfg.Cluster.Addrs, CredentialsProviderContext: l.creds, TLSConfig: l.tls,
			DialTimeout: cfg.Timeout, ReadTimeout: cfg.Timeout, WriteTimeout: cfg.Timeout, PoolTimeout: cfg.Timeout,
			ContextTimeoutEnabled: true, MaxRetries: -1, PoolSize: cfg.PoolSize,
			// MOVED and ASK are followed (go-redis' default of 3 hops),
			// each hop within the caller's deadline: they are how a
			// cluster reshards and fails over, not errors.
			//
			// A primary that dies sends no MOVED: the client only learns
			// its replica took over when it reads the slot map again,
			// which go-redis does every 60 s by default. Reading it at
			// most every second while calls flow (one CLUSTER SLOTS)
			// ends the outage within a second of the promotion
			// (TestRedisClusterFailover).
			ClusterStateReloadInterval: clusterReloadInterval,
		}
		return redis.NewClusterClient(o), nil
	}
	opts, err := redis.ParseURL(cfg.URL)
	if err != nil {
		return nil, cfgErr("redis.url", "is not a valid Redis URL (redis://host:port/db)")
	}
	if l.tls != nil {
		if opts.TLSConfig != nil && l.tls.ServerName == "" {
			l.tls.ServerName = opts.TLSConfig.ServerName
		}
		opts.TLSConfig = l.tls
	}
	if l.creds != nil {
		user := cfg.Username
		if user == "" {
			user = opts.Username // redis://user@host with passwordFile
		}
		opts.CredentialsProviderContext = passwordFromFile(user, cfg.PasswordFile)
	}
	opts.DialTimeout = cfg.Timeout
	opts.ReadTimeout = cfg.Timeout
	opts.WriteTimeout = cfg.Timeout
	opts.PoolTimeout = cfg.Timeout
	opts.ContextTimeoutEnabled = true
	// A retry would double the wait of a call while Redis is down; the
	// caller fails closed instead and the next call tries again.
	opts.MaxRetries = -1
	if cfg.PoolSize > 0 {
		opts.PoolSize = cfg.PoolSize
	}
	return redis.NewClient(opts), nil
}

// IsCluster reports whether rdb is a Redis Cluster client, whose
// multi-key operations must keep their keys in one hash slot.
func IsCluster(rdb redis.UniversalClient) bool {
	_, ok := rdb.(*redis.ClusterClient)
	return ok
}

// Ping reports whether Redis answers, wrapped in ErrUnavailable if not.
func Ping(ctx context.Context, rdb redis.UniversalClient) error {
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

package state

import (
	"context"
	"errors"
	"fmt"
	"net/url"
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

// RedisConfig says how to reach Redis.
type RedisConfig struct {
	// URL is redis://[user:password@]host:port/db or rediss:// for TLS.
	// Prefer ${ENV} substitution or BACKSTAGE_MCP_REDIS_URL for the password.
	URL string `yaml:"url"`
	// KeyPrefix starts every key, so several deployments can share one
	// Redis. Default "backstage-mcp:".
	KeyPrefix string `yaml:"keyPrefix"`
	// Timeout bounds every Redis operation (dial, read, write). Default 500ms.
	Timeout time.Duration `yaml:"timeout"`
	// PoolSize caps connections per replica. Default 10 per CPU (go-redis).
	PoolSize int `yaml:"poolSize"`
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

// Validate reports a configuration error.
func (c RedisConfig) Validate() error {
	if c.URL == "" {
		return errors.New("state: redis.url is required with state: redis, e.g. redis://redis.internal:6379/0")
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		// Never echo the URL: it may carry a password.
		return errors.New("state: redis.url must be redis://host:port/db or rediss://host:port/db")
	}
	if c.Timeout < 0 || c.Timeout > 10*time.Second {
		return fmt.Errorf("state: redis.timeout must be between 0 and 10s (got %s)", c.Timeout)
	}
	if c.PoolSize < 0 {
		return errors.New("state: redis.poolSize must not be negative")
	}
	return nil
}

// NewRedisClient returns a client for cfg with bounded timeouts. It does
// not connect; use Ping.
func NewRedisClient(cfg RedisConfig) (*redis.Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	opts, err := redis.ParseURL(cfg.URL)
	if err != nil {
		return nil, errors.New("state: redis.url is not a valid Redis URL")
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

// Ping reports whether Redis answers, wrapped in ErrUnavailable if not.
func Ping(ctx context.Context, rdb redis.UniversalClient) error {
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

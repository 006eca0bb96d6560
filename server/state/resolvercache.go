package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/identity"
	"github.com/redis/go-redis/v9"
)

// MaxResolverEntryBytes bounds one cached resolution in Redis (a user ref
// and its ownership refs); a larger value is not stored and, if found, not
// read.
const MaxResolverEntryBytes = 64 << 10

// RedisResolverCache is an identity.ResolverCache shared by every replica:
// one string key per resolution (prefix + "resolver:" + the resolver's
// hashed key), JSON value, expiring after the resolver's TTL (auth.cacheTTL).
// Errors wrap ErrUnavailable; the resolver then asks Backstage.
type RedisResolverCache struct {
	rdb    redis.UniversalClient
	prefix string
}

var _ identity.ResolverCache = (*RedisResolverCache)(nil)

// NewRedisResolverCache returns a resolver cache in rdb under prefix.
func NewRedisResolverCache(rdb redis.UniversalClient, prefix string) *RedisResolverCache {
	return &RedisResolverCache{rdb: rdb, prefix: prefix}
}

func (c *RedisResolverCache) key(k string) string { return c.prefix + "resolver:" + k }

// Get returns the resolution stored under key. A malformed or oversized
// value is an error, never a user.
func (c *RedisResolverCache) Get(ctx context.Context, key string) (identity.CachedUser, bool, error) {
	b, err := c.rdb.Get(ctx, c.key(key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return identity.CachedUser{}, false, nil
	}
	if err != nil {
		return identity.CachedUser{}, false, fmt.Errorf("%w: resolver cache get: %w", ErrUnavailable, err)
	}
	if len(b) > MaxResolverEntryBytes {
		return identity.CachedUser{}, false, fmt.Errorf("state: resolver cache: entry of %d bytes exceeds %d", len(b), MaxResolverEntryBytes)
	}
	var u identity.CachedUser
	if err := json.Unmarshal(b, &u); err != nil {
		return identity.CachedUser{}, false, fmt.Errorf("state: resolver cache: undecodable entry: %w", err)
	}
	if err := u.Validate(); err != nil {
		return identity.CachedUser{}, false, fmt.Errorf("state: resolver cache: %w", err)
	}
	return u, true, nil
}

// Set stores u under key for ttl (at least one millisecond).
func (c *RedisResolverCache) Set(ctx context.Context, key string, u identity.CachedUser, ttl time.Duration) error {
	if err := u.Validate(); err != nil {
		return fmt.Errorf("state: resolver cache: %w", err)
	}
	b, err := json.Marshal(u)
	if err != nil {
		return fmt.Errorf("state: resolver cache: %w", err)
	}
	if len(b) > MaxResolverEntryBytes {
		return fmt.Errorf("state: resolver cache: entry of %d bytes exceeds %d", len(b), MaxResolverEntryBytes)
	}
	if ttl < time.Millisecond {
		ttl = time.Millisecond
	}
	if err := c.rdb.Set(ctx, c.key(key), b, ttl).Err(); err != nil {
		return fmt.Errorf("%w: resolver cache set: %w", ErrUnavailable, err)
	}
	return nil
}

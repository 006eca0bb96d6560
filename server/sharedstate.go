package server

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/backstage-mcp/backstage-mcp/server/identity"
	"github.com/backstage-mcp/backstage-mcp/server/ratelimit"
	"github.com/backstage-mcp/backstage-mcp/server/state"
	"github.com/redis/go-redis/v9"
)

// sharedState is what replicas share through Redis (state: redis): rate
// limits, sessions and the identity resolver cache.
type sharedState struct {
	rdb     redis.UniversalClient
	prefix  string
	limiter *ratelimit.Chain
	// unauth holds the unauthenticated requests' buckets, fleet-wide.
	unauth   *ratelimit.Redis
	sessions *state.RedisSessions
}

// openSharedState connects to Redis when cfg.State is "redis" (nil for
// "memory"): the rate limits and sessions move there. (The cursor key
// never does: Config requires it with state: redis, so that a Redis that
// loses its data changes no key.) Redis must answer at start; later
// outages fail closed and recover without a restart.
func openSharedState(ctx context.Context, cfg *Config, log *slog.Logger) (*sharedState, error) {
	if cfg.State != state.RedisStore {
		return nil, nil
	}
	rcfg := cfg.Redis.WithDefaults()
	rdb, err := state.NewRedisClient(rcfg)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := state.Ping(pctx, rdb); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("server: state: redis: cannot reach Redis (%s) at start: check the redis settings: %w", rcfg.Mode(), err)
	}
	lim, err := ratelimit.NewRedis(cfg.RateLimits, ratelimit.RedisOptions{Client: rdb, KeyPrefix: rcfg.KeyPrefix, Timeout: rcfg.Timeout})
	if err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("server: rate limits: %w", err)
	}
	unauth, err := ratelimit.NewRedis(unauthLimiterConfig(cfg.Server.unauthRates(), nil),
		ratelimit.RedisOptions{Client: rdb, KeyPrefix: rcfg.KeyPrefix + "unauth:", Timeout: rcfg.Timeout})
	if err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("server: unauthenticated rate limits: %w", err)
	}
	log.Info("shared state in Redis", "mode", rcfg.Mode(), "tls", rcfg.UsesTLS(), "keyPrefix", rcfg.KeyPrefix)
	return &sharedState{rdb: rdb, prefix: rcfg.KeyPrefix, limiter: ratelimit.NewChain(lim), unauth: unauth,
		sessions: state.NewRedisSessions(rdb, cfg.Server.Sessions, rcfg.KeyPrefix, nil)}, nil
}

// resolverCache shares resolved users (issuer+sub → user ref and
// ownership refs, for auth.cacheTTL) between replicas. When Redis cannot
// answer, users are resolved from Backstage again.
func (s *sharedState) resolverCache() identity.ResolverCache {
	return state.NewRedisResolverCache(s.rdb, s.prefix)
}

func (s *sharedState) ping(ctx context.Context) error { return state.Ping(ctx, s.rdb) }

func (s *sharedState) close() { _ = s.rdb.Close() }

package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// ErrStoreUnavailable is returned (wrapped) when the shared store cannot
// answer. Callers must deny the call: limits fail closed.
var ErrStoreUnavailable = errors.New("ratelimit: shared rate-limit store unavailable")

// RedisOptions configure a Redis limiter.
type RedisOptions struct {
	// Client is the Redis connection, shared with the rest of the process.
	// It reconnects by itself, so the limiter recovers without a restart
	// once Redis answers again.
	Client redis.UniversalClient
	// KeyPrefix is put in front of every key ("backstage-mcp:" by default),
	// so several deployments can share one Redis.
	KeyPrefix string
	// Timeout bounds one check, all its round trips included. Default 500ms.
	Timeout time.Duration
}

// redisBucket is the resolved configuration of one bucket in Redis.
type redisBucket struct {
	limit     redis_rate.Limit
	unlimited bool
}

// Redis is a Limiter whose buckets live in Redis (GCRA, through
// github.com/go-redis/redis_rate), so that every replica pointed at the same
// Redis draws on the same user, agent and global budgets. A bucket's key
// expires once the bucket is full again, so Redis memory stays bounded by
// the number of recently active keys.
//
// Redis answers one bucket per round trip, so Redis does not implement
// MultiLimiter: Chain checks the user bucket first, then the agent bucket,
// then the global one, and a call denied by a later bucket has spent a
// token of the earlier ones (never the other way round: a call is never
// allowed beyond any bucket).
//
// When Redis cannot be reached every check fails with ErrStoreUnavailable
// (fail closed); the go-redis client reconnects on its own.
type Redis struct {
	cfg     Config
	rl      *redis_rate.Limiter
	prefix  string
	timeout time.Duration
	classes map[string]redisBucket
	agent   redisBucket
	global  redisBucket
}

// NewRedis returns a Redis limiter for cfg (zero fields take defaults).
// IdleTTL and MaxKeys do not apply: Redis expires full buckets itself.
func NewRedis(cfg Config, opts RedisOptions) (*Redis, error) {
	if opts.Client == nil {
		return nil, errors.New("ratelimit: NewRedis needs a Redis client")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if opts.KeyPrefix == "" {
		opts.KeyPrefix = "backstage-mcp:"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 500 * time.Millisecond
	}
	r := &Redis{
		cfg:     cfg,
		rl:      redis_rate.NewLimiter(opts.Client),
		prefix:  opts.KeyPrefix + "rl:",
		timeout: opts.Timeout,
		classes: make(map[string]redisBucket, len(cfg.Classes)),
		agent:   redisBucketOf(cfg.Agent),
		global:  redisBucketOf(cfg.Global),
	}
	for name, rt := range cfg.Classes {
		r.classes[name] = redisBucketOf(rt)
	}
	return r, nil
}

// redisBucketOf expresses r as a GCRA limit: one request per emission
// interval (Per/Requests), with the same burst as the in-memory bucket.
func redisBucketOf(r Rate) redisBucket {
	if r.Unlimited {
		return redisBucket{unlimited: true}
	}
	_, burst := r.limit()
	if r.Requests == math.Trunc(r.Requests) && r.Requests <= math.MaxInt32 {
		return redisBucket{limit: redis_rate.Limit{Rate: int(r.Requests), Period: r.Per, Burst: burst}}
	}
	interval := max(time.Duration(float64(r.Per)/r.Requests), time.Nanosecond)
	return redisBucket{limit: redis_rate.Limit{Rate: 1, Period: interval, Burst: burst}}
}

func (r *Redis) bucketFor(k Key) (Key, redisBucket, error) {
	switch k.Kind {
	case KindUser:
		if k.Class == "" {
			k.Class = r.cfg.DefaultClass
		}
		b, ok := r.classes[k.Class]
		if !ok {
			return k, redisBucket{}, fmt.Errorf("%w %q", ErrUnknownClass, k.Class)
		}
		return k, b, nil
	case KindAgent:
		return k, r.agent, nil
	case KindGlobal:
		return k, r.global, nil
	}
	return k, redisBucket{}, fmt.Errorf("ratelimit: unknown key kind %d", k.Kind)
}

// Allow implements Limiter.
func (r *Redis) Allow(ctx context.Context, key Key, n int) (Decision, error) {
	if err := ctx.Err(); err != nil {
		return Decision{}, fmt.Errorf("ratelimit: %w", err)
	}
	if n <= 0 {
		return Decision{}, fmt.Errorf("ratelimit: n must be positive, got %d", n)
	}
	key, b, err := r.bucketFor(key)
	if err != nil {
		return Decision{}, err
	}
	if b.unlimited {
		return Decision{Allowed: true}, nil
	}
	if n > b.limit.Burst {
		return Decision{}, fmt.Errorf("%w: %d > %d for the %s limit", ErrExceedsBurst, n, b.limit.Burst, key.Kind)
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	res, err := r.rl.AllowN(ctx, r.prefix+key.String(), b.limit, n)
	if err != nil {
		return Decision{}, fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
	}
	if res.Allowed >= n {
		return Decision{Allowed: true}, nil
	}
	retry := max(res.RetryAfter, time.Millisecond)
	return Decision{Limit: key.Kind.String(), RetryAfter: (retry + time.Millisecond - 1).Truncate(time.Millisecond)}, nil
}

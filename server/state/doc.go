// Package state holds what several backstage-mcp replicas must share, and
// the two places it can live: in this process ("memory", the default for
// one process and the demo) or in Redis ("redis", for replicas behind a
// load balancer).
//
// Shared through Redis: the rate-limit buckets (see ratelimit.Redis), the
// Streamable HTTP session records ([SessionStore]: owner, protocol,
// created, last seen), the cursor-signing key ([CursorKey]) and the
// identity resolver cache ([RedisResolverCache]: resolved user and
// ownership refs, never catalog content) and, in mirror mode, the change
// feed ([RedisChanges]: the previous version of each changed entity,
// redacted, for the retention window). When Redis
// cannot be reached every operation fails with [ErrUnavailable]; callers
// fail closed (a tool error, 503 on /readyz) and the client reconnects by
// itself, so service resumes without a restart.
//
//	rdb, err := state.NewRedisClient(cfg.Redis)
//	if err != nil { ... }
//	sessions := state.NewRedisSessions(rdb, state.SessionLimits{MaxPerUser: 32, Max: 10000}, "backstage-mcp:", nil)
package state

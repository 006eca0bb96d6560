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
// Redis may be one server, a primary watched by Sentinel or a Redis
// Cluster ([RedisConfig]; [NewRedisClient] returns the matching go-redis
// client), reached over TLS and as an ACL user whose password is read
// from a file. On a cluster, an operation whose keys must be read or
// written together (a Lua script, a MULTI transaction) must keep them in
// one hash slot: the session store puts every session key under one hash
// tag ({<prefix>session}) when [IsCluster]; rate-limit buckets and
// resolver entries are one key per operation. Code added here that
// touches several keys at once must do the same.
//
//	rdb, err := state.NewRedisClient(cfg.Redis)
//	if err != nil { ... }
//	sessions := state.NewRedisSessions(rdb, state.SessionLimits{MaxPerUser: 32, Max: 10000}, "backstage-mcp:", nil)
package state

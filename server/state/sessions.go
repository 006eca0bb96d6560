package state

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Session is the record of one Streamable HTTP session (protocol versions
// up to 2025-11-25; later versions have no sessions).
type Session struct {
	// ID is the Mcp-Session-Id.
	ID string
	// Owner is the key of the principal that opened it; only that principal
	// may use or end it.
	Owner string
	// User is the person the per-user cap counts the session against (the
	// resolved Backstage user, so several IdP subjects of one person share
	// one cap); empty means Owner.
	User string
	// Protocol is the protocol version asked for in initialize.
	Protocol string
	// Created and LastSeen bound its life: it ends after IdleTTL unused.
	Created, LastSeen time.Time
}

// SessionLimits bound sessions. Zero fields take defaults.
type SessionLimits struct {
	// IdleTTL ends a session not used for this long. Default 10m.
	IdleTTL time.Duration `yaml:"idleTTL"`
	// MaxPerUser caps the open sessions of one user (the resolved Backstage
	// user). Default 32. At the cap a new session ends that user's least
	// recently used one.
	MaxPerUser int `yaml:"maxPerUser"`
	// Max caps the open sessions of the whole service (every replica, with
	// Redis). Default 10000. At the cap a new session ends the service's
	// least recently used one. Each open session costs about 17 KiB in the
	// replica that opened it (mostly mcp-go's per-session state), so the
	// cap also bounds memory: 10,000 sessions ≈ 175 MiB.
	Max int `yaml:"max"`
	// StreamsPerSession caps the open standalone SSE streams (GET /mcp) of
	// one session, per replica. Default 1: a new stream ends the older one
	// (a client that reconnects is never refused; one that opens thousands
	// keeps one).
	StreamsPerSession int `yaml:"streamsPerSession"`
	// StreamsPerUser caps the open standalone SSE streams of one user over
	// all their sessions, per replica. Default 8; at the cap a new stream
	// ends that user's oldest one.
	StreamsPerUser int `yaml:"streamsPerUser"`
	// StreamIdle ends a standalone SSE stream that has carried nothing for
	// this long (the client may open a new one). Default 10m.
	StreamIdle time.Duration `yaml:"streamIdle"`
}

// DefaultSessionIdleTTL is SessionLimits.IdleTTL when unset. Clients that
// reconnect open a new session each time and rarely end the old one, so
// most sessions that go quiet are abandoned: each holds about 10-17 KiB in
// mcp-go (and keys in Redis) until it expires. Since the caps evict rather
// than refuse, the TTL no longer protects anyone from a lock-out; it only
// bounds that waste. Ten minutes outlasts a developer's pause between
// agent turns, and a client back after longer pays one 404 and one
// initialize. (It matches rateLimits.idleTTL.)
const DefaultSessionIdleTTL = 10 * time.Minute

// WithDefaults fills zero fields.
func (l SessionLimits) WithDefaults() SessionLimits {
	if l.IdleTTL <= 0 {
		l.IdleTTL = DefaultSessionIdleTTL
	}
	if l.MaxPerUser <= 0 {
		l.MaxPerUser = 32
	}
	if l.Max <= 0 {
		l.Max = 10000
	}
	if l.StreamsPerSession <= 0 {
		l.StreamsPerSession = 1
	}
	if l.StreamsPerUser <= 0 {
		l.StreamsPerUser = 8
	}
	if l.StreamIdle <= 0 {
		l.StreamIdle = 10 * time.Minute
	}
	return l
}

// Validate reports a configuration error.
func (l SessionLimits) Validate() error {
	if l.IdleTTL < 0 || l.MaxPerUser < 0 || l.Max < 0 || l.StreamsPerSession < 0 || l.StreamsPerUser < 0 || l.StreamIdle < 0 {
		return errors.New("state: sessions: idleTTL, maxPerUser, max, streamsPerSession, streamsPerUser and streamIdle must not be negative")
	}
	if l.StreamsPerSession > 0 && l.StreamsPerUser > 0 && l.StreamsPerSession > l.StreamsPerUser {
		return fmt.Errorf("state: sessions: streamsPerSession (%d) is larger than streamsPerUser (%d)", l.StreamsPerSession, l.StreamsPerUser)
	}
	if l.MaxPerUser > 0 && l.Max > 0 && l.MaxPerUser > l.Max {
		return fmt.Errorf("state: sessions: maxPerUser (%d) is larger than max (%d)", l.MaxPerUser, l.Max)
	}
	return nil
}

// ErrSessionNotFound is the error for a session that is unknown, ended or
// expired (HTTP 404). Callers branch on it with errors.Is.
var ErrSessionNotFound = errors.New("state: session not found")

// Eviction reasons, in Evicted.Reason.
const (
	// EvictedUserCap: the user had MaxPerUser open sessions.
	EvictedUserCap = "user cap"
	// EvictedServiceCap: the service had Max open sessions.
	EvictedServiceCap = "service cap"
)

// Evicted is a session that Create ended to make room.
type Evicted struct {
	// ID is the evicted session's Mcp-Session-Id.
	ID string
	// User is who it counted against (Session.User, or Owner).
	User string
	// Reason is EvictedUserCap or EvictedServiceCap.
	Reason string
}

// SessionStore keeps session records. Implementations are safe for
// concurrent use; errors other than ErrSessionNotFound mean the store is
// unavailable, and callers must fail closed.
type SessionStore interface {
	// Create records a new session. The caps never refuse one: at the
	// per-user cap it ends that user's least recently used session, at the
	// service cap the service's least recently used one, in the same
	// atomic step as the insert (so concurrent Creates, on any replica,
	// never overshoot a cap), and returns what it ended.
	Create(ctx context.Context, s Session) ([]Evicted, error)
	// Touch returns the session and refreshes its LastSeen, or fails with
	// ErrSessionNotFound.
	Touch(ctx context.Context, id string) (Session, error)
	// Delete ends the session and returns it, or fails with
	// ErrSessionNotFound.
	Delete(ctx context.Context, id string) (Session, error)
	// Count returns the number of open sessions.
	Count(ctx context.Context) (int, error)
}

// MemorySessions is a SessionStore in this process.
type MemorySessions struct {
	lim SessionLimits
	now func() time.Time

	mu       sync.Mutex
	sessions map[string]*list.Element // of *Session
	lru      *list.List               // *Session, most recently used first
	perUser  map[string]map[string]*list.Element
}

// NewMemorySessions returns an empty store; now nil means time.Now.
func NewMemorySessions(lim SessionLimits, now func() time.Time) *MemorySessions {
	if now == nil {
		now = time.Now
	}
	return &MemorySessions{lim: lim.WithDefaults(), now: now, sessions: map[string]*list.Element{},
		lru: list.New(), perUser: map[string]map[string]*list.Element{}}
}

func (m *MemorySessions) expired(s *Session, now time.Time) bool {
	return now.Sub(s.LastSeen) >= m.lim.IdleTTL
}

// capKey is who a session counts against for MaxPerUser.
func (s Session) capKey() string {
	if s.User != "" {
		return s.User
	}
	return s.Owner
}

func (m *MemorySessions) removeLocked(e *list.Element) *Session {
	s := m.lru.Remove(e).(*Session)
	delete(m.sessions, s.ID)
	mine := m.perUser[s.capKey()]
	if delete(mine, s.ID); len(mine) == 0 {
		delete(m.perUser, s.capKey())
	}
	return s
}

// Create implements SessionStore.
func (m *MemorySessions) Create(_ context.Context, s Session) ([]Evicted, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, dup := m.sessions[s.ID]; dup {
		return nil, fmt.Errorf("state: session id %q already exists", s.ID)
	}
	// Expired sessions sit at the back of the LRU list.
	for e := m.lru.Back(); e != nil && m.expired(e.Value.(*Session), now); e = m.lru.Back() {
		m.removeLocked(e)
	}
	var evicted []Evicted
	if mine := m.perUser[s.capKey()]; len(mine) >= m.lim.MaxPerUser {
		for len(mine) >= m.lim.MaxPerUser { // a lowered cap may need several
			var oldest *list.Element
			for _, e := range mine { // at most MaxPerUser entries
				if oldest == nil || e.Value.(*Session).LastSeen.Before(oldest.Value.(*Session).LastSeen) {
					oldest = e
				}
			}
			o := m.removeLocked(oldest)
			evicted = append(evicted, Evicted{ID: o.ID, User: o.capKey(), Reason: EvictedUserCap})
		}
	}
	for m.lru.Len() >= m.lim.Max {
		o := m.removeLocked(m.lru.Back())
		evicted = append(evicted, Evicted{ID: o.ID, User: o.capKey(), Reason: EvictedServiceCap})
	}
	s.Created, s.LastSeen = now, now
	e := m.lru.PushFront(&s)
	m.sessions[s.ID] = e
	if m.perUser[s.capKey()] == nil {
		m.perUser[s.capKey()] = map[string]*list.Element{}
	}
	m.perUser[s.capKey()][s.ID] = e
	return evicted, nil
}

// Touch implements SessionStore.
func (m *MemorySessions) Touch(_ context.Context, id string) (Session, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.sessions[id]
	if !ok {
		return Session{}, ErrSessionNotFound
	}
	s := e.Value.(*Session)
	if m.expired(s, now) {
		m.removeLocked(e)
		return Session{}, ErrSessionNotFound
	}
	if now.After(s.LastSeen) {
		s.LastSeen = now
	}
	m.lru.MoveToFront(e)
	return *s, nil
}

// Delete implements SessionStore.
func (m *MemorySessions) Delete(_ context.Context, id string) (Session, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.sessions[id]
	if !ok {
		return Session{}, ErrSessionNotFound
	}
	s := m.removeLocked(e)
	if m.expired(s, now) {
		return Session{}, ErrSessionNotFound
	}
	return *s, nil
}

// Count implements SessionStore (expired sessions not yet swept included).
func (m *MemorySessions) Count(context.Context) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sessions), nil
}

// RedisSessions is a SessionStore in Redis, shared by every replica: a
// hash per session (expiring after IdleTTL unused) and sorted sets of
// session IDs by last use, per user and for the service, for the caps.
// Create is one Lua script, so the caps hold however many replicas open
// sessions at once. The script reaches the hash and per-user set of the
// session it evicts, which it cannot name in advance, so on Redis Cluster
// every session key carries one hash tag ({<prefix>session}) and lives in
// one slot: the sessions of a deployment sit on one primary (10,000
// sessions are a few MiB), while rate limits and the resolver cache
// spread over the cluster. On one server or Sentinel the keys have no
// tag, as before.
type RedisSessions struct {
	rdb    redis.UniversalClient
	lim    SessionLimits
	prefix string
	now    func() time.Time
}

// NewRedisSessions returns a store using rdb; keys start with prefix.
func NewRedisSessions(rdb redis.UniversalClient, lim SessionLimits, prefix string, now func() time.Time) *RedisSessions {
	if now == nil {
		now = time.Now
	}
	p := prefix + "session:"
	if IsCluster(rdb) {
		p = "{" + prefix + "session}:"
	}
	return &RedisSessions{rdb: rdb, lim: lim.WithDefaults(), prefix: p, now: now}
}

func (r *RedisSessions) key(id string) string     { return r.prefix + "id:" + id }
func (r *RedisSessions) ownerKey(o string) string { return r.prefix + "owner:" + o }
func (r *RedisSessions) allKey() string           { return r.prefix + "all" }
func (r *RedisSessions) evictedChannel() string   { return r.prefix + "evicted" }

// SubscribeEvicted calls fn with the ID of every session Create evicts,
// on any replica, until stop is called, so that each replica can drop
// what it keeps for a session another replica evicted. Delivery is best
// effort (Redis pub/sub): IDs published while this replica is cut off
// from Redis are missed, and their state ends with the idle TTL instead.
func (r *RedisSessions) SubscribeEvicted(fn func(id string)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ps := r.rdb.Subscribe(ctx, r.evictedChannel())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for msg := range ps.Channel() {
			fn(msg.Payload)
		}
	}()
	return func() {
		cancel()
		_ = ps.Close()
		<-done
	}
}
func unavailable(op string, err error) error {
	return fmt.Errorf("%w: session %s: %w", ErrUnavailable, op, err)
}
func ms(t time.Time) float64 { return float64(t.UnixMilli()) }

// cutoff is the last-use score at or below which a session has expired.
func cutoff(now time.Time, ttl time.Duration) string {
	return strconv.FormatInt(now.Add(-ttl).UnixMilli(), 10)
}

// createScript drops expired sessions, evicts the least recently used
// sessions of the user (KEYS[2]) and then of the service (KEYS[1]) while
// at a cap, and records the new session (KEYS[3]), all at once.
//
// ARGV: now ms, expiry cutoff ms, maxPerUser, max, idle TTL ms, key prefix
// of session hashes, key prefix of per-user sets, owner, user, protocol,
// session ID, channel to publish evicted IDs on. Returns {} when the ID exists already (the caller
// reports it), else {1, evicted ID, its user, reason, ...}.
var createScript = redis.NewScript(`
local all, mine, key = KEYS[1], KEYS[2], KEYS[3]
local now, cut, perUser, max, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local idPrefix, ownerPrefix = ARGV[6], ARGV[7]
if redis.call('EXISTS', key) == 1 then return {} end
redis.call('ZREMRANGEBYSCORE', all, '-inf', cut)
redis.call('ZREMRANGEBYSCORE', mine, '-inf', cut)
local out = {1}
local function evict(id, reason)
  local h = idPrefix .. id
  local user = redis.call('HGET', h, 'user')
  if not user or user == '' then user = redis.call('HGET', h, 'owner') end
  redis.call('DEL', h)
  redis.call('ZREM', all, id)
  if user then redis.call('ZREM', ownerPrefix .. user, id) else user = '' end
  table.insert(out, id); table.insert(out, user); table.insert(out, reason)
  redis.call('PUBLISH', ARGV[12], id)
end
while redis.call('ZCARD', mine) >= perUser do
  local oldest = redis.call('ZRANGE', mine, 0, 0)
  -- a set entry whose hash has gone is dropped from both sets by evict
  evict(oldest[1], 'user cap')
  redis.call('ZREM', mine, oldest[1])
end
while redis.call('ZCARD', all) >= max do
  local oldest = redis.call('ZRANGE', all, 0, 0)
  evict(oldest[1], 'service cap')
end
redis.call('HSET', key, 'owner', ARGV[8], 'user', ARGV[9], 'protocol', ARGV[10], 'created', now, 'lastSeen', now)
redis.call('PEXPIRE', key, ttl)
redis.call('ZADD', all, now, ARGV[11])
redis.call('ZADD', mine, now, ARGV[11])
redis.call('PEXPIRE', mine, ttl)
return out
`)

// Create implements SessionStore.
func (r *RedisSessions) Create(ctx context.Context, s Session) ([]Evicted, error) {
	now := r.now()
	res, err := createScript.Run(ctx, r.rdb,
		[]string{r.allKey(), r.ownerKey(s.capKey()), r.key(s.ID)},
		now.UnixMilli(), cutoff(now, r.lim.IdleTTL), r.lim.MaxPerUser, r.lim.Max, r.lim.IdleTTL.Milliseconds(),
		r.prefix+"id:", r.prefix+"owner:", s.Owner, s.User, s.Protocol, s.ID, r.evictedChannel()).Slice()
	if err != nil {
		return nil, unavailable("create", err)
	}
	if len(res) == 0 {
		return nil, fmt.Errorf("state: session id %q already exists", s.ID)
	}
	var evicted []Evicted
	for i := 1; i+2 < len(res); i += 3 {
		id, _ := res[i].(string)
		user, _ := res[i+1].(string)
		reason, _ := res[i+2].(string)
		evicted = append(evicted, Evicted{ID: id, User: user, Reason: reason})
	}
	return evicted, nil
}

func (r *RedisSessions) get(ctx context.Context, id string) (Session, error) {
	m, err := r.rdb.HGetAll(ctx, r.key(id)).Result()
	if err != nil {
		return Session{}, unavailable("lookup", err)
	}
	if m["owner"] == "" {
		return Session{}, ErrSessionNotFound
	}
	created, _ := strconv.ParseInt(m["created"], 10, 64)
	seen, _ := strconv.ParseInt(m["lastSeen"], 10, 64)
	return Session{ID: id, Owner: m["owner"], User: m["user"], Protocol: m["protocol"],
		Created: time.UnixMilli(created), LastSeen: time.UnixMilli(seen)}, nil
}

// Touch implements SessionStore.
func (r *RedisSessions) Touch(ctx context.Context, id string) (Session, error) {
	s, err := r.get(ctx, id)
	if err != nil {
		return Session{}, err
	}
	now := r.now()
	_, err = r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, r.key(id), "lastSeen", now.UnixMilli())
		p.PExpire(ctx, r.key(id), r.lim.IdleTTL)
		p.ZAddXX(ctx, r.allKey(), redis.Z{Score: ms(now), Member: id})
		p.ZAddXX(ctx, r.ownerKey(s.capKey()), redis.Z{Score: ms(now), Member: id})
		p.PExpire(ctx, r.ownerKey(s.capKey()), r.lim.IdleTTL)
		return nil
	})
	if err != nil {
		return Session{}, unavailable("touch", err)
	}
	s.LastSeen = now
	return s, nil
}

// Delete implements SessionStore.
func (r *RedisSessions) Delete(ctx context.Context, id string) (Session, error) {
	s, err := r.get(ctx, id)
	if err != nil {
		return Session{}, err
	}
	var del *redis.IntCmd
	_, err = r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		del = p.Del(ctx, r.key(id))
		p.ZRem(ctx, r.allKey(), id)
		p.ZRem(ctx, r.ownerKey(s.capKey()), id)
		return nil
	})
	if err != nil {
		return Session{}, unavailable("delete", err)
	}
	if del.Val() == 0 { // ended by someone else meanwhile
		return Session{}, ErrSessionNotFound
	}
	return s, nil
}

// Count implements SessionStore.
func (r *RedisSessions) Count(ctx context.Context) (int, error) {
	n, err := r.rdb.ZCount(ctx, r.allKey(), "("+cutoff(r.now(), r.lim.IdleTTL), "+inf").Result()
	if err != nil {
		return 0, unavailable("count", err)
	}
	return int(n), nil
}

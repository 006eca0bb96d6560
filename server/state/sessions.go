package state

import (
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
	// IdleTTL ends a session not used for this long. Default 30m.
	IdleTTL time.Duration `yaml:"idleTTL"`
	// MaxPerUser caps the open sessions of one principal. Default 32.
	MaxPerUser int `yaml:"maxPerUser"`
	// Max caps the open sessions of the whole service (every replica, with
	// Redis). Default 10000. Each open session costs about 17 KiB in the
	// replica that opened it (mostly mcp-go's per-session state), so the
	// cap also bounds memory: 10,000 sessions ≈ 175 MiB.
	Max int `yaml:"max"`
}

// WithDefaults fills zero fields.
func (l SessionLimits) WithDefaults() SessionLimits {
	if l.IdleTTL <= 0 {
		l.IdleTTL = 30 * time.Minute
	}
	if l.MaxPerUser <= 0 {
		l.MaxPerUser = 32
	}
	if l.Max <= 0 {
		l.Max = 10000
	}
	return l
}

// Validate reports a configuration error.
func (l SessionLimits) Validate() error {
	if l.IdleTTL < 0 || l.MaxPerUser < 0 || l.Max < 0 {
		return errors.New("state: sessions: idleTTL, maxPerUser and max must not be negative")
	}
	if l.MaxPerUser > 0 && l.Max > 0 && l.MaxPerUser > l.Max {
		return fmt.Errorf("state: sessions: maxPerUser (%d) is larger than max (%d)", l.MaxPerUser, l.Max)
	}
	return nil
}

// Session errors; callers branch on them with errors.Is.
var (
	// ErrSessionNotFound: unknown, ended or expired (HTTP 404).
	ErrSessionNotFound = errors.New("state: session not found")
	// ErrUserSessionCap: the principal has MaxPerUser open sessions.
	ErrUserSessionCap = errors.New("state: too many open sessions for this user")
	// ErrSessionCap: the service has Max open sessions.
	ErrSessionCap = errors.New("state: too many open sessions on this service")
)

// SessionStore keeps session records. Implementations are safe for
// concurrent use; errors other than the ones above mean the store is
// unavailable, and callers must fail closed.
type SessionStore interface {
	// Create records a new session, or fails with ErrUserSessionCap or
	// ErrSessionCap.
	Create(ctx context.Context, s Session) error
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
	sessions map[string]*Session
	perOwner map[string]int
}

// NewMemorySessions returns an empty store; now nil means time.Now.
func NewMemorySessions(lim SessionLimits, now func() time.Time) *MemorySessions {
	if now == nil {
		now = time.Now
	}
	return &MemorySessions{lim: lim.WithDefaults(), now: now, sessions: map[string]*Session{}, perOwner: map[string]int{}}
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

func (m *MemorySessions) removeLocked(s *Session) {
	delete(m.sessions, s.ID)
	if m.perOwner[s.capKey()]--; m.perOwner[s.capKey()] <= 0 {
		delete(m.perOwner, s.capKey())
	}
}

// Create implements SessionStore.
func (m *MemorySessions) Create(_ context.Context, s Session) error {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, dup := m.sessions[s.ID]; dup {
		return fmt.Errorf("state: session id %q already exists", s.ID)
	}
	if m.perOwner[s.capKey()] >= m.lim.MaxPerUser || len(m.sessions) >= m.lim.Max {
		for _, o := range m.sessions { // drop expired ones, then judge again
			if m.expired(o, now) {
				m.removeLocked(o)
			}
		}
	}
	if m.perOwner[s.capKey()] >= m.lim.MaxPerUser {
		return fmt.Errorf("%w (cap %d)", ErrUserSessionCap, m.lim.MaxPerUser)
	}
	if len(m.sessions) >= m.lim.Max {
		return fmt.Errorf("%w (cap %d)", ErrSessionCap, m.lim.Max)
	}
	s.Created, s.LastSeen = now, now
	m.sessions[s.ID] = &s
	m.perOwner[s.capKey()]++
	return nil
}

// Touch implements SessionStore.
func (m *MemorySessions) Touch(_ context.Context, id string) (Session, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[id]
	if !ok {
		return Session{}, ErrSessionNotFound
	}
	if m.expired(s, now) {
		m.removeLocked(s)
		return Session{}, ErrSessionNotFound
	}
	s.LastSeen = now
	return *s, nil
}

// Delete implements SessionStore.
func (m *MemorySessions) Delete(_ context.Context, id string) (Session, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[id]
	if !ok {
		return Session{}, ErrSessionNotFound
	}
	m.removeLocked(s)
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
// session IDs by last use, per owner and for the service, for the caps.
//
// The caps are checked and then the session is written in a second round
// trip, so under concurrent initializes across replicas a cap can be
// exceeded by the number of initializes in flight at that moment.
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
	return &RedisSessions{rdb: rdb, lim: lim.WithDefaults(), prefix: prefix + "session:", now: now}
}

func (r *RedisSessions) key(id string) string     { return r.prefix + "id:" + id }
func (r *RedisSessions) ownerKey(o string) string { return r.prefix + "owner:" + o }
func (r *RedisSessions) allKey() string           { return r.prefix + "all" }
func unavailable(op string, err error) error {
	return fmt.Errorf("%w: session %s: %w", ErrUnavailable, op, err)
}
func ms(t time.Time) float64 { return float64(t.UnixMilli()) }

// cutoff is the last-use score at or below which a session has expired.
func cutoff(now time.Time, ttl time.Duration) string {
	return strconv.FormatInt(now.Add(-ttl).UnixMilli(), 10)
}

// Create implements SessionStore.
func (r *RedisSessions) Create(ctx context.Context, s Session) error {
	now := r.now()
	var all, mine *redis.IntCmd
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRemRangeByScore(ctx, r.allKey(), "-inf", cutoff(now, r.lim.IdleTTL))
		p.ZRemRangeByScore(ctx, r.ownerKey(s.capKey()), "-inf", cutoff(now, r.lim.IdleTTL))
		all = p.ZCard(ctx, r.allKey())
		mine = p.ZCard(ctx, r.ownerKey(s.capKey()))
		return nil
	})
	if err != nil {
		return unavailable("create", err)
	}
	if mine.Val() >= int64(r.lim.MaxPerUser) {
		return fmt.Errorf("%w (cap %d)", ErrUserSessionCap, r.lim.MaxPerUser)
	}
	if all.Val() >= int64(r.lim.Max) {
		return fmt.Errorf("%w (cap %d)", ErrSessionCap, r.lim.Max)
	}
	var set *redis.BoolCmd
	_, err = r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		set = p.HSetNX(ctx, r.key(s.ID), "owner", s.Owner)
		p.HSet(ctx, r.key(s.ID), "user", s.User, "protocol", s.Protocol, "created", now.UnixMilli(), "lastSeen", now.UnixMilli())
		p.PExpire(ctx, r.key(s.ID), r.lim.IdleTTL)
		p.ZAdd(ctx, r.allKey(), redis.Z{Score: ms(now), Member: s.ID})
		p.ZAdd(ctx, r.ownerKey(s.capKey()), redis.Z{Score: ms(now), Member: s.ID})
		p.PExpire(ctx, r.ownerKey(s.capKey()), r.lim.IdleTTL)
		return nil
	})
	if err != nil {
		return unavailable("create", err)
	}
	if !set.Val() {
		return fmt.Errorf("state: session id %q already exists", s.ID)
	}
	return nil
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

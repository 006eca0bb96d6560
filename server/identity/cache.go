package identity

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"
)

// CachedUser is what the resolver remembers about one verified user: the
// Backstage User entity ref and its ownership refs (the user and its
// groups, transitively), or that the user has no entity (Unknown).
type CachedUser struct {
	Ref     string   `json:"ref,omitempty"`
	Owners  []string `json:"owners,omitempty"`
	Unknown bool     `json:"unknown,omitempty"`
}

// Validate reports whether u is a well-formed cache value: an unknown user
// with no refs, or a user ref ("user:…") listed first among its owners.
// A value that fails it is never used.
func (u CachedUser) Validate() error {
	if u.Unknown {
		if u.Ref != "" || len(u.Owners) != 0 {
			return errors.New("identity: cached unknown user carries refs")
		}
		return nil
	}
	if !strings.HasPrefix(u.Ref, "user:") || len(u.Owners) == 0 || u.Owners[0] != u.Ref {
		return errors.New("identity: cached user is malformed")
	}
	return nil
}

// ResolverCache remembers resolved users for a TTL. Keys are opaque
// strings derived from the token's issuer and subject and the resolver's
// catalog filter. The in-process [MemoryCache] is the default; a shared
// store (Redis, package server/state) lets replicas share resolutions.
//
// Get reports a miss as (zero, false, nil). An error means the cache could
// not answer: the resolver then asks Backstage, never an older answer.
type ResolverCache interface {
	Get(ctx context.Context, key string) (CachedUser, bool, error)
	Set(ctx context.Context, key string, u CachedUser, ttl time.Duration) error
}

// MemoryCache is a ResolverCache in this process, bounded in size. The zero
// value is not usable; use NewMemoryCache.
type MemoryCache struct {
	now     func() time.Time
	maxSize int

	mu      sync.Mutex
	entries map[string]memEntry
}

type memEntry struct {
	u       CachedUser
	expires time.Time
}

// NewMemoryCache returns a cache holding at most maxSize users
// (DefaultCacheSize when maxSize <= 0); now defaults to time.Now.
func NewMemoryCache(maxSize int, now func() time.Time) *MemoryCache {
	if maxSize <= 0 {
		maxSize = DefaultCacheSize
	}
	if now == nil {
		now = time.Now
	}
	return &MemoryCache{now: now, maxSize: maxSize, entries: map[string]memEntry{}}
}

// Get returns the user stored under key if it has not expired.
func (m *MemoryCache) Get(_ context.Context, key string) (CachedUser, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[key]
	if !ok {
		return CachedUser{}, false, nil
	}
	if !m.now().Before(e.expires) {
		delete(m.entries, key)
		return CachedUser{}, false, nil
	}
	return e.u, true, nil
}

// Set stores u under key for ttl, evicting expired and then arbitrary
// entries when full.
func (m *MemoryCache) Set(_ context.Context, key string, u CachedUser, ttl time.Duration) error {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.entries) >= m.maxSize {
		for k, old := range m.entries {
			if !now.Before(old.expires) {
				delete(m.entries, k)
			}
		}
		// Still full: drop arbitrary entries (map order) to make room.
		for k := range m.entries {
			if len(m.entries) < m.maxSize {
				break
			}
			delete(m.entries, k)
		}
	}
	m.entries[key] = memEntry{u: u, expires: now.Add(ttl)}
	return nil
}

// Len is the number of entries held (expired ones included until evicted).
func (m *MemoryCache) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries)
}

package identity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/backstage-mcp/backstage-mcp/tools/catalog"

	"github.com/backstage-mcp/backstage-mcp/policy/filter"
)

// Catalog is the little the resolver needs from the Backstage catalog. The
// server satisfies it with its own catalog client (its own credential — the
// user's token is never involved).
type Catalog interface {
	// FindUsers returns the entities matching one Backstage catalog filter,
	// e.g. "kind=user,spec.profile.email=jane@example.com". Each entity is
	// the catalog's JSON decoded into a map (metadata, spec, relations).
	FindUsers(ctx context.Context, filter catalog.Filter) ([]map[string]any, error)
	// GetEntity returns the entity with the given ref ("group:default/team-a").
	// A missing entity is (nil, nil) or an error wrapping ErrEntityNotFound.
	GetEntity(ctx context.Context, ref string) (map[string]any, error)
}

// Resolver maps verified users to Backstage User entities and their
// transitive groups, with a TTL cache (in this process by default, or
// shared by replicas through a [ResolverCache]).
type Resolver struct {
	catalog  Catalog
	name     string
	claim    string
	fallback string
	ttl      time.Duration
	maxDepth int
	cache    ResolverCache
	log      *slog.Logger
}

// NewResolver returns a resolver with the default settings, for callers
// that only need OwnershipRefs or GroupRefs (the insecure local user, the
// policy review commands), so that every path resolves groups the same way.
func NewResolver(c Catalog) *Resolver {
	cfg, err := Config{}.withDefaults("")
	if err != nil {
		cfg = Config{}
	}
	return newResolver(c, cfg, NewMemoryCache(DefaultCacheSize, time.Now), nil)
}

func newResolver(c Catalog, cfg Config, cache ResolverCache, log *slog.Logger) *Resolver {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Resolver{
		catalog:  c,
		name:     cfg.Resolver.Name,
		claim:    cfg.Resolver.Claim,
		fallback: cfg.FallbackRole,
		ttl:      cfg.CacheTTL,
		maxDepth: DefaultMaxGroupDepth,
		cache:    cache,
		log:      log,
	}
}

// cacheKey names one resolution: the token's issuer and subject and the
// catalog filter built from its claims (so a changed email claim is a new
// resolution). Hashed, so keys are bounded and carry no personal data.
func cacheKey(issuer, sub, filter string) string {
	h := sha256.New()
	for _, s := range []string{issuer, sub, filter} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// filterFor builds the catalog filter of the configured resolver from the
// principal's claims.
func (r *Resolver) filterFor(p *Principal) (catalog.Filter, error) {
	value := stringClaim(p.User.Claims, r.claim)
	if value == "" {
		return nil, fmt.Errorf("%w: claim %q is missing", ErrUnknownUser, r.claim)
	}
	field := ""
	switch r.name {
	case ResolverEmailMatchingUserEntityProfileEmail:
		field = "spec.profile.email"
	case ResolverEmailLocalPartMatchingUserEntityName:
		local, _, ok := strings.Cut(value, "@")
		if !ok || local == "" {
			return nil, fmt.Errorf("%w: claim %q is not an email", ErrUnknownUser, r.claim)
		}
		field, value = "metadata.name", local
	case ResolverUsernameMatchingUserEntityName:
		field = "metadata.name"
	default:
		return nil, fmt.Errorf("identity: unknown resolver %q", r.name)
	}
	// The catalog's own filter grammar decides what a value may hold: no
	// value that could add or alter a clause reaches Backstage.
	if err := filter.CheckValue(value); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidFilterValue, err)
	}
	return catalog.Filter{"kind": {"user"}, field: {value}}, nil
}

// resolve sets p.User.Ref and OwnershipRefs (or FallbackRole).
func (r *Resolver) resolve(ctx context.Context, p *Principal) error {
	filter, err := r.filterFor(p)
	if err != nil {
		if errors.Is(err, ErrUnknownUser) && r.fallback != "" {
			p.FallbackRole = r.fallback
			return nil
		}
		return err
	}
	enc, err := filter.Encode()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidFilterValue, err)
	}
	key := cacheKey(p.Issuer, p.User.Sub, enc)
	// Fail closed: a cache that cannot answer, or answers with a malformed
	// value, is a miss; the user is resolved from Backstage again, never
	// from an older or foreign answer.
	e, ok, err := r.cache.Get(ctx, key)
	cacheDown := err != nil
	switch {
	case err != nil:
		r.log.Warn("resolver cache unavailable; resolving from Backstage", "err", err)
	case ok:
		verr := e.Validate()
		if verr == nil {
			return r.apply(p, e)
		}
		r.log.Warn("resolver cache: ignoring a malformed entry", "err", verr)
	}
	e, err = r.resolveUncached(ctx, filter)
	if err != nil {
		return err
	}
	if cacheDown {
		// Do not wait on a store that just failed a second time.
		return r.apply(p, e)
	}
	if err := r.cache.Set(ctx, key, e, r.ttl); err != nil {
		r.log.Warn("resolver cache: could not store a resolution", "err", err)
	}
	return r.apply(p, e)
}

func (r *Resolver) apply(p *Principal, e CachedUser) error {
	if e.Unknown {
		if r.fallback == "" {
			return ErrUnknownUser
		}
		p.FallbackRole = r.fallback
		return nil
	}
	p.User.Ref = e.Ref
	p.User.OwnershipRefs = slices.Clone(e.Owners)
	return nil
}

func (r *Resolver) resolveUncached(ctx context.Context, filter catalog.Filter) (CachedUser, error) {
	users, err := r.catalog.FindUsers(ctx, filter)
	if err != nil {
		return CachedUser{}, fmt.Errorf("identity: find user: %w", err)
	}
	switch len(users) {
	case 0:
		return CachedUser{Unknown: true}, nil
	case 1:
	default:
		return CachedUser{}, ErrAmbiguousUser
	}
	r0, ok := catalog.RefOf(users[0])
	ref := r0.Key()
	if !ok || !strings.HasPrefix(ref, "user:") {
		return CachedUser{}, errors.New("identity: catalog returned a user entity without kind/name")
	}
	owners, err := r.groupsOf(ctx, ref, users[0])
	if err != nil {
		return CachedUser{}, err
	}
	return CachedUser{Ref: ref, Owners: owners}, nil
}

// OwnershipRefs returns userRef plus all its groups, following memberOf and
// then childOf transitively (bounded depth, cycle-safe). Not cached.
func (r *Resolver) OwnershipRefs(ctx context.Context, userRef string) ([]string, error) {
	user, err := r.catalog.GetEntity(ctx, userRef)
	if err != nil && !errors.Is(err, ErrEntityNotFound) {
		return nil, fmt.Errorf("identity: get user: %w", err)
	}
	if user == nil {
		return nil, ErrUnknownUser
	}
	return r.groupsOf(ctx, strings.ToLower(userRef), user)
}

func (r *Resolver) groupsOf(ctx context.Context, userRef string, user map[string]any) ([]string, error) {
	return r.ancestors(ctx, userRef, catalog.RelationTargets(user, "memberOf"))
}

// GroupRefs returns groupRef (lowercased) followed by the groups it is a
// child of, transitively, found the way a user's groups are (bounded depth,
// cycle-safe, sorted): what every member of the group owns through it. A
// group that is not in the catalog is ErrUnknownGroup.
func (r *Resolver) GroupRefs(ctx context.Context, groupRef string) ([]string, error) {
	group, err := r.catalog.GetEntity(ctx, groupRef)
	if err != nil && !errors.Is(err, ErrEntityNotFound) {
		return nil, fmt.Errorf("identity: get group: %w", err)
	}
	if group == nil {
		return nil, ErrUnknownGroup
	}
	return r.ancestors(ctx, strings.ToLower(groupRef), catalog.RelationTargets(group, "childOf"))
}

// ancestors returns self followed by the groups of frontier and, through
// childOf, their parents, up to maxDepth levels; self first, the rest
// sorted. Missing groups are skipped.
func (r *Resolver) ancestors(ctx context.Context, self string, frontier []string) ([]string, error) {
	seen := map[string]bool{self: true}
	out := []string{self}
	for depth := 0; len(frontier) > 0 && depth < r.maxDepth; depth++ {
		var next []string
		for _, g := range frontier {
			if seen[g] || !strings.HasPrefix(g, "group:") {
				continue
			}
			seen[g] = true
			out = append(out, g)
			ent, err := r.catalog.GetEntity(ctx, g)
			if err != nil {
				if errors.Is(err, ErrEntityNotFound) {
					continue
				}
				return nil, fmt.Errorf("identity: get group: %w", err)
			}
			if ent == nil {
				continue
			}
			next = append(next, catalog.RelationTargets(ent, "childOf")...)
		}
		frontier = next
	}
	slices.Sort(out[1:])
	return out, nil
}

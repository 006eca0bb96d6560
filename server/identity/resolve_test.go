package identity

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestResolvers(t *testing.T) {
	janeRefs := []string{"user:default/jane", "group:default/dept", "group:default/org", "group:default/team-a"}
	tests := []struct {
		name       string
		resolver   ResolverConfig
		fallback   string
		over       map[string]any
		wantFilter string
		wantRef    string
		wantRefs   []string
		wantErr    error
		wantRole   string
	}{
		{
			name:       "email matching profile email",
			resolver:   ResolverConfig{Name: ResolverEmailMatchingUserEntityProfileEmail},
			wantFilter: "kind=user,spec.profile.email=jane@example.com",
			wantRef:    "user:default/jane", wantRefs: janeRefs,
		},
		{
			name:       "email local part matching name",
			resolver:   ResolverConfig{Name: ResolverEmailLocalPartMatchingUserEntityName},
			over:       map[string]any{"email": "bob@corp.example"},
			wantFilter: "kind=user,metadata.name=bob",
			wantRef:    "user:default/bob", wantRefs: []string{"user:default/bob", "group:default/team-b"},
		},
		{
			name:       "username matching name",
			resolver:   ResolverConfig{Name: ResolverUsernameMatchingUserEntityName},
			over:       map[string]any{"preferred_username": "jane"},
			wantFilter: "kind=user,metadata.name=jane",
			wantRef:    "user:default/jane", wantRefs: janeRefs,
		},
		{
			name:       "username from a configured claim",
			resolver:   ResolverConfig{Name: ResolverUsernameMatchingUserEntityName, Claim: "login"},
			over:       map[string]any{"login": "bob"},
			wantFilter: "kind=user,metadata.name=bob",
			wantRef:    "user:default/bob", wantRefs: []string{"user:default/bob", "group:default/team-b"},
		},
		{
			name:       "no entity: denied",
			resolver:   ResolverConfig{Name: ResolverEmailMatchingUserEntityProfileEmail},
			over:       map[string]any{"email": "nobody@example.com"},
			wantFilter: "kind=user,spec.profile.email=nobody@example.com",
			wantErr:    ErrUnknownUser,
		},
		{
			name:       "no entity: fallback role",
			resolver:   ResolverConfig{Name: ResolverEmailMatchingUserEntityProfileEmail},
			fallback:   "guest",
			over:       map[string]any{"email": "nobody@example.com"},
			wantFilter: "kind=user,spec.profile.email=nobody@example.com",
			wantRole:   "guest",
		},
		{
			name:     "missing claim: denied",
			resolver: ResolverConfig{Name: ResolverEmailMatchingUserEntityProfileEmail},
			over:     map[string]any{"email": nil},
			wantErr:  ErrUnknownUser,
		},
		{
			name:     "filter injection with a comma",
			resolver: ResolverConfig{Name: ResolverEmailMatchingUserEntityProfileEmail},
			over:     map[string]any{"email": "x@y,kind=group"},
			wantErr:  ErrInvalidFilterValue,
		},
		{
			name:     "filter injection with equals",
			resolver: ResolverConfig{Name: ResolverUsernameMatchingUserEntityName},
			over:     map[string]any{"preferred_username": "metadata.name=jane"},
			wantErr:  ErrInvalidFilterValue,
		},
		{
			name:     "control character",
			resolver: ResolverConfig{Name: ResolverUsernameMatchingUserEntityName},
			over:     map[string]any{"preferred_username": "jane\n"},
			wantErr:  ErrInvalidFilterValue,
		},
		{
			name:     "email without at sign for local part",
			resolver: ResolverConfig{Name: ResolverEmailLocalPartMatchingUserEntityName},
			over:     map[string]any{"email": "jane"},
			wantErr:  ErrUnknownUser,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(c *Config) { c.Resolver = tc.resolver; c.FallbackRole = tc.fallback })
			p, err := f.auth.VerifyToken(context.Background(), sign(t, f.key, f.claims(tc.over)))
			if tc.wantFilter != "" && (len(f.catalog.filters) != 1 || f.catalog.filters[0] != tc.wantFilter) {
				t.Errorf("filters = %q, want %q", f.catalog.filters, tc.wantFilter)
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				if errors.Is(tc.wantErr, ErrInvalidFilterValue) && f.catalog.finds != 0 {
					t.Fatal("an unsafe value reached the catalog")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.User.Ref != tc.wantRef || !slices.Equal(p.User.OwnershipRefs, tc.wantRefs) || p.FallbackRole != tc.wantRole {
				t.Fatalf("ref %q refs %v role %q", p.User.Ref, p.User.OwnershipRefs, p.FallbackRole)
			}
		})
	}
}

func TestAmbiguousUser(t *testing.T) {
	f := newFixture(t, nil)
	f.catalog.users = append(f.catalog.users, userEntity("jane2", "jane@example.com"))
	_, err := f.auth.VerifyToken(context.Background(), sign(t, f.key, f.claims(nil)))
	if !errors.Is(err, ErrAmbiguousUser) {
		t.Fatalf("err = %v", err)
	}
}

func TestGroupDepthBound(t *testing.T) {
	// A chain of 20 groups: only DefaultMaxGroupDepth levels are followed.
	cat := &fakeCatalog{entities: map[string]map[string]any{}}
	user := userEntity("deep", "deep@example.com", rel("memberOf", "group:default/g0"))
	cat.users = []map[string]any{user}
	for i := range 20 {
		name := "g" + itoa(i)
		cat.entities["group:default/"+name] = groupEntity(name, rel("childOf", "group:default/g"+itoa(i+1)))
	}
	r := newResolver(cat, Config{Resolver: ResolverConfig{Name: ResolverEmailMatchingUserEntityProfileEmail, Claim: "email"}, CacheTTL: time.Minute}, NewMemoryCache(0, nil), nil)
	refs, err := r.groupsOf(context.Background(), "user:default/deep", user)
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 1+DefaultMaxGroupDepth {
		t.Fatalf("got %d refs, want %d: %v", len(refs), 1+DefaultMaxGroupDepth, refs)
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

func TestResolutionCacheTTL(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.CacheTTL = time.Minute })
	ctx := context.Background()
	verify := func() *Principal {
		t.Helper()
		p, err := f.auth.VerifyToken(ctx, sign(t, f.key, f.claims(nil)))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p1 := verify()
	calls := f.catalog.finds
	p2 := verify()
	if f.catalog.finds != calls {
		t.Fatal("cache miss within TTL")
	}
	p2.User.OwnershipRefs[0] = "mutated"
	if verify().User.OwnershipRefs[0] != "user:default/jane" || p1.User.OwnershipRefs[0] != "user:default/jane" {
		t.Fatal("cached ownership refs are shared between principals")
	}
	f.clock.Advance(time.Minute)
	verify()
	if f.catalog.finds != calls+1 {
		t.Fatalf("finds = %d, want %d after TTL", f.catalog.finds, calls+1)
	}
	// Negative results are cached too.
	for range 3 {
		_, err := f.auth.VerifyToken(ctx, sign(t, f.key, f.claims(map[string]any{"sub": "ghost", "email": "ghost@example.com"})))
		if !errors.Is(err, ErrUnknownUser) {
			t.Fatal(err)
		}
	}
	if f.catalog.finds != calls+2 {
		t.Fatalf("unknown user looked up %d times, want once", f.catalog.finds-calls-1)
	}
}

func TestCacheBounded(t *testing.T) {
	c := NewMemoryCache(10, nil)
	ctx := context.Background()
	for i := range 50 {
		if err := c.Set(ctx, itoa(i), CachedUser{Ref: "user:default/x", Owners: []string{"user:default/x"}}, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if c.Len() > 10 {
		t.Fatalf("cache grew to %d", c.Len())
	}
	if _, ok, _ := c.Get(ctx, "49"); !ok {
		t.Fatal("the newest entry was evicted")
	}
}

func TestOwnershipRefsForLocalUser(t *testing.T) {
	f := newFixture(t, nil)
	p := InsecureLocalUser("user:default/jane")
	if !p.Insecure || p.Issuer != InsecureLocalIssuer {
		t.Fatalf("%+v", p)
	}
	if err := f.auth.ResolveRef(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(p.User.OwnershipRefs, "group:default/org") {
		t.Fatalf("refs %v", p.User.OwnershipRefs)
	}
	if err := f.auth.ResolveRef(context.Background(), InsecureLocalUser("user:default/nobody")); !errors.Is(err, ErrUnknownUser) {
		t.Fatalf("err = %v", err)
	}
}

func TestGroupRefs(t *testing.T) {
	r := NewResolver(orgCatalog())
	cases := []struct {
		name  string
		group string
		want  []string
		err   error
	}{
		{"parents transitively, cycle-safe, sorted", "group:default/team-a",
			[]string{"group:default/team-a", "group:default/dept", "group:default/org"}, nil},
		{"a group without parents", "group:default/team-b", []string{"group:default/team-b"}, nil},
		{"a missing group", "group:default/nope", nil, ErrUnknownGroup},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.GroupRefs(context.Background(), tc.group)
			if !errors.Is(err, tc.err) || !slices.Equal(got, tc.want) {
				t.Errorf("GroupRefs(%q) = %v, %v; want %v, %v", tc.group, got, err, tc.want, tc.err)
			}
		})
	}
	// A user's groups and a group's parents are walked alike: jane's
	// ownership refs are her ref plus GroupRefs of her one group.
	user, err := r.OwnershipRefs(context.Background(), "user:default/jane")
	if err != nil {
		t.Fatal(err)
	}
	group, err := r.GroupRefs(context.Background(), "group:default/team-a")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(group)
	if !slices.Equal(user[1:], group) {
		t.Errorf("user groups %v, group chain %v", user[1:], group)
	}
}

// brokenCache is a ResolverCache that cannot answer, or answers with a
// fixed (possibly wrong) entry.
type brokenCache struct {
	getErr, setErr error
	entry          *CachedUser
	sets           int
}

func (b *brokenCache) Get(context.Context, string) (CachedUser, bool, error) {
	if b.getErr != nil {
		return CachedUser{}, false, b.getErr
	}
	if b.entry != nil {
		return *b.entry, true, nil
	}
	return CachedUser{}, false, nil
}

func (b *brokenCache) Set(context.Context, string, CachedUser, time.Duration) error {
	b.sets++
	return b.setErr
}

func TestResolverCacheFailsClosed(t *testing.T) {
	down := errors.New("cache down")
	tests := []struct {
		name     string
		cache    *brokenCache
		wantSets int // fresh resolutions offered to the cache
	}{
		{"get fails", &brokenCache{getErr: down}, 0},
		{"get and set fail", &brokenCache{getErr: down, setErr: down}, 0},
		{"set fails", &brokenCache{setErr: down}, 2},
		{"malformed entry naming another user", &brokenCache{entry: &CachedUser{Ref: "user:default/bob"}}, 2},
		{"entry that is not a user", &brokenCache{entry: &CachedUser{Ref: "group:default/admins", Owners: []string{"group:default/admins"}}}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cat := orgCatalog()
			r := newResolver(cat, Config{Resolver: ResolverConfig{Name: ResolverEmailMatchingUserEntityProfileEmail, Claim: "email"}, CacheTTL: time.Minute}, tc.cache, nil)
			for i := range 2 {
				p := &Principal{Issuer: "https://idp.example.com", User: User{Sub: "sub-jane", Claims: map[string]any{"email": "jane@example.com"}}}
				if err := r.resolve(context.Background(), p); err != nil {
					t.Fatal(err)
				}
				if p.User.Ref != "user:default/jane" || len(p.User.OwnershipRefs) == 0 || p.User.OwnershipRefs[0] != "user:default/jane" {
					t.Fatalf("resolved to %s %v, want jane from Backstage", p.User.Ref, p.User.OwnershipRefs)
				}
				if cat.finds != i+1 {
					t.Fatalf("Backstage asked %d times after %d resolutions, want every time", cat.finds, i+1)
				}
			}
			if tc.cache.sets != tc.wantSets {
				t.Fatalf("cache offered %d fresh resolutions, want %d", tc.cache.sets, tc.wantSets)
			}
		})
	}
}

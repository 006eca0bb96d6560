package review

import (
	"context"
	"errors"
)

// ErrNotInCatalog reports a user or group that is not in the catalog.
var ErrNotInCatalog = errors.New("review: not in the catalog")

// Catalog is what a review reads from the live catalog.
type Catalog interface {
	// Entities calls yield with every entity of the catalog, decoded, until
	// it has no more or yield returns false.
	Entities(ctx context.Context, yield func(entity map[string]any) bool) error
	// Entity returns the entity with ref "kind:namespace/name", or
	// (nil, nil) when it is not in the catalog.
	Entity(ctx context.Context, ref string) (map[string]any, error)
	// UserByEmail returns the ref of the one User entity whose
	// spec.profile.email is email (the server's
	// emailMatchingUserEntityProfileEmail resolver), or an error wrapping
	// ErrNotInCatalog when there is none.
	UserByEmail(ctx context.Context, email string) (string, error)
	// OwnershipRefs returns the user's ref followed by their groups,
	// resolved as the server resolves them (memberOf, then childOf), or an
	// error wrapping ErrNotInCatalog.
	OwnershipRefs(ctx context.Context, userRef string) ([]string, error)
	// GroupRefs returns the group's ref followed by the groups it is a
	// child of (transitively), or an error wrapping ErrNotInCatalog.
	GroupRefs(ctx context.Context, groupRef string) ([]string, error)
}

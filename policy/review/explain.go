package review

import (
	"context"
	"errors"
	"fmt"

	"github.com/backstage-mcp/backstage-mcp/policy"
)

// Question is one subject and what to decide for it, as `policy explain`
// takes it. Where the server would look the user or the entity up in the
// catalog, Explain does too (when given a Catalog).
type Question struct {
	// Tool is the tool to decide for ("" for none).
	Tool string
	// Entity is an entity given as it is (offline); EntityRef names one to
	// fetch from the catalog instead ("kind:namespace/name").
	Entity    map[string]any
	EntityRef string
	// UserRef, Email and Sub are the user; with a catalog, Email without
	// UserRef is resolved to the User entity, and the groups of UserRef
	// are resolved unless OwnershipRefs is given.
	UserRef, Email, Sub string
	// IdPGroups and Claims are the token's; OwnershipRefs the user's
	// Backstage groups (transitive), without the user's own ref.
	IdPGroups     []string
	Claims        map[string][]string
	OwnershipRefs []string
	// ClientID and Scopes are the agent's OAuth client and token scopes.
	ClientID string
	Scopes   []string
	// Anonymous is an unauthenticated caller (demo mode).
	Anonymous bool
}

// NeedsCatalog reports whether the question looks anything up in the
// catalog: an entity by ref, a user by e-mail, or a user's groups.
func (q Question) NeedsCatalog() bool {
	return q.EntityRef != "" || (!q.Anonymous && (q.Email != "" && q.UserRef == "" || q.UserRef != "" && len(q.OwnershipRefs) == 0))
}

// Lookup names what NeedsCatalog would look up first, for messages.
func (q Question) Lookup() string {
	switch {
	case q.EntityRef != "":
		return q.EntityRef
	case q.Email != "":
		return q.Email
	}
	return "the groups of " + q.UserRef
}

// Answer is the policy's explanation and how the subject was resolved.
type Answer struct {
	Explanation policy.Explanation
	// Notes says what was looked up in the catalog and what could not be.
	Notes []string
}

// Explain decides q under pol. cat may be nil (offline): then nothing is
// looked up, and an EntityRef is an error.
func Explain(ctx context.Context, pol *policy.Policy, cat Catalog, q Question) (*Answer, error) {
	var notes []string
	entity := q.Entity
	if q.EntityRef != "" {
		if cat == nil {
			return nil, errors.New("review: an entity ref needs the catalog")
		}
		e, err := cat.Entity(ctx, q.EntityRef)
		if err != nil {
			return nil, fmt.Errorf("review: could not fetch %s from Backstage: %w", q.EntityRef, err)
		}
		if e == nil {
			return nil, fmt.Errorf("review: %s is not in the catalog (the server would answer \"not found\" whatever the policy says)", q.EntityRef)
		}
		entity = e
		notes = append(notes, "entity "+q.EntityRef+" fetched from the catalog")
	}
	userRef, ownership := q.UserRef, q.OwnershipRefs
	if cat != nil && !q.Anonymous && q.Email != "" && userRef == "" {
		ref, err := cat.UserByEmail(ctx, q.Email)
		switch {
		case errors.Is(err, ErrNotInCatalog):
			notes = append(notes, fmt.Sprintf("no User entity has spec.profile.email=%s: the server would refuse this user unless auth.fallbackRole is set; deciding for a user with no entity", q.Email))
		case err != nil:
			return nil, fmt.Errorf("review: could not resolve %s in the catalog: %w", q.Email, err)
		default:
			userRef = ref
			notes = append(notes, fmt.Sprintf("%s resolved to %s (kind=user,spec.profile.email)", q.Email, ref))
		}
	}
	if cat != nil && !q.Anonymous && userRef != "" && len(ownership) == 0 {
		refs, err := cat.OwnershipRefs(ctx, userRef)
		switch {
		case errors.Is(err, ErrNotInCatalog):
			notes = append(notes, fmt.Sprintf("%s is not in the catalog: no groups resolved", userRef))
		case err != nil:
			return nil, fmt.Errorf("review: could not resolve the groups of %s: %w", userRef, err)
		default:
			ownership = refs[1:]
			notes = append(notes, fmt.Sprintf("groups of %s resolved in the catalog (memberOf, then childOf): %s", userRef, listOrNone(refs[1:])))
		}
	}
	s := policy.Subject{
		UserRef:       userRef,
		Email:         q.Email,
		Sub:           q.Sub,
		IdPGroups:     q.IdPGroups,
		Claims:        q.Claims,
		OwnershipRefs: ownership,
		ClientID:      q.ClientID,
		Scopes:        q.Scopes,
		Authenticated: !q.Anonymous,
	}
	if s.UserRef != "" {
		s.OwnershipRefs = append([]string{s.UserRef}, s.OwnershipRefs...)
	}
	if q.Email != "" && userRef == "" && cat == nil {
		notes = append(notes, "offline, --email is not resolved to a Backstage user; give --config (live lookup) or --user and --ownership as the server would resolve them")
	}
	return &Answer{Explanation: pol.Explain(s, q.Tool, entity), Notes: notes}, nil
}

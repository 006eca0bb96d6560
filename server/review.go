package server

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/backstage-mcp/backstage-mcp/policy/review"
	"github.com/backstage-mcp/backstage-mcp/server/identity"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog"

	"github.com/backstage-mcp/backstage-mcp/policy/filter"
)

// ReviewPageSize is how many entities a policy review reads per catalog
// request.
const ReviewPageSize = 500

// maxUserMatches bounds the User entities read for one e-mail.
const maxUserMatches = 10

// ReviewCatalog lets `policy graph` and `policy explain` read the live
// catalog through a catalog client (the server's own credential), with
// users and groups resolved by the server's own identity.Resolver.
func ReviewCatalog(c EntityReader) review.Catalog {
	ic := IdentityCatalog(c)
	return reviewCatalog{c: c, ic: ic, res: identity.NewResolver(ic)}
}

var _ review.Catalog = reviewCatalog{}

type reviewCatalog struct {
	c   EntityReader
	ic  identity.Catalog
	res *identity.Resolver
}

func (rc reviewCatalog) Entities(ctx context.Context, yield func(map[string]any) bool) error {
	q := catalog.Query{Limit: ReviewPageSize}
	for {
		page, err := rc.c.Query(ctx, q)
		if err != nil {
			return err
		}
		ents, err := decodeAll(page.Items)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if !yield(e) {
				return nil
			}
		}
		if page.NextCursor == "" || len(page.Items) == 0 {
			return nil
		}
		q = catalog.Query{Cursor: page.NextCursor, Limit: ReviewPageSize}
	}
}

func (rc reviewCatalog) Entity(ctx context.Context, ref string) (map[string]any, error) {
	return rc.ic.GetEntity(ctx, ref)
}

func (rc reviewCatalog) UserByEmail(ctx context.Context, email string) (string, error) {
	if err := filter.CheckValue(email); err != nil {
		return "", fmt.Errorf("--email: %w", err)
	}
	page, err := rc.c.Query(ctx, catalog.Query{
		Filters: []catalog.Filter{{"kind": {"user"}, "spec.profile.email": {email}}},
		Limit:   maxUserMatches,
	})
	if err != nil {
		return "", err
	}
	switch len(page.Items) {
	case 0:
		return "", review.ErrNotInCatalog
	case 1:
	default:
		return "", fmt.Errorf("server: %d User entities have spec.profile.email=%s: the server refuses ambiguous users", len(page.Items), email)
	}
	ents, err := decodeAll(page.Items)
	if err != nil {
		return "", err
	}
	r, ok := catalog.RefOf(ents[0])
	if !ok || !strings.HasPrefix(r.Key(), "user:") {
		return "", errors.New("server: the catalog returned a user entity without kind or name")
	}
	return r.Key(), nil
}

func (rc reviewCatalog) OwnershipRefs(ctx context.Context, userRef string) ([]string, error) {
	r, err := catalog.ParseRef(userRef, "user")
	if err != nil {
		return nil, err
	}
	refs, err := rc.res.OwnershipRefs(ctx, r.Key())
	if errors.Is(err, identity.ErrUnknownUser) {
		return nil, fmt.Errorf("%w: %s", review.ErrNotInCatalog, r.Key())
	}
	return refs, err
}

func (rc reviewCatalog) GroupRefs(ctx context.Context, groupRef string) ([]string, error) {
	r, err := catalog.ParseRef(groupRef, "group")
	if err != nil {
		return nil, err
	}
	refs, err := rc.res.GroupRefs(ctx, r.Key())
	if errors.Is(err, identity.ErrUnknownGroup) {
		return nil, fmt.Errorf("%w: %s", review.ErrNotInCatalog, r.Key())
	}
	return refs, err
}

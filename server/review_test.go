package server

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/policy/review"
	"github.com/backstage-mcp/backstage-mcp/server/demo"
)

func TestReviewCatalog(t *testing.T) {
	client, err := NewDemoCatalog()
	if err != nil {
		t.Fatal(err)
	}
	rc := ReviewCatalog(client)
	ctx := context.Background()

	ents, err := demo.Entities()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := rc.Entities(ctx, func(map[string]any) bool { n++; return true }); err != nil || n != len(ents) {
		t.Fatalf("Entities: %d of %d, %v", n, len(ents), err)
	}
	n = 0
	if err := rc.Entities(ctx, func(map[string]any) bool { n++; return n < 3 }); err != nil || n != 3 {
		t.Errorf("Entities stops when yield says so: %d, %v", n, err)
	}

	cases := []struct {
		name  string
		call  func() (any, error)
		want  any // compared with fmt-free equality below
		err   error
		errIn string
	}{
		{name: "user by e-mail",
			call: func() (any, error) { return rc.UserByEmail(ctx, "ben.okafor@acme-retail.example") },
			want: "user:default/ben.okafor"},
		{name: "unknown e-mail",
			call: func() (any, error) { return rc.UserByEmail(ctx, "nobody@acme-retail.example") },
			err:  review.ErrNotInCatalog},
		{name: "e-mail that would alter the filter",
			call:  func() (any, error) { return rc.UserByEmail(ctx, "a@b.example,kind=group") },
			errIn: "may not contain"},
		{name: "a user's groups, as the server resolves them",
			call: func() (any, error) { return rc.OwnershipRefs(ctx, "user:default/ben.okafor") },
			want: []string{"user:default/ben.okafor", "group:default/acme", "group:default/engineering", "group:default/team-checkout"}},
		{name: "a user without kind and namespace",
			call: func() (any, error) { return rc.OwnershipRefs(ctx, "ben.okafor") },
			want: []string{"user:default/ben.okafor", "group:default/acme", "group:default/engineering", "group:default/team-checkout"}},
		{name: "unknown user",
			call: func() (any, error) { return rc.OwnershipRefs(ctx, "user:default/nobody") },
			err:  review.ErrNotInCatalog},
		{name: "a group and its parents",
			call: func() (any, error) { return rc.GroupRefs(ctx, "group:default/team-checkout") },
			want: []string{"group:default/team-checkout", "group:default/acme", "group:default/engineering"}},
		{name: "unknown group",
			call: func() (any, error) { return rc.GroupRefs(ctx, "group:default/nobody") },
			err:  review.ErrNotInCatalog},
		{name: "invalid group ref",
			call:  func() (any, error) { return rc.GroupRefs(ctx, "group:default/a,kind=user") },
			errIn: "invalid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.call()
			switch {
			case tc.err != nil || tc.errIn != "":
				if err == nil || (tc.err != nil && !errors.Is(err, tc.err)) || !strings.Contains(err.Error(), tc.errIn) {
					t.Fatalf("err = %v, want %v %q", err, tc.err, tc.errIn)
				}
			case err != nil:
				t.Fatal(err)
			default:
				if s, ok := tc.want.(string); ok && got != s {
					t.Errorf("got %v, want %v", got, s)
				}
				if l, ok := tc.want.([]string); ok && !slices.Equal(got.([]string), l) {
					t.Errorf("got %v, want %v", got, l)
				}
			}
		})
	}

	e, err := rc.Entity(ctx, "component:default/checkout-service")
	if err != nil || e == nil || e["kind"] != "Component" {
		t.Errorf("Entity = %v, %v", e, err)
	}
	if e, err := rc.Entity(ctx, "component:default/zz-no-such-entity"); e != nil || err != nil {
		t.Errorf("missing entity = %v, %v; want nil, nil", e, err)
	}
}

package catalog

import (
	"errors"
	"strings"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/policy/filter"
)

func TestParseRef(t *testing.T) {
	cases := []struct {
		in, defKind string
		want        string
		err         bool
	}{
		{"component:default/orders", "", "component:default/orders", false},
		{"Component:Default/Orders", "", "component:default/Orders", false},
		{"orders", "component", "component:default/orders", false},
		{"team-a", "group", "group:default/team-a", false},
		{"platform/team-a", "group", "group:platform/team-a", false},
		{"api:payments-api", "", "api:default/payments-api", false},
		{"  component:default/x  ", "", "component:default/x", false},
		{"orders", "", "", true},
		{"", "component", "", true},
		{"component:default/", "", "", true},
		{"component:/x", "", "", true},
		{":default/x", "", "", true},
		{"component:default/a,kind=user", "", "", true},
		{"component:default/a=b", "", "", true},
		{"component:default/a/b", "", "", true},
		{"comp onent:default/x", "", "", true},
		{"component:def ault/x", "", "", true},
		{"component:default/-x", "", "", true},
		{"component:default/x..y", "", "", true},
		{"component:default/" + string(make([]byte, 64)), "", "", true},
		{"component:default/%2C", "", "", true},
		{"1kind:default/x", "", "", true},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			r, err := ParseRef(tc.in, tc.defKind)
			if tc.err {
				if !errors.Is(err, ErrInvalidRef) {
					t.Fatalf("ParseRef(%q) = %v, %v; want ErrInvalidRef", tc.in, r, err)
				}
				return
			}
			if err != nil || r.String() != tc.want {
				t.Fatalf("ParseRef(%q) = %q, %v; want %q", tc.in, r.String(), err, tc.want)
			}
		})
	}
	a, _ := ParseRef("Component:default/X", "")
	b, _ := ParseRef("component:DEFAULT/x", "")
	if !a.Equal(b) {
		t.Error("refs should compare case-insensitively")
	}
}

func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"component:default/x", "x", "a:b/c", "a,b=c", ":/", "user:default/jane.doe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s, "component")
		if err != nil {
			return
		}
		// A parsed ref can always be placed in a filter value safely.
		if err := filter.CheckValue(r.String()); err != nil {
			t.Fatalf("ParseRef(%q) = %q which is not a safe filter value: %v", s, r.String(), err)
		}
	})
}

// TestRefStringLowersLikeToLower checks String against strings.ToLower of
// the kind and namespace, ASCII or not.
func TestRefStringLowersLikeToLower(t *testing.T) {
	for _, r := range []Ref{{}, {"Component", "Default", "My-Service"}, {"API", "platform", "x"}, {"KİND", "NÄMESPACE", "Ñame"}, {"a\xffB", "\u0130x", "n"}} {
		want := strings.ToLower(r.Kind) + ":" + strings.ToLower(r.Namespace) + "/" + r.Name
		if got := r.String(); got != want {
			t.Errorf("%#v.String() = %q, want %q", r, got, want)
		}
	}
}

// TestNewRefKeepsPartsApart: parts that a joined string would re-split
// ("x/y" as a name, "a:b" as a kind) are refused, not re-read.
func TestNewRefKeepsPartsApart(t *testing.T) {
	r, err := NewRef("Component", "", "checkout")
	if err != nil || r.String() != "component:default/checkout" {
		t.Fatalf("NewRef = %v, %v", r, err)
	}
	for _, p := range [][3]string{{"component", "default", "x/y"}, {"a:b", "default", "x"}, {"component", "a/b", "x"}, {"component", "default", ""}, {"", "default", "x"}} {
		if r, err := NewRef(p[0], p[1], p[2]); !errors.Is(err, ErrInvalidRef) {
			t.Errorf("NewRef(%q, %q, %q) = %v, %v; want ErrInvalidRef", p[0], p[1], p[2], r, err)
		}
	}
}

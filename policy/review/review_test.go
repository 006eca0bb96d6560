package review

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/policy"
	"github.com/backstage-mcp/backstage-mcp/policy/policyfile"
)

// fakeCatalog is an in-memory Catalog: entities by ref, users' and groups'
// ownership as given.
type fakeCatalog struct {
	entities []map[string]any
	emails   map[string]string
	users    map[string][]string
	groups   map[string][]string
	fail     error
}

func entity(kind, ns, name, owner string) map[string]any {
	e := map[string]any{"kind": kind, "metadata": map[string]any{"name": name, "namespace": ns}}
	if owner != "" {
		e["relations"] = []any{map[string]any{"type": "ownedBy", "targetRef": owner}}
	}
	return e
}

func (f *fakeCatalog) Entities(_ context.Context, yield func(map[string]any) bool) error {
	if f.fail != nil {
		return f.fail
	}
	for _, e := range f.entities {
		if !yield(e) {
			return nil
		}
	}
	return nil
}

func (f *fakeCatalog) Entity(_ context.Context, ref string) (map[string]any, error) {
	for _, e := range f.entities {
		md := e["metadata"].(map[string]any)
		if strings.EqualFold(fmt.Sprintf("%s:%s/%s", e["kind"], md["namespace"], md["name"]), ref) {
			return e, nil
		}
	}
	return nil, f.fail
}

func (f *fakeCatalog) UserByEmail(_ context.Context, email string) (string, error) {
	if ref, ok := f.emails[email]; ok {
		return ref, nil
	}
	return "", ErrNotInCatalog
}

func (f *fakeCatalog) OwnershipRefs(_ context.Context, user string) ([]string, error) {
	if refs, ok := f.users[user]; ok {
		return refs, nil
	}
	return nil, ErrNotInCatalog
}

func (f *fakeCatalog) GroupRefs(_ context.Context, group string) ([]string, error) {
	if refs, ok := f.groups[group]; ok {
		return refs, nil
	}
	return nil, ErrNotInCatalog
}

func org() *fakeCatalog {
	return &fakeCatalog{
		entities: []map[string]any{
			entity("Component", "default", "checkout", "group:default/team-a"),
			entity("Component", "default", "search", "group:default/team-b"),
			entity("Component", "default", "billing", "user:default/jane"),
			entity("API", "default", "checkout-api", "group:default/dept"),
			entity("Group", "default", "team-a", ""),
		},
		emails: map[string]string{"jane@example.com": "user:default/jane"},
		users:  map[string][]string{"user:default/jane": {"user:default/jane", "group:default/team-a"}},
		groups: map[string][]string{"group:default/team-a": {"group:default/team-a", "group:default/dept"}},
	}
}

const ownersPolicy = `version: 1
scopes:
  "mcp:catalog": ["catalog:read"]
  "mcp:apis": ["catalog:api-definitions"]
roles:
  - name: owners
    bind: { users: ["user:default/jane"], backstageGroups: ["group:default/team-a"] }
    tools: ["catalog:read"]
    entities:
      allow:
        - IS_ENTITY_OWNER: { claims: [$ownershipRefs] }
    fieldMasks:
      - kinds: [Component, api]
        fields: ["spec.owner", "spec.owner"]
  - name: ghosts
    bind: { users: ["user:default/ghost"], backstageGroups: ["group:default/gone"] }
    tools: ["whoami"]
  - name: all
    bind: { authenticated: true }
    tools: ["catalog:read", "catalog:api-definitions", "whoami"]
    entities:
      allow:
        - IS_ENTITY_KIND: { kinds: [component, api, group] }
`

func parse(t *testing.T, src string) (*policy.Policy, policy.Document) {
	t.Helper()
	p, doc, err := policyfile.Parse([]byte(src), "policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return p, doc
}

func TestGraph(t *testing.T) {
	_, doc := parse(t, ownersPolicy)
	rep, err := Graph(context.Background(), doc, []byte(ownersPolicy), org(), 100)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Version != ReportVersion || len(rep.Policy) != 16 || rep.Catalog.Entities != 5 || rep.Catalog.Truncated {
		t.Fatalf("report head = %+v", rep)
	}
	if want := map[string]int{"component": 3, "api": 1, "group": 1}; !mapsEqual(rep.Catalog.Kinds, want) {
		t.Errorf("kinds = %v, want %v", rep.Catalog.Kinds, want)
	}
	roles := map[string]Role{}
	for _, r := range rep.Roles {
		roles[r.Name] = r
	}
	cases := []struct {
		role     string
		entities map[string]int
		masks    []string
		every    bool
		owner    bool
		subjects int
		notes    []string
	}{
		// jane owns billing and, through team-a, checkout; a member of
		// team-a also owns through dept: the API.
		{"owners", map[string]int{"component": 2, "api": 1, "group": 0}, []string{"api,component: spec.owner"}, false, true, 2, []string{"each holder also sees what they own"}},
		{"ghosts", map[string]int{"component": 0, "api": 0, "group": 0}, []string{}, false, false, 2,
			[]string{"user:default/ghost is not in the catalog", "group:default/gone is not in the catalog"}},
		{"all", map[string]int{"component": 3, "api": 1, "group": 1}, []string{}, true, false, 1, nil},
	}
	for _, tc := range cases {
		t.Run(tc.role, func(t *testing.T) {
			r, ok := roles[tc.role]
			if !ok {
				t.Fatalf("no role %s in %+v", tc.role, rep.Roles)
			}
			if !mapsEqual(r.Entities, tc.entities) || !slices.Equal(r.Masks, tc.masks) || r.ReachesEverything != tc.every || r.OwnerScoped != tc.owner || len(r.Subjects) != tc.subjects {
				t.Errorf("role = %+v", r)
			}
			sum := 0
			for _, n := range r.Entities {
				sum += n
			}
			if r.Visible != sum {
				t.Errorf("visible %d, sum of kinds %d", r.Visible, sum)
			}
			for _, n := range tc.notes {
				if !strings.Contains(strings.Join(r.Notes, "\n"), n) {
					t.Errorf("notes %q lack %q", r.Notes, n)
				}
			}
		})
	}
	text := rep.String("p.yaml")
	for _, frag := range []string{"catalog: 5 entities", "ROLE", "owners", "2/3", "EVERYTHING", "OWNER-SCOPED"} {
		if !strings.Contains(text, frag) {
			t.Errorf("table lacks %q:\n%s", frag, text)
		}
	}
}

func TestGraphBoundAndErrors(t *testing.T) {
	_, doc := parse(t, ownersPolicy)
	rep, err := Graph(context.Background(), doc, nil, org(), 2)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Catalog.Truncated || rep.Catalog.Entities != 2 {
		t.Errorf("bounded read: %+v", rep.Catalog)
	}
	if !strings.Contains(strings.Join(rep.Roles[0].Notes, "|"), "read only up to 2 entities") {
		t.Errorf("notes %v", rep.Roles[0].Notes)
	}
	down := org()
	down.fail = errors.New("connection refused")
	if _, err := Graph(context.Background(), doc, nil, down, 10); err == nil || !strings.Contains(err.Error(), "read the catalog: connection refused") {
		t.Errorf("err = %v", err)
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestCompare(t *testing.T) {
	base := func() *Report {
		return &Report{Version: 1, Policy: "aaaa", Catalog: Counts{Entities: 3, Kinds: map[string]int{"api": 3}},
			Roles: []Role{{Name: "r", Tools: []string{"whoami"}, Entities: map[string]int{"api": 1}, Masks: []string{"*: spec"}}}}
	}
	cases := []struct {
		name               string
		change             func(r *Report)
		widened, narrowed  []string
		catalog            []string
		unchangedPolicyMsg bool
	}{
		{"nothing", func(*Report) {}, nil, nil, nil, true},
		{"tool added, mask removed", func(r *Report) { r.Roles[0].Tools = []string{"a", "whoami"}; r.Roles[0].Masks = nil },
			[]string{"role r: tool a added", `role r: field mask "*: spec" removed`}, nil, nil, true},
		{"counts down, role removed, new role", func(r *Report) {
			r.Policy = "bbbb"
			r.Roles[0].Entities["api"] = 0
			r.Roles[0].Name = "s"
		}, []string{"role s: new role (tools whoami; 0 entities visible)"}, []string{"role r: removed"}, nil, false},
		{"catalog grew, role reaches everything", func(r *Report) {
			r.Catalog = Counts{Entities: 4, Kinds: map[string]int{"api": 4}}
			r.Roles[0].Entities["api"] = 4
			r.Roles[0].ReachesEverything = true
		}, []string{"role r: api 1 → 4 (+3)", "role r: now reaches EVERYTHING"}, nil, []string{"entities 3 → 4", "api 3 → 4"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cur := base()
			tc.change(cur)
			d := Compare(base(), cur)
			if !slices.Equal(d.Widened, append([]string{}, tc.widened...)) || !slices.Equal(d.Narrowed, append([]string{}, tc.narrowed...)) || !slices.Equal(d.Catalog, append([]string{}, tc.catalog...)) {
				t.Errorf("diff = %+v", d)
			}
			out := d.String()
			if strings.Contains(out, "policy: unchanged") != tc.unchangedPolicyMsg {
				t.Errorf("policy line wrong:\n%s", out)
			}
			if !strings.Contains(out, fmt.Sprintf("%d widened, %d narrowed", len(tc.widened), len(tc.narrowed))) {
				t.Errorf("summary wrong:\n%s", out)
			}
		})
	}
}

func TestExplain(t *testing.T) {
	pol, _ := parse(t, ownersPolicy)
	billing := "component:default/billing"
	cases := []struct {
		name    string
		cat     Catalog
		q       Question
		allowed bool
		notes   []string
		err     string
	}{
		{"e-mail resolved, groups resolved, own entity", org(),
			Question{Email: "jane@example.com", Scopes: []string{"mcp:catalog"}, Tool: "catalog_get_entity", EntityRef: billing}, true,
			[]string{"entity component:default/billing fetched", "jane@example.com resolved to user:default/jane", "groups of user:default/jane resolved in the catalog (memberOf, then childOf): group:default/team-a"}, ""},
		{"explicit ownership is not looked up", org(),
			Question{UserRef: "user:default/bob", OwnershipRefs: []string{"group:default/team-b"}, Scopes: []string{"mcp:catalog"}, EntityRef: "component:default/search"}, true,
			[]string{"entity component:default/search fetched"}, ""},
		{"unknown e-mail", org(), Question{Email: "nobody@example.com", Tool: "whoami"}, false,
			[]string{"no User entity has spec.profile.email=nobody@example.com"}, ""},
		{"unknown user", org(), Question{UserRef: "user:default/ghost", Tool: "whoami", Scopes: []string{"mcp:catalog"}}, true,
			[]string{"user:default/ghost is not in the catalog: no groups resolved"}, ""},
		{"offline e-mail", nil, Question{Email: "jane@example.com", Tool: "whoami"}, false,
			[]string{"offline, --email is not resolved"}, ""},
		{"offline entity ref", nil, Question{EntityRef: billing}, false, nil, "needs the catalog"},
		{"missing entity", org(), Question{EntityRef: "component:default/nope"}, false, nil, "is not in the catalog"},
		{"catalog down", &fakeCatalog{fail: errors.New("boom")}, Question{EntityRef: billing}, false, nil, "could not fetch component:default/billing from Backstage: boom"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Explain(context.Background(), pol, tc.cat, tc.q)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.Explanation.Allowed != tc.allowed {
				t.Errorf("allowed = %v, want %v:\n%s", a.Explanation.Allowed, tc.allowed, a.Explanation.String())
			}
			if !slices.Equal(a.Notes, a.Notes[:len(tc.notes)]) || len(a.Notes) != len(tc.notes) {
				t.Fatalf("notes %q, want %d like %q", a.Notes, len(tc.notes), tc.notes)
			}
			for i, n := range tc.notes {
				if !strings.Contains(a.Notes[i], n) {
					t.Errorf("note %d = %q, want %q", i, a.Notes[i], n)
				}
			}
		})
	}
}

func TestQuestionNeedsCatalog(t *testing.T) {
	cases := []struct {
		q      Question
		need   bool
		lookup string
	}{
		{Question{Tool: "whoami"}, false, "the groups of "},
		{Question{EntityRef: "api:default/x", Email: "a@b"}, true, "api:default/x"},
		{Question{Email: "a@b"}, true, "a@b"},
		{Question{Email: "a@b", UserRef: "user:default/a", OwnershipRefs: []string{"group:default/g"}}, false, "a@b"},
		{Question{UserRef: "user:default/a"}, true, "the groups of user:default/a"},
		{Question{Anonymous: true, Email: "a@b"}, false, "a@b"},
	}
	for _, tc := range cases {
		if tc.q.NeedsCatalog() != tc.need || tc.q.Lookup() != tc.lookup {
			t.Errorf("%+v: NeedsCatalog %v, Lookup %q", tc.q, tc.q.NeedsCatalog(), tc.q.Lookup())
		}
	}
}

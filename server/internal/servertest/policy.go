package servertest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/backstage-mcp/backstage-mcp/policy"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
)

// TwoTeamsPolicy gives each team what it owns plus every group. The
// checkout team may also read people (without their e-mail) and API
// definitions; the fulfillment team may not, so its grant cannot be pushed
// down exactly (User entities are filtered after fetch).
const TwoTeamsPolicy = `version: 1
scopes:
  "catalog.read": ["catalog:read"]
  "catalog.apis": ["catalog:api-definitions"]
  "catalog.people": ["catalog:read:users"]
roles:
  - name: checkout
    bind: { backstageGroups: ["group:default/team-checkout"] }
    tools: ["catalog:read", "catalog:api-definitions", "catalog:read:users"]
    entities:
      allow:
        - IS_ENTITY_OWNER: { claims: [$ownershipRefs] }
        - IS_ENTITY_KIND: { kinds: [group, user] }
    fieldMasks:
      - kinds: [user]
        fields: ["spec.profile.email"]
  - name: fulfillment
    bind: { backstageGroups: ["group:default/team-fulfillment"] }
    tools: ["catalog_search_entities", "catalog_get_entity", "catalog_get_relations", "catalog_find_owner", "catalog_list_facets", "whoami"]
    entities:
      allow:
        - IS_ENTITY_OWNER: { claims: [$ownershipRefs] }
        - IS_ENTITY_KIND: { kinds: [group] }
`

// TwoTeamsScopes are the agent token's scopes: every scope of TwoTeamsPolicy.
var TwoTeamsScopes = []string{"catalog.read", "catalog.apis", "catalog.people"}

// Team is one user of the two-teams scenario, and what TwoTeamsPolicy
// must give them, written independently of the policy engine.
type Team struct {
	// User is the user's entity ref; Group their team's group ref.
	User, Group string
	// OtherTeam is the other team's group name, for owner filters.
	OtherTeam string
	// Tools is what tools/list must show, sorted.
	Tools []string
	// Own must be visible, Hidden must not.
	Own, Hidden []string
	// Exact is whether the grant can be pushed down to Backstage exactly
	// (then search shows totalItems).
	Exact bool
	// SeesUsers is whether the team may read User entities.
	SeesUsers bool
}

// TwoTeams are ben (team-checkout) and farah (team-fulfillment) of the
// demo catalog.
var TwoTeams = []Team{
	{User: "user:default/ben.okafor", Group: "group:default/team-checkout", OtherTeam: "team-fulfillment",
		Tools:     []string{"catalog_find_dependents", "catalog_find_owner", "catalog_get_api_definition", "catalog_get_entity", "catalog_get_relations", "catalog_list_changes", "catalog_list_facets", "catalog_search_entities", "whoami"},
		Own:       []string{"component:default/checkout-service", "api:default/payments-api", "resource:default/payments-db", "user:default/farah.haddad", "group:default/team-fulfillment"},
		Hidden:    []string{"component:default/orders-service", "api:default/orders-api", "resource:default/orders-db", "component:platform/log-shipper"},
		Exact:     true,
		SeesUsers: true},
	{User: "user:default/farah.haddad", Group: "group:default/team-fulfillment", OtherTeam: "team-checkout",
		Tools:  []string{"catalog_find_owner", "catalog_get_entity", "catalog_get_relations", "catalog_list_facets", "catalog_search_entities", "whoami"},
		Own:    []string{"component:default/orders-service", "api:default/orders-api", "resource:default/orders-db", "group:default/team-checkout"},
		Hidden: []string{"component:default/checkout-service", "api:default/payments-api", "user:default/ben.okafor", "user:default/farah.haddad", "component:platform/log-shipper"}},
}

// Session is one user's MCP session and the oracle of what they may see.
type Session struct {
	Client *client.Client
	// All is every entity as the catalog serves it, read directly.
	All []map[string]any
	// Visible holds the lowercased refs the grant lets the user see.
	Visible map[string]bool
	// Exact is the grant's Exact.
	Exact bool
	// UserMails are the e-mails of every User entity (masked or hidden).
	UserMails []string
}

// NewSession is a session on c whose oracle is g applied to all.
func NewSession(c *client.Client, all []map[string]any, g *policy.Grant) *Session {
	s := &Session{Client: c, All: all, Visible: map[string]bool{}, Exact: g.Exact()}
	for _, e := range all {
		if g.Entity(e).Allowed {
			s.Visible[Ref(e)] = true
		}
		if strings.EqualFold(str(e, "kind"), "user") {
			if m := str(e, "spec", "profile", "email"); m != "" {
				s.UserMails = append(s.UserMails, m)
			}
		}
	}
	return s
}

// Ref is the lowercased kind:namespace/name of an entity, computed here
// and not by the code under test.
func Ref(e map[string]any) string {
	ns := str(e, "metadata", "namespace")
	if ns == "" {
		ns = "default"
	}
	return strings.ToLower(str(e, "kind") + ":" + ns + "/" + str(e, "metadata", "name"))
}

// str walks a decoded entity along keys to a string ("" when absent).
func str(e map[string]any, keys ...string) string {
	var cur any = e
	for _, k := range keys {
		m, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = m[k]
	}
	s, _ := cur.(string)
	return s
}

// Call runs a tool and returns its structured content (nil on a tool
// error), its text and whether it was a tool error. A protocol error fails
// the test.
func (s *Session) Call(t *testing.T, tool, args string) (map[string]any, string, bool) {
	t.Helper()
	m, text, isErr, err := s.CallErr(tool, args)
	if err != nil {
		t.Fatalf("%s(%s): protocol error %v", tool, args, err)
	}
	return m, text, isErr
}

// CallErr is Call returning a protocol error instead of failing, for tests
// that compare protocol errors.
func (s *Session) CallErr(tool, args string) (m map[string]any, text string, isErr bool, err error) {
	res, err := callTool(s.Client, tool, args)
	if err != nil {
		return nil, "", false, err
	}
	text = Text(res)
	if res.IsError {
		return nil, text, true, nil
	}
	b, _ := json.Marshal(res.StructuredContent)
	_ = json.Unmarshal(b, &m)
	return m, text, false, nil
}

// MustCall is Call for calls that must succeed.
func (s *Session) MustCall(t *testing.T, tool, args string) map[string]any {
	t.Helper()
	m, text, isErr := s.Call(t, tool, args)
	if isErr {
		t.Fatalf("%s(%s): %s", tool, args, text)
	}
	return m
}

// HandedOut lists the refs of the entities a tool result hands out.
func HandedOut(tool string, m map[string]any) []string {
	var out []string
	var walk func(v any, key string)
	walk = func(v any, key string) {
		switch x := v.(type) {
		case map[string]any:
			if _, full := x["metadata"]; full && x["kind"] != nil {
				out = append(out, Ref(x))
			}
			for k, c := range x {
				walk(c, k)
			}
		case []any:
			for _, c := range x {
				walk(c, key)
			}
		case string:
			switch {
			case key == "ref", key == "root", key == "from", key == "to", key == "entity",
				key == "refs", // a summary's related entities
				(key == "parentChain" || key == "children" || key == "memberOf") && tool == "catalog_find_owner",
				(key == "on" || key == "through" || key == "owner") && tool == "catalog_find_dependents":
				out = append(out, strings.ToLower(x))
			}
		}
	}
	walk(m, "")
	if tool == "catalog_find_owner" && m["ownerKind"] != nil {
		if o, ok := m["owner"].(string); ok && o != "" {
			out = append(out, strings.ToLower(o))
		}
	}
	return out
}

// CheckResult fails when a result hands out an entity the oracle hides or
// carries a User e-mail.
func (s *Session) CheckResult(t *testing.T, tool, args string, m map[string]any, text string) {
	t.Helper()
	for _, r := range HandedOut(tool, m) {
		if !s.Visible[r] {
			t.Errorf("%s(%s) hands out hidden %s", tool, args, r)
		}
	}
	if tool == "whoami" {
		return // the caller's own identity, not catalog data
	}
	b, _ := json.Marshal(m)
	for _, mail := range s.UserMails {
		if strings.Contains(string(b), mail) || strings.Contains(text, mail) {
			t.Errorf("%s(%s) carries the masked e-mail %s", tool, args, mail)
		}
	}
}

// CheckTeam proves, through every tool, that the session's user sees
// exactly what TwoTeamsPolicy gives team: the granted tools only, every
// visible entity and no hidden one, hidden entities answered like missing
// ones, counts and facets over the visible set only, masked e-mails never.
func CheckTeam(t *testing.T, s *Session, team Team) {
	for _, r := range team.Own {
		if !s.Visible[r] {
			t.Fatalf("oracle: %s should be visible", r)
		}
	}
	for _, r := range team.Hidden {
		if s.Visible[r] {
			t.Fatalf("oracle: %s should be hidden", r)
		}
	}
	if s.Exact != team.Exact {
		t.Fatalf("oracle: Grant.Exact = %v, want %v", s.Exact, team.Exact)
	}

	t.Run("tools/list shows only granted tools", func(t *testing.T) {
		res, err := s.Client.ListTools(context.Background(), mcp.ListToolsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, tl := range res.Tools {
			names = append(names, tl.Name)
		}
		slices.Sort(names)
		if !slices.Equal(names, team.Tools) {
			t.Errorf("tools/list = %v, want %v", names, team.Tools)
		}
	})

	t.Run("get_entity: every entity, hidden is not found like missing", func(t *testing.T) {
		for _, e := range s.All {
			ref := Ref(e)
			args := `{"ref":"` + ref + `","detail":"full"}`
			m, text, isErr := s.Call(t, "catalog_get_entity", args)
			if s.Visible[ref] {
				if isErr {
					t.Errorf("%s: visible but %q", ref, text)
					continue
				}
				s.CheckResult(t, "catalog_get_entity", args, m, text)
				continue
			}
			missing := strings.SplitN(ref, "/", 2)[0] + "/zz-no-such-entity"
			_, mText, mIsErr := s.Call(t, "catalog_get_entity", `{"ref":"`+missing+`","detail":"full"}`)
			if !isErr || !mIsErr || strings.Replace(text, ref, "R", 1) != strings.Replace(mText, missing, "R", 1) {
				t.Errorf("hidden %s answered %q; a missing entity answers %q", ref, text, mText)
			}
		}
	})

	t.Run("search: paging yields exactly the visible set", func(t *testing.T) {
		got := map[string]bool{}
		m := s.MustCall(t, "catalog_search_entities", `{"limit":7}`)
		total, hasTotal := m["totalItems"]
		firstComplete := m["nextCursor"] == nil
		for i := 0; ; i++ {
			s.CheckResult(t, "catalog_search_entities", "page", m, "")
			for _, it := range m["items"].([]any) {
				r := strings.ToLower(it.(map[string]any)["ref"].(string))
				if got[r] {
					t.Errorf("%s twice", r)
				}
				got[r] = true
			}
			cur, _ := m["nextCursor"].(string)
			if cur == "" || i > 100 {
				break
			}
			m = s.MustCall(t, "catalog_search_entities", `{"cursor":"`+cur+`","limit":7}`)
		}
		for r := range s.Visible {
			if !got[r] {
				t.Errorf("visible %s never returned", r)
			}
		}
		if len(got) != len(s.Visible) {
			t.Errorf("paged %d entities, the policy allows %d", len(got), len(s.Visible))
		}
		// Backstage's count when it counts exactly the visible entities;
		// otherwise only a complete first page carries its own count.
		if hasTotal != (s.Exact || firstComplete) {
			t.Errorf("totalItems present = %v, Grant.Exact = %v, complete first page = %v", hasTotal, s.Exact, firstComplete)
		}
		if hasTotal && int(total.(float64)) != len(s.Visible) {
			t.Errorf("totalItems = %v, visible = %d", total, len(s.Visible))
		}
		// The other team's entities, another namespace: groups only.
		for _, args := range []string{
			`{"owner":"` + team.OtherTeam + `"}`,
			`{"kind":"component","owner":"` + team.OtherTeam + `"}`,
			`{"namespace":"platform"}`,
		} {
			m := s.MustCall(t, "catalog_search_entities", args)
			s.CheckResult(t, "catalog_search_entities", args, m, "")
			for _, it := range m["items"].([]any) {
				if r := it.(map[string]any)["ref"].(string); !strings.HasPrefix(r, "group:") {
					t.Errorf("%s returned %s", args, r)
				}
			}
		}
	})

	t.Run("relations: hidden entities are neither nodes nor edge ends", func(t *testing.T) {
		for _, e := range s.All {
			ref := Ref(e)
			if !s.Visible[ref] {
				continue
			}
			args := `{"ref":"` + ref + `","direction":"both","depth":2}`
			m := s.MustCall(t, "catalog_get_relations", args)
			s.CheckResult(t, "catalog_get_relations", args, m, "")
			nodes := map[string]bool{}
			for _, n := range m["nodes"].([]any) {
				nodes[strings.ToLower(n.(map[string]any)["ref"].(string))] = true
			}
			for _, ed := range m["edges"].([]any) {
				em := ed.(map[string]any)
				if !nodes[strings.ToLower(em["from"].(string))] || !nodes[strings.ToLower(em["to"].(string))] {
					t.Errorf("%s: edge %v leaves the node set", ref, em)
				}
			}
		}
		for _, r := range team.Hidden {
			if _, text, isErr := s.Call(t, "catalog_get_relations", `{"ref":"`+r+`"}`); !isErr || !strings.Contains(text, "not found") {
				t.Errorf("relations of hidden %s: %q", r, text)
			}
		}
	})

	t.Run("find_owner: owners, members and parents only if visible", func(t *testing.T) {
		for _, r := range team.Own {
			args := `{"ref":"` + r + `"}`
			m, text, isErr := s.Call(t, "catalog_find_owner", args)
			if isErr {
				t.Errorf("%s: %s", r, text)
				continue
			}
			s.CheckResult(t, "catalog_find_owner", args, m, text)
		}
		m := s.MustCall(t, "catalog_find_owner", `{"ref":"`+team.Own[0]+`"}`)
		members, _ := m["members"].([]any)
		if team.SeesUsers != (len(members) > 0) {
			t.Errorf("members %v; the team may see users: %v", members, team.SeesUsers)
		}
		for _, p := range members {
			if p.(map[string]any)["email"] != nil {
				t.Errorf("member e-mail not masked: %v", p)
			}
		}
	})

	t.Run("facets count only visible entities", func(t *testing.T) {
		for _, facet := range []string{"kind", "spec.type", "spec.lifecycle", "metadata.namespace", "spec.profile.email"} {
			args := `{"facet":"` + facet + `"}`
			m := s.MustCall(t, "catalog_list_facets", args)
			want := map[string]int{}
			for _, e := range s.All {
				// User e-mails are masked; groups' are not.
				if !s.Visible[Ref(e)] || (facet == "spec.profile.email" && strings.EqualFold(str(e, "kind"), "user")) {
					continue
				}
				v := str(e, strings.Split(facet, ".")...)
				if facet == "metadata.namespace" && v == "" {
					v = "default"
				}
				if v != "" {
					want[strings.ToLower(v)]++
				}
			}
			got := map[string]int{}
			for _, v := range m["values"].([]any) {
				vm := v.(map[string]any)
				got[strings.ToLower(vm["value"].(string))] += int(vm["count"].(float64))
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("facet %s = %v, want %v", facet, got, want)
			}
		}
	})

	t.Run("api definitions: hidden is not found like missing", func(t *testing.T) {
		if !slices.Contains(team.Tools, "catalog_get_api_definition") {
			return
		}
		m := s.MustCall(t, "catalog_get_api_definition", `{"ref":"api:default/payments-api"}`)
		if d, _ := m["definition"].(string); len(d) < 100 {
			t.Errorf("definition = %v", m)
		}
		_, hidden, hErr := s.Call(t, "catalog_get_api_definition", `{"ref":"api:default/orders-api"}`)
		_, missing, mErr := s.Call(t, "catalog_get_api_definition", `{"ref":"api:default/zz-no-such-entity"}`)
		if !hErr || !mErr || strings.Replace(hidden, "orders-api", "R", 1) != strings.Replace(missing, "zz-no-such-entity", "R", 1) {
			t.Errorf("hidden API %q vs missing %q", hidden, missing)
		}
	})
}

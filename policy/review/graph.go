package review

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/backstage-mcp/backstage-mcp/policy"
)

// ReportVersion is the format version of the JSON report.
const ReportVersion = 1

// SyntheticUser is the user ref of the representative subjects that stand
// for "some member" of a role. The '~' makes it an invalid Backstage name,
// so it can never own or be any real entity.
const SyntheticUser = "user:default/~representative"

// Report is the JSON form of `policy graph --json`: stable (sorted, no
// timestamps) so that two reports of the same policy over the same catalog
// are byte-identical and can be compared.
type Report struct {
	// Version is the report format, ReportVersion.
	Version int `json:"version"`
	// Policy is the short SHA-256 of the policy file.
	Policy string `json:"policy"`
	// Catalog counts the entities read from Backstage.
	Catalog Counts `json:"catalog"`
	// Tools lists every tool the policy knows.
	Tools []string `json:"tools"`
	// Roles holds one entry per role, in policy order.
	Roles []Role `json:"roles"`
}

// Counts counts the entities of the live catalog by kind (lowercase).
type Counts struct {
	Entities  int            `json:"entities"`
	Kinds     map[string]int `json:"kinds"`
	Truncated bool           `json:"truncated,omitempty"`
}

// Role is what one role, evaluated alone, gives its holders.
type Role struct {
	Name string `json:"name"`
	// Subjects describes the representative subjects the role was
	// evaluated for (see Graph).
	Subjects []string `json:"subjects"`
	// Tools are the tools the role reaches, after the agent-scope
	// intersection with a token carrying every mapped OAuth scope.
	Tools []string `json:"tools"`
	// Entities counts, per kind, the entities at least one representative
	// subject may see. Every catalog kind is listed, zeros included.
	Entities map[string]int `json:"entities"`
	// Visible is the sum of Entities.
	Visible int `json:"visible"`
	// Masks lists the role's field masks as "kinds: fields".
	Masks []string `json:"masks"`
	// ReachesEverything is set when the role reaches every tool and every
	// entity of every kind in the catalog.
	ReachesEverything bool `json:"reachesEverything"`
	// OwnerScoped is set when an allow rule depends on the holder's
	// ownership ($ownershipRefs, $currentUser): then the counts are those of
	// the representative subjects and real holders may see more.
	OwnerScoped bool `json:"ownerScoped,omitempty"`
	// Notes explains anything the reader must know to read the numbers.
	Notes []string `json:"notes,omitempty"`
}

// representative is one subject a role is evaluated for.
type representative struct {
	subject policy.Subject
	desc    string
}

// Graph evaluates every role of doc, each alone, against the catalog: which
// tools it reaches for an agent token carrying every OAuth scope of the
// policy, and how many entities of each kind its representative subjects
// may see (an entity counts when at least one of them may see it). The
// representative subjects of a role are: each bound user, with the groups
// the catalog gives them; for each bound Backstage group, a synthetic
// member (SyntheticUser) owning the group and its parents; for roles bound
// to anyone signed in, IdP groups, claims or agents, one synthetic user
// owning nothing; for anonymous roles, an unauthenticated caller. raw is
// the policy file (for its hash); at most maxEntities entities are read.
func Graph(ctx context.Context, doc policy.Document, raw []byte, cat Catalog, maxEntities int) (*Report, error) {
	full, err := policy.Compile(doc)
	if err != nil {
		return nil, fmt.Errorf("review: %w", err)
	}
	sum := sha256.Sum256(raw)
	rep := &Report{
		Version: ReportVersion,
		Policy:  hex.EncodeToString(sum[:8]),
		Catalog: Counts{Kinds: map[string]int{}},
		Tools:   full.Tools(),
		Roles:   []Role{},
	}
	var oauthScopes []string
	for s := range doc.Scopes {
		oauthScopes = append(oauthScopes, s)
	}
	sort.Strings(oauthScopes)

	type roleEval struct {
		grants []*policy.Grant
		out    *Role
	}
	evals := make([]roleEval, len(doc.Roles))
	for i, r := range doc.Roles {
		alone, err := policy.Compile(policy.Document{Version: doc.Version, Scopes: doc.Scopes, ToolScopes: doc.ToolScopes, Roles: []policy.Role{r}})
		if err != nil {
			return nil, fmt.Errorf("review: role %s: %w", r.Name, err)
		}
		reps, notes, err := representatives(ctx, cat, r.Bind, oauthScopes)
		if err != nil {
			return nil, fmt.Errorf("review: role %s: %w", r.Name, err)
		}
		gr := &Role{Name: r.Name, Subjects: []string{}, Tools: []string{}, Entities: map[string]int{}, Masks: masksOf(r), Notes: notes}
		tools := map[string]bool{}
		for _, rp := range reps {
			g := alone.Grant(rp.subject)
			if len(g.Roles()) == 0 {
				gr.Notes = append(gr.Notes, "representative subject "+rp.desc+" does not bind the role; it is not counted")
				continue
			}
			gr.Subjects = append(gr.Subjects, rp.desc)
			evals[i].grants = append(evals[i].grants, g)
			for _, t := range g.AllowedTools() {
				tools[t] = true
			}
		}
		for t := range tools {
			gr.Tools = append(gr.Tools, t)
		}
		sort.Strings(gr.Tools)
		gr.OwnerScoped = ownerScoped(r.Entities.Allow)
		if gr.OwnerScoped {
			gr.Notes = append(gr.Notes, "allow rules depend on the holder's ownership ($ownershipRefs/$currentUser): counts are those of the subjects above; each holder also sees what they own")
		}
		evals[i].out = gr
	}

	err = cat.Entities(ctx, func(e map[string]any) bool {
		if rep.Catalog.Entities >= maxEntities {
			rep.Catalog.Truncated = true
			return false
		}
		kind, _ := e["kind"].(string)
		kind = strings.ToLower(kind)
		if kind == "" {
			kind = "(none)"
		}
		rep.Catalog.Entities++
		rep.Catalog.Kinds[kind]++
		for _, ev := range evals {
			for _, g := range ev.grants {
				if g.Entity(e).Allowed {
					ev.out.Entities[kind]++
					ev.out.Visible++
					break
				}
			}
		}
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("review: read the catalog: %w", err)
	}
	for _, ev := range evals {
		gr := ev.out
		every := len(gr.Tools) == len(rep.Tools) && rep.Catalog.Entities > 0
		for k, n := range rep.Catalog.Kinds {
			if _, ok := gr.Entities[k]; !ok {
				gr.Entities[k] = 0
			}
			if gr.Entities[k] != n {
				every = false
			}
		}
		gr.ReachesEverything = every
		if rep.Catalog.Truncated {
			gr.Notes = append(gr.Notes, fmt.Sprintf("the catalog was read only up to %d entities", maxEntities))
		}
		rep.Roles = append(rep.Roles, *gr)
	}
	return rep, nil
}

// representatives returns the subjects a role with binding b is evaluated
// for (see Graph), resolving users and groups in the catalog.
func representatives(ctx context.Context, cat Catalog, b policy.Binding, oauthScopes []string) ([]representative, []string, error) {
	var reps []representative
	var notes []string
	agent, agentDesc := "", ""
	if len(b.Agents) > 0 {
		agent = b.Agents[0]
		agentDesc = " via agent " + agent
	}
	base := func(userRef string, owners []string) policy.Subject {
		return policy.Subject{UserRef: userRef, OwnershipRefs: owners, ClientID: agent, Scopes: oauthScopes, Authenticated: true}
	}
	if b.Anonymous {
		reps = append(reps, representative{subject: policy.Subject{}, desc: "anonymous caller"})
	}
	for _, u := range b.Users {
		refs, err := cat.OwnershipRefs(ctx, u)
		switch {
		case errors.Is(err, ErrNotInCatalog):
			notes = append(notes, u+" is not in the catalog: counted without groups")
			refs = []string{strings.ToLower(u)}
		case err != nil:
			return nil, nil, err
		}
		reps = append(reps, representative{subject: base(refs[0], refs), desc: fmt.Sprintf("%s (groups: %s)%s", refs[0], listOrNone(refs[1:]), agentDesc)})
	}
	for _, g := range b.BackstageGroups {
		chain, err := cat.GroupRefs(ctx, g)
		switch {
		case errors.Is(err, ErrNotInCatalog):
			notes = append(notes, g+" is not in the catalog: nobody can hold the role through it")
			chain = []string{strings.ToLower(g)}
		case err != nil:
			return nil, nil, err
		}
		owners := append([]string{SyntheticUser}, chain...)
		reps = append(reps, representative{subject: base(SyntheticUser, owners), desc: fmt.Sprintf("a member of %s (ownership: %s)%s", chain[0], strings.Join(chain, ", "), agentDesc)})
	}
	userSide := b.Authenticated || len(b.IdPGroups) > 0 || len(b.Claims) > 0
	if userSide || (len(b.Agents) > 0 && len(b.Users) == 0 && len(b.BackstageGroups) == 0) {
		s := base(SyntheticUser, []string{SyntheticUser})
		var parts []string
		switch {
		case b.Authenticated:
			parts = append(parts, "any signed-in user")
		case len(b.IdPGroups) > 0:
			s.IdPGroups = []string{b.IdPGroups[0]}
			parts = append(parts, "a user in IdP group "+b.IdPGroups[0])
		case len(b.Claims) > 0:
			s.Claims = map[string][]string{}
			names := make([]string, 0, len(b.Claims))
			for k := range b.Claims {
				names = append(names, k)
			}
			sort.Strings(names)
			for _, k := range names {
				if len(b.Claims[k]) > 0 {
					s.Claims[k] = []string{b.Claims[k][0]}
					parts = append(parts, k+"="+b.Claims[k][0])
				}
			}
			parts = []string{"a user with claims " + strings.Join(parts, ", ")}
		default:
			parts = append(parts, "any signed-in user")
		}
		reps = append(reps, representative{subject: s, desc: parts[0] + " owning nothing" + agentDesc})
	}
	return reps, notes, nil
}

// ownerScoped reports whether a condition list uses the holder's ownership.
func ownerScoped(cs []policy.Condition) bool {
	for _, c := range cs {
		if c.Rule == policy.RuleIsEntityOwner {
			vs, _ := c.Params["claims"].([]string)
			if vs == nil {
				if anys, ok := c.Params["claims"].([]any); ok {
					for _, a := range anys {
						if s, ok := a.(string); ok {
							vs = append(vs, s)
						}
					}
				}
			}
			for _, v := range vs {
				if v == policy.ClaimOwnershipRefs || v == policy.ClaimCurrentUser {
					return true
				}
			}
		}
		if ownerScoped(c.AllOf) || ownerScoped(c.AnyOf) || (c.Not != nil && ownerScoped([]policy.Condition{*c.Not})) {
			return true
		}
	}
	return false
}

// masksOf renders a role's field masks as sorted, distinct "kinds: fields"
// strings.
func masksOf(r policy.Role) []string {
	out := []string{}
	for _, m := range r.FieldMasks {
		kinds := "*"
		if len(m.Kinds) > 0 {
			ks := make([]string, len(m.Kinds))
			for i, k := range m.Kinds {
				ks[i] = strings.ToLower(k)
			}
			sort.Strings(ks)
			kinds = strings.Join(ks, ",")
		}
		for _, f := range m.Fields {
			out = append(out, kinds+": "+f)
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// listOrNone joins xs with ", ", or says "(none)".
func listOrNone(xs []string) string {
	if len(xs) == 0 {
		return "(none)"
	}
	return strings.Join(xs, ", ")
}

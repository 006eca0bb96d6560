package tools

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"github.com/mark3labs/mcp-go/mcp"
)

var ownerParams = []param{
	{name: "ref", typ: tString, desc: "e.g. component:default/orders-service, group:default/team-checkout."},
}

// MaxMembers caps the members listed for an owning group.
const MaxMembers = 50

// maxParentChain bounds the parent-group walk.
const maxParentChain = 8

// Person is a compact user entity.
type Person struct {
	Ref   string `json:"ref"`
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
}

// OwnerResult is the structured answer of catalog_find_owner.
type OwnerResult struct {
	Entity       string            `json:"entity"`
	Owner        string            `json:"owner"`
	OwnerKind    string            `json:"ownerKind,omitempty"`
	Title        string            `json:"title,omitempty"`
	Description  string            `json:"description,omitempty"`
	Email        string            `json:"email,omitempty"`
	Members      []Person          `json:"members,omitempty"`
	MembersTotal int               `json:"membersTotal,omitempty"`
	ParentChain  []string          `json:"parentChain,omitempty"`
	Children     []string          `json:"children,omitempty"`
	MemberOf     []string          `json:"memberOf,omitempty"`
	Links        []Link            `json:"links,omitempty"`
	Contacts     map[string]string `json:"contacts,omitempty"`
	// EntityContacts are the entity's own contacts (its alert channel,
	// on-call service), when it is not the owner itself.
	EntityContacts map[string]string `json:"entityContacts,omitempty"`
	// Self reports that the entity is a group or user: the answer is
	// about it, not about an owner.
	Self bool   `json:"self,omitempty"`
	Note string `json:"note,omitempty"`
}

// FindOwner is catalog_find_owner: who owns an entity and how to reach them.
func FindOwner(d *Deps) Tool {
	t := newTool("catalog_find_owner", "Who owns a catalog entity and how to reach them: the entity's own contacts (alert channel, on-call id), then the owning group or user "+
		"with e-mail, chat, on-call, links, members, parent and child groups. On a group or user: itself. "+
		"For \"who owns X\", \"who is on call for X\", \"who is in team Y\".", schema(ownerParams, "ref"), "Find entity owner")
	h := func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		_, e, res := d.rootEntity(ctx, req, ownerParams, "", nil)
		if res != nil {
			return res, nil
		}
		out := OwnerResult{Entity: e.ref, Owner: refField(e.m, "ownedBy", "owner", "group")}
		if k := str(e.m, "kind"); strings.EqualFold(k, "group") || strings.EqualFold(k, "user") {
			out.Owner, out.Self = e.ref, true
			if err := d.describeOwner(ctx, e, &out); err != nil {
				return toolError(err), nil
			}
			return result(out, out.text()), nil
		}
		out.EntityContacts = contacts(e.m)
		if out.Owner == "" {
			out.Note = "the entity names no owner that is in the catalog and visible to you"
			return result(out, out.text()), nil
		}
		oref, perr := catalog.ParseRef(out.Owner, "group")
		if perr != nil {
			out.Note = "the owner ref is not a valid entity ref"
			return result(out, e.ref+": owner "+out.Owner+" (invalid ref)"), nil //nolint:nilerr // reported in the result, not a protocol error
		}
		o, res := d.fetchEntity(ctx, oref)
		if res != nil {
			if res.IsError && strings.Contains(textOf(res), "not found") {
				out.Note = "the owner entity is not in the catalog or not visible to you"
				return result(out, e.ref+": owned by "+out.Owner+" (owner entity not found)"), nil
			}
			return res, nil
		}
		record(ctx, o)
		if err := d.pruneNames(ctx, []entity{o}); err != nil {
			return toolError(err), nil
		}
		if err := d.describeOwner(ctx, o, &out); err != nil {
			return toolError(err), nil
		}
		return withLinks(result(out, out.text()), link{ref: out.Owner, description: "owner"}), nil
	}
	return Tool{Tool: t, Handler: h, Answer: "The owner with title and e-mail, the entity's own contacts (on-call, chat), the owner's description, parent chain, contacts, links and members (with e-mail); on a group or user, that group or user itself.", Scope: ScopeRead}
}

// describeOwner fills what the answer says about an admitted, pruned group
// or user: names, e-mail, contacts, links, and for a group its members,
// parents and children, for a user the groups it belongs to.
func (d *Deps) describeOwner(ctx context.Context, o entity, out *OwnerResult) error {
	out.Owner = o.ref
	out.OwnerKind = str(o.m, "kind")
	out.Title = firstNonEmpty(str(o.m, "spec", "profile", "displayName"), str(o.m, "metadata", "title"))
	out.Description = clip(str(o.m, "metadata", "description"), maxDescription)
	out.Email = str(o.m, "spec", "profile", "email")
	out.Links = summarize(o).Links
	out.Contacts = contacts(o.m)
	switch {
	case strings.EqualFold(out.OwnerKind, "group"):
		if err := d.members(ctx, o, out); err != nil {
			return err
		}
		if err := d.parents(ctx, o, out); err != nil {
			return err
		}
		for _, r := range relations(o.m) {
			if r.typ == "parentOf" && len(out.Children) < MaxMembers {
				out.Children = append(out.Children, r.target)
			}
		}
	case strings.EqualFold(out.OwnerKind, "user"):
		for _, r := range relations(o.m) {
			if r.typ == "memberOf" && len(out.MemberOf) < MaxMembers {
				out.MemberOf = append(out.MemberOf, r.target)
			}
		}
	}
	return nil
}

func textOf(r *mcp.CallToolResult) string {
	for _, c := range r.Content {
		if t, ok := c.(mcp.TextContent); ok {
			return t.Text
		}
	}
	return ""
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// contactAnnotations are annotation keys that say how to reach an owner.
var contactAnnotations = []string{"slack.com/channel", "slack.com/channel-id", "pagerduty.com/service-id", "pagerduty.com/integration-key-name",
	"opsgenie.com/team", "backstage.io/email", "microsoft.com/email", "teams.microsoft.com/channel"}

func contacts(m map[string]any) map[string]string {
	ann, _ := get(m, "metadata", "annotations").(map[string]any)
	out := map[string]string{}
	for _, k := range contactAnnotations {
		if v, ok := ann[k].(string); ok && v != "" {
			out[k] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func (d *Deps) members(ctx context.Context, g entity, out *OwnerResult) error {
	var refs []string
	for _, r := range relations(g.m) {
		if r.typ == "hasMember" {
			refs = append(refs, r.target)
		}
	}
	if len(refs) == 0 {
		return nil
	}
	out.MembersTotal = len(refs)
	if len(refs) > MaxMembers {
		refs = refs[:MaxMembers]
	}
	raws, err := d.Catalog.GetByRefs(ctx, refs, nil)
	if err != nil {
		return err
	}
	for _, raw := range raws {
		if raw == nil {
			continue
		}
		e, ok, err := d.admit(ctx, raw)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		record(ctx, e)
		out.Members = append(out.Members, Person{
			Ref:   e.ref,
			Name:  firstNonEmpty(str(e.m, "spec", "profile", "displayName"), str(e.m, "metadata", "title")),
			Email: str(e.m, "spec", "profile", "email"),
		})
	}
	return nil
}

func (d *Deps) parents(ctx context.Context, g entity, out *OwnerResult) error {
	seen := map[string]bool{strings.ToLower(g.ref): true}
	cur := g
	for range maxParentChain {
		p := firstRelation(cur.m, "childOf")
		if p == "" || seen[strings.ToLower(p)] {
			return nil
		}
		seen[strings.ToLower(p)] = true
		raws, err := d.Catalog.GetByRefs(ctx, []string{p}, nil)
		if err != nil {
			return err
		}
		if len(raws) != 1 || raws[0] == nil {
			return nil
		}
		e, ok, err := d.admit(ctx, raws[0])
		if err != nil || !ok {
			return err
		}
		record(ctx, e)
		if err := d.pruneNames(ctx, []entity{e}); err != nil {
			return err
		}
		out.ParentChain = append(out.ParentChain, e.ref)
		cur = e
	}
	return nil
}

func (o OwnerResult) text() string {
	var b strings.Builder
	switch {
	case o.Self:
		fmt.Fprintf(&b, "%s is a %s", o.Owner, strings.ToLower(o.OwnerKind))
	case o.OwnerKind == "" && o.Note != "":
		fmt.Fprintf(&b, "%s: %s", o.Entity, o.Note)
		if o.Owner != "" {
			fmt.Fprintf(&b, " (owner %s)", o.Owner)
		}
	default:
		fmt.Fprintf(&b, "%s is owned by %s", o.Entity, o.Owner)
	}
	if o.OwnerKind != "" || o.Note == "" {
		if o.Title != "" {
			fmt.Fprintf(&b, " (%s)", o.Title)
		}
		if o.Email != "" {
			fmt.Fprintf(&b, " <%s>", o.Email)
		}
	}
	if len(o.EntityContacts) > 0 {
		fmt.Fprintf(&b, "\n%s's own contacts:", o.Entity)
		writeContacts(&b, o.EntityContacts)
	}
	if o.OwnerKind == "" && o.Note != "" {
		return b.String()
	}
	if o.Description != "" {
		b.WriteString("\n")
		writeOneLine(&b, o.Description)
	}
	if len(o.ParentChain) > 0 {
		fmt.Fprintf(&b, "\nparents: %s", strings.Join(o.ParentChain, " > "))
	}
	if len(o.Children) > 0 {
		fmt.Fprintf(&b, "\nchild groups: %s", strings.Join(o.Children, ", "))
	}
	if len(o.MemberOf) > 0 {
		fmt.Fprintf(&b, "\nmember of: %s", strings.Join(o.MemberOf, ", "))
	}
	for _, k := range slices.Sorted(maps.Keys(o.Contacts)) {
		fmt.Fprintf(&b, "\n%s: %s", k, o.Contacts[k])
	}
	for _, l := range o.Links {
		fmt.Fprintf(&b, "\nlink: %s %s", l.Title, l.URL)
	}
	if o.MembersTotal > 0 {
		fmt.Fprintf(&b, "\nmembers (%d):", o.MembersTotal)
		for _, m := range o.Members {
			fmt.Fprintf(&b, "\n- %s", m.Ref)
			if m.Name != "" {
				fmt.Fprintf(&b, " %s", m.Name)
			}
			if m.Email != "" {
				fmt.Fprintf(&b, " <%s>", m.Email)
			}
		}
		if more := o.MembersTotal - len(o.Members); more > 0 {
			fmt.Fprintf(&b, "\nand %d more", more)
		}
	}
	return b.String()
}

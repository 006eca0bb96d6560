package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"github.com/mark3labs/mcp-go/mcp"
)

var fieldsParam = param{name: "fields", typ: tStrings, max: 50, maxLen: 128,
	desc: "Only return these entity fields, as dot paths (e.g. metadata.name, spec.owner, metadata.annotations). Overrides detail."}

var getEntityParams = []param{
	{name: "ref", typ: tString, desc: "Entity ref, written kind:namespace/name (namespace defaults to \"default\"), e.g. component:default/orders-service or api:payments-api. Use either ref or kind+name."},
	{name: "kind", typ: tString, desc: "Entity kind (Component, API, System, Domain, Resource, Group, User, …), with name."},
	{name: "namespace", typ: tString, desc: "Entity namespace, with kind and name. Defaults to \"default\"."},
	{name: "name", typ: tString, desc: "Entity name, with kind."},
	{name: "detail", typ: tString, enum: []string{"summary", "full"}, def: "summary",
		desc: "summary (default): ref, title, description, type, lifecycle, owner, system, tags, links and relation counts. full: the whole entity as stored in the catalog (secrets redacted)."},
	fieldsParam,
}

// GetEntity is catalog_get_entity: one entity by ref.
func GetEntity(d *Deps) Tool {
	t := newTool("catalog_get_entity", "Look up one Backstage catalog entity by its ref and return what it is, who owns it, what it belongs to and its links. "+
		"Use this when you know the entity's name; use catalog_search_entities to find entities by kind, owner, type, tag or text. "+
		"Refs are written kind:namespace/name, e.g. component:default/orders-service; namespace defaults to \"default\".", schema(getEntityParams), "Get catalog entity")
	h := func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		a, err := decodeArgs(req.Params.RawArguments, getEntityParams)
		if err != nil {
			return toolError(err), nil
		}
		ref, err := refFromArgs(a, "")
		if err != nil {
			return toolError(err), nil
		}
		e, res := d.fetchEntity(ctx, ref)
		if res != nil {
			return res, nil
		}
		record(ctx, e)
		if err := d.pruneRelations(ctx, []entity{e}); err != nil {
			return toolError(err), nil
		}
		if f := a.list("fields"); len(f) > 0 {
			p := project(e.m, f)
			return result(p, compactJSON(p)), nil
		}
		if a.str("detail") == "full" {
			return result(e.m, compactJSON(e.m)), nil
		}
		s := summarize(e.m)
		links := []link{{ref: s.Owner, description: "owner of " + s.Ref}, {ref: s.System, description: "system of " + s.Ref}}
		if strings.EqualFold(str(e.m, "kind"), "api") {
			links = append(links, link{ref: s.Ref, description: "definition of " + s.Ref, definition: true, apiType: s.Type})
		}
		return withLinks(result(s, s.line()), links...), nil
	}
	return Tool{Tool: t, Handler: h, Scope: ScopeRead}
}

// refFromArgs reads either "ref" or kind/namespace/name.
func refFromArgs(a args, defKind string) (catalog.Ref, error) {
	if r := a.str("ref"); r != "" {
		if a.has("kind") || a.has("name") || a.has("namespace") {
			return catalog.Ref{}, badArg("give either \"ref\" or \"kind\"+\"name\" (with optional \"namespace\"), not both")
		}
		return catalog.ParseRef(r, defKind)
	}
	kind, name := a.str("kind"), a.str("name")
	if kind == "" && defKind != "" {
		kind = defKind
	}
	if kind == "" || name == "" {
		if a.has("kind") || a.has("name") {
			return catalog.Ref{}, badArg("\"kind\" and \"name\" must be given together (namespace is optional), or use \"ref\" (%s)", catalog.RefFormat)
		}
		return catalog.Ref{}, badArg("missing \"ref\": expected %s", catalog.RefFormat)
	}
	ns := a.str("namespace")
	if ns == "" {
		ns = catalog.DefaultNamespace
	}
	return catalog.ParseRef(kind+":"+ns+"/"+name, "")
}

// fetchEntity gets one entity and admits it; a hidden entity is reported
// exactly like a missing one.
func (d *Deps) fetchEntity(ctx context.Context, ref catalog.Ref) (entity, *mcp.CallToolResult) {
	raw, err := d.Catalog.GetByName(ctx, ref)
	if errors.Is(err, catalog.ErrNotFound) {
		return entity{}, notFound(ref.String())
	}
	if err != nil {
		return entity{}, toolError(err)
	}
	e, ok, err := d.admit(ctx, raw)
	if err != nil {
		return entity{}, toolError(err)
	}
	if !ok {
		return entity{}, notFound(ref.String())
	}
	return e, nil
}

func compactJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}

var searchParams = []param{
	{name: "kind", typ: tString, desc: "Entity kind: Component, API, System, Domain, Resource, Group, User, Location, Template."},
	{name: "type", typ: tString, desc: "spec.type, e.g. service, website, library, openapi, database."},
	{name: "owner", typ: tString, desc: "Owner ref, e.g. group:default/team-payments or just team-payments (kind defaults to group)."},
	{name: "lifecycle", typ: tString, desc: "spec.lifecycle, e.g. production, experimental, deprecated."},
	{name: "namespace", typ: tString, desc: "metadata.namespace."},
	{name: "system", typ: tString, desc: "System ref the entities belong to, e.g. system:default/checkout or checkout."},
	{name: "tags", typ: tStrings, max: 10, desc: "Entities carrying any of these tags."},
	{name: "text", typ: tString, desc: "Free text matched against names, titles and descriptions.", maxLen: 128},
	fieldsParam,
	{name: "limit", typ: tInt, min: 1, max: 100, def: 20, desc: "Items per page, 1 to 100 (default 20)."},
	{name: "cursor", typ: tString, maxLen: 8192, desc: "nextCursor from a previous call, to get the next page (the other filters are then taken from the cursor)."},
	{name: "order", typ: tString, enum: orderFields, desc: "Sort by this field; a leading - sorts descending."},
}

// orderFields are the sort keys offered to agents. Sorting by arbitrary
// fields would let an agent infer masked or hidden values from the order,
// and Backstage's cursor carries the sort value of the last item.
var orderFields = []string{
	"metadata.name", "-metadata.name", "metadata.title", "-metadata.title", "kind", "-kind",
	"spec.type", "-spec.type", "spec.lifecycle", "-spec.lifecycle", "metadata.namespace", "-metadata.namespace",
}

// SearchEntitiesResult is the structured answer of catalog_search_entities.
type SearchEntitiesResult struct {
	Items      []any  `json:"items"`
	NextCursor string `json:"nextCursor,omitempty"`
	TotalItems *int   `json:"totalItems,omitempty"`
	Note       string `json:"note,omitempty"`
}

// SearchEntities is catalog_search_entities: filter, text search and paging.
func SearchEntities(d *Deps) Tool {
	t := newTool("catalog_search_entities", "Find Backstage catalog entities by kind, type, owner, lifecycle, namespace, system, tags or free text; returns one compact summary per entity, "+
		"a nextCursor for the next page and the total count. Use it to answer \"which services does team X own\", \"what APIs are in system Y\", "+
		"or to find the ref of something before calling catalog_get_entity, catalog_get_relations or catalog_find_owner. All given filters must match.", schema(searchParams), "Search catalog entities")
	h := func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		a, err := decodeArgs(req.Params.RawArguments, searchParams)
		if err != nil {
			return toolError(err), nil
		}
		q, exact, res := d.buildSearch(ctx, a)
		if res != nil {
			return res, nil
		}
		if q == nil {
			empty := 0
			return result(SearchEntitiesResult{Items: []any{}, TotalItems: &empty}, "no entities match"), nil
		}
		page, err := d.Catalog.Query(ctx, *q)
		if err != nil {
			return toolError(err), nil
		}
		out := SearchEntitiesResult{Items: []any{}}
		var lines []string
		hidden := 0
		var ents []entity
		for _, raw := range page.Items {
			e, ok, err := d.admit(ctx, raw)
			if err != nil {
				return toolError(err), nil
			}
			if !ok {
				hidden++
				continue
			}
			record(ctx, e)
			ents = append(ents, e)
		}
		if err := d.pruneRelations(ctx, ents); err != nil {
			return toolError(err), nil
		}
		for _, e := range ents {
			if f := a.list("fields"); len(f) > 0 {
				p := project(e.m, f)
				out.Items = append(out.Items, p)
				lines = append(lines, compactJSON(p))
				continue
			}
			s := summarize(e.m)
			out.Items = append(out.Items, s)
			lines = append(lines, s.line())
		}
		out.NextCursor = d.Cursors.Wrap(bindingFrom(ctx), page.NextCursor)
		switch {
		case exact && hidden == 0:
			n := page.TotalItems
			out.TotalItems = &n
		case hidden > 0 || a.str("cursor") == "":
			out.Note = "some entities are not visible to you; totalItems is omitted and pages may be shorter than limit"
		}
		head := fmt.Sprintf("%d entities", len(out.Items))
		if out.TotalItems != nil {
			head = fmt.Sprintf("%d of %d entities", len(out.Items), *out.TotalItems)
		}
		if out.NextCursor != "" {
			head += "; more with cursor=" + out.NextCursor
		}
		return result(out, head+"\n"+strings.Join(lines, "\n")), nil
	}
	return Tool{Tool: t, Handler: h, Scope: ScopeRead}
}

// buildSearch turns arguments into a catalog query with the caller's
// conditions ANDed in. A nil query with a nil result means nothing can
// match. exact reports that Backstage's totalItems counts only entities
// the caller may see.
func (d *Deps) buildSearch(ctx context.Context, a args) (q *catalog.Query, exact bool, res *mcp.CallToolResult) {
	q = &catalog.Query{Limit: a.num("limit", 20)}
	if c := a.str("cursor"); c != "" {
		cur, err := d.Cursors.Unwrap(bindingFrom(ctx), c)
		if err != nil {
			return nil, false, toolError(err)
		}
		q.Cursor = cur
		// The cursor carries the first page's query; its exactness is
		// not known here, so totalItems is not repeated.
		return q, false, nil
	}
	f := catalog.Filter{}
	if k := a.str("kind"); k != "" {
		if err := catalog.ValidateKind(k); err != nil {
			return nil, false, toolError(badArg("argument \"kind\": %v", err))
		}
		f["kind"] = []string{strings.ToLower(k)}
	}
	set := func(arg, key string) {
		if v := a.str(arg); v != "" {
			f[key] = []string{v}
		}
	}
	set("type", "spec.type")
	set("lifecycle", "spec.lifecycle")
	if ns := a.str("namespace"); ns != "" {
		if err := catalog.ValidateNamespace(ns); err != nil {
			return nil, false, toolError(badArg("argument \"namespace\": %v", err))
		}
		f["metadata.namespace"] = []string{strings.ToLower(ns)}
	}
	for _, rf := range []struct{ arg, key, kind string }{
		{"owner", "relations.ownedby", "group"},
		{"system", "relations.partof", "system"},
	} {
		if v := a.str(rf.arg); v != "" {
			r, err := catalog.ParseRef(v, rf.kind)
			if err != nil {
				return nil, false, toolError(badArg("argument %q: %v", rf.arg, err))
			}
			f[rf.key] = []string{strings.ToLower(r.String())}
		}
	}
	if tags := a.list("tags"); len(tags) > 0 {
		f["metadata.tags"] = tags
	}
	for k, vs := range f {
		for _, v := range vs {
			if err := catalog.ValidateFilterValue(v); err != nil {
				return nil, false, toolError(badArg("filter %s: %v", k, err))
			}
		}
	}
	var user []catalog.Filter
	if len(f) > 0 {
		user = []catalog.Filter{f}
	}
	filters, empty, exact := accessFrom(ctx).Constrain(user)
	if empty {
		return nil, true, nil
	}
	q.Filters = filters
	if t := a.str("text"); t != "" {
		q.FullTextTerm = t
		q.FullTextFields = []string{"metadata.name", "metadata.title", "metadata.description"}
	}
	if o := a.str("order"); o != "" {
		desc := strings.HasPrefix(o, "-")
		field := strings.TrimPrefix(o, "-")
		if err := catalog.ValidateFilterKey(field); err != nil {
			return nil, false, toolError(badArg("argument \"order\": %v", err))
		}
		q.Order = []catalog.Order{{Field: field, Descending: desc}}
	}
	return q, exact, nil
}

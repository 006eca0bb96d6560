package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/backstage-mcp/backstage-mcp/policy/filter"
)

var fieldsParam = param{name: "fields", typ: tStrings, max: 50, maxLen: 128,
	desc: "Only these fields, as dot paths (e.g. spec.owner, metadata.annotations); overrides detail."}

var getEntityParams = []param{
	{name: "ref", typ: tString, desc: "kind:namespace/name, e.g. component:default/orders-service; or kind and name."},
	// kind, namespace and name spell a ref (see ref's description).
	{name: "kind", typ: tString},
	{name: "namespace", typ: tString},
	{name: "name", typ: tString},
	{name: "detail", typ: tString, enum: []string{"summary", "full"}, def: "summary",
		desc: "summary: the line described above (up to 5 names per relation type). full: as stored, secrets redacted."},
	fieldsParam,
}

// GetEntity is catalog_get_entity: one entity by ref.
func GetEntity(d *Deps) Tool {
	t := newTool("catalog_get_entity", "One catalog entity in one line: what it is, owner, system, domain, links, repository, docs, on-call and chat annotations, "+
		"and the names of the APIs it provides and consumes, its dependencies and direct dependents. To find entities, use catalog_search_entities.", schema(getEntityParams), "Get catalog entity")
	h := func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		a, err := decodeArgs(req.Params.RawArguments, getEntityParams)
		if err != nil {
			return toolError(err), nil
		}
		ref, err := refFromArgs(a, "")
		if err != nil {
			return toolError(err), nil
		}
		var proj []string
		switch f := a.list("fields"); {
		case len(f) > 0:
			proj = d.projection(ctx, nil, f)
		case a.str("detail") != "full" && ref.Kind == "api":
			// An API's summary names its operations, from its definition.
			proj = d.projection(ctx, append(slices.Clip(summaryFields), "spec.definition"), nil)
		case a.str("detail") != "full":
			proj = d.projection(ctx, summaryFields, nil)
		}
		e, res := d.fetchProjected(ctx, ref, proj)
		if res != nil {
			return res, nil
		}
		record(ctx, e)
		if err := d.pruneNames(ctx, []entity{e}); err != nil {
			return toolError(err), nil
		}
		if f := a.list("fields"); len(f) > 0 {
			p := project(e.m, f)
			return result(p, compactJSON(p)), nil
		}
		if a.str("detail") == "full" {
			return result(e.m, compactJSON(e.m)), nil
		}
		sums := []Summary{d.summarize(e)}
		if err := d.inheritDomains(ctx, sums); err != nil {
			return toolError(err), nil
		}
		s := sums[0]
		if ref.Kind == "api" {
			s.Operations, s.OperationsTotal = operations(s.Type, str(e.m, "spec", "definition"))
		}
		// The links name the entity they belong to by being in its
		// answer: a short description says what each is. The owner (whom
		// an engineer contacts) and an API's definition (which the text
		// does not hold); not the system, which the text names and one
		// read gives: each link costs the model about 40 tokens.
		links := []link{{ref: s.Owner, description: "owner"}}
		if strings.EqualFold(str(e.m, "kind"), "api") {
			links = append(links, link{ref: s.Ref, description: "API definition", definition: true, apiType: s.Type})
		}
		return withLinks(result(s, s.line()), links...), nil
	}
	return Tool{Tool: t, Handler: h, Answer: "One line: ref, title, type, lifecycle, owner, system, domain (its system's when it has none), tags, description, links (title and URL), the well-known annotations (repository, TechDocs, PagerDuty, Opsgenie, chat, dashboards, runbook) and the names of related entities per relation type (up to 5, \"and N more\"); for an API, its operations (`GET /path`, `rpc Name`, …, up to 5). `detail: full` gives the whole entity as JSON, `fields` the fields asked for.", Scope: ScopeRead}
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
	return catalog.NewRef(kind, ns, name)
}

// fetchEntity gets one entity and admits it; a hidden entity is reported
// exactly like a missing one.
func (d *Deps) fetchEntity(ctx context.Context, ref catalog.Ref) (entity, *mcp.CallToolResult) {
	return d.fetchProjected(ctx, ref, nil)
}

// fetchProjected is fetchEntity keeping only the fields of proj (nil: the
// whole entity). Backstage's by-name lookup takes no projection: the
// entity is projected here, before it is decoded.
func (d *Deps) fetchProjected(ctx context.Context, ref catalog.Ref, proj []string) (entity, *mcp.CallToolResult) {
	raw, err := d.Catalog.GetByName(ctx, ref)
	if errors.Is(err, catalog.ErrNotFound) {
		return entity{}, notFound(ref.String())
	}
	if err != nil {
		return entity{}, toolError(err)
	}
	if proj != nil {
		raw = catalog.Project(raw, proj)
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
	{name: "kind", typ: tString, desc: "Component, API, System, Domain, Resource, Group, User, Location, Template."},
	{name: "type", typ: tString, desc: "spec.type, e.g. service, website, openapi."},
	{name: "owner", typ: tString, desc: "e.g. team-payments (kind defaults to group)."},
	{name: "lifecycle", typ: tString, desc: "e.g. production, experimental, deprecated."},
	{name: "namespace", typ: tString},
	{name: "system", typ: tString, desc: "e.g. checkout."},
	{name: "tags", typ: tStrings, max: 10, desc: "Any of these."},
	labelsParam, annotationsParam, relationParam,
	{name: "text", typ: tString, desc: "Matched literally, any case, in names, titles, descriptions.", maxLen: 128},
	fieldsParam,
	{name: "limit", typ: tInt, min: 1, max: 100, def: 20, desc: "Items per page."},
	{name: "cursor", typ: tString, maxLen: 16384, desc: "nextCursor, alone: it keeps every other argument of the first page."},
	{name: "order", typ: tString, enum: orderFields, desc: "- sorts descending."},
}

// The filters shared by search and facets on labels, annotations and
// relations. Each is matched on the caller's view of the entity.
var (
	labelsParam = param{name: "labels", typ: tStrings, max: 10, maxLen: 320,
		desc: "All of: key=value (any case) or key (present), e.g. acme-retail.example/tier=tier-1."}
	annotationsParam = param{name: "annotations", typ: tStrings, max: 10, maxLen: 320,
		desc: "All of: key=value or key (present), e.g. pagerduty.com/service-id."}
	relationParam = param{name: "relations", typ: tStrings, max: 10, maxLen: 320,
		desc: "All of: type=ref, e.g. consumesApi=api:default/orders-api (its consumers), dependsOn=resource:default/orders-db (what needs it), memberOf=group:default/team-x."}
)

// orderFields are the sort keys offered to agents: only fields that no
// mask removes and no redaction changes. Backstage sorts by the stored
// value, so sorting by a title, type or lifecycle would let an agent read
// the order of masked values or of secrets from the order of the answer.
var orderFields = []string{
	"metadata.name", "-metadata.name", "kind", "-kind", "metadata.namespace", "-metadata.namespace",
}

// SearchEntitiesResult is the structured answer of catalog_search_entities.
type SearchEntitiesResult struct {
	Items      []any  `json:"items"`
	NextCursor string `json:"nextCursor,omitempty"`
	TotalItems *int   `json:"totalItems,omitempty"`
	Note       string `json:"note,omitempty"`
}

// SearchEntities is catalog_search_entities: filter, text search and paging.
//
// Every filter and the text are matched on the caller's view of each
// entity (visible, masked, redacted, names of invisible entities pruned);
// Backstage only narrows the candidates, with the filters whose match on
// the stored entity is implied by a match on the view (everything but the
// text). Pages are filled from as many Backstage pages as needed, and the cursor marks the exact entity where
// the next page starts, so neither the page length, the cursor's presence
// nor totalItems depend on hidden entities, masked fields or secret values.
func SearchEntities(d *Deps) Tool {
	t := newTool("catalog_search_entities", "Find catalog entities (all given filters must match): one summary line each, and a nextCursor. "+
		"E.g. what team X owns (owner), what is in system Y (system), PCI scope (labels), who consumes API X (relations consumesApi=X).", schema(searchParams), "Search catalog entities")
	h := func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		a, err := decodeArgs(req.Params.RawArguments, searchParams)
		if err != nil {
			return toolError(err), nil
		}
		st, exact, res := d.buildSearch(ctx, a)
		if res != nil {
			return res, nil
		}
		if st == nil {
			empty := 0
			return result(SearchEntitiesResult{Items: []any{}, TotalItems: &empty}, "no entities match"), nil
		}
		first := st.B == "" && st.S == 0
		// An owner or system the caller may not see owns nothing it may
		// see (its name is pruned from every entity): hidden and missing
		// alike, decided before anything is read.
		for _, r := range st.F.refs() {
			vis, err := d.visibleRef(ctx, r)
			if err != nil {
				return toolError(err), nil
			}
			if !vis {
				empty := 0
				return result(SearchEntitiesResult{Items: []any{}, TotalItems: &empty}, "no entities match"), nil
			}
		}
		limit, fields := st.L, st.Fields
		base, match := summaryFields, searchFields
		if extra := st.F.reads(); len(extra) > 0 {
			base = append(slices.Clip(base), extra...)
			match = append(slices.Clip(match), extra...)
		}
		proj := d.projection(ctx, base, nil)
		if len(fields) > 0 {
			proj = d.projection(ctx, match, fields)
		}
		ents, next, firstTotal, truncated, err := d.scan(ctx, *st, limit, proj)
		if err != nil {
			return toolError(err), nil
		}
		if err := d.pruneNames(ctx, ents); err != nil {
			return toolError(err), nil
		}
		out := SearchEntitiesResult{Items: make([]any, 0, len(ents))}
		var lines strings.Builder // the text's lines after the head, each after a newline
		var sums []Summary
		if len(fields) == 0 {
			sums = make([]Summary, len(ents))
			for i, e := range ents {
				sums[i] = d.summarize(e)
			}
			if err := d.inheritDomains(ctx, sums); err != nil {
				return toolError(err), nil
			}
		}
		// Attributes every line shares are stated once, in the head.
		var common shared
		if len(fields) == 0 {
			common = sharedOf(sums)
		}
		for i, e := range ents {
			record(ctx, e)
			lines.WriteByte('\n')
			if len(fields) > 0 {
				p := project(e.m, fields)
				out.Items = append(out.Items, p)
				lines.WriteString(compactJSON(p))
				continue
			}
			// A pointer into sums: boxing it allocates nothing.
			s := &sums[i]
			out.Items = append(out.Items, s)
			if lines.Len() == 1 {
				lines.Grow(len(ents) * (s.lineSize() + 1))
			}
			s.writeLineWithout(&lines, common)
		}
		if next != nil {
			b, err := json.Marshal(next)
			if err != nil {
				return toolError(err), nil
			}
			out.NextCursor = d.Cursors.Wrap(bindingFrom(ctx), string(b))
		}
		switch {
		case truncated:
			out.Note = fmt.Sprintf("the search stopped after examining %d entities; continue with the cursor", maxSearchScan)
		case !first:
		case next == nil:
			// A complete first page is its own count.
			n := len(out.Items)
			out.TotalItems = &n
		case exact && st.F.storedOnly():
			// Backstage counted exactly the entities the caller may see,
			// on fields no mask, secret or pruning can change.
			n := firstTotal
			out.TotalItems = &n
		default:
			out.Note = "totalItems is given when one page holds every match, or when your rights and filters can be counted by the catalog itself; follow nextCursor for more"
		}
		head := fmt.Sprintf("%d entities", len(out.Items))
		if out.TotalItems != nil {
			head = fmt.Sprintf("%d of %d entities", len(out.Items), *out.TotalItems)
		}
		head += common.head()
		if out.NextCursor != "" {
			head += "; more with cursor=" + out.NextCursor
		}
		if len(ents) == 0 {
			lines.WriteByte('\n') // the head and an empty list of lines
		}
		return result(out, head+lines.String()), nil
	}
	return Tool{Tool: t, Handler: h, Answer: "A head with the count (and the total, when one page holds them all or the catalog can count the caller's view), the type, lifecycle, owner, system and domain every line shares, and the next cursor; then one summary line per entity, as catalog_get_entity writes it, without the shared attributes.", Scope: ScopeRead}
}

// maxSearchScan bounds the catalog entities one search call examines.
const maxSearchScan = 20000

// searchState is a position in a search: the query, the filters matched
// on the caller's view, and where the next entity is (Backstage's cursor
// of the page holding it, or the query's first page when B is empty, and
// its index on that page). It travels sealed inside the agent's cursor.
type searchState struct {
	Q searchQuery `json:"q"`
	F viewFilter  `json:"f"`
	B string      `json:"b,omitempty"`
	S int         `json:"s,omitempty"`
	N int         `json:"n"`
	// L is the page length, Fields the fields and O the order of the
	// first page: with F they are every argument of the first page, so a
	// cursor passed with changed arguments is refused.
	L      int      `json:"l,omitempty"`
	Fields []string `json:"fl,omitempty"`
	O      string   `json:"o,omitempty"`
}

// sameArgs returns the first argument given with a cursor that differs
// from the first page's ("" when none does).
func (st *searchState) sameArgs(a args) (string, error) {
	vf, _, err := parseFilters(a)
	if err != nil {
		return "", err
	}
	for _, k := range slices.Sorted(maps.Keys(a)) {
		var same bool
		switch k {
		case "cursor":
			same = true
		case "limit":
			same = a.num(k, 0) == st.L
		case "fields":
			same = slices.Equal(a.list(k), st.Fields)
		case "order":
			same = a.str(k) == st.O
		case "kind":
			same = strings.EqualFold(vf.Kind, st.F.Kind)
		case "type":
			same = vf.Type == st.F.Type
		case "lifecycle":
			same = vf.Lifecycle == st.F.Lifecycle
		case "namespace":
			same = strings.EqualFold(vf.Namespace, st.F.Namespace)
		case "owner":
			same = vf.Owner == st.F.Owner
		case "system":
			same = vf.System == st.F.System
		case "text":
			same = vf.Text == st.F.Text
		case "tags":
			same = slices.Equal(vf.Tags, st.F.Tags)
		case "labels":
			same = slices.Equal(vf.Labels, st.F.Labels)
		case "annotations":
			same = slices.Equal(vf.Annotations, st.F.Annotations)
		case "relations":
			same = slices.Equal(vf.Relations, st.F.Relations)
		}
		if !same {
			return k, nil
		}
	}
	return "", nil
}

// searchQuery is the part of the catalog query that is sent to Backstage
// on a first page.
type searchQuery struct {
	Filters []catalog.Filter `json:"filters,omitempty"`
	Order   []catalog.Order  `json:"order,omitempty"`
}

// viewFilter is what the agent asked for, matched on the caller's view of
// each entity.
type viewFilter struct {
	Kind      string   `json:"kind,omitempty"`
	Type      string   `json:"type,omitempty"`
	Lifecycle string   `json:"lifecycle,omitempty"`
	Namespace string   `json:"namespace,omitempty"`
	Owner     string   `json:"owner,omitempty"`
	System    string   `json:"system,omitempty"`
	Tags      []string `json:"tags,omitempty"`
	Text      string   `json:"text,omitempty"`
	// Labels and Annotations hold "key=value" or "key"; Relations
	// "type=ref" (the ref canonical).
	Labels      []string `json:"labels,omitempty"`
	Annotations []string `json:"annotations,omitempty"`
	Relations   []string `json:"relations,omitempty"`
}

// storedOnly reports that the filters are kind and namespace at most:
// fields that no mask, redaction or name pruning changes, so Backstage's
// count of the stored matches is the count of the view's matches.
func (f viewFilter) storedOnly() bool {
	return f.Type == "" && f.Lifecycle == "" && f.Owner == "" && f.System == "" && len(f.Tags) == 0 && f.Text == "" &&
		len(f.Labels) == 0 && len(f.Annotations) == 0 && len(f.Relations) == 0
}

// reads returns the fields the filter reads beyond searchFields.
func (f viewFilter) reads() []string {
	var out []string
	if len(f.Labels) > 0 {
		out = append(out, "metadata.labels")
	}
	if len(f.Annotations) > 0 {
		out = append(out, "metadata.annotations")
	}
	return out
}

// refs returns the entity refs the filter names (owner, system, relation
// targets): each must be visible to the caller, or nothing matches.
func (f viewFilter) refs() []string {
	var out []string
	for _, r := range []string{f.Owner, f.System} {
		if r != "" {
			out = append(out, r)
		}
	}
	for _, r := range f.Relations {
		_, target, _ := strings.Cut(r, "=")
		out = append(out, target)
	}
	return out
}

// match reports whether an admitted entity satisfies every filter. Owner
// and system are matched on its relations before pruning: the caller
// checks first that the named owner or system is visible, and a relation
// to a visible entity survives pruning.
// Text is matched literally ('%', '_' and '\' are characters like any
// other), case-insensitively, on the name, title and description the
// caller sees: a masked field is absent and a secret is its redaction
// marker, so neither can be probed by searching.
func (f viewFilter) match(e entity) bool {
	eq := func(want, got string) bool { return want == "" || strings.EqualFold(want, got) }
	if !eq(f.Kind, str(e.m, "kind")) || !eq(f.Type, str(e.m, "spec", "type")) ||
		!eq(f.Lifecycle, str(e.m, "spec", "lifecycle")) {
		return false
	}
	if f.Namespace != "" {
		ns := str(e.m, "metadata", "namespace")
		if ns == "" {
			ns = catalog.DefaultNamespace
		}
		if !strings.EqualFold(f.Namespace, ns) {
			return false
		}
	}
	hasRel := func(typ, target string) bool {
		for _, r := range relations(e.m) {
			if strings.EqualFold(r.typ, typ) && strings.EqualFold(r.target, target) {
				return true
			}
		}
		return false
	}
	if f.Owner != "" && !hasRel("ownedBy", f.Owner) {
		return false
	}
	if f.System != "" && !hasRel("partOf", f.System) {
		return false
	}
	if len(f.Tags) > 0 {
		found := false
		for _, t := range strList(get(e.m, "metadata", "tags")) {
			for _, w := range f.Tags {
				found = found || strings.EqualFold(t, w)
			}
		}
		if !found {
			return false
		}
	}
	for _, r := range f.Relations {
		typ, target, _ := strings.Cut(r, "=")
		if !hasRel(typ, target) {
			return false
		}
	}
	for _, l := range f.Labels {
		if !hasKeyValue(get(e.m, "metadata", "labels"), l, true) {
			return false
		}
	}
	for _, l := range f.Annotations {
		if !hasKeyValue(get(e.m, "metadata", "annotations"), l, false) {
			return false
		}
	}
	if f.Text != "" {
		t := strings.ToLower(f.Text)
		found := false
		for _, v := range []string{str(e.m, "metadata", "name"), str(e.m, "metadata", "title"), str(e.m, "metadata", "description")} {
			found = found || strings.Contains(strings.ToLower(v), t)
		}
		if !found {
			return false
		}
	}
	return true
}

// hasKeyValue reports whether the map m holds the key of kv ("key" or
// "key=value"), with that value when one is given (case-insensitive when
// fold).
func hasKeyValue(m any, kv string, fold bool) bool {
	mm, _ := m.(map[string]any)
	k, want, exact := strings.Cut(kv, "=")
	v, ok := mm[k].(string)
	if !ok {
		return false
	}
	if !exact {
		return true
	}
	if fold {
		return strings.EqualFold(v, want)
	}
	return v == want
}

// scan collects up to limit matching entities from st on, reading as many
// Backstage pages as needed, and returns where the next match is (nil when
// there is none). It looks one match ahead, so that the cursor is handed
// out only when another visible match exists. The entities are not yet
// pruned. Backstage returns only the fields of proj (nil: whole
// entities), which must hold searchFields.
func (d *Deps) scan(ctx context.Context, st searchState, limit int, proj []string) (out []entity, next *searchState, firstTotal int, truncated bool, err error) {
	scanned := 0
	pos := st
	for round := 0; ; round++ {
		q := catalog.Query{Limit: pos.N, Fields: proj}
		if pos.B != "" {
			q.Cursor = pos.B
		} else {
			q.Filters, q.Order = pos.Q.Filters, pos.Q.Order
		}
		page, err := d.Catalog.Query(ctx, q)
		if err != nil {
			return nil, nil, 0, false, err
		}
		if round == 0 {
			firstTotal = page.TotalItems
		}
		for i := pos.S; i < len(page.Items); i++ {
			if pos.F.Text != "" {
				ok, err := d.textMatch(ctx, page.Items[i], pos.F.Text)
				if err != nil {
					return nil, nil, 0, false, err
				}
				if !ok {
					continue
				}
			}
			e, ok, err := d.admit(ctx, page.Items[i])
			if err != nil {
				return nil, nil, 0, false, err
			}
			if !ok || !pos.F.match(e) {
				continue
			}
			if len(out) == limit {
				n := pos
				n.S = i
				if n.B != "" {
					n.Q = searchQuery{} // Backstage's cursor carries the query
				}
				return out, &n, firstTotal, false, nil
			}
			out = append(out, e)
		}
		scanned += max(0, len(page.Items)-pos.S)
		if page.NextCursor == "" {
			return out, nil, firstTotal, false, nil
		}
		pos.B, pos.S, pos.Q = page.NextCursor, 0, searchQuery{}
		if scanned >= maxSearchScan {
			return out, &pos, firstTotal, true, nil
		}
	}
}

// textFields are the fields free text is matched on.
var textFields = []string{"name", "title", "description"}

// textMatch decides the text filter on the caller's view of the text
// fields alone, before the entity is admitted (which re-checks
// visibility): the name, title and description are masked and redacted
// exactly as in the full view (masks and redaction look at a field's path
// and value, not at its neighbours). Most candidates of a text search
// fail here, for a fraction of the cost of decoding and admitting them.
func (d *Deps) textMatch(ctx context.Context, raw json.RawMessage, text string) (bool, error) {
	kind, small := catalog.EntityText(raw, textFields...)
	view := accessFrom(ctx).Mask(map[string]any{"kind": kind, "metadata": small})
	if view == nil {
		return false, nil
	}
	if d.Redactor == nil {
		return false, errRedaction
	}
	v, _, err := d.Redactor.Redact(view)
	if err != nil {
		return false, fmt.Errorf("%w: %w", errRedaction, err)
	}
	rv, _ := v.(map[string]any)
	return viewFilter{Text: text}.match(entity{m: rv}), nil
}

// parseFilters reads the filter arguments of search and facets into the
// filter matched on the caller's view of each entity and the catalog
// filter that narrows the candidates (every filter but the text).
func parseFilters(a args) (viewFilter, catalog.Filter, error) {
	var vf viewFilter
	f := catalog.Filter{}
	if k := a.str("kind"); k != "" {
		if err := catalog.ValidateKind(k); err != nil {
			return viewFilter{}, nil, badArg("argument \"kind\": %v", err)
		}
		vf.Kind = k
		f["kind"] = []string{strings.ToLower(k)}
	}
	vf.Type, vf.Lifecycle = a.str("type"), a.str("lifecycle")
	if vf.Type != "" {
		f["spec.type"] = []string{vf.Type}
	}
	if vf.Lifecycle != "" {
		f["spec.lifecycle"] = []string{vf.Lifecycle}
	}
	if ns := a.str("namespace"); ns != "" {
		if err := catalog.ValidateNamespace(ns); err != nil {
			return viewFilter{}, nil, badArg("argument \"namespace\": %v", err)
		}
		vf.Namespace = ns
		f["metadata.namespace"] = []string{strings.ToLower(ns)}
	}
	for _, rf := range []struct {
		arg, kind string
		dst       *string
		key       string
	}{{"owner", "group", &vf.Owner, "relations.ownedby"}, {"system", "system", &vf.System, "relations.partof"}} {
		if v := a.str(rf.arg); v != "" {
			r, err := catalog.ParseRef(v, rf.kind)
			if err != nil {
				return viewFilter{}, nil, badArg("argument %q: %v", rf.arg, err)
			}
			*rf.dst = r.String()
			f[rf.key] = []string{strings.ToLower(r.String())}
		}
	}
	if vf.Tags = a.list("tags"); len(vf.Tags) > 0 {
		f["metadata.tags"] = vf.Tags
	}
	if err := parseScopeFilters(a, &vf, f); err != nil {
		return viewFilter{}, nil, err
	}
	// The text is not sent: Backstage matches it on stored values (masked
	// fields and secrets included, '%' and '_' as wildcards, long values
	// not at all). The other filters narrow the candidates safely: an
	// entity whose view matches them also matches them as stored.
	vf.Text = a.str("text")
	for k, vs := range f {
		for _, v := range vs {
			if err := filter.CheckValue(v); err != nil {
				return viewFilter{}, nil, badArg("filter %s: %v", k, err)
			}
		}
	}
	return vf, f, nil
}

// parseScopeFilters reads the labels, annotations and relations arguments
// into the view filter and the catalog filter that narrows candidates.
func parseScopeFilters(a args, vf *viewFilter, f catalog.Filter) error {
	for _, kv := range []struct {
		arg, path string
		dst       *[]string
	}{{"labels", "metadata.labels.", &vf.Labels}, {"annotations", "metadata.annotations.", &vf.Annotations}} {
		for _, it := range a.list(kv.arg) {
			k, v, exact := strings.Cut(it, "=")
			if err := filter.CheckKey(k); err != nil || strings.HasPrefix(k, ".") || strings.HasSuffix(k, ".") {
				return badArg("argument %q: %q is not \"key\" or \"key=value\" with a valid key", kv.arg, it)
			}
			key := kv.path + strings.ToLower(k)
			if exact {
				if err := filter.CheckValue(v); err != nil {
					return badArg("argument %q: %v", kv.arg, err)
				}
				f[key] = append(f[key], v)
			} else if _, ok := f[key]; !ok {
				f[key] = nil
			}
			*kv.dst = append(*kv.dst, it)
		}
	}
	for _, it := range a.list("relations") {
		typ, target, ok := strings.Cut(it, "=")
		canon, known := relationType(typ)
		if !ok || !known {
			return badArg("argument \"relations\": %q is not \"type=ref\" with type one of %s", it, strings.Join(RelationTypes, ", "))
		}
		r, err := catalog.ParseRef(target, "")
		if err != nil {
			return badArg("argument \"relations\": %q: %v", it, err)
		}
		key := "relations." + strings.ToLower(canon)
		f[key] = append(f[key], strings.ToLower(r.String()))
		vf.Relations = append(vf.Relations, canon+"="+r.String())
	}
	return nil
}

// relationType returns the relation type as Backstage spells it.
func relationType(t string) (string, bool) {
	for _, rt := range RelationTypes {
		if strings.EqualFold(rt, t) {
			return rt, true
		}
	}
	return "", false
}

// buildSearch turns arguments (or the agent's cursor) into a search
// position. Backstage gets the caller's conditions ANDed with the filters
// that name only kind and namespace (which no mask or secret can change);
// every filter is matched again on the view. A nil state with a nil result
// means nothing can match.
func (d *Deps) buildSearch(ctx context.Context, a args) (st *searchState, exact bool, res *mcp.CallToolResult) {
	limit := a.num("limit", 20)
	if c := a.str("cursor"); c != "" {
		plain, err := d.Cursors.Unwrap(bindingFrom(ctx), c)
		if err != nil {
			return nil, false, toolError(err)
		}
		st = &searchState{}
		if err := json.Unmarshal([]byte(plain), st); err != nil || st.N < 1 || st.S < 0 || st.L < 1 {
			return nil, false, toolError(badArg("argument \"cursor\" is not a cursor returned by catalog_search_entities"))
		}
		k, err := st.sameArgs(a)
		if err != nil {
			return nil, false, toolError(err)
		}
		if k != "" {
			return nil, false, toolError(badArg("argument %q is not the one the cursor's first page had: a cursor continues the search it came from. "+
				"Pass the cursor alone (every argument is kept in it) or with the first page's arguments unchanged; to change them, start a new search without cursor", k))
		}
		return st, false, nil
	}
	vf, f, err := parseFilters(a)
	if err != nil {
		return nil, false, toolError(err)
	}
	var user []catalog.Filter
	if len(f) > 0 {
		user = []catalog.Filter{f}
	}
	filters, empty, exact := accessFrom(ctx).Constrain(user)
	if empty {
		return nil, true, nil
	}
	if !exact || !vf.storedOnly() {
		// Backstage's count will not be shown: send the filters it
		// evaluates fastest; the view filters re-check every entity.
		if filters, empty = accessFrom(ctx).ConstrainScan(user); empty {
			return nil, true, nil
		}
	}
	st = &searchState{Q: searchQuery{Filters: filters}, F: vf, N: limit + 1, L: limit, Fields: a.list("fields"), O: a.str("order")}
	if vf.Text != "" {
		// Matches may be sparse among the candidates: read larger pages.
		st.N = 500
	}
	if o := a.str("order"); o != "" {
		desc := strings.HasPrefix(o, "-")
		field := strings.TrimPrefix(o, "-")
		if err := filter.CheckKey(field); err != nil {
			return nil, false, toolError(badArg("argument \"order\": %v", err))
		}
		st.Q.Order = []catalog.Order{{Field: field, Descending: desc}}
	}
	return st, exact, nil
}

package tools

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/backstage-mcp/backstage-mcp/policy/filter"
)

// maxFacetScan bounds how many entities are counted locally when the
// caller's rights cannot be expressed as Backstage filters.
const maxFacetScan = 20000

var facetParams = []param{
	{name: "facet", typ: tString, maxLen: 128, desc: "Dot path: kind, spec.type, spec.lifecycle, spec.owner, spec.system, metadata.tags, …"},
	// The filters, described once in catalog_search_entities (the tool's
	// description says so).
	{name: "kind", typ: tString},
	{name: "type", typ: tString},
	{name: "lifecycle", typ: tString},
	{name: "namespace", typ: tString},
	{name: "owner", typ: tString},
	{name: "system", typ: tString},
	{name: "tags", typ: tStrings, max: 10},
	sameAs(labelsParam, ""),
	sameAs(annotationsParam, ""),
	sameAs(relationParam, ""),
}

// sameAs is p with a shorter description.
func sameAs(p param, desc string) param {
	p.desc = desc
	return p
}

// FacetsResult is the structured answer of catalog_list_facets.
type FacetsResult struct {
	Facet  string               `json:"facet"`
	Kind   string               `json:"kind,omitempty"`
	Values []catalog.FacetValue `json:"values"`
}

// ListFacets is catalog_list_facets: the values of a field and their counts.
func ListFacets(d *Deps) Tool {
	t := newTool("catalog_list_facets", "Distinct values of one field, each with its count, most first; the filters of catalog_search_entities narrow what is counted. "+
		"E.g. how many services are in production (facet spec.lifecycle, kind Component, type service); which team owns the most production services "+
		"(facet spec.owner, kind Component, type service, lifecycle production).", schema(facetParams, "facet"), "List catalog facets")
	h := func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		a, err := decodeArgs(req.Params.RawArguments, facetParams)
		if err != nil {
			return toolError(err), nil
		}
		facet := a.str("facet")
		if facet == "" {
			return toolError(badArg("missing \"facet\": a field path such as spec.type or kind")), nil
		}
		if err := filter.CheckKey(facet); err != nil {
			return toolError(badArg("argument \"facet\": %v", err)), nil
		}
		vf, f, err := parseFilters(a)
		if err != nil {
			return toolError(err), nil
		}
		var user []catalog.Filter
		if len(f) > 0 {
			user = []catalog.Filter{f}
		}
		out := FacetsResult{Facet: facet, Kind: a.str("kind"), Values: []catalog.FacetValue{}}
		acc := accessFrom(ctx)
		filters, empty, exact := acc.Constrain(user)
		// An owner, system or relation target the caller may not see
		// selects nothing it may see.
		for _, r := range vf.refs() {
			vis, err := d.visibleRef(ctx, r)
			if err != nil {
				return toolError(err), nil
			}
			empty = empty || !vis
		}
		if !empty && !vf.storedOnly() {
			// Counted locally on the view: the filters Backstage evaluates
			// fastest narrow the candidates.
			filters, empty = acc.ConstrainScan(user)
		}
		switch {
		case empty:
		case exact && !acc.Masks() && !catalog.IsRefField(facet) && vf.storedOnly():
			// Backstage counts exactly the visible entities, by stored
			// value. Values are redacted below, and values that redact
			// alike are merged, as counting the views would.
			res, err := d.Catalog.Facets(ctx, []string{facet}, filters)
			if err != nil {
				return toolError(err), nil
			}
			out.Values = append(out.Values, res[facet]...)
		default:
			vals, err := d.countLocally(ctx, facet, filters, vf)
			if err != nil {
				return toolError(err), nil
			}
			out.Values = vals
		}
		// Facet values are catalog text too: redact them with the facet
		// path as their key, as the same value is judged inside an entity,
		// and merge values that redact alike, so that whether two secrets
		// are equal does not show in the counts.
		merged := map[string]int{}
		var order []string
		for i := range out.Values {
			v, err := d.redactString(ctx, facet, out.Values[i].Value)
			if err != nil {
				return toolError(err), nil
			}
			if _, ok := merged[v]; !ok {
				order = append(order, v)
			}
			merged[v] += out.Values[i].Count
		}
		out.Values = out.Values[:0]
		for _, v := range order {
			out.Values = append(out.Values, catalog.FacetValue{Value: v, Count: merged[v]})
		}
		sort.SliceStable(out.Values, func(i, j int) bool {
			if out.Values[i].Count != out.Values[j].Count {
				return out.Values[i].Count > out.Values[j].Count
			}
			return out.Values[i].Value < out.Values[j].Value
		})
		var b strings.Builder
		fmt.Fprintf(&b, "%s: %d values", facet, len(out.Values))
		for _, v := range out.Values {
			fmt.Fprintf(&b, "\n%s %d", v.Value, v.Count)
		}
		return result(out, b.String()), nil
	}
	return Tool{Tool: t, Handler: h, Answer: "A head with the field and the number of values, then one line per value with its count, most frequent first.", Scope: ScopeRead}
}

// countLocally pages through the entities the filters select and counts
// facet values over the caller's view of those it may see: masked fields
// are absent, and names of entities it may not see are pruned from
// relations and ref-valued fields, exactly as in every other answer. A
// relations.<type> facet counts the targets of that relation type.
func (d *Deps) countLocally(ctx context.Context, facet string, filters []catalog.Filter, vf viewFilter) ([]catalog.FacetValue, error) {
	counts := map[string]int{}
	q := catalog.Query{Filters: filters, Limit: 500}
	scanned := 0
	path := strings.Split(facet, ".")
	for {
		page, err := d.Catalog.Query(ctx, q)
		if err != nil {
			return nil, err
		}
		var ents []entity
		for _, raw := range page.Items {
			scanned++
			e, ok, err := d.admit(ctx, raw)
			if err != nil {
				return nil, err
			}
			if ok && vf.match(e) {
				ents = append(ents, e)
			}
		}
		if catalog.IsRefField(facet) {
			if err := d.pruneNames(ctx, ents); err != nil {
				return nil, err
			}
		}
		for _, e := range ents {
			if len(path) == 2 && strings.EqualFold(path[0], "relations") {
				for _, r := range relations(e.m) {
					if strings.EqualFold(r.typ, path[1]) {
						counts[r.target]++
					}
				}
				continue
			}
			switch v := get(e.m, path...).(type) {
			case string:
				counts[v]++
			case []any:
				for _, it := range v {
					if s, ok := it.(string); ok {
						counts[s]++
					}
				}
			case nil:
			default:
				counts[fmt.Sprint(v)]++
			}
		}
		if page.NextCursor == "" || scanned >= maxFacetScan {
			break
		}
		q = catalog.Query{Cursor: page.NextCursor, Limit: 500}
	}
	out := make([]catalog.FacetValue, 0, len(counts))
	for v, c := range counts {
		out = append(out, catalog.FacetValue{Value: v, Count: c})
	}
	return out, nil
}

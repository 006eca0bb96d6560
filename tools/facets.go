package tools

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"github.com/mark3labs/mcp-go/mcp"
)

// maxFacetScan bounds how many entities are counted locally when the
// caller's rights cannot be expressed as Backstage filters.
const maxFacetScan = 5000

var facetParams = []param{
	{name: "facet", typ: tString, maxLen: 128, desc: "Field to count values of, as a dot path: kind, spec.type, spec.lifecycle, spec.owner, metadata.tags, metadata.namespace, spec.system, …"},
	{name: "kind", typ: tString, desc: "Only count entities of this kind, e.g. Component."},
}

// FacetsResult is the structured answer of catalog_list_facets.
type FacetsResult struct {
	Facet  string               `json:"facet"`
	Kind   string               `json:"kind,omitempty"`
	Values []catalog.FacetValue `json:"values"`
}

// ListFacets is catalog_list_facets: the values of a field and their counts.
func ListFacets(d *Deps) Tool {
	t := newTool("catalog_list_facets", "List the distinct values of one catalog field and how many entities have each, e.g. facet spec.type with kind Component gives "+
		"service/website/library counts; facet spec.owner lists owners; metadata.tags lists tags. Use it to learn the vocabulary of the catalog "+
		"before searching, or to answer \"how many services are in production\".", schema(facetParams, "facet"), "List catalog facets")
	h := func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		a, err := decodeArgs(req.Params.RawArguments, facetParams)
		if err != nil {
			return toolError(err), nil
		}
		facet := a.str("facet")
		if facet == "" {
			return toolError(badArg("missing \"facet\": a field path such as spec.type or kind")), nil
		}
		if err := catalog.ValidateFilterKey(facet); err != nil {
			return toolError(badArg("argument \"facet\": %v", err)), nil
		}
		var user []catalog.Filter
		if k := a.str("kind"); k != "" {
			if err := catalog.ValidateKind(k); err != nil {
				return toolError(badArg("argument \"kind\": %v", err)), nil
			}
			user = []catalog.Filter{{"kind": {strings.ToLower(k)}}}
		}
		out := FacetsResult{Facet: facet, Kind: a.str("kind"), Values: []catalog.FacetValue{}}
		acc := accessFrom(ctx)
		filters, empty, exact := acc.Constrain(user)
		switch {
		case empty:
		case exact && !acc.Masks():
			res, err := d.Catalog.Facets(ctx, []string{facet}, filters)
			if err != nil {
				return toolError(err), nil
			}
			out.Values = append(out.Values, res[facet]...)
		default:
			vals, err := d.countLocally(ctx, facet, filters)
			if err != nil {
				return toolError(err), nil
			}
			out.Values = vals
		}
		// Facet values are catalog text too: redact them with the facet
		// path as their key, as the same value is judged inside an entity,
		// and merge values that redact alike, so that the number of
		// distinct secrets behind one marker is not shown either.
		merged := make(map[string]int, len(out.Values))
		for _, fv := range out.Values {
			v, err := d.redactString(ctx, facet, fv.Value)
			if err != nil {
				return toolError(err), nil
			}
			merged[v] += fv.Count
		}
		out.Values = out.Values[:0]
		for v, c := range merged {
			out.Values = append(out.Values, catalog.FacetValue{Value: v, Count: c})
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
	return Tool{Tool: t, Handler: h, Scope: ScopeRead}
}

// countLocally pages through the entities the filters select and counts
// facet values over those the caller may see.
func (d *Deps) countLocally(ctx context.Context, facet string, filters []catalog.Filter) ([]catalog.FacetValue, error) {
	counts := map[string]int{}
	q := catalog.Query{Filters: filters, Limit: 500}
	scanned := 0
	path := strings.Split(facet, ".")
	for {
		page, err := d.Catalog.Query(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, raw := range page.Items {
			scanned++
			e, ok, err := d.admit(ctx, raw)
			if err != nil {
				return nil, err
			}
			if !ok {
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

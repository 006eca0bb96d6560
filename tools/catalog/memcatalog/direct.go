package memcatalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/backstage-mcp/backstage-mcp/policy/filter"
	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
)

// The read API as Go calls: Query, GetByName, GetByRefs and Facets answer
// exactly what the catalog client (package catalog) returns when it reads
// this catalog through Handler, with no HTTP, no URL and no JSON in
// between: the arguments are checked as the client checks them, run on the
// index as the handler runs them, and the entities come out as the encoding
// the catalog holds. A Catalog is therefore a tools.Catalog in its own
// right (the mirror serves the tools this way). TestDirectMatchesHandler
// holds the two paths to the same answers and errors.

// Query is catalog.Client.Query, answered in process.
func (c *Catalog) Query(ctx context.Context, q catalog.Query) (*catalog.Page, error) {
	const op = "query entities"
	k := c.begin(ctx, op)
	if err := k.check(); err != nil {
		return nil, err
	}
	req := &queryRequest{limit: DefaultLimit, totalMode: "include"}
	if q.Cursor != "" {
		cur, err := decodeCursor(q.Cursor)
		if err != nil {
			return nil, upstreamError(op, err)
		}
		req.cur, req.isCursor = cur, true
	} else {
		pred, err := filtersPredicate(q.Filters)
		if err != nil {
			return nil, err
		}
		ofs := make([]orderField, 0, len(q.Order))
		for _, o := range q.Order {
			if err := filter.CheckKey(o.Field); err != nil {
				return nil, fmt.Errorf("catalog: order field: %w", err)
			}
			dir := "asc"
			if o.Descending {
				dir = "desc"
			}
			ofs = append(ofs, orderField{Field: o.Field, Order: dir})
		}
		ft := &fullTextFilter{}
		if q.FullTextTerm != "" {
			ft.Term = q.FullTextTerm
			if len(q.FullTextFields) > 0 {
				if err := validateFields(q.FullTextFields); err != nil {
					return nil, err
				}
				ft.HasFields = true
				ft.Fields = append([]string{}, q.FullTextFields...)
			}
		}
		cur := &cursor{orderFields: ofs, fullText: ft, pred: pred}
		if pred != nil {
			cur.query = pred.json()
		}
		req.cur = cur
	}
	if len(q.Fields) > 0 {
		if err := validateFields(q.Fields); err != nil {
			return nil, err
		}
		fields, err := parseFields(q.Fields, nil)
		if err != nil {
			return nil, upstreamError(op, err)
		}
		req.fields = fields
	}
	if q.Limit > 0 {
		req.limit = min(q.Limit, math.MaxInt32)
	}
	res := c.run(req)
	if err := k.check(); err != nil {
		return nil, err
	}
	p := &catalog.Page{TotalItems: res.totalItems}
	if res.next != nil {
		p.NextCursor = res.next.encode()
	}
	if res.prev != nil {
		p.PrevCursor = res.prev.encode()
	}
	// {"items":[…],"totalItems":N,"pageInfo":{"nextCursor":"…","prevCursor":"…"}}
	if err := k.spend(envelopeBytes + len(p.NextCursor) + len(p.PrevCursor)); err != nil {
		return nil, err
	}
	items, err := rawEntities(&k, res.items, req.fields)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		items = nil // as the client reads an empty page
	}
	p.Items = items
	return p, nil
}

// GetByName is catalog.Client.GetByName, answered in process. A missing
// entity is catalog.ErrNotFound.
func (c *Catalog) GetByName(ctx context.Context, r catalog.Ref) (json.RawMessage, error) {
	if err := catalog.ValidateKind(r.Kind); err != nil {
		return nil, fmt.Errorf("%w: %w", catalog.ErrInvalidRef, err)
	}
	if err := catalog.ValidateNamespace(r.Namespace); err != nil {
		return nil, fmt.Errorf("%w: %w", catalog.ErrInvalidRef, err)
	}
	if err := catalog.ValidateName(r.Name); err != nil {
		return nil, fmt.Errorf("%w: %w", catalog.ErrInvalidRef, err)
	}
	op := "get entity " + r.String()
	k := c.begin(ctx, op)
	if err := k.check(); err != nil {
		return nil, err
	}
	en := c.byRef[r.Key()]
	if en == nil {
		return nil, upstreamError(op, notFoundError("No entity named '%s' found, with kind '%s' in namespace '%s'", r.Name, r.Kind, r.Namespace))
	}
	if err := k.spend(len(en.json)); err != nil {
		return nil, err
	}
	return rawJSON(en.json), nil
}

// GetByRefs is catalog.Client.GetByRefs, answered in process: one item
// per ref, in order, nil for refs that do not exist.
func (c *Catalog) GetByRefs(ctx context.Context, refs []string, fields []string) ([]json.RawMessage, error) {
	if len(fields) > 0 {
		if err := validateFields(fields); err != nil {
			return nil, err
		}
	}
	op := fmt.Sprintf("get %d entities by ref", min(len(refs), catalog.MaxRefsPerBatch))
	k := c.begin(ctx, op)
	if err := k.check(); err != nil {
		return nil, err
	}
	fs, err := parseFields(fields, nil)
	if err != nil {
		return nil, upstreamError(op, err)
	}
	items := make([]*entry, len(refs))
	for i, ref := range refs {
		items[i] = c.byRef[strings.ToLower(ref)]
	}
	if err := k.spend(envelopeBytes); err != nil {
		return nil, err
	}
	return rawEntities(&k, items, fs)
}

// Facets is catalog.Client.Facets, answered in process: for each facet,
// its values (sorted) and how many entities matching the (ORed) filters
// have each.
func (c *Catalog) Facets(ctx context.Context, facets []string, filters []catalog.Filter) (map[string][]catalog.FacetValue, error) {
	const op = "list facets"
	for _, f := range facets {
		if err := filter.CheckKey(f); err != nil {
			return nil, fmt.Errorf("catalog: facet: %w", err)
		}
	}
	pred, err := filtersPredicate(filters)
	if err != nil {
		return nil, err
	}
	k := c.begin(ctx, op)
	if err := k.check(); err != nil {
		return nil, err
	}
	if len(facets) == 0 {
		return nil, upstreamError(op, inputError("request/query must have required property 'facet'"))
	}
	var allowed bitset
	if pred != nil {
		allowed = c.idx.eval(pred)
	}
	if err := k.check(); err != nil {
		return nil, err
	}
	if err := k.spend(envelopeBytes); err != nil {
		return nil, err
	}
	out := make(map[string][]catalog.FacetValue, len(facets))
	for _, f := range facets {
		if _, done := out[f]; done {
			continue
		}
		if err := k.check(); err != nil {
			return nil, err
		}
		counts := map[string]int{}
		for _, r := range c.idx.byKey[strings.ToLower(f)] {
			if allowed == nil || allowed.has(r.ent) {
				counts[c.idx.orig(r)]++
			}
		}
		// "f":[{"value":"v","count":n},…]
		if err := k.spend(len(f) + 4); err != nil {
			return nil, err
		}
		values := make([]catalog.FacetValue, 0, len(counts))
		for v, n := range counts {
			if err := k.spend(len(v) + facetValueBytes); err != nil {
				return nil, err
			}
			values = append(values, catalog.FacetValue{Value: v, Count: n})
		}
		sort.Slice(values, func(a, b int) bool { return values[a].Value < values[b].Value })
		out[f] = values
	}
	return out, nil
}

// filtersPredicate checks filters as catalog.Filter.Encode does and turns
// them into the predicate the handler parses from their encoding: keys
// sorted, a key's values ORed, keys ANDed, filters ORed, values trimmed as
// Backstage trims them.
func filtersPredicate(filters []catalog.Filter) (*predicate, error) {
	var outer []*predicate
	for _, f := range filters {
		// The grammar's own check, so that a refusal reads exactly as the
		// catalog client's (which encodes before it sends).
		if _, err := f.Encode(); err != nil {
			return nil, err
		}
		keys := make([]string, 0, len(f))
		for k := range f {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		inner := make([]*predicate, 0, len(keys))
		for _, k := range keys {
			p := &predicate{op: "field", key: k}
			vals := f[k]
			switch {
			case len(vals) == 0:
				p.cond, p.exists = "exists", true
			default:
				p.values = make([]string, len(vals))
				for i, v := range vals {
					p.values[i] = jsTrim(v)
				}
				p.cond = "in"
				if len(vals) == 1 {
					p.cond = "eq"
				}
			}
			inner = append(inner, p)
		}
		outer = append(outer, joinPredicates("all", inner))
	}
	return joinPredicates("any", outer), nil
}

func validateFields(fields []string) error {
	for _, f := range fields {
		if err := filter.CheckKey(f); err != nil {
			return fmt.Errorf("catalog: field %q: %w", f, err)
		}
	}
	return nil
}

// rawEntities is the items of an answer: each entity's encoding (its
// projection on fields when fields is not nil), nil for a nil entry. Each
// item is charged to k's answer budget before it is copied, and k's
// deadline is checked every checkEvery items.
func rawEntities(k *call, items []*entry, fields []string) ([]json.RawMessage, error) {
	out := make([]json.RawMessage, len(items))
	var proj *projector
	if fields != nil {
		proj = newProjector(fields)
		proj.raw = true // encoded at once: values copied as they are encoded
	}
	for i, en := range items {
		if i%checkEvery == checkEvery-1 {
			if err := k.check(); err != nil {
				return nil, err
			}
		}
		switch {
		case en == nil:
			if err := k.spend(len("null,")); err != nil {
				return nil, err
			}
		case proj == nil:
			if err := k.spend(len(en.json) + 1); err != nil {
				return nil, err
			}
			out[i] = rawJSON(en.json)
		default:
			b, err := encodeJSON(proj.project(en.json))
			if err != nil {
				return nil, upstreamError(k.op, err)
			}
			if err := k.spend(len(b) + 1); err != nil {
				return nil, err
			}
			out[i] = b
		}
	}
	return out, nil
}

// Bounds of the answers' envelopes, charged to an answer's budget beside
// its entities: an object with its items, total and page info, and one
// facet value's object.
const (
	envelopeBytes   = 96
	facetValueBytes = 32
	// checkEvery is how many entities a call copies between two looks
	// at its deadline.
	checkEvery = 64
)

// call is one Go call's bounds: its context, its deadline (the context's
// or the catalog's CallTimeout after the call began, whichever is first)
// and what its answer has spent of MaxAnswerBytes. It lives on the
// caller's stack.
type call struct {
	ctx      context.Context
	op       string
	deadline time.Time // zero: none
	max      int64     // 0: no bound
	spent    int64
}

func (c *Catalog) begin(ctx context.Context, op string) call {
	k := call{ctx: ctx, op: op, max: c.maxAnswer}
	if c.timeout > 0 {
		k.deadline = time.Now().Add(c.timeout)
	}
	return k
}

// check fails as the catalog client fails a request that could not
// finish: canceled (the context's error, wrapped), or out of time
// (catalog.TimedOut: the context's deadline or the call timeout passed).
func (k *call) check() error {
	if err := k.ctx.Err(); err != nil {
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("catalog: %s: %w", k.op, err)
		}
		return catalog.TimedOut(k.op)
	}
	if !k.deadline.IsZero() && !time.Now().Before(k.deadline) {
		return catalog.TimedOut(k.op)
	}
	return nil
}

// spend charges n bytes to the answer, and refuses it with the client's
// error for an over-large body (status 200: the answer exists, it is too
// large) once it exceeds MaxAnswerBytes.
func (k *call) spend(n int) error {
	if k.max <= 0 {
		return nil
	}
	k.spent += int64(n)
	if k.spent > k.max {
		return catalog.TooLarge(k.op, http.StatusOK, k.max)
	}
	return nil
}

// rawJSON is a caller's own copy of an entity's encoding.
func rawJSON(s string) json.RawMessage { return json.RawMessage(s) }

// upstreamError is the error the catalog client makes of the handler's
// answer to err.
func upstreamError(op string, err error) error {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = &apiError{name: "Error", status: http.StatusInternalServerError, message: err.Error()}
	}
	ue := &catalog.UpstreamError{Status: ae.status, Op: op, Name: ae.name}
	switch ae.status {
	case http.StatusNotFound:
		ue.Kind = catalog.ErrNotFound
	case http.StatusUnauthorized, http.StatusForbidden:
		ue.Kind = catalog.ErrNotAllowed
	case http.StatusBadRequest:
		ue.Kind = catalog.ErrBadInput
	default:
		ue.Kind = catalog.ErrUnavailable
	}
	return ue
}

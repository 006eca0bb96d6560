package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/backstage-mcp/backstage-mcp/tools/catalog"
	"github.com/mark3labs/mcp-go/mcp"
)

// rootEntity is the common start of the tools that act on one entity:
// decode the arguments strictly, read the required "ref" (defKind for refs
// without a kind; check, when set, may refuse the parsed ref), fetch and
// admit the entity, and note it for the audit. A non-nil result is the
// tool error to return.
func (d *Deps) rootEntity(ctx context.Context, req mcp.CallToolRequest, params []param, defKind string,
	check func(catalog.Ref) error) (args, entity, *mcp.CallToolResult) {
	a, err := decodeArgs(req.Params.RawArguments, params)
	if err != nil {
		return nil, entity{}, toolError(err)
	}
	if a.str("ref") == "" {
		return nil, entity{}, toolError(badArg("missing \"ref\": expected %s", catalog.RefFormat))
	}
	ref, err := catalog.ParseRef(a.str("ref"), defKind)
	if err == nil && check != nil {
		err = check(ref)
	}
	if err != nil {
		return nil, entity{}, toolError(err)
	}
	e, res := d.fetchEntity(ctx, ref)
	if res != nil {
		return nil, entity{}, res
	}
	record(ctx, e)
	if err := d.pruneNames(ctx, []entity{e}); err != nil {
		return nil, entity{}, toolError(err)
	}
	return a, e, nil
}

// entity is an admitted entity: visible to the caller, masked and redacted.
type entity struct {
	m   map[string]any
	ref string
}

// admit decodes a raw entity, re-checks it against the caller's Access,
// masks and redacts it. ok=false means the caller may not see it; an
// error means redaction failed and the whole result must be withheld.
func (d *Deps) admit(ctx context.Context, raw json.RawMessage) (entity, bool, error) {
	m, err := catalog.DecodeObject(raw)
	if err != nil || m == nil {
		return entity{}, false, fmt.Errorf("tools: %w: malformed entity", catalog.ErrUnavailable)
	}
	acc := accessFrom(ctx)
	if !acc.Visible(m) {
		callInfo(ctx).addHidden()
		return entity{}, false, nil
	}
	// Backstage's etag hashes the stored entity, relations to hidden
	// entities and masked fields included: it is not shown.
	if md, ok := m["metadata"].(map[string]any); ok {
		delete(md, "etag")
	}
	sortRelations(m)
	m = acc.Mask(m)
	if m == nil {
		callInfo(ctx).addHidden()
		return entity{}, false, nil
	}
	if d.Redactor == nil {
		return entity{}, false, errRedaction
	}
	v, counts, err := d.Redactor.Redact(m)
	if err != nil {
		return entity{}, false, fmt.Errorf("%w: %w", errRedaction, err)
	}
	rm, ok := v.(map[string]any)
	if !ok {
		return entity{}, false, errRedaction
	}
	callInfo(ctx).addRedactions(counts)
	return entity{m: rm, ref: entityRef(rm)}, true, nil
}

var errRedaction = errors.New("tools: redaction failed")

// sortRelations orders an entity's relations by type and target: the
// stored order follows the order in which Backstage processed the
// entities at their other ends, hidden ones included.
func sortRelations(m map[string]any) {
	l, ok := m["relations"].([]any)
	if !ok || len(l) < 2 {
		return
	}
	// Ordered by type + "\x00" + targetRef, compared without building that
	// string (see relationLess).
	type keyed struct {
		typ, target string
		v           any
	}
	ks := make([]keyed, len(l))
	for i, v := range l {
		r, _ := v.(map[string]any)
		t, _ := r["type"].(string)
		tr, _ := r["targetRef"].(string)
		ks[i] = keyed{t, tr, v}
	}
	slices.SortStableFunc(ks, func(a, b keyed) int { return relationCmp(a.typ, a.target, b.typ, b.target) })
	for i := range ks {
		l[i] = ks[i].v
	}
}

// relationCmp compares t1+"\x00"+r1 with t2+"\x00"+r2. Without a NUL in
// either type that is the types' order, then the targets': NUL sorts
// before every other byte, so a type that is a prefix of the other sorts
// first either way.
func relationCmp(t1, r1, t2, r2 string) int {
	if strings.IndexByte(t1, 0) >= 0 || strings.IndexByte(t2, 0) >= 0 {
		return strings.Compare(t1+"\x00"+r1, t2+"\x00"+r2)
	}
	if c := strings.Compare(t1, t2); c != 0 {
		return c
	}
	return strings.Compare(r1, r2)
}

// record notes an entity returned to the caller (for audit).
func record(ctx context.Context, e entity) { callInfo(ctx).addEntity(e.ref) }

// redactString scrubs catalog text that reaches the agent outside an
// admitted entity (facet values), judged with key (the field path it came
// from) as context.
func (d *Deps) redactString(ctx context.Context, key, s string) (string, error) {
	if d.Redactor == nil {
		return "", errRedaction
	}
	v, counts, err := d.Redactor.RedactKeyed(key, s)
	if err != nil {
		return "", fmt.Errorf("%w: %w", errRedaction, err)
	}
	out, ok := v.(string)
	if !ok {
		return "", errRedaction
	}
	callInfo(ctx).addRedactions(counts)
	return out, nil
}

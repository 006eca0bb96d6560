package tools

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
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
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return entity{}, false, fmt.Errorf("tools: %w: malformed entity", catalog.ErrUnavailable)
	}
	acc := accessFrom(ctx)
	if !acc.Visible(m) {
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
	if !ok {
		return
	}
	key := func(v any) string {
		r, _ := v.(map[string]any)
		t, _ := r["type"].(string)
		tr, _ := r["targetRef"].(string)
		return t + "\x00" + tr
	}
	sort.SliceStable(l, func(i, j int) bool { return key(l[i]) < key(l[j]) })
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

// toolError turns a failure into an IsError result with a message for
// the agent. Upstream details never reach the message.
func toolError(err error) *mcp.CallToolResult {
	var ae *argError
	switch {
	case errors.As(err, &ae):
		return mcp.NewToolResultError("invalid arguments: " + ae.msg)
	case errors.Is(err, errRedaction):
		return mcp.NewToolResultError("the result was withheld because secret redaction failed; nothing was returned")
	case errors.Is(err, catalog.ErrInvalidRef):
		return mcp.NewToolResultError(strings.TrimPrefix(err.Error(), "catalog: "))
	case errors.Is(err, catalog.ErrBadFilter):
		return mcp.NewToolResultError("invalid arguments: " + strings.TrimPrefix(err.Error(), "catalog: "))
	case errors.Is(err, catalog.ErrRateLimited):
		return mcp.NewToolResultError("Backstage is rate limiting requests; retry in a few seconds")
	case errors.Is(err, context.Canceled):
		return mcp.NewToolResultError("the call was cancelled")
	case errors.Is(err, catalog.ErrNotAllowed):
		return mcp.NewToolResultError("Backstage refused the server's credential; ask the operator to check the Backstage token")
	case errors.Is(err, catalog.ErrBadInput):
		return mcp.NewToolResultError("Backstage rejected the query as invalid; check the arguments")
	default:
		return mcp.NewToolResultError("Backstage is unavailable right now; try again later")
	}
}

// notFound is the single message for missing and hidden entities alike.
func notFound(ref string) *mcp.CallToolResult {
	return mcp.NewToolResultError(fmt.Sprintf(
		"entity %s not found. Refs are written %s; use catalog_search_entities to find the right one.", ref, catalog.RefFormat))
}

// result builds a structured result with a compact text form.
func result(structured any, text string) *mcp.CallToolResult {
	return mcp.NewToolResultStructured(structured, text)
}

// CursorCodec seals the Backstage cursors handed to agents: encrypted
// and authenticated (AES-GCM) and bound to the caller. Backstage's cursor
// is plain base64 JSON carrying the whole query and the sort value of the
// last item, and Backstage obeys an edited one; sealing keeps agents from
// forging a wider query, reusing another caller's cursor or reading
// values out of it.
type CursorCodec struct{ aead cipher.AEAD }

// NewCursorCodec derives the key from key material, or uses a random key
// when key is empty (cursors then stay valid only within this process).
func NewCursorCodec(key []byte) *CursorCodec {
	if len(key) == 0 {
		key = make([]byte, 32)
		_, _ = rand.Read(key)
	}
	k := sha256.Sum256(append([]byte("backstage-mcp cursor v1\x00"), key...))
	block, err := aes.NewCipher(k[:])
	if err != nil {
		panic(fmt.Sprintf("tools: cursor cipher: %v", err)) // a 32-byte key cannot fail
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(fmt.Sprintf("tools: cursor cipher: %v", err))
	}
	return &CursorCodec{aead: aead}
}

// Wrap returns an opaque cursor for the agent.
func (c *CursorCodec) Wrap(binding, cursor string) string {
	if cursor == "" {
		return ""
	}
	nonce := make([]byte, c.aead.NonceSize())
	_, _ = rand.Read(nonce)
	sealed := c.aead.Seal(nonce, nonce, []byte(cursor), []byte(binding))
	return base64.RawURLEncoding.EncodeToString(sealed)
}

// Unwrap verifies a cursor from the agent and returns Backstage's cursor.
func (c *CursorCodec) Unwrap(binding, s string) (string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(raw) < c.aead.NonceSize()+c.aead.Overhead() {
		return "", badArg("argument \"cursor\" is not a cursor returned by catalog_search_entities")
	}
	n := c.aead.NonceSize()
	plain, err := c.aead.Open(nil, raw[:n], raw[n:], []byte(binding))
	if err != nil {
		return "", badArg("argument \"cursor\" is not a cursor returned by catalog_search_entities for this caller")
	}
	return string(plain), nil
}

// bindingFrom identifies the caller for cursor binding.
func bindingFrom(ctx context.Context) string {
	if id, ok := ctx.Value(identityKey).(Identity); ok {
		return id.Subject + "\x00" + id.User + "\x00" + id.Agent
	}
	return ""
}

// pruneNames applies the one rule for names of other entities inside a
// visible entity: a name is shown only when it names an entity the caller
// may see. Relations and the ref-valued spec fields of catalog.RefFields
// (spec.owner, spec.dependsOn, spec.memberOf, spec.system, …) are pruned
// alike, and a ref naming a hidden entity is treated exactly like one
// naming a missing entity (both are dropped). Callers who see everything
// skip it.
//
// The targets are looked up in one by-refs request that always lists the
// pruned entities themselves too (with a projection no other request
// uses). So the request is made whether or not hidden entities left
// relations on them, and its cache key stands for the set of pruned
// entities alone: it is answered from the upstream cache exactly when the
// same entities were pruned within the window, on either of two catalogs
// that differ only in what the caller may not see.
func (d *Deps) pruneNames(ctx context.Context, ents []entity) error {
	acc := accessFrom(ctx)
	if _, open := acc.(OpenAccess); open || len(ents) == 0 {
		return nil
	}
	lookup := map[string]string{} // lower-case ref -> ref as written
	visible := map[string]bool{}
	consider := func(target string) {
		k := strings.ToLower(target)
		if _, ok := lookup[k]; ok {
			return
		}
		lookup[k] = target
		if vis, decided := acc.VisibleRef(target); decided {
			visible[k] = vis
		}
	}
	for _, e := range ents {
		lookup[strings.ToLower(e.ref)] = e.ref
		visible[strings.ToLower(e.ref)] = true // admitted
	}
	for _, e := range ents {
		for _, r := range relations(e.m) {
			consider(r.target)
		}
		forRefValues(e.m, func(_ catalog.RefField, _ any, ref string, ok bool) {
			if ok {
				consider(ref)
			}
		})
	}
	// The request lists each pruned entity twice, then each other target
	// once: the list (and so the cache key) names the pruned set without
	// ambiguity, whatever targets hidden entities added.
	selves := map[string]bool{}
	for _, e := range ents {
		selves[strings.ToLower(e.ref)] = true
	}
	var self, other []string
	for k := range lookup {
		if selves[k] {
			self = append(self, k)
		} else {
			other = append(other, k)
		}
	}
	sort.Strings(self)
	sort.Strings(other)
	refs := make([]string, 0, 2*len(self)+len(other))
	for _, k := range self {
		refs = append(refs, k, k)
	}
	refs = append(refs, other...)
	// When the caller's rights are decided by refs alone (which depends on
	// the policy only, not on any ref), every target is decided: no lookup.
	var raws []json.RawMessage
	if _, byRef := acc.VisibleRef(ents[0].ref); !byRef {
		var err error
		if raws, err = d.Catalog.GetByRefs(ctx, refs, visibilityFields); err != nil {
			return err
		}
	}
	for i, raw := range raws {
		if raw == nil || i >= len(refs) {
			continue
		}
		if _, decided := visible[refs[i]]; decided {
			continue
		}
		var m map[string]any
		if json.Unmarshal(raw, &m) == nil && m != nil && acc.Visible(m) {
			visible[refs[i]] = true
		}
	}
	for _, e := range ents {
		if l, ok := e.m["relations"].([]any); ok {
			kept := make([]any, 0, len(l))
			for _, it := range l {
				r, _ := it.(map[string]any)
				t, _ := r["targetRef"].(string)
				if visible[strings.ToLower(t)] {
					kept = append(kept, it)
				}
			}
			e.m["relations"] = kept
		}
		spec, _ := e.m["spec"].(map[string]any)
		for _, f := range catalog.RefFieldsOf(str(e.m, "kind")) {
			v, present := spec[f.Field]
			if !present {
				continue
			}
			keep := func(x any) bool {
				ref, ok := catalog.ResolveRefValue(x, f.DefaultKind, str(e.m, "metadata", "namespace"))
				// A value that is no ref names no entity: it is the
				// entity's own text and stays.
				return !ok || visible[strings.ToLower(ref)]
			}
			switch t := v.(type) {
			case []any:
				kept := make([]any, 0, len(t))
				for _, x := range t {
					if keep(x) {
						kept = append(kept, x)
					}
				}
				spec[f.Field] = kept
			case nil:
			default:
				if !keep(t) {
					delete(spec, f.Field)
				}
			}
		}
	}
	return nil
}

// visibilityFields is the projection of the pruning lookup: what the
// policy's conditions read. No other request asks for it, so its cache
// entries are the pruning's own.
var visibilityFields = []string{"kind", "metadata", "spec", "relations"}

// visibleRef reports whether the caller may see the entity a ref names,
// with the same lookup for a hidden and a missing entity.
func (d *Deps) visibleRef(ctx context.Context, ref string) (bool, error) {
	acc := accessFrom(ctx)
	if vis, decided := acc.VisibleRef(ref); decided {
		return vis, nil
	}
	raws, err := d.Catalog.GetByRefs(ctx, []string{strings.ToLower(ref)}, visibilityFields)
	if err != nil {
		return false, err
	}
	if len(raws) != 1 || raws[0] == nil {
		return false, nil
	}
	var m map[string]any
	return json.Unmarshal(raws[0], &m) == nil && m != nil && acc.Visible(m), nil
}

// forRefValues calls fn for every value of the entity's ref-valued spec
// fields, with the value resolved to a ref (ok=false when it is none).
func forRefValues(m map[string]any, fn func(f catalog.RefField, v any, ref string, ok bool)) {
	spec, _ := m["spec"].(map[string]any)
	if spec == nil {
		return
	}
	ns := str(m, "metadata", "namespace")
	for _, f := range catalog.RefFieldsOf(str(m, "kind")) {
		var vals []any
		switch t := spec[f.Field].(type) {
		case nil:
			continue
		case []any:
			vals = t
		default:
			vals = []any{t}
		}
		for _, v := range vals {
			ref, ok := catalog.ResolveRefValue(v, f.DefaultKind, ns)
			fn(f, v, ref, ok)
		}
	}
}

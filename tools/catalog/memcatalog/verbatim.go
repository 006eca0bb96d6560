package memcatalog

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/tidwall/gjson"
)

// ErrNotVerbatim is returned by Update on a catalog built without Verbatim:
// its relations are computed across entities, so they cannot be patched.
var ErrNotVerbatim = errors.New("memcatalog: Update needs a catalog built with Verbatim")

// NewJSON is New for entities given as JSON objects, e.g. the items of a
// Backstage by-query page. With Verbatim they are decoded once and never
// go through a map round trip; without it they are decoded and passed to
// New.
func NewJSON(items []json.RawMessage, opts ...Option) (*Catalog, error) {
	cfg := newConfig(opts)
	if !cfg.verbatim {
		ents := make([]map[string]any, len(items))
		for i, it := range items {
			e, err := decodeEntity(it)
			if err != nil {
				return nil, fmt.Errorf("%w: entity #%d: %w", ErrInvalidEntity, i, err)
			}
			ents[i] = e
		}
		return New(ents, opts...)
	}
	b := NewBuilder(opts...)
	if err := b.Add(items...); err != nil {
		return nil, err
	}
	return b.Catalog()
}

// Builder builds a Verbatim catalog from entities given a few at a time,
// e.g. one Backstage page after another, so that the caller need not hold
// them all: each entity is decoded, checked, indexed and kept only as its
// encoding as soon as it is added. NewJSON(items, opts...) with Verbatim
// is NewBuilder(opts...), Add(items...), Catalog(). A Builder is not safe
// for concurrent use.
type Builder struct {
	c       *Catalog
	seenRef map[string]int
	seenUID map[string]int
	idx     *searchIndex // positions in the order of Add until Catalog
	flat    *flattener
	prev    *Catalog // see Share
	pace    func()   // see Pace
	err     error
}

// NewBuilder returns an empty Builder for a catalog with opts; Verbatim is
// implied.
func NewBuilder(opts ...Option) *Builder {
	cfg := newConfig(opts)
	cfg.verbatim = true
	return &Builder{c: newCatalog(cfg, 0), seenRef: map[string]int{}, seenUID: map[string]int{}, idx: newIndex(), flat: newFlattener()}
}

// Share makes the entities added from now on share their encoding with
// prev's entity of the same ref when the two encodings are equal: a full
// sync that reads again a catalog of which little changed then holds each
// unchanged entity's text once while both copies are alive (the new index
// points into the old text). prev is not changed.
func (b *Builder) Share(prev *Catalog) { b.prev = prev }

// Pace makes Catalog call step between its stages and every megabyte of
// index it copies: a caller that keeps the heap near its live size (the
// mirror's full sync collects garbage in step) can then collect the
// lists Catalog copies from before it copies more.
func (b *Builder) Pace(step func()) { b.pace = step }

// Len is the number of entities added so far.
func (b *Builder) Len() int { return len(b.c.entries) }

// Add decodes, checks and indexes items (JSON objects checked as NewJSON
// checks them with Verbatim). After an error the Builder is unusable.
func (b *Builder) Add(items ...json.RawMessage) error {
	if b.err != nil {
		return b.err
	}
	for _, it := range items {
		if err := b.add(it); err != nil {
			b.err = err
			return err
		}
	}
	return nil
}

func (b *Builder) add(raw json.RawMessage) error {
	i := len(b.c.entries)
	en, err := verbatimEntry(raw)
	if err != nil {
		return fmt.Errorf("%w: entity #%d: %w", ErrInvalidEntity, i, err)
	}
	if j, dup := b.seenRef[en.ref]; dup {
		return fmt.Errorf("%w: entity #%d: %s duplicates entity #%d", ErrInvalidEntity, i, en.ref, j)
	}
	if j, dup := b.seenUID[en.uid]; dup {
		return fmt.Errorf("%w: entity #%d: uid %s duplicates entity #%d", ErrInvalidEntity, i, en.uid, j)
	}
	if i >= math.MaxInt32 {
		return fmt.Errorf("%w: too many entities", ErrInvalidEntity)
	}
	en.pos = int32(i)
	if b.prev != nil {
		if old := b.prev.byRef[en.ref]; old != nil && old.json == en.json {
			en.ref, en.uid, en.etag, en.json = old.ref, old.uid, old.etag, old.json
		}
	}
	if err := b.idx.add(en, b.flat); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidEntity, err)
	}
	b.seenRef[en.ref], b.seenUID[en.uid] = i, i
	b.c.entries = append(b.c.entries, en)
	return nil
}

// Catalog orders the entities by uid and returns the catalog. The Builder
// is spent: call it once.
func (b *Builder) Catalog() (*Catalog, error) {
	if b.err != nil {
		return nil, b.err
	}
	b.err = errors.New("memcatalog: Builder.Catalog called twice")
	c := b.c
	step := b.pace
	if step == nil {
		step = func() {}
	}
	b.seenRef, b.seenUID, b.flat, b.prev, b.pace = nil, nil, nil, nil, nil
	step()
	sort.Slice(c.entries, func(x, y int) bool { return c.entries[x].uid < c.entries[y].uid })
	if cap(c.entries)-len(c.entries) > len(c.entries)/8 {
		c.entries = slices.Clone(c.entries)
	}
	remap := make([]int32, len(c.entries))
	c.byRef = make(map[string]*entry, len(c.entries))
	for i, en := range c.entries {
		remap[en.pos] = int32(i) //nolint:gosec // bounded by the number of entities (checked in add)
		en.pos = int32(i)        //nolint:gosec // idem
		c.byRef[en.ref] = en
	}
	b.idx.renumber(remap)
	remap = nil //nolint:ineffassign,wastedassign // garbage for the step below
	step()
	b.idx.n = len(c.entries)
	b.idx.sortKeyRows()
	b.idx.trimPaced(step)
	c.idx = b.idx
	step()
	return c, nil
}

// Update returns a new catalog holding this one's entities, minus those
// whose uid is in remove, plus upserts (JSON objects checked as NewJSON
// checks them with Verbatim). An upsert replaces the entity with the same
// uid or the same ref. Entities left alone are shared with this catalog,
// not decoded or validated again; the search index is rebuilt. The
// receiver is unchanged and stays usable. The new catalog has the same
// options and no recorded requests.
func (c *Catalog) Update(upserts []json.RawMessage, remove []string) (*Catalog, error) {
	if !c.verbatim {
		return nil, ErrNotVerbatim
	}
	fresh := make([]*entry, 0, len(upserts))
	gone := make(map[string]bool, len(remove)+len(upserts))
	for _, uid := range remove {
		gone[uid] = true
	}
	newRef := make(map[string]int, len(upserts))
	newUID := make(map[string]int, len(upserts))
	for i, it := range upserts {
		en, err := verbatimEntry(it)
		if err != nil {
			return nil, fmt.Errorf("%w: upsert #%d: %w", ErrInvalidEntity, i, err)
		}
		if j, dup := newRef[en.ref]; dup {
			return nil, fmt.Errorf("%w: upsert #%d: %s duplicates upsert #%d", ErrInvalidEntity, i, en.ref, j)
		}
		if j, dup := newUID[en.uid]; dup {
			return nil, fmt.Errorf("%w: upsert #%d: uid %s duplicates upsert #%d", ErrInvalidEntity, i, en.uid, j)
		}
		newRef[en.ref], newUID[en.uid] = i, i
		gone[en.uid] = true
		if old := c.byRef[en.ref]; old != nil {
			gone[old.uid] = true
		}
		fresh = append(fresh, en)
	}
	n := &Catalog{
		token:       c.token,
		maxRecorded: c.maxRecorded,
		verbatim:    true,
		maxAnswer:   c.maxAnswer,
		timeout:     c.timeout,
		byRef:       make(map[string]*entry, len(c.entries)+len(fresh)),
		entries:     make([]*entry, 0, len(c.entries)+len(fresh)),
	}
	isNew := make(map[*entry]bool, len(fresh))
	oldPos := make(map[*entry]int32, len(c.entries))
	for _, en := range c.entries {
		if gone[en.uid] {
			continue
		}
		cp := *en // positions differ per catalog; the entity and its JSON are shared
		oldPos[&cp] = en.pos
		n.entries = append(n.entries, &cp)
	}
	for _, en := range fresh {
		isNew[en] = true
		n.entries = append(n.entries, en)
	}
	sort.Slice(n.entries, func(a, b int) bool { return n.entries[a].uid < n.entries[b].uid })
	remap := make([]int32, len(c.entries))
	for i := range remap {
		remap[i] = -1
	}
	for i, en := range n.entries {
		en.pos = int32(i) //nolint:gosec // bounded by the number of entities
		n.byRef[en.ref] = en
		if !isNew[en] {
			remap[oldPos[en]] = en.pos
		}
	}
	if len(n.byRef) != len(n.entries) {
		return nil, fmt.Errorf("%w: two entities share a ref", ErrInvalidEntity)
	}
	idx, err := c.idx.derive(len(n.entries), remap, fresh)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidEntity, err)
	}
	n.idx = idx
	return n, nil
}

// Version is the identity and version of one entity of a catalog.
type Version struct {
	// Ref is the lowercase kind:namespace/name.
	Ref string
	// UID is metadata.uid.
	UID string
	// ETag is metadata.etag.
	ETag string
}

// EntityJSON returns the entity with the given lower-case ref as the
// catalog serves it whole.
func (c *Catalog) EntityJSON(ref string) (json.RawMessage, bool) {
	en := c.byRef[ref]
	if en == nil {
		return nil, false
	}
	return json.RawMessage(en.json), true
}

// Versions calls fn for every entity, in uid order.
func (c *Catalog) Versions(fn func(Version)) {
	for _, en := range c.entries {
		fn(Version{Ref: en.ref, UID: en.uid, ETag: en.etag})
	}
}

// verbatimEntry decodes and checks one entity that carries its own uid,
// etag and relations.
func verbatimEntry(raw json.RawMessage) (*entry, error) {
	e, err := decodeEntity(raw)
	if err != nil {
		return nil, err
	}
	rels, hasRels := e["relations"]
	delete(e, "relations")
	if err := validate(e, false); err != nil {
		return nil, err
	}
	md := e["metadata"].(map[string]any)
	uid, _ := md["uid"].(string)
	if uid == "" {
		return nil, errors.New("metadata.uid must be a non-empty string")
	}
	etag, _ := md["etag"].(string)
	if etag == "" {
		return nil, errors.New("metadata.etag must be a non-empty string")
	}
	if hasRels {
		arr, ok := rels.([]any)
		if !ok {
			return nil, errors.New("relations must be an array")
		}
		for i, r := range arr {
			m, ok := r.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("relations[%d] must be an object", i)
			}
			t, _ := m["type"].(string)
			tr, _ := m["targetRef"].(string)
			if t == "" || tr == "" {
				return nil, fmt.Errorf("relations[%d] needs a non-empty type and targetRef", i)
			}
		}
		e["relations"] = arr
	}
	b, err := encodeJSON(e)
	if err != nil {
		return nil, err
	}
	js := string(b)
	// The uid and etag are read back from the encoding, so that the entry
	// holds pieces of it rather than the decoder's copies.
	ids := gjson.GetMany(js, "metadata.uid", "metadata.etag")
	return &entry{ref: entityRef(e), uid: ids[0].Str, etag: ids[1].Str, json: js}, nil
}

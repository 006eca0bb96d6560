package memcatalog

import (
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf16"
)

const (
	maxSearchKeyLen   = 200
	maxSearchValueLen = 200
)

// searchRow is one row of Backstage's search table for one entity.
type searchRow struct {
	key   string // lowercase dot path
	value string // lowercase value; meaningless when null
	orig  string // value as written
	null  bool
}

// keyRow is a non-null search row seen from its key: 24 bytes. The value
// as written is the lowercase value itself unless alt is set: then it is
// the index's origs[alt-1] (see searchIndex.orig).
type keyRow struct {
	value string // lowercase; usually a piece of the entity's encoding
	ent   int32
	alt   uint32
}

// searchIndex answers "which entities have key K (with value V)" as bitsets.
type searchIndex struct {
	n      int
	exists map[string][]int32  // key -> entities having a row (null or not)
	byKey  map[string][]keyRow // key -> non-null rows sorted by (value, ent): the entities with a value are a range of it
	origs  []string            // the values as written of the rows whose lowercase differs (keyRow.alt)
	grams  *gramCache          // trigrams of the fields full-text searches read
	sorts  *sortCache          // per order field: non-null set, entity -> rows
	lists  *listSets           // sets of long lists, built when a filter reads them
}

func buildIndex(entries []*entry) (*searchIndex, error) {
	idx := newIndex()
	fl := newFlattener()
	for _, en := range entries {
		if err := idx.add(en, fl); err != nil {
			return nil, err
		}
	}
	idx.n = len(entries)
	idx.sortKeyRows()
	idx.trim()
	return idx, nil
}

func newIndex() *searchIndex {
	return &searchIndex{
		exists: make(map[string][]int32),
		byKey:  make(map[string][]keyRow),
		grams:  newGramCache(),
		sorts:  newSortCache(),
		lists:  &listSets{sets: make(map[string]bitset)},
	}
}

// add indexes one decoded entry at its position; byKey is left unsorted
// (sortKeyRows).
func (idx *searchIndex) add(en *entry, fl *flattener) error {
	rows, err := fl.rowsOf(en.json)
	if err != nil {
		return fmt.Errorf("%s: %w", en.ref, err)
	}
	for _, r := range rows {
		if l := idx.exists[r.key]; len(l) == 0 || l[len(l)-1] != en.pos {
			idx.exists[r.key] = append(l, en.pos)
		}
		if r.null {
			continue
		}
		idx.byKey[r.key] = append(idx.byKey[r.key], idx.row(en.pos, r.value, r.orig))
	}
	return nil
}

// row is the keyRow of entity ent with value (lowercase) and orig (as
// written).
func (idx *searchIndex) row(ent int32, value, orig string) keyRow {
	r := keyRow{value: value, ent: ent}
	if orig != value {
		idx.origs = append(idx.origs, orig)
		r.alt = uint32(len(idx.origs)) //nolint:gosec // fewer rows than 2^32: entities are bounded by int32 positions
	}
	return r
}

// orig is the value of r as written.
func (idx *searchIndex) orig(r keyRow) string {
	if r.alt == 0 {
		return r.value
	}
	return idx.origs[r.alt-1]
}

// trim gives every list of the index its exact length, so that a built
// index holds no spare capacity left by appends.
func (idx *searchIndex) trim() { idx.trimPaced(nil) }

// trimPaced is trim with step called after every trimStepBytes copied,
// so that a caller can collect the lists copied from (see Builder.Pace).
// A list within an eighth of its length is kept as it is.
func (idx *searchIndex) trimPaced(step func()) {
	copied := 0
	paced := func(n int) {
		copied += n
		if step != nil && copied >= trimStepBytes {
			step()
			copied = 0
		}
	}
	for k, l := range idx.exists {
		if cap(l)-len(l) > len(l)/8 {
			idx.exists[k] = slices.Clone(l)
			paced(4 * len(l))
		}
	}
	for k, rows := range idx.byKey {
		if cap(rows)-len(rows) > len(rows)/8 {
			idx.byKey[k] = slices.Clone(rows)
			paced(24 * len(rows))
		}
	}
	if cap(idx.origs)-len(idx.origs) > len(idx.origs)/8 {
		idx.origs = slices.Clone(idx.origs)
	}
}

// trimStepBytes is how much trimPaced copies between two steps.
const trimStepBytes = 1 << 20

// renumber moves every entity from position p to remap[p] (a permutation;
// exists lists are sets, so they need no order).
func (idx *searchIndex) renumber(remap []int32) {
	for _, l := range idx.exists {
		for i, p := range l {
			l[i] = remap[p]
		}
	}
	for _, rows := range idx.byKey {
		for i := range rows {
			rows[i].ent = remap[rows[i].ent]
		}
	}
}

// sortKeyRows orders every byKey list by value, then position.
func (idx *searchIndex) sortKeyRows() {
	for _, rows := range idx.byKey {
		sort.Slice(rows, func(a, b int) bool {
			if rows[a].value != rows[b].value {
				return rows[a].value < rows[b].value
			}
			return rows[a].ent < rows[b].ent
		})
	}
}

var specialKeys = map[string]bool{
	"attachments": true, "relations": true, "status": true,
	"metadata.name": true, "metadata.namespace": true, "metadata.uid": true, "metadata.etag": true,
}

// jsLen is the length of s in UTF-16 code units, as JavaScript counts.
func jsLen(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// jsString is String(v) for the JSON scalars an entity can hold.
func jsString(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case bool:
		if t {
			return "true"
		}
		return "false"
	case json.Number:
		if f, err := t.Float64(); err == nil {
			return jsNumberString(f)
		}
		return t.String()
	case float64:
		return jsNumberString(t)
	case nil:
		return "null"
	}
	return fmt.Sprint(v)
}

func jsNumberString(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case f == 0:
		return "0"
	}
	a := math.Abs(f)
	if a >= 1e21 || a < 1e-6 {
		s := strconv.FormatFloat(f, 'e', -1, 64)
		// JavaScript writes 1e+21, Go 1e+21; exponents have no leading zero in JS.
		mant, exp, _ := strings.Cut(s, "e")
		sign := exp[0]
		exp = strings.TrimLeft(exp[1:], "0")
		return mant + "e" + string(sign) + exp
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// bitset is a set of entity positions.
type bitset []uint64

func newBitset(n int) bitset { return make(bitset, (n+63)/64) }

func fullBitset(n int) bitset {
	b := newBitset(n)
	for i := range b {
		b[i] = ^uint64(0)
	}
	if r := n % 64; r != 0 {
		b[len(b)-1] = (uint64(1) << r) - 1
	}
	return b
}

func (b bitset) set(i int32)      { b[i>>6] |= 1 << (uint32(i) & 63) }        //nolint:gosec // i is an entity index ≥ 0
func (b bitset) has(i int32) bool { return b[i>>6]&(1<<(uint32(i)&63)) != 0 } //nolint:gosec // i is an entity index ≥ 0
func (b bitset) and(o bitset) {
	for i := range b {
		b[i] &= o[i]
	}
}
func (b bitset) or(o bitset) {
	for i := range b {
		b[i] |= o[i]
	}
}

// not complements b within [0, n).
func (b bitset) not(n int) {
	for i := range b {
		b[i] = ^b[i]
	}
	if r := n % 64; r != 0 && len(b) > 0 {
		b[len(b)-1] &= (uint64(1) << r) - 1
	}
}

// countAll counts the members of the intersection of sets (all of one
// length) without building it.
func countAll(sets ...bitset) int {
	c := 0
	for i, w := range sets[0] {
		for _, o := range sets[1:] {
			w &= o[i]
		}
		c += bits.OnesCount64(w)
	}
	return c
}

func (b bitset) count() int {
	c := 0
	for _, w := range b {
		c += bits.OnesCount64(w)
	}
	return c
}

func (idx *searchIndex) fromList(l []int32, into bitset) {
	for _, p := range l {
		into.set(p)
	}
}

// A filter on a common value (kind=component) would set a bit for each of
// tens of thousands of entities on every query: time in proportion to the
// catalog. The set of a long list is therefore built once, the first time
// a filter reads it, and OR-ed in word by word afterwards.
const (
	// listSetRatio: a list of at least n/listSetRatio entities gets a
	// cached set (a set costs n/8 bytes, so at most listSetRatio lists of
	// one single-valued key qualify).
	listSetRatio = 16
	// maxListSets bounds the cached sets of one index (12.5 MB at
	// 100,000 entities).
	maxListSets = 1024
)

// listSets caches the sets of long posting and exists lists.
type listSets struct {
	mu   sync.Mutex
	sets map[string]bitset
}

// orList adds the entities of l, known to the index as name, to into.
func (idx *searchIndex) orList(name string, l []int32, into bitset) {
	idx.orCached(name, len(l), func(set bitset) { idx.fromList(l, set) }, into)
}

// orRows adds the entities of rows, known to the index as name, to into.
func (idx *searchIndex) orRows(name string, rows []keyRow, into bitset) {
	idx.orCached(name, len(rows), func(set bitset) {
		for _, r := range rows {
			set.set(r.ent)
		}
	}, into)
}

// orCached adds a list of n entities, known to the index as name, to
// into: fill sets them, directly in into for a short list, otherwise in
// the list's cached set, built the first time.
func (idx *searchIndex) orCached(name string, n int, fill func(bitset), into bitset) {
	if n < 64 || n < idx.n/listSetRatio {
		fill(into)
		return
	}
	c := idx.lists
	c.mu.Lock()
	set, ok := c.sets[name]
	if !ok && len(c.sets) < maxListSets {
		set = newBitset(idx.n)
		fill(set)
		c.sets[name] = set
		ok = true
	}
	c.mu.Unlock()
	if !ok {
		fill(into)
		return
	}
	into.or(set)
}

// valueRows returns the rows of key whose lowercase value is v: the
// entities having that value, in position order (byKey is sorted by
// value, then position).
func (idx *searchIndex) valueRows(key, v string) []keyRow {
	rows := idx.byKey[key]
	i := sort.Search(len(rows), func(i int) bool { return rows[i].value >= v })
	rows = rows[i:]
	j := sort.Search(len(rows), func(i int) bool { return rows[i].value > v })
	return rows[:j]
}

// derive builds the index of a catalog made of some of this index's
// entities and some new ones, without flattening the kept entities again.
// remap[p] is the new position of the entity at old position p, or -1 when
// it is gone; survivors keep their relative order (both catalogs are in
// uid order), so remapped lists stay sorted. added are the new entries,
// already at their new positions. Only byKey needs an order (value, then
// position); exists lists are sets.
func (idx *searchIndex) derive(n int, remap []int32, added []*entry) (*searchIndex, error) {
	out := &searchIndex{
		n:      n,
		exists: make(map[string][]int32, len(idx.exists)),
		byKey:  make(map[string][]keyRow, len(idx.byKey)),
		grams:  newGramCache(),
		sorts:  newSortCache(),
		lists:  &listSets{sets: make(map[string]bitset)},
	}
	addExists := map[string][]int32{}
	addByKey := map[string][]keyRow{}
	fl := newFlattener()
	for _, en := range added {
		rows, err := fl.rowsOf(en.json)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", en.ref, err)
		}
		for _, r := range rows {
			if l := addExists[r.key]; len(l) == 0 || l[len(l)-1] != en.pos {
				addExists[r.key] = append(l, en.pos)
			}
			if r.null {
				continue
			}
			addByKey[r.key] = append(addByKey[r.key], out.row(en.pos, r.value, r.orig))
		}
	}
	remapList := func(l []int32, extra []int32) []int32 {
		out := make([]int32, 0, len(l)+len(extra))
		for _, p := range l {
			if q := remap[p]; q >= 0 {
				out = append(out, q)
			}
		}
		return append(out, extra...)
	}
	for k, l := range idx.exists {
		if nl := remapList(l, addExists[k]); len(nl) > 0 {
			out.exists[k] = nl
		}
	}
	for k, l := range addExists {
		if _, done := idx.exists[k]; !done {
			out.exists[k] = l
		}
	}
	less := func(a, b keyRow) bool {
		if a.value != b.value {
			return a.value < b.value
		}
		return a.ent < b.ent
	}
	for k, rows := range idx.byKey {
		add := addByKey[k]
		sort.Slice(add, func(a, b int) bool { return less(add[a], add[b]) })
		merged := make([]keyRow, 0, len(rows)+len(add))
		j := 0
		for _, r := range rows {
			q := remap[r.ent]
			if q < 0 {
				continue
			}
			r.ent = q
			if r.alt != 0 {
				r = out.row(q, r.value, idx.origs[r.alt-1])
			}
			for j < len(add) && less(add[j], r) {
				merged = append(merged, add[j])
				j++
			}
			merged = append(merged, r)
		}
		merged = append(merged, add[j:]...)
		if len(merged) > 0 {
			out.byKey[k] = merged
		}
	}
	for k, add := range addByKey {
		if _, done := idx.byKey[k]; !done {
			sort.Slice(add, func(a, b int) bool { return less(add[a], add[b]) })
			out.byKey[k] = add
		}
	}
	out.origs = slices.Clip(out.origs)
	return out, nil
}

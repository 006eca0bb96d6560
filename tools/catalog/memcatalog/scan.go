package memcatalog

import (
	"math/bits"
	"slices"
	"sort"
)

// A by-query page walks its candidate rows in order (the order field's
// byKey rows, or the entities in uid order) until it has limit+1 of them.
// Walking every row costs time in proportion to the catalog when few rows
// match: a kind+owner search that matches 30 of 100,000 entities would
// visit all 100,000. The walk therefore takes one of two equal routes:
//
//   - dense: walk the rows in order from the cursor's position (found by
//     binary search, since rows are in cursor order) and skip the rows of
//     entities not in the set;
//   - sparse: when the set is small next to the rows, gather the rows of
//     the set's entities only (sortIndex maps an entity to its byKey rows),
//     sort their positions and walk those.
//
// Both hand the same rows, in the same order, to the same visit function;
// TestScanRoutesAgree holds them to each other.

// walkRoute chooses the walk; only tests pin a route other than
// routeAuto.
type walkRoute int

const (
	routeAuto   walkRoute = iota // sparse when sparseWalk says so, else dense
	routeDense                   // always dense
	routeSparse                  // always sparse
	routeFull                    // every row from the first, no binary search: the plain definition
)

// sortIndex is what the walk needs of one order field, built the first
// time a query orders by it (once per index: an index never changes).
type sortIndex struct {
	// nonNull holds the entities with a non-null row under the key (the
	// ones an ordered query counts).
	nonNull bitset
	// start and pos map entity e to its byKey rows: pos[start[e]:start[e+1]]
	// are their positions, ascending.
	start []int32
	pos   []int32
}

// sortCache holds the sortIndex of each order field used so far.
type sortCache struct {
	keys onceMap[*sortIndex]
}

func newSortCache() *sortCache { return &sortCache{} }

// sortIndexFor returns the sortIndex of key, building it on first use.
func (idx *searchIndex) sortIndexFor(key string) *sortIndex {
	return idx.sorts.keys.get(key, func() *sortIndex {
		si := &sortIndex{}
		rows := idx.byKey[key]
		si.nonNull = newBitset(idx.n)
		si.start = make([]int32, idx.n+1)
		for _, r := range rows {
			si.nonNull.set(r.ent)
			si.start[r.ent+1]++
		}
		for e := range idx.n {
			si.start[e+1] += si.start[e]
		}
		si.pos = make([]int32, len(rows))
		next := slices.Clone(si.start[:idx.n])
		for i, r := range rows {
			si.pos[next[r.ent]] = int32(i) //nolint:gosec // rows are capped far below 2^31
			next[r.ent]++
		}
		return si
	})
}

// sparse reports whether a page gathers the k entities of its set rather
// than walk n rows in order to find want of them: the walk visits about
// want·n/k rows, gathering sorts about k.
func (c *Catalog) sparse(k, n, want int) bool {
	switch c.route {
	case routeDense, routeFull:
		return false
	case routeSparse:
		return true
	}
	return k*k <= want*n
}

// walkSorted calls visit on the rows of sortKey whose entity is in set, in
// value order (descending when desc), starting after the cursor position
// that accept describes, until visit returns false. accept must be
// monotone along the walk: false up to the cursor, true after it.
func (c *Catalog) walkSorted(set bitset, sortKey string, desc, sparse bool, accept, visit func(qrow) bool) {
	all := c.idx.byKey[sortKey]
	if sparse {
		si := c.idx.sortIndexFor(sortKey)
		var cand []int32
		forEachBit(set, false, 0, func(e int32) bool {
			cand = append(cand, si.pos[si.start[e]:si.start[e+1]]...)
			return true
		})
		slices.Sort(cand)
		if desc {
			for i := len(cand) - 1; i >= 0; i-- {
				r := all[cand[i]]
				if !visit(qrow{r.ent, r.value}) {
					return
				}
			}
			return
		}
		for _, p := range cand {
			r := all[p]
			if !visit(qrow{r.ent, r.value}) {
				return
			}
		}
		return
	}
	at := func(i int) qrow { return qrow{all[i].ent, all[i].value} }
	if c.route == routeFull {
		accept = func(qrow) bool { return true } // visit applies the cursor itself
	}
	if desc {
		// Accepted rows are a prefix of the ascending order.
		end := sort.Search(len(all), func(i int) bool { return !accept(at(i)) })
		for i := end - 1; i >= 0; i-- {
			if set.has(all[i].ent) && !visit(at(i)) {
				return
			}
		}
		return
	}
	from := sort.Search(len(all), func(i int) bool { return accept(at(i)) })
	for i := from; i < len(all); i++ {
		if set.has(all[i].ent) && !visit(at(i)) {
			return
		}
	}
}

// walkEntities calls visit on the entities in set, in uid order
// (descending when backwards), from the first one accept takes, until
// visit returns false. accept must be monotone along the walk.
func (c *Catalog) walkEntities(set bitset, backwards bool, accept, visit func(qrow) bool) {
	n := len(c.entries)
	if c.route == routeFull {
		last := int32(n) - 1 //nolint:gosec // capped far below 2^31
		for k := range last + 1 {
			i := k
			if backwards {
				i = last - k
			}
			if !visit(qrow{ent: i}) {
				return
			}
		}
		return
	}
	var from int
	if backwards {
		// Accepted entities are a prefix of uid order.
		from = sort.Search(n, func(i int) bool { return !accept(qrow{ent: int32(i)}) }) - 1 //nolint:gosec // i < n, capped far below 2^31
	} else {
		from = sort.Search(n, func(i int) bool { return accept(qrow{ent: int32(i)}) }) //nolint:gosec // as above
	}
	if from < 0 || from >= n {
		return
	}
	forEachBit(set, backwards, int32(from), func(e int32) bool { return visit(qrow{ent: e}) }) //nolint:gosec // from < n
}

// forEachBit calls fn on the members of set from position from onwards
// (downwards when desc), until fn returns false.
func forEachBit(set bitset, desc bool, from int32, fn func(int32) bool) {
	if len(set) == 0 {
		return
	}
	w := int(from >> 6)
	if desc {
		word := set[w] & (^uint64(0) >> (63 - uint(from&63))) //nolint:gosec // from ≥ 0
		for {
			for word != 0 {
				b := 63 - bits.LeadingZeros64(word)
				if !fn(int32(w<<6 + b)) { //nolint:gosec // a position in the set
					return
				}
				word &^= 1 << uint(b) //nolint:gosec // 0 ≤ b < 64
			}
			w--
			if w < 0 {
				return
			}
			word = set[w]
		}
	}
	word := set[w] &^ (uint64(1)<<uint(from&63) - 1) //nolint:gosec // from ≥ 0
	for {
		for word != 0 {
			b := bits.TrailingZeros64(word)
			if !fn(int32(w<<6 + b)) { //nolint:gosec // a position in the set
				return
			}
			word &= word - 1
		}
		w++
		if w >= len(set) {
			return
		}
		word = set[w]
	}
}

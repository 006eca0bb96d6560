package memcatalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unsafe"
)

// exported reads every entity of srv as raw JSON, in uid order.
func exported(t *testing.T, srv *httptest.Server) []json.RawMessage {
	t.Helper()
	r := do(t, srv, "GET", "/api/catalog/entities/by-query?limit=1000", "", nil)
	var p struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatal(err)
	}
	return p.Items
}

// TestVerbatimAnswersLikeItsSource: a Verbatim catalog filled with what
// another catalog serves answers every query byte for byte like it.
func TestVerbatimAnswersLikeItsSource(t *testing.T) {
	_, src := newTestCatalog(t)
	items := exported(t, src)
	// Reverse the input: order must come from the uids, not the input.
	for i, j := 0, len(items)-1; i < j; i, j = i+1, j-1 {
		items[i], items[j] = items[j], items[i]
	}
	v, err := NewJSON(items, Verbatim())
	if err != nil {
		t.Fatal(err)
	}
	mirror := httptest.NewServer(v.Handler())
	defer mirror.Close()
	for _, path := range []string{
		"/api/catalog/entities/by-query",
		"/api/catalog/entities/by-query?filter=kind=component&orderField=metadata.name,desc",
		"/api/catalog/entities/by-query?filter=relations.ownedby=group:default/team-a&fields=metadata.name",
		"/api/catalog/entities/by-query?fullTextFilterTerm=svc&limit=2",
		"/api/catalog/entities/by-name/component/default/svc-one",
		"/api/catalog/entity-facets?facet=spec.type&facet=relations.ownedBy",
	} {
		a, b := do(t, src, "GET", path, "", nil), do(t, mirror, "GET", path, "", nil)
		if a.status != b.status || !bytes.Equal(a.body, b.body) {
			t.Errorf("%s:\nsource %d %s\nmirror %d %s", path, a.status, a.body, b.status, b.body)
		}
	}
}

func TestVerbatimKeepsGivenValues(t *testing.T) {
	raw := json.RawMessage(`{"apiVersion":"backstage.io/v1alpha1","kind":"Component",
		"metadata":{"name":"x","namespace":"default","uid":"u-1","etag":"e-1"},
		"spec":{"type":"service","lifecycle":"production","owner":"team-z","dependsOn":["b","a"]},
		"relations":[{"type":"ownedBy","targetRef":"group:default/someone-else"}]}`)
	c, err := NewJSON([]json.RawMessage{raw}, Verbatim())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()
	r := do(t, srv, "GET", "/api/catalog/entities/by-name/component/default/x", "", nil)
	for _, want := range []string{`"uid":"u-1"`, `"etag":"e-1"`, `"targetRef":"group:default/someone-else"`, `"dependsOn":["b","a"]`} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("body %s lacks %s", r.body, want)
		}
	}
	// The index is built from the given relations, not computed ones.
	p := getPage(t, srv, "/api/catalog/entities/by-query?filter=relations.ownedby=group:default/someone-else")
	if len(p.Items) != 1 {
		t.Errorf("filter on the given relation: %d items", len(p.Items))
	}
	var got []Version
	c.Versions(func(v Version) { got = append(got, v) })
	if len(got) != 1 || got[0] != (Version{Ref: "component:default/x", UID: "u-1", ETag: "e-1"}) {
		t.Errorf("Versions = %+v", got)
	}
}

func TestVerbatimRejects(t *testing.T) {
	base := `{"apiVersion":"backstage.io/v1alpha1","kind":"Group","metadata":{"name":"g"%s},"spec":{"type":"team","children":[]}%s}`
	for name, tc := range map[string]struct{ md, rest string }{
		"no uid":          {`,"etag":"e"`, `,"relations":[]`},
		"no etag":         {`,"uid":"u"`, `,"relations":[]`},
		"numeric uid":     {`,"uid":1,"etag":"e"`, `,"relations":[]`},
		"relations obj":   {`,"uid":"u","etag":"e"`, `,"relations":{}`},
		"relation no ref": {`,"uid":"u","etag":"e"`, `,"relations":[{"type":"ownedBy"}]`},
		"bad name":        {`,"uid":"u","etag":"e","title":5`, `,"relations":[]`},
		"unknown root":    {`,"uid":"u","etag":"e"`, `,"extra":1`},
	} {
		t.Run(name, func(t *testing.T) {
			raw := json.RawMessage(strings.Replace(strings.Replace(base, "%s", tc.md, 1), "%s", tc.rest, 1))
			if _, err := NewJSON([]json.RawMessage{raw}, Verbatim()); !errors.Is(err, ErrInvalidEntity) {
				t.Errorf("NewJSON(%s) = %v, want ErrInvalidEntity", raw, err)
			}
		})
	}
	one := json.RawMessage(`{"apiVersion":"backstage.io/v1alpha1","kind":"Group","metadata":{"name":"g","uid":"u","etag":"e"},"spec":{"type":"team","children":[]}}`)
	two := json.RawMessage(`{"apiVersion":"backstage.io/v1alpha1","kind":"Group","metadata":{"name":"h","uid":"u","etag":"e"},"spec":{"type":"team","children":[]}}`)
	if _, err := NewJSON([]json.RawMessage{one, two}, Verbatim()); !errors.Is(err, ErrInvalidEntity) {
		t.Errorf("duplicate uid: %v", err)
	}
	if _, err := NewJSON([]json.RawMessage{one, one}, Verbatim()); !errors.Is(err, ErrInvalidEntity) {
		t.Errorf("duplicate ref: %v", err)
	}
}

func TestUpdate(t *testing.T) {
	_, src := newTestCatalog(t)
	items := exported(t, src)
	c, err := NewJSON(items, Verbatim())
	if err != nil {
		t.Fatal(err)
	}
	uidOf := map[string]string{}
	c.Versions(func(v Version) { uidOf[v.Ref] = v.UID })

	changed := json.RawMessage(strings.Replace(c.byRef["component:default/svc-two"].json, `"lifecycle":"experimental"`, `"lifecycle":"production"`, 1))
	changed = json.RawMessage(strings.Replace(string(changed), `"etag":"`, `"etag":"new-`, 1))
	added := json.RawMessage(`{"apiVersion":"backstage.io/v1alpha1","kind":"Component","metadata":{"name":"svc-new","namespace":"default","uid":"00000000-new","etag":"e"},"spec":{"type":"service","lifecycle":"production","owner":"team-a"},"relations":[]}`)
	n, err := c.Update([]json.RawMessage{changed, added}, []string{uidOf["component:default/svc-one"]})
	if err != nil {
		t.Fatal(err)
	}
	if c.Len() != len(items) {
		t.Errorf("receiver changed: %d entities", c.Len())
	}
	if n.Len() != len(items) {
		t.Errorf("updated catalog has %d entities, want %d (one removed, one added)", n.Len(), len(items))
	}
	srv := httptest.NewServer(n.Handler())
	defer srv.Close()
	if r := do(t, srv, "GET", "/api/catalog/entities/by-name/component/default/svc-one", "", nil); r.status != 404 {
		t.Errorf("removed entity: %d", r.status)
	}
	p := getPage(t, srv, "/api/catalog/entities/by-query?filter=spec.lifecycle=experimental")
	if len(p.Items) != 0 {
		t.Errorf("old version still indexed: %v", names(p.Items))
	}
	p = getPage(t, srv, "/api/catalog/entities/by-query?limit=1")
	if got := names(p.Items); len(got) != 1 || got[0] != "svc-new" {
		t.Errorf("first by uid = %v, want svc-new", got)
	}
	var etag string
	n.Versions(func(v Version) {
		if v.Ref == "component:default/svc-two" {
			etag = v.ETag
		}
	})
	if !strings.HasPrefix(etag, "new-") {
		t.Errorf("svc-two etag = %q", etag)
	}
	// The old catalog still answers as before.
	if r := do(t, src, "GET", "/api/catalog/entities/by-name/component/default/svc-one", "", nil); r.status != 200 {
		t.Errorf("source catalog: %d", r.status)
	}
	plain, _ := New(fixture())
	if _, err := plain.Update(nil, nil); !errors.Is(err, ErrNotVerbatim) {
		t.Errorf("Update on a normalising catalog: %v", err)
	}
}

// canonicalIndex is an index with its set-valued lists sorted and each
// row's value as written spelt out (alt numbers differ between indexes).
type canonicalIndex struct {
	n      int
	exists map[string][]int32
	byKey  map[string][][3]any // value, ent, value as written
}

// canonical returns idx as a canonicalIndex.
func canonical(idx *searchIndex) canonicalIndex {
	out := canonicalIndex{n: idx.n, exists: map[string][]int32{}, byKey: map[string][][3]any{}}
	for k, l := range idx.exists {
		out.exists[k] = slices.Sorted(slices.Values(l))
	}
	for k, rows := range idx.byKey {
		for _, r := range rows {
			out.byKey[k] = append(out.byKey[k], [3]any{r.value, r.ent, idx.orig(r)})
		}
	}
	return out
}

// TestUpdateIndexEqualsRebuild: the index Update derives is the index a
// catalog built from scratch with the same entities has, for many
// random sets of changes.
func TestUpdateIndexEqualsRebuild(t *testing.T) {
	_, src := newTestCatalog(t)
	items := exported(t, src)
	base, err := NewJSON(items, Verbatim())
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		var upserts []json.RawMessage
		var remove []string
		var final []json.RawMessage
		for i, it := range items {
			switch r.IntN(4) {
			case 0: // removed
				remove = append(remove, base.entries[base.byRef[refOf(t, it)].pos].uid)
			case 1: // changed: a new description, tag and etag
				var m map[string]any
				_ = json.Unmarshal(it, &m)
				md := m["metadata"].(map[string]any)
				md["description"] = fmt.Sprintf("round %d entity %d", round, i)
				md["tags"] = []any{fmt.Sprintf("t%d", r.IntN(3))}
				md["etag"] = fmt.Sprintf("etag-%d-%d", round, i)
				b, _ := json.Marshal(m)
				upserts = append(upserts, b)
				final = append(final, b)
			default:
				final = append(final, it)
			}
		}
		if r.IntN(2) == 0 { // a brand-new entity
			b := json.RawMessage(fmt.Sprintf(`{"apiVersion":"backstage.io/v1alpha1","kind":"Component","metadata":{"name":"new-%d","namespace":"default","uid":"%08x-new","etag":"e","tags":["t1"]},"spec":{"type":"service","lifecycle":"production","owner":"team-a"},"relations":[{"type":"ownedBy","targetRef":"group:default/team-a"}]}`, round, r.Uint32()))
			upserts = append(upserts, b)
			final = append(final, b)
		}
		got, err := base.Update(upserts, remove)
		if err != nil {
			t.Fatal(err)
		}
		want, err := NewJSON(final, Verbatim())
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(canonical(got.idx), canonical(want.idx)) {
			t.Fatalf("round %d: derived index differs from a rebuilt one", round)
		}
		if got.Len() != want.Len() {
			t.Fatalf("round %d: %d vs %d entities", round, got.Len(), want.Len())
		}
		for i := range got.entries {
			if got.entries[i].uid != want.entries[i].uid || got.entries[i].pos != want.entries[i].pos {
				t.Fatalf("round %d: entry %d differs", round, i)
			}
		}
	}
}

func refOf(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	e, err := decodeEntity(raw)
	if err != nil {
		t.Fatal(err)
	}
	return entityRef(e)
}

// TestBuilderInPagesEqualsOneBuild: entities added page by page, in any
// order, give the catalog and index that indexing them all at once, in
// uid order, gives; a duplicate across pages is refused.
func TestBuilderInPagesEqualsOneBuild(t *testing.T) {
	_, src := newTestCatalog(t)
	items := exported(t, src)
	r := rand.New(rand.NewPCG(3, 4))
	for round := range 50 {
		shuffled := slices.Clone(items)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		b := NewBuilder(WithoutRecording())
		for rest := shuffled; len(rest) > 0; {
			n := min(len(rest), 1+r.IntN(4))
			if err := b.Add(rest[:n]...); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		got, err := b.Catalog()
		if err != nil {
			t.Fatal(err)
		}
		// The reference: every entity decoded and indexed at once.
		ref := make([]*entry, len(got.entries))
		for i, en := range got.entries {
			cp := *en
			ref[i] = &cp
			if int(en.pos) != i || got.byRef[en.ref] != en || (i > 0 && got.entries[i-1].uid >= en.uid) {
				t.Fatalf("round %d: entry %d out of place", round, i)
			}
		}
		want, err := buildIndex(ref)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(canonical(got.idx), canonical(want)) {
			t.Fatalf("round %d: the index built page by page differs", round)
		}
	}
	b := NewBuilder()
	if err := b.Add(items[:2]...); err != nil {
		t.Fatal(err)
	}
	if err := b.Add(items[1]); !errors.Is(err, ErrInvalidEntity) || !strings.Contains(err.Error(), "duplicates entity #1") {
		t.Fatalf("duplicate across pages: %v", err)
	}
	if _, err := b.Catalog(); err == nil {
		t.Fatal("a failed Builder made a catalog")
	}
}

// TestBuilderSharesUnchanged: a Builder sharing with a previous catalog
// builds the catalog it builds alone, and holds each unchanged entity's
// text as the previous catalog's own (the same bytes, not a copy); a
// changed entity has its own text, and the previous catalog is untouched.
func TestBuilderSharesUnchanged(t *testing.T) {
	_, src := newTestCatalog(t)
	items := exported(t, src)
	prev, err := NewJSON(items, Verbatim())
	if err != nil {
		t.Fatal(err)
	}
	prevJSON := map[string]string{}
	for _, en := range prev.entries {
		prevJSON[en.ref] = en.json
	}
	changed := slices.Clone(items)
	changed[2] = json.RawMessage(strings.Replace(string(changed[2]), `"metadata":{`, `"metadata":{"description":"changed",`, 1))
	changedRef := refOf(t, changed[2])

	alone, err := NewJSON(changed, Verbatim())
	if err != nil {
		t.Fatal(err)
	}
	b := NewBuilder()
	b.Share(prev)
	if err := b.Add(changed...); err != nil {
		t.Fatal(err)
	}
	got, err := b.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(canonical(got.idx), canonical(alone.idx)) {
		t.Fatal("the shared build's index differs from the one built alone")
	}
	same := 0
	for i, en := range got.entries {
		want := alone.entries[i]
		if en.json != want.json || en.ref != want.ref || en.uid != want.uid || en.etag != want.etag {
			t.Fatalf("entry %d: %+v, built alone %+v", i, en, want)
		}
		shared := unsafe.StringData(en.json) == unsafe.StringData(prevJSON[en.ref])
		if shared {
			same++
		}
		if shared == (en.ref == changedRef) {
			t.Errorf("%s: shares its text with the previous catalog: %v", en.ref, shared)
		}
	}
	if same != len(items)-1 {
		t.Errorf("%d of %d unchanged entities share their text", same, len(items)-1)
	}
	for _, en := range prev.entries {
		if en.json != prevJSON[en.ref] {
			t.Fatalf("the previous catalog changed: %s", en.ref)
		}
	}
}

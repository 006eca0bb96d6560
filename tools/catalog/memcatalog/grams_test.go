package memcatalog

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestGramsMatchScan checks the trigram path of full-text matching against
// the plain scan it replaces: the same entities for terms that are pieces
// of values, pieces that span two words, random strings (mostly absent),
// non-ASCII text, and terms too short or with LIKE wildcards (which take
// the scan).
func TestGramsMatchScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	words := []string{"payments", "orders", "crème", "brûlée", "api", "svc", "Ærø", "日本語", "x", "zz", "team-α", "db"}
	pick := func() string {
		var b strings.Builder
		for i := range 1 + rng.IntN(4) {
			if i > 0 {
				b.WriteByte("-_ ."[rng.IntN(4)])
			}
			b.WriteString(words[rng.IntN(len(words))])
		}
		fmt.Fprintf(&b, "-%d", rng.IntN(500))
		return b.String()
	}
	const n = gramMinRows + 1000
	ents := make([]map[string]any, 0, n)
	seen := map[string]bool{}
	for len(ents) < n {
		name := strings.ToLower(strings.NewReplacer(" ", "-", "_", "-", ".", "-").Replace(pick()))
		name = strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
				return r
			}
			return 'q'
		}, name)
		if seen[name] || len(name) > 63 {
			continue
		}
		seen[name] = true
		ents = append(ents, map[string]any{"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
			"metadata": map[string]any{"name": name, "title": pick(), "description": pick() + " " + pick()},
			"spec":     map[string]any{"type": "service", "lifecycle": "production", "owner": "team-a"}})
	}
	c, err := New(ents)
	if err != nil {
		t.Fatal(err)
	}
	idx := c.idx
	scan := func(keys []string, term string) bitset {
		out := newBitset(idx.n)
		for _, k := range keys {
			for _, r := range idx.byKey[strings.ToLower(k)] {
				if likeMatch(r.value, term) {
					out.set(r.ent)
				}
			}
		}
		return out
	}
	fields := [][]string{{"metadata.name"}, {"metadata.title"}, {"metadata.description"}, {"metadata.name", "metadata.description"}}
	var terms []string
	for range 300 {
		v := strings.ToLower(pick())
		i := rng.IntN(len(v))
		j := i + 1 + rng.IntN(len(v)-i)
		terms = append(terms, v[i:j])
	}
	for range 100 {
		b := make([]byte, 3+rng.IntN(4))
		for i := range b {
			b[i] = "abcdeopmrsy-0123 "[rng.IntN(17)]
		}
		terms = append(terms, string(b))
	}
	terms = append(terms, "ments-", "me br", "é", "本語", "ærø", "pa%ts", "or_ers", "ab", "")
	used := 0
	for _, f := range fields {
		for _, term := range terms {
			if term == "" {
				continue
			}
			got, want := idx.textMatches(f, term), scan(f, term)
			if got.count() != want.count() || !sameBits(got, want) {
				t.Fatalf("fields %v, term %q: %d entities, scan %d", f, term, got.count(), want.count())
			}
			if _, ok := idx.grams.gramCandidates(strings.ToLower(f[0]), idx.byKey[strings.ToLower(f[0])], term); ok {
				used++
			}
		}
	}
	if used < len(fields)*len(terms)/2 {
		t.Errorf("the trigram path served %d of %d matches; the test does not exercise it", used, len(fields)*len(terms))
	}
}

func sameBits(a, b bitset) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

package redact

import (
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
)

type hit struct{ kw, end int }

func bruteForce(keywords []string, text string) []hit {
	var out []hit
	lt := strings.ToLower(text)
	for end := 1; end <= len(lt); end++ {
		for i, k := range keywords {
			k = strings.ToLower(k)
			if k != "" && end >= len(k) && lt[end-len(k):end] == k {
				out = append(out, hit{i, end})
			}
		}
	}
	return out
}

func sortHits(h []hit) {
	sort.Slice(h, func(i, j int) bool {
		if h[i].end != h[j].end {
			return h[i].end < h[j].end
		}
		return h[i].kw < h[j].kw
	})
}

func TestMatcherReportsAllOverlappingMatches(t *testing.T) {
	tests := []struct {
		name     string
		keywords []string
		text     string
		want     []hit
	}{
		{"classic overlap", []string{"he", "she", "his", "hers"}, "ushers", []hit{{1, 4}, {0, 4}, {3, 6}}},
		{"suffix keyword", []string{"token", "ken", "n"}, "TOKEN", []hit{{2, 5}, {1, 5}, {0, 5}}},
		{"repeated", []string{"aa"}, "aaaa", []hit{{0, 2}, {0, 3}, {0, 4}}},
		{"case folding", []string{"Ghp_"}, "x GHP_ y ghp_", []hit{{0, 6}, {0, 13}}},
		{"none", []string{"secret"}, "nothing here", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := newMatcher(tc.keywords)
			var got []hit
			m.scan([]byte(tc.text), func(kw, end int) { got = append(got, hit{kw, end}) })
			sortHits(got)
			want := append([]hit(nil), tc.want...)
			sortHits(want)
			if len(got) != len(want) {
				t.Fatalf("got %v, want %v", got, want)
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("got %v, want %v", got, want)
				}
			}
			if m.any([]byte(tc.text)) != (len(want) > 0) {
				t.Fatal("any disagrees with scan")
			}
		})
	}
}

func TestMatcherAgainstBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alpha := "abAB_-"
	word := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = alpha[rng.IntN(len(alpha))]
		}
		return string(b)
	}
	for round := 0; round < 200; round++ {
		kws := make([]string, 1+rng.IntN(8))
		for i := range kws {
			kws[i] = word(1 + rng.IntN(4))
		}
		text := word(rng.IntN(60))
		m := newMatcher(kws)
		var got []hit
		m.scan([]byte(text), func(kw, end int) { got = append(got, hit{kw, end}) })
		want := bruteForce(kws, text)
		sortHits(got)
		sortHits(want)
		if len(got) != len(want) {
			t.Fatalf("keywords %q text %q: got %v want %v", kws, text, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("keywords %q text %q: got %v want %v", kws, text, got, want)
			}
		}
	}
}

// The scanners below serve the tests only: the redactor walks the
// automaton in its own loop (prefilterHits), which also filters and
// records hits as it goes.

// scan calls fn(keyword, end) for every occurrence of every keyword in b;
// end is the offset just past the occurrence. Occurrences are reported in
// order of their end offset.
func (m *matcher) scan(b []byte, fn func(kw, end int)) {
	s := 0
	nc := m.nclass
	delta := m.delta
	class := &m.class
	hasOut := m.hasOut
	for i := 0; i < len(b); i++ {
		s = int(delta[s*nc+int(class[b[i]])])
		if hasOut[s] {
			for _, kw := range m.out[s] {
				fn(kw, i+1)
			}
		}
	}
}

// any reports whether b contains at least one keyword.
func (m *matcher) any(b []byte) bool {
	s := 0
	nc := m.nclass
	for i := 0; i < len(b); i++ {
		s = int(m.delta[s*nc+int(m.class[b[i]])])
		if m.hasOut[s] {
			return true
		}
	}
	return false
}

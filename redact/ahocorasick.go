package redact

// matcher is a case-insensitive Aho–Corasick automaton compiled to a dense DFA
// over byte classes. It reports every occurrence of every keyword, including
// overlapping ones and keywords that are suffixes of other keywords.
type matcher struct {
	class    [256]uint8 // byte → class; ASCII letters fold to one class
	nclass   int
	delta    []uint16 // state*nclass+class → next state
	out      [][]int  // state → keyword indexes ending here (fail chain merged)
	hasOut   []bool
	keywords []string // lowercased keywords, by index
	// next is delta for the hot loop: the entry for state s and class c
	// sits at s*nclass+c and holds the next state already multiplied by
	// nclass, with bit 31 set when that state ends a keyword. One load and
	// one add per byte, no multiply, no second lookup.
	next []uint32
}

// outBit marks an entry of matcher.next whose state ends a keyword.
const outBit = 1 << 31

// newMatcher builds the automaton for the given keywords (matched ignoring
// ASCII case). Empty keywords are ignored.
func newMatcher(keywords []string) *matcher {
	m := &matcher{}
	lower := make([]string, len(keywords))
	for i, k := range keywords {
		lower[i] = asciiLower(k)
	}
	m.keywords = lower
	// Byte classes: class 0 for bytes in no keyword.
	next := 1
	for _, k := range lower {
		for i := 0; i < len(k); i++ {
			c := k[i]
			if m.class[c] == 0 {
				m.class[c] = uint8(next)
				if c >= 'a' && c <= 'z' {
					m.class[c-'a'+'A'] = uint8(next)
				}
				next++
			}
		}
	}
	m.nclass = next
	// Trie.
	type node struct {
		next map[uint8]int
		fail int
		out  []int
	}
	nodes := []node{{next: map[uint8]int{}}}
	for ki, k := range lower {
		if k == "" {
			continue
		}
		s := 0
		for i := 0; i < len(k); i++ {
			c := m.class[k[i]]
			n, ok := nodes[s].next[c]
			if !ok {
				nodes = append(nodes, node{next: map[uint8]int{}})
				n = len(nodes) - 1
				nodes[s].next[c] = n
			}
			s = n
		}
		nodes[s].out = append(nodes[s].out, ki)
	}
	if len(nodes) > 1<<16-1 {
		// The keyword list is static data of this package; a list this large is a programming error.
		panic("redact: keyword automaton larger than 65535 states")
	}
	// Breadth-first failure links and DFA transitions.
	m.delta = make([]uint16, len(nodes)*m.nclass)
	queue := make([]int, 0, len(nodes))
	for c := 0; c < m.nclass; c++ {
		if n, ok := nodes[0].next[uint8(c)]; ok {
			nodes[n].fail = 0
			m.delta[c] = uint16(n) //nolint:gosec // newMatcher caps the automaton at 65535 states
			queue = append(queue, n)
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		f := nodes[s].fail
		nodes[s].out = append(nodes[s].out, nodes[f].out...)
		for c := 0; c < m.nclass; c++ {
			if n, ok := nodes[s].next[uint8(c)]; ok {
				nodes[n].fail = int(m.delta[f*m.nclass+c])
				m.delta[s*m.nclass+c] = uint16(n) //nolint:gosec // newMatcher caps the automaton at 65535 states
				queue = append(queue, n)
			} else {
				m.delta[s*m.nclass+c] = m.delta[f*m.nclass+c]
			}
		}
	}
	m.out = make([][]int, len(nodes))
	m.hasOut = make([]bool, len(nodes))
	for i := range nodes {
		m.out[i] = nodes[i].out
		m.hasOut[i] = len(nodes[i].out) > 0
	}
	m.next = make([]uint32, len(m.delta))
	for i, t := range m.delta {
		v := uint32(t) * uint32(m.nclass) //nolint:gosec // at most 65535 states times at most 256 classes
		if m.hasOut[t] {
			v |= outBit
		}
		m.next[i] = v
	}
	return m
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

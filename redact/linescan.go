package redact

import (
	"bytes"
	"regexp/syntax"
	"sort"
	"strings"
)

// Line scan: free text is scanned at line speed. A rule whose pattern
// cannot match a newline (and has no anchor to the start or end of the
// whole text) finds the same matches in the whole text as in each line
// separately, since no match crosses a line and a line's first byte
// follows a newline, a non-word byte, as the text's first byte follows
// nothing. Its matches also each hold one of the pattern's required
// literals (case folded). So on a long text such a rule runs its pattern
// only on the lines that hold one of them, not over the whole text.
// TestLineScanEqualsWholeText checks the equality on every corpus.

// lineScanMin is the text length from which the line scan is used; shorter
// values (JSON leaves) are matched whole.
const lineScanMin = 2048

// lineScanInfo returns whether pattern p is line-safe and its required
// literals (lowercase; nil when a match may hold none of length 3 or more).
func lineScanInfo(p string) (bool, []string) {
	re, err := syntax.Parse(p, syntax.Perl)
	if err != nil {
		return false, nil
	}
	re = re.Simplify()
	if crossesLines(re) {
		return false, nil
	}
	lits := requiredLiterals(re)
	for _, l := range lits {
		if len(l) < 3 {
			return true, nil
		}
	}
	return true, lits
}

// crossesLines reports whether re can match a newline or anchors to the
// start or end of the whole text.
func crossesLines(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpAnyChar, syntax.OpBeginText, syntax.OpEndText:
		return true
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			if r == '\n' {
				return true
			}
		}
	case syntax.OpCharClass:
		for i := 0; i+1 < len(re.Rune); i += 2 {
			if re.Rune[i] <= '\n' && '\n' <= re.Rune[i+1] {
				return true
			}
		}
	}
	for _, s := range re.Sub {
		if crossesLines(s) {
			return true
		}
	}
	return false
}

// requiredLiterals returns strings one of which every match of re holds
// (lowercase ASCII), or nil when there is no such set.
func requiredLiterals(re *syntax.Regexp) []string {
	switch re.Op {
	case syntax.OpLiteral:
		s := string(re.Rune)
		for i := 0; i < len(s); i++ {
			if s[i] >= 0x80 {
				return nil
			}
		}
		return []string{strings.ToLower(s)}
	case syntax.OpCapture, syntax.OpPlus:
		return requiredLiterals(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return requiredLiterals(re.Sub[0])
		}
	case syntax.OpConcat:
		var best []string
		for _, s := range re.Sub {
			if l := requiredLiterals(s); l != nil && litScore(l) > litScore(best) {
				best = l
			}
		}
		return best
	case syntax.OpAlternate:
		var all []string
		for _, s := range re.Sub {
			l := requiredLiterals(s)
			if l == nil {
				return nil
			}
			all = append(all, l...)
		}
		return all
	}
	return nil
}

// litScore ranks literal sets: the shortest literal counts (a line must
// hold one of them).
func litScore(l []string) int {
	if len(l) == 0 {
		return 0
	}
	m := len(l[0])
	for _, s := range l {
		m = min(m, len(s))
	}
	return m
}

// linesWith returns the lines of text ([start, end) pairs, end before the
// newline) that hold one of lits, ignoring ASCII case, in order.
func linesWith(text []byte, lits []string) [][2]int {
	var out [][2]int
	for _, lit := range lits {
		for pos := 0; pos < len(text); {
			i := indexFold(text[pos:], lit)
			if i < 0 {
				break
			}
			i += pos
			s := bytes.LastIndexByte(text[:i], '\n') + 1
			e := bytes.IndexByte(text[i:], '\n')
			if e < 0 {
				e = len(text)
			} else {
				e += i
			}
			out = append(out, [2]int{s, e})
			pos = e + 1
		}
	}
	if len(out) < 2 {
		return out
	}
	sort.Slice(out, func(a, b int) bool { return out[a][0] < out[b][0] })
	kept := out[:1]
	for _, l := range out[1:] {
		if l[0] != kept[len(kept)-1][0] {
			kept = append(kept, l)
		}
	}
	return kept
}

// indexFold returns the first index of needle (lowercase ASCII) in text,
// ignoring ASCII case, or -1. The next place of each case of the first
// byte is remembered, so a text is read once whatever it holds.
func indexFold(text []byte, needle string) int {
	n := len(needle)
	if n == 0 {
		return 0
	}
	lim := len(text) - n + 1
	if lim <= 0 {
		return -1
	}
	c0, u0 := needle[0], needle[0]
	if c0 >= 'a' && c0 <= 'z' {
		u0 = c0 - 'a' + 'A'
	}
	nextOf := func(c byte, from int) int {
		if k := bytes.IndexByte(text[from:lim], c); k >= 0 {
			return from + k
		}
		return lim // none
	}
	nl, nu := nextOf(c0, 0), lim
	if u0 != c0 {
		nu = nextOf(u0, 0)
	}
	for {
		j := min(nl, nu)
		if j >= lim {
			return -1
		}
		if equalFoldLower(text[j+1:j+n], needle[1:]) {
			return j
		}
		if nl == j {
			nl = nextOf(c0, j+1)
		}
		if nu == j && u0 != c0 {
			nu = nextOf(u0, j+1)
		}
	}
}

// findLines is FindAllSubmatchIndex of rule ru over text, run only on the
// lines that hold one of its required literals; the indexes are into text.
func (ru *rule) findLines(text []byte) [][]int {
	var out [][]int
	for _, l := range linesWith(text, ru.lits) {
		for _, m := range ru.re.FindAllSubmatchIndex(text[l[0]:l[1]], -1) {
			for k := range m {
				if m[k] >= 0 {
					m[k] += l[0]
				}
			}
			out = append(out, m)
		}
	}
	return out
}

// Prefix scan: a rule whose every match starts with one of a few literals
// (its pattern opens with them, perhaps after \b) finds, in a long text,
// the same matches when its pattern is tried anchored at each place one of
// them occurs, in order, skipping places inside the previous match: a
// match can start nowhere else, and the first place where the anchored
// pattern matches is the leftmost match. The byte before the place is
// given to the anchored pattern too (as one byte it consumes), so \b sees
// what it sees in the whole text. Used for rules the line scan cannot
// take (their patterns may cross lines: "\s*").

// prefixLiterals returns the literals every match of p starts with
// (lowercase), or nil.
func prefixLiterals(p string) []string {
	re, err := syntax.Parse(p, syntax.Perl)
	if err != nil {
		return nil
	}
	lits, ok := prefixLits(re.Simplify())
	if !ok {
		return nil
	}
	for _, l := range lits {
		if len(l) < 3 {
			return nil
		}
	}
	return lits
}

func prefixLits(re *syntax.Regexp) ([]string, bool) {
	switch re.Op {
	case syntax.OpLiteral:
		return requiredLiterals(re), len(re.Rune) > 0 && requiredLiterals(re) != nil
	case syntax.OpCapture, syntax.OpPlus:
		return prefixLits(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return prefixLits(re.Sub[0])
		}
	case syntax.OpConcat:
		for k, s := range re.Sub {
			if s.Op == syntax.OpWordBoundary {
				continue // checked in context: the anchored pattern sees the byte before
			}
			lits, ok := prefixLits(s)
			if !ok || s.Op != syntax.OpLiteral || k+1 == len(re.Sub) {
				return lits, ok
			}
			// A fixed literal followed by more: every match starts with
			// the literal and one of the next part's prefixes
			// ("p" + "assw…" | "wd").
			next, ok := prefixLits(re.Sub[k+1])
			if !ok || len(lits)*len(next) > 16 {
				return lits, true
			}
			var out []string
			for _, a := range lits {
				for _, b := range next {
					out = append(out, a+b)
				}
			}
			return out, true
		}
	case syntax.OpAlternate:
		var all []string
		for _, s := range re.Sub {
			l, ok := prefixLits(s)
			if !ok {
				return nil, false
			}
			all = append(all, l...)
		}
		return all, true
	}
	return nil, false
}

// findPrefixed is FindAllSubmatchIndex of rule ru over text by the prefix
// scan.
func (ru *rule) findPrefixed(text []byte) [][]int {
	var at []int
	for _, lit := range ru.prefixLits {
		for pos := 0; pos < len(text); {
			i := indexFold(text[pos:], lit)
			if i < 0 {
				break
			}
			at = append(at, pos+i)
			pos += i + 1
		}
	}
	sort.Ints(at)
	var out [][]int
	last := -1
	for k, o := range at {
		if o < last || k > 0 && o == at[k-1] {
			continue
		}
		var m []int
		if o == 0 {
			m = ru.anchored0.FindSubmatchIndex(text)
		} else {
			m = ru.anchored.FindSubmatchIndex(text[o-1:])
			if m != nil {
				for j := range m {
					if m[j] >= 0 {
						m[j] += o - 1
					}
				}
				m[0] = o
			}
		}
		if m == nil || m[1] == m[0] {
			continue
		}
		out = append(out, m)
		last = m[1]
	}
	return out
}

package redact

import (
	"bytes"
	"regexp/syntax"
	"sort"
	"strings"
	"unicode/utf8"
)

// Line scan: free text is scanned at line speed. A rule whose pattern
// cannot match a newline (and has no anchor to the start or end of the
// whole text) finds the same matches in the whole text as in each line
// separately, since no match crosses a line and a line's first byte
// follows a newline, a non-word byte, as the text's first byte follows
// nothing. Its matches also each hold one of the pattern's required
// literals (case folded). So on a long text such a rule runs its pattern
// only on the lines that hold one of them, not over the whole text.
// Every rule's literals (line-scan literals, prefix literals and the
// "need" words) are found in one pass of one automaton over the text
// (litScan), not one search per literal and rule; a line found by a
// literal is run only when it also holds one of each of the pattern's
// other required sets (lineNeeds). A text holding a non-ASCII rune that a
// case-folded pattern matches as an ASCII letter (the Kelvin sign, the
// long s) takes the whole-text path. TestLineScanEqualsWholeText checks
// the equality on every corpus, TestFastPathsEqualWholeTextRandom on
// random text.

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

// lineNeeds returns, for a line-safe pattern p, sets of strings (lowercase
// ASCII) of which every match holds one each, besides its required
// literals: url-query-secret's "?" or "&", its word, and "=". A line the
// line scan finds by a required literal is run only when it holds one of
// every set, which changes no match: the sets are what a match must hold.
func lineNeeds(p string) [][]string {
	re, err := syntax.Parse(p, syntax.Perl)
	if err != nil {
		return nil
	}
	var out [][]string
	for _, set := range requiredAll(re.Simplify()) {
		ok := len(set) > 0
		for _, x := range set {
			ok = ok && x != ""
		}
		if ok && len(out) < 4 {
			out = append(out, set)
		}
	}
	return out
}

// requiredAll returns sets of strings of which every match of re holds one
// each: the parts of a concatenation that match a few fixed strings, or
// have required literals.
func requiredAll(re *syntax.Regexp) [][]string {
	switch re.Op {
	case syntax.OpCapture, syntax.OpPlus:
		return requiredAll(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return requiredAll(re.Sub[0])
		}
	case syntax.OpConcat:
		var out [][]string
		for _, s := range re.Sub {
			out = append(out, requiredAll(s)...)
		}
		return out
	}
	if l, ok := exactStrings(re); ok {
		return [][]string{l}
	}
	if l := requiredLiterals(re); l != nil {
		return [][]string{l}
	}
	return nil
}

// holdsOne reports whether line holds one of set, ignoring ASCII case.
func holdsOne(line []byte, set []string) bool {
	for _, x := range set {
		if len(x) == 1 {
			c := x[0]
			if bytes.IndexByte(line, c) >= 0 || c >= 'a' && c <= 'z' && bytes.IndexByte(line, c-'a'+'A') >= 0 {
				return true
			}
		} else if indexFold(line, x) >= 0 {
			return true
		}
	}
	return false
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
// (lowercase ASCII), or nil when there is no such set. Consecutive parts
// that match a small finite set of strings are joined ("p" then
// "assword" | "wd" is "password" | "pwd"), so a case-folded alternation
// that the parser factors into a prefix and short suffixes still yields
// its whole words.
func requiredLiterals(re *syntax.Regexp) []string {
	switch re.Op {
	case syntax.OpLiteral:
		if l, ok := exactStrings(re); ok {
			return l
		}
		return nil
	case syntax.OpCapture, syntax.OpPlus:
		return requiredLiterals(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return requiredLiterals(re.Sub[0])
		}
	case syntax.OpConcat:
		var best []string
		consider := func(l []string) {
			if l != nil && litScore(l) > litScore(best) {
				best = l
			}
		}
		// run is the set of strings the exact parts since the last
		// inexact one match, joined; nil when there is none.
		var run []string
		for _, s := range re.Sub {
			l, ok := exactStrings(s)
			if ok && run != nil {
				if j, ok2 := crossJoin(run, l); ok2 {
					run = j
					continue
				}
				consider(run)
				run = l
				continue
			}
			if ok {
				run = l
				continue
			}
			consider(run)
			run = nil
			consider(requiredLiterals(s))
		}
		consider(run)
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

// maxExact bounds the sets exactStrings and crossJoin build, maxClass the
// bytes of a class that exactStrings spells out.
const (
	maxExact = 64
	maxClass = 4
)

// exactStrings returns the strings (lowercase ASCII) re matches, ignoring
// ASCII case, when they are few and re matches nothing else but those (up
// to case and to the two non-ASCII runes that fold to ASCII letters, which
// foldRunes keeps out of the fast paths).
func exactStrings(re *syntax.Regexp) ([]string, bool) {
	switch re.Op {
	case syntax.OpLiteral:
		s := string(re.Rune)
		for i := 0; i < len(s); i++ {
			if s[i] >= 0x80 {
				return nil, false
			}
		}
		return []string{strings.ToLower(s)}, true
	case syntax.OpEmptyMatch:
		return []string{""}, true
	case syntax.OpCharClass:
		// A class of a few bytes, letters in their cases ([Kk], with or
		// without the Kelvin sign; [pua]).
		var set [128]bool
		var out []string
		for i := 0; i+1 < len(re.Rune); i += 2 {
			if re.Rune[i+1]-re.Rune[i] > 2*maxClass {
				return nil, false
			}
			for r := re.Rune[i]; r <= re.Rune[i+1]; r++ {
				var b byte
				switch {
				case r == '\u212a':
					b = 'k'
				case r == '\u017f':
					b = 's'
				case r < 0x80:
					b = byte(r) //nolint:gosec // r < 0x80
					if b >= 'A' && b <= 'Z' {
						b += 'a' - 'A'
					}
				default:
					return nil, false
				}
				if !set[b] {
					set[b] = true
					out = append(out, string(b))
				}
			}
		}
		if len(out) == 0 || len(out) > maxClass {
			return nil, false
		}
		return out, true
	case syntax.OpCapture:
		return exactStrings(re.Sub[0])
	case syntax.OpQuest:
		l, ok := exactStrings(re.Sub[0])
		if !ok || len(l)+1 > maxExact {
			return nil, false
		}
		return append(l, ""), true
	case syntax.OpConcat:
		out := []string{""}
		for _, s := range re.Sub {
			l, ok := exactStrings(s)
			if !ok {
				return nil, false
			}
			if out, ok = crossJoin(out, l); !ok {
				return nil, false
			}
		}
		return out, true
	case syntax.OpAlternate:
		var out []string
		for _, s := range re.Sub {
			l, ok := exactStrings(s)
			if !ok || len(out)+len(l) > maxExact {
				return nil, false
			}
			out = append(out, l...)
		}
		return out, true
	}
	return nil, false
}

// crossJoin returns every a+b of a and b, when there are at most maxExact.
func crossJoin(a, b []string) ([]string, bool) {
	if len(a)*len(b) > maxExact {
		return nil, false
	}
	out := make([]string, 0, len(a)*len(b))
	for _, x := range a {
		for _, y := range b {
			out = append(out, x+y)
		}
	}
	return out, true
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

// litScan holds the places of the rules' literals in one text, found in
// one pass of the literal automaton (Redactor.lits) over it, on the first
// rule that asks for them.
type litScan struct {
	done bool
	// fold: the text holds a rune that folds to an ASCII letter (the
	// Kelvin sign, the long s), which a case-folded pattern matches and
	// the literal automaton does not see: every pattern runs whole.
	fold bool
	hits []int // pairs: literal index, end offset
}

// scanned fills sc for text, once, and reports whether the fast paths may
// use it.
func (r *Redactor) scanned(text []byte, sc *litScan) bool {
	r.scan(text, sc)
	return !sc.fold
}

// scan fills sc for text once.
func (r *Redactor) scan(text []byte, sc *litScan) {
	if sc.done {
		return
	}
	sc.done = true
	if bytes.Contains(text, kelvin) || bytes.Contains(text, longS) {
		sc.fold = true
		return
	}
	if sc.hits == nil {
		sc.hits = make([]int, 0, 64+len(text)/64)
	}
	m := r.lits
	next := m.next
	class := &m.class
	nc := uint32(m.nclass) //nolint:gosec // at most 256 classes
	st := uint32(0)
	for i := 0; i < len(text); i++ {
		v := next[st+uint32(class[text[i]])]
		st = v &^ outBit
		if v&outBit == 0 {
			continue
		}
		for _, li := range m.out[st/nc] {
			sc.hits = append(sc.hits, li, i+1)
		}
	}
}

// The two non-ASCII runes whose case folds are ASCII letters.
var (
	kelvin = []byte("\u212a")
	longS  = []byte("\u017f")
)

// findLines is FindAllSubmatchIndex of rule ru over text, run only on the
// lines that hold one of its required literals (in order, each line once,
// the line without its newline); the indexes are into text.
func (r *Redactor) findLines(ru *rule, text []byte, sc *litScan) [][]int {
	var out [][]int
	ls, le := 0, -1 // the last line run
	for i := 0; i+1 < len(sc.hits); i += 2 {
		li := sc.hits[i]
		if !ru.litSet.has(li) {
			continue
		}
		start := sc.hits[i+1] - len(r.lits.keywords[li])
		if start >= ls && start <= le {
			continue // hits come in order of their end: the line was run
		}
		from := max(le+1, 0)
		ls = from + bytes.LastIndexByte(text[from:start], '\n') + 1
		if k := bytes.IndexByte(text[start:], '\n'); k >= 0 {
			le = start + k
		} else {
			le = len(text)
		}
		line := text[ls:le]
		run := true
		for _, set := range ru.lineNeeds {
			if !holdsOne(line, set) {
				run = false
				break
			}
		}
		if !run {
			continue
		}
		for _, m := range ru.re.FindAllSubmatchIndex(line, -1) {
			for k := range m {
				if m[k] >= 0 {
					m[k] += ls
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
		return exactStrings(re)
	case syntax.OpCapture, syntax.OpPlus:
		return prefixLits(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return prefixLits(re.Sub[0])
		}
	case syntax.OpConcat:
		// Consecutive parts that match a few fixed strings are joined
		// ("sq" [pua] "_" is "sqp_" | "squ_" | "sqa_"), then the prefixes
		// of the first other part are added when they are few.
		var acc []string
		started := false
		for _, s := range re.Sub {
			if s.Op == syntax.OpWordBoundary && !started {
				continue // checked in context: the anchored pattern sees the byte before
			}
			if l, ok := exactStrings(s); ok {
				if !started {
					acc, started = l, true
					continue
				}
				if j, ok := crossJoin(acc, l); ok {
					acc = j
					continue
				}
				return acc, true
			}
			if !started {
				return prefixLits(s)
			}
			if next, ok := prefixLits(s); ok {
				if j, ok := crossJoin(acc, next); ok {
					return j, true
				}
			}
			return acc, true
		}
		return acc, started
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

// leadSplit splits a pattern that opens with "(?:^|[class])" (the start of
// the text or one byte of a class, then the rest: ODBC's
// "(?:^|[;\"'\s])password=…") into the class, and the rest as a pattern,
// when every match of the rest starts with one of a few literals (returned
// too). A match then starts at a literal, at the text's start, or one
// byte before a literal, on a byte of the class. The rest must hold no
// capture that the opening held (it holds all of them).
func leadSplit(p string) (class, rest string, lits []string) {
	re, err := syntax.Parse(p, syntax.Perl)
	if err != nil {
		return "", "", nil
	}
	re = re.Simplify()
	if re.Op != syntax.OpConcat || len(re.Sub) < 2 {
		return "", "", nil
	}
	lead := re.Sub[0]
	if lead.Op != syntax.OpAlternate || len(lead.Sub) != 2 || lead.Sub[0].Op != syntax.OpBeginText || lead.Sub[1].Op != syntax.OpCharClass {
		return "", "", nil
	}
	r := &syntax.Regexp{Op: syntax.OpConcat, Flags: re.Flags, Sub: re.Sub[1:]}
	l, ok := prefixLits(r)
	if !ok {
		return "", "", nil
	}
	for _, x := range l {
		if len(x) < 3 {
			return "", "", nil
		}
	}
	return lead.Sub[1].String(), r.String(), l
}

// findPrefixed is FindAllSubmatchIndex of rule ru over text by the prefix
// scan.
func (r *Redactor) findPrefixed(ru *rule, text []byte, sc *litScan) [][]int {
	var at []int
	for i := 0; i+1 < len(sc.hits); i += 2 {
		if li := sc.hits[i]; ru.prefixSet.has(li) {
			at = append(at, sc.hits[i+1]-len(r.lits.keywords[li]))
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
		if ru.leadClass != nil {
			// "(?:^|[class])rest": at the text's start the rest alone;
			// elsewhere the byte before on the class, then the rest.
			if o == 0 {
				m = ru.anchored0.FindSubmatchIndex(bounded(text, 0, ru.anchoredMax))
			} else if o-1 >= last {
				m = ru.anchored.FindSubmatchIndex(bounded(text, o-1, ru.anchoredMax))
				for j := range m {
					if m[j] >= 0 {
						m[j] += o - 1
					}
				}
			}
		} else if o == 0 {
			m = ru.anchored0.FindSubmatchIndex(bounded(text, 0, ru.anchoredMax))
		} else {
			m = ru.anchored.FindSubmatchIndex(bounded(text, o-1, ru.anchoredMax))
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

// bounded returns text from o, cut one byte past the longest match n of
// an anchored pattern (all of it when n < 0): a match tried at o is the
// same in the cut text, and a \b at its end still sees the byte after it.
// The regexp engine then runs its backtracker on a short input instead of
// its NFA over the rest of the text.
func bounded(text []byte, o, n int) []byte {
	if n < 0 || o+n+1 >= len(text) {
		return text[o:]
	}
	return text[o : o+n+1]
}

// maxMatchLen returns the most bytes a match of pattern p can span, or -1
// when there is no bound or the pattern anchors to the end of the text
// (which a cut text would move).
func maxMatchLen(p string) int {
	re, err := syntax.Parse(p, syntax.Perl)
	if err != nil {
		return -1
	}
	return maxLen(re.Simplify())
}

func maxLen(re *syntax.Regexp) int {
	switch re.Op {
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpBeginText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return 0
	case syntax.OpLiteral:
		return utf8.UTFMax * len(re.Rune)
	case syntax.OpCharClass, syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return utf8.UTFMax
	case syntax.OpCapture:
		return maxLen(re.Sub[0])
	case syntax.OpQuest:
		return maxLen(re.Sub[0])
	case syntax.OpRepeat:
		n := maxLen(re.Sub[0])
		if re.Max < 0 || n < 0 {
			return -1
		}
		return re.Max * n
	case syntax.OpConcat:
		t := 0
		for _, s := range re.Sub {
			n := maxLen(s)
			if n < 0 {
				return -1
			}
			t += n
		}
		return t
	case syntax.OpAlternate:
		t := 0
		for _, s := range re.Sub {
			n := maxLen(s)
			if n < 0 {
				return -1
			}
			t = max(t, n)
		}
		return t
	}
	return -1 // star, plus, end of text or line
}

// litSet is a set of literal indexes of the literal automaton.
type litSet []uint64

func (s litSet) has(i int) bool { return i>>6 < len(s) && s[i>>6]&(1<<(uint(i)&63)) != 0 }

func (s *litSet) add(i int) {
	for len(*s) <= i>>6 {
		*s = append(*s, 0)
	}
	(*s)[i>>6] |= 1 << (uint(i) & 63)
}

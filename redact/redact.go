package redact

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"math/bits"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Errors returned by the JSON and Value walks. Callers must withhold the
// unredacted input whenever an error is returned.
var (
	// ErrInvalidJSON is returned when a document is not valid JSON.
	ErrInvalidJSON = errors.New("redact: invalid JSON")
	// ErrTooLarge is returned when a document exceeds the configured size.
	ErrTooLarge = errors.New("redact: document too large")
	// ErrTooDeep is returned when a document nests deeper than the configured depth.
	ErrTooDeep = errors.New("redact: document nested too deep")
	// ErrUnsupportedType is returned by Value for a Go type that is not a decoded JSON value.
	ErrUnsupportedType = errors.New("redact: unsupported value type")
	// ErrStopped is returned by JSONUntil when its stop function asked the
	// walk to stop (the caller's work budget ran out).
	ErrStopped = errors.New("redact: stopped before the document was checked")
)

// Default limits.
const (
	DefaultMaxJSONSize = 64 << 20
	DefaultMaxDepth    = 512
	maxRounds          = 4 // redaction passes until nothing more is found
	maxRules           = 256
)

// Report counts what one call removed.
type Report struct {
	// Counts maps a rule id to the number of redactions it made.
	Counts map[string]int
	// Invisible is the number of invisible Unicode runes removed.
	Invisible int
}

// Total returns the number of redactions (invisible runes are not counted).
func (r Report) Total() int {
	n := 0
	for _, c := range r.Counts {
		n += c
	}
	return n
}

// Merge adds the counts of o to r.
func (r *Report) Merge(o Report) {
	for id, c := range o.Counts {
		r.add(id, c)
	}
	r.Invisible += o.Invisible
}

func (r *Report) add(id string, n int) {
	if r.Counts == nil {
		r.Counts = make(map[string]int)
	}
	r.Counts[id] += n
}

// RuleInfo describes one detector.
type RuleInfo struct {
	ID          string // the id used in "[REDACTED:<id>]" and in Report.Counts
	Family      string // a group of related rules ("github", "private-key", …)
	Description string
}

// Finding is one detected secret: the rule that found it and its byte span in
// the input passed to FindText or FindJSON.
type Finding struct {
	Rule       string
	Start, End int
}

// Option configures a Redactor.
type Option func(*config) error

type config struct {
	allow    map[string]bool
	disabled map[string]bool
	maxSize  int
	maxDepth int
}

// WithAllowlist makes the given exact values never be redacted (for instance
// well-known public identifiers of an organisation).
func WithAllowlist(values ...string) Option {
	return func(c *config) error {
		for _, v := range values {
			c.allow[v] = true
		}
		return nil
	}
}

// WithoutRules disables rules by id. Unknown ids are an error.
func WithoutRules(ids ...string) Option {
	return func(c *config) error {
		for _, id := range ids {
			c.disabled[id] = true
		}
		return nil
	}
}

// WithMaxJSONSize bounds the size of documents accepted by JSON (bytes).
func WithMaxJSONSize(n int) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("redact: max JSON size must be positive, got %d", n)
		}
		c.maxSize = n
		return nil
	}
}

// WithMaxDepth bounds the nesting depth accepted by JSON and Value.
func WithMaxDepth(n int) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("redact: max depth must be positive, got %d", n)
		}
		c.maxDepth = n
		return nil
	}
}

// rule is a compiled detector.
type rule struct {
	ruleDef
	gate         int            // facts the text must have before the regex is worth running
	leadBoundary bool           // the match must not follow a word character, but glue may allow it
	glue         glue           // what may stand before a match (leadBoundary)
	prefixLen    int            // length of the pattern's literal prefix
	windowed     bool           // run only on windows around keyword hits
	lineSafe     bool           // the pattern cannot match a newline (linescan.go)
	lits         []string       // required literals of the pattern, for the line scan
	prefixLits   []string       // literals every match starts with, for the prefix scan
	litSet       litSet         // lits, as indexes of Redactor.lits
	lineNeeds    [][]string     // more sets a line must hold one of each of, for the line scan (lineNeeds)
	needSet      litSet         // need, as indexes of Redactor.lits
	prefixSet    litSet         // prefixLits, as indexes of Redactor.lits
	anchored     *regexp.Regexp // the pattern anchored after one byte of context
	anchored0    *regexp.Regexp // the pattern anchored at the start of the text
	anchoredMax  int            // the longest match of anchored and anchored0, -1 unbounded (bounded)
	leadClass    *regexp.Regexp // set when the pattern opens with (?:^|[class]) (leadSplit); anchored and anchored0 are then the class and rest, and the rest
	re           *regexp.Regexp
	nameGroup    int
	secretGroups []int
}

type ruleSet [maxRules / 64]uint64

func (s *ruleSet) set(i int)      { s[i>>6] |= 1 << (uint(i) & 63) }
func (s *ruleSet) has(i int) bool { return s[i>>6]&(1<<(uint(i)&63)) != 0 }
func (s *ruleSet) empty() bool    { return s[0]|s[1]|s[2]|s[3] == 0 }

// Redactor detects and redacts secrets. It is safe for concurrent use; the
// zero value is not usable — use New.
type Redactor struct {
	rules      []rule
	keys       keyCache
	generic    int     // index of generic-secret, or -1
	dockerAuth int     // index of docker-config-auth, or -1
	assigned   int     // index of generic-assigned (no keywords: run on every text), or -1
	ctxRules   ruleSet // rules that a key can vouch for: checkContext, except url-query-secret
	m          *matcher
	lits       *matcher // the line and prefix scans' literals of every rule, found in one pass (linescan.go)
	kwRules    [][]int  // keyword → rules
	kwExact    []string // keyword as written when case-sensitive, else ""
	kwWindowed []bool   // keyword belongs to a windowed rule
	kwContext  []bool   // keyword is a credential word of generic-context
	allow      map[string]bool
	maxSize    int
	maxDepth   int
	calls      callCounts
	wholeText  bool      // tests: run every pattern over the whole text (no line scan)
	wholeRound bool      // tests: read the whole text again in every round of process
	hits       sync.Pool // *[]int: keyword hits of one detect call, reused
}

// callCounts counts the calls of the public entry points.
type callCounts struct {
	json, value, keyed, text atomic.Uint64
}

// Calls counts how often each entry point has been called on a Redactor:
// how much redaction work one request costs, and a test's way to see that
// a change does not make it cost more.
type Calls struct {
	JSON, Value, KeyedValue, Text uint64
}

// Calls returns the calls made so far.
func (r *Redactor) Calls() Calls {
	return Calls{JSON: r.calls.json.Load(), Value: r.calls.value.Load(), KeyedValue: r.calls.keyed.Load(), Text: r.calls.text.Load()}
}

// New returns a Redactor with the default rule set.
func New(opts ...Option) (*Redactor, error) {
	c := &config{allow: map[string]bool{}, disabled: map[string]bool{}, maxSize: DefaultMaxJSONSize, maxDepth: DefaultMaxDepth}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	defs := defaultRuleDefs()
	known := map[string]bool{}
	for _, d := range defs {
		if known[d.id] {
			return nil, fmt.Errorf("redact: duplicate rule id %q", d.id)
		}
		known[d.id] = true
	}
	for id := range c.disabled {
		if !known[id] {
			return nil, fmt.Errorf("redact: unknown rule id %q", id)
		}
	}
	r := &Redactor{allow: c.allow, maxSize: c.maxSize, maxDepth: c.maxDepth, generic: -1, dockerAuth: -1, assigned: -1}
	r.keys.seed = maphash.MakeSeed()
	r.hits.New = func() any { return new([]int) }
	kwIndex := map[string]int{}
	var keywords []string
	for _, d := range defs {
		if c.disabled[d.id] {
			continue
		}
		pattern, lead, gl := d.pattern, false, glueNone
		if d.prio == prioProvider || d.glue != glueAuto {
			// A literal prefix lets the regexp engine skip ahead; the word
			// boundary, or the glue the prefix allows, is checked by hand.
			if p, g := gluePattern(pattern, d.glue); g != glueNone {
				pattern, lead, gl = p, true, g
			}
		}
		if !lead && strings.HasPrefix(pattern, `\b`) && len(pattern) > 2 && isWordByte(pattern[2]) && !strings.Contains(pattern, "|") {
			pattern, lead = pattern[2:], true
		}
		re, err := regexp.Compile(pattern)
		if err != nil {
			return nil, fmt.Errorf("redact: rule %s: %w", d.id, err)
		}
		safe, lits := lineScanInfo(pattern)
		var needs [][]string
		if safe && lits != nil {
			needs = lineNeeds(pattern)
		}
		cr := rule{lineNeeds: needs, ruleDef: d, re: re, lineSafe: safe, lits: lits, nameGroup: -1, leadBoundary: lead, glue: gl, prefixLen: len(literalPrefix(strings.TrimPrefix(strings.TrimPrefix(d.pattern, "(?i)"), `\b`))), windowed: d.id == "generic-secret" || d.id == "generic-keyword-entropy" || d.id == "generic-context"}
		if !(safe && lits != nil) {
			if pl := prefixLiterals(pattern); pl != nil {
				a, err1 := regexp.Compile(`^(?s:.)(?:` + pattern + `)`)
				a0, err2 := regexp.Compile(`^(?:` + pattern + `)`)
				if err1 == nil && err2 == nil {
					cr.prefixLits, cr.anchored, cr.anchored0 = pl, a, a0
					cr.anchoredMax = boundOf(a.String(), a0.String())
				}
			} else if class, rest, pl := leadSplit(pattern); pl != nil {
				a, err1 := regexp.Compile(`^` + class + `(?:` + rest + `)`)
				a0, err2 := regexp.Compile(`^(?:` + rest + `)`)
				if err1 == nil && err2 == nil && a.NumSubexp() == re.NumSubexp() && a0.NumSubexp() == re.NumSubexp() {
					cr.prefixLits, cr.anchored, cr.anchored0, cr.leadClass = pl, a, a0, a
					cr.anchoredMax = boundOf(a.String(), a0.String())
				}
			}
		}
		for i, n := range re.SubexpNames() {
			if i == 0 {
				continue
			}
			if n == "name" {
				cr.nameGroup = i
			} else {
				cr.secretGroups = append(cr.secretGroups, i)
			}
		}
		switch {
		case d.id == "url-query-secret":
			cr.gate = factQuery
		case d.check == checkContext && d.format:
			// The format decides, not entropy: a value of the format may
			// have no long run of letters and digits ("00QCjAl4MlV-WPXM-…"),
			// but every one is 24 or more characters of [A-Za-z0-9+/_=-];
			// formatGate names a stricter run where the format has one
			// (32 hex, 24 alphanumerics).
			cr.gate = d.formatGate
			if cr.gate == 0 {
				cr.gate = factFormat16
			}
			if !d.anySep {
				cr.gate |= factAssign
			}
		case d.check == checkContext && d.anySep:
			cr.gate = factAlnum16
		case d.check == checkContext:
			cr.gate = factAssign | factAlnum16
		case d.check == checkGeneric && !d.anySep:
			cr.gate = factAssign
		case d.check == checkLoose:
			cr.gate = factLongToken
		case d.check == checkShape:
			cr.gate = factFormat16
		}
		ri := len(r.rules)
		switch d.id {
		case "generic-secret":
			r.generic = ri
		case "docker-config-auth":
			r.dockerAuth = ri
		case "generic-assigned":
			r.assigned = ri
		}
		r.rules = append(r.rules, cr)
		if d.check == checkContext && d.id != "url-query-secret" {
			r.ctxRules.set(ri)
		}
		for _, k := range d.keywords {
			ki, ok := kwIndex[k]
			if !ok {
				ki = len(keywords)
				kwIndex[k] = ki
				exact := ""
				word := k
				if strings.HasPrefix(k, "=") {
					word = k[1:]
					exact = word
				}
				keywords = append(keywords, word)
				r.kwExact = append(r.kwExact, exact)
				r.kwRules = append(r.kwRules, nil)
			}
			r.kwRules[ki] = append(r.kwRules[ki], ri)
			for len(r.kwWindowed) <= ki {
				r.kwWindowed = append(r.kwWindowed, false)
			}
			r.kwWindowed[ki] = r.kwWindowed[ki] || cr.windowed
		}
	}
	if len(r.rules) > maxRules {
		return nil, fmt.Errorf("redact: too many rules (%d > %d)", len(r.rules), maxRules)
	}
	r.m = newMatcher(keywords)
	litIndex := map[string]int{}
	var lits []string
	for i := range r.rules {
		ru := &r.rules[i]
		for _, x := range []struct {
			from []string
			to   *litSet
		}{{ru.lits, &ru.litSet}, {ru.prefixLits, &ru.prefixSet}, {ru.need, &ru.needSet}} {
			for _, l := range x.from {
				li, ok := litIndex[l]
				if !ok {
					li = len(lits)
					litIndex[l] = li
					lits = append(lits, l)
				}
				x.to.add(li)
			}
		}
	}
	r.lits = newMatcher(lits)
	r.kwContext = make([]bool, len(keywords))
	for i, k := range keywords {
		r.kwContext[i] = contextWordSet[k]
	}
	if len(r.m.delta)/r.m.nclass > 1<<16 {
		return nil, errors.New("redact: keyword automaton too large")
	}
	return r, nil
}

// boundOf returns the longest match of either pattern, or -1 when one has
// no bound.
func boundOf(a, b string) int {
	x, y := maxMatchLen(a), maxMatchLen(b)
	if x < 0 || y < 0 {
		return -1
	}
	return max(x, y)
}

// Rules lists the active detectors.
func (r *Redactor) Rules() []RuleInfo {
	out := make([]RuleInfo, len(r.rules))
	for i, ru := range r.rules {
		out[i] = RuleInfo{ID: ru.id, Family: ru.family, Description: ru.desc}
	}
	return out
}

// prefilter returns the rules whose keywords occur in b.
func (r *Redactor) prefilter(b []byte) (set ruleSet) {
	return r.prefilterHits(b, nil)
}

// prefilterHits is prefilter that also records, in hits, the end offsets of
// keywords that belong to windowed rules.
func (r *Redactor) prefilterHits(b []byte, hits *[]int) (set ruleSet) {
	m := r.m
	next := m.next
	class := &m.class
	nc := uint32(m.nclass) //nolint:gosec // at most 256 classes
	s := uint32(0)
	for i := 0; i < len(b); i++ {
		v := next[s+uint32(class[b[i]])]
		s = v &^ outBit
		if v&outBit == 0 {
			continue
		}
		for _, kw := range m.out[s/nc] {
			if ex := r.kwExact[kw]; ex != "" {
				if i+1 < len(ex) || string(b[i+1-len(ex):i+1]) != ex {
					continue
				}
			}
			for _, ri := range r.kwRules[kw] {
				set.set(ri)
			}
			if hits != nil && r.kwWindowed[kw] && len(*hits) < 2*maxHits {
				*hits = append(*hits, kw, i+1)
			}
		}
	}
	return set
}

// span is a finding in the coordinates of the text being examined.
type span struct {
	start, end int
	rule       int
}

// detect finds secrets in b. key, when not empty, is the JSON key (or the
// sibling "name") under which b was found; it is used as context.
func (r *Redactor) detect(b []byte, key *keyInfo) []span {
	var spans []span
	hp := r.hits.Get().(*[]int)
	hits := (*hp)[:0]
	defer func() {
		if cap(hits) <= 2*maxHits {
			*hp = hits[:0]
			r.hits.Put(hp)
		}
	}()
	if set := r.prefilterHits(b, &hits); !set.empty() {
		spans = r.runRules(b, set, nil, hits, spans)
	}
	spans = r.runAssigned(b, nil, spans)
	if len(b) >= lineScanMin {
		// A long text: the decoded view of the lines around each encoded
		// byte, one region at a time (encodedRegions); most texts hold
		// none, which three memchr passes tell.
		var regions [][2]int
		if bytes.IndexByte(b, '%') >= 0 || bytes.IndexByte(b, '\\') >= 0 || formEncoded(b) {
			regions = encodedRegions(b)
		}
		for _, g := range regions {
			view, starts, ok := decodeView(b[g[0]:g[1]])
			if !ok {
				continue
			}
			for k := range starts {
				starts[k] += g[0]
			}
			hits = hits[:0]
			if vs := r.prefilterHits(view, &hits); !vs.empty() {
				spans = r.runRules(view, vs, starts, hits, spans)
			}
			if urlEncoded(b[g[0]:g[1]]) {
				spans = r.runAssigned(view, starts, spans)
			}
		}
	} else if bytes.IndexByte(b, '%') >= 0 || bytes.IndexByte(b, '\\') >= 0 || formEncoded(b) {
		if view, starts, ok := decodeView(b); ok {
			hits = hits[:0]
			if vs := r.prefilterHits(view, &hits); !vs.empty() {
				spans = r.runRules(view, vs, starts, hits, spans)
			}
			if urlEncoded(b) {
				spans = r.runAssigned(view, starts, spans)
			}
		}
	}
	if key != nil && len(key.name) > 0 {
		spans = r.keyContext(b, key, spans)
	}
	if len(spans) == 0 {
		return nil
	}
	// Drop anything touching an existing marker.
	if bytes.Contains(b, []byte(markerPrefix)) {
		marks := markers(b)
		kept := spans[:0]
		for _, s := range spans {
			if !overlapsAny(s, marks) {
				kept = append(kept, s)
			}
		}
		spans = kept
	}
	return resolve(r, spans)
}

// keyContext judges the value b with its key: a secret-named key with a
// high-entropy value, and provider rules that need a keyword next to the value.
func (r *Redactor) keyContext(b []byte, ki *keyInfo, spans []span) []span {
	key := ki.name
	if r.dockerAuth >= 0 && len(b) >= 8 && ki.auth && isBasicCredential(string(b)) {
		spans = append(spans, span{start: 0, end: len(b), rule: r.dockerAuth})
	}
	set := ki.set
	if set.empty() {
		return spans
	}
	// A JSON string is a literal (YAML scalars have no variables), so under
	// a password key it is judged as a quoted value; a passphrase may hold
	// blanks, any other secret is one word.
	if r.generic >= 0 && set.has(r.generic) && (len(b) >= 6 || ki.slot && isShortPassword(b)) && len(b) <= 400 && ki.secret && (ki.slot || !bytes.ContainsAny(b, " \t\r\n")) {
		v := string(b)
		if !r.allow[v] && (ki.slot && passwordValueOK(v, true) || !bytes.ContainsAny(b, " \t\r\n") &&
			(isLongRun(v) || genericValueOK(v, false) || isUUID(v) && ki.token || ki.password && !ki.slot && chosenValueOK(v))) {
			spans = append(spans, span{start: 0, end: len(b), rule: r.generic})
		} else if ki.strong && !r.allow[v] && hasSequence(v) && contextValueOK(v, key, true) {
			// A documentation sequence directly under a key that names a
			// credential: redacted like generic-context redacts it after
			// ACME_TOKEN= (strongContext).
			spans = append(spans, span{start: 0, end: len(b), rule: r.generic})
		} else if p := webhookSecretPath(v); p > 0 && ki.webhook {
			spans = append(spans, span{start: p, end: len(b), rule: r.generic})
		}
	}
	var ctx ruleSet
	for i := range ctx {
		ctx[i] = set[i] & r.ctxRules[i]
	}
	if ctx.empty() {
		return spans
	}
	text := make([]byte, 0, len(key)+2+len(b))
	text = append(append(append(text, key...), ':', ' '), b...)
	off := len(key) + 2
	for _, s := range r.runRules(text, ctx, nil, nil, nil) {
		if s.start >= off {
			spans = append(spans, span{start: s.start - off, end: s.end - off, rule: s.rule})
		}
	}
	return spans
}

// runRules applies the rules in set to text. When starts is non-nil, text is a
// decoded view and spans are mapped back through starts.
func (r *Redactor) runRules(text []byte, set ruleSet, starts []int, hits []int, spans []span) []span {
	// The facts the gated rules of set ask for, computed lazily, once, and
	// only as far as needed.
	need := 0
	for w, word := range set {
		for ; word != 0; word &= word - 1 {
			need |= r.rules[w<<6|bits.TrailingZeros64(word)].gate
		}
	}
	facts := -1 - need // negative until computed; -1-facts recovers need
	var sc litScan
	for w, word := range set {
		for ; word != 0; word &= word - 1 {
			ri := w<<6 | bits.TrailingZeros64(word)
			spans = r.runRule(text, ri, starts, hits, spans, &facts, &sc)
		}
	}
	return spans
}

// runRule applies rule ri to text (see runRules); facts holds the lazily
// computed gates shared by the rules of a call.
func (r *Redactor) runRule(text []byte, ri int, starts []int, hits []int, spans []span, factsp *int, sc *litScan) []span {
	ru := &r.rules[ri]
	if ru.gate != 0 {
		if *factsp < 0 {
			*factsp = textFacts(text, -1-*factsp)
		}
		if *factsp&ru.gate != ru.gate {
			return spans
		}
	}
	if len(ru.need) > 0 {
		ok := false
		if !r.wholeText && len(text) >= lineScanMin && r.scanned(text, sc) {
			for i := 0; i+1 < len(sc.hits) && !ok; i += 2 {
				ok = ru.needSet.has(sc.hits[i])
			}
		} else {
			for _, n := range ru.need {
				if containsFold(text, n) {
					ok = true
					break
				}
			}
		}
		if !ok {
			return spans
		}
	}
	var matches [][]int
	switch {
	case ru.windowed && len(hits) < 2*maxHits && ru.check == checkShape:
		matches = r.findContext(text, hits)
	case ru.windowed && len(hits) < 2*maxHits:
		matches = r.findAssignments(text, hits, ru.id == "generic-keyword-entropy")
	case !r.wholeText && ru.lineSafe && ru.lits != nil && len(text) >= lineScanMin && r.scanned(text, sc):
		matches = r.findLines(ru, text, sc)
	case !r.wholeText && ru.prefixLits != nil && len(text) >= lineScanMin && r.scanned(text, sc):
		matches = r.findPrefixed(ru, text, sc)
	default:
		matches = ru.re.FindAllSubmatchIndex(text, -1)
	}
	for _, m := range matches {
		if ru.leadBoundary && !glueOK(text, m[0], m[1], ru.glue, ru.prefixLen) {
			continue
		}
		if ru.leadSpace && m[0] > 0 && !isBlankByte(text[m[0]-1]) {
			continue
		}
		s, e := m[0], m[1]
		for _, g := range ru.secretGroups {
			if m[2*g] >= 0 {
				s, e = m[2*g], m[2*g+1]
				break
			}
		}
		name := ""
		if ru.nameGroup > 0 && m[2*ru.nameGroup] >= 0 {
			name = string(text[m[2*ru.nameGroup]:m[2*ru.nameGroup+1]])
		}
		if ru.check == checkGeneric || ru.check == checkLoose || ru.id == "url-query-secret" || ru.id == "conn-odbc" {
			trim := ")]}, \t"
			if ru.check == checkLoose {
				trim = ".)]}, \t"
			}
			for e > s && strings.IndexByte(trim, text[e-1]) >= 0 && !closesBracket(text[s:e]) {
				e--
			}
			if ru.id == "conn-odbc" {
				for s < e && (text[s] == ' ' || text[s] == '\t') {
					s++
				}
			}
		}
		if ru.check == checkGeneric && e > s && isWebhookName(name) {
			// The credential of a webhook is the path of its URL.
			if p := webhookSecretPath(string(text[s:e])); p > 0 {
				s += p
				if starts != nil {
					s, e = starts[s], starts[e]
				}
				spans = append(spans, span{start: s, end: e, rule: ri})
				continue
			}
		}
		quoted := s > 0 && (text[s-1] == '"' || text[s-1] == '\'')
		if e <= s {
			continue
		}
		secret := string(text[s:e])
		strong := ru.check == checkShape && ru.nameGroup > 0 && m[2*ru.nameGroup] >= 0 &&
			strongContext(text, m[2*ru.nameGroup], m[2*ru.nameGroup+1], s)
		if !r.accept(ru, secret, name, quoted, strong) {
			continue
		}
		if starts != nil {
			s, e = starts[s], starts[e]
		}
		spans = append(spans, span{start: s, end: e, rule: ri})
	}
	return spans
}

// accept applies a rule's validation to a candidate secret. quoted says
// whether the secret stood right after a quote (a literal wherever it is);
// strong, for generic-context, that it stood directly under a name that
// names a credential (strongContext).
func (r *Redactor) accept(ru *rule, secret, name string, quoted, strong bool) bool {
	if r.allow[secret] || isMarker(secret) {
		return false
	}
	if ru.validate != nil && !ru.validate(secret) {
		return false
	}
	switch {
	case ru.id == "url-query-secret" && isPasswordSlot(name):
		// A URL holds no code: the value of ?password= is a literal.
		return passwordValueOK(secret, true)
	case ru.id == "url-query-secret":
		return isSecretParam(name) && !standIn(secret) && len(secret) >= 8 && !isUUID(secret) &&
			shannon(secret) >= ru.minEntropy && !(isWordy(secret))
	case ru.check == checkFormat, ru.check == checkContext && ru.format:
		// The format vouches: no stand-in, sequence or entropy check may veto
		// a match, only template syntax, which no token alphabet produces.
		return !isTemplate(secret)
	case ru.check == checkStandIn:
		return !standIn(secret)
	case ru.check == checkContext:
		return !standIn(secret) && !hasSequence(secret) && !isUUID(secret) && shannon(secret) >= ru.minEntropy
	case ru.check == checkGeneric:
		return isSecretName(name) && (isLongRun(secret) || genericValueOK(secret, false) || isUUID(secret) && isTokenName(name) ||
			isPasswordSlot(name) && passwordValueOK(secret, quoted) || !isPasswordSlot(name) && isPasswordName(name) && chosenValueOK(secret))
	case ru.check == checkLoose:
		return genericValueOK(secret, true)
	case ru.check == checkPassword:
		// The position proves a password and holds no code: a command line
		// takes "-p PASSWORD" as typed, a URL or a connection string has no
		// variables of its own, and the Gradle and code forms are quoted. So
		// a constant's name is a literal here, unlike after an unquoted "="
		// in code (passwordValueOK).
		if ru.id == "cli-password" {
			// What a shell makes of "$X" or "%X%" depends on the shell:
			// cmd.exe passes "-p $Password" as typed, bash passes
			// "-p %nothing%" as typed, and the line does not say which
			// shell runs it. So on a command line only what no shell
			// passes as typed is kept: masks, "<…>" (a redirection in
			// every shell) and markers.
			return len(secret) >= 3 && !isPasswordMask(secret) && !isMarker(secret) && !isAngleStandIn(secret)
		}
		if ru.id == "conn-odbc" && len(secret) > 2 && secret[0] == '{' && secret[len(secret)-1] == '}' && !isTemplate(secret[1:len(secret)-1]) && secret[1] != '{' {
			secret = secret[1 : len(secret)-1] // Pwd={p;w}: ODBC's braces quote a value
		}
		return len(secret) >= 3 && !isPasswordRef(secret)
	case ru.check == checkShape:
		return contextValueOK(secret, []byte(name), strong)
	case ru.check == checkChosen:
		s := strings.Trim(secret, "{}")
		return len(s) >= 3 && !isPasswordStandIn(s)
	}
	return true
}

// closesBracket reports whether v ends with a bracket that closes one opened
// inside v ("{XAccessKey}"), which then belongs to the value.
func closesBracket(v []byte) bool {
	var open byte
	switch v[len(v)-1] {
	case '}':
		open = '{'
	case ']':
		open = '['
	case ')':
		open = '('
	default:
		return false
	}
	return bytes.Count(v, []byte{open}) >= bytes.Count(v, v[len(v)-1:])
}

// isSecretParam reports whether a URL query parameter name carries a secret.
func isSecretParam(name string) bool {
	l := strings.ToLower(name)
	for _, x := range [...]string{"page", "next", "cursor", "continuation", "type", "keyword", "monkey", "hint", "method",
		"expires", "algorithm", "version", "id"} {
		if strings.Contains(l, x) && !strings.Contains(l, "secret") {
			if x != "id" || strings.HasSuffix(l, "id") {
				return false
			}
		}
	}
	return true
}

// markers returns the spans of "[REDACTED:…]" markers already in text.
func markers(text []byte) []span {
	var out []span
	for i := 0; ; {
		j := bytes.Index(text[i:], []byte(markerPrefix))
		if j < 0 {
			return out
		}
		s := i + j
		e := bytes.IndexByte(text[s:], ']')
		if e < 0 {
			out = append(out, span{start: s, end: len(text)})
			return out
		}
		out = append(out, span{start: s, end: s + e + 1})
		i = s + e + 1
	}
}

func overlapsAny(s span, list []span) bool {
	for _, o := range list {
		if s.start < o.end && o.start < s.end {
			return true
		}
	}
	return false
}

// resolve drops overlapping findings, keeping the higher-priority (then the
// longer) one, and returns the rest ordered by start.
func resolve(r *Redactor, spans []span) []span {
	if len(spans) < 2 {
		return spans
	}
	sort.SliceStable(spans, func(i, j int) bool {
		pi, pj := r.rules[spans[i].rule].prio, r.rules[spans[j].rule].prio
		if pi != pj {
			return pi < pj
		}
		li, lj := spans[i].end-spans[i].start, spans[j].end-spans[j].start
		if li != lj {
			return li > lj
		}
		return spans[i].start < spans[j].start
	})
	kept := make([]span, 0, len(spans))
	for _, s := range spans {
		if !overlapsAny(s, kept) {
			kept = append(kept, s)
		}
	}
	sort.Slice(kept, func(i, j int) bool { return kept[i].start < kept[j].start })
	return kept
}

// apply replaces the spans of b with markers and counts them in rep. When
// marks is not nil, the place of each marker in the result is appended to
// it.
func (r *Redactor) apply(b []byte, spans []span, rep *Report, marks *[][2]int) []byte {
	out := make([]byte, 0, len(b))
	last := 0
	for _, s := range spans {
		out = append(out, b[last:s.start]...)
		id := r.rules[s.rule].id
		at := len(out)
		out = append(out, markerPrefix...)
		out = append(out, id...)
		out = append(out, ']')
		if marks != nil {
			*marks = append(*marks, [2]int{at, len(out)})
		}
		rep.add(id, 1)
		last = s.end
	}
	return append(out, b[last:]...)
}

// process redacts b until nothing more is found. It reports whether b
// changed. After the first round a long text is read again only around
// what was replaced (the lines of each marker, with the line before and
// after): what a replacement can reveal (the rest of an overlapping
// finding, a value after a key that was a secret) lies there, and the rest
// of the text is as the round before read it.
func (r *Redactor) process(b []byte, key *keyInfo, rep *Report) ([]byte, bool) {
	changed := false
	var regions [][2]int // after the first round of a long text: where to read
	// A key that judges the value as a whole (a secret name, an auth key)
	// would judge a region as a whole value too: such a value is read
	// whole in every round.
	local := len(b) >= lineScanMin && !r.wholeRound && (key == nil || !key.auth && key.set.empty())
	for round := 0; round < maxRounds; round++ {
		var spans []span
		if round == 0 || !local {
			spans = r.detect(b, key)
		} else {
			for _, g := range regions {
				for _, s := range r.detect(b[g[0]:g[1]], key) {
					spans = append(spans, span{start: s.start + g[0], end: s.end + g[0], rule: s.rule})
				}
			}
		}
		if len(spans) == 0 {
			break
		}
		if !local {
			b = r.apply(b, spans, rep, nil)
		} else {
			var marks [][2]int
			b = r.apply(b, spans, rep, &marks)
			regions = lineRegions(b, marks)
		}
		changed = true
	}
	return b, changed
}

// lineRegions returns the lines of b that hold one of places ([start, end)
// pairs, in order), each with the line before and the line after, merged
// where they meet. It is linear in len(b) however many places share a
// line: a place on the same line as the one before reuses its bounds
// (thousands of markers on one long line once cost a scan of the line
// each, which made adversarial input 4.7 times slower).
func lineRegions(b []byte, places [][2]int) [][2]int {
	var out [][2]int
	prevFrom, prevTo, prevS, prevE := -1, -1, 0, 0
	for _, p := range places {
		from, to := p[0], p[1]
		s, e := prevS, prevE
		if prevFrom < 0 || from < prevFrom || bytes.IndexByte(b[prevFrom:from], '\n') >= 0 {
			s = lineRegionStart(b, from)
		}
		if prevTo < 0 || to < prevTo || bytes.IndexByte(b[prevTo:to], '\n') >= 0 {
			e = lineRegionEnd(b, to)
		}
		prevFrom, prevTo, prevS, prevE = from, to, s, e
		out = mergeRegion(out, s, e)
	}
	return out
}

// addLineRegion appends to out (sorted, merged) the lines of b holding
// [from, to) plus one line before and one after.
func addLineRegion(out [][2]int, b []byte, from, to int) [][2]int {
	return mergeRegion(out, lineRegionStart(b, from), lineRegionEnd(b, to))
}

// lineRegionStart is the start of the line before the one holding from.
func lineRegionStart(b []byte, from int) int {
	s := bytes.LastIndexByte(b[:from], '\n')
	if s > 0 {
		s = bytes.LastIndexByte(b[:s], '\n')
	}
	return s + 1
}

// lineRegionEnd is the end of the line after the one holding to.
func lineRegionEnd(b []byte, to int) int {
	e := to
	for n := 0; n < 2 && e < len(b); n++ {
		if j := bytes.IndexByte(b[e:], '\n'); j >= 0 {
			e += j + 1
		} else {
			e = len(b)
		}
	}
	return e
}

// mergeRegion appends [s, e) to out (sorted by start), merged with the
// last region where they meet.
func mergeRegion(out [][2]int, s, e int) [][2]int {
	if l := len(out); l > 0 && s <= out[l-1][1] {
		out[l-1][1] = max(out[l-1][1], e)
		return out
	}
	return append(out, [2]int{s, e})
}

// Text redacts secrets in free text, YAML or an API definition, after
// removing invisible Unicode.
func (r *Redactor) Text(s string) (string, Report) {
	r.calls.text.Add(1)
	var rep Report
	clean, n := Sanitize(s)
	rep.Invisible = n
	out, changed := r.process([]byte(clean), nil, &rep)
	if !changed {
		return clean, rep
	}
	return string(out), rep
}

// FindText returns the secrets that Text would redact in its first pass, with
// byte offsets into s.
func (r *Redactor) FindText(s string) []Finding {
	clean, _, starts := sanitizeMap(s, true)
	var out []Finding
	for _, sp := range r.detect([]byte(clean), nil) {
		st, en := sp.start, sp.end
		if starts != nil {
			st, en = starts[st], starts[en]
		}
		out = append(out, Finding{Rule: r.rules[sp.rule].id, Start: st, End: en})
	}
	return out
}

// Facts about a text that gate the costlier rules.
const (
	factAssign    = 1 << iota // has ':' or '='
	factQuery                 // has '?' or '&'
	factLongToken             // has a 16+ character token with a digit
	factAlnum16               // has 16+ consecutive letters and digits, with a digit
	factFormat16              // has 16+ consecutive characters of [A-Za-z0-9+/_=-], digit or not
	factHex32                 // has 32+ consecutive hex digits
	factAlnum24               // has 24+ consecutive letters and digits, digit or not
)

// textFacts returns the facts of b, scanning until every fact in need is
// known to hold (or to the end). The facts of runs hold only in a run of
// token bytes (every class they count is one), and only one of 16 bytes or
// more can hold one: the scan skips shorter runs at one table lookup a byte.
func textFacts(b []byte, need int) int {
	all := need
	f := 0
	if bytes.IndexByte(b, ':') >= 0 || bytes.IndexByte(b, '=') >= 0 {
		f |= factAssign
	}
	if bytes.IndexByte(b, '?') >= 0 || bytes.IndexByte(b, '&') >= 0 {
		f |= factQuery
	}
	for i := 0; i < len(b) && f&all != all; {
		if factBytes[b[i]]&fbToken == 0 {
			i++
			continue
		}
		j := i + 1
		for j < len(b) && factBytes[b[j]]&fbToken != 0 {
			j++
		}
		if j-i >= 16 {
			f |= runFacts(b[i:j])
		}
		i = j
	}
	return f
}

// runFacts returns the facts of runs in b, a run of token bytes.
func runFacts(b []byte) int {
	f := 0
	run, digit := 0, false
	arun, adigit := 0, false
	frun, hrun := 0, 0
	for _, c := range b {
		k := factBytes[c]
		if k&fbHex != 0 {
			if hrun++; hrun >= 32 {
				f |= factHex32
			}
		} else {
			hrun = 0
		}
		if k&fbFormat != 0 {
			if frun++; frun >= 16 {
				f |= factFormat16
			}
		} else {
			frun = 0
		}
		if k&fbAlnum != 0 {
			arun++
			adigit = adigit || k&fbDigit != 0
			if arun >= 16 && adigit {
				f |= factAlnum16
			}
			if arun >= 24 {
				f |= factAlnum24
			}
		} else {
			arun, adigit = 0, false
		}
		run++
		digit = digit || k&fbDigit != 0
		if run >= 16 && digit {
			f |= factLongToken
		}
	}
	return f
}

// Byte kinds for textFacts.
const (
	fbAlnum  = 1 << iota // letter or digit
	fbDigit              // digit
	fbToken              // letter, digit or one of +/_-.=~!@#$%^&*
	fbAssign             // ':' or '='
	fbQuery              // '?' or '&'
	fbFormat             // letter, digit or one of +/_=- (the alphabets of the keyword-context formats)
	fbHex                // hex digit
)

// factBytes maps a byte to its kinds (a constant table, built once).
var factBytes = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		alnum := b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
		if alnum {
			t[c] |= fbAlnum | fbToken | fbFormat
		}
		if strings.IndexByte("+/_=-", b) >= 0 {
			t[c] |= fbFormat
		}
		if b >= '0' && b <= '9' {
			t[c] |= fbDigit
		}
		if isHex(b) {
			t[c] |= fbHex
		}
		if strings.IndexByte("+/_-.=~!@#$%^&*", b) >= 0 {
			t[c] |= fbToken
		}
		switch b {
		case ':', '=':
			t[c] |= fbAssign
		case '?', '&':
			t[c] |= fbQuery
		}
	}
	return t
}()

// containsFold reports whether text contains needle, a lowercase ASCII
// string, ignoring ASCII case. It allocates nothing.
func containsFold(text []byte, needle string) bool {
	if len(text) > 512 {
		return indexFold(text, needle) >= 0 // reads a long text once
	}
	n := len(needle)
	if n == 0 {
		return true
	}
	c0 := needle[0]
	u0 := c0
	if c0 >= 'a' && c0 <= 'z' {
		u0 = c0 - 'a' + 'A'
	}
	for i := 0; i+n <= len(text); i++ {
		if c := text[i]; (c == c0 || c == u0) && equalFoldLower(text[i+1:i+n], needle[1:]) {
			return true
		}
	}
	return false
}

// equalFoldLower reports whether b equals the lowercase ASCII string s,
// ignoring ASCII case.
func equalFoldLower(b []byte, s string) bool {
	for k := 0; k < len(s); k++ {
		c := b[k]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[k] {
			return false
		}
	}
	return true
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// maxHits bounds the keyword hits examined by the generic rules; past it
// they fall back to their regular expressions.
const maxHits = 1 << 15

// formEncoded reports whether b has a '+' in a query: after a '?' in the
// same run of bytes that are no blank, quote or angle bracket (a URL holds
// none of them), whose blanks are written '+' ("?note=acme+token+V"), which
// the decoded view reads as blanks. A '+' elsewhere ("a+b", a base64 body
// after a question in prose) is what it is.
func formEncoded(b []byte) bool {
	q := bytes.IndexByte(b, '?')
	if q < 0 || bytes.IndexByte(b[q:], '+') < 0 {
		return false // the common case, found at memchr speed
	}
	query := false
	for _, c := range b[q:] {
		switch {
		case c == '?':
			query = true
		case c == '+' && query:
			return true
		case endsQuery(c):
			query = false
		}
	}
	return false
}

// endsQuery reports whether c ends a URL's query in text: a blank, a quote,
// an angle bracket or a backtick, none of which a URL holds unencoded.
func endsQuery(c byte) bool {
	return c <= ' ' || c == '"' || c == '\'' || c == '<' || c == '>' || c == '`'
}

// isBlankByte reports whether c is a space, tab, newline, carriage return
// or form feed (RE2's \s).
func isBlankByte(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'
}

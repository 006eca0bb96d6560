package corpus

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// SourceRule is the pattern of one rule of the outside corpus's source (a
// Nosey Parker rule), kept verbatim so that the source's whole rule set can
// be asked whether it finds a secret in a negative example.
type SourceRule struct {
	Rule    string `json:"rule"`
	Pattern string `json:"pattern"`
}

var errRuleFields = errors.New("rule and pattern are required")

// WriteSourceRules writes rules as JSON lines.
func WriteSourceRules(w io.Writer, rules []SourceRule) error { return writeLines(w, rules) }

// ReadSourceRules reads JSON lines written by WriteSourceRules.
func ReadSourceRules(r io.Reader) ([]SourceRule, error) {
	return readLines(r, "rules ", func(s SourceRule) error {
		if s.Rule == "" || s.Pattern == "" {
			return errRuleFields
		}
		return nil
	})
}

// CompileSourcePattern turns a source pattern (Rust regex syntax, often in
// extended mode) into a Go regexp with the same matches on the corpus:
// extended mode's blanks and comments are removed, and a repeat bound above
// Go's limit of 1000 is lowered to 1000 (only a token longer than that
// could then be missed). TestSourcePatternsFaithful checks the result on
// the source's own examples and negatives.
func CompileSourcePattern(p string) (*regexp.Regexp, error) {
	ext := false
	p = flagGroup.ReplaceAllStringFunc(p, func(g string) string {
		if !strings.Contains(g, "x") {
			return g
		}
		ext = true
		g = strings.ReplaceAll(g, "x", "")
		if g == "(?)" {
			return ""
		}
		return g
	})
	if ext {
		p = stripExtended(p)
	}
	p = bigRepeat.ReplaceAllStringFunc(p, func(m string) string {
		sub := bigRepeat.FindStringSubmatch(m)
		if n, err := strconv.Atoi(sub[2]); err == nil && n > 1000 {
			return "{" + sub[1] + ",1000}"
		}
		return m
	})
	re, err := regexp.Compile(p)
	if err != nil {
		return nil, fmt.Errorf("corpus: source pattern: %w", err)
	}
	return re, nil
}

var (
	flagGroup = regexp.MustCompile(`\(\?[a-zA-Z]+\)`)
	bigRepeat = regexp.MustCompile(`\{([0-9]+),([0-9]+)\}`)
)

// stripExtended removes what extended mode ignores: unescaped blanks and
// "#" comments outside character classes, and "(?# … )" comments.
func stripExtended(p string) string {
	var b strings.Builder
	inClass := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\' && i+1 < len(p):
			if !inClass && (p[i+1] == ' ' || p[i+1] == '#') {
				b.WriteByte(p[i+1]) // an escaped blank or '#' is that character
			} else {
				b.WriteString(p[i : i+2])
			}
			i++
		case inClass:
			if c == ']' {
				inClass = false
			}
			b.WriteByte(c)
		case c == '[':
			inClass = true
			b.WriteByte(c)
			if strings.HasPrefix(p[i+1:], "^") {
				b.WriteByte('^')
				i++
			}
			if strings.HasPrefix(p[i+1:], "]") {
				b.WriteByte(']') // a leading ']' is a member, not the end
				i++
			}
		case strings.HasPrefix(p[i:], "(?#"):
			if j := strings.IndexByte(p[i:], ')'); j >= 0 {
				i += j
			} else {
				i = len(p)
			}
		case c == '#':
			if j := strings.IndexByte(p[i:], '\n'); j >= 0 {
				i += j
			} else {
				i = len(p)
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// SourceFlagged returns, for each negative example in which a pattern of
// another rule of the source finds a match, the ids of those rules. A
// negative example only says that its own rule must not fire; when the
// source's rule set, run as the source runs it, reports a secret in the
// text, the text is not one the source says holds none.
func SourceFlagged(cases []OutsideCase, rules []SourceRule) (map[string][]string, error) {
	type compiled struct {
		id string
		re *regexp.Regexp
	}
	res := make([]compiled, 0, len(rules))
	for _, r := range rules {
		re, err := CompileSourcePattern(r.Pattern)
		if err != nil {
			return nil, fmt.Errorf("corpus: rule %s: %w", r.Rule, err)
		}
		res = append(res, compiled{r.Rule, re})
	}
	out := map[string][]string{}
	for _, c := range cases {
		if c.Label != LabelNegative {
			continue
		}
		for _, r := range res {
			if r.id != c.Rule && r.re.MatchString(c.Text) {
				out[c.ID] = append(out[c.ID], r.id)
			}
		}
		sort.Strings(out[c.ID])
	}
	return out, nil
}
